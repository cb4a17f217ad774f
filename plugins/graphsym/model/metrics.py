"""Regression metrics of graph-level predictions, in the target's physical unit.

``accuracy`` is ``100 * (1 - MAPE)`` with MAPE as a fraction, so it can be negative when
predictions are off by more than 100 % on average. The others are MAPE in percent, the
coefficient of determination R² and Kendall's rank correlation tau-b
(``scipy.stats.kendalltau``), which measures whether designs are ranked correctly.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from scipy.stats import kendalltau

__all__ = ["RegressionMetric"]

logger = logging.getLogger(__name__)


class RegressionMetric:
    """Collects predictions and targets over a whole split and computes regression metrics.

    ``update`` receives the head's output, which ``denormalize`` maps back to the target's unit
    (identity when ``None``), and the raw targets. Every output value is paired with the target
    value at the same position, so a multi-output task is scored over all values together.
    """

    def __init__(self, denormalize: Callable[[torch.Tensor], torch.Tensor] | None = None) -> None:
        self.denormalize = denormalize
        self.true: list[float] = []
        self.predicted: list[float] = []

    def update(self, output: torch.Tensor, target: torch.Tensor) -> None:
        """Add a batch of head outputs and the matching raw targets."""
        output = output.detach().float()
        if self.denormalize is not None:
            output = self.denormalize(output)
        predicted = output.cpu().double().reshape(-1)
        true = torch.as_tensor(target).detach().cpu().double().reshape(-1)
        if predicted.numel() != true.numel():
            raise ValueError(
                f"the batch has {predicted.numel()} predicted values but {true.numel()} target "
                "values; the dataset's targets must have one value per head output"
            )
        self.predicted.extend(predicted.tolist())
        self.true.extend(true.tolist())

    def predictions(self) -> tuple[list[float], list[float]]:
        """Return ``(y_true, y_pred)`` in the target's unit, in the order the batches came."""
        return list(self.true), list(self.predicted)

    def write_artifacts(self, folder: Path, stem: str) -> list[Path]:
        """Write ``STEM.csv`` (actual, predicted) and ``STEM.png``, a predicted-versus-actual plot."""
        import matplotlib

        matplotlib.use("Agg")
        from matplotlib import pyplot

        folder = Path(folder)
        table = folder / f"{stem}.csv"
        rows = "".join(f"{true!r},{predicted!r}\n" for true, predicted in zip(self.true, self.predicted))
        table.write_text("actual,predicted\n" + rows, encoding="utf-8")

        figure, axes = pyplot.subplots(figsize=(4.5, 4.5), dpi=120)
        axes.scatter(self.true, self.predicted, s=12, alpha=0.7)
        low = min(min(self.true), min(self.predicted))
        high = max(max(self.true), max(self.predicted))
        axes.plot([low, high], [low, high], color="gray", linewidth=1, linestyle="--")
        scores = self.compute()
        axes.set_title(f"{stem}: accuracy {scores['accuracy']:.2f} %, R² {scores['r2']:.3f}")
        axes.set_xlabel("actual")
        axes.set_ylabel("predicted")
        figure.tight_layout()
        plot = folder / f"{stem}.png"
        figure.savefig(plot)
        pyplot.close(figure)
        return [table, plot]

    def compute(self) -> dict[str, float]:
        """Return ``accuracy`` (%), ``mape`` (%), ``r2`` and ``kendall_tau``.

        MAPE skips zero targets, for which it is undefined, and is NaN when every target is
        zero. R² is NaN with fewer than two values or constant targets, and tau is NaN with
        fewer than two values or when targets or predictions are constant. Raises
        ``ValueError`` when no value was added.
        """
        if not self.true:
            raise ValueError("the metric received no samples; call update() before compute()")
        true = np.asarray(self.true, dtype=np.float64)
        predicted = np.asarray(self.predicted, dtype=np.float64)
        nonzero = true != 0
        skipped = int(true.size - nonzero.sum())
        if skipped:
            logger.warning("MAPE skips %d of %d targets that are zero", skipped, true.size)
        if nonzero.any():
            relative = np.abs(predicted[nonzero] - true[nonzero]) / np.abs(true[nonzero])
            mape = float(100.0 * relative.mean())
        else:
            mape = float("nan")
        return {
            "accuracy": 100.0 - mape,
            "mape": mape,
            "r2": _r2(true, predicted),
            "kendall_tau": _kendall_tau(true, predicted),
        }


def _r2(true: np.ndarray, predicted: np.ndarray) -> float:
    total = float(((true - true.mean()) ** 2).sum())
    if true.size < 2 or total == 0.0:
        return float("nan")
    residual = float(((true - predicted) ** 2).sum())
    return 1.0 - residual / total


def _kendall_tau(true: np.ndarray, predicted: np.ndarray) -> float:
    # scipy returns NaN with a warning for constant input; the check here avoids the warning.
    if true.size < 2 or np.all(true == true[0]) or np.all(predicted == predicted[0]):
        return float("nan")
    return float(kendalltau(true, predicted).statistic)
