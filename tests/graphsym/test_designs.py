"""Tests of the graphsym design generators: prefix graphs, adders, other circuits, simulation."""

from __future__ import annotations

import dataclasses
import math
import random
import re

import pytest

from adaptlab.plugins.graphsym.designs import (
    TOPOLOGIES,
    Design,
    DesignError,
    Gate,
    PrefixGraph,
    PrefixGraphError,
    array_multiplier,
    build_prefix_graph,
    check_adder,
    check_design,
    design_key,
    legalize,
    prefix_adder,
    prefix_comparator,
    random_prefix_graph,
    simulate,
)
from adaptlab.plugins.graphsym.designs.simulate import adder_corner_vectors

WIDTHS = (8, 16, 32, 64, 128)


def lower_parents_missing(n: int, nodes: frozenset[tuple[int, int]]) -> list[tuple[int, int]]:
    """Check legality independently of PrefixGraph: scan each row for the nearest upper parent."""
    rows: dict[int, list[int]] = {}
    for i, j in nodes:
        rows.setdefault(i, []).append(j)
    missing = []
    for i, j in sorted(nodes):
        if i == j:
            continue
        k = min(k for k in rows[i] if k > j)
        if (k - 1, j) not in nodes:
            missing.append((i, j))
    return missing


@pytest.mark.parametrize("n", WIDTHS)
@pytest.mark.parametrize("topology", sorted(TOPOLOGIES))
def test_topology_graphs_are_legal(topology, n):
    graph = build_prefix_graph(topology, n)
    assert graph.n == n
    assert graph.topology == topology
    assert all((i, i) in graph.nodes and (i, 0) in graph.nodes for i in range(n))
    assert all(0 <= j <= i < n for i, j in graph.nodes)
    assert lower_parents_missing(n, graph.nodes) == []
    # A legal graph is a fixed point of legalization.
    assert legalize(n, graph.nodes).nodes == graph.nodes


# Values for n = 8, counted by hand from the constructions:
# ripple: (i, 0) for i = 1..7 in a chain.
# Sklansky: 4 nodes at each of the log2(8) = 3 levels.
# Kogge-Stone: 7 + 6 + 4 nodes at levels 1, 2, 3 (n log2 n - n + 1 = 17).
# Brent-Kung: up-sweep 4 + 2 + 1, down-sweep (2,0), (4,0), (5,0), (6,0); (6, 0) sits at level 4.
# Han-Carlson: 4 pair nodes, 3 + 2 Kogge-Stone nodes on odd bits, 3 even outputs.
# Ladner-Fischer: 4 pair nodes, 2 + 2 Sklansky nodes on odd bits, 3 even outputs.
KNOWN_N8 = {
    "ripple": (7, 7),
    "sklansky": (12, 3),
    "kogge_stone": (17, 3),
    "brent_kung": (11, 4),
    "han_carlson": (12, 4),
    "ladner_fischer": (11, 4),
}


@pytest.mark.parametrize("topology", sorted(KNOWN_N8))
def test_known_sizes_depths_n8(topology):
    graph = build_prefix_graph(topology, 8)
    size, depth = KNOWN_N8[topology]
    assert graph.size == size
    assert graph.depth == depth


@pytest.mark.parametrize("n", WIDTHS)
def test_size_depth_formulas_powers_of_two(n):
    log_n = int(math.log2(n))
    expected = {
        "ripple": (n - 1, n - 1),
        "sklansky": (n // 2 * log_n, log_n),
        "kogge_stone": (n * log_n - n + 1, log_n),
        "brent_kung": (2 * n - 2 - log_n, 2 * log_n - 2),
        "han_carlson": (n // 2 * log_n, log_n + 1),
        # n/2 pair nodes, Sklansky on n/2 odd bits, n/2 - 1 even outputs.
        "ladner_fischer": (n - 1 + n // 4 * (log_n - 1), log_n + 1),
    }
    for topology, (size, depth) in expected.items():
        graph = build_prefix_graph(topology, n)
        assert graph.size == size, topology
        assert graph.depth == depth, topology


@pytest.mark.parametrize("n", (8, 32, 128))
def test_max_fanout_known_values(n):
    assert build_prefix_graph("ripple", n).max_fanout == 1
    # Sklansky: (n/2 - 1, 0) feeds every output of the upper half.
    assert build_prefix_graph("sklansky", n).max_fanout == n // 2
    # Kogge-Stone: (0, 0) is the lower parent of (1, 0), (2, 0), (4, 0), ...
    kogge_stone = build_prefix_graph("kogge_stone", n)
    assert kogge_stone.max_fanout == int(math.log2(n))
    assert kogge_stone.fanouts[(0, 0)] == int(math.log2(n))


def test_parents_follow_nearest_rule():
    graph = build_prefix_graph("kogge_stone", 8)
    assert graph.parents((7, 0)) == ((7, 4), (3, 0))
    assert graph.parents((7, 4)) == ((7, 6), (5, 4))
    assert graph.parents((2, 0)) == ((2, 1), (0, 0))
    assert graph.levels[(7, 0)] == 3
    with pytest.raises(PrefixGraphError, match="no parents"):
        graph.parents((3, 3))


def test_legalize_adds_missing_parents():
    graph = legalize(8, [(7, 4)])
    inner = {node for node in graph.nodes if node[0] != node[1]}
    outputs = {(i, 0) for i in range(1, 8)}
    # (7, 4) needs (6, 4), which needs (5, 4), whose lower parent (4, 4) is an input.
    assert inner == outputs | {(7, 4), (6, 4), (5, 4)}
    assert graph.size == 10
    assert graph.parents((7, 0)) == ((7, 4), (3, 0))


def test_illegal_graph_names_parent():
    nodes = {(i, i) for i in range(8)} | {(i, 0) for i in range(8)} | {(7, 4)}
    with pytest.raises(PrefixGraphError, match=r"node \(7, 4\) needs lower parent \(6, 4\)"):
        PrefixGraph(8, frozenset(nodes))
    with pytest.raises(PrefixGraphError, match=r"missing input/output node \(1, 0\)"):
        PrefixGraph(8, frozenset({(i, i) for i in range(8)}))
    with pytest.raises(PrefixGraphError, match="out of range"):
        legalize(8, [(3, 5)])
    with pytest.raises(PrefixGraphError, match="expected one of"):
        build_prefix_graph("carry_lookahead", 8)
    with pytest.raises(PrefixGraphError, match="n=1"):
        build_prefix_graph("ripple", 1)


@pytest.mark.parametrize("n", WIDTHS)
def test_random_graphs_legal_deterministic(n):
    for seed, density in ((0, 0.02), (1, 0.1), (2, 0.5)):
        graph = random_prefix_graph(n, random.Random(seed), density)
        again = random_prefix_graph(n, random.Random(seed), density)
        assert graph.nodes == again.nodes
        assert graph.topology == "random"
        assert lower_parents_missing(n, graph.nodes) == []
        assert graph.size >= n - 1
    first = random_prefix_graph(n, random.Random(0), 0.1)
    second = random_prefix_graph(n, random.Random(1), 0.1)
    assert first.nodes != second.nodes


def test_random_graph_density_extremes():
    assert (
        random_prefix_graph(16, random.Random(0), 0.0).nodes
        == build_prefix_graph("ripple", 16).nodes
    )
    full = random_prefix_graph(16, random.Random(0), 1.0)
    assert full.size == 16 * 15 // 2
    with pytest.raises(PrefixGraphError, match="density"):
        random_prefix_graph(16, random.Random(0), 1.5)
    with pytest.raises(TypeError, match="random.Random"):
        random_prefix_graph(16, 0, 0.1)


@pytest.mark.parametrize("n", (8, 32))
@pytest.mark.parametrize("topology", sorted(TOPOLOGIES))
def test_topology_adders_pass_simulation(topology, n):
    design = prefix_adder(build_prefix_graph(topology, n))
    assert design.name == f"adder_{topology}_{n}"
    assert design.inputs == {"a": n, "b": n}
    assert design.outputs == {"sum": n, "cout": 1}
    assert check_adder(design, vectors=500, seed=3) == len(adder_corner_vectors(n)) + 500
    # The design's own reference agrees with integer addition.
    assert design.reference({"a": (1 << n) - 1, "b": 1}) == {"sum": 0, "cout": 1}


def test_adder_simulation_known_sums():
    design = prefix_adder(build_prefix_graph("brent_kung", 8))
    pairs = [(200, 100), (255, 255), (0, 0), (17, 38)]
    inputs = {}
    for bit in range(8):
        for port, index in (("a", 0), ("b", 1)):
            inputs[f"{port}[{bit}]"] = sum(
                ((pair[index] >> bit) & 1) << v for v, pair in enumerate(pairs)
            )
    values = simulate(design.gates, inputs, len(pairs))
    for v, (a, b) in enumerate(pairs):
        total = sum(((values[f"sum[{bit}]"] >> v) & 1) << bit for bit in range(8))
        total += ((values["cout"] >> v) & 1) << 8
        assert total == a + b


@pytest.mark.parametrize("n", (8, 64, 128))
def test_random_graph_adders_pass(n):
    graph = random_prefix_graph(n, random.Random(n), 0.05)
    design = prefix_adder(graph, name=f"adder_random_{n}")
    assert design.settings["topology"] == "random"
    assert len(design.settings["nodes"]) == graph.size


MUTATED_OP = {"and": "or", "or": "and", "xor": "and", "not": "buf", "buf": "not"}


def _replace_gate(design: Design, output: str, op: str | None = None) -> Design:
    """Return a copy of the design with the operator of one gate changed."""
    original = next(gate for gate in design.gates if gate.output == output)
    op = op or MUTATED_OP[original.op]
    gates = tuple(
        dataclasses.replace(gate, op=op) if gate.output == output else gate for gate in design.gates
    )
    assert gates != design.gates
    return dataclasses.replace(design, gates=gates)


def test_broken_adder_caught_clearly():
    design = prefix_adder(build_prefix_graph("sklansky", 8))
    broken = _replace_gate(design, "sum[3]", "and")
    with pytest.raises(DesignError) as caught:
        check_adder(broken)
    message = str(caught.value)
    assert "adder_sklansky_8" in message
    # Vector 0 is 0 + 0, where AND and XOR agree; vector 1 is 0xff + 0x01.
    assert "vector 1 of" in message
    assert "inputs a=0xff, b=0x01" in message
    assert "expected sum=0x00, cout=0x1" in message
    assert "got sum=0x08, cout=0x1" in message
    assert "first wrong bit: sum[3]" in message


def test_broken_carry_gate_caught():
    design = prefix_adder(build_prefix_graph("kogge_stone", 16))
    # G_7_0 = G_7_4 | t_7_0 turned into an AND loses carries generated in bits 7..4.
    broken = _replace_gate(design, "G_7_0", "and")
    with pytest.raises(DesignError, match=r"first wrong bit: sum\[8\]"):
        check_adder(broken)


def test_adder_verilog_ports_and_assigns():
    graph = build_prefix_graph("han_carlson", 8)
    design = prefix_adder(graph)
    text = design.verilog
    assert text.startswith("module adder_han_carlson_8(a, b, sum, cout);\n")
    for declaration in ("input [7:0] a;", "input [7:0] b;", "output [7:0] sum;", "output cout;"):
        assert declaration in text
    assert text.rstrip().endswith("endmodule")
    assigns = re.findall(r"^  assign (\S+) = (.+);$", text, flags=re.M)
    assert len(assigns) == len(design.gates)
    assert [lhs for lhs, _ in assigns] == [gate.output for gate in design.gates]
    assert all(re.fullmatch(r"~?\S+( [&|^] \S+)?", rhs) for _, rhs in assigns)
    # 2 pre-processing gates per bit, 7 sum XORs, an AND and an OR per prefix node, and P only
    # where an upper parent is not an output.
    p_wires = [gate for gate in design.gates if gate.output.startswith("P_")]
    assert len(design.gates) == 16 + 7 + 2 * graph.size + len(p_wires)
    assert not any(
        gate.output.endswith("_0") and gate.output.startswith("P_") for gate in design.gates
    )
    assert "assign cout = G_7_4 | t_7_0;" in text


def test_verilog_file_round_trip(tmp_path):
    design = prefix_adder(build_prefix_graph("ladner_fischer", 16))
    path = tmp_path / "adder.v"
    path.write_text("// generated adder\n" + design.verilog)
    loaded = Design.from_verilog_file(path, "adder_ladner_fischer_16")
    assert loaded.inputs == {"a": 16, "b": 16}
    assert loaded.outputs == {"sum": 16, "cout": 1}
    assert loaded.reference is None
    assert loaded.gates == design.gates
    assert check_adder(loaded, vectors=100) == len(adder_corner_vectors(16)) + 100
    with pytest.raises(DesignError, match="no reference function"):
        check_design(loaded)


def test_verilog_file_ansi_with_cells(tmp_path):
    path = tmp_path / "user.v"
    path.write_text(
        "module helper(input x, output y); assign y = ~x; endmodule\n"
        "/* user design */\n"
        "module top(input wire [3:0] a, input b, output reg [4:0] q, output z);\n"
        "  NAND2X1 u1 (.A(a[0]), .B(b), .Y(z));\n"
        "endmodule\n"
    )
    design = Design.from_verilog_file(path, "top")
    assert design.inputs == {"a": 4, "b": 1}
    assert design.outputs == {"q": 5, "z": 1}
    assert design.gates is None
    assert design.settings == {"generator": "verilog_file", "top": "top"}
    helper = Design.from_verilog_file(path, "helper")
    assert helper.gates == (Gate("y", "not", ("x",)),)
    with pytest.raises(
        DesignError,
        match=r"module 'missing' not found; the file defines modules \['helper', 'top'\]",
    ):
        Design.from_verilog_file(path, "missing")
    with pytest.raises(DesignError, match="not found"):
        Design.from_verilog_file(tmp_path / "absent.v", "top")


@pytest.mark.parametrize("topology", ("ripple", "sklansky", "kogge_stone", "brent_kung"))
def test_comparator_passes_reference(topology):
    for n in (8, 16):
        design = prefix_comparator(build_prefix_graph(topology, n))
        assert design.outputs == {"lt": 1}
        assert check_design(design, vectors=300, seed=1) > 300
        assert design.reference({"a": 3, "b": 5}) == {"lt": 1}
        assert design.reference({"a": 5, "b": 5}) == {"lt": 0}
    # n = 8 has 16 input bits, so the default check covers all 65536 pairs.
    assert check_design(prefix_comparator(build_prefix_graph(topology, 8))) == 1 << 16


def test_comparator_builds_only_root_cone():
    design = prefix_comparator(build_prefix_graph("ripple", 8))
    # Per bit NOT and AND, XOR for bits 1..7, and an AND and OR for each of the 7 chain nodes.
    assert len(design.gates) == 8 * 2 + 7 + 7 * 2
    assert "output lt;" in design.verilog


@pytest.mark.parametrize("n", (2, 4, 6, 8))
def test_multiplier_passes_reference(n):
    design = array_multiplier(n)
    assert design.outputs == {"p": 2 * n}
    assert check_design(design) == 1 << (2 * n)
    # n * n partial-product ANDs. Row 1 adds n - 1 running-sum bits, so it has two half adders
    # (2 gates each) and n - 2 full adders (5 gates each). Rows 2..n-1 add n bits: one half
    # adder and n - 1 full adders.
    row_one = 2 * 2 + 5 * (n - 2)
    later_rows = (n - 2) * (2 + 5 * (n - 1))
    assert len(design.gates) == n * n + row_one + later_rows
    # The last gate drives the top product bit; OR -> AND and AND -> OR both change it.
    broken = _replace_gate(design, design.gates[-1].output)
    with pytest.raises(DesignError, match="fails its functional check"):
        check_design(broken)


def test_multiplier_rejects_bad_width():
    with pytest.raises(DesignError, match="from 2 to 16"):
        array_multiplier(1)


def test_design_key_stable_and_distinct():
    sklansky = prefix_adder(build_prefix_graph("sklansky", 8))
    again = prefix_adder(build_prefix_graph("sklansky", 8))
    key = design_key(sklansky)
    assert re.fullmatch(r"[0-9a-f]{64}", key)
    assert design_key(again) == key
    reordered = dataclasses.replace(
        sklansky, settings=dict(reversed(list(sklansky.settings.items())))
    )
    assert design_key(reordered) == key
    assert design_key(prefix_adder(build_prefix_graph("kogge_stone", 8))) != key
    assert (
        design_key(dataclasses.replace(sklansky, settings={**sklansky.settings, "note": "x"}))
        != key
    )
    with pytest.raises(DesignError, match="JSON-serializable"):
        design_key(dataclasses.replace(sklansky, settings={"bad": object()}))


def test_simulate_gate_operators():
    gates = [
        Gate("x", "and", ("a", "b")),
        Gate("y", "or", ("a", "b")),
        Gate("z", "xor", ("a", "b")),
        Gate("w", "not", ("a",)),
        Gate("v", "buf", ("z",)),
    ]
    # Four vectors: (a, b) = (0, 0), (1, 0), (0, 1), (1, 1) in bits 0..3.
    values = simulate(gates, {"a": 0b1010, "b": 0b1100}, 4)
    assert values["x"] == 0b1000
    assert values["y"] == 0b1110
    assert values["z"] == 0b0110
    assert values["w"] == 0b0101
    assert values["v"] == 0b0110
    with pytest.raises(DesignError, match="topological order"):
        simulate([Gate("q", "and", ("a", "missing"))], {"a": 1}, 1)


def test_assign_parser_orders_and_rejects(tmp_path):
    from adaptlab.plugins.graphsym.designs.verilog import parse_assign_gates

    header = "module m(a, y); input [1:0] a; output y; wire u;\n"
    # Assigns out of order are sorted so that u is computed before y reads it.
    gates = parse_assign_gates(
        header + "assign y = u | a[1]; assign u = a[0] & a[1]; endmodule", "m", {"a": 2}, {"y": 1}
    )
    assert [gate.output for gate in gates] == ["u", "y"]
    assert gates[1] == Gate("y", "or", ("u", "a[1]"))
    with pytest.raises(DesignError, match="combinational loop"):
        parse_assign_gates(
            header + "assign y = u | a[1]; assign u = y & a[0]; endmodule", "m", {"a": 2}, {"y": 1}
        )
    with pytest.raises(DesignError, match=r"nets \['v'\] are read but never driven"):
        parse_assign_gates(header + "assign y = v | a[1]; endmodule", "m", {"a": 2}, {"y": 1})
    with pytest.raises(DesignError, match="driven more than once"):
        parse_assign_gates(
            header + "assign y = a[0]; assign y = a[1]; endmodule", "m", {"a": 2}, {"y": 1}
        )
    with pytest.raises(DesignError, match="unsupported statement"):
        parse_assign_gates(
            header + "assign y = a[0] & a[1] | a[0]; endmodule", "m", {"a": 2}, {"y": 1}
        )
