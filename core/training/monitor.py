"""The monitored metric: which value selects the best checkpoint, and in which direction.

Kept free of torch so that drivers that only choose a metric (``adaptlab tune``) stay light.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass

from adaptlab.core.errors import RunError

__all__ = ["Monitor", "infer_mode"]

# Metric names whose value improves upwards; any other name is minimized unless a mode is set.
_MAXIMIZED = frozenset(
    {
        "accuracy",
        "acc",
        "f1",
        "miou",
        "iou",
        "r2",
        "tau",
        "precision",
        "recall",
        "auc",
        "ap",
        "map",
        "psnr",
        "ssim",
        "delta_m",
    }
)


def infer_mode(name: str) -> str:
    """Return ``max`` when the metric part of ``name`` is a score such as accuracy, else ``min``.

    The last ``/`` part is split at non-alphanumeric characters, and the mode is ``max`` when
    any token is a known score (accuracy, f1, miou, r2, tau, ...). ``top1_accuracy`` is
    maximized while ``mape`` is minimized.
    """
    metric = name.rsplit("/", 1)[-1].lower()
    if metric in _MAXIMIZED:
        return "max"
    tokens = set(re.split(r"[^a-z0-9]+", metric))
    return "max" if tokens & _MAXIMIZED else "min"


@dataclass(frozen=True)
class Monitor:
    """The metric that selects the best checkpoint and drives early stopping."""

    name: str
    mode: str

    @classmethod
    def create(cls, name: str | None, mode: str | None) -> Monitor:
        name = name or "loss"
        return cls(name, mode or infer_mode(name))

    def improves(self, value: float, reference: float | None, min_delta: float = 0.0) -> bool:
        """Return whether ``value`` beats ``reference`` by more than ``min_delta``."""
        if math.isnan(value):
            return False
        if reference is None:
            return True
        if self.mode == "max":
            return value > reference + min_delta
        return value < reference - min_delta

    def read(self, metrics: Mapping[str, float]) -> float:
        """Return the monitored value; raise :class:`RunError` listing the available names."""
        if self.name not in metrics:
            raise RunError(
                f"train.monitor {self.name!r} is not among the validation metrics "
                f"({', '.join(sorted(metrics))}); set train.monitor to one of them"
            )
        return float(metrics[self.name])
