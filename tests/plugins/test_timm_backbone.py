"""Tests of the ``timm`` backbone: feature widths, local weights files and build errors."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest
import torch
from pydantic import ValidationError
from safetensors.torch import save_file

from adaptlab.core.errors import ComponentBuildError
from adaptlab.plugins.timm_backbone.config import TimmBackboneConfig
from adaptlab.registry import PluginSelection, load_registry

SMALL_VIT = {"depth": 2, "patch_size": 8}


@pytest.fixture(scope="module")
def build():
    component = load_registry(PluginSelection(only=["timm"])).get("backbone", "timm")

    def build_backbone(**fields):
        return component.build(TimmBackboneConfig(**fields))

    return build_backbone


def small_vit(build, **fields):
    settings = {"model": "vit_tiny_patch16_224", "image_size": 32, "model_kwargs": SMALL_VIT}
    return build(**{**settings, **fields})


def test_resnet18_out_features(build):
    backbone = build(model="resnet18", image_size=32).eval()

    features = backbone(torch.randn(2, 3, 32, 32))

    assert backbone.out_features == 512
    assert features.shape == (2, 512)


def test_vit_tiny_small_image_size(build):
    backbone = small_vit(build).eval()

    features = backbone(torch.randn(2, 3, 32, 32))

    assert backbone.out_features == 192
    assert features.shape == (2, 192)
    # 32 / 8 = 4 patches per side, plus the class token: image_size reached timm as img_size.
    assert tuple(backbone.model.pos_embed.shape) == (1, 17, 192)
    assert len(backbone.model.blocks) == 2


def test_in_chans_one_channel(build):
    backbone = build(model="resnet18", in_chans=1).eval()

    assert tuple(backbone.model.conv1.weight.shape) == (64, 1, 7, 7)
    assert backbone(torch.randn(1, 1, 32, 32)).shape == (1, 512)


def test_weights_round_trip_safetensors(build, tmp_path):
    torch.manual_seed(0)
    source = small_vit(build).eval()
    path = tmp_path / "vit.safetensors"
    save_file(source.state_dict(), str(path))
    images = torch.randn(2, 3, 32, 32)

    torch.manual_seed(1)
    loaded = small_vit(build, weights=str(path)).eval()
    torch.manual_seed(1)
    fresh = small_vit(build).eval()

    assert torch.equal(loaded(images), source(images))
    assert not torch.equal(fresh(images), source(images))


def test_weights_pth_ignores_classifier(build, tmp_path):
    torch.manual_seed(0)
    source = build(model="resnet18").eval()
    state = dict(source.model.state_dict())
    state["fc.weight"] = torch.zeros(10, 512)
    state["fc.bias"] = torch.zeros(10)
    path = tmp_path / "resnet18.pth"
    torch.save({"state_dict": state, "epoch": 3}, path)
    images = torch.randn(1, 3, 32, 32)

    loaded = build(model="resnet18", weights=str(path)).eval()

    assert torch.equal(loaded(images), source(images))


def test_weights_position_embedding_resampled(build, tmp_path):
    path = tmp_path / "vit32.safetensors"
    save_file(small_vit(build).state_dict(), str(path))

    loaded = small_vit(build, image_size=48, weights=str(path))

    assert tuple(loaded.model.pos_embed.shape) == (1, 37, 192)


def test_unknown_model_suggests_names(build):
    with pytest.raises(ComponentBuildError) as error:
        build(model="resnet_18")

    assert "unknown timm model 'resnet_18'" in str(error.value)
    assert "'resnet18'" in str(error.value)


def test_missing_weights_file_error(build, tmp_path):
    path = tmp_path / "absent.safetensors"

    with pytest.raises(ComponentBuildError) as error:
        build(model="resnet18", weights=str(path))

    assert "not found" in str(error.value)
    assert str(path) in str(error.value)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("broken.safetensors", "while loading it as a safetensors file: "),
        ("broken.pth", "(UnpicklingError while loading it as a torch state dict)"),
        ("broken.pt", "(UnpicklingError while loading it as a torch state dict)"),
    ],
)
def test_corrupt_weights_file_error(build, tmp_path, name, expected):
    path = tmp_path / name
    path.write_bytes(b"\x00\x01 this is not a weights file" * 10)

    with pytest.raises(ComponentBuildError) as error:
        build(model="resnet18", weights=str(path))

    message = str(error.value)
    assert message.startswith(f"weights file {str(path)!r} is not a readable checkpoint (")
    assert expected in message
    assert message.endswith(
        "save the weights with safetensors.torch.save_file(state_dict, path) or "
        "torch.save(model.state_dict(), path), or point `weights` at another file"
    )
    assert "\n" not in message
    assert "Please file an issue" not in message
    assert error.value.__cause__ is not None


def test_non_tensor_checkpoint_error(build, tmp_path):
    path = tmp_path / "list.pt"
    torch.save([1, 2, 3], path)

    with pytest.raises(ComponentBuildError) as error:
        build(model="resnet18", weights=str(path))

    assert "does not contain a state dict" in str(error.value)


def test_mismatched_keys_counted(build, tmp_path):
    path = tmp_path / "depth2.safetensors"
    save_file(small_vit(build).state_dict(), str(path))

    with pytest.raises(ComponentBuildError) as error:
        small_vit(build, weights=str(path), model_kwargs={**SMALL_VIT, "depth": 3})

    message = str(error.value)
    # One ViT block has 12 tensors: two norms, qkv, proj, fc1 and fc2, each weight and bias.
    assert "12 keys missing from the file" in message
    assert "blocks.2." in message
    assert "unexpected" not in message


def test_mismatched_shapes_reported(build, tmp_path):
    path = tmp_path / "rgb.safetensors"
    save_file(build(model="resnet18").model.state_dict(), str(path))

    with pytest.raises(ComponentBuildError) as error:
        build(model="resnet18", in_chans=1, weights=str(path))

    message = str(error.value)
    assert "1 key with a different shape" in message
    assert "conv1.weight: file (64, 3, 7, 7) vs model (64, 1, 7, 7)" in message


def test_unaccepted_model_kwarg_error(build):
    with pytest.raises(ComponentBuildError) as error:
        build(model="resnet18", model_kwargs={"depth": 2})

    assert "does not accept the argument 'depth'" in str(error.value)
    assert "model_kwargs" in str(error.value)


def test_frozen_backbone_stays_eval(build):
    torch.manual_seed(0)
    backbone = build(model="resnet18", freeze=True)
    images = torch.randn(4, 3, 32, 32)
    expected = backbone.eval()(images)

    backbone.train()
    features = backbone(images)

    assert all(not parameter.requires_grad for parameter in backbone.parameters())
    assert backbone.training
    assert not backbone.model.training
    assert torch.equal(features, expected)


@pytest.mark.parametrize(
    "fields",
    [
        {"model": "resnet18", "model_kwargs": {"num_classes": 10}},
        {"model": "resnet18", "model_kwargs": {"pretrained": True}},
        {"model": "hf-hub:timm/resnet18.a1_in1k"},
        {"model": "resnet18", "weights": "weights.npz"},
        {"model": "resnet18", "in_chans": 0},
        {"model": "resnet18", "unknown_field": 1},
    ],
)
def test_config_rejects_invalid_fields(fields):
    with pytest.raises(ValidationError):
        TimmBackboneConfig(**fields)
