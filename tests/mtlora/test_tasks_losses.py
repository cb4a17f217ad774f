"""Losses and output channels of the MTLoRA dense tasks."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from adaptlab.core.contracts import TaskInfo
from adaptlab.core.errors import ComponentBuildError, RunError
from adaptlab.plugins.mtlora.tasks import EDGE_POS_WEIGHT, dense_loss, output_channels

SEMSEG = TaskInfo("semseg", "segmentation", num_classes=4)
SALIENCY = TaskInfo("saliency", "saliency")
EDGE = TaskInfo("edge", "edge")
NORMALS = TaskInfo("normals", "normals")
DEPTH = TaskInfo("depth", "depth")


def test_output_channels_by_kind():
    assert output_channels(SEMSEG) == 4
    assert output_channels(NORMALS) == 3
    assert output_channels(SALIENCY) == 1
    assert output_channels(EDGE) == 1
    assert output_channels(DEPTH) == 1


def test_unknown_kind_is_rejected():
    with pytest.raises(ComponentBuildError, match="kind 'classification'"):
        output_channels(TaskInfo("digit", "classification", num_classes=10))


def test_cross_entropy_skips_ignored_pixels():
    torch.manual_seed(0)
    output = torch.randn(2, 4, 3, 3)
    target = torch.randint(0, 4, (2, 3, 3))
    target[0, 0, 0] = 255

    loss = dense_loss(SEMSEG, output, target)

    valid = target != 255
    expected = F.cross_entropy(
        output.permute(0, 2, 3, 1)[valid], target[valid], reduction="mean"
    )
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)


def test_cross_entropy_all_ignored_is_zero_with_gradient():
    output = torch.randn(1, 4, 2, 2, requires_grad=True)

    loss = dense_loss(SEMSEG, output, torch.full((1, 2, 2), 255))
    loss.backward()

    assert loss.item() == 0.0
    assert output.grad is not None


def test_balanced_bce_weights_by_batch_balance():
    output = torch.zeros(1, 1, 1, 4)  # every pixel has loss log(2)
    target = torch.tensor([[[[1.0, 0.0, 0.0, 0.0]]]])

    loss = dense_loss(SALIENCY, output, target)

    # One positive of four pixels: positives weigh 3/4, negatives 1/4, divided by 4 pixels.
    expected = (0.75 * math.log(2) + 0.25 * 3 * math.log(2)) / 4
    assert loss.item() == pytest.approx(expected, rel=1e-6)


def test_edge_bce_uses_fixed_positive_weight():
    output = torch.zeros(1, 1, 1, 4)
    target = torch.tensor([[[[1.0, 0.0, 0.0, 0.0]]]])

    loss = dense_loss(EDGE, output, target)

    expected = (EDGE_POS_WEIGHT * math.log(2) + (1 - EDGE_POS_WEIGHT) * 3 * math.log(2)) / 4
    assert loss.item() == pytest.approx(expected, rel=1e-6)


def test_normals_l1_on_normalised_output_over_valid_pixels():
    target = torch.zeros(1, 3, 1, 3)
    target[0, 2, 0, :2] = 1.0  # the third pixel is invalid
    output = torch.zeros(1, 3, 1, 3)
    output[0, 2, 0, 0] = 5.0  # normalises to the target exactly
    output[0, :, 0, 1] = torch.tensor([1.0, 0.0, 1.0])
    output[0, :, 0, 2] = torch.tensor([9.0, 9.0, 9.0])

    loss = dense_loss(NORMALS, output, target)

    # Pixel 2 normalises to (0.7071, 0, 0.7071): L1 = 0.7071 + 0.2929 = 1; mean over 6 values.
    assert loss.item() == pytest.approx(1.0 / 6.0, rel=1e-5)


def test_depth_l1_over_valid_pixels():
    output = torch.tensor([[[[1.0, 5.0, 7.0]]]])
    target = torch.tensor([[[[2.0, 3.0, 0.0]]]])

    assert dense_loss(DEPTH, output, target).item() == pytest.approx(1.5)


def test_loss_resizes_output_bilinearly():
    output = torch.full((1, 1, 2, 2), 4.0)
    target = torch.full((1, 1, 8, 8), 1.0)

    assert dense_loss(DEPTH, output, target).item() == pytest.approx(3.0)


def test_loss_rejects_wrong_target_shape():
    with pytest.raises(RunError, match=r"expected a target of shape \[B, H, W\]"):
        dense_loss(SEMSEG, torch.zeros(1, 4, 2, 2), torch.zeros(1, 1, 2, 2, dtype=torch.long))
