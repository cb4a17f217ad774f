"""Entry points that the CLI and the tuning code call: train, resume, evaluate.

``train`` creates or reopens a run directory, writes the resolved spec and library versions,
holds the run's lock and log file, and hands the work to the recipe named by ``train.recipe``.
``evaluate`` rebuilds data and model from a run's stored spec and scores one checkpoint.
"""

from __future__ import annotations

import logging
import shlex
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from adaptlab.core.contracts import RunContext
from adaptlab.core.errors import CheckpointError, RunError
from adaptlab.core.runs import (
    CHECKPOINT_DIR,
    SPEC_FILE,
    atomic_write_json,
    create_run_dir,
    read_spec_data,
    remove_temporary_files,
    run_lock,
    run_log,
    spec_differences,
    version_differences,
    write_spec,
    write_versions,
)
from adaptlab.core.spec import Spec, validate_spec
from adaptlab.registry import Registry, get_registry

if TYPE_CHECKING:
    from adaptlab.core.training.recipe import EpochCallback

__all__ = ["evaluate", "evaluate_run", "load_run_spec", "select_checkpoint", "train"]

logger = logging.getLogger(__name__)

# Spec fields that may differ on resume, because the run stays in its folder whatever the
# output_dir of the given spec is.
_IGNORED_ON_RESUME = ("output_dir",)


def load_run_spec(run_dir: Path, registry: Registry | None = None) -> Spec:
    """Read and validate ``spec.yaml`` of a run folder.

    Raises :class:`RunError` when ``run_dir`` is missing or contains no spec, and
    :class:`~adaptlab.core.errors.SpecError` when the stored spec no longer validates
    against the installed plugins.
    """
    run_dir = Path(run_dir)
    data = read_spec_data(run_dir)
    source = str(run_dir / SPEC_FILE)
    return validate_spec(data, registry=registry or get_registry(), source=source)


def train(
    spec: Spec | None,
    *,
    resume_dir: Path | None = None,
    registry: Registry | None = None,
    on_epoch_end: EpochCallback | None = None,
) -> dict[str, Any]:
    """Train a new run of ``spec``, or resume the run in ``resume_dir``; return its summary.

    A new run gets the folder ``OUTPUT_DIR/NAME-YYYYmmdd-HHMMSS`` (``NAME`` is ``spec.name`` or
    the dataset's name). A resume continues from the newest valid checkpoint. There ``spec``
    may be ``None`` to use the stored spec. A spec that differs from the stored one raises
    :class:`RunError` listing each differing dotted path. The summary always has ``run_dir``.
    """
    registry = registry or get_registry()
    if resume_dir is not None:
        run_dir = Path(resume_dir)
        stored = load_run_spec(run_dir, registry)
        if spec is not None:
            _check_same_spec(run_dir, stored, spec)
        spec = stored
    elif spec is None:
        raise RunError("train() needs a spec for a new run, or resume_dir to resume one")
    resume = resume_dir is not None

    recipe = registry.get("recipe", spec.train.name).build(spec.train.config)
    if not resume:
        run_dir = create_run_dir(Path(spec.output_dir), spec.name or spec.data.name)
        write_spec(run_dir, spec.to_data())
        write_versions(run_dir)
    with run_lock(run_dir), run_log(run_dir):
        if resume:
            remove_temporary_files(run_dir)
            for line in version_differences(run_dir):
                logger.warning(
                    "resuming with other versions than the run started with (%s); the "
                    "resumed run may not repeat an uninterrupted one bitwise",
                    line,
                )
            logger.info("resuming run %s", run_dir)
        else:
            logger.info("started run %s (recipe %s, seed %d)", run_dir, spec.train.name, spec.seed)
        context = RunContext(
            spec=spec, run_dir=run_dir, resume=resume, registry=registry, on_epoch_end=on_epoch_end
        )
        try:
            summary = dict(recipe.run(context))
        except KeyboardInterrupt:
            logger.warning(
                "run %s interrupted; `adaptlab train --resume %s` continues it from its newest "
                "checkpoint, or from epoch 1 when it has none",
                run_dir,
                shlex.quote(str(run_dir)),
            )
            raise
        except Exception as error:
            logger.error("run %s failed: %s: %s", run_dir, type(error).__name__, error)
            raise
    summary.setdefault("run_dir", str(run_dir))
    return summary


def _check_same_spec(run_dir: Path, stored: Spec, requested: Spec) -> None:
    differences = spec_differences(
        stored.to_data(), requested.to_data(), ignore=_IGNORED_ON_RESUME
    )
    if differences:
        lines = "\n".join(f"  {line}" for line in differences)
        raise RunError(
            f"cannot resume {run_dir}: the given spec differs from its spec.yaml "
            f"(stored -> given):\n{lines}\n"
            "Resume without a spec to continue the run as it was, or start a new run with "
            "the changed spec."
        )


# --- evaluation --------------------------------------------------------------------------


def select_checkpoint(run_dir: Path, choice: str) -> Path:
    """Return the JSON path of the checkpoint ``best``, ``last``, ``N`` or ``epoch-NNNN``."""
    from adaptlab.core.checkpoint import find_latest_checkpoint, list_checkpoints, read_best

    directory = run_dir / CHECKPOINT_DIR
    entries = list_checkpoints(directory)
    if not entries:
        raise CheckpointError(
            f"run {run_dir} has no checkpoint in {directory}; train it (or resume it) first"
        )
    if choice == "best":
        best = read_best(directory)
        if best is not None and (directory / best["checkpoint"]).is_file():
            return directory / best["checkpoint"]
        logger.warning("run %s has no best checkpoint; evaluating the last one", run_dir.name)
        choice = "last"
    if choice == "last":
        latest = find_latest_checkpoint(directory)
        if latest is None:
            raise CheckpointError(f"run {run_dir} has no checkpoint in {directory}")
        return latest.state_path
    epoch_text = choice.removeprefix("epoch-").removesuffix(".json")
    if epoch_text.isdigit():
        for epoch, path in entries:
            if epoch == int(epoch_text):
                return path
    available = ", ".join(path.stem for _, path in entries)
    raise CheckpointError(
        f"checkpoint {choice!r} not found in {directory}; choose best, last or one of: "
        f"{available}"
    )


def evaluate(
    run_dir: Path,
    *,
    split: str = "test",
    checkpoint: str = "best",
    registry: Registry | None = None,
) -> dict[str, float]:
    """Score a checkpoint of a run on one split; write ``eval-SPLIT.json`` and return metrics.

    Same as :func:`evaluate_run`, without the name of the split that was evaluated.
    """
    return evaluate_run(run_dir, split=split, checkpoint=checkpoint, registry=registry)[1]


def evaluate_run(
    run_dir: Path,
    *,
    split: str = "test",
    checkpoint: str = "best",
    registry: Registry | None = None,
) -> tuple[str, dict[str, float]]:
    """Score a checkpoint of a run on one split; return the split evaluated and its metrics.

    ``checkpoint`` is ``best`` (falls back to ``last`` when the run recorded no best), ``last``
    (the newest valid checkpoint), an epoch number or ``epoch-NNNN``. When the dataset has no
    ``test`` split, ``split="test"`` evaluates ``val`` instead and logs a warning. The file is
    named after the split that was evaluated.
    """
    # Imported here so that importing this module (the CLI does) stays free of torch.
    from adaptlab.core.checkpoint import load_checkpoint
    from adaptlab.core.compose import build_data, build_model
    from adaptlab.core.training.data import (
        deterministic_algorithms,
        make_loader,
        resolve_device,
        resolve_precision,
        seed_everything,
    )
    from adaptlab.core.training.evaluation import evaluate_model
    from adaptlab.core.training.state import load_model_weights

    registry = registry or get_registry()
    run_dir = Path(run_dir)
    spec = load_run_spec(run_dir, registry)
    config = spec.train.config
    state_path = select_checkpoint(run_dir, checkpoint)

    with deterministic_algorithms(bool(getattr(config, "deterministic", True))):
        seed_everything(spec.seed)
        bundle = build_data(spec, registry)
        used_split = split
        if split not in bundle.splits:
            if split == "test" and "val" in bundle.splits:
                logger.warning(
                    "dataset %r has no 'test' split; evaluating on 'val' instead", spec.data.name
                )
                used_split = "val"
            else:
                raise RunError(
                    f"dataset {spec.data.name!r} has no split {split!r}; choose one of: "
                    f"{', '.join(bundle.splits)}"
                )
        device = resolve_device(getattr(config, "device", "auto"))
        precision = resolve_precision(getattr(config, "precision", "fp32"), device)
        model = build_model(spec, bundle.tasks, registry)
        loaded, tensors = load_checkpoint(state_path)
        load_model_weights(model, tensors, loaded.state.get("weights", "all"))
        model.to(device)
        batch_size = getattr(config, "eval_batch_size", None) or getattr(config, "batch_size", 32)
        loader = make_loader(
            bundle.splits[used_split],
            batch_size,
            shuffle=False,
            seed=spec.seed,
            num_workers=getattr(config, "num_workers", 0),
            collate_fn=bundle.collate_fn,
            pin_memory=device.type == "cuda",
        )
        metrics = evaluate_model(
            model, loader, device, precision, artifacts=(run_dir, f"eval-{used_split}"),
            timed=True,
            derived=bundle.derived_metrics,
        )

    record = {
        "split": used_split,
        "requested_split": split,
        "checkpoint": f"{CHECKPOINT_DIR}/{loaded.state_path.name}",
        "epoch": loaded.epoch,
        "created": datetime.now().isoformat(timespec="seconds"),
        "metrics": metrics,
    }
    path = run_dir / f"eval-{used_split}.json"
    atomic_write_json(path, record)
    logger.info(
        "evaluated %s on %s with %s: %s",
        run_dir.name,
        used_split,
        loaded.state_path.name,
        ", ".join(f"{name} {value:.4g}" for name, value in metrics.items()),
    )
    return used_split, metrics
