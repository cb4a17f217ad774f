"""``adaptlab mtlora``: export the ``scenes`` dataset, or compare MTLoRA with its baselines.

``adaptlab mtlora compare`` repeats the MTLoRA paper's comparison (Agiza et al., CVPR 2024,
Table 1) at toy scale on ``scenes``. It optionally pretrains the backbone first (multi-task
training on scenes from another seed, standing in for ImageNet pretraining, which cannot be
downloaded here), then trains with that backbone:

- one single-task model per task, fully fine-tuned: the delta-m baselines;
- one multi-task model, fully fine-tuned;
- MTLoRA at every requested shared rank (task rank 4, scale 4.0).

It writes ``comparison.csv``, ``comparison.md`` (last-epoch validation metrics per task,
delta-m against the single-task runs of the same experiment, trainable parameters) and
``pareto.png`` (delta-m against trainable parameters). Every run trains through
:func:`adaptlab.core.training.api.train` and keeps its run folder under ``runs/``.

The CLI builds its argument parser on every start, so this module imports only the standard
library at import time. The commands import torch and matplotlib when they run.
"""

from __future__ import annotations

import argparse
import csv
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["PRIMARY_METRICS", "add_arguments", "compare", "run_command"]

logger = logging.getLogger(__name__)

PRIMARY_METRICS = {
    "semseg": "miou",
    "human_parts": "miou",
    "saliency": "miou",
    "normals": "mean_error",
    "edge": "odsf",
    "depth": "rmse",
}
"""The metric of each task that enters delta-m, as in the MTLoRA and ASTMT tables."""

LOSS_WEIGHTS = {
    "semseg": 1.0, "human_parts": 2.0, "saliency": 5.0, "normals": 10.0, "edge": 50.0,
    "depth": 1.0,
}
"""MTLoRA's loss weights per task."""

TINY_SWIN = {
    "name": "swin",
    "variant": "swin_tiny_patch4_window7_224",
    "window_size": 4,
    "embed_dim": 24,
    "depths": [2, 2, 2, 2],
    "num_heads": [2, 4, 8, 8],
}
"""A Swin-T-shaped backbone small enough to train on a laptop CPU in minutes."""

TINY_HEAD = {"name": "hrnet", "channels": [8, 16, 32, 64], "hidden_multiplier": 2}
"""HRNet-style heads scaled down with the backbone (the paper's are [18, 36, 72, 144] x 4)."""

_TASKS = tuple(PRIMARY_METRICS)
_DEFAULT_TASKS = ("semseg", "human_parts", "saliency", "normals")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``export-scenes`` and ``compare`` subcommands (no torch import)."""
    commands = parser.add_subparsers(dest="mtlora_command", metavar="SUBCOMMAND", required=True)

    export = commands.add_parser(
        "export-scenes", help="Write the scenes dataset in the PASCAL-Context or NYUD layout."
    )
    export.add_argument("folder", type=Path, help="New or empty output folder.")
    export.add_argument(
        "--layout", choices=("pascal_context", "nyud"), default="pascal_context",
        help="Folder layout and encodings (default: pascal_context).",
    )
    _add_scene_options(export, train=64, val=16, image_size=64)
    export.add_argument("--test", type=int, default=0, help="Test images (default: 0).")

    compare_parser = commands.add_parser(
        "compare",
        help="Train single-task, full multi-task and MTLoRA models on scenes and compare them.",
    )
    compare_parser.add_argument(
        "--output", type=Path, default=Path("mtlora-compare"),
        help="New or empty folder of the tables, the plot and the runs; a non-empty folder "
        "is refused so that an earlier comparison is never overwritten "
        "(default: ./mtlora-compare).",
    )
    _add_scene_options(compare_parser, train=256, val=64, image_size=32)
    compare_parser.add_argument(
        "--tasks", nargs="+", choices=_TASKS, default=list(_DEFAULT_TASKS),
        help="Tasks (default: semseg human_parts saliency normals).",
    )
    compare_parser.add_argument(
        "--epochs", type=int, default=8, help="Training epochs of every run (default: 8)."
    )
    compare_parser.add_argument(
        "--pretrain-epochs", type=int, default=8,
        help="Epochs of backbone pretraining on scenes of another seed; 0 keeps random "
        "backbone weights (default: 8).",
    )
    compare_parser.add_argument(
        "--ranks", type=int, nargs="+", default=[4, 16],
        help="Shared (task-agnostic) ranks of the MTLoRA runs (default: 4 16).",
    )
    compare_parser.add_argument(
        "--batch-size", type=int, default=16, help="Training batch size (default: 16)."
    )
    compare_parser.add_argument(
        "--lr", type=float, default=1e-3, help="AdamW learning rate (default: 0.001)."
    )


def _add_scene_options(
    parser: argparse.ArgumentParser, train: int, val: int, image_size: int
) -> None:
    parser.add_argument(
        "--image-size", type=int, default=image_size,
        help=f"Image side in pixels (default: {image_size}).",
    )
    parser.add_argument(
        "--train", type=int, default=train, help=f"Training images (default: {train})."
    )
    parser.add_argument("--val", type=int, default=val, help=f"Validation images (default: {val}).")
    parser.add_argument(
        "--seed", type=int, default=0,
        help="Seed of the scene generator and of training (default: 0).",
    )


def run_command(arguments: argparse.Namespace) -> int:
    """Run ``adaptlab mtlora SUBCOMMAND`` and return the exit status."""
    from adaptlab.plugins.mtlora.data.config import ScenesConfig

    scenes = _scenes_config(arguments, test=getattr(arguments, "test", 0))
    if arguments.mtlora_command == "export-scenes":
        from adaptlab.plugins.mtlora.data.export import export_scenes

        counts = export_scenes(
            ScenesConfig(**scenes), arguments.seed, arguments.folder.expanduser().resolve(),
            layout=arguments.layout,
        )
        written = ", ".join(f"{count} {split}" for split, count in counts.items())
        print(f"wrote {written} images to {arguments.folder} ({arguments.layout} layout)")
        return 0
    result = compare(
        arguments.output.expanduser().resolve(),
        scenes=scenes,
        epochs=arguments.epochs,
        pretrain_epochs=arguments.pretrain_epochs,
        ranks=arguments.ranks,
        batch_size=arguments.batch_size,
        lr=arguments.lr,
        seed=arguments.seed,
    )
    print(result.markdown, end="")
    for path in result.files:
        print(f"wrote {path}")
    return 0


def _scenes_config(arguments: argparse.Namespace, test: int) -> dict[str, Any]:
    from pydantic import ValidationError

    from adaptlab.core.errors import SpecError
    from adaptlab.plugins.mtlora.data.config import ScenesConfig

    data = {
        "image_size": arguments.image_size,
        # An export writes every task's files, whichever tasks a later spec loads.
        "tasks": list(dict.fromkeys(getattr(arguments, "tasks", _TASKS))),
        "counts": {"train": arguments.train, "val": arguments.val, "test": test},
    }
    try:
        ScenesConfig(**data)
    except ValidationError as error:
        problems = [
            f"{'.'.join(str(part) for part in item['loc'])}: {item['msg']}"
            for item in error.errors()
        ]
        raise SpecError(problems, source="adaptlab mtlora options") from None
    return data


@dataclass
class RunRow:
    """One trained model of the comparison."""

    name: str
    kind: str
    rank: int | None
    trainable: int
    metrics: dict[str, float]
    run_dir: str
    delta_m: float | None = None


@dataclass
class Comparison:
    """The comparison's rows, its Markdown table and the files written."""

    rows: list[RunRow]
    markdown: str
    files: list[Path] = field(default_factory=list)


def _spec_data(
    name: str,
    output: Path,
    scenes: Mapping[str, Any],
    tasks: Sequence[str],
    adapter: Mapping[str, Any] | None,
    epochs: int,
    batch_size: int,
    lr: float,
    seed: int,
    weights: Path | None,
    scene_seed: int,
) -> dict[str, Any]:
    backbone = {**TINY_SWIN, "image_size": scenes["image_size"]}
    if weights is not None:
        backbone["weights"] = str(weights)
    return {
        "seed": seed,
        "name": name,
        "output_dir": str(output / "runs"),
        "data": {"name": "scenes", **scenes, "tasks": list(tasks), "seed": scene_seed},
        "model": {
            "backbone": backbone,
            "adapter": dict(adapter) if adapter is not None else None,
            "heads": {task: {**TINY_HEAD, "loss_weight": LOSS_WEIGHTS[task]} for task in tasks},
        },
        "train": {
            "recipe": "supervised",
            "epochs": epochs,
            "batch_size": batch_size,
            "optimizer": {"name": "adamw", "lr": lr},
            "checkpoint": {"keep_last": 1},
        },
    }


def _train(data: Mapping[str, Any]) -> dict[str, Any]:
    from adaptlab.core.spec import validate_spec
    from adaptlab.core.training.api import train

    spec = validate_spec(dict(data), source=f"mtlora compare run {data['name']}")
    logger.info("training %s", data["name"])
    return train(spec)


def _export_backbone(summary: Mapping[str, Any], target: Path) -> Path:
    """Save the backbone weights of a finished run as a timm state dict in safetensors."""
    import torch
    from safetensors.torch import save_file

    from adaptlab.core.checkpoint import load_latest_checkpoint
    from adaptlab.core.errors import RunError

    loaded = load_latest_checkpoint(Path(summary["run_dir"]) / "checkpoints")
    if loaded is None:
        raise RunError(f"pretraining run {summary['run_dir']} left no checkpoint")
    _, tensors = loaded
    prefix = "model/backbone.model."
    backbone = {key[len(prefix):]: value for key, value in tensors.items() if key.startswith(prefix)}
    # The swin backbone replaces timm's final norm (the heads read stage outputs), but its
    # weight loader expects a complete timm state dict, so an identity norm fills the gap.
    last_norm = max(key for key in backbone if key.endswith("norm1.weight"))
    width = backbone[last_norm].shape[0]
    backbone.setdefault("norm.weight", torch.ones(width))
    backbone.setdefault("norm.bias", torch.zeros(width))
    save_file(backbone, str(target))
    return target


def _metrics_of(summary: Mapping[str, Any], tasks: Sequence[str]) -> dict[str, float]:
    final = summary.get("final_metrics") or {}
    return {task: float(final.get(f"{task}/{PRIMARY_METRICS[task]}", math.nan)) for task in tasks}


def _compare_runs(
    tasks: Sequence[str], ranks: Sequence[int]
) -> list[tuple[str, str, int | None, list[str], dict[str, Any] | None]]:
    """List the runs after pretraining as (name, kind, rank, tasks, adapter)."""
    runs: list[tuple[str, str, int | None, list[str], dict[str, Any] | None]] = [
        (f"single-{task}", "single-task", None, [task], None) for task in tasks
    ]
    runs.append(("multitask-full", "full fine-tuning", None, list(tasks), None))
    for rank in ranks:
        adapter = {"name": "mtlora", "shared_rank": rank, "task_rank": 4, "scale": 4.0}
        runs.append((f"mtlora-r{rank}", "MTLoRA", rank, list(tasks), adapter))
    return runs


def _check_compare_options(
    epochs: int, pretrain_epochs: int, ranks: Sequence[int], batch_size: int, lr: float
) -> None:
    """Reject option values no run could use, all problems in one line."""
    from adaptlab.core.errors import SpecError

    problems = []
    if epochs < 1:
        problems.append(f"--epochs {epochs} must be at least 1")
    if pretrain_epochs < 0:
        problems.append(f"--pretrain-epochs {pretrain_epochs} must be 0 (no pretraining) or more")
    if not ranks:
        problems.append("--ranks needs at least one rank")
    bad = [rank for rank in ranks if rank < 1]
    if bad:
        problems.append(
            f"--ranks {' '.join(str(rank) for rank in bad)}: every rank must be at least 1"
        )
    repeated = sorted({rank for rank in ranks if list(ranks).count(rank) > 1})
    if repeated:
        problems.append(
            f"--ranks repeats {' '.join(str(rank) for rank in repeated)}; give each rank once"
        )
    if batch_size < 1:
        problems.append(f"--batch-size {batch_size} must be at least 1")
    if not (lr > 0 and math.isfinite(lr)):
        problems.append(f"--lr {lr} must be a positive number")
    if problems:
        raise SpecError("; ".join(problems), source="adaptlab mtlora compare options")


def _check_compare_specs(
    tasks: Sequence[str],
    ranks: Sequence[int],
    epochs: int,
    pretrain_epochs: int,
    common: Mapping[str, Any],
) -> None:
    """Validate the spec of every run (pretraining included) before any training starts."""
    from adaptlab.core.errors import SpecError
    from adaptlab.core.spec import validate_spec

    specs = []
    if pretrain_epochs > 0:
        specs.append(_spec_data(
            "pretrain", tasks=tasks, adapter=None, epochs=pretrain_epochs, weights=None,
            **{**common, "scene_seed": common["seed"] + 1000},
        ))
    for name, _, _, run_tasks, adapter in _compare_runs(tasks, ranks):
        specs.append(_spec_data(name, tasks=run_tasks, adapter=adapter, epochs=epochs,
                                weights=None, **common))
    for data in specs:
        try:
            validate_spec(dict(data), source=f"mtlora compare run {data['name']}")
        except SpecError as error:
            raise SpecError(
                "; ".join(error.problems), source=f"mtlora compare run {data['name']}"
            ) from None


def compare(
    output: Path,
    *,
    scenes: Mapping[str, Any],
    epochs: int,
    pretrain_epochs: int,
    ranks: Sequence[int],
    batch_size: int,
    lr: float,
    seed: int,
) -> Comparison:
    """Train every model of the comparison, write the tables and the plot; return the rows.

    Every option and every spec to train is checked first, and ``output`` must be new or
    empty, so that a bad value fails before the first (long) training starts.
    """
    from adaptlab.core.errors import RunError

    tasks = list(scenes["tasks"])
    common = {"output": output, "scenes": scenes, "batch_size": batch_size, "lr": lr,
              "seed": seed, "scene_seed": seed}
    _check_compare_options(epochs, pretrain_epochs, ranks, batch_size, lr)
    _check_compare_specs(tasks, ranks, epochs, pretrain_epochs, common)
    if output.exists() and (not output.is_dir() or any(output.iterdir())):
        raise RunError(
            f"compare output {str(output)!r} exists and is not empty; choose a new folder "
            "with --output (an earlier comparison is never overwritten)"
        )
    output.mkdir(parents=True, exist_ok=True)

    weights = None
    if pretrain_epochs > 0:
        pretrain = _spec_data(
            "pretrain", tasks=tasks, adapter=None, epochs=pretrain_epochs, weights=None,
            **{**common, "scene_seed": seed + 1000},
        )
        weights = _export_backbone(_train(pretrain), output / "pretrained-backbone.safetensors")

    rows: list[RunRow] = []

    def record(name: str, kind: str, rank: int | None, run_tasks: Sequence[str],
               adapter: Mapping[str, Any] | None) -> None:
        summary = _train(_spec_data(name, tasks=run_tasks, adapter=adapter, epochs=epochs,
                                    weights=weights, **common))
        row = RunRow(name, kind, rank, int(summary["parameters"]["trainable"]),
                     _metrics_of(summary, run_tasks), str(summary["run_dir"]))
        rows.append(row)

    for name, kind, rank, run_tasks, adapter in _compare_runs(tasks, ranks):
        record(name, kind, rank, run_tasks, adapter)

    table = comparison_rows(rows, tasks)
    markdown = _markdown(table, tasks)
    result = Comparison(rows=table, markdown=markdown)
    result.files.append(_write_csv(output / "comparison.csv", table, tasks))
    (output / "comparison.md").write_text(markdown)
    result.files.append(output / "comparison.md")
    result.files.append(_plot(output / "pareto.png", table))
    return result


def comparison_rows(rows: Sequence[RunRow], tasks: Sequence[str]) -> list[RunRow]:
    """Return the table rows: the single-task models as one reference row (delta-m 0, their
    parameters summed), then every other row with its delta-m against them."""
    from adaptlab.plugins.mtlora.tasks import delta_m

    # The metrics of a single-task row contain its one task.
    single = {next(iter(row.metrics)): row for row in rows if row.kind == "single-task"}
    baselines = {f"{task}/{PRIMARY_METRICS[task]}": single[task].metrics[task] for task in tasks}
    reference = RunRow(
        "single-task (all)", "single-task", None, sum(single[task].trainable for task in tasks),
        {task: single[task].metrics[task] for task in tasks}, "", 0.0,
    )
    table = [reference]
    for row in rows:
        if row.kind == "single-task":
            continue
        metrics = {f"{task}/{PRIMARY_METRICS[task]}": row.metrics[task] for task in tasks}
        row.delta_m = delta_m(metrics, baselines)
        table.append(row)
    return table


def _header(tasks: Sequence[str]) -> list[str]:
    return ["model", "shared_rank", "trainable_params",
            *(f"{task}/{PRIMARY_METRICS[task]}" for task in tasks), "delta_m"]


def _cells(row: RunRow, tasks: Sequence[str]) -> list[str]:
    delta = "" if row.delta_m is None else f"{row.delta_m:+.2f}"
    return [row.name, "" if row.rank is None else str(row.rank), str(row.trainable),
            *(f"{row.metrics[task]:.2f}" for task in tasks), delta]


def _markdown(rows: Sequence[RunRow], tasks: Sequence[str]) -> str:
    header = _header(tasks)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cells(row, tasks)) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _write_csv(path: Path, rows: Sequence[RunRow], tasks: Sequence[str]) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([*_header(tasks), "run_dir"])
        for row in rows:
            writer.writerow([*_cells(row, tasks), row.run_dir])
    return path


def pareto_front(rows: Sequence[RunRow]) -> list[RunRow]:
    """Return the rows that no other row beats on both fewer parameters and higher delta-m,
    ordered by trainable parameters."""
    front: list[RunRow] = []
    best = -math.inf
    for row in sorted(rows, key=lambda item: (item.trainable, -(item.delta_m or 0.0))):
        if row.delta_m is not None and row.delta_m > best:
            front.append(row)
            best = row.delta_m
    return front


def _plot(path: Path, rows: Sequence[RunRow]) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure, axes = pyplot.subplots(figsize=(6, 4))
    for row in rows:
        if row.delta_m is None:
            continue
        axes.scatter(row.trainable, row.delta_m, s=40)
        axes.annotate(row.name, (row.trainable, row.delta_m), textcoords="offset points",
                      xytext=(5, 5), fontsize=8)
    front = pareto_front(rows)
    axes.plot([row.trainable for row in front], [row.delta_m for row in front], color="grey",
              linestyle="--", linewidth=0.8, label="Pareto front")
    axes.legend(loc="best", fontsize=8)
    axes.set_xscale("log")
    axes.axhline(0.0, color="grey", linewidth=0.8)
    axes.set_xlabel("trainable parameters")
    axes.set_ylabel("delta-m vs single-task models (%)")
    axes.set_title("scenes: delta-m against trainable parameters")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    pyplot.close(figure)
    return path
