"""Configuration models of the vision plugin (light: imports pydantic only)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, ValidationInfo, field_validator

from adaptlab.core.contracts import ComponentConfig, HeadConfig

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "ClassificationHeadConfig",
    "DigitsConfig",
    "ImageDataConfig",
    "ImageFolderConfig",
]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class ClassificationHeadConfig(HeadConfig):
    """An MLP (or a single linear layer) from pooled features to class logits."""

    hidden: list[int] = Field(
        default_factory=list,
        description="Widths of hidden layers before the output layer; [] is a linear head.",
    )
    activation: Literal["gelu", "relu"] = Field(
        "gelu", description="Activation after each hidden layer."
    )
    dropout: float = Field(
        0.0, ge=0.0, lt=1.0, description="Dropout probability on the input of every linear layer."
    )
    label_smoothing: float = Field(
        0.0, ge=0.0, lt=1.0, description="Label smoothing of the cross-entropy loss."
    )

    @field_validator("hidden")
    @classmethod
    def _check_widths(cls, value: list[int]) -> list[int]:
        if any(width < 1 for width in value):
            raise ValueError("hidden widths must be positive integers")
        return value

    @classmethod
    def metric_names(cls) -> tuple[str, ...]:
        """Return the keys of ``ClassificationMetric.compute()``, which validation reports as
        ``TASK/NAME`` (the spec validator checks ``train.monitor`` against them)."""
        return ("accuracy", "macro_f1", "loss")


class ImageDataConfig(ComponentConfig):
    """Fields shared by datasets read through the image-folder loader."""

    task: str = Field(
        "label",
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
        description="Task name of the class label; model.heads must use the same name.",
    )
    image_size: int = Field(
        224,
        gt=0,
        description=(
            "Side of the square images in pixels: each image is resized so its shorter side "
            "matches, then center-cropped."
        ),
    )
    channels: Literal[1, 3] = Field(
        3, description="Image channels: 1 converts to grayscale, 3 to RGB."
    )
    val_fraction: float = Field(
        0.1,
        ge=0.0,
        lt=1.0,
        description=(
            "Fraction of each class's images held out for validation (rounded per class)."
        ),
    )
    test_fraction: float = Field(
        0.1,
        ge=0.0,
        lt=1.0,
        description="Fraction of each class's images held out for testing (rounded per class).",
    )
    split_seed: int | None = Field(
        None,
        ge=0,
        description="Seed of the train/val/test split; None uses the spec's seed.",
    )
    mean: list[float] | None = Field(
        None,
        description=(
            "Per-channel mean subtracted from pixels scaled to [0, 1]; None uses the ImageNet "
            "mean (0.485, 0.456, 0.406) for 3 channels and 0.5 for 1 channel."
        ),
    )
    std: list[float] | None = Field(
        None,
        description=(
            "Per-channel standard deviation dividing the centered pixels; None uses the "
            "ImageNet values (0.229, 0.224, 0.225) for 3 channels and 0.5 for 1 channel."
        ),
    )
    augment: list[Literal["hflip", "crop"]] = Field(
        default_factory=list,
        description=(
            "Random augmentations of training images only: hflip (horizontal flip with "
            "probability 0.5), crop (reflect-pad by image_size/8, then crop back at a random "
            "offset)."
        ),
    )

    def task_names(self) -> list[str]:
        """Return the tasks this dataset provides (the spec validator matches heads to them)."""
        return [self.task]

    def normalization(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """Return ``(mean, std)`` with one value per channel."""
        default_mean = IMAGENET_MEAN if self.channels == 3 else (0.5,)
        default_std = IMAGENET_STD if self.channels == 3 else (0.5,)
        mean = tuple(self.mean) if self.mean is not None else default_mean
        std = tuple(self.std) if self.std is not None else default_std
        return mean, std

    # Checks that involve two fields sit on the later one, which sees the earlier one in
    # info.data (absent when it failed its own validation), so errors point at a field.

    @field_validator("test_fraction")
    @classmethod
    def _check_fractions(cls, value: float, info: ValidationInfo) -> float:
        val_fraction = info.data.get("val_fraction")
        if val_fraction is not None and val_fraction + value >= 1.0:
            raise ValueError(
                f"val_fraction + test_fraction must be below 1 to leave training images "
                f"(val_fraction is {val_fraction})"
            )
        return value

    @field_validator("mean", "std")
    @classmethod
    def _check_channel_values(
        cls, value: list[float] | None, info: ValidationInfo
    ) -> list[float] | None:
        if value is None:
            return value
        channels = info.data.get("channels")
        if channels is not None and len(value) != channels:
            raise ValueError(f"{info.field_name} needs one value per channel ({channels})")
        if info.field_name == "std" and any(item <= 0 for item in value):
            raise ValueError("std values must be positive")
        return value

    @field_validator("augment")
    @classmethod
    def _check_unique_augment(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("augment lists an augmentation twice")
        return value


class ImageFolderConfig(ImageDataConfig):
    """Images stored as ``root/CLASS_NAME/IMAGE`` (PNG, JPEG, BMP, GIF, TIFF, WebP, PPM/PGM)."""

    root: str = Field(
        description=(
            "Folder with one subfolder per class; ~ is expanded and a relative path is "
            "resolved against the current working directory, so prefer absolute paths."
        ),
        min_length=1,
    )
    val_root: str | None = Field(
        None,
        validate_default=True,
        description=(
            "Separate folder of validation images in the same layout; when set, val_fraction "
            "must be 0."
        ),
    )
    test_root: str | None = Field(
        None,
        description=(
            "Separate folder of test images in the same layout; when set, test_fraction must "
            "be 0."
        ),
    )
    preload: bool = Field(
        False,
        description=(
            "Decode every image once when the dataset is built and keep the resized pixels in "
            "memory (channels x image_size^2 bytes per image); otherwise images are decoded "
            "on each access."
        ),
    )

    @field_validator("val_root")
    @classmethod
    def _check_val_root(cls, value: str | None, info: ValidationInfo) -> str | None:
        val_fraction = info.data.get("val_fraction")
        if value is not None and val_fraction:
            raise ValueError("set val_fraction to 0 when val_root is given")
        if value is None and val_fraction == 0:
            raise ValueError("the val split is required: set val_fraction > 0 or val_root")
        return value

    @field_validator("test_root")
    @classmethod
    def _check_test_root(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None and info.data.get("test_fraction"):
            raise ValueError("set test_fraction to 0 when test_root is given")
        return value


class DigitsConfig(ImageDataConfig):
    """scikit-learn's 1,797 handwritten 8x8 digits, exported once to an image folder."""

    root: str | None = Field(
        None,
        description=(
            "Folder receiving the exported PNG files (~ is expanded, a relative path is "
            "resolved against the current working directory); None uses "
            "$ADAPTLAB_CACHE/digits, or ~/.cache/adaptlab/digits when ADAPTLAB_CACHE is unset."
        ),
    )
    task: str = Field(
        "digit",
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
        description="Task name of the digit label; model.heads must use the same name.",
    )
    image_size: int = Field(
        32, gt=0, description="Side of the square images in pixels (upsampled from 8)."
    )
    channels: Literal[1, 3] = Field(
        3,
        description=(
            "Image channels: 3 repeats the grayscale digit as RGB, which fits backbones "
            "built with the default in_chans=3; 1 keeps a single channel (set the backbone's "
            "in_chans to 1)."
        ),
    )

    @field_validator("val_fraction")
    @classmethod
    def _require_val(cls, value: float) -> float:
        if value == 0:
            raise ValueError("the val split is required: set val_fraction > 0")
        return value
