"""The ``hrnet`` head: MTLoRA's per-task downsamplers and HRNet-style concatenation decoder.

Agiza et al., "MTLoRA", CVPR 2024, whose decoder follows the HRNet segmentation head (Sun et
al., CVPR 2019). Loss and metrics come from :mod:`adaptlab.plugins.mtlora.tasks` and depend on
the task's kind (segmentation, saliency, normals, edge, depth).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from adaptlab.core.contracts import Metric, TaskInfo
from adaptlab.core.errors import ComponentBuildError, RunError
from adaptlab.plugins.mtlora.config import HRNetHeadConfig

__all__ = ["HRNetHead", "build_hrnet_head"]

logger = logging.getLogger(__name__)


class HRNetHead(nn.Module):
    """Predicts one task's dense output ``(batch, out_channels, H, W)`` from feature maps.

    ``forward(features)`` reads ``features["tasks"][task]`` when the backbone computed task
    streams and ``features["stages"]`` otherwise (lists of NCHW maps, largest first). The
    output is upsampled bilinearly to ``features["input_size"]`` when present, else it stays at
    the resolution of the first map.
    """

    def __init__(
        self,
        task: TaskInfo,
        feature_channels: Sequence[int],
        channels: Sequence[int],
        hidden_multiplier: int,
        out_channels: int,
    ) -> None:
        super().__init__()
        self.task = task
        self.downsamplers = nn.ModuleList(
            nn.Conv2d(source, target, kernel_size=1, bias=False)
            for source, target in zip(feature_channels, channels, strict=True)
        )
        width = sum(channels)
        hidden = width * hidden_multiplier
        self.fuse = nn.Sequential(
            nn.Conv2d(width, hidden, kernel_size=1),
            nn.BatchNorm2d(hidden),
            nn.ReLU(),
        )
        self.predict = nn.Conv2d(hidden, out_channels, kernel_size=1)

    def forward(self, features: Mapping[str, Any]) -> torch.Tensor:
        maps = features.get("tasks", {}).get(self.task.name) or features.get("stages")
        if maps is None or len(maps) != len(self.downsamplers):
            found = "none" if maps is None else f"{len(maps)}"
            raise RunError(
                f"head 'hrnet' of task {self.task.name!r} expected {len(self.downsamplers)} "
                f"feature maps under 'stages' but found {found}; use the swin backbone"
            )
        reduced = [down(feature) for down, feature in zip(self.downsamplers, maps)]
        size = reduced[0].shape[-2:]
        resized = [reduced[0]] + [
            F.interpolate(feature, size=size, mode="bilinear", align_corners=False)
            for feature in reduced[1:]
        ]
        output = self.predict(self.fuse(torch.cat(resized, dim=1)))
        input_size = features.get("input_size")
        if input_size is not None and tuple(output.shape[-2:]) != tuple(input_size):
            output = F.interpolate(output, size=tuple(input_size), mode="bilinear", align_corners=False)
        return output

    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Return the task's unweighted loss (see ``tasks.dense_loss``)."""
        from adaptlab.plugins.mtlora.tasks import dense_loss

        return dense_loss(self.task, output, target)

    def new_metric(self) -> Metric:
        from adaptlab.plugins.mtlora.tasks import new_dense_metric

        return new_dense_metric(self.task)


def build_hrnet_head(
    config: HRNetHeadConfig,
    task: TaskInfo,
    in_features: int,
    feature_channels: Sequence[int] | None = None,
) -> HRNetHead:
    """Factory of the ``hrnet`` head; needs a backbone that declares ``feature_channels``."""
    from adaptlab.plugins.mtlora.tasks import output_channels

    if feature_channels is None:
        raise ComponentBuildError(
            f"head 'hrnet' of task {task.name!r} needs a dense backbone that declares "
            "feature_channels (the swin backbone does); the current one returns pooled "
            f"features of width {in_features}"
        )
    if len(feature_channels) != len(config.channels):
        raise ComponentBuildError(
            f"head 'hrnet' of task {task.name!r} has {len(config.channels)} channels entries "
            f"but the backbone returns {len(feature_channels)} feature maps; give one entry "
            "per map in channels"
        )
    out_channels = output_channels(task)
    head = HRNetHead(task, feature_channels, config.channels, config.hidden_multiplier, out_channels)
    logger.info(
        "built hrnet head for task %s (%s): features %s -> %s -> %d channels",
        task.name, task.kind, tuple(feature_channels), tuple(config.channels), out_channels,
    )
    return head
