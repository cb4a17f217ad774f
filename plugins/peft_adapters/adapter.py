"""Adapters backed by peft (tested with peft 0.21): injection into any module, and merging.

``PeftAdapter.apply`` resolves the target layers itself (see
:mod:`adaptlab.plugins.peft_adapters.targets`), builds the peft config and lets the method's
peft tuner replace the layers in place. The module keeps its class, attributes such as
``out_features`` and its forward signature. peft then freezes every base parameter and leaves
the adapter parameters (and ``modules_to_save`` copies) trainable.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

from torch import nn

from adaptlab.core.errors import ComponentBuildError
from adaptlab.plugins.peft_adapters.config import GenericPeftConfig, PeftAdapterConfig
from adaptlab.plugins.peft_adapters.targets import match_names, resolve_targets

__all__ = ["ADAPTER_NAME", "PeftAdapter", "build_peft_adapter", "count_parameters"]

logger = logging.getLogger(__name__)

ADAPTER_NAME = "default"
"""Name under which peft stores the adapter (it appears in parameter names)."""

# Methods that peft implements without injecting layers into the module (virtual tokens,
# adapters over a transformers model, or a wrapper around another adapter).
_NOT_INJECTABLE = {"ADAPTION_PROMPT", "XLORA", "SHADOW"}


def count_parameters(module: nn.Module) -> tuple[int, int]:
    """Return ``(trainable, total)`` parameter counts of ``module``; shared tensors count once."""
    trainable = 0
    total = 0
    for parameter in module.parameters():
        total += parameter.numel()
        if parameter.requires_grad:
            trainable += parameter.numel()
    return trainable, total


class PeftAdapter:
    """An ``Adapter`` (see :class:`adaptlab.core.contracts.Adapter`) for one peft method."""

    def __init__(self, config: PeftAdapterConfig) -> None:
        self.config = config
        self.method = config.peft_method()
        if config.peft_options().get("use_dora"):
            self.method = "LORA (use_dora)"

    def apply(self, module: nn.Module) -> nn.Module:
        """Inject the adapter into ``module`` in place and return it.

        Raises ``ComponentBuildError`` when the targets match no layer, when peft rejects the
        options, or when ``module`` already carries peft layers.
        """
        from peft.tuners.tuners_utils import BaseTunerLayer

        if any(isinstance(child, BaseTunerLayer) for child in module.modules()):
            raise ComponentBuildError(
                f"{type(module).__name__} already has peft adapter layers; apply one adapter "
                "to a freshly built backbone"
            )
        config_class, tuner_class = _peft_classes(self.config.peft_method())
        targets = resolve_targets(
            module, self.config.target_modules, self.config.exclude_modules
        )
        options = {
            **self.config.peft_options(),
            "target_modules": targets,
            "modules_to_save": _check_modules_to_save(module, self.config.modules_to_save),
        }
        feedforward = getattr(self.config, "feedforward_modules", None)
        if feedforward is not None:
            options["feedforward_modules"] = _resolve_feedforward(module, feedforward, targets)
        elif self.config.peft_method() == "IA3":
            options["feedforward_modules"] = []

        try:
            peft_config = config_class(**options)
        except (TypeError, ValueError) as error:
            raise ComponentBuildError(
                f"peft rejected the {self.method} options ({_one_line(error)}); "
                f"{_option_hint(config_class, self.config)}"
            ) from error
        try:
            tuner_class(module, peft_config, adapter_name=ADAPTER_NAME)
        except (TypeError, ValueError, RuntimeError, NotImplementedError) as error:
            raise ComponentBuildError(
                f"peft could not apply {self.method} to {type(module).__name__} "
                f"({_one_line(error)}); change target_modules or the method's options"
            ) from error

        trainable, total = count_parameters(module)
        by_leaf = Counter(name.rsplit(".", 1)[-1] for name in targets)
        logger.info(
            "applied %s to %d layers of %s (%s): %d of %d parameters trainable (%.2f%%)",
            self.method, len(targets), type(module).__name__,
            ", ".join(f"{leaf} x{count}" for leaf, count in by_leaf.items()),
            trainable, total, 100.0 * trainable / max(total, 1),
        )
        logger.debug("adapted layers: %s", ", ".join(targets))
        return module

    def merge(self, module: nn.Module) -> nn.Module:
        """Fold the adapter into the base weights and remove the peft layers, in place.

        The returned module computes the same outputs as the adapted one, up to floating-point
        rounding. ``modules_to_save`` copies replace the original modules. Raises
        ``ComponentBuildError`` if a merged weight is not finite.
        """
        from peft.tuners.tuners_utils import BaseTunerLayer

        tuner_layers = [
            name for name, child in module.named_modules() if isinstance(child, BaseTunerLayer)
        ]
        wrappers = [
            name
            for name, child in module.named_modules()
            if hasattr(child, "unload_and_optionally_merge_module")
        ]
        if not tuner_layers and not wrappers:
            raise ValueError(
                f"{type(module).__name__} has no peft adapter layers; call apply() before merge()"
            )
        # Replace outer layers first and skip names inside a replaced one, because the
        # replacement (the base layer or the trained copy) contains no peft layers.
        replaced: list[str] = []
        for name in sorted(set(tuner_layers) | set(wrappers), key=lambda n: n.count(".")):
            if _is_inside(name, replaced):
                continue
            layer = module.get_submodule(name)
            try:
                if hasattr(layer, "unload_and_optionally_merge_module"):
                    merged = layer.unload_and_optionally_merge_module(
                        merge=True, safe_merge=True, adapter_names=None
                    )
                else:
                    layer.merge(safe_merge=True)
                    merged = layer.get_base_layer()
            except ValueError as error:
                raise ComponentBuildError(
                    f"merging {self.method} into layer {name!r} failed ({_one_line(error)}); "
                    "the adapter weights are probably broken (NaN or infinite)"
                ) from error
            parent_name, _, child_name = name.rpartition(".")
            setattr(module.get_submodule(parent_name), child_name, merged)
            replaced.append(name)
        if hasattr(module, "peft_config"):
            del module.peft_config
        logger.info("merged %s into %d layers of %s", self.method, len(tuner_layers),
                    type(module).__name__)
        return module


def build_peft_adapter(config: PeftAdapterConfig) -> PeftAdapter:
    """Factory of every adapter of this plugin; peft itself is checked for the method here."""
    _peft_classes(config.peft_method())
    return PeftAdapter(config)


def _peft_classes(method: str) -> tuple[type, type]:
    """Return peft's config and tuner classes of ``method`` (a ``PeftType`` name)."""
    from peft.config import PromptLearningConfig
    from peft.mapping import PEFT_TYPE_TO_CONFIG_MAPPING, PEFT_TYPE_TO_TUNER_MAPPING
    from peft.utils.peft_types import PeftType

    supported = sorted(
        kind.value
        for kind in PEFT_TYPE_TO_TUNER_MAPPING
        if kind.value not in _NOT_INJECTABLE
        and kind in PEFT_TYPE_TO_CONFIG_MAPPING
        and not issubclass(PEFT_TYPE_TO_CONFIG_MAPPING[kind], PromptLearningConfig)
    )
    try:
        peft_type = PeftType[method]
    except KeyError:
        raise ComponentBuildError(
            f"unknown peft method {method!r}; methods that inject layers: {', '.join(supported)}"
        ) from None
    if peft_type.value not in supported:
        raise ComponentBuildError(
            f"peft method {method!r} does not inject layers into a module (prompt learning or "
            f"transformers-only); choose one of: {', '.join(supported)}"
        )
    return PEFT_TYPE_TO_CONFIG_MAPPING[peft_type], PEFT_TYPE_TO_TUNER_MAPPING[peft_type]


def _check_modules_to_save(module: nn.Module, names: list[str] | None) -> list[str] | None:
    if not names:
        return None
    modules = {name: child for name, child in module.named_modules() if name}
    for entry in names:
        if not match_names(modules, [entry], modules):
            raise ComponentBuildError(
                f"modules_to_save entry {entry!r} matches no module of {type(module).__name__}; "
                "give a module name or a dotted suffix of one"
            )
    return list(names)


def _resolve_feedforward(module: nn.Module, feedforward: Any, targets: list[str]) -> list[str]:
    names = resolve_targets(module, feedforward, field="feedforward_modules")
    outside = [name for name in names if name not in set(targets)]
    if outside:
        raise ComponentBuildError(
            f"feedforward_modules selects {len(outside)} layers that are not adapter targets "
            f"(e.g. {outside[0]!r}); feedforward_modules must be a subset of target_modules"
        )
    return names


def _is_inside(name: str, parents: list[str]) -> bool:
    return any(name.startswith(parent + ".") for parent in parents)


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text}"


def _option_hint(config_class: type, config: PeftAdapterConfig) -> str:
    if isinstance(config, GenericPeftConfig):
        from dataclasses import fields

        names = sorted(
            field.name
            for field in fields(config_class)
            if field.init and field.name not in ("peft_type", "target_modules", "modules_to_save")
        )
        return f"valid options of {config_class.__name__}: {', '.join(names)}"
    return "check the adapter's fields"
