"""The ``gate_sparsity`` policy: an L1 budget on the gates of bottleneck adapters.

During training the policy adds ``weight * max(0, mean(|gate|) - budget)`` to the loss, which
pushes the gates of adapters the task does not need towards zero. In evaluation mode every
adapter whose ``|gate|`` is below ``threshold`` returns its input without computing its
bottleneck, so a sparse set of gates saves inference compute.
"""

from __future__ import annotations

import logging

import torch
from torch import nn

from adaptlab.core.errors import ComponentBuildError
from adaptlab_bottleneck.config import GateSparsityConfig
from adaptlab_bottleneck.layer import BottleneckAdapter

__all__ = ["GateSparsityPolicy", "build_policy"]

logger = logging.getLogger(__name__)


class GateSparsityPolicy:
    """L1 budget on adapter gates, satisfying :class:`adaptlab.core.contracts.Policy`."""

    def __init__(self, config: GateSparsityConfig) -> None:
        self.config = config
        self._adapters: list[BottleneckAdapter] = []

    def attach(self, model: nn.Module) -> None:
        """Find the gated bottleneck adapters of ``model`` and set their skip threshold.

        Raises :class:`ComponentBuildError` when ``model`` has no bottleneck adapter or one
        without a gate, because the penalty would then have nothing to act on.
        """
        adapters = [child for child in model.modules() if isinstance(child, BottleneckAdapter)]
        if not adapters:
            raise ComponentBuildError(
                "policy gate_sparsity found no bottleneck adapter in the model; set "
                "model.adapter to {name: bottleneck, gate: true}"
            )
        ungated = sum(1 for adapter in adapters if adapter.gate is None)
        if ungated:
            raise ComponentBuildError(
                f"policy gate_sparsity needs gated adapters, but {ungated} of {len(adapters)} "
                "bottleneck adapters have no gate; set model.adapter.gate to true"
            )
        for adapter in adapters:
            adapter.skip_below = self.config.threshold
        self._adapters = adapters
        logger.info(
            "gate_sparsity attached to %d adapters (weight %g, budget %g, threshold %g)",
            len(adapters),
            self.config.weight,
            self.config.budget,
            self.config.threshold,
        )

    def regularizer(self) -> torch.Tensor | None:
        """Return the budget penalty as a scalar tensor, or ``None`` when ``weight`` is 0."""
        if self.config.weight == 0.0:
            return None
        mean_magnitude = self._gate_magnitudes().mean()
        excess = torch.clamp(mean_magnitude - self.config.budget, min=0.0)
        return self.config.weight * excess

    def stats(self) -> dict[str, float]:
        """Return gate statistics and the fraction of adapters the last forward pass ran.

        ``gate_l1`` is the mean ``|gate|``, ``active_fraction`` the fraction of gates at or
        above ``threshold``, and ``executed_fraction`` the fraction of adapters that computed
        their bottleneck in the last forward pass. ``executed_fraction`` is left out until a
        forward pass has run.
        """
        with torch.no_grad():
            magnitudes = self._gate_magnitudes().float()
            stats = {
                "gate_l1": float(magnitudes.mean()),
                "active_fraction": float((magnitudes >= self.config.threshold).float().mean()),
            }
        executed = [adapter.last_executed for adapter in self._adapters]
        if any(flag is not None for flag in executed):
            stats["executed_fraction"] = sum(1 for flag in executed if flag) / len(executed)
        return stats

    def _gate_magnitudes(self) -> torch.Tensor:
        if not self._adapters:
            raise RuntimeError("GateSparsityPolicy.attach(model) must be called first")
        return torch.stack([adapter.gate.abs() for adapter in self._adapters])


def build_policy(config: GateSparsityConfig) -> GateSparsityPolicy:
    """Build the ``gate_sparsity`` policy from its validated configuration."""
    return GateSparsityPolicy(config)
