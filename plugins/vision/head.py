"""The ``classification`` task head: logits from pooled features, cross-entropy and metrics."""

from __future__ import annotations

import logging

import torch
from torch import nn
from torch.nn import functional as F

from adaptlab.core.contracts import TaskInfo
from adaptlab.core.errors import ComponentBuildError
from adaptlab.plugins.vision.config import ClassificationHeadConfig

__all__ = ["ClassificationHead", "ClassificationMetric", "build_classification_head"]

logger = logging.getLogger(__name__)

_ACTIVATIONS = {"gelu": nn.GELU, "relu": nn.ReLU}


class ClassificationHead(nn.Module):
    """Maps features ``(batch, in_features)`` to logits ``(batch, num_classes)``."""

    def __init__(
        self, config: ClassificationHeadConfig, in_features: int, num_classes: int
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.label_smoothing = config.label_smoothing
        layers: list[nn.Module] = []
        width = in_features
        for hidden in config.hidden:
            if config.dropout:
                layers.append(nn.Dropout(config.dropout))
            layers += [nn.Linear(width, hidden), _ACTIVATIONS[config.activation]()]
            width = hidden
        if config.dropout:
            layers.append(nn.Dropout(config.dropout))
        layers.append(nn.Linear(width, num_classes))
        self.layers = nn.Sequential(*layers)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.layers(features)

    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Return the mean cross-entropy of logits ``output`` against class indices ``target``."""
        return F.cross_entropy(output, target.long(), label_smoothing=self.label_smoothing)

    def new_metric(self) -> ClassificationMetric:
        return ClassificationMetric(self.num_classes, self.label_smoothing)


class ClassificationMetric:
    """Accuracy, macro F1 and mean loss over a whole split.

    ``compute`` returns ``accuracy`` as a fraction in [0, 1], ``macro_f1`` as the unweighted
    mean F1 over the classes that occur among targets or predictions (scikit-learn's
    ``f1_score(average="macro")`` convention), and ``loss`` as the mean per-sample
    cross-entropy with the head's label smoothing.
    """

    def __init__(self, num_classes: int, label_smoothing: float = 0.0) -> None:
        self.num_classes = num_classes
        self.label_smoothing = label_smoothing
        self.confusion = torch.zeros((num_classes, num_classes), dtype=torch.long)
        self.loss_sum = 0.0
        self.count = 0

    def update(self, output: torch.Tensor, target: torch.Tensor) -> None:
        """Add a batch of logits ``(batch, num_classes)`` and class indices ``(batch,)``."""
        output = output.detach().float().cpu()
        target = target.detach().long().cpu().reshape(-1)
        if target.numel() and (target.min() < 0 or target.max() >= self.num_classes):
            raise ValueError(
                f"class index out of range [0, {self.num_classes}): "
                f"{target.min().item()}..{target.max().item()}"
            )
        predicted = output.argmax(dim=1)
        cells = target * self.num_classes + predicted
        self.confusion += torch.bincount(cells, minlength=self.num_classes**2).view(
            self.num_classes, self.num_classes
        )
        self.loss_sum += F.cross_entropy(
            output, target, reduction="sum", label_smoothing=self.label_smoothing
        ).item()
        self.count += target.numel()

    def compute(self) -> dict[str, float]:
        """Return ``accuracy``, ``macro_f1`` and ``loss``; raise ``ValueError`` if empty."""
        if self.count == 0:
            raise ValueError("the metric received no samples; call update() before compute()")
        confusion = self.confusion.double()
        true_positive = confusion.diag()
        false_positive = confusion.sum(dim=0) - true_positive
        false_negative = confusion.sum(dim=1) - true_positive
        denominator = 2 * true_positive + false_positive + false_negative
        present = denominator > 0
        f1 = 2 * true_positive[present] / denominator[present]
        return {
            "accuracy": (true_positive.sum() / self.count).item(),
            "macro_f1": f1.mean().item(),
            "loss": self.loss_sum / self.count,
        }


def build_classification_head(
    config: ClassificationHeadConfig, task: TaskInfo, in_features: int
) -> ClassificationHead:
    """Factory of the ``classification`` head; the task must be a classification task."""
    if task.kind != "classification":
        raise ComponentBuildError(
            f"head 'classification' cannot predict task {task.name!r} of kind {task.kind!r}; "
            "choose a head for that kind of task"
        )
    if task.num_classes is None or task.num_classes < 2:
        raise ComponentBuildError(
            f"task {task.name!r} declares num_classes={task.num_classes}; the classification "
            "head needs at least 2 classes"
        )
    if in_features < 1:
        raise ComponentBuildError(f"classification head got in_features={in_features}")
    head = ClassificationHead(config, in_features, task.num_classes)
    logger.info(
        "built classification head for task %s: %d -> %s -> %d",
        task.name, in_features, config.hidden or "[]", task.num_classes,
    )
    return head
