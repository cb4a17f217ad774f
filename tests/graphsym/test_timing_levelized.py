"""The levelized numpy timer against the reference timer: equal bit for bit on every value."""

from __future__ import annotations

import math
import random

import pytest

from adaptlab.plugins.graphsym.designs import TOPOLOGIES, build_prefix_graph, prefix_adder, random_prefix_graph
from adaptlab.plugins.graphsym.liberty import generate_library, parse_liberty
from adaptlab.plugins.graphsym.netlist.model import CONSTANT_NETS, Instance, Netlist
from adaptlab.plugins.graphsym.timing import TimingOptions, analyze_timing, build_timing_graph, levelized_timing
from adaptlab.plugins.graphsym.timing.tables import LibraryArrays

GATE_CELLS = {"and": "AND2_X1", "or": "OR2_X1", "xor": "XOR2_X1", "not": "INV_X1", "buf": "BUF_X1"}

# Two table grids (so the per-table index path runs), an arc with rise tables only, an arc
# without transition tables (the input slew passes through) and a tie cell without arcs.
_TABLES = """
cell_rise ({t}) {{ values ("0.02, 0.05, 0.1", "0.03, 0.06, 0.12", "0.05, 0.09, 0.16") ; }}
cell_fall ({t}) {{ values ("0.015, 0.04, 0.09", "0.025, 0.05, 0.11", "0.04, 0.08, 0.15") ; }}
"""
_TRANSITIONS = """
rise_transition ({t}) {{ values ("0.01, 0.04, 0.1", "0.03, 0.06, 0.12", "0.08, 0.1, 0.2") ; }}
fall_transition ({t}) {{ values ("0.01, 0.03, 0.09", "0.02, 0.05, 0.11", "0.07, 0.09, 0.18") ; }}
"""
EDGE_CASE_LIBRARY = f"""
library (edge_cases) {{
  time_unit : "1ns" ;
  capacitive_load_unit (1, pf) ;
  lu_table_template (coarse) {{
    variable_1 : input_net_transition ; variable_2 : total_output_net_capacitance ;
    index_1 ("0.01, 0.1, 0.5") ; index_2 ("0.001, 0.01, 0.05") ;
  }}
  lu_table_template (fine) {{
    variable_1 : total_output_net_capacitance ; variable_2 : input_net_transition ;
    index_1 ("0.002, 0.02, 0.08") ; index_2 ("0.005, 0.05, 0.2") ;
  }}
  cell (INV) {{ area : 1 ;
    pin (A) {{ direction : input ; capacitance : 0.002 ; }}
    pin (Y) {{ direction : output ; function : "!A" ;
      timing () {{ related_pin : "A" ; timing_sense : negative_unate ;
        {_TABLES.format(t="coarse")} {_TRANSITIONS.format(t="coarse")} }} }} }}
  cell (XOR2) {{ area : 3 ;
    pin (A) {{ direction : input ; capacitance : 0.003 ; }}
    pin (B) {{ direction : input ; capacitance : 0.004 ; }}
    pin (Y) {{ direction : output ; function : "A ^ B" ;
      timing () {{ related_pin : "A" ; timing_sense : non_unate ;
        {_TABLES.format(t="fine")} {_TRANSITIONS.format(t="fine")} }}
      timing () {{ related_pin : "B" ; timing_sense : non_unate ;
        {_TABLES.format(t="coarse")} {_TRANSITIONS.format(t="coarse")} }} }} }}
  cell (RISEONLY) {{ area : 2 ;
    pin (A) {{ direction : input ; capacitance : 0.001 ; }}
    pin (Y) {{ direction : output ; function : "A" ;
      timing () {{ related_pin : "A" ; timing_sense : positive_unate ; timing_type : combinational_rise ;
        cell_rise (coarse) {{ values ("0.02, 0.05, 0.1", "0.03, 0.06, 0.12", "0.05, 0.09, 0.16") ; }}
        rise_transition (coarse) {{ values ("0.01, 0.04, 0.1", "0.03, 0.06, 0.12", "0.08, 0.1, 0.2") ; }}
      }} }} }}
  cell (NOSLEW) {{ area : 1.5 ;
    pin (A) {{ direction : input ; capacitance : 0.002 ; }}
    pin (Y) {{ direction : output ; function : "A" ;
      timing () {{ related_pin : "A" ; timing_sense : positive_unate ; {_TABLES.format(t="fine")} }} }} }}
  cell (TIEHI) {{ area : 0.5 ;
    pin (Y) {{ direction : output ; function : "1" ; }} }}
}}
"""

OPTIONS = [
    TimingOptions(),
    TimingOptions(input_slew=0.3, output_load=0.02, wire_load_per_fanout=0.0007, delay_target=0.4),
]


@pytest.fixture(scope="module")
def synthetic():
    return parse_liberty(generate_library())


@pytest.fixture(scope="module")
def edge_cases():
    return parse_liberty(EDGE_CASE_LIBRARY, "edge_cases.lib")


def adder_netlist(design) -> Netlist:
    """Map an adder's gates one to one onto X1 cells of the synthetic library."""
    instances = []
    for index, gate in enumerate(design.gates):
        pins = dict(zip(("A", "B"), gate.inputs))
        pins["Y"] = gate.output
        instances.append(Instance(f"g{index}", GATE_CELLS[gate.op], pins))
    inputs = [f"{port}[{bit}]" for port, width in design.inputs.items() for bit in range(width)]
    outputs = [f"sum[{bit}]" for bit in range(design.outputs["sum"])] + ["cout"]
    return Netlist(design.name, inputs=inputs, outputs=outputs, instances=instances)


def random_netlist(library, seed: int, size: int = 120, cells: list[str] | None = None) -> Netlist:
    """A random DAG of library cells with fanout, constants, aliases and repeated outputs."""
    rng = random.Random(seed)
    names = cells or sorted(library.cells)
    inputs = [f"i{k}" for k in range(8)]
    nets = list(inputs) + ["$const0", "$const1"]
    instances = []
    for index in range(size):
        cell = library.cells[rng.choice(names)]
        pins = {pin.name: rng.choice(nets[-30:] if rng.random() < 0.8 else nets) for pin in cell.input_pins}
        for pin in cell.output_pins:
            pins[pin.name] = f"n{index}_{pin.name}"
            nets.append(pins[pin.name])
        instances.append(Instance(f"u{index}", cell.name, pins))
    driven = nets[len(inputs) + 2:]
    outputs = rng.sample(driven, 10) + [driven[-1], "o_alias", "o_input"]
    aliases = {"o_alias": driven[-1], "o_input": inputs[0]}
    return Netlist(f"random{seed}", inputs=inputs, outputs=outputs, instances=instances, aliases=aliases)


def assert_same_timing(netlist: Netlist, library, options: TimingOptions) -> None:
    graph = build_timing_graph(netlist, library)
    reference = analyze_timing(netlist, library, options, graph=graph)
    fast = levelized_timing(graph, options)
    slack = fast.net_slack()
    for net, name in enumerate(graph.net_names):
        if name in CONSTANT_NETS and not fast.fanout[net]:
            continue
        expected = reference.nets[name]
        assert fast.arrival[net, 0] == expected.arrival_rise, name
        assert fast.arrival[net, 1] == expected.arrival_fall, name
        assert fast.slew[net, 0] == expected.slew_rise, name
        assert fast.slew[net, 1] == expected.slew_fall, name
        assert fast.required[net, 0] == expected.required_rise, name
        assert fast.required[net, 1] == expected.required_fall, name
        assert fast.load[net] == expected.load, name
        assert fast.fanout[net] == expected.fanout, name
        assert fast.net_level[net] == expected.level, name
        assert slack[net] == expected.slack or (math.isinf(slack[net]) and math.isinf(expected.slack)), name
    for index, instance in enumerate(netlist.instances):
        assert fast.instance_delay[index] == reference.instances[instance.name].delay, instance.name
    path, start = fast.critical_path()
    assert [netlist.instances[index].name for index in path] == reference.critical_path
    assert (graph.net_names[start] if start is not None else None) == reference.critical_start
    assert graph.net_names[fast.critical_end] == reference.critical_end
    assert fast.critical_delay == reference.critical_delay
    assert fast.delay_target == reference.delay_target
    assert fast.area == reference.area


@pytest.mark.parametrize("topology", sorted(TOPOLOGIES))
def test_classic_adders_match_reference(synthetic, topology: str) -> None:
    netlist = adder_netlist(prefix_adder(build_prefix_graph(topology, 16), check_vectors=16))
    for options in OPTIONS:
        assert_same_timing(netlist, synthetic, options)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_adders_match_reference(synthetic, seed: int) -> None:
    graph = random_prefix_graph(16, random.Random(seed), density=0.5)
    netlist = adder_netlist(prefix_adder(graph, f"random{seed}", check_vectors=16))
    for options in OPTIONS:
        assert_same_timing(netlist, synthetic, options)


@pytest.mark.parametrize("seed", [11, 12, 13, 14])
def test_random_netlists_match_reference(synthetic, seed: int) -> None:
    netlist = random_netlist(synthetic, seed)
    for options in OPTIONS:
        assert_same_timing(netlist, synthetic, options)


@pytest.mark.parametrize("seed", [21, 22, 23])
def test_edge_case_cells_match_reference(edge_cases, seed: int) -> None:
    # RISEONLY leaves falling arrivals at -inf, which then flow through other cells.
    netlist = random_netlist(edge_cases, seed, size=60)
    assert "RISEONLY" in netlist.cell_counts()
    arrays = edge_cases.derive("levelized_timing", LibraryArrays)
    assert arrays.slew_axis.single is None
    assert arrays.load_axis.single is None
    for options in OPTIONS:
        assert_same_timing(netlist, edge_cases, options)


def test_unreached_fall_masks_rows(edge_cases) -> None:
    netlist = Netlist("rise_only", inputs=["a"], outputs=["y"], instances=[
        Instance("u1", "RISEONLY", {"A": "a", "Y": "n1"}),
        Instance("u2", "INV", {"A": "n1", "Y": "y"}),
    ])
    graph = build_timing_graph(netlist, edge_cases)
    fast = levelized_timing(graph, TimingOptions())
    n1, y = graph.net_ids["n1"], graph.net_ids["y"]
    assert fast.arrival[n1, 1] == -math.inf
    assert fast.arrival[y, 0] == -math.inf  # an inverter's rise needs a falling input
    assert fast.arrival[y, 1] > 0
    assert_same_timing(netlist, edge_cases, TimingOptions())


def test_tie_cell_is_a_source(edge_cases) -> None:
    netlist = Netlist("tie", inputs=["a"], outputs=["y"], instances=[
        Instance("t1", "TIEHI", {"Y": "one"}),
        Instance("u1", "XOR2", {"A": "a", "B": "one", "Y": "y"}),
    ])
    graph = build_timing_graph(netlist, edge_cases)
    fast = levelized_timing(graph, TimingOptions())
    assert fast.arrival[graph.net_ids["one"]].tolist() == [0.0, 0.0]
    assert fast.instance_level.tolist() == [1, 2]
    assert_same_timing(netlist, edge_cases, TimingOptions())


def test_empty_netlist(synthetic) -> None:
    netlist = Netlist("wires", inputs=["a"], outputs=["y"], aliases={"y": "a"})
    fast = levelized_timing(build_timing_graph(netlist, synthetic), TimingOptions())
    assert fast.critical_delay == 0.0
    assert fast.area == 0
    assert fast.critical_path() == ([], fast.graph.net_ids["a"])
