"""Tests of the gate-sparsity policy on a small encoder with gated adapters."""

from __future__ import annotations

import pytest
import torch
from conftest import TinyEncoder

from adaptlab.core.contracts import Policy
from adaptlab.core.errors import ComponentBuildError
from adaptlab_bottleneck.adapter import build_adapter
from adaptlab_bottleneck.config import BottleneckConfig, GateSparsityConfig
from adaptlab_bottleneck.layer import BottleneckAdapter
from adaptlab_bottleneck.policy import GateSparsityPolicy, build_policy

# Gates of the four adapters, in module order. With threshold 0.05 the last two are inactive.
GATES = (1.0, 0.5, 0.0, 0.02)


def gated_encoder(encoder: TinyEncoder) -> list[BottleneckAdapter]:
    """Adapt ``encoder`` with gated adapters and set their gates and up-projections."""
    build_adapter(BottleneckConfig(gate=True)).apply(encoder)
    adapters = [module for module in encoder.modules() if isinstance(module, BottleneckAdapter)]
    torch.manual_seed(4)
    with torch.no_grad():
        for adapter, gate in zip(adapters, GATES, strict=True):
            adapter.gate.fill_(gate)
            adapter.up.weight.normal_()
    return adapters


def attached_policy(encoder: TinyEncoder, **settings: float) -> GateSparsityPolicy:
    policy = build_policy(GateSparsityConfig(**settings))
    policy.attach(encoder)
    return policy


def test_factory_returns_policy_protocol() -> None:
    policy = build_policy(GateSparsityConfig())

    assert isinstance(policy, Policy)


def test_regularizer_on_known_gates(encoder: TinyEncoder) -> None:
    gated_encoder(encoder)
    policy = attached_policy(encoder, weight=0.1, budget=0.2, threshold=0.05)

    penalty = policy.regularizer()

    # mean |gate| = (1.0 + 0.5 + 0.0 + 0.02) / 4 = 0.38, so the penalty is 0.1 * (0.38 - 0.2).
    assert penalty is not None
    assert penalty.shape == ()
    assert penalty.item() == pytest.approx(0.018)


def test_regularizer_gradient_on_gates(encoder: TinyEncoder) -> None:
    adapters = gated_encoder(encoder)
    policy = attached_policy(encoder, weight=0.1, budget=0.2)

    policy.regularizer().backward()

    # d/dg of 0.1 * mean(|g|) is 0.1 / 4 * sign(g); torch takes sign(0) = 0.
    assert adapters[0].gate.grad.item() == pytest.approx(0.025)
    assert adapters[3].gate.grad.item() == pytest.approx(0.025)
    assert adapters[2].gate.grad.item() == 0.0


def test_regularizer_zero_within_budget(encoder: TinyEncoder) -> None:
    gated_encoder(encoder)
    policy = attached_policy(encoder, weight=0.1, budget=0.5)

    penalty = policy.regularizer()

    assert penalty is not None
    assert penalty.item() == 0.0


def test_regularizer_none_without_weight(encoder: TinyEncoder) -> None:
    gated_encoder(encoder)
    policy = attached_policy(encoder, weight=0.0)

    assert policy.regularizer() is None


def test_stats_on_known_gates(encoder: TinyEncoder, tokens: torch.Tensor) -> None:
    gated_encoder(encoder)
    policy = attached_policy(encoder, threshold=0.05)

    before_forward = policy.stats()
    encoder.train()
    encoder(tokens)
    after_training_forward = policy.stats()
    encoder.eval()
    encoder(tokens)
    after_eval_forward = policy.stats()

    assert before_forward["gate_l1"] == pytest.approx(0.38)
    assert before_forward["active_fraction"] == 0.5
    assert "executed_fraction" not in before_forward
    assert after_training_forward["executed_fraction"] == 1.0
    assert after_eval_forward["executed_fraction"] == 0.5


def test_eval_skips_inactive_adapters(encoder: TinyEncoder, tokens: torch.Tensor) -> None:
    adapters = gated_encoder(encoder)
    attached_policy(encoder, threshold=0.05)
    encoder.eval()

    skipped = encoder(tokens)
    with torch.no_grad():
        adapters[3].gate.zero_()
    gate_zero = encoder(tokens)
    with torch.no_grad():
        adapters[3].gate.fill_(GATES[3])
    encoder.train()
    computed = encoder(tokens)

    assert torch.equal(skipped, gate_zero)
    assert not torch.allclose(skipped, computed)


def test_zero_threshold_never_skips(encoder: TinyEncoder, tokens: torch.Tensor) -> None:
    gated_encoder(encoder)
    policy = attached_policy(encoder, threshold=0.0)
    encoder.eval()

    encoder(tokens)

    assert policy.stats()["executed_fraction"] == 1.0
    assert policy.stats()["active_fraction"] == 1.0


def test_attach_without_adapters_rejected(encoder: TinyEncoder) -> None:
    policy = build_policy(GateSparsityConfig())

    with pytest.raises(ComponentBuildError, match="no bottleneck adapter"):
        policy.attach(encoder)


def test_attach_ungated_adapters_rejected(encoder: TinyEncoder) -> None:
    build_adapter(BottleneckConfig(gate=False)).apply(encoder)
    policy = build_policy(GateSparsityConfig())

    with pytest.raises(ComponentBuildError, match="gate to true"):
        policy.attach(encoder)


def test_regularizer_before_attach_rejected() -> None:
    policy = build_policy(GateSparsityConfig())

    with pytest.raises(RuntimeError, match="attach"):
        policy.regularizer()
