"""The ``graph_regression`` task head: readout, MLP and normalized regression of one target.

Interface with the graph encoder: the encoder returns
:class:`~.readout.NodeEmbeddings` ``(x, batch, num_graphs)``, which ``ComposedModel`` passes
unchanged to every head. The head pools it per graph with its own readout, so heads of one
model may pool differently. A bare ``(num_nodes, features)`` tensor is read as one graph.

Targets are normalized as ``(transform(y) - mean) / std``. ``transform`` is ``"log"`` (natural
logarithm, for positive targets such as delay and area) or ``"none"``, and ``mean`` and ``std``
are statistics of the transformed train-split targets. The dataset passes all three in
``TaskInfo.extra`` (defaults ``"none"``, 0 and 1). ``forward`` returns normalized predictions.
``loss`` normalizes the raw targets itself. ``predict`` and the metric from ``new_metric`` work
in the target's unit.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from adaptlab.core.contracts import TaskInfo
from adaptlab.core.errors import ComponentBuildError

from ..config import GraphRegressionHeadConfig
from .encoder import activation_layer
from .metrics import RegressionMetric
from .readout import NodeEmbeddings, Readout, as_node_embeddings

__all__ = [
    "TARGET_TRANSFORMS",
    "GraphRegressionHead",
    "TargetNormalizer",
    "build_graph_regression_head",
]

logger = logging.getLogger(__name__)

TARGET_TRANSFORMS = ("none", "log")


class TargetNormalizer(nn.Module):
    """Maps raw targets to ``(transform(y) - mean) / std`` and back.

    ``mean`` and ``std`` are buffers of shape ``(num_outputs,)``, so they move with the model
    and are saved in its checkpoint.
    """

    def __init__(self, transform: str, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        if transform not in TARGET_TRANSFORMS:
            raise ValueError(
                f"unknown target transform {transform!r}; choose one of {', '.join(TARGET_TRANSFORMS)}"
            )
        if len(mean) != len(std):
            raise ValueError(f"target mean has {len(mean)} values but std has {len(std)}")
        if not all(math.isfinite(value) for value in mean):
            raise ValueError(f"target mean must be finite, got {list(mean)}")
        if not all(math.isfinite(value) and value > 0 for value in std):
            raise ValueError(f"target std must be positive and finite, got {list(std)}")
        self.transform = transform
        self.register_buffer("mean", torch.tensor(list(mean), dtype=torch.float32))
        self.register_buffer("std", torch.tensor(list(std), dtype=torch.float32))

    def normalize(self, target: torch.Tensor) -> torch.Tensor:
        """Normalize raw targets whose last dimension is the output (or absent for one output)."""
        value = target.float()
        if self.transform == "log":
            if bool((value <= 0).any()):
                raise ValueError(
                    f"the log target transform needs positive targets, found {value.min().item()}; "
                    "set transform 'none' in the task's extra"
                )
            value = torch.log(value)
        return (value - self._shaped(self.mean, value)) / self._shaped(self.std, value)

    def denormalize(self, output: torch.Tensor) -> torch.Tensor:
        """Invert :meth:`normalize`."""
        value = output.float() * self._shaped(self.std, output) + self._shaped(self.mean, output)
        if self.transform == "log":
            value = torch.exp(value)
        return value

    @staticmethod
    def _shaped(statistic: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
        # One output: predictions are (num_graphs,), so the statistic is a scalar.
        return statistic[0] if statistic.numel() == 1 else statistic


class GraphRegressionHead(nn.Module):
    """Predicts ``num_outputs`` normalized values per graph from node embeddings.

    ``forward`` returns shape ``(num_graphs,)`` for one output and ``(num_graphs, num_outputs)``
    otherwise.
    """

    def __init__(
        self,
        config: GraphRegressionHeadConfig,
        in_features: int,
        num_outputs: int,
        normalizer: TargetNormalizer,
    ) -> None:
        super().__init__()
        self.num_outputs = num_outputs
        self.loss_kind = config.loss
        self.huber_delta = config.huber_delta
        self.normalizer = normalizer
        self.readout = Readout(config.readout, in_features)
        layers: list[nn.Module] = []
        width = self.readout.out_features
        for hidden in config.hidden:
            if config.dropout:
                layers.append(nn.Dropout(config.dropout))
            layers += [nn.Linear(width, hidden), activation_layer(config.activation)]
            width = hidden
        if config.dropout:
            layers.append(nn.Dropout(config.dropout))
        layers.append(nn.Linear(width, num_outputs))
        self.mlp = nn.Sequential(*layers)

    def forward(self, features: NodeEmbeddings | torch.Tensor) -> torch.Tensor:
        pooled = self.readout(as_node_embeddings(features))
        output = self.mlp(pooled)
        return output.squeeze(-1) if self.num_outputs == 1 else output

    def predict(self, features: NodeEmbeddings | torch.Tensor) -> torch.Tensor:
        """Return predictions in the target's unit."""
        return self.normalizer.denormalize(self(features))

    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Return the configured loss between ``output`` and the normalized raw ``target``."""
        output = output.float()
        if target.numel() != output.numel():
            raise ValueError(
                f"target has {target.numel()} values for {output.numel()} predictions "
                f"(shape {tuple(output.shape)}); the dataset must give {self.num_outputs} "
                "value(s) per graph"
            )
        normalized = self.normalizer.normalize(target.reshape(output.shape))
        if self.loss_kind == "l1":
            return F.l1_loss(output, normalized)
        if self.loss_kind == "huber":
            return F.huber_loss(output, normalized, delta=self.huber_delta)
        return F.mse_loss(output, normalized)

    def new_metric(self) -> RegressionMetric:
        return RegressionMetric(self.normalizer.denormalize)


def _statistic(extra: Mapping[str, Any], key: str, default: float, count: int) -> list[float]:
    value = extra.get(key, default)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        values = [value]
    elif isinstance(value, Sequence) and not isinstance(value, str) and all(
        isinstance(item, (int, float)) and not isinstance(item, bool) for item in value
    ):
        values = list(value)
    else:
        raise ComponentBuildError(
            f"task extra {key!r} must be a number or a list of numbers, got {value!r}"
        )
    if len(values) == 1:
        values = values * count
    if len(values) != count:
        raise ComponentBuildError(
            f"task extra {key!r} has {len(values)} values for {count} outputs; give one value "
            "or one per output"
        )
    return [float(item) for item in values]


def build_graph_regression_head(
    config: GraphRegressionHeadConfig, task: TaskInfo, in_features: int
) -> GraphRegressionHead:
    """Factory of the ``graph_regression`` head; the task must be a regression task."""
    if task.kind != "regression":
        raise ComponentBuildError(
            f"head 'graph_regression' cannot predict task {task.name!r} of kind {task.kind!r}; "
            "choose a head for that kind of task"
        )
    if in_features < 1:
        raise ComponentBuildError(
            f"graph_regression head got in_features={in_features}; the encoder's out_features "
            "must be positive"
        )
    num_outputs = task.num_outputs or 1
    extra = task.extra
    if config.normalize_targets:
        transform = str(extra.get("transform", "none"))
        mean = _statistic(extra, "mean", 0.0, num_outputs)
        std = _statistic(extra, "std", 1.0, num_outputs)
    else:
        transform, mean, std = "none", [0.0] * num_outputs, [1.0] * num_outputs
    try:
        normalizer = TargetNormalizer(transform, mean, std)
    except ValueError as error:
        raise ComponentBuildError(f"task {task.name!r}: {error}") from error
    head = GraphRegressionHead(config, in_features, num_outputs, normalizer)
    logger.info(
        "built graph_regression head for task %s: %s readout, %d -> %s -> %d, targets %s "
        "(mean %s, std %s)", task.name, config.readout, in_features, config.hidden or "[]",
        num_outputs, transform, mean, std,
    )
    return head
