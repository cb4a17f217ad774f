"""Configuration models of the bottleneck adapter and the gate-sparsity policy.

adaptlab imports this module while it lists plugins and validates specs, so it needs only
pydantic and :mod:`adaptlab.core.contracts`. Each field's ``description`` is the help text that
``adaptlab describe`` shows.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from adaptlab.core.contracts import ComponentConfig

__all__ = ["BottleneckConfig", "GateSparsityConfig"]


class BottleneckConfig(ComponentConfig):
    """Settings of Houlsby-style bottleneck adapters inserted after chosen linear layers."""

    target_modules: list[str] = Field(
        default=["*.attn.proj", "*.mlp.fc2"],
        min_length=1,
        description=(
            "Shell-style patterns (fnmatch, '*' also matches dots) of nn.Linear module names "
            "that get an adapter after them. The default matches the attention output "
            "projection and the second MLP layer of every timm ViT or Swin block."
        ),
    )
    reduction: int = Field(
        16,
        ge=1,
        description=(
            "Reduction factor: each adapter's bottleneck width is the adapted layer's output "
            "features divided by this value, rounded down."
        ),
    )
    activation: Literal["relu", "gelu", "silu", "tanh"] = Field(
        "gelu", description="Nonlinearity between the down- and the up-projection."
    )
    gate: bool = Field(
        False,
        description=(
            "Give every adapter a learnable scalar gate (initialised to 1.0) that scales its "
            "output. The gate_sparsity policy needs it."
        ),
    )
    unfrozen_parameters: list[str] = Field(
        default_factory=list,
        description=(
            "Shell-style patterns of base parameter names that stay trainable, for example "
            "'*norm*' to train the LayerNorms as well, as Houlsby et al. (2019) do."
        ),
    )

    @field_validator("target_modules", "unfrozen_parameters")
    @classmethod
    def _reject_empty_patterns(cls, patterns: list[str]) -> list[str]:
        for pattern in patterns:
            if not pattern.strip():
                raise ValueError("patterns must be non-empty strings such as '*.mlp.fc2'")
        return patterns


class GateSparsityConfig(ComponentConfig):
    """Settings of the L1 budget on bottleneck adapter gates."""

    weight: float = Field(
        1.0e-3,
        ge=0.0,
        description="Coefficient of the L1 penalty added to the training loss.",
    )
    budget: float = Field(
        0.0,
        ge=0.0,
        description=(
            "Mean absolute gate value allowed without penalty. The regularizer is "
            "weight * max(0, mean(|gate|) - budget), so 0 gives a plain mean L1 penalty."
        ),
    )
    threshold: float = Field(
        0.05,
        ge=0.0,
        description=(
            "Adapters whose |gate| is below this value are skipped in evaluation mode, so "
            "their compute is saved. 0 never skips an adapter."
        ),
    )
