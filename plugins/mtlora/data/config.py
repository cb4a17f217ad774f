"""Configuration models of the MTLoRA datasets (light: imports pydantic only).

Every dataset returns items ``(image, targets)`` encoded as described in
:mod:`adaptlab.plugins.mtlora.tasks`. ``single_task`` contains the single-task baselines from
which the dataset derives ``delta_m`` (see :func:`adaptlab.plugins.mtlora.tasks.delta_m`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field, ValidationInfo, field_validator

from adaptlab.core.contracts import ComponentConfig

__all__ = [
    "AugmentConfig",
    "DenseDataConfig",
    "NyudConfig",
    "PascalContextConfig",
    "ScenesConfig",
    "SplitCounts",
    "resolve_dataset_root",
]

Task = Literal["semseg", "human_parts", "saliency", "normals", "edge", "depth"]

# Task kinds, mirrored from adaptlab.plugins.mtlora.tasks (kept here so that validation stays
# free of torch).
TASK_KIND = {
    "semseg": "segmentation",
    "human_parts": "segmentation",
    "saliency": "saliency",
    "normals": "normals",
    "edge": "edge",
    "depth": "depth",
}
_KIND_METRICS = {
    "segmentation": ("miou", "pixel_accuracy"),
    "saliency": ("miou", "maxf"),
    "normals": ("mean_error", "median_error", "within_11_25", "within_22_5", "within_30"),
    "edge": ("odsf",),
    "depth": ("rmse",),
}


class AugmentConfig(ComponentConfig):
    """Random augmentations of training items (validation and test items are never changed)."""

    hflip: bool = Field(
        True,
        description="Flip horizontally with probability 0.5; the normals' x component is negated.",
    )
    scale: tuple[float, float] = Field(
        (1.0, 1.0),
        description=(
            "Range of the random zoom factor about the image centre, e.g. [0.75, 1.25]; depth "
            "is divided by the factor. [1, 1] disables scaling."
        ),
    )
    rotate: float = Field(
        0.0,
        ge=0.0,
        le=180.0,
        description=(
            "Maximum rotation in degrees about the image centre, drawn uniformly in "
            "[-rotate, rotate]; normals are rotated with the image. 0 disables rotation."
        ),
    )

    @field_validator("scale")
    @classmethod
    def _check_scale(cls, value: tuple[float, float]) -> tuple[float, float]:
        low, high = value
        if not 0 < low <= high:
            raise ValueError("scale must be [low, high] with 0 < low <= high, e.g. [0.75, 1.25]")
        return value

    def is_identity(self) -> bool:
        """Return whether no augmentation is enabled."""
        return not self.hflip and self.scale == (1.0, 1.0) and self.rotate == 0.0


class DenseDataConfig(ComponentConfig):
    """Fields shared by every multi-task dense-prediction dataset of this plugin."""

    available_tasks: ClassVar[tuple[str, ...]] = tuple(TASK_KIND)

    tasks: list[Task] = Field(
        default_factory=lambda: ["semseg", "human_parts", "saliency", "normals"],
        description="Tasks to load; model.heads must use these names.",
    )
    image_size: int = Field(
        448,
        ge=16,
        le=2048,
        description="Side in pixels of the square images and targets after the fixed resize.",
    )
    augment: AugmentConfig | None = Field(
        None, description="Training augmentations; null trains on the items as they are."
    )
    single_task: dict[str, float] = Field(
        default_factory=dict,
        description=(
            "Single-task baselines for delta-m, as TASK/METRIC: value in the units the metric "
            "reports (percent for miou/maxf/odsf, degrees for normals errors, metres for "
            "rmse), e.g. {semseg/miou: 67.21, normals/mean_error: 17.97}. With baselines, "
            "evaluation adds the metric delta_m (percent)."
        ),
    )

    @field_validator("tasks")
    @classmethod
    def _check_tasks(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("give at least one task")
        if len(set(value)) != len(value):
            raise ValueError("tasks lists a task twice")
        unsupported = [task for task in value if task not in cls.available_tasks]
        if unsupported:
            raise ValueError(
                f"this dataset has no task {', '.join(unsupported)} (its tasks: "
                f"{', '.join(cls.available_tasks)})"
            )
        return value

    @field_validator("single_task")
    @classmethod
    def _check_baselines(cls, value: dict[str, float], info: ValidationInfo) -> dict[str, float]:
        tasks = info.data.get("tasks")
        for name, baseline in value.items():
            task, slash, metric = name.partition("/")
            if not slash or task not in TASK_KIND:
                raise ValueError(
                    f"baseline {name!r} must be TASK/METRIC with TASK one of "
                    f"{', '.join(TASK_KIND)}, e.g. semseg/miou"
                )
            if tasks is not None and task not in tasks:
                raise ValueError(f"baseline {name!r} names task {task!r}, which is not in tasks")
            metrics = _KIND_METRICS[TASK_KIND[task]]
            if metric not in metrics:
                raise ValueError(
                    f"baseline {name!r}: task {task!r} reports no metric {metric!r} (its "
                    f"metrics: {', '.join(metrics)})"
                )
            if not baseline > 0:
                raise ValueError(f"baseline {name!r} must be positive, found {baseline}")
        return value

    def task_names(self) -> list[str]:
        """Return the tasks this dataset provides (the spec validator matches heads to them)."""
        return list(self.tasks)

    def check_monitor(
        self, name: str, tasks: list[str] | None = None, mode: str | None = None
    ) -> str | None:
        """Return why ``train.monitor: NAME`` cannot be reported, or None (spec validation).

        ``tasks`` are the tasks of model.heads and ``mode`` is train.mode, where known.
        """
        if name != "delta_m":
            return None
        if not self.single_task:
            return (
                "delta_m needs single-task baselines, and data.single_task is empty; set it, "
                "e.g. {semseg/miou: 67.21, normals/mean_error: 17.97}, or monitor TASK/METRIC"
            )
        if tasks is not None:
            headless = [key for key in self.single_task if key.partition("/")[0] not in tasks]
            if headless:
                return (
                    f"delta_m baselines {', '.join(headless)} in data.single_task name tasks "
                    f"with no head in model.heads (heads: {', '.join(tasks)}); add a head for "
                    "each of those tasks or remove those baselines"
                )
        if mode == "min":
            return (
                "delta_m is higher-is-better, so train.mode: min would keep the worst "
                "checkpoint; set train.mode to max or leave it unset"
            )
        return None


class SplitCounts(ComponentConfig):
    """Number of generated images per split."""

    train: int = Field(256, ge=1, description="Training images.")
    val: int = Field(64, ge=1, description="Validation images.")
    test: int = Field(0, ge=0, description="Test images (0: no test split).")


class ScenesConfig(DenseDataConfig):
    """Procedurally rendered 3D scenes with exact labels for every task (no download)."""

    tasks: list[Task] = Field(
        default_factory=lambda: ["semseg", "human_parts", "saliency", "normals"],
        description=(
            "Tasks to generate: semseg, human_parts, saliency, normals, edge, depth; "
            "model.heads must use these names."
        ),
    )
    image_size: int = Field(
        64, ge=16, le=512, description="Side of the rendered square images in pixels."
    )
    counts: SplitCounts = Field(
        default_factory=SplitCounts, description="Images per split."
    )
    object_classes: int = Field(
        4,
        ge=1,
        le=8,
        description=(
            "Semantic object classes; semseg has object_classes + 1 classes (0 is the "
            "floor and wall background)."
        ),
    )
    max_objects: int = Field(
        4, ge=1, le=12, description="Maximum objects per scene (at least one is placed)."
    )
    seed: int | None = Field(
        None,
        ge=0,
        description="Seed of the scene generator; None uses the spec's seed.",
    )
    noise: float = Field(
        0.02,
        ge=0.0,
        le=0.5,
        description="Standard deviation of Gaussian pixel noise added to the rendered image.",
    )


def resolve_dataset_root(value: str, field: str) -> Path:
    """Return ``value`` as an absolute path, expanding ``~`` and environment variables.

    A relative path is rejected: the factory cannot know the spec file's folder, and the
    working directory changes between the shell, tests and Ray workers.
    """
    expanded = Path(os.path.expandvars(value)).expanduser()
    if not expanded.is_absolute():
        raise ValueError(
            f"{field} {value!r} is relative; give an absolute path (~ and $VARIABLES are "
            f"expanded), e.g. ~/data/{expanded.name or 'dataset'}"
        )
    return expanded


class _FolderConfig(DenseDataConfig):
    """Fields of datasets read from a folder in the multi-task layout."""

    root: str = Field(
        min_length=1,
        description=(
            "Dataset folder, absolute (~ and $VARIABLES are expanded); the loader only reads "
            "it."
        ),
    )
    train_split: str = Field("train", description="Split list file used for training.")
    val_split: str = Field("val", description="Split list file used for validation.")
    test_split: str | None = Field(
        None, description="Split list file used for testing (None: no test split)."
    )

    @field_validator("root")
    @classmethod
    def _check_root(cls, value: str) -> str:
        resolve_dataset_root(value, "root")
        return value

    def root_path(self) -> Path:
        """Return the absolute dataset folder."""
        return resolve_dataset_root(self.root, "root")


class PascalContextConfig(_FolderConfig):
    """PASCAL-Context in the multi-task layout of ASTMT and MTLoRA (PASCAL_MT)."""

    available_tasks: ClassVar[tuple[str, ...]] = (
        "semseg", "human_parts", "saliency", "normals", "edge",
    )

    normals_valid_labels: list[int] | None = Field(
        None,
        description=(
            "PASCAL-Context label ids (pascal-context/trainval/ID.mat LabelMap) whose pixels "
            "keep their distilled normals; others are marked invalid. None keeps every pixel "
            "whose stored normal is not (0, 0, 0)."
        ),
    )
    person_class: int = Field(
        15,
        ge=1,
        description="PASCAL VOC class index of the objects whose parts form human_parts.",
    )


class NyudConfig(_FolderConfig):
    """NYUD-v2 in the multi-task layout of ASTMT and MTLoRA (NYUD_MT)."""

    available_tasks: ClassVar[tuple[str, ...]] = ("semseg", "normals", "edge", "depth")

    tasks: list[Task] = Field(
        default_factory=lambda: ["semseg", "depth"],
        description="Tasks to load (semseg, normals, edge, depth); model.heads must match.",
    )
    image_size: int = Field(
        448, ge=16, le=2048, description="Side in pixels of the square images after resizing."
    )
