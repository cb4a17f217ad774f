"""The ``timm`` backbone: a timm model created without classifier, returning pooled features.

Models are always created with ``pretrained=False``; weights come only from a local file
(:mod:`adaptlab.plugins.timm_backbone.weights`). Tested with timm 1.0.
"""

from __future__ import annotations

import difflib
import logging
import re
from pathlib import Path
from typing import Any

import torch
from torch import nn

from adaptlab.core.errors import ComponentBuildError
from adaptlab.plugins.timm_backbone.config import TimmBackboneConfig
from adaptlab.plugins.timm_backbone.weights import load_weights, missing_weights_error

__all__ = ["TimmBackbone", "build_timm_backbone"]

logger = logging.getLogger(__name__)

MODULE_PREFIX = "model."
"""Prefix of every timm layer name inside the backbone (``model.blocks.0.attn.qkv``)."""

_UNEXPECTED_KWARG = re.compile(r"unexpected keyword argument '(\w+)'")


class TimmBackbone(nn.Module):
    """Wraps a timm model built with ``num_classes=0``.

    ``forward(images)`` maps ``(batch, in_chans, height, width)`` to pooled features of shape
    ``(batch, out_features)``. The timm model is the child ``model``, so adapters target its
    layers by their timm names (suffix match) or by full names starting with ``model.``.
    A frozen backbone keeps the timm model in evaluation mode whatever ``train()`` is called
    with, so batch-norm statistics and dropout stay fixed.
    """

    def __init__(self, model: nn.Module, model_name: str, frozen: bool = False) -> None:
        super().__init__()
        self.model = model
        self.model_name = model_name
        self.out_features = _pooled_width(model)
        self.frozen = frozen
        if frozen:
            self.model.requires_grad_(False)
            self.model.eval()

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model(images)

    def train(self, mode: bool = True) -> TimmBackbone:
        super().train(mode)
        if self.frozen:
            self.model.eval()
        return self


def _pooled_width(model: nn.Module) -> int:
    # timm >= 1.0 sets head_hidden_size where a pre-logits layer (e.g. MobileNetV3's conv_head)
    # makes the pooled output wider than num_features.
    width = getattr(model, "head_hidden_size", None) or getattr(model, "num_features", None)
    if not isinstance(width, int) or width <= 0:
        raise ComponentBuildError(
            f"timm model {type(model).__name__} declares no feature width (num_features); "
            "choose a timm classification architecture"
        )
    return width


def build_timm_backbone(config: TimmBackboneConfig) -> TimmBackbone:
    """Create the timm model of ``config``, load its weights file if any, and wrap it."""
    import timm

    _check_model_name(timm, config.model)
    weights = Path(config.weights).expanduser() if config.weights is not None else None
    if weights is not None and not weights.is_file():
        # Checked before the model is created, which can take seconds for large models.
        raise missing_weights_error(weights)
    kwargs: dict[str, Any] = {"num_classes": 0, "in_chans": config.in_chans}
    if config.drop_rate:
        kwargs["drop_rate"] = config.drop_rate
    if config.drop_path_rate:
        kwargs["drop_path_rate"] = config.drop_path_rate
    kwargs.update(config.model_kwargs)

    model = _create(timm, config, kwargs)
    if weights is not None:
        load_weights(model, weights, config.model)
    backbone = TimmBackbone(model, config.model, frozen=config.freeze)
    trainable = sum(p.numel() for p in backbone.parameters() if p.requires_grad)
    total = sum(p.numel() for p in backbone.parameters())
    logger.info(
        "built timm backbone %s: out_features=%d, %d parameters (%d trainable)",
        config.model, backbone.out_features, total, trainable,
    )
    return backbone


def _check_model_name(timm: Any, name: str) -> None:
    if timm.is_model(name):
        return
    architecture = name.split(".", 1)[0]
    close = difflib.get_close_matches(architecture, timm.list_models(), n=3, cutoff=0.6)
    hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    raise ComponentBuildError(
        f"unknown timm model {name!r}{hint} (list the names with timm.list_models('pattern*'))"
    )


def _create(timm: Any, config: TimmBackboneConfig, kwargs: dict[str, Any]) -> nn.Module:
    """Call ``timm.create_model``; pass ``image_size`` only to models that take ``img_size``."""
    if config.image_size is not None:
        try:
            return _create_model(timm, config.model, {**kwargs, "img_size": config.image_size})
        except _UnexpectedKeyword as error:
            if error.keyword != "img_size":
                raise error.build_error from None
            logger.info(
                "timm model %s takes no img_size and accepts any input size; image_size=%d "
                "is not passed to it", config.model, config.image_size,
            )
    try:
        return _create_model(timm, config.model, kwargs)
    except _UnexpectedKeyword as error:
        raise error.build_error from None


class _UnexpectedKeyword(Exception):
    def __init__(self, keyword: str, build_error: ComponentBuildError) -> None:
        super().__init__(keyword)
        self.keyword = keyword
        self.build_error = build_error


def _create_model(timm: Any, name: str, kwargs: dict[str, Any]) -> nn.Module:
    try:
        return timm.create_model(name, pretrained=False, **kwargs)
    except TypeError as error:
        match = _UNEXPECTED_KWARG.search(str(error))
        if match is None:
            raise _creation_error(name, kwargs, error) from error
        keyword = match.group(1)
        field = {"drop_rate": "drop_rate", "drop_path_rate": "drop_path_rate"}.get(
            keyword, "model_kwargs"
        )
        raise _UnexpectedKeyword(
            keyword,
            ComponentBuildError(
                f"timm model {name!r} does not accept the argument {keyword!r}; "
                f"remove it from {field}"
            ),
        ) from error
    except (ValueError, AssertionError, RuntimeError) as error:
        raise _creation_error(name, kwargs, error) from error


def _creation_error(name: str, kwargs: dict[str, Any], error: Exception) -> ComponentBuildError:
    shown = ", ".join(f"{key}={value!r}" for key, value in sorted(kwargs.items()))
    return ComponentBuildError(
        f"timm could not create model {name!r} with {shown} "
        f"({type(error).__name__}: {error}); check image_size, in_chans and model_kwargs"
    )
