"""Dataset builder: label many (design, delay target) pairs in parallel, resumably, through the cache.

:func:`build_dataset` looks up every job in the :class:`~.cache.RecordCache` first and labels only
the missing or corrupt ones, in batches spread over worker processes (``spawn`` or
``forkserver`` context, one process per worker). Workers write each record to the cache as soon
as its batch finishes, so an interrupted build keeps every finished batch and a rerun builds only
what is still missing.
"""

from __future__ import annotations

import logging
import logging.handlers
import math
import multiprocessing
import os
import random
import sys
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from ..designs import TOPOLOGIES, design_key
from ..synth import SynthesisError, get_backend
from ..timing import TimingOptions
from . import batch as batch_module
from .batch import BatchContext, Job, Outcome
from .cache import RecordCache
from .records import RANDOM_TOPOLOGY, DatasetError, DelayTarget, DesignSpec, LibraryFingerprint, Record, record_key

__all__ = ["DEFAULT_BATCH_SIZE", "DatasetBuild", "Failure", "adder_specs", "build_dataset"]

logger = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 16
DENSITY_RANGE = (0.02, 0.4)


@dataclass(frozen=True)
class Failure:
    """A job that could not be labelled: its key, design, delay target and error text."""

    key: str
    design_name: str
    delay_target: DelayTarget
    error: str


class DatasetBuild(list):
    """The records of a build, in (spec, delay target) order, plus a summary of the build.

    ``built`` counts records labelled now, ``cached`` those read from the cache, ``rebuilt`` the
    part of ``built`` whose cache file was corrupt and replaced, ``failures`` lists the jobs that
    failed, and ``seconds`` is the wall time of the whole call.
    """

    def __init__(self, records: list[Record], built: int, cached: int, failures: list[Failure], seconds: float,
                 rebuilt: int = 0) -> None:
        super().__init__(records)
        self.built = built
        self.cached = cached
        self.rebuilt = rebuilt
        self.failures = failures
        self.seconds = seconds

    def summary(self) -> str:
        rebuilt = f", {self.rebuilt} of them rebuilt from corrupt cache files" if self.rebuilt else ""
        return (
            f"{len(self)} records ({self.built} built{rebuilt}, {self.cached} from cache), "
            f"{len(self.failures)} failed, {self.seconds:.1f} s"
        )


def adder_specs(
    width: int = 32,
    count: int = 100,
    seed: int = 0,
    density_range: tuple[float, float] = DENSITY_RANGE,
) -> list[DesignSpec]:
    """Return ``count`` distinct adder specs: the six classic topologies, then random prefix graphs.

    Random graphs draw their seed and a density uniform in ``density_range`` from
    ``random.Random(seed)``, so the list depends only on the arguments. A drawn graph whose
    design_key or prefix node set equals an earlier one is skipped. Raises DatasetError when
    ``20 * count`` draws do not give enough distinct graphs, which happens at small widths.
    """
    low, high = density_range
    if not 0.0 <= low <= high <= 1.0:
        raise DatasetError(f"invalid density_range {density_range!r}: expected 0 <= low <= high <= 1")
    if count < 1:
        raise DatasetError(f"count must be >= 1, got {count}")
    specs: list[DesignSpec] = []
    seen_keys: set[str] = set()
    seen_nodes: set[frozenset] = set()

    def add(spec: DesignSpec) -> None:
        design = spec.build()
        digest = design_key(design)
        nodes = frozenset(tuple(node) for node in design.settings["nodes"])
        if digest in seen_keys or nodes in seen_nodes:
            logger.debug("skipped duplicate adder %s (design key %s)", spec, digest[:12])
            return
        seen_keys.add(digest)
        seen_nodes.add(nodes)
        specs.append(spec)

    for topology in sorted(TOPOLOGIES):
        if len(specs) < count:
            add(DesignSpec(topology, width))
    rng = random.Random(seed)
    draws = 0
    while len(specs) < count:
        if draws >= 20 * count:
            raise DatasetError(
                f"found only {len(specs)} distinct {width}-bit adders in {draws} draws; "
                "lower count or widen density_range"
            )
        draws += 1
        density = round(rng.uniform(low, high), 4)
        add(DesignSpec(RANDOM_TOPOLOGY, width, seed=rng.getrandbits(32), density=density))
    return specs


def _make_jobs(specs: Sequence[DesignSpec], targets: list[DelayTarget], library: LibraryFingerprint,
               backend_version: str, options: TimingOptions, max_fanout: int | None = None) -> list[Job]:
    jobs: list[Job] = []
    seen: set[str] = set()
    for spec in specs:
        design = spec.build()
        digest = design_key(design)
        for target in targets:
            key = record_key(digest, library.sha256, backend_version, target, options, max_fanout)
            if key in seen:
                logger.warning("skipped duplicate job %s: design %s at %s", key[:12], design.name, target)
                continue
            seen.add(key)
            jobs.append(Job(key, spec, design.name, design.top, design.verilog, digest, target))
    return jobs


def _batches(jobs: list[Job], workers: int, batch_size: int) -> list[list[Job]]:
    """Split jobs into batches of at most ``batch_size``, with at least one batch per worker when possible.

    Jobs of one design stay adjacent, so a batch maps each design once for all its delay targets.
    """
    size = max(1, min(batch_size, math.ceil(len(jobs) / max(1, workers))))
    return [jobs[start:start + size] for start in range(0, len(jobs), size)]


@contextmanager
def _progress_bar(total: int, enabled: bool) -> Iterator[object]:
    if not enabled or total == 0:
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    columns = (TextColumn("labelling designs"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True), transient=False) as progress:
        task = progress.add_task("labelling", total=total)
        yield lambda amount: progress.advance(task, amount)


def _pool_context() -> multiprocessing.context.BaseContext:
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")


class _ForwardToLogger(logging.Handler):
    """Hand a worker's log record to the logger of the same name in this process."""

    def emit(self, record: logging.LogRecord) -> None:
        target = logging.getLogger(record.name)
        if target.isEnabledFor(record.levelno):
            target.handle(record)


def _run_batches(batches: list[list[Job]], context: BatchContext, workers: int) -> Iterator[list[Outcome]]:
    """Yield the outcomes of each batch as it finishes; in this process when ``workers <= 1``.

    Log records of worker processes travel through a queue to the loggers of this process, so
    their messages appear wherever this process's messages do.
    """
    if workers <= 1 or len(batches) <= 1:
        for jobs in batches:
            logger.info("started batch of %d: %s", len(jobs), ", ".join(job.key[:12] for job in jobs))
            yield batch_module.run_batch(jobs, context)
        return
    mp_context = _pool_context()
    log_queue = mp_context.Queue()
    listener = logging.handlers.QueueListener(log_queue, _ForwardToLogger())
    listener.start()
    level = logging.getLogger("adaptlab").getEffectiveLevel()
    executor = ProcessPoolExecutor(
        max_workers=min(workers, len(batches)),
        mp_context=mp_context,
        initializer=batch_module.init_worker_logging,
        initargs=(log_queue, level),
    )
    try:
        pending: set[Future] = set()
        for jobs in batches:
            logger.info("started batch of %d: %s", len(jobs), ", ".join(job.key[:12] for job in jobs))
            pending.add(executor.submit(batch_module.run_batch, jobs, context))
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                try:
                    outcomes = future.result()
                except BrokenProcessPool as error:
                    raise DatasetError(
                        f"a worker process died ({error}); records of finished batches are in the cache. "
                        "A script that calls build_dataset must guard it with `if __name__ == '__main__':`"
                    ) from error
                yield outcomes
    except BaseException:
        # Ctrl-C, a kill of a worker or a bug: drop queued batches; finished ones are in the cache.
        executor.shutdown(wait=False, cancel_futures=True)
        listener.stop()
        raise
    # Workers flush their log queue when they exit, so the listener stops after them.
    executor.shutdown(wait=True)
    listener.stop()


def _collect(outcomes: list[Outcome], by_key: dict[str, Job], records: dict[str, Record],
             failures: list[Failure]) -> None:
    """Add the records of finished jobs to ``records`` and their errors to ``failures``."""
    for outcome in outcomes:
        job = by_key[outcome.key]
        if outcome.retried:
            logger.warning("retried %s (%s) alone after its batch failed", job.key[:12], job.design_name)
        if outcome.record is not None:
            records[job.key] = outcome.record
            logger.info("finished %s: %s at %s", job.key[:12], job.design_name, job.target)
        else:
            failures.append(Failure(job.key, job.design_name, job.target, outcome.error or "unknown error"))
            logger.error("failed %s (%s at %s): %s", job.key[:12], job.design_name, job.target, outcome.error)


def build_dataset(
    specs: Sequence[DesignSpec],
    library_path: str | Path,
    delay_targets: Sequence[DelayTarget | float],
    cache_dir: str | Path,
    workers: int | None = os.cpu_count(),
    progress: bool = True,
    *,
    backend: str = "auto",
    batch_size: int = DEFAULT_BATCH_SIZE,
    timing_options: TimingOptions | None = None,
    max_fanout: int | None = None,
) -> DatasetBuild:
    """Label every spec at every delay target, reusing cached records, and return them.

    A plain number in ``delay_targets`` is an absolute target in ns; ``DelayTarget(f, relative=True)``
    is ``f`` times each pre netlist's critical delay. ``workers`` processes (one per core by
    default; ``<= 1`` runs in this process) each label batches of up to ``batch_size`` jobs.
    ``max_fanout`` is ABC's ``buffer -N`` (ABC's default, 10, when None). A failed job is logged
    and listed in ``failures`` of the result. Raises DatasetError for an invalid request or when
    every job to build failed. On KeyboardInterrupt the records of finished batches stay in the
    cache, and a rerun with the same arguments builds only the rest.
    """
    started = time.perf_counter()
    if not delay_targets:
        raise DatasetError("delay_targets is empty; give at least one delay target in ns or a DelayTarget")
    targets = [DelayTarget.coerce(target) for target in delay_targets]
    if batch_size < 1:
        raise DatasetError(f"batch_size must be >= 1, got {batch_size}")
    if max_fanout is not None and max_fanout < 2:
        raise DatasetError(f"max_fanout must be at least 2, got {max_fanout}")
    library = LibraryFingerprint.of(library_path)
    options = timing_options or TimingOptions()
    try:
        tool = get_backend(backend)
        backend_version = tool.version()
    except SynthesisError as error:
        raise DatasetError(f"synthesis back end {backend!r} is not usable: {error}") from error
    cache = RecordCache(cache_dir)
    context = BatchContext(library, backend, options, str(cache.root), max_fanout)

    jobs = _make_jobs(specs, targets, library, backend_version, options, max_fanout)
    records: dict[str, Record] = {}
    missing: list[Job] = []
    for job in jobs:
        record = cache.load(job.key)
        if record is None:
            missing.append(job)
        else:
            logger.debug("skipped %s (%s at %s): found in cache", job.key[:12], job.design_name, job.target)
            records[job.key] = record
    cached = len(records)
    logger.info("dataset: %d jobs, %d in cache, %d to build with %s", len(jobs), cached, len(missing), backend_version)

    failures: list[Failure] = []
    by_key = {job.key: job for job in missing}
    show = progress and sys.stderr.isatty()
    try:
        with _progress_bar(len(missing), show) as advance:
            for outcomes in _run_batches(_batches(missing, workers or 1, batch_size), context, workers or 1):
                _collect(outcomes, by_key, records, failures)
                if advance is not None:
                    advance(len(outcomes))
    except KeyboardInterrupt:
        # Count the cache files rather than the outcomes received: a worker can finish and write
        # its batch after the interrupt, and its outcomes never reach this process.
        labelled = sum(1 for job in missing if cache.path(job.key).is_file())
        logger.warning(
            "dataset build interrupted: %d of %d missing records were labelled and stay in the cache %s "
            "(batches still running may add a few more); rerun the same build to label the rest",
            labelled, len(missing), cache.root,
        )
        raise

    if missing and len(failures) == len(missing):
        raise DatasetError(
            f"all {len(missing)} jobs failed; first error ({failures[0].design_name}): {failures[0].error}"
        )
    ordered = [records[job.key] for job in jobs if job.key in records]
    rebuilt = sum(1 for key in cache.discarded if key in records)
    result = DatasetBuild(ordered, len(missing) - len(failures), cached, failures, time.perf_counter() - started,
                          rebuilt)
    logger.info("dataset build finished: %s", result.summary())
    return result
