"""The ``hrnet`` head: shapes per task kind, task streams, parameter count, losses."""

from __future__ import annotations

import pytest
import torch
from swin_testkit import TINY_SIZE, tiny_backbone

from adaptlab.core.contracts import TaskInfo
from adaptlab.core.errors import ComponentBuildError
from adaptlab.plugins.mtlora.config import HRNetHeadConfig
from adaptlab.plugins.mtlora.heads import build_hrnet_head
from adaptlab.plugins.mtlora.tasks import metric_names
from adaptlab.registry import get_registry

KINDS = [
    (TaskInfo("semseg", "segmentation", num_classes=5), 5),
    (TaskInfo("saliency", "saliency"), 1),
    (TaskInfo("normals", "normals"), 3),
    (TaskInfo("edge", "edge"), 1),
    (TaskInfo("depth", "depth"), 1),
]


@pytest.fixture(scope="module")
def features():
    backbone = tiny_backbone().eval()
    with torch.no_grad():
        maps = backbone(torch.randn(2, 3, TINY_SIZE, TINY_SIZE))
    return backbone.feature_channels, maps


@pytest.mark.parametrize(("task", "channels"), KINDS, ids=[task.kind for task, _ in KINDS])
def test_output_at_input_size(features, task, channels) -> None:
    feature_channels, maps = features
    head = build_hrnet_head(HRNetHeadConfig(), task, 192, feature_channels=feature_channels).eval()

    with torch.no_grad():
        output = head(maps)
    assert output.shape == (2, channels, TINY_SIZE, TINY_SIZE)

    if task.kind == "segmentation":
        target = torch.randint(0, channels, (2, TINY_SIZE, TINY_SIZE))
    else:
        target = torch.rand(2, channels, TINY_SIZE, TINY_SIZE) + 0.1
    metric = head.new_metric()
    metric.update(output, target)
    assert set(metric.compute()) == set(metric_names(task))


def test_reads_task_stream(features) -> None:
    feature_channels, maps = features
    task = TaskInfo("saliency", "saliency")
    head = build_hrnet_head(HRNetHeadConfig(), task, 192, feature_channels=feature_channels).eval()
    other = [torch.randn_like(m) for m in maps["stages"]]

    with torch.no_grad():
        shared = head(maps)
        own = head({**maps, "tasks": {"saliency": other}})
        foreign = head({**maps, "tasks": {"normals": other}})

    assert not torch.allclose(own, shared)
    assert torch.equal(foreign, shared)


def test_parameter_count_swin_t() -> None:
    task = TaskInfo("semseg", "segmentation", num_classes=21)
    head = build_hrnet_head(HRNetHeadConfig(), task, 768, feature_channels=(192, 384, 768, 768))

    # Downsamplers 192*18 + 384*36 + 768*72 + 768*144, 1x1 270 -> 1080 with bias, batch norm
    # weight and bias, 1x1 1080 -> 21 with bias.
    expected = 183_168 + 270 * 1080 + 1080 + 2 * 1080 + 1080 * 21 + 21
    assert sum(p.numel() for p in head.parameters()) == expected


def test_loss_backward(features) -> None:
    feature_channels, maps = features
    task = TaskInfo("semseg", "segmentation", num_classes=5)
    head = build_hrnet_head(HRNetHeadConfig(), task, 192, feature_channels=feature_channels)
    target = torch.randint(0, 5, (2, TINY_SIZE, TINY_SIZE))

    loss = head.loss(head(maps), target)
    loss.backward()
    assert loss.item() > 0
    assert head.predict.weight.grad is not None


def test_build_errors() -> None:
    task = TaskInfo("semseg", "segmentation", num_classes=5)
    with pytest.raises(ComponentBuildError, match="needs a dense backbone"):
        build_hrnet_head(HRNetHeadConfig(), task, 512)
    with pytest.raises(ComponentBuildError, match="has 2 channels entries"):
        build_hrnet_head(HRNetHeadConfig(channels=[8, 8]), task, 64, feature_channels=(8, 8, 8, 8))
    with pytest.raises(ComponentBuildError, match="kinds segmentation"):
        build_hrnet_head(HRNetHeadConfig(), TaskInfo("x", "classification"), 8, feature_channels=(8,) * 4)


def test_registered_with_feature_channels() -> None:
    from adaptlab.core.compose import _accepts_keyword

    component = get_registry().get("head", "hrnet")
    assert _accepts_keyword(component.load_factory(), "feature_channels")
