"""Tests of the peft adapters on a two-block timm ViT: injection, counts, merging, targeting."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest
import torch
from pydantic import ValidationError
from torch import nn

from adaptlab.core.contracts import Adapter
from adaptlab.core.errors import ComponentBuildError
from adaptlab.plugins.peft_adapters.adapter import count_parameters
from adaptlab.plugins.timm_backbone.config import TimmBackboneConfig
from adaptlab.registry import PluginSelection, load_registry

# vit_tiny with 2 blocks, width 192, MLP width 768 and 4x4 patches of 8 pixels on 32x32 input.
VIT = TimmBackboneConfig(
    model="vit_tiny_patch16_224", image_size=32, model_kwargs={"depth": 2, "patch_size": 8}
)
WIDTH, QKV_WIDTH, MLP_WIDTH, DEPTH = 192, 576, 768, 2

METHODS = [
    ("lora", {"r": 4}),
    ("dora", {"r": 4}),
    ("loha", {"r": 4}),
    ("lokr", {"r": 4}),
    ("ia3", {"target_modules": ["qkv", "fc2"], "feedforward_modules": ["fc2"]}),
    ("oft", {"block_size": 32}),
    ("vera", {"r": 16}),
    ("peft", {"method": "hra", "options": {"r": 4}}),
]


@pytest.fixture(scope="module")
def registry():
    return load_registry(PluginSelection(only=["timm", "peft"]))


@pytest.fixture
def backbone(registry):
    torch.manual_seed(0)
    return registry.get("backbone", "timm").build(VIT).eval()


def make_adapter(registry, name, **fields):
    component = registry.get("adapter", name)
    return component.build(component.config(**fields))


def images():
    return torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))


def base_parameter_names(module):
    return {name for name, _ in module.named_parameters()}


@pytest.mark.parametrize(("name", "fields"), METHODS, ids=[name for name, _ in METHODS])
def test_method_freezes_base_weights(registry, backbone, name, fields):
    _, total_before = count_parameters(backbone)
    base_names = base_parameter_names(backbone)
    adapter = make_adapter(registry, name, **fields)

    adapted = adapter.apply(backbone)
    trainable, total = count_parameters(adapted)
    trainable_names = [n for n, p in adapted.named_parameters() if p.requires_grad]

    assert isinstance(adapter, Adapter)
    assert adapted is backbone
    assert adapted.out_features == WIDTH
    assert adapted(images()).shape == (2, WIDTH)
    assert 0 < trainable < total
    assert total > total_before
    assert not any(n in base_names or ".base_layer." in n for n in trainable_names)


@pytest.mark.parametrize(("name", "fields"), METHODS, ids=[name for name, _ in METHODS])
def test_method_merge_keeps_outputs(registry, backbone, name, fields):
    from peft.tuners.tuners_utils import BaseTunerLayer

    base_output = backbone(images())
    adapter = make_adapter(registry, name, **fields)
    adapted = adapter.apply(backbone)
    with torch.no_grad():
        for parameter in adapted.parameters():
            if parameter.requires_grad:
                parameter.add_(0.05 * torch.randn_like(parameter))
    adapted_output = adapted(images())

    merged = adapter.merge(adapted)
    merged_output = merged(images())
    plain = registry.get("backbone", "timm").build(VIT)

    assert not torch.allclose(adapted_output, base_output, atol=1e-4)
    assert torch.allclose(merged_output, adapted_output, atol=1e-4, rtol=1e-4)
    assert not any(isinstance(m, BaseTunerLayer) for m in merged.modules())
    assert base_parameter_names(merged) == base_parameter_names(plain)
    assert count_parameters(merged)[1] == count_parameters(plain)[1]


def test_lora_parameter_count_exact(registry, backbone):
    _, base_total = count_parameters(backbone)

    adapted = make_adapter(registry, "lora", r=4, target_modules=["qkv"]).apply(backbone)

    # Per block, A is r x 192 and B is 576 x r.
    expected = DEPTH * 4 * (WIDTH + QKV_WIDTH)
    assert expected == 6144
    assert count_parameters(adapted) == (expected, base_total + expected)


def test_all_linear_targets_every_linear(registry, backbone):
    adapted = make_adapter(registry, "lora", r=2, target_modules="all-linear").apply(backbone)

    adapted_layers = sorted(n for n, m in adapted.named_modules() if hasattr(m, "lora_A"))
    # qkv 192->576, proj 192->192, fc1 192->768, fc2 768->192: r * (in + out) each.
    per_block = 2 * ((WIDTH + QKV_WIDTH) + 2 * WIDTH + 2 * (WIDTH + MLP_WIDTH))
    assert len(adapted_layers) == 4 * DEPTH
    assert "model.blocks.1.mlp.fc2" in adapted_layers
    assert count_parameters(adapted)[0] == DEPTH * per_block


def test_regex_targets_one_block(registry, backbone):
    pattern = r"model\.blocks\.0\.attn\.(qkv|proj)"

    adapted = make_adapter(registry, "lora", r=4, target_modules=pattern).apply(backbone)

    adapted_layers = sorted(n for n, m in adapted.named_modules() if hasattr(m, "lora_A"))
    assert adapted_layers == ["model.blocks.0.attn.proj", "model.blocks.0.attn.qkv"]
    assert count_parameters(adapted)[0] == 4 * (WIDTH + QKV_WIDTH) + 4 * (2 * WIDTH)


def test_exclude_modules_removes_layers(registry, backbone):
    adapter = make_adapter(
        registry, "lora", r=2, target_modules="all-linear", exclude_modules=["fc1", "fc2"]
    )

    adapted = adapter.apply(backbone)

    adapted_layers = {n.rsplit(".", 1)[-1] for n, m in adapted.named_modules() if hasattr(m, "lora_A")}
    assert adapted_layers == {"qkv", "proj"}


def test_unmatched_targets_list_layers(registry, backbone):
    adapter = make_adapter(registry, "lora", target_modules=["q_proj", "v_proj"])

    with pytest.raises(ComponentBuildError) as error:
        adapter.apply(backbone)

    message = str(error.value)
    assert "matches no layer of TimmBackbone" in message
    for listed in ("qkv (2)", "proj (3)", "fc1 (2)", "fc2 (2)"):
        assert listed in message
    assert "'model.patch_embed.proj'" in message
    assert "all-linear" in message


def test_unmatched_regex_suggests_list(registry, backbone):
    adapter = make_adapter(registry, "lora", target_modules="qkv")

    with pytest.raises(ComponentBuildError) as error:
        adapter.apply(backbone)

    assert "regular expression that must match the whole dotted name" in str(error.value)
    assert "['qkv']" in str(error.value)


def test_modules_to_save_trains_copy(registry, backbone):
    adapter = make_adapter(registry, "lora", r=2, target_modules=["qkv"], modules_to_save=["model.norm"])

    adapted = adapter.apply(backbone)
    trainable = [n for n, p in adapted.named_parameters() if p.requires_grad]

    assert "model.norm.modules_to_save.default.weight" in trainable
    assert count_parameters(adapted)[0] == DEPTH * 2 * (WIDTH + QKV_WIDTH) + 2 * WIDTH


def test_unmatched_modules_to_save_error(registry, backbone):
    adapter = make_adapter(registry, "lora", modules_to_save=["classifier"])

    with pytest.raises(ComponentBuildError) as error:
        adapter.apply(backbone)

    assert "modules_to_save entry 'classifier' matches no module" in str(error.value)


def test_ia3_feedforward_outside_targets(registry, backbone):
    adapter = make_adapter(registry, "ia3", target_modules=["qkv"], feedforward_modules=["fc2"])

    with pytest.raises(ComponentBuildError) as error:
        adapter.apply(backbone)

    assert "subset of target_modules" in str(error.value)


def test_apply_twice_rejected(registry, backbone):
    make_adapter(registry, "lora", target_modules=["qkv"]).apply(backbone)

    with pytest.raises(ComponentBuildError) as error:
        make_adapter(registry, "loha", target_modules=["fc1"]).apply(backbone)

    assert "already has peft adapter layers" in str(error.value)


def test_generic_unknown_option_lists_valid(registry, backbone):
    adapter = make_adapter(registry, "peft", method="boft", options={"rank": 4})

    with pytest.raises(ComponentBuildError) as error:
        adapter.apply(backbone)

    assert "peft rejected the BOFT options" in str(error.value)
    assert "boft_block_size" in str(error.value)


@pytest.mark.parametrize(
    ("method", "expected"),
    [("not_a_method", "unknown peft method 'NOT_A_METHOD'"),
     ("prompt_tuning", "does not inject layers")],
)
def test_generic_method_rejected(registry, method, expected):
    with pytest.raises(ComponentBuildError) as error:
        make_adapter(registry, "peft", method=method)

    assert expected in str(error.value)
    assert "LORA" in str(error.value)


def test_merge_without_adapter_rejected(registry, backbone):
    with pytest.raises(ValueError, match="call apply"):
        make_adapter(registry, "lora").merge(backbone)


def test_count_parameters_frozen_weight():
    layer = nn.Linear(3, 2)
    layer.weight.requires_grad_(False)

    assert count_parameters(layer) == (2, 8)


@pytest.mark.parametrize(
    ("name", "fields"),
    [
        ("lora", {"r": 0}),
        ("lora", {"target_modules": []}),
        ("lora", {"target_modules": "blocks.(qkv"}),
        ("lora", {"init": "orthogonal", "r": 3}),
        ("oft", {"block_size": 32, "r": 4}),
        ("oft", {"block_size": 0, "r": 0}),
        ("lokr", {"decompose_factor": 0}),
        ("peft", {"method": "lora", "options": {"target_modules": ["qkv"]}}),
        ("vera", {"dropout": 1.0}),
    ],
)
def test_config_rejects_invalid_fields(registry, name, fields):
    with pytest.raises(ValidationError):
        registry.get("adapter", name).config(**fields)


@pytest.mark.parametrize(
    ("name", "fields", "field", "message"),
    [
        ("lora", {"init": "orthogonal", "r": 3}, "init", "needs an even r, but r is 3"),
        ("dora", {"init": "orthogonal", "r": 5}, "init", "needs an even r, but r is 5"),
        ("oft", {"block_size": 32, "r": 4}, "r", "but block_size is 32; set block_size to 0"),
        ("oft", {"block_size": 0}, "r", "set exactly one of block_size and r to a positive"),
    ],
)
def test_cross_field_errors_name_field(registry, name, fields, field, message):
    with pytest.raises(ValidationError) as caught:
        registry.get("adapter", name).config(**fields)

    [error] = caught.value.errors()
    assert error["loc"] == (field,)
    assert message in error["msg"]
