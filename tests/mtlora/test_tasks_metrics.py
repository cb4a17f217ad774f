"""Split metrics and delta-m of the MTLoRA dense tasks, on hand-made inputs with known values."""

from __future__ import annotations

import math

import pytest
import torch

from adaptlab.core.contracts import TaskInfo
from adaptlab.core.errors import RunError
from adaptlab.plugins.mtlora.tasks import delta_m, metric_names, new_dense_metric

SEMSEG = TaskInfo("semseg", "segmentation", num_classes=3)
SALIENCY = TaskInfo("saliency", "saliency")
NORMALS = TaskInfo("normals", "normals")
DEPTH = TaskInfo("depth", "depth")
EDGE = TaskInfo("edge", "edge")


def _logits(classes: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Return [1, C, H, W] logits whose argmax is ``classes`` ([H, W])."""
    logits = torch.zeros(1, num_classes, *classes.shape)
    logits.scatter_(1, classes[None, None], 5.0)
    return logits


def test_miou_from_confusion_matrix():
    metric = new_dense_metric(SEMSEG)
    predicted = torch.tensor([[0, 1], [2, 2]])
    target = torch.tensor([[[0, 1], [1, 255]]])

    metric.update(_logits(predicted, 3), target)
    result = metric.compute()

    # IoU: class 0 = 1/1, class 1 = 1/2, class 2 = 0/1; the ignored pixel counts nowhere.
    assert result["miou"] == pytest.approx(50.0)
    assert result["pixel_accuracy"] == pytest.approx(200.0 / 3.0)


def test_miou_accumulates_over_split():
    metric = new_dense_metric(SEMSEG)
    # Batch 1: class 0 everywhere, all right. Batch 2: class 1 predicted as 0 on 3 of 4 pixels.
    metric.update(_logits(torch.zeros(2, 2, dtype=torch.long), 3), torch.zeros(1, 2, 2).long())
    metric.update(
        _logits(torch.tensor([[0, 0], [0, 1]]), 3), torch.ones(1, 2, 2, dtype=torch.long)
    )

    result = metric.compute()

    # Split totals: class 0 IoU = 4/7, class 1 IoU = 1/4; class 2 never appears.
    assert result["miou"] == pytest.approx(100.0 * (4 / 7 + 1 / 4) / 2)
    # The mean of per-batch mIoUs would be (100 + 12.5) / 2 instead.
    assert result["miou"] != pytest.approx(56.25)


def test_miou_rejects_out_of_range_target():
    metric = new_dense_metric(SEMSEG)

    with pytest.raises(RunError, match="target class 7 is outside 0..2"):
        metric.update(_logits(torch.zeros(2, 2, dtype=torch.long), 3), torch.full((1, 2, 2), 7))


def test_saliency_miou_and_maxf():
    metric = new_dense_metric(SALIENCY)
    output = torch.tensor([[[[10.0, -10.0], [10.0, -10.0]]]])
    target = torch.tensor([[[[1.0, 0.0], [0.0, 0.0]]]])

    metric.update(output, target)
    result = metric.compute()

    # Predicted foreground: 2 pixels, 1 of them true. IoU 1/2; precision 1/2, recall 1.
    assert result["miou"] == pytest.approx(50.0)
    assert result["maxf"] == pytest.approx(100.0 * 1.3 * 0.5 / (0.3 * 0.5 + 1.0))


def test_saliency_picks_best_threshold():
    metric = new_dense_metric(SALIENCY)
    # Probabilities 0.7 on the object and 0.3 on the background: thresholds in (0.3, 0.7)
    # separate them exactly.
    probability = torch.tensor([[[[0.7, 0.3, 0.3, 0.3]]]])
    output = torch.log(probability / (1 - probability))

    metric.update(output, torch.tensor([[[[1.0, 0.0, 0.0, 0.0]]]]))
    result = metric.compute()

    assert result["miou"] == pytest.approx(100.0)
    assert result["maxf"] == pytest.approx(100.0)


def test_normals_angular_errors():
    metric = new_dense_metric(NORMALS)
    target = torch.zeros(1, 3, 1, 4)
    target[0, 2, 0, :3] = 1.0  # three valid pixels facing the camera, the fourth invalid
    output = torch.zeros(1, 3, 1, 4)
    output[0, 2, 0, 0] = 2.0  # 0 degrees (unnormalised prediction)
    output[0, :, 0, 1] = torch.tensor([1.0, 0.0, 1.0])  # 45 degrees
    output[0, :, 0, 2] = torch.tensor([1.0, 0.0, 0.0])  # 90 degrees
    output[0, :, 0, 3] = torch.tensor([0.0, 1.0, 0.0])  # invalid pixel: ignored

    metric.update(output, target)
    result = metric.compute()

    assert result["mean_error"] == pytest.approx(45.0, abs=1e-3)
    assert result["median_error"] == pytest.approx(45.0, abs=0.01)
    assert result["within_11_25"] == pytest.approx(100.0 / 3)
    assert result["within_22_5"] == pytest.approx(100.0 / 3)
    assert result["within_30"] == pytest.approx(100.0 / 3)


def test_depth_rmse_over_valid_pixels():
    metric = new_dense_metric(DEPTH)

    metric.update(torch.tensor([[[[1.0, 2.0, 3.0]]]]), torch.tensor([[[[1.0, 4.0, 0.0]]]]))
    metric.update(torch.tensor([[[[5.0]]]]), torch.tensor([[[[2.0]]]]))

    # Squared errors 0, 4 and 9 over three valid pixels.
    assert metric.compute()["rmse"] == pytest.approx(math.sqrt(13 / 3))


def test_edge_f_tolerates_one_pixel():
    near = new_dense_metric(EDGE)
    far = new_dense_metric(EDGE)
    target = torch.zeros(1, 1, 7, 7)
    target[0, 0, 2, :] = 1.0
    shifted_by_one = torch.full((1, 1, 7, 7), -10.0)
    shifted_by_one[0, 0, 3, :] = 10.0
    shifted_by_three = torch.full((1, 1, 7, 7), -10.0)
    shifted_by_three[0, 0, 5, :] = 10.0

    near.update(shifted_by_one, target)
    far.update(shifted_by_three, target)

    assert near.compute()["odsf"] == pytest.approx(100.0)
    assert far.compute()["odsf"] == pytest.approx(0.0)


def test_metric_resizes_output_to_target():
    metric = new_dense_metric(DEPTH)
    output = torch.full((1, 1, 2, 2), 3.0)

    metric.update(output, torch.full((1, 1, 4, 4), 1.0))

    assert metric.compute()["rmse"] == pytest.approx(2.0)


def test_metric_names_match_compute():
    for task in (SEMSEG, SALIENCY, NORMALS, DEPTH, EDGE):
        metric = new_dense_metric(task)
        channels = 3 if task is SEMSEG or task is NORMALS else 1
        target = {
            "segmentation": torch.zeros(1, 4, 4, dtype=torch.long),
            "normals": torch.nn.functional.normalize(torch.ones(1, 3, 4, 4), dim=1),
        }.get(task.kind, torch.ones(1, 1, 4, 4))
        metric.update(torch.randn(1, channels, 4, 4), target)

        assert tuple(metric.compute()) == metric_names(task)


def test_delta_m_value_and_sign():
    baselines = {"semseg/miou": 67.21, "normals/mean_error": 17.97}

    better = delta_m({"semseg/miou": 70.0, "normals/mean_error": 16.0}, baselines)
    worse_normals = delta_m({"semseg/miou": 67.21, "normals/mean_error": 19.0}, baselines)

    expected = 100.0 / 2 * ((70.0 - 67.21) / 67.21 - (16.0 - 17.97) / 17.97)
    assert better == pytest.approx(expected)
    assert better > 0
    # A higher angular error is worse, so delta-m drops below zero.
    assert worse_normals == pytest.approx(-100.0 / 2 * (19.0 - 17.97) / 17.97)


def test_delta_m_of_published_mtlora_numbers():
    # MTLoRA (rank 64) against single-task models on PASCAL-Context, as published: +2.55 %.
    baselines = {
        "semseg/miou": 67.21, "human_parts/miou": 61.93, "saliency/miou": 62.35,
        "normals/mean_error": 17.97,
    }
    metrics = {
        "semseg/miou": 67.90, "human_parts/miou": 59.84, "saliency/miou": 65.40,
        "normals/mean_error": 16.60,
    }

    assert delta_m(metrics, baselines) == pytest.approx(2.55, abs=0.01)


def test_delta_m_without_baselines_raises():
    with pytest.raises(RunError, match="delta_m needs single-task baselines; set data.single_task"):
        delta_m({"semseg/miou": 50.0}, {})


def test_delta_m_missing_metric_raises():
    with pytest.raises(RunError, match="no evaluated metric for baseline depth/rmse"):
        delta_m({"semseg/miou": 50.0}, {"semseg/miou": 40.0, "depth/rmse": 0.5})
