"""The ``bottleneck`` adapter: Houlsby-style adapters after chosen ``nn.Linear`` layers.

adaptlab resolves the factory :func:`build_adapter` from the string
``"adaptlab_bottleneck.adapter:build_adapter"`` only when a model is composed, so importing torch
here costs nothing while adaptlab lists plugins or validates specs.
"""

from __future__ import annotations

import fnmatch
import logging

from torch import nn

from adaptlab.core.errors import ComponentBuildError
from adaptlab_bottleneck.config import BottleneckConfig
from adaptlab_bottleneck.layer import AdaptedLinear, BottleneckAdapter

__all__ = ["BottleneckMethod", "build_adapter"]

logger = logging.getLogger(__name__)

_LISTED_NAMES = 8


def _matches(name: str, patterns: list[str]) -> bool:
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns)


def _names_preview(names: list[str]) -> str:
    preview = ", ".join(names[:_LISTED_NAMES])
    if len(names) > _LISTED_NAMES:
        preview += f", ... ({len(names)} in all)"
    return preview or "none"


class BottleneckMethod:
    """Bottleneck adapter method, satisfying :class:`adaptlab.core.contracts.Adapter`.

    ``apply`` inserts the adapters. ``merge`` removes those that are exactly the identity at
    inference and keeps the others.
    """

    def __init__(self, config: BottleneckConfig) -> None:
        self.config = config

    def apply(self, module: nn.Module) -> nn.Module:
        """Insert an adapter after every matching linear layer and freeze the base weights.

        The module is changed in place and returned, so attributes such as a backbone's
        ``out_features`` stay. Afterwards only adapter parameters and base parameters matching
        ``unfrozen_parameters`` require gradients. Every check runs before the first change,
        so a :class:`ComponentBuildError` leaves ``module`` untouched.
        """
        config = self.config
        if any(isinstance(child, AdaptedLinear) for child in module.modules()):
            raise ComponentBuildError(
                "the module already contains bottleneck adapters; apply the bottleneck adapter "
                "once per model"
            )

        targets = self._find_targets(module)
        widths = {name: linear.out_features // config.reduction for name, linear in targets}
        too_narrow = [name for name, width in widths.items() if width < 1]
        if too_narrow:
            raise ComponentBuildError(
                f"bottleneck reduction {config.reduction} leaves no bottleneck unit for "
                f"{_names_preview(too_narrow)}; set model.adapter.reduction to at most the "
                "smallest output width of the adapted layers"
            )
        unfrozen = self._find_unfrozen(module)

        for parameter in module.parameters():
            parameter.requires_grad_(False)
        for parameter in unfrozen:
            parameter.requires_grad_(True)
        for name, linear in targets:
            adapter = BottleneckAdapter(
                linear.out_features,
                widths[name],
                activation=config.activation,
                gated=config.gate,
                device=linear.weight.device,
                dtype=linear.weight.dtype,
            )
            parent_name, _, child_name = name.rpartition(".")
            setattr(module.get_submodule(parent_name), child_name, AdaptedLinear(linear, adapter))

        added = sum(
            parameter.numel()
            for child in module.modules()
            if isinstance(child, BottleneckAdapter)
            for parameter in child.parameters()
        )
        logger.info(
            "inserted %d bottleneck adapters (%d parameters, reduction %d) after %s",
            len(targets),
            added,
            config.reduction,
            _names_preview([name for name, _ in targets]),
        )
        return module

    def merge(self, module: nn.Module) -> nn.Module:
        """Remove the adapters that are the identity at inference and return ``module``.

        A bottleneck adapter is nonlinear, so it cannot be folded into the preceding linear
        layer. This removes an adapter only when that is exact in evaluation mode: its
        up-projection is all zeros, its gate is 0, or the gate-sparsity policy skips it. Every
        other adapter stays in place, so the returned module (the same object, changed in
        place) has the same evaluation outputs as before.
        """
        removed_count = 0
        kept_count = 0
        # The root cannot be replaced in place, and apply() never wraps it.
        wrapped = [
            (name, child)
            for name, child in module.named_modules()
            if name and isinstance(child, AdaptedLinear)
        ]
        for name, child in wrapped:
            was_training = child.adapter.training
            child.adapter.eval()
            identity = child.adapter.contributes_nothing()
            child.adapter.train(was_training)
            if not identity:
                kept_count += 1
                continue
            parent_name, _, child_name = name.rpartition(".")
            setattr(module.get_submodule(parent_name), child_name, child.base)
            removed_count += 1
        logger.info(
            "merge removed %d identity bottleneck adapters and kept %d, which are nonlinear "
            "and cannot be folded into the base weights",
            removed_count,
            kept_count,
        )
        return module

    def _find_targets(self, module: nn.Module) -> list[tuple[str, nn.Linear]]:
        patterns = self.config.target_modules
        linear_names: list[str] = []
        targets: list[tuple[str, nn.Linear]] = []
        for name, child in module.named_modules():
            if not isinstance(child, nn.Linear) or not name:
                continue
            linear_names.append(name)
            if _matches(name, patterns):
                targets.append((name, child))
        if not targets:
            raise ComponentBuildError(
                f"no nn.Linear layer matches model.adapter.target_modules {patterns}; the "
                f"model's linear layers are: {_names_preview(linear_names)}"
            )

        # nn.MultiheadAttention reads out_proj.weight directly instead of calling out_proj,
        # so an adapter there would be silently bypassed.
        attention_outputs = {
            f"{name}.out_proj" if name else "out_proj"
            for name, child in module.named_modules()
            if isinstance(child, nn.MultiheadAttention)
        }
        bypassed = [name for name, _ in targets if name in attention_outputs]
        if bypassed:
            raise ComponentBuildError(
                f"cannot adapt {_names_preview(bypassed)}: nn.MultiheadAttention does not call "
                "its out_proj module, so the adapter would never run; narrow "
                "model.adapter.target_modules to exclude these layers"
            )
        return targets

    def _find_unfrozen(self, module: nn.Module) -> list[nn.Parameter]:
        patterns = self.config.unfrozen_parameters
        unfrozen: list[nn.Parameter] = []
        unmatched = set(patterns)
        for name, parameter in module.named_parameters():
            matching = {pattern for pattern in patterns if fnmatch.fnmatchcase(name, pattern)}
            if matching:
                unmatched -= matching
                unfrozen.append(parameter)
        if unmatched:
            names = [name for name, _ in module.named_parameters()]
            raise ComponentBuildError(
                f"model.adapter.unfrozen_parameters patterns {sorted(unmatched)} match no "
                f"parameter; parameter names look like: {_names_preview(names)}"
            )
        return unfrozen


def build_adapter(config: BottleneckConfig) -> BottleneckMethod:
    """Build the ``bottleneck`` adapter from its validated configuration."""
    return BottleneckMethod(config)
