"""Conversion of a mapped netlist into a ``torch_geometric`` graph with timing features.

Nodes are, in this order, the primary inputs (port order), the cell instances (netlist order)
and the primary outputs (port order). Every driver-to-sink connection of a net gives one
forward edge and one reverse edge, so messages pass both ways. A net driven by a constant has no
driver node and contributes no edges. Every numeric feature comes from one run of the static
timer (:func:`~adaptlab.plugins.graphsym.timing.levelized_timing`).

Node features (:data:`FEATURE_NAMES`, in column order):

* ``family_*``: one-hot logic family of a cell (all zero for ports), see :func:`cell_family`;
* ``kind_cell``, ``kind_pi``, ``kind_po``: one-hot node kind;
* ``drive_strength``: cell-name drive suffix (1 when the name has none) / ``drive``;
* ``area``: cell area / ``area`` (library area unit);
* ``input_capacitance``: summed input pin capacitance / ``capacitance`` (pF); a primary output
  has the port load of ``TimingOptions.output_load``;
* ``fanout``: sink pins plus output ports on the driven net / ``fanout``;
* ``load``: capacitance on the driven net / ``capacitance`` (pF);
* ``level``: logic level (primary inputs 0, a primary output takes its net's level) / ``level``;
* ``arrival``, ``slack``: worst arrival and slack (ns) divided by the delay target D. A node
  on no path to an output has infinite slack, stored as 1.0, the largest finite value.

The divisors are the fields of :class:`FeatureScales`. Edge features are ``forward`` and
``reverse`` (one-hot edge type) and, with ``pin_capacitance``, the sink pin's capacitance /
``capacitance``, copied onto the reverse edge.
"""

from __future__ import annotations

import itertools
import logging
import math
import re
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch_geometric.data import Data

from ..liberty.function import FunctionSyntaxError, compile_function
from ..liberty.model import Cell, Library, drive_strength
from ..netlist.model import CONSTANT_NETS, Netlist
from ..timing import TimingOptions, build_timing_graph, levelized_timing

__all__ = [
    "CELL_FAMILIES",
    "EDGE_FEATURE_NAMES",
    "FEATURE_NAMES",
    "FEATURE_VERSION",
    "FeatureScales",
    "cell_family",
    "edge_feature_names",
    "feature_cache_key",
    "netlist_to_graph",
]

logger = logging.getLogger(__name__)

# Bump whenever the features change for the same netlist, library and options, because cached
# graphs are keyed by this string.
FEATURE_VERSION = "1"

CELL_FAMILIES: tuple[str, ...] = (
    "INV", "BUF", "NAND", "NOR", "AND", "OR", "AOI", "OAI", "XOR", "XNOR", "other",
)
NODE_KINDS: tuple[str, ...] = ("cell", "pi", "po")
FEATURE_NAMES: tuple[str, ...] = (
    *(f"family_{family.lower()}" for family in CELL_FAMILIES),
    *(f"kind_{kind}" for kind in NODE_KINDS),
    "drive_strength",
    "area",
    "input_capacitance",
    "fanout",
    "load",
    "level",
    "arrival",
    "slack",
)
EDGE_FEATURE_NAMES: tuple[str, ...] = ("forward", "reverse", "sink_capacitance")

# Truth tables are enumerated only up to this many inputs (64 rows); wider cells fall back to
# their names.
_MAX_FUNCTION_INPUTS = 6
_COLUMN = {name: index for index, name in enumerate(FEATURE_NAMES)}
_FAMILY_COLUMN = {family: index for index, family in enumerate(CELL_FAMILIES)}
# Library prefixes such as sky130's "sky130_fd_sc_hd__" end in a double underscore.
_NAME_PREFIX = re.compile(r"^.*__")
# Checked in order, so that XNOR wins over NOR and NAND over AND.
_NAME_FAMILIES = (
    ("XNOR", "XNOR"), ("XOR", "XOR"), ("NAND", "NAND"), ("NOR", "NOR"), ("AOI", "AOI"),
    ("OAI", "OAI"), ("AND", "AND"), ("OR", "OR"), ("INV", "INV"), ("NOT", "INV"), ("BUF", "BUF"),
)


@dataclass(frozen=True)
class FeatureScales:
    """Divisors of the numeric node features. The defaults put the synthetic library's values
    roughly between 0 and 10 for adders up to 64 bits; they are not fitted to data."""

    drive: float = 4.0
    """Drive strength (the X in ``_X4``)."""
    area: float = 1.0
    """Area, in the library's area unit (square micrometres for the synthetic library)."""
    capacitance: float = 0.01
    """Capacitance, pF."""
    fanout: float = 4.0
    """Fanout, sink pins plus output ports."""
    level: float = 16.0
    """Logic level."""

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if not value > 0:
                raise ValueError(f"feature scale {name} must be positive, got {value}")


def edge_feature_names(pin_capacitance: bool = True) -> tuple[str, ...]:
    """Return the edge feature names, in column order, for the chosen options."""
    return EDGE_FEATURE_NAMES if pin_capacitance else EDGE_FEATURE_NAMES[:2]


def feature_cache_key(scales: FeatureScales | None = None, pin_capacitance: bool = True) -> str:
    """Return a string that changes whenever the feature definition or its options change."""
    scales = scales or FeatureScales()
    values = ",".join(f"{name}={value!r}" for name, value in asdict(scales).items())
    return f"graphsym-features-v{FEATURE_VERSION};{values};pin_capacitance={pin_capacitance}"


def _family_from_truth_table(function: str) -> str | None:
    """Classify a Boolean function by enumerating its truth table.

    Returns ``None`` when the function cannot be parsed or is too wide, and ``"other"`` when it
    belongs to no single family (MUX, AO21, majority, ...).
    """
    try:
        evaluate, names = compile_function(function)
    except FunctionSyntaxError:
        return None
    count = len(names)
    if count == 0 or count > _MAX_FUNCTION_INPUTS:
        return None if count else "other"
    rows = list(itertools.product((False, True), repeat=count))
    table = {row: bool(evaluate(dict(zip(names, row)))) for row in rows}
    if count == 1:
        if table[(False,)] and not table[(True,)]:
            return "INV"
        if table[(True,)] and not table[(False,)]:
            return "BUF"
        return "other"
    if all(table[row] == (sum(row) % 2 == 1) for row in rows):
        return "XOR"
    if all(table[row] == (sum(row) % 2 == 0) for row in rows):
        return "XNOR"

    def raised(row: tuple[bool, ...], position: int) -> tuple[bool, ...]:
        return row[:position] + (True,) + row[position + 1:]

    pairs = [(row, raised(row, i)) for row in rows for i in range(count) if not row[i]]
    if all(table[low] <= table[high] for low, high in pairs):
        inverted = False
    elif all(table[low] >= table[high] for low, high in pairs):
        inverted = True
    else:
        return "other"
    # ``positive`` is the monotone increasing function: f itself, or NOT f for inverting cells.
    positive = {row: table[row] != inverted for row in rows}
    if any(all(positive[low] == positive[high] for low, high in pairs if low[i] != high[i])
           for i in range(count)):
        return "other"  # an input the function does not depend on
    # Minimal true sets are the product terms of the monotone function's minimal sum of
    # products, and minimal zero sets (inputs whose 0 forces 0) the sums of its product of sums.
    true_sets = [frozenset(i for i in range(count) if row[i]) for row in rows
                 if positive[row] and not any(positive[row[:i] + (False,) + row[i + 1:]]
                                              for i in range(count) if row[i])]
    zero_sets = [frozenset(i for i in range(count) if not row[i]) for row in rows
                 if not positive[row] and not any(not positive[raised(row, i)]
                                                  for i in range(count) if not row[i])]
    if len(true_sets) == 1:
        return "NAND" if inverted else "AND"
    if all(len(term) == 1 for term in true_sets):
        return "NOR" if inverted else "OR"
    if not inverted:
        return "other"
    if all(a.isdisjoint(b) for a, b in itertools.combinations(true_sets, 2)):
        return "AOI"
    if all(a.isdisjoint(b) for a, b in itertools.combinations(zero_sets, 2)):
        return "OAI"
    return "other"


def _family_from_name(name: str) -> str:
    base = _NAME_PREFIX.sub("", name).upper()
    if base.startswith("CLK"):
        base = base[3:]
    for prefix, family in _NAME_FAMILIES:
        if base.startswith(prefix):
            return family
    return "other"


def cell_family(cell: Cell) -> str:
    """Return the logic family of ``cell``, one of :data:`CELL_FAMILIES`.

    A cell with exactly one output pin is classified by the truth table of that pin's Liberty
    ``function``. A cell with several outputs, no function, or a function of more than six
    inputs is classified by its name (``NAND2_X1`` and ``sky130_fd_sc_hd__nand2_1`` give NAND).
    """
    outputs = cell.output_pins
    if len(outputs) == 1 and outputs[0].function:
        family = _family_from_truth_table(outputs[0].function)
        if family is not None:
            return family
    if len(outputs) > 1:
        return "other"
    return _family_from_name(cell.name)


def _cell_columns(library: Library) -> np.ndarray:
    """Return one row per cell, in ``library.cells`` order: family column, drive strength (1
    without a suffix) and area."""
    rows = [(_FAMILY_COLUMN[cell_family(cell)], drive_strength(cell.name) or 1.0, cell.area)
            for cell in library.cells.values()]
    return np.array(rows, dtype=np.float64).reshape(-1, 3)


def _time_ratio(values: np.ndarray, delay_target: float) -> np.ndarray:
    """Divide times by the delay target; infinite values (no path) become 1.0."""
    return np.where(np.isinf(values), 1.0, values / delay_target)


def netlist_to_graph(
    netlist: Netlist,
    library: Library,
    options: TimingOptions | None = None,
    *,
    scales: FeatureScales | None = None,
    pin_capacitance: bool = True,
) -> Data:
    """Time ``netlist`` once against ``library`` and return its graph.

    The result has ``x`` of shape ``(num_nodes, len(FEATURE_NAMES))``, ``edge_index`` of shape
    ``(2, 2 * connections)`` with forward edges first and their reverse edges after them in the
    same order, and ``edge_attr`` with the columns of :func:`edge_feature_names`. It also
    carries the graph-level values ``critical_delay`` (ns), ``area`` and ``delay_target``
    (ns) as one-element tensors, which a ``torch_geometric`` batch stacks per graph.

    The delay target D is ``options.delay_target``, or the critical delay when that is
    ``None``. Raises :class:`~adaptlab.plugins.graphsym.netlist.model.NetlistError` for a
    netlist the timer rejects, and ``ValueError`` when D is not positive.

    The timing comes from :func:`~adaptlab.plugins.graphsym.timing.levelized_timing`, which
    equals :func:`~adaptlab.plugins.graphsym.timing.analyze_timing` bit for bit. Every feature
    is computed from it in float64 and rounded to float32 once.
    """
    options = options or TimingOptions()
    scales = scales or FeatureScales()
    graph = build_timing_graph(netlist, library)
    timing = levelized_timing(graph, options)
    delay_target = timing.delay_target
    if not delay_target > 0:
        raise ValueError(
            f"netlist {netlist.name!r}: delay target is {delay_target} ns, but arrival and "
            "slack features are divided by it; pass a positive TimingOptions.delay_target"
        )
    instance_names = {instance.name for instance in netlist.instances}
    if len(instance_names) != len(netlist.instances):
        raise ValueError(
            f"netlist {netlist.name!r} repeats instance names ({len(netlist.instances)} "
            f"instances, {len(instance_names)} names); give every instance a unique name"
        )

    input_count = len(netlist.inputs)
    cell_count = len(netlist.instances)
    output_count = len(graph.output_nets)
    node_count = input_count + cell_count + output_count
    x = np.zeros((node_count, len(FEATURE_NAMES)))
    net_arrival = timing.arrival.max(axis=1)
    net_slack = timing.net_slack()

    # Cells: per-output values are combined over the instance's output pins, as the reference
    # report does (sums for load and fanout, worst for level, arrival and slack).
    cell_values = library.derive("graph_feature_columns", _cell_columns)[timing.instance_cell]
    pin_instance = np.array(graph.pin_instance, dtype=np.int64)
    pin_net = np.array(graph.pin_net, dtype=np.int64)
    is_input = timing.pin_is_input
    input_instance = pin_instance[is_input]
    output_instance = pin_instance[~is_input]
    output_net = pin_net[~is_input]
    level = np.zeros(cell_count, dtype=np.int64)
    arrival = np.zeros(cell_count)
    slack = np.full(cell_count, math.inf)
    np.maximum.at(level, output_instance, timing.net_level[output_net])
    np.maximum.at(arrival, output_instance, net_arrival[output_net])
    np.minimum.at(slack, output_instance, net_slack[output_net])
    cells = x[input_count:input_count + cell_count]
    cells[np.arange(cell_count), cell_values[:, 0].astype(np.int64)] = 1.0
    cells[:, _COLUMN["kind_cell"]] = 1.0
    cells[:, _COLUMN["drive_strength"]] = cell_values[:, 1] / scales.drive
    cells[:, _COLUMN["area"]] = cell_values[:, 2] / scales.area
    capacitance = np.bincount(input_instance, weights=timing.pin_capacitance[is_input], minlength=cell_count)
    cells[:, _COLUMN["input_capacitance"]] = capacitance / scales.capacitance
    fanout = np.bincount(output_instance, weights=timing.fanout[output_net], minlength=cell_count)
    cells[:, _COLUMN["fanout"]] = fanout / scales.fanout
    load = np.bincount(output_instance, weights=timing.load[output_net], minlength=cell_count)
    cells[:, _COLUMN["load"]] = load / scales.capacitance
    cells[:, _COLUMN["level"]] = level / scales.level
    cells[:, _COLUMN["arrival"]] = arrival / delay_target
    cells[:, _COLUMN["slack"]] = _time_ratio(slack, delay_target)

    # Ports. A constant net without sinks has no timing in the reference report (only possible
    # through aliases), so such a port gets slack 1.0 and nothing else.
    constant = np.zeros(len(graph.net_names), dtype=bool)
    constant[[graph.net_ids[name] for name in CONSTANT_NETS]] = True
    untimed = constant & (timing.fanout == 0)
    port_arrival = np.where(np.isfinite(net_arrival), net_arrival, 0.0) / delay_target
    port_slack = np.where(untimed, 1.0, _time_ratio(net_slack, delay_target))
    input_nets = np.array(graph.input_nets, dtype=np.int64)
    ports = x[:input_count]
    ports[:, _COLUMN["kind_pi"]] = 1.0
    timed = ~untimed[input_nets]
    ports[:, _COLUMN["fanout"]] = np.where(timed, timing.fanout[input_nets] / scales.fanout, 0.0)
    ports[:, _COLUMN["load"]] = np.where(timed, timing.load[input_nets] / scales.capacitance, 0.0)
    ports[:, _COLUMN["arrival"]] = np.where(timed, port_arrival[input_nets], 0.0)
    ports[:, _COLUMN["slack"]] = port_slack[input_nets]
    output_nets = np.array(graph.output_nets, dtype=np.int64)
    ports = x[input_count + cell_count:]
    timed = ~untimed[output_nets]
    ports[:, _COLUMN["kind_po"]] = 1.0
    ports[:, _COLUMN["input_capacitance"]] = options.output_load / scales.capacitance
    ports[:, _COLUMN["level"]] = np.where(timed, timing.net_level[output_nets] / scales.level, 0.0)
    ports[:, _COLUMN["arrival"]] = np.where(timed, port_arrival[output_nets], 0.0)
    ports[:, _COLUMN["slack"]] = port_slack[output_nets]

    # Edges: net by net, driver to each sink pin in netlist order, then driver to output ports.
    # Constant nets have no driver node and give no edges.
    driver_node = np.full(len(graph.net_names), -1, dtype=np.int64)
    driver_node[input_nets[::-1]] = np.arange(input_count)[::-1]  # the first port of a net wins
    driver_node[output_net] = input_count + output_instance
    sink_net = pin_net[is_input]
    by_net = np.argsort(sink_net, kind="stable")
    sink_source = driver_node[sink_net[by_net]]
    driven = sink_source >= 0
    output_source = driver_node[output_nets]
    output_driven = output_source >= 0
    sources = np.concatenate([sink_source[driven], output_source[output_driven]])
    targets = np.concatenate([input_count + input_instance[by_net][driven],
                              input_count + cell_count + np.flatnonzero(output_driven)])
    connections = len(sources)
    edge_index = torch.from_numpy(np.stack([np.concatenate([sources, targets]),
                                            np.concatenate([targets, sources])]))
    edge_attr = np.zeros((2 * connections, 3 if pin_capacitance else 2), dtype=np.float32)
    edge_attr[:connections, 0] = 1.0
    edge_attr[connections:, 1] = 1.0
    if pin_capacitance:
        sink_capacitance = timing.pin_capacitance[is_input][by_net][driven]
        capacitances = np.concatenate([sink_capacitance, np.full(int(output_driven.sum()), options.output_load)])
        # Rounded to float32 and divided in float32, so that cached graphs keep their values.
        scaled = capacitances.astype(np.float32) / np.float32(scales.capacitance)
        edge_attr[:connections, 2] = scaled
        edge_attr[connections:, 2] = scaled

    logger.debug("graph of %s: %d nodes, %d edges, D %.4f ns", netlist.name, node_count,
                 2 * connections, delay_target)
    return Data(
        x=torch.from_numpy(x.astype(np.float32)),
        edge_index=edge_index,
        edge_attr=torch.from_numpy(edge_attr),
        num_nodes=node_count,
        critical_delay=torch.tensor([timing.critical_delay], dtype=torch.float32),
        area=torch.tensor([timing.area], dtype=torch.float32),
        delay_target=torch.tensor([delay_target], dtype=torch.float32),
    )
