"""The Ray Tune function trainable that runs one trial through ``api.train``.

Each trial trains its spec with the same code as ``adaptlab train``; the run folder lives in
``EXPERIMENT/trials/TRIAL_ID/``. After every epoch the trainer's ``on_epoch_end`` callback
reports the epoch's metrics and the trainable-parameter count to Ray Tune, together with a
Ray checkpoint that stores the run folder's path (``adaptlab-run.json``). When Ray restarts a
failed trial (``FailureConfig.max_failures``) it passes that checkpoint back, and the trial
continues its run with ``api.train(None, resume_dir=...)`` from the newest valid adaptlab
checkpoint instead of starting over.

NOTE: the Ray checkpoint contains a path, not the weights, so on a multi-node cluster the
experiment folder must be on a filesystem that every node mounts at the same path.
"""

from __future__ import annotations

import importlib
import json
import logging
import shutil
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from adaptlab.core.runs import (
    CHECKPOINT_DIR,
    SUMMARY_FILE,
    atomic_write_json,
    read_spec_data,
    write_spec,
)
from adaptlab.registry import Registry
from adaptlab.tuning.space import Dimension, decode, trial_data, trial_spec

__all__ = ["ERROR_FILE", "RUN_POINTER", "TrialContext", "run_trial"]

logger = logging.getLogger(__name__)

RUN_POINTER = "adaptlab-run.json"
ERROR_FILE = "error.json"
TRIALS_DIR = "trials"
PARAMETERS_METRIC = "parameters/trainable"


@dataclass(frozen=True)
class TrialContext:
    """Settings that every trial needs besides its sampled config, pickled to the Ray workers.

    ``plugins`` lists ``(name, module, version)`` of the driver's loaded plugins, so a worker
    builds the same registry without reading entry points, and ``import_paths`` are folders
    that make those modules importable there (appended to ``sys.path``).
    """

    base: dict[str, Any]
    dims: tuple[Dimension, ...]
    experiment_dir: str
    plugins: tuple[tuple[str, str, str], ...]
    import_paths: tuple[str, ...] = ()
    metrics: tuple[str, ...] = field(default_factory=tuple)

    def trial_dir(self, trial_id: str) -> Path:
        return Path(self.experiment_dir) / TRIALS_DIR / trial_id

    def load_registry(self) -> Registry:
        """Rebuild the driver's registry from the recorded plugin modules."""
        for path in self.import_paths:
            if path not in sys.path:
                sys.path.append(path)
        registry = Registry()
        for name, module_name, version in self.plugins:
            registry.add_plugin(name, importlib.import_module(module_name), version)
        return registry


def plugin_records(registry: Registry) -> tuple[tuple[tuple[str, str, str], ...], tuple[str, ...]]:
    """Return the loaded plugins as ``(name, module, version)`` and folders to import them."""
    plugins = []
    paths: list[str] = []
    for record in registry.plugins.values():
        if not record.loaded:
            continue
        plugins.append((record.name, record.module, record.version))
        module = sys.modules.get(record.module)
        source = getattr(module, "__file__", None)
        if source is None:
            continue
        root = Path(source).resolve().parent
        if Path(source).name == "__init__.py":
            root = root.parent
        for _ in range(record.module.count(".")):
            root = root.parent
        if str(root) not in paths:
            paths.append(str(root))
    return tuple(plugins), tuple(paths)


def run_trial(config: dict[str, Any], context: TrialContext) -> None:
    """Train one trial, or continue it from the Ray checkpoint that Ray restores."""
    from ray import tune

    from adaptlab.core.training import api

    trial_id = tune.get_context().get_trial_id()
    trial_dir = context.trial_dir(trial_id)
    values = decode(config, context.dims)
    reporter = _EpochReporter(trial_dir)
    try:
        registry = context.load_registry()
        (trial_dir / ERROR_FILE).unlink(missing_ok=True)
        resume_dir, epoch = _run_dir_of(tune.get_checkpoint())
        if resume_dir is not None and trial_dir not in resume_dir.parents:
            resume_dir = _adopt_run(resume_dir, epoch, trial_dir, values, registry)
        if resume_dir is not None:
            logger.info("trial %s continues run %s", trial_id, resume_dir)
            reporter.run_dir = resume_dir
            reporter.epochs = _epochs_of(read_spec_data(resume_dir))
            api.train(None, resume_dir=resume_dir, registry=registry, on_epoch_end=reporter)
        else:
            if trial_dir.exists():  # a restart before the first checkpoint: start over
                shutil.rmtree(trial_dir)
            trial_dir.mkdir(parents=True)
            spec = trial_spec(context.base, values, registry, output_dir=trial_dir / "runs")
            reporter.epochs = _epochs_of(spec.to_data())
            api.train(spec, registry=registry, on_epoch_end=reporter)
    except SystemExit:
        # Ray Tune stops or pauses the trial (a scheduler decision, not a failure) by raising
        # SystemExit inside tune.report. The run's summary would stay "running".
        _mark_stopped(reporter.run_dir, reporter.last_epoch)
        raise
    except BaseException as error:
        trial_dir.mkdir(parents=True, exist_ok=True)
        message = " ".join(str(error).split()) or type(error).__name__
        atomic_write_json(
            trial_dir / ERROR_FILE, {"type": type(error).__name__, "message": message}
        )
        raise


class _EpochReporter:
    """``on_epoch_end`` callback that forwards each epoch to ``ray.tune.report``.

    Validation metrics of the last evaluated epoch are repeated on epochs without evaluation,
    so that schedulers and search algorithms always find the metric.
    """

    def __init__(self, trial_dir: Path) -> None:
        self.trial_dir = trial_dir
        self.epochs: int | None = None
        self.last_epoch: int | None = None
        self.run_dir: Path | None = None
        self.latest: dict[str, float] = {}
        self.trainable: int | None = None

    def __call__(self, epoch: int, metrics: Mapping[str, float], checkpoint: Path | None) -> None:
        from ray import tune

        run_dir = self._find_run_dir(checkpoint)
        self.last_epoch = epoch
        self.latest.update(metrics)
        report: dict[str, Any] = dict(self.latest)
        report["epoch"] = epoch
        trainable = self._trainable_parameters(run_dir)
        if trainable is not None:
            report[PARAMETERS_METRIC] = trainable
        try:
            if checkpoint is None or run_dir is None:
                tune.report(report)
                return
            with tempfile.TemporaryDirectory(prefix="adaptlab-ckpt-") as folder:
                pointer = {"run_dir": str(run_dir.resolve()), "epoch": epoch}
                (Path(folder) / RUN_POINTER).write_text(json.dumps(pointer), encoding="utf-8")
                tune.report(report, checkpoint=tune.Checkpoint.from_directory(folder))
        except SystemExit:
            # A stop after the last epoch (ASHA stops every trial at max_t) lets the trainer
            # write its final summary first; nothing is left to train.
            if self.epochs is None or epoch < self.epochs:
                raise

    def _find_run_dir(self, checkpoint: Path | None) -> Path | None:
        if checkpoint is not None:
            self.run_dir = checkpoint.parent.parent  # RUN/checkpoints/epoch-NNNN.json
        if self.run_dir is None:
            runs = sorted((self.trial_dir / "runs").glob("*/"))
            self.run_dir = runs[-1] if runs else None
        return self.run_dir

    def _trainable_parameters(self, run_dir: Path | None) -> int | None:
        if self.trainable is None and run_dir is not None:
            try:
                summary = json.loads((run_dir / SUMMARY_FILE).read_text(encoding="utf-8"))
                self.trainable = int(summary["parameters"]["trainable"])
            except (OSError, ValueError, KeyError, TypeError):
                return None
        return self.trainable


def _epochs_of(spec_data: Mapping[str, Any]) -> int | None:
    epochs = (spec_data.get("train") or {}).get("epochs")
    return int(epochs) if isinstance(epochs, int) else None


def _mark_stopped(run_dir: Path | None, epoch: int | None) -> None:
    """Record in summary.json that Ray Tune stopped the run after ``epoch``.

    The trainer writes the summary when a run ends; a stop from Ray Tune ends the training
    thread before that, so the status would stay ``running``. The run can still be continued
    with ``adaptlab train --resume``.
    """
    if run_dir is None:
        return
    path = run_dir / SUMMARY_FILE
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    if summary.get("status") == "running":
        summary["status"] = "stopped"
        if epoch is not None:
            summary["epochs_completed"] = epoch
        atomic_write_json(path, summary)


def _run_dir_of(checkpoint: Any) -> tuple[Path | None, int | None]:
    """Return the run folder and epoch that a Ray checkpoint points to, if the folder exists."""
    if checkpoint is None:
        return None, None
    with checkpoint.as_directory() as folder:
        pointer = Path(folder) / RUN_POINTER
        if not pointer.is_file():
            return None, None
        record = json.loads(pointer.read_text(encoding="utf-8"))
    run_dir = Path(record["run_dir"])
    if not run_dir.is_dir():
        logger.warning("run folder %s of the restored checkpoint is missing; starting over", run_dir)
        return None, None
    return run_dir, record.get("epoch")


def _adopt_run(
    source: Path, epoch: int | None, trial_dir: Path, values: Mapping[str, Any], registry: Any
) -> Path:
    """Copy another trial's run (a PBT exploit step) and give it this trial's values.

    Checkpoints newer than the exploited ``epoch`` are dropped from the copy when that
    epoch's checkpoint exists, so the run resumes where the Ray checkpoint was taken. The
    copied spec.yaml is rewritten with this trial's sampled values, so the resumed run trains
    with them from the copied weights on.
    """
    target_parent = trial_dir / "runs"
    if trial_dir.exists():
        shutil.rmtree(trial_dir)
    target_parent.mkdir(parents=True)
    target = target_parent / source.name
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("*.lock", "train.log"))
    checkpoints = target / CHECKPOINT_DIR
    if epoch is not None and (checkpoints / f"epoch-{epoch:04d}.json").is_file():
        for path in checkpoints.glob("epoch-*.*"):
            number = path.name.split(".")[0].removeprefix("epoch-")
            if number.isdigit() and int(number) > epoch:
                path.unlink()
    stored = read_spec_data(target)
    data = trial_data(stored, values, output_dir=target_parent)
    trial_spec(data, {}, registry)  # validate before resuming
    write_spec(target, data)
    logger.info("trial %s continues from a copy of %s", trial_dir.name, source)
    return target
