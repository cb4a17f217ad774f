"""Netlist readers and writers: Yosys JSON, structural Verilog and BLIF into the shared Netlist model."""

from __future__ import annotations

from pathlib import Path

import pytest

from adaptlab.plugins.graphsym.netlist.blif import parse_blif, read_blif, write_blif
from adaptlab.plugins.graphsym.netlist.model import Instance, Netlist, NetlistError
from adaptlab.plugins.graphsym.netlist.verilog import parse_verilog, read_verilog, write_verilog
from adaptlab.plugins.graphsym.netlist.yosys_json import parse_yosys_json, read_yosys_json

FORMATS = Path(__file__).parent / "data" / "formats"

EXPECTED = Netlist(
    name="ha2",
    inputs=["a[0]", "a[1]", "b"],
    outputs=["s[0]", "s[1]", "c", "z", "w", "y"],
    instances=[
        Instance("u1", "XOR2_X1", {"A": "a[0]", "B": "b", "Y": "s[0]"}),
        Instance("u2$x", "AND2_X1", {"A": "a[0]", "B": "b", "Y": "n1"}),
        Instance("u3", "XOR2_X1", {"A": "a[1]", "B": "n1", "Y": "s[1]"}),
        Instance("u4", "AND2_X1", {"A": "a[1]", "B": "n1", "Y": "c"}),
        Instance("u5", "NAND2_X1", {"A": "n1", "B": "$const1", "Y": "y"}),
    ],
    aliases={"z": "$const0", "w": "a[0]"},
)


@pytest.mark.parametrize(
    "reader, filename",
    [(read_verilog, "ha2.v"), (read_blif, "ha2.blif"), (read_yosys_json, "ha2.json")],
)
def test_same_circuit_in_each_format(reader, filename):
    assert reader(FORMATS / filename) == EXPECTED


def test_verilog_writer_round_trip():
    text = write_verilog(EXPECTED)
    assert "\\a[0] " in text
    assert parse_verilog(text) == EXPECTED


def test_blif_writer_round_trip():
    text = write_blif(EXPECTED, instance_names=True)
    assert parse_blif(text) == EXPECTED


def test_blif_writer_without_aliases_has_no_names():
    plain = Netlist("n", ["a"], ["y"], [Instance("i", "INV_X1", {"A": "a", "Y": "y"})])
    assert ".names" not in write_blif(plain)


def test_verilog_buses_slices_and_concatenation():
    text = """
    module top (input [3:0] a, output [1:0] y, output [2:0] k);
      wire [0:1] t;
      INV_X1 i0 (.A(a[3]), .Y(t[0]));
      INV_X1 i1 (.A(a[2]), .Y(t[1]));
      assign y = t;
      assign k = {a[1:0], 1'b1};
    endmodule
    """
    netlist = parse_verilog(text)
    assert netlist.inputs == ["a[0]", "a[1]", "a[2]", "a[3]"]
    assert netlist.outputs == ["y[0]", "y[1]", "k[0]", "k[1]", "k[2]"]
    # t is [0:1], so t[0] is its MSB and lands on y[1].
    assert netlist.aliases["y[1]"] == "t[0]"
    assert netlist.aliases["y[0]"] == "t[1]"
    assert netlist.aliases["k[2]"] == "a[1]"
    assert netlist.aliases["k[1]"] == "a[0]"
    assert netlist.aliases["k[0]"] == "$const1"


def test_verilog_picks_the_uninstantiated_module():
    text = """
    module leaf (a, y); input a; output y; INV_X1 u (.A(a), .Y(y)); endmodule
    module root (a, y); input a; output y; leaf l (.a(a), .y(y)); endmodule
    """
    assert parse_verilog(text).name == "root"
    assert parse_verilog(text, top="leaf").instances[0].cell == "INV_X1"


@pytest.mark.parametrize(
    "text, message",
    [
        ("module m (a); input a;\n  always @(a) begin end\nendmodule", ":2: unsupported statement 'always'"),
        ("module m (a, y); input a; output y;\n  INV_X1 u (a, y);\nendmodule", ":2: instance 'u'"),
        ("module m (y); output y;\n  assign y = 1'bx;\nendmodule", ":2: constant"),
        ("module m (y); output [1:0] y;\n  assign y = y2;\nendmodule", ":2: assign: 2 target bits but 1"),
        ("module m (a); input a;\n", "no 'endmodule'"),
        ("module m (a, y); input a;\nendmodule", "port 'y'"),
        ("module m (a); input a;\n  y = ~a;\nendmodule", ":2: expected an identifier, found '='"),
    ],
)
def test_verilog_errors_name_line_and_problem(text, message):
    with pytest.raises(NetlistError) as info:
        parse_verilog(text, source="bad.v")
    assert str(info.value).startswith("bad.v")
    assert message in str(info.value)


@pytest.mark.parametrize(
    "text, message",
    [
        (".model m\n.inputs a\n.outputs y\n.names a y\n0 1\n.end\n", "bad.blif:4: .names a y: only constants"),
        (".model m\n.inputs a\n.outputs y\n.gate INV_X1 A=a Yy\n.end\n", "bad.blif:4: .gate INV_X1: connection 'Yy'"),
        (".inputs a\n", "bad.blif:1: .inputs before .model"),
        (".model m\n.latch a y 0\n", "bad.blif:2: .latch found"),
        (".model m\n.foo\n", "bad.blif:2: unsupported BLIF directive '.foo'"),
        (".model m\n1 1\n", "bad.blif:2: unexpected line"),
    ],
)
def test_blif_errors_name_line_and_problem(text, message):
    with pytest.raises(NetlistError) as info:
        parse_blif(text, source="bad.blif")
    assert message in str(info.value)


def test_blif_abc_constant_gate_becomes_alias():
    text = ".model m\n.inputs a\n.outputs y z\n.gate _const1_ z=y\n.names a z\n1 1\n.end\n"
    netlist = parse_blif(text)
    assert netlist.instances == []
    assert netlist.aliases == {"y": "$const1", "z": "a"}


def test_json_shared_output_bits_become_aliases():
    document = {
        "modules": {
            "m": {
                "ports": {
                    "a": {"direction": "input", "bits": [2]},
                    "y": {"direction": "output", "bits": [3, 3], "upto": 1},
                },
                "cells": {"u": {"type": "INV_X1", "connections": {"A": [2], "Y": [3]}}},
                "netnames": {},
            }
        }
    }
    netlist = parse_yosys_json(document)
    # upto ports list their MSB index first in "bits".
    assert netlist.outputs == ["y[1]", "y[0]"]
    assert netlist.instances[0].pins == {"A": "a", "Y": "y[1]"}
    assert netlist.aliases == {"y[0]": "y[1]"}


@pytest.mark.parametrize(
    "text, message",
    [
        ("{", "bad.json:1: invalid JSON"),
        ('{"modules": {}}', "no 'modules'"),
        ('{"modules": {"m": {"ports": {}, "cells": {"u": {"type": "X", "connections": {"A": [1, 2]}}}}}}',
         "cell 'u' pin 'A' has 2 bits"),
        ('{"modules": {"m": {"ports": {"a": {"direction": "input", "bits": ["x"]}}, "cells": {}}}}',
         "unsupported bit 'x'"),
    ],
)
def test_json_errors_name_problem(text, message):
    with pytest.raises(NetlistError) as info:
        parse_yosys_json(text, source="bad.json")
    assert message in str(info.value)


def test_json_missing_top_lists_modules():
    with pytest.raises(NetlistError, match=r"module 'nope' not found; modules present: \['ha2'\]"):
        read_yosys_json(FORMATS / "ha2.json", top="nope")
