"""Static timing analysis on hand-built netlists with hand-computed expected values."""

from __future__ import annotations

import time

import pytest

from adaptlab.plugins.graphsym.liberty import generate_library, parse_liberty
from adaptlab.plugins.graphsym.netlist.model import Instance, Netlist, NetlistError
from adaptlab.plugins.graphsym.timing import TimingOptions, analyze_timing, build_timing_graph

SLEWS = (0.01, 0.1, 0.5)
LOADS = (0.001, 0.01, 0.05)


# Linear tables (ns, pF): bilinear interpolation reproduces them exactly, inside the grid and
# when extrapolating, so expected delays can be computed by hand from these formulas.
def cell_rise(slew: float, load: float) -> float:
    return 0.010 + 0.5 * slew + 10 * load


def cell_fall(slew: float, load: float) -> float:
    return 0.008 + 0.4 * slew + 8 * load


def rise_transition(slew: float, load: float) -> float:
    return 0.005 + 0.25 * slew + 20 * load


def fall_transition(slew: float, load: float) -> float:
    return 0.004 + 0.2 * slew + 16 * load


def _table(kind: str, formula) -> str:
    rows = ", ".join('"' + ", ".join(f"{formula(s, c):.6f}" for c in LOADS) + '"' for s in SLEWS)
    return f"{kind} (t3) {{ values ({rows}) ; }}"


def _cell(name: str, inputs: list[str], function: str, sense: str, area: float) -> str:
    pins = "".join(f"pin ({pin}) {{ direction : input ; capacitance : 0.002 ; }}\n" for pin in inputs)
    tables = "\n".join(_table(kind, formula) for kind, formula in (
        ("cell_rise", cell_rise), ("cell_fall", cell_fall),
        ("rise_transition", rise_transition), ("fall_transition", fall_transition)))
    arcs = "".join(
        f'timing () {{ related_pin : "{pin}" ; timing_sense : {sense} ;\n{tables}\n}}\n' for pin in inputs
    )
    return (f"cell ({name}) {{ area : {area} ;\n{pins}"
            f'pin (Y) {{ direction : output ; function : "{function}" ;\n{arcs}}}\n}}\n')


LINEAR_LIBRARY = (
    "library (linear) {\n"
    '  time_unit : "1ns" ;\n'
    "  capacitive_load_unit (1, pf) ;\n"
    "  lu_table_template (t3) {\n"
    "    variable_1 : input_net_transition ;\n"
    "    variable_2 : total_output_net_capacitance ;\n"
    f'    index_1 ("{", ".join(map(str, SLEWS))}") ;\n'
    f'    index_2 ("{", ".join(map(str, LOADS))}") ;\n'
    "  }\n"
    + _cell("INV", ["A"], "!A", "negative_unate", 1.0)
    + _cell("BUF", ["A"], "A", "positive_unate", 2.0)
    + _cell("XOR2", ["A", "B"], "A ^ B", "non_unate", 4.0)
    + _cell("NAND2", ["A", "B"], "!(A & B)", "negative_unate", 1.5)
    + "}\n"
)

OPTIONS = TimingOptions(input_slew=0.02, output_load=0.004)


@pytest.fixture(scope="module")
def library():
    return parse_liberty(LINEAR_LIBRARY, "linear.lib")


def _chain(length: int = 3) -> Netlist:
    nets = ["a"] + [f"n{i}" for i in range(1, length)] + ["y"]
    instances = [Instance(f"u{i + 1}", "INV", {"A": nets[i], "Y": nets[i + 1]}) for i in range(length)]
    return Netlist("chain", inputs=["a"], outputs=["y"], instances=instances)


def test_inverter_chain_by_hand(library) -> None:
    report = analyze_timing(_chain(), library, OPTIONS)
    nets = report.nets
    # n1 and n2 drive one inverter input (0.002 pF); y drives the output port (0.004 pF).
    # Inverters are negative unate: a rising output follows a falling input.
    n1_rise = cell_rise(0.02, 0.002)                      # 0.040, transition 0.050
    n1_fall = cell_fall(0.02, 0.002)                      # 0.032, transition 0.040
    n2_rise = n1_fall + cell_rise(0.040, 0.002)           # 0.082, transition 0.055
    n2_fall = n1_rise + cell_fall(0.050, 0.002)           # 0.084, transition 0.046
    y_rise = n2_fall + cell_rise(0.046, 0.004)            # 0.157
    y_fall = n2_rise + cell_fall(0.055, 0.004)            # 0.144
    assert nets["n1"].arrival_rise == pytest.approx(n1_rise)
    assert nets["n1"].arrival_fall == pytest.approx(n1_fall)
    assert nets["n1"].slew_rise == pytest.approx(0.050)
    assert nets["n1"].slew_fall == pytest.approx(0.040)
    assert nets["n2"].arrival_rise == pytest.approx(n2_rise)
    assert nets["n2"].arrival_fall == pytest.approx(n2_fall)
    assert nets["y"].arrival_rise == pytest.approx(y_rise)
    assert nets["y"].arrival_fall == pytest.approx(y_fall)
    assert nets["y"].slew_rise == pytest.approx(rise_transition(0.046, 0.004))
    assert report.critical_delay == pytest.approx(0.157)
    assert report.critical_path == ["u1", "u2", "u3"]
    assert report.critical_start == "a"
    assert report.critical_end == "y"


def test_positive_unate_keeps_edges(library) -> None:
    netlist = Netlist("inv_buf", inputs=["a"], outputs=["y"], instances=[
        Instance("u1", "INV", {"A": "a", "Y": "n1"}),
        Instance("u2", "BUF", {"A": "n1", "Y": "y"}),
    ])
    nets = analyze_timing(netlist, library, OPTIONS).nets
    # A buffer's rising output follows its rising input (n1 rises at 0.040 with slew 0.050).
    assert nets["y"].arrival_rise == pytest.approx(0.040 + cell_rise(0.050, 0.004))
    assert nets["y"].arrival_fall == pytest.approx(0.032 + cell_fall(0.040, 0.004))


def test_non_unate_takes_both_edges(library) -> None:
    netlist = Netlist("inv_xor", inputs=["a", "b"], outputs=["y"], instances=[
        Instance("u1", "INV", {"A": "a", "Y": "n1"}),
        Instance("u2", "XOR2", {"A": "n1", "B": "b", "Y": "y"}),
    ])
    nets = analyze_timing(netlist, library, OPTIONS).nets
    from_rise = 0.040 + cell_rise(0.050, 0.004)
    from_fall = 0.032 + cell_rise(0.040, 0.004)
    assert from_rise > from_fall
    assert nets["y"].arrival_rise == pytest.approx(from_rise)
    assert nets["y"].arrival_fall == pytest.approx(0.040 + cell_fall(0.050, 0.004))


def test_load_extrapolates_past_table(library) -> None:
    options = TimingOptions(input_slew=0.02, output_load=0.1)
    nets = analyze_timing(_chain(1), library, options).nets
    assert nets["y"].load == pytest.approx(0.1)
    assert nets["y"].arrival_rise == pytest.approx(cell_rise(0.02, 0.1))


def test_wire_load_per_fanout(library) -> None:
    netlist = Netlist("fanout", inputs=["a"], outputs=["y1", "y2"], instances=[
        Instance("u1", "INV", {"A": "a", "Y": "n"}),
        Instance("u2", "INV", {"A": "n", "Y": "y1"}),
        Instance("u3", "INV", {"A": "n", "Y": "y2"}),
    ])
    options = TimingOptions(input_slew=0.02, output_load=0.004, wire_load_per_fanout=0.001)
    report = analyze_timing(netlist, library, options)
    assert report.nets["n"].fanout == 2
    assert report.nets["n"].load == pytest.approx(2 * 0.002 + 2 * 0.001)
    assert report.nets["y1"].load == pytest.approx(0.004 + 0.001)
    assert report.nets["n"].arrival_rise == pytest.approx(cell_rise(0.02, 0.006))


def test_required_and_slack_values(library) -> None:
    report = analyze_timing(_chain(), library, TimingOptions(input_slew=0.02, output_load=0.004,
                                                               delay_target=0.2))
    nets = report.nets
    assert report.delay_target == 0.2
    assert nets["y"].required_rise == pytest.approx(0.2)
    # n2 falling causes y rising (delay 0.073); n2 rising causes y falling (delay 0.062).
    assert nets["n2"].required_fall == pytest.approx(0.2 - 0.073)
    assert nets["n2"].required_rise == pytest.approx(0.2 - 0.062)
    assert nets["n1"].required_rise == pytest.approx(0.127 - 0.044)
    assert nets["n1"].required_fall == pytest.approx(0.138 - 0.050)
    for name in ("a", "n1", "n2", "y"):
        assert nets[name].slack == pytest.approx(0.2 - 0.157)
    assert report.worst_slack == pytest.approx(0.043)
    assert report.instances["u2"].slack == pytest.approx(0.043)


def test_off_critical_branch_slack(library) -> None:
    netlist = Netlist("two_paths", inputs=["a", "b"], outputs=["y1", "y2"], instances=[
        Instance("u1", "INV", {"A": "a", "Y": "n1"}),
        Instance("u2", "INV", {"A": "n1", "Y": "y1"}),
        Instance("u3", "INV", {"A": "b", "Y": "y2"}),
    ])
    report = analyze_timing(netlist, library, OPTIONS)
    y1 = report.nets["y1"]
    y2 = report.nets["y2"]
    assert report.delay_target == pytest.approx(report.critical_delay)
    assert y1.slack == pytest.approx(0.0)
    assert y2.arrival == pytest.approx(cell_rise(0.02, 0.004))
    assert y2.slack == pytest.approx(report.critical_delay - cell_rise(0.02, 0.004))


def test_area_is_sum_of_cells(library) -> None:
    netlist = Netlist("mix", inputs=["a", "b"], outputs=["y"], instances=[
        Instance("u1", "INV", {"A": "a", "Y": "n1"}),
        Instance("u2", "NAND2", {"A": "n1", "B": "b", "Y": "n2"}),
        Instance("u3", "BUF", {"A": "n2", "Y": "n3"}),
        Instance("u4", "XOR2", {"A": "n3", "B": "a", "Y": "y"}),
    ])
    report = analyze_timing(netlist, library, OPTIONS)
    assert report.area == pytest.approx(1.0 + 1.5 + 2.0 + 4.0)
    assert report.instances["u4"].level == 4
    assert report.instances["u2"].input_capacitance == pytest.approx(0.004)
    assert report.nets["a"].fanout == 2
    assert report.nets["a"].level == 0


def test_instance_features_synthetic_library() -> None:
    synthetic = parse_liberty(generate_library())
    netlist = Netlist("drive", inputs=["a"], outputs=["y"], instances=[
        Instance("u1", "INV_X1", {"A": "a", "Y": "n1"}),
        Instance("u2", "BUF_X4", {"A": "n1", "Y": "y"}),
    ])
    report = analyze_timing(netlist, synthetic, OPTIONS)
    buffer = report.instances["u2"]
    assert buffer.drive_strength == 4.0
    assert buffer.cell == "BUF_X4"
    assert report.instances["u1"].load == pytest.approx(synthetic.cell("BUF_X4").pins["A"].capacitance)
    assert report.area == pytest.approx(synthetic.cell("INV_X1").area + synthetic.cell("BUF_X4").area)
    assert report.critical_path == ["u1", "u2"]


def test_constants_and_aliases(library) -> None:
    netlist = Netlist(
        "tied", inputs=["a"], outputs=["y", "z", "k"],
        instances=[Instance("u1", "NAND2", {"A": "a", "B": "$const1", "Y": "n1"})],
        aliases={"y": "n1", "z": "a", "k": "$const0"},
    )
    report = analyze_timing(netlist, library, OPTIONS)
    assert report.nets["$const1"].arrival == 0.0
    assert report.nets["$const0"].fanout == 1
    assert report.nets["n1"].fanout == 1
    assert report.critical_end == "n1"
    assert report.critical_delay == pytest.approx(max(cell_rise(0.02, 0.004), cell_fall(0.02, 0.004)))


# -- malformed netlists -----------------------------------------------------------------------

def test_loop_names_nets(library) -> None:
    netlist = Netlist("loop", inputs=["a"], outputs=["y"], instances=[
        Instance("u1", "NAND2", {"A": "a", "B": "n3", "Y": "n1"}),
        Instance("u2", "INV", {"A": "n1", "Y": "n2"}),
        Instance("u3", "INV", {"A": "n2", "Y": "n3"}),
        Instance("u4", "INV", {"A": "n3", "Y": "y"}),
    ])
    with pytest.raises(NetlistError, match="combinational loop through nets") as caught:
        analyze_timing(netlist, library)
    for net in ("n1", "n2", "n3"):
        assert net in str(caught.value)
    assert "'y'" not in str(caught.value)
    assert ", y" not in str(caught.value)


def test_undriven_net_is_named(library) -> None:
    netlist = Netlist("undriven", inputs=["a"], outputs=["y"], instances=[
        Instance("u1", "NAND2", {"A": "a", "B": "floating", "Y": "y"}),
    ])
    with pytest.raises(NetlistError, match=r"1 net has no driver: floating \(read by instance u1\)"):
        analyze_timing(netlist, library)


def test_undriven_output_port(library) -> None:
    netlist = Netlist("port", inputs=["a"], outputs=["y", "q"], instances=[
        Instance("u1", "INV", {"A": "a", "Y": "y"}),
    ])
    with pytest.raises(NetlistError, match=r"q \(read by a primary output\)"):
        analyze_timing(netlist, library)


def test_multiply_driven_net(library) -> None:
    netlist = Netlist("double", inputs=["a"], outputs=["y"], instances=[
        Instance("u1", "INV", {"A": "a", "Y": "y"}),
        Instance("u2", "INV", {"A": "a", "Y": "y"}),
    ])
    with pytest.raises(NetlistError, match="net 'y' is multiply driven, by instance u1 and by instance u2 pin Y"):
        analyze_timing(netlist, library)
    driving_input = Netlist("input", inputs=["a"], outputs=["a"], instances=[
        Instance("u1", "INV", {"A": "a", "Y": "a"}),
    ])
    with pytest.raises(NetlistError, match="net 'a' is multiply driven, by a primary input"):
        analyze_timing(driving_input, library)


def test_unknown_cell_names_instance(library) -> None:
    netlist = Netlist("unknown", inputs=["a"], outputs=["y"], instances=[
        Instance("u7", "DFF_X1", {"D": "a", "Q": "y"}),
    ])
    with pytest.raises(NetlistError, match="instance 'u7' uses cell 'DFF_X1', which is not in library 'linear'"):
        analyze_timing(netlist, library)


def test_unknown_and_missing_pins(library) -> None:
    wrong_pin = Netlist("pin", inputs=["a"], outputs=["y"], instances=[
        Instance("u1", "INV", {"A": "a", "ZN": "y"}),
    ])
    with pytest.raises(NetlistError, match="instance 'u1' connects pin 'ZN', which cell 'INV' does not have"):
        analyze_timing(wrong_pin, library)
    open_input = Netlist("open", inputs=["a"], outputs=["y"], instances=[
        Instance("u1", "NAND2", {"A": "a", "Y": "y"}),
    ])
    with pytest.raises(NetlistError, match="leaves input pins B unconnected"):
        analyze_timing(open_input, library)


# -- a 32-bit adder on the synthetic library --------------------------------------------------

def kogge_stone_adder(width: int = 32) -> Netlist:
    """Kogge-Stone prefix adder: generate/propagate, log2(width) prefix levels, sum XORs."""
    instances: list[Instance] = []

    def add(cell: str, **pins: str) -> None:
        instances.append(Instance(f"u{len(instances) + 1}", cell, pins))

    generate = {}
    propagate = {}
    for bit in range(width):
        add("AND2_X1", A=f"a[{bit}]", B=f"b[{bit}]", Y=f"g0_{bit}")
        add("XOR2_X1", A=f"a[{bit}]", B=f"b[{bit}]", Y=f"p0_{bit}")
        generate[bit], propagate[bit] = f"g0_{bit}", f"p0_{bit}"
    distance, level = 1, 0
    while distance < width:
        level += 1
        next_generate, next_propagate = dict(generate), dict(propagate)
        for bit in range(distance, width):
            low = bit - distance
            add("AOI21_X1", A1=propagate[bit], A2=generate[low], B=generate[bit], Y=f"gn{level}_{bit}")
            add("INV_X2", A=f"gn{level}_{bit}", Y=f"g{level}_{bit}")
            next_generate[bit] = f"g{level}_{bit}"
            if bit >= 2 * distance:
                add("AND2_X1", A=propagate[bit], B=propagate[low], Y=f"p{level}_{bit}")
                next_propagate[bit] = f"p{level}_{bit}"
        generate, propagate = next_generate, next_propagate
        distance *= 2
    add("BUF_X1", A="p0_0", Y="s[0]")
    for bit in range(1, width):
        add("XOR2_X1", A=f"p0_{bit}", B=generate[bit - 1], Y=f"s[{bit}]")
    inputs = [f"a[{bit}]" for bit in range(width)] + [f"b[{bit}]" for bit in range(width)]
    return Netlist("ks32", inputs=inputs, outputs=[f"s[{bit}]" for bit in range(width)], instances=instances)


def test_adder_times_quickly() -> None:
    synthetic = parse_liberty(generate_library())
    adder = kogge_stone_adder()
    assert 300 <= len(adder.instances) <= 600
    analyze_timing(adder, synthetic)
    durations = []
    for _ in range(5):
        start = time.perf_counter()
        report = analyze_timing(adder, synthetic)
        durations.append(time.perf_counter() - start)
    outputs = [report.nets[f"s[{bit}]"].arrival for bit in range(32)]
    assert report.critical_delay == pytest.approx(max(outputs))
    assert report.critical_end in {f"s[{bit}]" for bit in range(32)}
    assert report.critical_path[-1] == next(
        instance.name for instance in adder.instances if instance.pins["Y"] == report.critical_end)
    assert report.worst_slack == pytest.approx(0.0)
    assert min(report.nets[name].slack for name in report.nets) == pytest.approx(0.0, abs=1e-12)
    # Pure-Python budget with a wide margin for slow CI machines; about 6 ms was measured.
    assert min(durations) < 0.1


def test_graph_reuse_gives_same_result() -> None:
    synthetic = parse_liberty(generate_library())
    adder = kogge_stone_adder(8)
    graph = build_timing_graph(adder, synthetic)
    first = analyze_timing(adder, synthetic, OPTIONS, graph=graph)
    second = analyze_timing(adder, synthetic, TimingOptions(input_slew=0.02, output_load=0.004,
                                                             delay_target=1.0), graph=graph)
    assert first.critical_delay == pytest.approx(second.critical_delay)
    assert second.worst_slack == pytest.approx(1.0 - first.critical_delay)
    assert len(graph.order) == len(adder.instances)
