"""Bottleneck adapter layers after Houlsby et al., "Parameter-Efficient Transfer Learning for
NLP" (ICML 2019, arXiv:1902.00751).

An adapter maps ``h`` to ``h + up(act(down(h)))``: a down-projection to a narrow bottleneck, a
nonlinearity and an up-projection back to the input width, with a skip connection around them.
The up-projection starts at zero, so a freshly inserted adapter is the identity and the adapted
model starts with the base model's outputs.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["ACTIVATIONS", "AdaptedLinear", "BottleneckAdapter"]

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "tanh": nn.Tanh,
}


class BottleneckAdapter(nn.Module):
    """Residual bottleneck ``h + gate * up(act(down(h)))`` over the last dimension of ``h``.

    ``gate`` is a learnable scalar initialised to 1.0 when ``gated`` is true, and absent
    otherwise. ``skip_below`` is set by the gate-sparsity policy: in evaluation mode an adapter
    whose ``|gate|`` is below it returns ``h`` without computing the bottleneck.
    ``last_executed`` records whether the last forward pass computed the bottleneck, and is
    ``None`` before the first one.
    """

    def __init__(
        self,
        features: int,
        bottleneck: int,
        activation: str = "gelu",
        gated: bool = False,
        device: torch.device | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        if bottleneck < 1:
            raise ValueError(f"bottleneck width must be at least 1, got {bottleneck}")
        self.down = nn.Linear(features, bottleneck, device=device, dtype=dtype)
        self.activation = ACTIVATIONS[activation]()
        self.up = nn.Linear(bottleneck, features, device=device, dtype=dtype)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)
        if gated:
            self.gate = nn.Parameter(torch.ones((), device=device, dtype=dtype))
        else:
            self.register_parameter("gate", None)
        self.skip_below = 0.0
        self.last_executed: bool | None = None

    def is_skipped(self) -> bool:
        """Return whether the next forward pass returns its input unchanged."""
        if self.training or self.gate is None or self.skip_below <= 0.0:
            return False
        return float(self.gate.detach().abs()) < self.skip_below

    def contributes_nothing(self) -> bool:
        """Return whether the adapter is the identity at inference, so removing it is exact."""
        if self.is_skipped():
            return True
        if self.gate is not None and float(self.gate.detach()) == 0.0:
            return True
        up_is_zero = not torch.any(self.up.weight) and not torch.any(self.up.bias)
        return bool(up_is_zero)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        if self.is_skipped():
            self.last_executed = False
            return hidden
        self.last_executed = True
        update = self.up(self.activation(self.down(hidden)))
        if self.gate is not None:
            update = self.gate * update
        return hidden + update

    def extra_repr(self) -> str:
        return f"gated={self.gate is not None}, skip_below={self.skip_below}"


class AdaptedLinear(nn.Module):
    """An ``nn.Linear`` followed by a :class:`BottleneckAdapter` on its output.

    ``in_features``, ``out_features``, ``weight`` and ``bias`` read through to the wrapped
    layer, so code that inspects the layer's shape keeps working.
    """

    def __init__(self, base: nn.Linear, adapter: BottleneckAdapter) -> None:
        super().__init__()
        self.base = base
        self.adapter = adapter

    @property
    def in_features(self) -> int:
        return self.base.in_features

    @property
    def out_features(self) -> int:
        return self.base.out_features

    @property
    def weight(self) -> torch.Tensor:
        return self.base.weight

    @property
    def bias(self) -> torch.Tensor | None:
        return self.base.bias

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.adapter(self.base(inputs))
