"""Results of a tune experiment: the trial table, CSV, the best trial's spec and Pareto fronts.

Files written into the experiment folder:

- ``results.csv``: one row per trial with its sampled values, metrics, trainable parameters,
  status, error and run folder;
- ``best_spec.yaml``: the best trial's full spec without a ``search:`` section, ready for
  ``adaptlab train``;
- ``pareto.json`` and ``pareto.png``: the trials that no other trial beats on both the
  primary metric and the trainable-parameter count (and on ``policy/flops`` when a policy
  reports it).
"""

from __future__ import annotations

import csv
import json
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from adaptlab.core.runs import SUMMARY_FILE, atomic_write_bytes, atomic_write_json, read_spec_data
from adaptlab.tuning.space import Dimension, decode, format_value
from adaptlab.tuning.trainable import ERROR_FILE, PARAMETERS_METRIC, TRIALS_DIR

__all__ = ["TrialResult", "collect_results", "pareto_front", "write_results"]

logger = logging.getLogger(__name__)

FLOPS_METRIC = "policy/flops"
COST_METRICS = (PARAMETERS_METRIC, FLOPS_METRIC)


@dataclass
class TrialResult:
    """One trial's outcome. ``metrics`` contains each objective's best value over its epochs."""

    trial_id: str
    values: dict[str, Any]
    status: str
    metrics: dict[str, float] = field(default_factory=dict)
    trainable: int | None = None
    flops: float | None = None
    epochs: int = 0
    error: str | None = None
    run_dir: str | None = None


def collect_results(
    result_grid: Any,
    experiment_dir: Path,
    dims: Sequence[Dimension],
    metrics: Sequence[str],
    modes: Sequence[str],
) -> list[TrialResult]:
    """Turn Ray's ResultGrid into :class:`TrialResult` rows, in trial-id order."""
    rows = []
    for result in result_grid:
        trial_id = Path(result.path).name
        trial_dir = experiment_dir / TRIALS_DIR / trial_id
        row = TrialResult(trial_id=trial_id, values=decode(result.config or {}, dims), status="")
        history = _history(result)
        for metric, mode in zip(metrics, modes):
            values = [v for v in history.get(metric, []) if _finite(v)]
            if values:
                row.metrics[metric] = max(values) if mode == "max" else min(values)
        row.epochs = len(history.get("epoch", []))
        flops = [v for v in history.get(FLOPS_METRIC, []) if _finite(v)]
        row.flops = flops[-1] if flops else None
        summary, row.run_dir = _summary(trial_dir)
        parameters = (summary or {}).get("parameters") or {}
        row.trainable = parameters.get("trainable")
        if row.trainable is None and history.get(PARAMETERS_METRIC):
            row.trainable = int(history[PARAMETERS_METRIC][-1])
        if result.error is not None:
            row.status = "failed"
            row.error = _error_line(trial_dir, result.error)
        elif summary is not None and summary.get("status") in ("completed", "early_stopped"):
            row.status = summary["status"]
        else:
            row.status = "stopped"  # by the scheduler or the time budget
        rows.append(row)
    return sorted(rows, key=lambda row: row.trial_id)


def _history(result: Any) -> dict[str, list[Any]]:
    frame = getattr(result, "metrics_dataframe", None)
    if frame is not None and len(frame):
        return {column: frame[column].tolist() for column in frame.columns}
    return {key: [value] for key, value in (result.metrics or {}).items()}


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _summary(trial_dir: Path) -> tuple[dict[str, Any] | None, str | None]:
    runs = sorted((trial_dir / "runs").glob("*/"))
    if not runs:
        return None, None
    path = runs[-1] / SUMMARY_FILE
    try:
        return json.loads(path.read_text(encoding="utf-8")), str(runs[-1])
    except (OSError, ValueError):
        return None, str(runs[-1])


def _error_line(trial_dir: Path, error: BaseException) -> str:
    try:
        record = json.loads((trial_dir / ERROR_FILE).read_text(encoding="utf-8"))
        return f"{record['type']}: {record['message']}"
    except (OSError, ValueError, KeyError, TypeError):
        lines = [line.strip() for line in str(error).splitlines() if line.strip()]
        return lines[-1] if lines else type(error).__name__


def best_trial(rows: Sequence[TrialResult], metric: str, mode: str) -> TrialResult | None:
    """Return the trial with the best ``metric`` among those that did not fail."""
    candidates = [row for row in rows if row.status != "failed" and metric in row.metrics]
    if not candidates:
        return None
    pick = max if mode == "max" else min
    return pick(candidates, key=lambda row: row.metrics[metric])


def pareto_front(
    points: Sequence[tuple[float, float]], mode: str
) -> list[int]:
    """Return indices of the points ``(cost, metric)`` that no other point dominates.

    Cost is minimized and the metric optimized in ``mode``. A point dominates another when it
    is at least as good in both and better in one. Indices are sorted by cost.
    """
    sign = 1.0 if mode == "max" else -1.0
    front = []
    for i, (cost, value) in enumerate(points):
        dominated = False
        for j, (other_cost, other_value) in enumerate(points):
            if j == i:
                continue
            no_worse = other_cost <= cost and sign * other_value >= sign * value
            better = other_cost < cost or sign * other_value > sign * value
            if no_worse and better:
                dominated = True
                break
        if not dominated:
            front.append(i)
    return sorted(front, key=lambda i: (points[i][0], -sign * points[i][1]))


def write_results(
    rows: Sequence[TrialResult],
    experiment_dir: Path,
    dims: Sequence[Dimension],
    metrics: Sequence[str],
    modes: Sequence[str],
    output_dir: str,
) -> dict[str, Path]:
    """Write the CSV, the best spec and the Pareto files; return their paths by kind."""
    written = {"csv": _write_csv(rows, experiment_dir / "results.csv", dims, metrics)}
    best = best_trial(rows, metrics[0], modes[0])
    if best is not None and best.run_dir is not None:
        path = experiment_dir / "best_spec.yaml"
        data = read_spec_data(Path(best.run_dir))
        data.pop("search", None)
        data["output_dir"] = output_dir
        header = (
            f"# Best trial {best.trial_id} of {experiment_dir.name}: {metrics[0]} "
            f"{best.metrics[metrics[0]]:.6g} ({modes[0]}). Train it with\n"
            f"#   adaptlab train {path}\n"
        )
        text = header + yaml.safe_dump(data, sort_keys=False)
        atomic_write_bytes(path, text.encode("utf-8"))
        written["best_spec"] = path
    fronts = {}
    for cost in COST_METRICS:
        front = _front_record(rows, cost, metrics[0], modes[0])
        if front is not None:
            fronts[cost] = front
    if fronts:
        record = {"metric": metrics[0], "mode": modes[0], "fronts": fronts}
        atomic_write_json(experiment_dir / "pareto.json", record)
        written["pareto_json"] = experiment_dir / "pareto.json"
        written["pareto_png"] = _plot_pareto(fronts, metrics[0], experiment_dir / "pareto.png")
    return written


def _cost_of(row: TrialResult, cost: str) -> float | None:
    value = row.trainable if cost == PARAMETERS_METRIC else row.flops
    return value if value is None or isinstance(value, int) else float(value)


def _front_record(
    rows: Sequence[TrialResult], cost: str, metric: str, mode: str
) -> dict[str, Any] | None:
    usable = [
        row for row in rows
        if row.status != "failed" and metric in row.metrics and _cost_of(row, cost) is not None
    ]
    if not usable:
        return None
    points = [(_cost_of(row, cost), row.metrics[metric]) for row in usable]
    front = pareto_front(points, mode)

    def entry(row: TrialResult) -> dict[str, Any]:
        return {
            "trial": row.trial_id,
            "values": row.values,
            metric: row.metrics[metric],
            cost: _cost_of(row, cost),
            "status": row.status,
        }

    return {
        "cost": cost,
        "front": [entry(usable[i]) for i in front],
        "points": [entry(row) for row in usable],
    }


def _plot_pareto(fronts: Mapping[str, Mapping[str, Any]], metric: str, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    figure, axes = plt.subplots(1, len(fronts), figsize=(5.5 * len(fronts), 4), squeeze=False)
    for axis, (cost, record) in zip(axes[0], fronts.items()):
        xs = [point[cost] for point in record["points"]]
        ys = [point[metric] for point in record["points"]]
        axis.scatter(xs, ys, color="0.6", label="trials")
        fx = [point[cost] for point in record["front"]]
        fy = [point[metric] for point in record["front"]]
        axis.plot(fx, fy, marker="o", color="tab:blue", label="Pareto front")
        for point in record["front"]:
            axis.annotate(point["trial"], (point[cost], point[metric]), fontsize=7)
        axis.set_xlabel(cost)
        axis.set_ylabel(metric)
        axis.grid(alpha=0.3)
        axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


def _write_csv(
    rows: Sequence[TrialResult], path: Path, dims: Sequence[Dimension], metrics: Sequence[str]
) -> Path:
    header = ["trial", "status", *[dim.path for dim in dims], *metrics, PARAMETERS_METRIC,
              FLOPS_METRIC, "epochs", "error", "run_dir"]
    lines = []
    for row in rows:
        values = [_csv_value(row.values.get(dim.path)) for dim in dims]
        scores = [row.metrics.get(metric, "") for metric in metrics]
        lines.append([row.trial_id, row.status, *values, *scores, row.trainable or "",
                      row.flops if row.flops is not None else "", row.epochs, row.error or "",
                      row.run_dir or ""])
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(lines)
    return path


def _csv_value(value: Any) -> Any:
    if isinstance(value, (Mapping, list)):
        return json.dumps(value, sort_keys=False)
    return "" if value is None else value


def table_rows(
    rows: Sequence[TrialResult], dims: Sequence[Dimension], metrics: Sequence[str]
) -> tuple[list[str], list[list[str]]]:
    """Return headers and cells of the printed trial table."""
    show_trainable = PARAMETERS_METRIC not in metrics  # else it is a metric column already
    headers = ["trial", *[dim.path for dim in dims], *metrics]
    headers += ["trainable", "status"] if show_trainable else ["status"]
    cells = []
    for row in rows:
        cell = [row.trial_id, *[format_value(row.values.get(dim.path, "")) for dim in dims]]
        cell += [_format_metric(row.metrics.get(metric)) for metric in metrics]
        if show_trainable:
            cell.append(f"{row.trainable:,}" if row.trainable is not None else "-")
        cell.append(row.status if row.error is None else f"{row.status}: {row.error}")
        cells.append(cell)
    return headers, cells


def _format_metric(value: float | None) -> str:
    if value is None:
        return "-"
    if float(value).is_integer() and abs(value) >= 1000:
        return f"{int(value):,}"
    return f"{value:.4g}"
