"""Static timing analysis of a combinational netlist with NLDM tables.

This is the usual graph-based analysis. Arrival times propagate forward in topological order,
separately for rising and falling transitions. Each arc's delay and output transition come from
bilinear interpolation in its Liberty tables, at the input net's slew and the output net's load.
A net keeps the latest arrival and the worst slew over all arcs that drive it. Required times
propagate backwards from a delay target, and slack is required time minus arrival.

Units: ns and pF, as in :class:`~adaptlab.plugins.graphsym.liberty.model.Library`.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

from ..liberty.model import Cell, Library, Table, drive_strength, interpolation_weight
from ..netlist.model import CONSTANT_NETS, Netlist
from .graph import TimingGraph, build_timing_graph

__all__ = ["InstanceTiming", "NetTiming", "TimingOptions", "TimingReport", "analyze_timing"]

logger = logging.getLogger(__name__)

_NEVER = -math.inf


@dataclass(frozen=True)
class TimingOptions:
    """Boundary conditions of the analysis."""

    input_slew: float = 0.02
    """Transition time of every primary input, ns (arrival is 0)."""
    output_load: float = 0.002
    """Load that each primary output port adds to its net, pF."""
    wire_load_per_fanout: float = 0.0
    """Wire capacitance added per sink pin and per output port of a net, pF."""
    delay_target: float | None = None
    """Required time at every primary output, ns; ``None`` uses the critical-path delay, which
    makes the worst slack zero."""


@dataclass
class NetTiming:
    """Timing of one net: arrivals, slews and required times per transition (ns) and load (pF).

    ``fanout`` counts sink pins plus primary output ports. Level 0 is a primary input or constant.
    """

    name: str
    arrival_rise: float
    arrival_fall: float
    slew_rise: float
    slew_fall: float
    required_rise: float
    required_fall: float
    load: float
    fanout: int
    level: int
    driver: str | None

    @property
    def arrival(self) -> float:
        return max(self.arrival_rise, self.arrival_fall)

    @property
    def slew(self) -> float:
        return max(self.slew_rise, self.slew_fall)

    @property
    def slack(self) -> float:
        """Worst of rise and fall slack; ``inf`` for a net that reaches no primary output."""
        slack = math.inf
        if self.arrival_rise > _NEVER:
            slack = self.required_rise - self.arrival_rise
        if self.arrival_fall > _NEVER:
            slack = min(slack, self.required_fall - self.arrival_fall)
        return slack


@dataclass
class InstanceTiming:
    """Per-instance values for graph features. ``arrival`` and ``slack`` are the worst over the
    instance's output nets, ``delay`` the worst arc delay through it, ``input_capacitance`` the
    sum over its input pins (pF), ``drive_strength`` the cell-name suffix (``X4`` gives 4)."""

    name: str
    cell: str
    area: float
    drive_strength: float | None
    input_capacitance: float
    load: float
    fanout: int
    level: int
    arrival: float
    slack: float
    delay: float


@dataclass
class TimingReport:
    """Result of :func:`analyze_timing`. ``critical_path`` lists instance names from the
    primary input (``critical_start``) to the primary output (``critical_end``)."""

    delay_target: float
    critical_delay: float
    critical_path: list[str]
    critical_start: str | None
    critical_end: str | None
    area: float
    nets: dict[str, NetTiming] = field(default_factory=dict)
    instances: dict[str, InstanceTiming] = field(default_factory=dict)

    @property
    def worst_slack(self) -> float:
        return self.delay_target - self.critical_delay


# One arc prepared for propagation: (related pin, input edges causing an output rise, input edges
# causing an output fall, rise evaluation, fall evaluation).
_ArcPlan = tuple[str, tuple[bool, ...], tuple[bool, ...], "_EdgeTables", "_EdgeTables"]


class _EdgeTables:
    """Delay and transition tables of one output edge of an arc.

    The interpolation weights are shared when both tables use the same indices, which is the
    common case. A missing transition table passes the input slew through.
    """

    __slots__ = ("delay", "transition", "shared")

    def __init__(self, delay: Table | None, transition: Table | None) -> None:
        self.delay = delay
        self.transition = transition
        self.shared = transition is not None and delay is not None and (
            transition.index_1 == delay.index_1 and transition.index_2 == delay.index_2
        )

    def evaluate(self, slew: float, load: float) -> tuple[float, float]:
        """Return the delay and output transition at an input slew and output load."""
        delay_table = self.delay
        i, t = interpolation_weight(delay_table.index_1, slew)
        j, u = interpolation_weight(delay_table.index_2, load)
        delay = delay_table.lookup_at(i, t, j, u)
        if self.shared:
            return delay, self.transition.lookup_at(i, t, j, u)
        if self.transition is None:
            return delay, slew
        return delay, self.transition.lookup(slew, load)


def _sources(sense: str, output_rises: bool) -> tuple[bool, ...]:
    """Input edges (True = rise) that cause the given output edge for a timing sense."""
    if sense == "positive_unate":
        return (output_rises,)
    if sense == "negative_unate":
        return (not output_rises,)
    return (True, False)


def _plan_arcs(cell: Cell, pin_name: str) -> list[_ArcPlan]:
    plans: list[_ArcPlan] = []
    for arc in cell.pins[pin_name].arcs:
        if not arc.is_combinational:
            continue
        rises = () if arc.timing_type == "combinational_fall" or arc.cell_rise is None \
            else _sources(arc.timing_sense, True)
        falls = () if arc.timing_type == "combinational_rise" or arc.cell_fall is None \
            else _sources(arc.timing_sense, False)
        plans.append((arc.related_pin, rises, falls,
                      _EdgeTables(arc.cell_rise, arc.rise_transition),
                      _EdgeTables(arc.cell_fall, arc.fall_transition)))
    return plans


def _net_loads(graph: TimingGraph, options: TimingOptions) -> tuple[list[float], list[int]]:
    loads = [0.0] * len(graph.net_names)
    fanouts = [0] * len(graph.net_names)
    for net, sinks in enumerate(graph.sinks):
        for index, pin in sinks:
            loads[net] += graph.cells[index].pins[pin].capacitance
        fanouts[net] = len(sinks)
    for net in graph.output_nets:
        loads[net] += options.output_load
        fanouts[net] += 1
    if options.wire_load_per_fanout:
        for net, fanout in enumerate(fanouts):
            loads[net] += options.wire_load_per_fanout * fanout
    return loads, fanouts


def analyze_timing(
    netlist: Netlist,
    library: Library,
    options: TimingOptions | None = None,
    graph: TimingGraph | None = None,
) -> TimingReport:
    """Time ``netlist`` against ``library``: arrivals, slews, required times, slack, the
    critical path and total area.

    Raises :class:`~adaptlab.plugins.graphsym.netlist.model.NetlistError` for netlists that
    cannot be timed (see :func:`~.graph.build_timing_graph`). Pass a prebuilt ``graph`` to time
    the same netlist under several options.
    """
    options = options or TimingOptions()
    if graph is None:
        graph = build_timing_graph(netlist, library)
    net_count = len(graph.net_names)
    loads, fanouts = _net_loads(graph, options)

    arrival_rise = [_NEVER] * net_count
    arrival_fall = [_NEVER] * net_count
    slew_rise = [0.0] * net_count
    slew_fall = [0.0] * net_count
    levels = [0] * net_count
    # Predecessor of each (net, edge) on its latest path: (instance, input net, input rises).
    previous_rise: list[tuple[int, int, bool] | None] = [None] * net_count
    previous_fall: list[tuple[int, int, bool] | None] = [None] * net_count
    # NOTE: a constant net is a source with arrival 0 and slew 0 that still launches both edges
    # through its sinks, which is pessimistic, since a tied input never switches.
    for name in CONSTANT_NETS:
        net = graph.net_ids[name]
        arrival_rise[net] = arrival_fall[net] = 0.0
    for net in graph.input_nets:
        arrival_rise[net] = arrival_fall[net] = 0.0
        slew_rise[net] = slew_fall[net] = options.input_slew

    # Every arc edge in topological order, (input net, input rises, output net, output rises,
    # delay), so the backward pass can walk the list in reverse.
    edges: list[tuple[int, bool, int, bool, float]] = []
    instance_delay = [0.0] * len(graph.cells)
    plans: dict[tuple[str, str], list[_ArcPlan]] = {}

    for index in graph.order:
        cell = graph.cells[index]
        input_nets = dict(graph.instance_inputs[index])
        level = 0
        for net in input_nets.values():
            if levels[net] > level:
                level = levels[net]
        level += 1
        worst_delay = 0.0
        for pin_name, out_net in graph.instance_outputs[index]:
            levels[out_net] = level
            key = (cell.name, pin_name)
            arc_plans = plans.get(key)
            if arc_plans is None:
                arc_plans = plans[key] = _plan_arcs(cell, pin_name)
            load = loads[out_net]
            best_rise = best_fall = _NEVER
            worst_slew_rise = worst_slew_fall = 0.0
            for related, rise_sources, fall_sources, rise_tables, fall_tables in arc_plans:
                in_net = input_nets.get(related)
                if in_net is None:
                    continue
                for input_rises in rise_sources:
                    arrival = arrival_rise[in_net] if input_rises else arrival_fall[in_net]
                    if arrival == _NEVER:
                        continue
                    slew = slew_rise[in_net] if input_rises else slew_fall[in_net]
                    delay, transition = rise_tables.evaluate(slew, load)
                    edges.append((in_net, input_rises, out_net, True, delay))
                    if delay > worst_delay:
                        worst_delay = delay
                    if transition > worst_slew_rise:
                        worst_slew_rise = transition
                    if arrival + delay > best_rise:
                        best_rise = arrival + delay
                        previous_rise[out_net] = (index, in_net, input_rises)
                for input_rises in fall_sources:
                    arrival = arrival_rise[in_net] if input_rises else arrival_fall[in_net]
                    if arrival == _NEVER:
                        continue
                    slew = slew_rise[in_net] if input_rises else slew_fall[in_net]
                    delay, transition = fall_tables.evaluate(slew, load)
                    edges.append((in_net, input_rises, out_net, False, delay))
                    if delay > worst_delay:
                        worst_delay = delay
                    if transition > worst_slew_fall:
                        worst_slew_fall = transition
                    if arrival + delay > best_fall:
                        best_fall = arrival + delay
                        previous_fall[out_net] = (index, in_net, input_rises)
            if not arc_plans:
                # A cell without arcs to this pin (a tie cell) drives a constant.
                best_rise = best_fall = 0.0
            arrival_rise[out_net], arrival_fall[out_net] = best_rise, best_fall
            slew_rise[out_net], slew_fall[out_net] = worst_slew_rise, worst_slew_fall
        instance_delay[index] = worst_delay

    critical_delay = 0.0
    critical_net: int | None = None
    critical_rises = True
    for net in graph.output_nets:
        for rises, arrival in ((True, arrival_rise[net]), (False, arrival_fall[net])):
            if critical_net is None or arrival > critical_delay:
                critical_delay, critical_net, critical_rises = arrival, net, rises
    critical_delay = max(critical_delay, 0.0)
    delay_target = options.delay_target if options.delay_target is not None else critical_delay

    required_rise = [math.inf] * net_count
    required_fall = [math.inf] * net_count
    for net in graph.output_nets:
        required_rise[net] = min(required_rise[net], delay_target)
        required_fall[net] = min(required_fall[net], delay_target)
    for in_net, input_rises, out_net, output_rises, delay in reversed(edges):
        required = (required_rise[out_net] if output_rises else required_fall[out_net]) - delay
        if input_rises:
            if required < required_rise[in_net]:
                required_rise[in_net] = required
        elif required < required_fall[in_net]:
            required_fall[in_net] = required

    path: list[str] = []
    start: str | None = None
    net, rises = critical_net, critical_rises
    while net is not None:
        step = previous_rise[net] if rises else previous_fall[net]
        if step is None:
            start = graph.net_names[net]
            break
        index, net, rises = step
        path.append(netlist.instances[index].name)
    path.reverse()

    report = TimingReport(
        delay_target=delay_target,
        critical_delay=critical_delay,
        critical_path=path,
        critical_start=start,
        critical_end=graph.net_names[critical_net] if critical_net is not None else None,
        area=sum(cell.area for cell in graph.cells),
    )
    for net, name in enumerate(graph.net_names):
        driver_index = graph.driver[net]
        if name in CONSTANT_NETS and not fanouts[net]:
            continue
        report.nets[name] = NetTiming(
            name=name,
            arrival_rise=arrival_rise[net],
            arrival_fall=arrival_fall[net],
            slew_rise=slew_rise[net],
            slew_fall=slew_fall[net],
            required_rise=required_rise[net],
            required_fall=required_fall[net],
            load=loads[net],
            fanout=fanouts[net],
            level=levels[net],
            driver=netlist.instances[driver_index].name if driver_index >= 0 else None,
        )
    _add_instances(report, graph, netlist, loads, fanouts, levels, instance_delay)
    logger.debug("timed %s: %d instances, critical delay %.4f ns, area %.3f",
                 netlist.name, len(graph.cells), critical_delay, report.area)
    return report


def _add_instances(report: TimingReport, graph: TimingGraph, netlist: Netlist, loads: list[float],
                   fanouts: list[int], levels: list[int], instance_delay: list[float]) -> None:
    strengths: dict[str, float | None] = {}
    for index, instance in enumerate(netlist.instances):
        cell = graph.cells[index]
        if cell.name not in strengths:
            strengths[cell.name] = drive_strength(cell.name)
        pins = cell.pins
        input_capacitance = 0.0
        for pin, _ in graph.instance_inputs[index]:
            input_capacitance += pins[pin].capacitance
        load = arrival = 0.0
        fanout = level = 0
        slack = math.inf
        for _, net in graph.instance_outputs[index]:
            timing = report.nets[graph.net_names[net]]
            load += loads[net]
            fanout += fanouts[net]
            level = max(level, levels[net])
            arrival = max(arrival, timing.arrival)
            slack = min(slack, timing.slack)
        report.instances[instance.name] = InstanceTiming(
            name=instance.name,
            cell=cell.name,
            area=cell.area,
            drive_strength=strengths[cell.name],
            input_capacitance=input_capacitance,
            load=load,
            fanout=fanout,
            level=level,
            arrival=arrival,
            slack=slack,
            delay=instance_delay[index],
        )
