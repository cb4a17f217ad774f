"""Small Swin backbones, task sets and composed models shared by the MTLoRA model tests."""

from __future__ import annotations

from typing import Any

import torch

from adaptlab.core.compose import ComposedModel
from adaptlab.core.contracts import TaskInfo
from adaptlab.plugins.mtlora.adapter import MTLoRAAdapter, build_mtlora_adapter
from adaptlab.plugins.mtlora.backbone import SwinBackbone, build_swin_backbone
from adaptlab.plugins.mtlora.config import HRNetHeadConfig, MTLoRAConfig, SwinBackboneConfig
from adaptlab.plugins.mtlora.heads import build_hrnet_head

TINY_SIZE = 64
# Grids of 16, 8, 4 and 2 tokens; window 4 tiles each (the last stage's window shrinks to 2).
TINY_SWIN: dict[str, Any] = {
    "image_size": TINY_SIZE,
    "window_size": 4,
    "embed_dim": 24,
    "depths": [1, 2, 1, 1],
    "num_heads": [1, 2, 2, 4],
}

PASCAL_TASKS = {
    "semseg": TaskInfo("semseg", "segmentation", num_classes=21),
    "human_parts": TaskInfo("human_parts", "segmentation", num_classes=7),
    "saliency": TaskInfo("saliency", "saliency"),
    "normals": TaskInfo("normals", "normals"),
}
TWO_TASKS = {
    "semseg": TaskInfo("semseg", "segmentation", num_classes=5),
    "normals": TaskInfo("normals", "normals"),
}


def tiny_backbone(**overrides: Any) -> SwinBackbone:
    torch.manual_seed(0)
    return build_swin_backbone(SwinBackboneConfig(**{**TINY_SWIN, **overrides}))


def compose(
    backbone: SwinBackbone,
    tasks: dict[str, TaskInfo],
    adapter_config: MTLoRAConfig | None = None,
) -> ComposedModel:
    """Return backbone (adapted when ``adapter_config`` is set) with one hrnet head per task."""
    adapter: MTLoRAAdapter | None = None
    if adapter_config is not None:
        adapter = build_mtlora_adapter(adapter_config, tuple(tasks))
        backbone = adapter.apply(backbone)
    heads = {
        name: build_hrnet_head(
            HRNetHeadConfig(), task, backbone.out_features, feature_channels=backbone.feature_channels
        )
        for name, task in tasks.items()
    }
    return ComposedModel(backbone, heads, dict.fromkeys(tasks, 1.0), adapter=adapter)


def perturb_adapter(module: torch.nn.Module, std: float = 0.02, seed: int = 1) -> None:
    """Give every ``lora_b`` matrix small random values, as after some training."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, parameter in module.named_parameters():
            if ".lora_b" in name or ".lora_task_b." in name:
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * std)
