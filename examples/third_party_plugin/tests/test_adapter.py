"""Tests of the bottleneck adapter on a small encoder and on a timm ViT."""

from __future__ import annotations

import logging

import pytest
import torch
from conftest import DEPTH, WIDTH, TinyEncoder
from torch import nn

from adaptlab.core.contracts import Adapter
from adaptlab.core.errors import ComponentBuildError
from adaptlab_bottleneck.adapter import BottleneckMethod, build_adapter
from adaptlab_bottleneck.config import BottleneckConfig
from adaptlab_bottleneck.layer import AdaptedLinear, BottleneckAdapter

# Default targets *.attn.proj and *.mlp.fc2 give two adapters per block. With WIDTH 32 and the
# default reduction 16 the bottleneck has 2 units, so one adapter has
# down (32 * 2 + 2) + up (2 * 32 + 32) = 162 parameters.
PARAMETERS_PER_ADAPTER = (WIDTH * 2 + 2) + (2 * WIDTH + WIDTH)
ADAPTERS = 2 * DEPTH


def adapt(model: nn.Module, **settings: object) -> nn.Module:
    return build_adapter(BottleneckConfig(**settings)).apply(model)


def trainable(model: nn.Module) -> dict[str, int]:
    return {
        name: parameter.numel()
        for name, parameter in model.named_parameters()
        if parameter.requires_grad
    }


def test_factory_returns_adapter_protocol() -> None:
    method = build_adapter(BottleneckConfig())

    assert isinstance(method, BottleneckMethod)
    assert isinstance(method, Adapter)


def test_fresh_adapter_keeps_base_outputs(encoder: TinyEncoder, tokens: torch.Tensor) -> None:
    expected = encoder(tokens)

    adapted = adapt(encoder)

    assert adapted is encoder
    assert torch.equal(adapted(tokens), expected)


def test_fresh_gated_adapter_keeps_base_outputs(
    encoder: TinyEncoder, tokens: torch.Tensor
) -> None:
    expected = encoder(tokens)

    adapted = adapt(encoder, gate=True, activation="tanh")

    assert torch.equal(adapted(tokens), expected)


def test_adapters_replace_matching_linears(encoder: TinyEncoder) -> None:
    adapt(encoder)

    wrapped = sorted(
        name for name, module in encoder.named_modules() if isinstance(module, AdaptedLinear)
    )
    assert wrapped == [
        "blocks.0.attn.proj",
        "blocks.0.mlp.fc2",
        "blocks.1.attn.proj",
        "blocks.1.mlp.fc2",
    ]
    assert isinstance(encoder.blocks[0].attn.qkv, nn.Linear)
    assert isinstance(encoder.blocks[0].mlp.fc1, nn.Linear)
    assert encoder.out_features == WIDTH


def test_only_adapter_parameters_trainable(encoder: TinyEncoder) -> None:
    adapt(encoder)

    counts = trainable(encoder)

    assert all(".adapter." in name for name in counts)
    assert sum(counts.values()) == ADAPTERS * PARAMETERS_PER_ADAPTER
    assert sum(counts.values()) == 648


def test_gate_adds_one_parameter_per_adapter(encoder: TinyEncoder) -> None:
    adapt(encoder, gate=True)

    counts = trainable(encoder)

    assert sum(counts.values()) == ADAPTERS * (PARAMETERS_PER_ADAPTER + 1)
    assert sum(1 for name in counts if name.endswith(".adapter.gate")) == ADAPTERS


def test_bottleneck_width_follows_reduction(encoder: TinyEncoder) -> None:
    adapt(encoder, reduction=4)

    adapter = encoder.blocks[0].mlp.fc2.adapter
    assert adapter.down.out_features == WIDTH // 4
    assert adapter.up.in_features == WIDTH // 4
    assert adapter.up.out_features == WIDTH


def test_unfrozen_parameters_stay_trainable(encoder: TinyEncoder) -> None:
    norm_parameters = sum(
        parameter.numel() for name, parameter in encoder.named_parameters() if "norm" in name
    )

    adapt(encoder, unfrozen_parameters=["*norm*"])

    counts = trainable(encoder)
    assert sum(counts.values()) == ADAPTERS * PARAMETERS_PER_ADAPTER + norm_parameters
    assert "blocks.0.norm1.weight" in counts
    assert "blocks.0.attn.qkv.weight" not in counts
    assert "blocks.0.attn.proj.base.weight" not in counts


def test_gradient_reaches_adapter_only(encoder: TinyEncoder, tokens: torch.Tensor) -> None:
    adapt(encoder)
    adapter = encoder.blocks[1].mlp.fc2.adapter

    encoder(tokens).pow(2).sum().backward()

    assert adapter.up.weight.grad is not None
    assert adapter.up.weight.grad.abs().sum() > 0
    # The up-projection starts at zero, so no gradient reaches the down-projection yet.
    assert adapter.down.weight.grad is not None
    assert adapter.down.weight.grad.abs().sum() == 0
    assert encoder.blocks[1].mlp.fc2.base.weight.grad is None
    assert encoder.blocks[1].mlp.fc1.weight.grad is None


def test_training_step_changes_outputs(encoder: TinyEncoder, tokens: torch.Tensor) -> None:
    adapt(encoder)
    before = encoder(tokens).detach()
    frozen_before = encoder.blocks[0].attn.qkv.weight.detach().clone()
    parameters = [parameter for parameter in encoder.parameters() if parameter.requires_grad]
    optimizer = torch.optim.SGD(parameters, lr=0.1)

    for _ in range(2):
        optimizer.zero_grad()
        encoder(tokens).pow(2).sum().backward()
        optimizer.step()

    adapter = encoder.blocks[1].mlp.fc2.adapter
    assert adapter.down.weight.grad.abs().sum() > 0
    assert not torch.allclose(encoder(tokens), before)
    assert torch.equal(encoder.blocks[0].attn.qkv.weight, frozen_before)


def test_adapter_follows_base_dtype(encoder: TinyEncoder) -> None:
    encoder.to(torch.float64)

    adapt(encoder, gate=True)

    adapter = encoder.blocks[0].attn.proj.adapter
    assert adapter.down.weight.dtype == torch.float64
    assert adapter.gate.dtype == torch.float64


def test_unmatched_targets_rejected(encoder: TinyEncoder) -> None:
    with pytest.raises(ComponentBuildError, match="blocks.0.attn.qkv") as raised:
        adapt(encoder, target_modules=["*.attention.out"])

    assert "target_modules" in str(raised.value)
    assert not any(isinstance(module, AdaptedLinear) for module in encoder.modules())
    assert all(parameter.requires_grad for parameter in encoder.parameters())


def test_reduction_above_width_rejected(encoder: TinyEncoder) -> None:
    with pytest.raises(ComponentBuildError, match="reduction 64"):
        adapt(encoder, reduction=64)

    assert all(parameter.requires_grad for parameter in encoder.parameters())


def test_unmatched_unfrozen_pattern_rejected(encoder: TinyEncoder) -> None:
    with pytest.raises(ComponentBuildError, match=r"\*bn\*"):
        adapt(encoder, unfrozen_parameters=["*norm*", "*bn*"])


def test_second_apply_rejected(encoder: TinyEncoder) -> None:
    method = build_adapter(BottleneckConfig())
    method.apply(encoder)

    with pytest.raises(ComponentBuildError, match="already contains"):
        method.apply(encoder)


def test_multihead_attention_output_rejected() -> None:
    model = nn.Module()
    model.attention = nn.MultiheadAttention(16, 2, batch_first=True)

    with pytest.raises(ComponentBuildError, match="attention.out_proj"):
        adapt(model, target_modules=["*out_proj"])


def test_merge_removes_fresh_adapters(encoder: TinyEncoder, tokens: torch.Tensor) -> None:
    method = build_adapter(BottleneckConfig())
    method.apply(encoder)
    expected = encoder(tokens)

    merged = method.merge(encoder)

    assert merged is encoder
    assert not any(isinstance(module, BottleneckAdapter) for module in merged.modules())
    assert type(merged.blocks[0].mlp.fc2) is nn.Linear
    assert torch.equal(merged(tokens), expected)


def test_merge_keeps_trained_adapters(
    encoder: TinyEncoder, tokens: torch.Tensor, caplog: pytest.LogCaptureFixture
) -> None:
    method = build_adapter(BottleneckConfig(gate=True))
    method.apply(encoder)
    torch.manual_seed(2)
    with torch.no_grad():
        encoder.blocks[0].attn.proj.adapter.up.weight.normal_()
        encoder.blocks[1].mlp.fc2.adapter.up.weight.normal_()
        encoder.blocks[1].mlp.fc2.adapter.gate.zero_()
    encoder.eval()
    expected = encoder(tokens)

    with caplog.at_level(logging.INFO, logger="adaptlab_bottleneck.adapter"):
        method.merge(encoder)

    kept = [name for name, module in encoder.named_modules() if isinstance(module, AdaptedLinear)]
    assert kept == ["blocks.0.attn.proj"]
    assert torch.allclose(encoder(tokens), expected, rtol=0, atol=1e-6)
    assert "removed 3" in caplog.text
    assert "kept 1" in caplog.text


def test_timm_vit_adapter_count() -> None:
    timm = pytest.importorskip("timm")
    torch.manual_seed(0)
    model = timm.create_model(
        "vit_tiny_patch16_224",
        pretrained=False,
        num_classes=0,
        img_size=32,
        patch_size=4,
        depth=4,
    )
    model.eval()
    images = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(3))
    expected = model(images)

    adapt(model)

    # vit_tiny has width 192, so reduction 16 gives 12 units and one adapter has
    # (192 * 12 + 12) + (12 * 192 + 192) = 4812 parameters; 4 blocks have 2 adapters each.
    assert sum(trainable(model).values()) == 8 * 4812
    assert torch.equal(model(images), expected)
