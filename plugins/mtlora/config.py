"""Configuration models of the MTLoRA model components (light: imports pydantic only).

Components: the ``swin`` backbone, the ``mtlora`` adapter and the ``hrnet`` head. The Swin
geometry check lives here, so that an image size that the windows cannot tile is a spec error
before anything is built.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from adaptlab.core.contracts import ComponentConfig, HeadConfig

__all__ = [
    "METRIC_NAMES",
    "PEFT_BASELINE_TARGETS",
    "SWIN_STAGES",
    "HRNetHeadConfig",
    "MTLoRAConfig",
    "SwinBackboneConfig",
    "SwinGeometry",
    "parse_variant",
    "tileable_sizes",
    "untileable_reason",
]

SWIN_STAGES = 4
"""Number of stages of every supported Swin variant, and of feature maps the heads read."""

PEFT_BASELINE_TARGETS = r"model\.layers\.\d+\.blocks\.\d+\.(attn\.(qkv|proj)|mlp\.(fc1|fc2))"
"""``target_modules`` regular expression of the peft ``lora`` baseline on the ``swin`` backbone.

It selects qkv, proj, fc1 and fc2 of every transformer block, as MTLoRA's task-agnostic
branches do. The list form ``[qkv, proj, fc1, fc2]`` would also match the patch-embedding
convolution ``model.patch_embed.proj``, because list entries match name suffixes.
"""

_VARIANT = re.compile(r"^swin_(tiny|small|base|large)_patch(\d+)_window(\d+)_(\d+)$")
_VARIANT_SHAPES = {
    "tiny": (96, (2, 2, 6, 2), (3, 6, 12, 24)),
    "small": (96, (2, 2, 18, 2), (3, 6, 12, 24)),
    "base": (128, (2, 2, 18, 2), (4, 8, 16, 32)),
    "large": (192, (2, 2, 18, 2), (6, 12, 24, 48)),
}
_SHOWN_SIZES = 4
_MAX_SUGGESTED_WINDOW = 16

SharedLayer = Literal["qkv", "proj", "fc1", "fc2"]
TaskLayer = Literal["proj", "fc1", "fc2"]
Unfrozen = Literal["norm", "patch_embed", "relative_position_bias", "patch_merging"]


class SwinGeometry:
    """Patch size, window size, image size and widths of one Swin v1 configuration."""

    def __init__(
        self,
        patch_size: int,
        window_size: int,
        image_size: int,
        embed_dim: int,
        depths: tuple[int, ...],
        num_heads: tuple[int, ...],
    ) -> None:
        self.patch_size = patch_size
        self.window_size = window_size
        self.image_size = image_size
        self.embed_dim = embed_dim
        self.depths = depths
        self.num_heads = num_heads

    def stage_resolutions(self) -> list[int]:
        """Return the token grid side of each stage (patch grid halved per patch merging)."""
        grid = self.image_size // self.patch_size
        return [grid // 2**stage for stage in range(len(self.depths))]


def parse_variant(name: str) -> tuple[str, int, int, int]:
    """Split a timm Swin v1 name into ``(size, patch, window, image size)``.

    A pretrained tag (``swin_tiny_patch4_window7_224.ms_in1k``) is ignored. Raises
    ``ValueError`` for names of other architectures.
    """
    match = _VARIANT.match(name.split(".", 1)[0])
    if match is None:
        raise ValueError(
            f"{name!r} is not a Swin v1 variant; use a timm name such as "
            "swin_tiny_patch4_window7_224, swin_small_patch4_window7_224 or "
            "swin_base_patch4_window12_384"
        )
    size, patch, window, image = match.groups()
    return size, int(patch), int(window), int(image)


def untileable_reason(image_size: int, patch_size: int, window_size: int, stages: int) -> str:
    """Return why Swin cannot tile ``image_size`` exactly, or ``""`` when it can.

    Each stage's token grid must split into whole windows; timm shrinks the window to the grid
    when the grid is not larger than the window. Patch merging must see an even grid. timm
    would pad instead, which changes the features near the border.
    """
    if image_size % patch_size:
        return f"{image_size} is not a multiple of the patch size {patch_size}"
    grid = image_size // patch_size
    for stage in range(stages):
        side = grid // 2**stage
        if stage < stages - 1 and side % 2:
            return f"stage {stage + 1} has an odd grid of {side} tokens, which patch merging halves"
        window = min(window_size, side)
        if side % window:
            return f"stage {stage + 1} has a grid of {side} tokens, not a multiple of window {window}"
    return ""


def tileable_sizes(
    near: int, patch_size: int, window_size: int, stages: int, count: int = _SHOWN_SIZES
) -> list[int]:
    """Return up to ``count`` image sizes that Swin tiles exactly, the closest to ``near`` first."""
    step = patch_size * 2 ** (stages - 1)
    candidates = range(step, max(near, step) * 4 + 1, step)
    valid = [size for size in candidates if not untileable_reason(size, patch_size, window_size, stages)]
    return sorted(sorted(valid, key=lambda size: abs(size - near))[:count])


class SwinBackboneConfig(ComponentConfig):
    """Swin Transformer v1 from timm returning the four stage outputs as NCHW feature maps.

    The timm model is the backbone's child ``model``, so full layer names start with
    ``model.`` (``model.layers.0.blocks.1.attn.qkv``).
    """

    variant: str = Field(
        "swin_tiny_patch4_window7_224",
        description=(
            "timm Swin v1 architecture: swin_{tiny,small,base,large}_patch{P}_window{W}_{SIZE}, "
            "e.g. swin_tiny_patch4_window7_224. It is built with pretrained=False."
        ),
    )
    image_size: int | None = Field(
        None,
        gt=0,
        description=(
            "Input image side in pixels; every stage's token grid must split into whole "
            "windows (448 for Swin-T with window 7). None keeps the variant's size."
        ),
    )
    window_size: int | None = Field(
        None, gt=0, description="Attention window side in tokens; None keeps the variant's."
    )
    embed_dim: int | None = Field(
        None, gt=0, description="Width of the first stage; None keeps the variant's (96 for Swin-T)."
    )
    depths: list[int] | None = Field(
        None,
        description="Blocks per stage, four entries; None keeps the variant's ([2, 2, 6, 2] for Swin-T).",
    )
    num_heads: list[int] | None = Field(
        None,
        description="Attention heads per stage, four entries; None keeps the variant's ([3, 6, 12, 24]).",
    )
    drop_path_rate: float = Field(
        0.0,
        ge=0.0,
        lt=1.0,
        description="Stochastic depth probability of the last block (the MTLoRA reference uses 0.2).",
    )
    weights: str | None = Field(
        None,
        description=(
            "Local weights file (.safetensors, or a .pth/.pt state dict) of the same timm "
            "variant or an original Swin checkpoint; never downloaded. None keeps the random "
            "initialisation."
        ),
    )
    features: Literal["merged", "stages"] = Field(
        "merged",
        description=(
            "Feature maps returned: merged (MTLoRA's layout: each stage's output after the "
            "patch merging that follows it, channels 2C, 4C, 8C, 8C at strides 8, 16, 32, 32) "
            "or stages (timm's layout: channels C, 2C, 4C, 8C at strides 4, 8, 16, 32)."
        ),
    )

    @field_validator("variant")
    @classmethod
    def _check_variant(cls, value: str) -> str:
        parse_variant(value)
        return value

    @field_validator("depths", "num_heads")
    @classmethod
    def _check_per_stage(cls, value: list[int] | None) -> list[int] | None:
        if value is None:
            return None
        if len(value) != SWIN_STAGES:
            raise ValueError(f"give one entry per stage ({SWIN_STAGES} entries), not {len(value)}")
        if any(entry < 1 for entry in value):
            raise ValueError("entries must be positive integers")
        return value

    @field_validator("weights")
    @classmethod
    def _check_weights_suffix(cls, value: str | None) -> str | None:
        suffixes = (".safetensors", ".pth", ".pt", ".bin")
        if value is not None and not value.lower().endswith(suffixes):
            raise ValueError(f"weights file must end in one of {', '.join(suffixes)}")
        return value

    @model_validator(mode="after")
    def _check_tiling(self) -> SwinBackboneConfig:
        geometry = self.geometry()
        reason = untileable_reason(
            geometry.image_size, geometry.patch_size, geometry.window_size, SWIN_STAGES
        )
        if reason:
            sizes = tileable_sizes(
                geometry.image_size, geometry.patch_size, geometry.window_size, SWIN_STAGES
            )
            windows = [
                window
                for window in range(2, _MAX_SUGGESTED_WINDOW + 1)
                if not untileable_reason(
                    geometry.image_size, geometry.patch_size, window, SWIN_STAGES
                )
            ][:_SHOWN_SIZES]
            keep = f", or window_size {', '.join(map(str, windows))} for this size" if windows else ""
            raise ValueError(
                f"image_size {geometry.image_size} cannot be tiled by window "
                f"{geometry.window_size} with patch {geometry.patch_size}: {reason}; image sizes "
                f"that work: {', '.join(map(str, sizes))}{keep}"
            )
        for stage, heads in enumerate(geometry.num_heads):
            width = geometry.embed_dim * 2**stage
            if width % heads:
                raise ValueError(
                    f"stage {stage + 1} has width {width}, which {heads} attention heads do not "
                    "divide; change embed_dim or num_heads"
                )
        return self

    def geometry(self) -> SwinGeometry:
        """Return the resolved geometry: the variant's values overridden by the set fields."""
        size, patch, window, image = parse_variant(self.variant)
        embed_dim, depths, num_heads = _VARIANT_SHAPES[size]
        return SwinGeometry(
            patch_size=patch,
            window_size=self.window_size or window,
            image_size=self.image_size or image,
            embed_dim=self.embed_dim or embed_dim,
            depths=tuple(self.depths or depths),
            num_heads=tuple(self.num_heads or num_heads),
        )


def _check_rank(value: int, what: str) -> None:
    if value <= 0:
        raise ValueError(f"{what} must be a positive integer, not {value}")


class MTLoRAConfig(ComponentConfig):
    """MTLoRA on the ``swin`` backbone: task-agnostic and task-specific low-rank branches.

    Task-agnostic LoRA (TA-LoRA) adapts the chosen layers of every block. Task-specific LoRA
    (TS-LoRA) adds one branch per task to the chosen layers of the last block of each stage;
    its per-task outputs go through the shared patch merging and feed that task's head.
    """

    shared_rank: int | list[int] = Field(
        16,
        description="Rank of the task-agnostic branches: one value, or one per stage (4 entries).",
    )
    task_rank: int | dict[str, int] = Field(
        4, description="Rank of the task-specific branches: one value, or a mapping task -> rank."
    )
    scale: float = Field(
        4.0,
        gt=0.0,
        description="Multiplier of the task-agnostic low-rank update (a plain factor, not alpha / r).",
    )
    task_scale: float | None = Field(
        None, gt=0.0, description="Multiplier of the task-specific updates; None uses scale."
    )
    dropout: float = Field(
        0.05, ge=0.0, lt=1.0, description="Dropout probability on the input of every low-rank branch."
    )
    shared_layers: list[SharedLayer] = Field(
        default_factory=lambda: ["qkv", "proj", "fc1", "fc2"],
        description="Layers of every block that get a task-agnostic branch.",
    )
    task_layers: list[TaskLayer] = Field(
        default_factory=lambda: ["proj", "fc1", "fc2"],
        description="Layers of each stage's last block that get task-specific branches.",
    )
    stages: list[int] | None = Field(
        None,
        description="Stages (1 to 4) whose blocks are adapted; None adapts all four.",
    )
    combine: Literal["task", "task_plus_shared", "normalized_sum"] = Field(
        "task",
        description=(
            "How a task-specific layer combines its branches. task: each task's output is the "
            "frozen layer plus its own update. task_plus_shared: the task-agnostic update is "
            "added to each task's output too. normalized_sum: no task-agnostic branch in that "
            "layer; the shared output is the frozen layer plus a LayerNorm of the sum of the "
            "task outputs."
        ),
    )
    patch_merging: bool = Field(
        False,
        description=(
            "Add a task-agnostic branch to each patch-merging reduction, which then stays frozen."
        ),
    )
    unfrozen: list[Unfrozen] = Field(
        default_factory=lambda: ["norm", "patch_embed", "relative_position_bias", "patch_merging"],
        description=(
            "Backbone parameters trained in full next to the adapters: norm (every LayerNorm), "
            "patch_embed, relative_position_bias (the bias tables) and patch_merging (the "
            "reductions, unless patch_merging adapts them)."
        ),
    )
    init: Literal["default", "random"] = Field(
        "default",
        description=(
            "Initialisation: default (B = 0, so the adapter starts as a no-op) or random (B "
            "random too, so tasks differ from the start; for tests and debugging)."
        ),
    )

    @field_validator("shared_rank")
    @classmethod
    def _check_shared_rank(cls, value: int | list[int]) -> int | list[int]:
        if isinstance(value, int):
            _check_rank(value, "shared_rank")
            return value
        if len(value) != SWIN_STAGES:
            raise ValueError(f"give one rank per stage ({SWIN_STAGES} entries), not {len(value)}")
        for rank in value:
            _check_rank(rank, "every shared_rank entry")
        return value

    @field_validator("task_rank")
    @classmethod
    def _check_task_rank(cls, value: int | dict[str, int]) -> int | dict[str, int]:
        if isinstance(value, int):
            _check_rank(value, "task_rank")
            return value
        if not value:
            raise ValueError("the mapping is empty; give a rank per task or a single integer")
        for task, rank in value.items():
            _check_rank(rank, f"task_rank of {task!r}")
        return value

    @field_validator("shared_layers", "task_layers", "unfrozen")
    @classmethod
    def _reject_repeats(cls, value: list[str]) -> list[str]:
        repeated = sorted({name for name in value if value.count(name) > 1})
        if repeated:
            raise ValueError(f"{', '.join(repeated)} listed more than once")
        return value

    @field_validator("stages")
    @classmethod
    def _check_stages(cls, value: list[int] | None) -> list[int] | None:
        if value is None:
            return None
        if not value:
            raise ValueError("the list is empty; give stage numbers 1 to 4, or null for all")
        outside = [stage for stage in value if not 1 <= stage <= SWIN_STAGES]
        if outside:
            raise ValueError(f"stages are numbered 1 to {SWIN_STAGES}, not {outside}")
        return sorted(set(value))

    def stage_ranks(self) -> list[int]:
        """Return the task-agnostic rank of each of the four stages."""
        if isinstance(self.shared_rank, int):
            return [self.shared_rank] * SWIN_STAGES
        return list(self.shared_rank)

    def adapted_stages(self) -> list[int]:
        """Return the 0-based indices of the adapted stages."""
        return [stage - 1 for stage in (self.stages or range(1, SWIN_STAGES + 1))]


METRIC_NAMES: dict[str, tuple[str, ...]] = {
    "segmentation": ("miou", "pixel_accuracy"),
    "saliency": ("miou", "maxf"),
    "normals": ("mean_error", "median_error", "within_11_25", "within_22_5", "within_30"),
    "edge": ("odsf",),
    "depth": ("rmse",),
}
"""Keys of ``new_dense_metric(task).compute()`` by task kind."""


class HRNetHeadConfig(HeadConfig):
    """HRNet-style dense head of MTLoRA, one per task.

    Per-task 1x1 convolutions reduce the four feature maps to ``channels``; the maps are
    upsampled bilinearly to the largest one and concatenated, then a 1x1 convolution with
    batch norm and ReLU and a final 1x1 convolution predict the task's channels, which are
    upsampled to the input image size. Loss and metrics depend on the task's kind.
    """

    channels: list[int] = Field(
        default_factory=lambda: [18, 36, 72, 144],
        description="Channels of the per-task 1x1 reductions, one per feature map.",
    )
    hidden_multiplier: int = Field(
        4,
        ge=1,
        description=(
            "Width of the hidden 1x1 convolution as a multiple of sum(channels) (4 x 270 = "
            "1080 channels in the MTLoRA reference)."
        ),
    )

    @field_validator("channels")
    @classmethod
    def _check_channels(cls, value: list[int]) -> list[int]:
        if not value or any(width < 1 for width in value):
            raise ValueError("give one positive channel count per feature map, e.g. [18, 36, 72, 144]")
        return value

    @classmethod
    def metric_names(cls) -> tuple[str, ...]:
        """Return every metric a dense task can report; validation checks ``train.monitor``
        against them (the head's own task kind is known only when it is built)."""
        return tuple(sorted({name for names in METRIC_NAMES.values() for name in names}))
