"""The ``swin`` backbone: feature maps, image-size checks, local weights, peft baseline targets."""

from __future__ import annotations

import pytest
import torch
from pydantic import ValidationError
from swin_testkit import TINY_SIZE, TINY_SWIN, tiny_backbone

from adaptlab.core.errors import ComponentBuildError, RunError
from adaptlab.plugins.mtlora.backbone import build_swin_backbone
from adaptlab.plugins.mtlora.config import (
    PEFT_BASELINE_TARGETS,
    SwinBackboneConfig,
    tileable_sizes,
    untileable_reason,
)
from adaptlab.plugins.peft_adapters.targets import resolve_targets
from adaptlab.registry import get_registry


def test_merged_layout_shapes() -> None:
    backbone = tiny_backbone().eval()
    features = backbone(torch.randn(2, 3, TINY_SIZE, TINY_SIZE))

    shapes = [tuple(feature.shape) for feature in features["stages"]]
    assert backbone.feature_channels == (48, 96, 192, 192)
    assert backbone.out_features == 192
    assert shapes == [(2, 48, 8, 8), (2, 96, 4, 4), (2, 192, 2, 2), (2, 192, 2, 2)]
    assert features["input_size"] == (TINY_SIZE, TINY_SIZE)
    assert "tasks" not in features


def test_stages_layout_shapes() -> None:
    backbone = tiny_backbone(features="stages").eval()
    features = backbone(torch.randn(1, 3, TINY_SIZE, TINY_SIZE))

    shapes = [tuple(feature.shape) for feature in features["stages"]]
    assert backbone.feature_channels == (24, 48, 96, 192)
    assert shapes == [(1, 24, 16, 16), (1, 48, 8, 8), (1, 96, 4, 4), (1, 192, 2, 2)]


def test_stage_maps_match_timm_features() -> None:
    backbone = tiny_backbone(features="stages").eval()
    images = torch.randn(1, 3, TINY_SIZE, TINY_SIZE)
    with torch.no_grad():
        ours = backbone(images)["stages"]
        timm_maps = backbone.model.forward_intermediates(images, intermediates_only=True)

    for mine, theirs in zip(ours, timm_maps, strict=True):
        assert torch.allclose(mine, theirs, atol=1e-6)


def test_swin_t_at_448_has_no_classifier() -> None:
    backbone = build_swin_backbone(SwinBackboneConfig(image_size=448))

    # timm's Swin-T has 28,288,354 parameters with its 1000-class classifier (769,000) and
    # final LayerNorm (1,536); the dense backbone keeps neither.
    assert sum(p.numel() for p in backbone.parameters()) == 28_288_354 - 769_000 - 1_536
    assert backbone.feature_channels == (192, 384, 768, 768)


def test_untileable_size_rejected() -> None:
    with pytest.raises(ValidationError) as caught:
        SwinBackboneConfig(image_size=96)

    message = str(caught.value)
    assert "image_size 96 cannot be tiled by window 7" in message
    assert "image sizes that work: 224" in message
    assert "window_size 3, 6, 12" in message


def test_registry_validation_rejects_size() -> None:
    config_model = get_registry().get("backbone", "swin").config

    with pytest.raises(ValidationError, match="stage 1 has an odd grid of 125 tokens"):
        config_model.model_validate({"image_size": 500})


def test_tileable_size_rules() -> None:
    assert untileable_reason(448, 4, 7, 4) == ""
    assert untileable_reason(224, 4, 7, 4) == ""
    assert "not a multiple of the patch size 4" in untileable_reason(450, 4, 7, 4)
    assert tileable_sizes(448, 4, 7, 4) == [224, 448, 672, 896]
    assert tileable_sizes(384, 4, 12, 4) == [32, 96, 192, 384]


def test_rejects_other_architectures() -> None:
    with pytest.raises(ValidationError, match="not a Swin v1 variant"):
        SwinBackboneConfig(variant="swinv2_tiny_window8_256")
    with pytest.raises(ValidationError, match="one entry per stage"):
        SwinBackboneConfig(**{**TINY_SWIN, "depths": [1, 1, 1]})


def test_weights_round_trip(tmp_path) -> None:
    from safetensors.torch import save_file

    source = tiny_backbone()
    # A timm checkpoint keeps the final norm, which the backbone drops after loading.
    state = dict(source.model.state_dict())
    state["norm.weight"] = torch.ones(192)
    state["norm.bias"] = torch.zeros(192)
    path = tmp_path / "swin.safetensors"
    save_file({k: v.contiguous() for k, v in state.items()}, str(path))

    torch.manual_seed(7)
    loaded = build_swin_backbone(SwinBackboneConfig(**TINY_SWIN, weights=str(path)))

    for (name, expected), actual in zip(
        source.named_parameters(), loaded.parameters(), strict=True
    ):
        assert torch.equal(expected, actual), name


def test_weights_errors_are_one_line(tmp_path) -> None:
    corrupt = tmp_path / "broken.pth"
    corrupt.write_bytes(b"not a checkpoint")
    missing = tmp_path / "absent.safetensors"

    with pytest.raises(ComponentBuildError) as caught:
        build_swin_backbone(SwinBackboneConfig(**TINY_SWIN, weights=str(corrupt)))
    assert "is not a readable torch state dict" in str(caught.value)
    assert "\n" not in str(caught.value)
    with pytest.raises(ComponentBuildError, match="not found"):
        build_swin_backbone(SwinBackboneConfig(**TINY_SWIN, weights=str(missing)))


def test_weights_of_another_shape_rejected(tmp_path) -> None:
    other = tiny_backbone(embed_dim=32, num_heads=[1, 2, 4, 4])
    path = tmp_path / "wide.pth"
    torch.save(other.model.state_dict(), path)

    with pytest.raises(ComponentBuildError, match="does not match the backbone: .* reshaped"):
        build_swin_backbone(SwinBackboneConfig(**TINY_SWIN, weights=str(path)))


def test_peft_baseline_regex_excludes_patch_embed() -> None:
    backbone = tiny_backbone()

    selected = resolve_targets(backbone, PEFT_BASELINE_TARGETS)
    by_suffix = resolve_targets(backbone, ["qkv", "proj", "fc1", "fc2"])

    assert "model.patch_embed.proj" in by_suffix
    assert "model.patch_embed.proj" not in selected
    assert all(".blocks." in name for name in selected)
    # Five blocks (depths 1, 2, 1, 1), four layers each.
    assert len(selected) == 5 * 4
    assert sorted(selected) == sorted(name for name in by_suffix if ".blocks." in name)


def test_peft_lora_baseline_on_swin() -> None:
    registry = get_registry()
    component = registry.get("adapter", "lora")
    config = component.config.model_validate({"r": 2, "target_modules": PEFT_BASELINE_TARGETS})
    adapter = component.build(config)
    backbone = adapter.apply(tiny_backbone())

    trainable = sum(p.numel() for p in backbone.parameters() if p.requires_grad)
    widths = [24, 48, 48, 96, 192]  # width of each of the five blocks
    # Rank 2 on qkv (C -> 3C), proj (C -> C), fc1 (C -> 4C) and fc2 (4C -> C): 2 * 16C.
    assert trainable == sum(2 * 16 * width for width in widths)
    features = backbone(torch.randn(1, 3, TINY_SIZE, TINY_SIZE))
    assert tuple(features["stages"][0].shape) == (1, 48, 8, 8)


def test_input_size_mismatch_one_line() -> None:
    backbone = tiny_backbone().eval()
    with pytest.raises(RunError) as caught:
        backbone(torch.randn(1, 3, TINY_SIZE // 2, TINY_SIZE // 2))
    message = str(caught.value)
    assert "\n" not in message
    assert f"{TINY_SIZE // 2}x{TINY_SIZE // 2}" in message
    assert "data.image_size" in message
    assert "model.backbone.image_size" in message
    assert "must match" in message
    with pytest.raises(RunError):
        backbone(torch.randn(1, 3, TINY_SIZE, TINY_SIZE // 2))
