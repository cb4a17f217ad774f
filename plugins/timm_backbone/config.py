"""Configuration model of the ``timm`` backbone (light: imports pydantic only)."""

from __future__ import annotations

from pathlib import PurePath
from typing import Any

from pydantic import Field, field_validator

from adaptlab.core.contracts import ComponentConfig

__all__ = ["RESERVED_MODEL_KWARGS", "WEIGHTS_SUFFIXES", "TimmBackboneConfig"]

WEIGHTS_SUFFIXES = (".safetensors", ".pth", ".pt", ".bin")

# Arguments of timm.create_model that the backbone sets itself or that would change its
# contract (features_only returns feature maps, checkpoint_path loads weights without the
# backbone's key and shape checks, pretrained* and cache_dir would reach the Hugging Face Hub).
RESERVED_MODEL_KWARGS = {
    "pretrained": "weights are loaded from a local file with `weights`",
    "pretrained_cfg": "weights are loaded from a local file with `weights`",
    "pretrained_cfg_overlay": "weights are loaded from a local file with `weights`",
    "cache_dir": "weights are loaded from a local file with `weights`",
    "checkpoint_path": "use the field `weights`",
    "num_classes": "the backbone has no classifier; task heads classify",
    "features_only": "the backbone returns pooled features",
    "in_chans": "use the field `in_chans`",
    "img_size": "use the field `image_size`",
    "drop_rate": "use the field `drop_rate`",
    "drop_path_rate": "use the field `drop_path_rate`",
}


class TimmBackboneConfig(ComponentConfig):
    """Any timm image model, built without its classifier so it returns pooled features.

    The backbone module stores the timm model as its child ``model``, so the full name of a
    layer is ``model.`` followed by the timm name (``model.blocks.0.attn.qkv`` in a ViT).
    """

    model: str = Field(
        description=(
            "timm architecture name, e.g. resnet18, vit_tiny_patch16_224, "
            "swin_tiny_patch4_window7_224 (list them with timm.list_models()). "
            "A pretrained tag such as resnet18.a1_in1k is accepted; no weights are downloaded."
        ),
        min_length=1,
    )
    weights: str | None = Field(
        None,
        description=(
            "Local weights file (.safetensors, or a .pth/.pt/.bin state dict) loaded into the "
            "model; ~ is expanded and a relative path is resolved against the current working "
            "directory. Keys and shapes must match the model; classifier keys are ignored. "
            "None leaves the model randomly initialized."
        ),
    )
    in_chans: int = Field(3, ge=1, description="Number of input image channels.")
    image_size: int | None = Field(
        None,
        gt=0,
        description=(
            "Input image side in pixels, passed as img_size to models that fix their input "
            "size at construction (ViT, Swin, ...); models that accept any size ignore it. "
            "None keeps the architecture's default."
        ),
    )
    drop_rate: float = Field(
        0.0, ge=0.0, lt=1.0, description="Dropout probability before the pooled features."
    )
    drop_path_rate: float = Field(
        0.0, ge=0.0, lt=1.0, description="Stochastic depth probability of the last block."
    )
    freeze: bool = Field(
        False,
        description=(
            "Freeze every backbone weight and keep the backbone in evaluation mode (fixed "
            "batch-norm statistics, no dropout), for linear probing. Leave it off when an "
            "adapter is used: the adapter freezes the base weights itself."
        ),
    )
    model_kwargs: dict[str, Any] = Field(
        default_factory=dict,
        description=(
            "Extra keyword arguments of timm.create_model, e.g. {depth: 2, patch_size: 8} "
            "for a ViT."
        ),
    )

    @field_validator("model")
    @classmethod
    def _reject_hub_names(cls, value: str) -> str:
        if ":" in value:
            raise ValueError(
                "hub model names are not supported because adaptlab never downloads weights; "
                "give the architecture name and a local file in `weights`"
            )
        return value

    @field_validator("weights")
    @classmethod
    def _check_weights_suffix(cls, value: str | None) -> str | None:
        if value is not None and PurePath(value).suffix.lower() not in WEIGHTS_SUFFIXES:
            raise ValueError(
                f"weights file must end in one of {', '.join(WEIGHTS_SUFFIXES)}"
            )
        return value

    @field_validator("model_kwargs")
    @classmethod
    def _reject_reserved_kwargs(cls, value: dict[str, Any]) -> dict[str, Any]:
        for key in value:
            if key in RESERVED_MODEL_KWARGS:
                raise ValueError(
                    f"model_kwargs must not set {key!r}: {RESERVED_MODEL_KWARGS[key]}"
                )
        return value
