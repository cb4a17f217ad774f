"""Dense-prediction tasks of MTLoRA: output channels, losses, split metrics and delta-m.

Targets follow one encoding for every dataset of this plugin (``scenes``, ``pascal_context``,
``nyud``): ``semseg`` and ``human_parts`` are ``int64 [B, H, W]`` class indices with 255 for
ignored pixels; ``saliency`` and ``edge`` are ``float [B, 1, H, W]`` in {0, 1}; ``normals`` is
``float [B, 3, H, W]`` of unit vectors, all zero where invalid; ``depth`` is
``float [B, 1, H, W]`` in metres, 0 where invalid. Outputs are raw (logits, unnormalised
vectors, metres) ``[B, C, H, W]``; an output of another spatial size is resized bilinearly to
the target first.

Losses follow the multi-task dense-prediction recipe of MTLoRA (Agiza et al., CVPR 2024),
which inherits it from ASTMT (Maninis et al., CVPR 2019): cross-entropy with ignore index 255,
HED-style balanced binary cross-entropy for saliency (positive weight = share of negatives
in the batch) and edges (fixed positive weight 0.95, the reference's ``edge_w``), L1 between
the L2-normalised predicted normal and the target over valid pixels, and L1 on depth over
valid pixels.

Metric values are percentages for mIoU, maxF, ODS F and the within-angle shares, degrees for
normal errors and metres for depth RMSE, so single-task baselines quoted from papers (for
example ``semseg/miou: 67.21``) compare directly.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
import torch.nn.functional as F

from adaptlab.core.contracts import Metric, TaskInfo
from adaptlab.core.errors import ComponentBuildError, RunError
from adaptlab.plugins.mtlora.config import METRIC_NAMES

__all__ = [
    "EDGE_POS_WEIGHT",
    "IGNORE_INDEX",
    "LOWER_IS_BETTER",
    "METRIC_NAMES",
    "TASK_KINDS",
    "DenseMetric",
    "delta_m",
    "dense_loss",
    "metric_names",
    "new_dense_metric",
    "output_channels",
]

IGNORE_INDEX = 255
EDGE_POS_WEIGHT = 0.95
TASK_KINDS = ("segmentation", "saliency", "normals", "edge", "depth")

# Defined with the configurations, which the CLI imports without torch.
LOWER_IS_BETTER = frozenset({"mean_error", "median_error", "rmse", "loss"})
"""Metric names whose value improves downwards; delta-m counts them with a negative sign."""

# Saliency thresholds on the foreground probability: mean IoU is scanned over 15 values in
# [0.2, 0.9] and maxF over 0.05, 0.10, ..., 0.95, as in the ASTMT evaluation that MTLoRA uses.
_SALIENCY_IOU_THRESHOLDS = tuple(0.2 + 0.05 * step for step in range(15))
_F_THRESHOLDS = tuple(0.05 * step for step in range(1, 20))
_SALIENCY_BETA_SQUARED = 0.3
_EDGE_TOLERANCE_PIXELS = 1
# Angular errors are binned at 0.01 degree to take the split-wide median without storing
# every pixel's error.
_ANGLE_BIN_DEGREES = 0.01
_ANGLE_BINS = int(round(180.0 / _ANGLE_BIN_DEGREES))
_WITHIN_DEGREES = {"within_11_25": 11.25, "within_22_5": 22.5, "within_30": 30.0}


def _kind(task: TaskInfo) -> str:
    if task.kind not in TASK_KINDS:
        raise ComponentBuildError(
            f"task {task.name!r} has kind {task.kind!r}, which MTLoRA's dense heads do not "
            f"support; use a dataset whose tasks are of kinds {', '.join(TASK_KINDS)}"
        )
    return task.kind


def output_channels(task: TaskInfo) -> int:
    """Return the channels a head predicts for ``task``: classes, 1 or 3 (normals)."""
    kind = _kind(task)
    if kind == "segmentation":
        if not task.num_classes or task.num_classes < 2:
            raise ComponentBuildError(
                f"segmentation task {task.name!r} declares num_classes={task.num_classes}; "
                "a segmentation task needs at least 2 classes"
            )
        return task.num_classes
    if kind == "normals":
        return 3
    return 1


def metric_names(task: TaskInfo) -> tuple[str, ...]:
    """Return the names that ``new_dense_metric(task).compute()`` reports."""
    return METRIC_NAMES[_kind(task)]


def _match_size(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    size = target.shape[-2:]
    if output.shape[-2:] == size:
        return output
    return F.interpolate(output, size=size, mode="bilinear", align_corners=False)


def _check_shapes(task: TaskInfo, output: torch.Tensor, target: torch.Tensor) -> None:
    if output.dim() != 4:
        raise RunError(
            f"task {task.name!r}: expected an output of shape [B, C, H, W], found "
            f"{tuple(output.shape)}"
        )
    expected_target_dims = 3 if task.kind == "segmentation" else 4
    if target.dim() != expected_target_dims or target.shape[0] != output.shape[0]:
        layout = "[B, H, W]" if expected_target_dims == 3 else "[B, C, H, W]"
        raise RunError(
            f"task {task.name!r}: expected a target of shape {layout} with the output's batch "
            f"size {output.shape[0]}, found {tuple(target.shape)}"
        )


def _zero_loss(output: torch.Tensor) -> torch.Tensor:
    # Keeps the graph connected when a batch has no valid pixel, so backward still works.
    return output.sum() * 0.0


def _balanced_bce(
    output: torch.Tensor, target: torch.Tensor, pos_weight: float | None
) -> torch.Tensor:
    """HED-style balanced binary cross-entropy, summed per class and divided by all pixels."""
    labels = (target >= 0.5).to(output.dtype)
    if pos_weight is None:
        positives = labels.sum()
        weight = (labels.numel() - positives) / labels.numel()
    else:
        weight = torch.tensor(pos_weight, dtype=output.dtype, device=output.device)
    per_pixel = F.binary_cross_entropy_with_logits(output, labels, reduction="none")
    positive_loss = (per_pixel * labels).sum()
    negative_loss = (per_pixel * (1.0 - labels)).sum()
    return (weight * positive_loss + (1.0 - weight) * negative_loss) / labels.numel()


def dense_loss(task: TaskInfo, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Return the unweighted scalar loss of one batch of ``task`` (see the module docstring)."""
    kind = _kind(task)
    _check_shapes(task, output, target)
    output = _match_size(output, target).float()
    if kind == "segmentation":
        if not bool((target != IGNORE_INDEX).any()):
            return _zero_loss(output)
        return F.cross_entropy(output, target.long(), ignore_index=IGNORE_INDEX)
    if kind == "saliency":
        return _balanced_bce(output, target, pos_weight=None)
    if kind == "edge":
        return _balanced_bce(output, target, pos_weight=EDGE_POS_WEIGHT)
    if kind == "normals":
        valid = (target != 0).any(dim=1, keepdim=True).expand_as(target)
        if not bool(valid.any()):
            return _zero_loss(output)
        predicted = F.normalize(output, p=2, dim=1, eps=1e-12)
        return (predicted - target).abs()[valid].mean()
    valid = target > 0
    if not bool(valid.any()):
        return _zero_loss(output)
    return (output - target).abs()[valid].mean()


class DenseMetric:
    """Base of the split metrics: resizes outputs and checks shapes before ``_accumulate``."""

    def __init__(self, task: TaskInfo) -> None:
        self.task = task

    def update(self, output: torch.Tensor, target: torch.Tensor) -> None:
        """Add one batch (output ``[B, C, H, W]``, target as in the module docstring)."""
        _check_shapes(self.task, output, target)
        with torch.no_grad():
            self._accumulate(_match_size(output.detach(), target).float(), target)

    def _accumulate(self, output: torch.Tensor, target: torch.Tensor) -> None:
        raise NotImplementedError

    def compute(self) -> dict[str, float]:
        raise NotImplementedError


class SegmentationMetric(DenseMetric):
    """mIoU and pixel accuracy from a confusion matrix accumulated over the whole split.

    Classes that appear neither in the targets nor in the predictions of the split are left
    out of the mean, because their IoU is undefined.
    """

    def __init__(self, task: TaskInfo) -> None:
        super().__init__(task)
        self.num_classes = output_channels(task)
        self.confusion = torch.zeros(self.num_classes, self.num_classes, dtype=torch.float64)

    def _accumulate(self, output: torch.Tensor, target: torch.Tensor) -> None:
        predicted = output.argmax(dim=1)
        valid = target != IGNORE_INDEX
        truth = target[valid].long()
        if truth.numel() and (int(truth.min()) < 0 or int(truth.max()) >= self.num_classes):
            raise RunError(
                f"task {self.task.name!r}: target class {int(truth.max())} is outside "
                f"0..{self.num_classes - 1} (255 is the ignore index)"
            )
        pairs = truth * self.num_classes + predicted[valid]
        counts = torch.bincount(pairs, minlength=self.num_classes**2)
        self.confusion += counts.reshape(self.num_classes, self.num_classes).cpu().double()

    def class_iou(self) -> torch.Tensor:
        """Return the IoU of each class in [0, 1] (NaN for classes absent from the split)."""
        true_positive = self.confusion.diag()
        union = self.confusion.sum(0) + self.confusion.sum(1) - true_positive
        return torch.where(union > 0, true_positive / union.clamp(min=1), torch.nan)

    def compute(self) -> dict[str, float]:
        iou = self.class_iou()
        present = ~torch.isnan(iou)
        total = float(self.confusion.sum())
        miou = float(iou[present].mean()) * 100.0 if bool(present.any()) else math.nan
        accuracy = float(self.confusion.diag().sum()) / total * 100.0 if total else math.nan
        return {"miou": miou, "pixel_accuracy": accuracy}


class SaliencyMetric(DenseMetric):
    """Saliency mIoU and maxF over the sigmoid of the output.

    ``miou`` is the maximum over 15 thresholds in [0.2, 0.9] of the foreground IoU averaged
    over images. An image with no foreground in target and prediction scores 1. ``maxf`` is
    the maximum over thresholds 0.05, 0.10, ..., 0.95 of F-beta with beta^2 = 0.3, from true,
    predicted and actual positives counted over the whole split.
    """

    def __init__(self, task: TaskInfo) -> None:
        super().__init__(task)
        self.iou_sum = torch.zeros(len(_SALIENCY_IOU_THRESHOLDS), dtype=torch.float64)
        self.images = 0
        self.counts = _ThresholdCounts()

    def _accumulate(self, output: torch.Tensor, target: torch.Tensor) -> None:
        probability = torch.sigmoid(output[:, :1])
        truth = target[:, :1] >= 0.5
        thresholds = torch.tensor(_SALIENCY_IOU_THRESHOLDS, device=output.device)
        predicted = probability.unsqueeze(1) > thresholds.view(1, -1, 1, 1, 1)
        truth_expanded = truth.unsqueeze(1)
        intersection = (predicted & truth_expanded).flatten(2).sum(-1).double()
        union = (predicted | truth_expanded).flatten(2).sum(-1).double()
        iou = torch.where(union > 0, intersection / union.clamp(min=1), 1.0)
        self.iou_sum += iou.sum(0).cpu()
        self.images += output.shape[0]
        self.counts.add(probability, truth, truth)

    def compute(self) -> dict[str, float]:
        if self.images == 0:
            return {"miou": math.nan, "maxf": math.nan}
        miou = float((self.iou_sum / self.images).max()) * 100.0
        return {"miou": miou, "maxf": self.counts.max_f(_SALIENCY_BETA_SQUARED) * 100.0}


class _ThresholdCounts:
    """Split-wide true / predicted / actual positive counts at each of ``_F_THRESHOLDS``."""

    def __init__(self) -> None:
        size = len(_F_THRESHOLDS)
        self.true_positive = torch.zeros(size, dtype=torch.float64)
        self.true_positive_of_truth = torch.zeros(size, dtype=torch.float64)
        self.predicted = torch.zeros(size, dtype=torch.float64)
        self.actual = torch.zeros(size, dtype=torch.float64)

    def add(
        self, probability: torch.Tensor, hit_region: torch.Tensor, truth: torch.Tensor,
        covered: torch.Tensor | None = None,
    ) -> None:
        """Count one batch.

        A predicted pixel is a true positive when it lies in ``hit_region`` (the truth, or the
        dilated truth for edges). A true pixel counts as recalled when it lies in
        ``covered[threshold]`` (the dilated prediction), or when predicted where ``covered``
        is None.
        """
        for index, threshold in enumerate(_F_THRESHOLDS):
            predicted = probability >= threshold
            self.true_positive[index] += float((predicted & hit_region).sum())
            self.predicted[index] += float(predicted.sum())
            recalled = predicted if covered is None else covered[index]
            self.true_positive_of_truth[index] += float((truth & recalled).sum())
            self.actual[index] += float(truth.sum())

    def max_f(self, beta_squared: float) -> float:
        precision = self.true_positive / self.predicted.clamp(min=1)
        recall = self.true_positive_of_truth / self.actual.clamp(min=1)
        denominator = beta_squared * precision + recall
        score = (1 + beta_squared) * precision * recall / denominator.clamp(min=1e-12)
        return float(score.max())


class EdgeMetric(DenseMetric):
    """ODS-like F-measure of edges (percent), maximised over one threshold for the split.

    A predicted edge pixel is correct when a target edge lies within 1 pixel (3x3
    neighbourhood), and a target edge pixel is recalled when a predicted edge lies within
    1 pixel.
    NOTE: this approximates the BSDS benchmark's ODS F, which thins predictions and matches
    pixels one-to-one with a distance tolerance. Use it to compare runs of this project, not
    against published edge numbers.
    """

    def __init__(self, task: TaskInfo) -> None:
        super().__init__(task)
        self.counts = _ThresholdCounts()

    def _accumulate(self, output: torch.Tensor, target: torch.Tensor) -> None:
        probability = torch.sigmoid(output[:, :1])
        truth = target[:, :1] >= 0.5
        size = 2 * _EDGE_TOLERANCE_PIXELS + 1
        near_truth = F.max_pool2d(truth.float(), size, stride=1, padding=_EDGE_TOLERANCE_PIXELS)
        covered = []
        for threshold in _F_THRESHOLDS:
            predicted = (probability >= threshold).float()
            dilated = F.max_pool2d(predicted, size, stride=1, padding=_EDGE_TOLERANCE_PIXELS)
            covered.append(dilated > 0)
        self.counts.add(probability, near_truth > 0, truth, covered)

    def compute(self) -> dict[str, float]:
        if float(self.counts.actual[0]) == 0 and float(self.counts.predicted[0]) == 0:
            return {"odsf": math.nan}
        return {"odsf": self.counts.max_f(1.0) * 100.0}


class NormalsMetric(DenseMetric):
    """Angular error between the normalised prediction and the target over valid pixels.

    ``mean_error`` and ``median_error`` are in degrees. The median is read from a histogram
    with 0.01 degree bins over the whole split. ``within_11_25``, ``within_22_5`` and
    ``within_30`` are the percentages of valid pixels with an error below that many degrees.
    """

    def __init__(self, task: TaskInfo) -> None:
        super().__init__(task)
        self.error_sum = 0.0
        self.pixels = 0
        self.within = dict.fromkeys(_WITHIN_DEGREES, 0)
        self.histogram = torch.zeros(_ANGLE_BINS, dtype=torch.float64)

    def _accumulate(self, output: torch.Tensor, target: torch.Tensor) -> None:
        valid = (target != 0).any(dim=1)
        predicted = F.normalize(output, p=2, dim=1, eps=1e-12)
        reference = F.normalize(target.float(), p=2, dim=1, eps=1e-12)
        cosine = (predicted * reference).sum(dim=1).clamp(-1.0, 1.0)
        errors = torch.rad2deg(torch.acos(cosine))[valid].double()
        self.error_sum += float(errors.sum())
        self.pixels += errors.numel()
        for name, limit in _WITHIN_DEGREES.items():
            self.within[name] += int((errors < limit).sum())
        self.histogram += torch.histc(errors, bins=_ANGLE_BINS, min=0.0, max=180.0).cpu()

    def _median(self) -> float:
        cumulative = self.histogram.cumsum(0)
        index = int(torch.searchsorted(cumulative, torch.tensor(self.pixels / 2.0).double()))
        return (index + 0.5) * _ANGLE_BIN_DEGREES

    def compute(self) -> dict[str, float]:
        if self.pixels == 0:
            return dict.fromkeys(METRIC_NAMES["normals"], math.nan)
        result = {"mean_error": self.error_sum / self.pixels, "median_error": self._median()}
        for name, count in self.within.items():
            result[name] = count / self.pixels * 100.0
        return result


class DepthMetric(DenseMetric):
    """Root-mean-square depth error in metres over every valid pixel of the split."""

    def __init__(self, task: TaskInfo) -> None:
        super().__init__(task)
        self.squared_sum = 0.0
        self.pixels = 0

    def _accumulate(self, output: torch.Tensor, target: torch.Tensor) -> None:
        valid = target > 0
        self.squared_sum += float(((output - target) ** 2)[valid].double().sum())
        self.pixels += int(valid.sum())

    def compute(self) -> dict[str, float]:
        if self.pixels == 0:
            return {"rmse": math.nan}
        return {"rmse": math.sqrt(self.squared_sum / self.pixels)}


_METRICS: Mapping[str, type[DenseMetric]] = {
    "segmentation": SegmentationMetric,
    "saliency": SaliencyMetric,
    "edge": EdgeMetric,
    "normals": NormalsMetric,
    "depth": DepthMetric,
}


def new_dense_metric(task: TaskInfo) -> Metric:
    """Return an empty split metric for ``task``; keys are ``metric_names(task)``."""
    return _METRICS[_kind(task)](task)


def delta_m(metrics: Mapping[str, float], baselines: Mapping[str, float]) -> float:
    """Return delta-m in percent: the mean relative gain over single-task baselines.

    ``delta_m = 100 / T * sum_t (-1)^l_t * (M_t - B_t) / B_t`` over the ``T`` entries of
    ``baselines`` (``TASK/METRIC`` -> single-task value), where ``l_t`` is 1 for metrics in
    ``LOWER_IS_BETTER`` (Maninis et al., CVPR 2019; MTLoRA reports it with one metric per
    task). Raises ``RunError`` when ``baselines`` is empty, a baseline is 0 or a metric is
    missing from ``metrics``.
    """
    if not baselines:
        raise RunError(
            "delta_m needs single-task baselines; set data.single_task, e.g. "
            "{semseg/miou: 67.21, normals/mean_error: 17.97}"
        )
    missing = [name for name in baselines if name not in metrics]
    if missing:
        raise RunError(
            f"delta_m: no evaluated metric for baseline {', '.join(missing)} (evaluated: "
            f"{', '.join(sorted(metrics))}); give baselines only for tasks that have a head"
        )
    total = 0.0
    for name, baseline in baselines.items():
        if baseline == 0:
            raise RunError(f"delta_m: the single-task baseline of {name} is 0; give its value")
        sign = -1.0 if name.rsplit("/", 1)[-1] in LOWER_IS_BETTER else 1.0
        total += sign * (float(metrics[name]) - baseline) / baseline
    return 100.0 * total / len(baselines)
