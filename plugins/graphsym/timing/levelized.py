"""Levelized static timing with numpy: the analysis of :func:`.sta.analyze_timing`, vectorized.

:func:`~.sta.analyze_timing` is the readable specification. This module computes the same
arrivals, slews, required times and critical path and returns them as arrays, which is what
graph features need, in a fraction of the time.

Every timing-arc edge of the netlist (an input net and transition to an output net and
transition) becomes one row of flat arrays. The load on every net is known before propagation,
so each row's delay and transition tables are interpolated along the load axis up front, which
leaves one column of values along the slew axis per row. Propagation then walks the logic
levels in order and handles all rows of a level with a few numpy calls: interpolate along the
slew axis, add the input arrival, and keep the maximum per output net and transition. Required
times walk the levels backwards. Every floating-point operation is the reference's, in the same
order, so results agree bit for bit (a test compares both on adders and random netlists).

Units: ns and pF, as in :class:`~adaptlab.plugins.graphsym.liberty.model.Library`.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np

from ..netlist.model import CONSTANT_NETS
from .graph import TimingGraph
from .sta import TimingOptions
from .tables import LibraryArrays

__all__ = ["ArcEdges", "LevelizedTiming", "levelized_timing"]

logger = logging.getLogger(__name__)

@dataclass
class ArcEdges:
    """The arc edges of one netlist in propagation order (by level), for the critical path.

    ``source`` and ``sink`` are (net, transition) slots ``2 * net + transition``. ``candidate``
    is the input arrival plus the arc delay (ns). ``valid`` is False where no path arrives at
    the input.
    """

    instance: np.ndarray
    source: np.ndarray
    sink: np.ndarray
    candidate: np.ndarray
    valid: np.ndarray


@dataclass
class LevelizedTiming:
    """Result of :func:`levelized_timing`, in the numbering of the :class:`TimingGraph`.

    Per net (``(nets, 2)`` arrays, column 0 for rise and 1 for fall): ``arrival`` (``-inf``
    where no path arrives), ``slew`` and ``required`` (``inf`` on nets that reach no primary
    output), all in ns. ``load`` (pF), ``fanout`` (sink pins plus output ports) and ``net_level``
    are per net. Per instance: ``instance_delay``, the worst arc delay through it (ns), and
    ``instance_level``, and ``instance_cell``, the position of its cell in ``Library.cells``.
    Per connected pin, in the flat pin order of the graph: ``pin_is_input``
    and ``pin_capacitance`` (pF). ``critical_end`` is the net of the latest primary output, and
    ``critical_slot`` its (net, transition) slot.
    """

    graph: TimingGraph
    arrival: np.ndarray
    slew: np.ndarray
    required: np.ndarray
    load: np.ndarray
    fanout: np.ndarray
    net_level: np.ndarray
    instance_delay: np.ndarray
    instance_level: np.ndarray
    instance_cell: np.ndarray
    pin_is_input: np.ndarray
    pin_capacitance: np.ndarray
    delay_target: float
    critical_delay: float
    critical_slot: int | None
    area: float
    edges: ArcEdges

    @property
    def critical_end(self) -> int | None:
        return None if self.critical_slot is None else self.critical_slot // 2

    def net_slack(self) -> np.ndarray:
        """Worst of rise and fall slack per net (ns); ``inf`` where no path arrives."""
        reached = self.arrival > -math.inf
        slack = np.where(reached, self.required - self.arrival, math.inf)
        return slack.min(axis=1)

    def critical_path(self) -> tuple[list[int], int | None]:
        """Return the instances on the critical path, from its start to ``critical_end``, and
        the net where it starts (``None`` without primary outputs), as the reference reports.

        The reference keeps, per net and transition, the first arc edge that strictly raised
        the running maximum: the first edge in evaluation order whose candidate equals the final
        arrival.
        """
        edges = self.edges
        arrival = self.arrival.ravel()
        path: list[int] = []
        slot = self.critical_slot
        while slot is not None:
            target = arrival[slot]
            matches = np.flatnonzero((edges.sink == slot) & edges.valid & (edges.candidate == target))
            if len(matches) == 0 or target == -math.inf:
                return path[::-1], slot // 2
            chosen = int(matches[0])
            path.append(int(edges.instance[chosen]))
            slot = int(edges.source[chosen])
        return path[::-1], None


def levelized_timing(graph: TimingGraph, options: TimingOptions | None = None) -> LevelizedTiming:
    """Time the netlist of ``graph`` against its library, like :func:`~.sta.analyze_timing`.

    ``graph`` comes from :func:`~.graph.build_timing_graph`, which has already rejected netlists
    that cannot be timed.
    """
    options = options or TimingOptions()
    arrays = graph.library.derive("levelized_timing", LibraryArrays)
    net_count = len(graph.net_names)
    instance_count = len(graph.cells)

    # Pins, instance by instance in netlist pin order, which is also the order of graph.sinks.
    cells = arrays.cells
    cell_rows = np.array([cells[cell.name].index for cell in graph.cells], dtype=np.int64)
    pin_instance = np.array(graph.pin_instance, dtype=np.int64)
    pin_position = np.array(graph.pin_position, dtype=np.int64)
    pin_net = np.array(graph.pin_net, dtype=np.int64)
    pin_cell = cell_rows[pin_instance]
    is_input = arrays.pin_is_input[pin_cell, pin_position]
    is_output = ~is_input
    capacitance = arrays.pin_capacitance[pin_cell, pin_position]
    sink_nets = pin_net[is_input]
    output_nets = np.array(graph.output_nets, dtype=np.int64)
    load = np.bincount(sink_nets, weights=capacitance[is_input], minlength=net_count).astype(np.float64)
    fanout = np.bincount(sink_nets, minlength=net_count)
    np.add.at(load, output_nets, options.output_load)
    np.add.at(fanout, output_nets, 1)
    if options.wire_load_per_fanout:
        load += options.wire_load_per_fanout * fanout

    instance_level = np.array(graph.levels, dtype=np.int64)
    net_level = np.zeros(net_count, dtype=np.int64)
    net_level[pin_net[is_output]] = instance_level[pin_instance[is_output]]
    tie_nets = pin_net[arrays.pin_is_tie[pin_cell, pin_position]]

    # Arc edges of every instance: instance-major, then the cell's arc-edge order.
    pin_nets = np.full((instance_count, arrays.max_pins), -1, dtype=np.int64)
    pin_nets[pin_instance, pin_position] = pin_net
    rows = np.arange(instance_count)[:, None]
    source_net = pin_nets[rows, arrays.arc_related[cell_rows]]
    sink_net = pin_nets[rows, arrays.arc_output[cell_rows]]
    keep = arrays.arc_valid[cell_rows] & (sink_net >= 0)
    edge_instance = np.broadcast_to(rows, keep.shape)[keep]
    source = source_net[keep] * 2 + arrays.arc_input_edge[cell_rows][keep]
    sink = sink_net[keep] * 2 + arrays.arc_output_edge[cell_rows][keep]
    delay_table = arrays.arc_delay_table[cell_rows][keep]
    transition_table = arrays.arc_transition_table[cell_rows][keep]

    # Sort the arc edges by level, keeping each instance's edges together and in order.
    edge_level = instance_level[edge_instance]
    order = np.argsort(edge_level, kind="stable")
    edge_instance, source, sink = edge_instance[order], source[order], sink[order]
    delay_table, transition_table = delay_table[order], transition_table[order]
    level_count = int(instance_level.max()) if instance_count else 0
    bounds = np.searchsorted(edge_level[order], np.arange(1, level_count + 2))

    # Interpolate every table along the load axis, which leaves one column per slew index.
    # Rows 2e and 2e + 1 are the delay and transition lookups of arc edge e.
    missing_transition = transition_table < 0
    tables = np.stack([delay_table, np.where(missing_transition, 0, transition_table)], axis=1).ravel()
    j, u = arrays.load_axis.locate(np.repeat(load[sink // 2], 2), tables)
    width_1, width_2 = arrays.values.shape[1:]
    flat_values = arrays.values.ravel()
    value_j = flat_values[(tables * (width_1 * width_2) + j)[:, None] + np.arange(width_1) * width_2]
    value_j1 = flat_values[(tables * (width_1 * width_2) + j + 1)[:, None] + np.arange(width_1) * width_2]
    flat_columns = (value_j + u[:, None] * (value_j1 - value_j)).ravel()
    row_base = np.arange(len(tables)) * width_1

    arrival = np.full(2 * net_count, -math.inf)
    slew = np.zeros(2 * net_count)
    for name in CONSTANT_NETS:
        net = graph.net_ids[name]
        arrival[2 * net:2 * net + 2] = 0.0
    inputs = np.array(graph.input_nets, dtype=np.int64)
    arrival[2 * inputs] = arrival[2 * inputs + 1] = 0.0
    slew[2 * inputs] = slew[2 * inputs + 1] = options.input_slew
    arrival[2 * tie_nets] = arrival[2 * tie_nets + 1] = 0.0

    # A slot with no arc edge into it keeps arrival -inf and can pass -inf on. Only then do rows
    # need masking, because inputs at -inf take no part in slews, delays or required times.
    filled = np.zeros(2 * net_count, dtype=bool)
    filled[sink] = True
    filled[2 * inputs] = filled[2 * inputs + 1] = True
    for name in CONSTANT_NETS:
        filled[2 * graph.net_ids[name]:2 * graph.net_ids[name] + 2] = True
    filled[2 * tie_nets] = filled[2 * tie_nets + 1] = True
    masked = not filled[source].all() if len(source) else False

    edge_count = len(source)
    delay = np.empty(edge_count)
    candidate = np.empty(edge_count)
    valid = np.ones(edge_count, dtype=bool)
    any_missing = bool(missing_transition.any())
    for level in range(level_count):
        start, stop = int(bounds[level]), int(bounds[level + 1])
        if start == stop:
            continue
        level_source = source[start:stop]
        level_sink = sink[start:stop]
        input_slew = slew[level_source]
        lookups = slice(2 * start, 2 * stop)
        i, t = arrays.slew_axis.locate(np.repeat(input_slew, 2), tables[lookups])
        position = row_base[lookups] + i
        low = flat_columns[position]
        value = low + t * (flat_columns[position + 1] - low)
        level_delay = value[0::2]
        transition = value[1::2]
        if any_missing:
            transition = np.where(missing_transition[start:stop], input_slew, transition)
        input_arrival = arrival[level_source]
        level_candidate = input_arrival + level_delay
        if masked:
            reached = input_arrival > -math.inf
            valid[start:stop] = reached
            transition = np.where(reached, transition, 0.0)
        np.maximum.at(arrival, level_sink, level_candidate)
        np.maximum.at(slew, level_sink, transition)
        delay[start:stop] = level_delay
        candidate[start:stop] = level_candidate

    instance_delay = np.zeros(instance_count)
    np.maximum.at(instance_delay, edge_instance, np.where(valid, delay, 0.0) if masked else delay)

    # Critical output: the first (port order, rise before fall) of the latest arrivals.
    critical_delay = 0.0
    critical_slot: int | None = None
    if len(output_nets):
        output_slots = np.stack([2 * output_nets, 2 * output_nets + 1], axis=1).ravel()
        best = int(np.argmax(arrival[output_slots]))
        critical_slot = int(output_slots[best])
        critical_delay = float(arrival[critical_slot])
    critical_delay = max(critical_delay, 0.0)
    delay_target = options.delay_target if options.delay_target is not None else critical_delay

    required = np.full(2 * net_count, math.inf)
    required[2 * output_nets] = required[2 * output_nets + 1] = delay_target
    for level in reversed(range(level_count)):
        start, stop = int(bounds[level]), int(bounds[level + 1])
        if start == stop:
            continue
        level_required = required[sink[start:stop]] - delay[start:stop]
        if masked:
            level_required = np.where(valid[start:stop], level_required, math.inf)
        np.minimum.at(required, source[start:stop], level_required)

    # cumsum adds left to right like the reference's sum(); np.sum would add pairwise.
    area = float(np.cumsum(arrays.cell_area[cell_rows])[-1]) if instance_count else 0
    logger.debug("levelized timing of %s: %d instances, %d levels, %d arc edges", graph.netlist.name,
                 instance_count, level_count, edge_count)
    return LevelizedTiming(
        graph=graph,
        arrival=arrival.reshape(net_count, 2),
        slew=slew.reshape(net_count, 2),
        required=required.reshape(net_count, 2),
        load=load,
        fanout=fanout,
        net_level=net_level,
        instance_delay=instance_delay,
        instance_level=instance_level,
        instance_cell=cell_rows,
        pin_is_input=is_input,
        pin_capacitance=capacitance,
        delay_target=delay_target,
        critical_delay=critical_delay,
        critical_slot=critical_slot,
        area=area,
        edges=ArcEdges(edge_instance, source, sink, candidate, valid),
    )
