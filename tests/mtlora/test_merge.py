"""Merging MTLoRA's task-agnostic branches into the Swin weights for inference."""

from __future__ import annotations

import pytest
import torch
from swin_testkit import TINY_SIZE, TWO_TASKS, compose, perturb_adapter, tiny_backbone
from torch import nn

from adaptlab.core.errors import ComponentBuildError
from adaptlab.plugins.mtlora.adapter import build_mtlora_adapter
from adaptlab.plugins.mtlora.config import MTLoRAConfig
from adaptlab.plugins.mtlora.lora import MTLoRALinear


def _features(backbone: nn.Module, images: torch.Tensor) -> list[torch.Tensor]:
    with torch.no_grad():
        features = backbone(images)
    return features["stages"] + [m for task in TWO_TASKS for m in features["tasks"][task]]


@pytest.mark.parametrize("combine", ["task", "task_plus_shared", "normalized_sum"])
def test_merge_keeps_outputs(combine) -> None:
    config = MTLoRAConfig(shared_rank=4, task_rank=2, combine=combine, patch_merging=True)
    adapter = build_mtlora_adapter(config, tuple(TWO_TASKS))
    backbone = adapter.apply(tiny_backbone()).eval()
    perturb_adapter(backbone)
    images = torch.randn(2, 3, TINY_SIZE, TINY_SIZE)
    before = _features(backbone, images)

    merged = adapter.merge(backbone)
    after = _features(merged, images)

    for expected, actual in zip(before, after, strict=True):
        assert torch.allclose(actual, expected, atol=1e-5, rtol=1e-5)


def test_merged_layers_are_plain_linear() -> None:
    adapter = build_mtlora_adapter(MTLoRAConfig(shared_rank=4, patch_merging=True), tuple(TWO_TASKS))
    backbone = adapter.merge(adapter.apply(tiny_backbone()))
    stages = backbone.model.layers

    for stage in stages:
        last = len(stage.blocks) - 1
        for position, block in enumerate(stage.blocks):
            assert type(block.attn.qkv) is nn.Linear
            task_layers = (block.attn.proj, block.mlp.fc1, block.mlp.fc2)
            if position < last:
                assert all(type(layer) is nn.Linear for layer in task_layers)
            else:
                assert all(isinstance(layer, MTLoRALinear) and layer.merged for layer in task_layers)
    assert all(type(stage.downsample.reduction) is nn.Linear for stage in stages[1:])


def test_composed_model_merged() -> None:
    model = compose(tiny_backbone(), TWO_TASKS, MTLoRAConfig(shared_rank=4, task_rank=2)).eval()
    perturb_adapter(model.backbone)
    images = torch.randn(1, 3, TINY_SIZE, TINY_SIZE)
    with torch.no_grad():
        before = model(images)
        after = model.merged()(images)

    assert model.adapter is None
    for task in TWO_TASKS:
        assert after[task].shape == (1, TWO_TASKS[task].num_classes or 3, TINY_SIZE, TINY_SIZE)
        assert torch.allclose(after[task], before[task], atol=1e-5, rtol=1e-5)


def test_merge_errors() -> None:
    adapter = build_mtlora_adapter(MTLoRAConfig(), tuple(TWO_TASKS))
    with pytest.raises(ValueError, match="call apply\\(\\) before merge\\(\\)"):
        adapter.merge(tiny_backbone())

    backbone = adapter.apply(tiny_backbone())
    with torch.no_grad():
        backbone.model.layers[0].blocks[0].attn.qkv.lora_b.fill_(float("nan"))
    with pytest.raises(ComponentBuildError, match="non-finite weights"):
        adapter.merge(backbone)
