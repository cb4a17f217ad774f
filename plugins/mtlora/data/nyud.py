"""The ``nyud`` dataset: NYUD-v2 in the multi-task layout used by MTLoRA (NYUD_MT).

For an image id ``ID`` listed in ``gt_sets/SPLIT.txt``:

=========== ========================== ===========================================================
task        file                       decoding
=========== ========================== ===========================================================
image       ``images/ID.jpg``          RGB
semseg      ``segmentation/ID.png``    0 is unlabelled (ignored, 255); 1..40 become classes 0..39
depth       ``depth/ID.npy``           metres, ``(H, W)``; 0 is invalid
normals     ``normals/ID.npy``         ``(H, W, 3)`` in [-1, 1], renormalised; all-zero is invalid
edge        ``edge/ID.npy``            ``(H, W)``, values >= 0.5 are edges
=========== ========================== ===========================================================

The folder is only read. Images and targets are resized to ``image_size`` squares (bilinear
image and normals, nearest labels and depth).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from adaptlab.core.contracts import DatasetBundle
from adaptlab.core.errors import ComponentBuildError
from adaptlab.plugins.mtlora.data.common import DenseSplit, make_augmenter, make_bundle, make_task_info
from adaptlab.plugins.mtlora.data.config import NyudConfig
from adaptlab.plugins.mtlora.data.layout import (
    check_files,
    check_label_range,
    read_image,
    read_png,
    read_split_ids,
)
from adaptlab.plugins.mtlora.data.transforms import resize
from adaptlab.plugins.mtlora.tasks import IGNORE_INDEX

__all__ = ["NYUD_CLASS_NAMES", "build_nyud"]

# The 40 classes of Gupta et al. (CVPR 2013), in label order 1..40.
NYUD_CLASS_NAMES = (
    "wall", "floor", "cabinet", "bed", "chair", "sofa", "table", "door", "window", "bookshelf",
    "picture", "counter", "blinds", "desk", "shelves", "curtain", "dresser", "pillow", "mirror",
    "floor_mat", "clothes", "ceiling", "books", "refrigerator", "television", "paper", "towel",
    "shower_curtain", "box", "whiteboard", "person", "night_stand", "toilet", "sink", "lamp",
    "bathtub", "bag", "otherstructure", "otherfurniture", "otherprop",
)

_TASK_FILES = {
    "semseg": ("segmentation", ".png"),
    "depth": ("depth", ".npy"),
    "normals": ("normals", ".npy"),
    "edge": ("edge", ".npy"),
}


def _load_array(path: Path) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise ComponentBuildError(
            f"array file {str(path)!r} could not be read ({type(error).__name__}: {error}); "
            "replace the file"
        ) from error


class _NyudReader:
    """Reads and resizes one item of the layout."""

    def __init__(self, config: NyudConfig, root: Path, ids: list[str]) -> None:
        self.config = config
        self.root = root
        self.ids = ids

    def task_path(self, task: str, index: int) -> Path:
        folder, suffix = _TASK_FILES[task]
        return self.root / folder / f"{self.ids[index]}{suffix}"

    def expected_files(self) -> dict[str, list[Path]]:
        expected = {"image": [self.root / "images" / f"{image_id}.jpg" for image_id in self.ids]}
        for task in self.config.tasks:
            expected[task] = [self.task_path(task, index) for index in range(len(self.ids))]
        return expected

    def load(self, index: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        image = read_image(self.root / "images" / f"{self.ids[index]}.jpg")
        size = tuple(image.shape[-2:])
        targets = {}
        for task in self.config.tasks:
            path = self.task_path(task, index)
            value = self._target(task, path)
            if tuple(value.shape[-2:]) != size:
                raise ComponentBuildError(
                    f"{str(path)!r} is {value.shape[-2]}x{value.shape[-1]} pixels but its "
                    f"image is {size[0]}x{size[1]}; targets must match their image"
                )
            targets[task] = value
        return resize(image, targets, self.config.image_size)

    def _target(self, task: str, path: Path) -> torch.Tensor:
        if task == "semseg":
            stored = read_png(path).astype(np.int64)
            labels = np.where(stored == 0, IGNORE_INDEX, stored - 1)
            # A stored value above 40 is reported as stored, not shifted.
            invalid = (labels != IGNORE_INDEX) & (labels >= len(NYUD_CLASS_NAMES))
            check_label_range(np.where(invalid, stored, labels), len(NYUD_CLASS_NAMES), path, task)
            return torch.from_numpy(labels)
        values = _load_array(path).astype(np.float32)
        if task == "normals":
            if values.ndim != 3 or values.shape[-1] != 3:
                raise ComponentBuildError(
                    f"normals file {str(path)!r} has shape {values.shape}; expected (H, W, 3)"
                )
            norms = np.linalg.norm(values, axis=-1, keepdims=True)
            values = np.where(norms > 0, values / np.maximum(norms, 1e-12), 0.0)
            return torch.from_numpy(values.astype(np.float32)).permute(2, 0, 1).contiguous()
        if values.ndim == 3 and values.shape[-1] == 1:
            values = values[..., 0]
        if values.ndim != 2:
            raise ComponentBuildError(
                f"{task} file {str(path)!r} has shape {values.shape}; expected (H, W)"
            )
        if task == "edge":
            values = (values >= 0.5).astype(np.float32)
        else:
            values = np.where(np.isfinite(values) & (values > 0), values, 0.0).astype(np.float32)
        return torch.from_numpy(values)[None]


def build_nyud(config: NyudConfig, seed: int) -> DatasetBundle:
    """Factory of the ``nyud`` dataset (``seed`` is unused: the splits are fixed)."""
    del seed
    root = config.root_path()
    if not root.is_dir():
        raise ComponentBuildError(
            f"nyud: folder {str(root)!r} not found; set data.root to the NYUD_MT folder (it "
            "contains images/ and gt_sets/)"
        )
    split_names = {"train": config.train_split, "val": config.val_split}
    if config.test_split is not None:
        split_names["test"] = config.test_split
    splits = {}
    for split, name in split_names.items():
        ids = read_split_ids(root / "gt_sets" / f"{name}.txt", "nyud", f"{split}_split")
        reader = _NyudReader(config, root, ids)
        check_files("nyud", reader.expected_files())
        # NOTE: rotation treats the normals' y axis as pointing down the image, as the ASTMT and
        # MTLoRA training code implies. The archive does not document the convention.
        augmenter = make_augmenter(config, normals_y_up=False) if split == "train" else None
        splits[split] = DenseSplit(reader.load, len(ids), augmenter)
    tasks = {task: make_task_info(task, {"semseg": NYUD_CLASS_NAMES}) for task in config.tasks}
    sizes = " / ".join(f"{len(split)} {name}" for name, split in splits.items())
    description = f"nyud {root}: {sizes} images, tasks {', '.join(config.tasks)}"
    return make_bundle(config, splits, tasks, description)
