"""Connectivity of a netlist against a cell library: drivers, sinks and a topological order.

Pin directions come from the library, because the netlist model stores none. Building the graph
rejects malformed netlists with :class:`NetlistError`: an unknown cell or pin, an unconnected
input pin, an undriven or multiply-driven net, or a combinational loop. Loops are found by Kahn's
topological sort, since the instances it cannot order contain at least one cycle.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from ..liberty.model import Cell, Library
from ..netlist.model import CONSTANT_NETS, Netlist, NetlistError

__all__ = ["CONSTANT_DRIVER", "PRIMARY_INPUT_DRIVER", "TimingGraph", "build_timing_graph"]

logger = logging.getLogger(__name__)

# Values of ``TimingGraph.driver`` for nets that no instance drives.
PRIMARY_INPUT_DRIVER = -1
CONSTANT_DRIVER = -2
_UNDRIVEN = -3

_MAX_NAMES_IN_MESSAGE = 5


@dataclass
class TimingGraph:
    """Nets and instances of one netlist, numbered for fast propagation.

    ``driver[n]`` is the index of the instance driving net ``n``, or ``PRIMARY_INPUT_DRIVER`` or
    ``CONSTANT_DRIVER``. ``sinks[n]`` lists ``(instance index, pin name)`` of the input pins on
    net ``n``. ``order`` lists instance indices so that every instance comes after the drivers
    of its inputs. ``output_nets`` are the resolved primary outputs in port order (one net can
    appear twice when two ports share it).
    """

    netlist: Netlist
    library: Library
    net_names: list[str] = field(default_factory=list)
    net_ids: dict[str, int] = field(default_factory=dict)
    cells: list[Cell] = field(default_factory=list)
    instance_inputs: list[list[tuple[str, int]]] = field(default_factory=list)
    instance_outputs: list[list[tuple[str, int]]] = field(default_factory=list)
    driver: list[int] = field(default_factory=list)
    sinks: list[list[tuple[int, str]]] = field(default_factory=list)
    input_nets: list[int] = field(default_factory=list)
    output_nets: list[int] = field(default_factory=list)
    order: list[int] = field(default_factory=list)
    levels: list[int] = field(default_factory=list)
    pin_instance: list[int] = field(default_factory=list)
    pin_position: list[int] = field(default_factory=list)
    pin_net: list[int] = field(default_factory=list)

    def net_id(self, name: str) -> int:
        """Return the number of a net, creating it on first use (names are resolved aliases)."""
        number = self.net_ids.get(name)
        if number is None:
            number = len(self.net_names)
            self.net_ids[name] = number
            self.net_names.append(name)
            self.driver.append(_UNDRIVEN)
            self.sinks.append([])
        return number


def _fail(netlist: Netlist, what: str) -> NetlistError:
    return NetlistError(f"netlist {netlist.name!r}: {what}")


def _short_list(names: list[str]) -> str:
    text = ", ".join(names[:_MAX_NAMES_IN_MESSAGE])
    if len(names) > _MAX_NAMES_IN_MESSAGE:
        text += f" and {len(names) - _MAX_NAMES_IN_MESSAGE} more"
    return text


def _set_driver(graph: TimingGraph, net: int, driver: int, description: str) -> None:
    # Two output pins of one instance on the same net count as two drivers too.
    if graph.driver[net] != _UNDRIVEN:
        previous = graph.driver[net]
        if previous == PRIMARY_INPUT_DRIVER:
            first = "a primary input"
        elif previous == CONSTANT_DRIVER:
            first = "a constant"
        else:
            first = f"instance {graph.netlist.instances[previous].name}"
        raise _fail(graph.netlist, f"net {graph.net_names[net]!r} is multiply driven, by {first} and by {description}")
    graph.driver[net] = driver


def build_timing_graph(netlist: Netlist, library: Library) -> TimingGraph:
    """Connect ``netlist`` with the pin directions of ``library`` and sort it topologically.

    Raises :class:`NetlistError` naming the instance, cell, pin or nets at fault.
    """
    graph = TimingGraph(netlist=netlist, library=library)
    for name, value in CONSTANT_NETS.items():
        graph.driver[graph.net_id(name)] = CONSTANT_DRIVER
    for port in netlist.inputs:
        net = graph.net_id(netlist.resolve(port))
        if graph.driver[net] != PRIMARY_INPUT_DRIVER:
            _set_driver(graph, net, PRIMARY_INPUT_DRIVER, f"primary input {port!r}")
        graph.input_nets.append(net)

    aliases = netlist.aliases
    net_ids = graph.net_ids
    driver = graph.driver
    sinks = graph.sinks
    add_pin_instance = graph.pin_instance.append
    add_pin_position = graph.pin_position.append
    add_pin_net = graph.pin_net.append
    # Per cell: pin positions in Cell.pins order and the number of input pins.
    cell_pins: dict[str, tuple[dict[str, int], int]] = {}
    for index, instance in enumerate(netlist.instances):
        cell = library.cells.get(instance.cell)
        if cell is None:
            raise _fail(
                netlist,
                f"instance {instance.name!r} uses cell {instance.cell!r}, which is not in library "
                f"{library.name!r} ({library.source}); map the design to this library or add the cell",
            )
        if cell.is_sequential:
            raise _fail(
                netlist,
                f"instance {instance.name!r} uses sequential cell {cell.name!r}; the timer handles "
                "combinational netlists only",
            )
        known = cell_pins.get(cell.name)
        if known is None:
            known = cell_pins[cell.name] = (
                {name: position for position, name in enumerate(cell.pins)}, len(cell.input_pins))
        positions, input_count = known
        inputs: list[tuple[str, int]] = []
        outputs: list[tuple[str, int]] = []
        for pin_name, net_name in instance.pins.items():
            pin = cell.pins.get(pin_name)
            if pin is None:
                raise _fail(
                    netlist,
                    f"instance {instance.name!r} connects pin {pin_name!r}, which cell {cell.name!r} "
                    f"does not have (pins: {', '.join(cell.pins)})",
                )
            if net_name in aliases:
                net_name = netlist.resolve(net_name)
            net = net_ids.get(net_name)
            if net is None:
                net = graph.net_id(net_name)
            if pin.direction == "input":
                inputs.append((pin_name, net))
                sinks[net].append((index, pin_name))
            elif pin.direction == "output":
                outputs.append((pin_name, net))
                if driver[net] == _UNDRIVEN:
                    driver[net] = index
                else:
                    _set_driver(graph, net, index, f"instance {instance.name} pin {pin_name}")
            else:
                raise _fail(
                    netlist,
                    f"instance {instance.name!r} connects {pin.direction} pin {pin_name!r} of "
                    f"{cell.name!r}; only input and output pins are supported",
                )
            add_pin_instance(index)
            add_pin_position(positions[pin_name])
            add_pin_net(net)
        if len(inputs) != input_count:
            missing = [pin.name for pin in cell.input_pins if pin.name not in instance.pins]
            raise _fail(
                netlist,
                f"instance {instance.name!r} ({cell.name}) leaves input pins {', '.join(missing)} "
                "unconnected; tie them to $const0 or $const1",
            )
        graph.cells.append(cell)
        graph.instance_inputs.append(inputs)
        graph.instance_outputs.append(outputs)

    for port in netlist.outputs:
        graph.output_nets.append(graph.net_id(netlist.resolve(port)))

    read_by_outputs = set(graph.output_nets)
    undriven = [name for net, name in enumerate(graph.net_names)
                if graph.driver[net] == _UNDRIVEN and (graph.sinks[net] or net in read_by_outputs)]
    if undriven:
        readers = []
        for name in undriven[:_MAX_NAMES_IN_MESSAGE]:
            sinks = graph.sinks[graph.net_ids[name]]
            reader = f"instance {netlist.instances[sinks[0][0]].name}" if sinks else "a primary output"
            readers.append(f"{name} (read by {reader})")
        count = "1 net has" if len(undriven) == 1 else f"{len(undriven)} nets have"
        raise _fail(netlist, f"{count} no driver: {_short_list(readers)}")

    graph.order, graph.levels = _topological_order(graph)
    logger.debug("netlist %s: %d instances, %d nets", netlist.name, len(graph.cells), len(graph.net_names))
    return graph


def _topological_order(graph: TimingGraph) -> tuple[list[int], list[int]]:
    """Sort instances with Kahn's algorithm and level them; raises NetlistError naming nets on a loop.

    Returns the order and each instance's logic level.
    """
    count = len(graph.cells)
    levels = [1] * count
    pending = [0] * count
    for index in range(count):
        pending[index] = sum(1 for _, net in graph.instance_inputs[index] if graph.driver[net] >= 0)
    ready = [index for index in range(count) if pending[index] == 0]
    order: list[int] = []
    while ready:
        index = ready.pop()
        order.append(index)
        sink_level = levels[index] + 1
        for _, net in graph.instance_outputs[index]:
            for sink, _ in graph.sinks[net]:
                if levels[sink] < sink_level:
                    levels[sink] = sink_level
                pending[sink] -= 1
                if pending[sink] == 0:
                    ready.append(sink)
    if len(order) < count:
        raise _fail(graph.netlist, f"combinational loop through nets {_short_list(_find_cycle(graph, pending))}")
    return order, levels


def _find_cycle(graph: TimingGraph, pending: list[int]) -> list[str]:
    """Walk backwards from an unsorted instance through unsorted drivers until a net repeats."""
    index = next(i for i, waiting in enumerate(pending) if waiting > 0)
    seen: dict[int, int] = {}
    path: list[int] = []
    while True:
        net = next(net for _, net in graph.instance_inputs[index]
                   if graph.driver[net] >= 0 and pending[graph.driver[net]] > 0)
        if net in seen:
            cycle = path[seen[net]:]
            return [graph.net_names[n] for n in reversed(cycle)]
        seen[net] = len(path)
        path.append(net)
        index = graph.driver[net]
