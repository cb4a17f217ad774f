"""The ``pascal_context`` dataset: PASCAL-Context in the multi-task layout used by MTLoRA.

The layout and encodings are those of the PASCAL_MT archive of ASTMT (Maninis et al., CVPR
2019), which MTLoRA trains on. For an image id ``ID`` listed in
``ImageSets/Context/SPLIT.txt``:

=============== ============================================ ====================================
task            file                                         decoding
=============== ============================================ ====================================
image           ``JPEGImages/ID.jpg``                        RGB
semseg          ``semseg/VOC12/ID.png`` or                   21 classes (0 background, VOC
                ``semseg/pascal-context/ID.png``             order), 255 ignored
human_parts     ``human_parts/ID.mat``                       PASCAL-Part ``anno``: parts of
                                                             objects of class 15 (person),
                                                             grouped into 6 parts; an image
                                                             without them is ignored (255)
saliency        ``sal_distill/ID.png``                       value / 255 > 0.5
normals         ``normals_distill/ID.png``                   2 * value / 255 - 1, renormalised
edge            ``pascal-context/trainval/ID.mat``           boundaries of ``LabelMap``
=============== ============================================ ====================================

The folder is only read. Images and targets are resized to ``image_size`` squares (bilinear
image and normals, nearest labels), as the reference's fixed resize does.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from adaptlab.core.contracts import DatasetBundle
from adaptlab.core.errors import ComponentBuildError
from adaptlab.plugins.mtlora.data.common import DenseSplit, make_augmenter, make_bundle, make_task_info
from adaptlab.plugins.mtlora.data.config import PascalContextConfig
from adaptlab.plugins.mtlora.data.layout import (
    check_files,
    check_label_range,
    read_image,
    read_png,
    read_split_ids,
)
from adaptlab.plugins.mtlora.data.scenes import boundaries
from adaptlab.plugins.mtlora.data.transforms import resize
from adaptlab.plugins.mtlora.tasks import IGNORE_INDEX

__all__ = [
    "HUMAN_PART_GROUPS",
    "HUMAN_PART_NAMES",
    "PASCAL_CLASS_NAMES",
    "build_pascal_context",
    "read_human_parts",
]

PASCAL_CLASS_NAMES = (
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat",
    "chair", "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant",
    "sheep", "sofa", "train", "tvmonitor",
)
HUMAN_PART_NAMES = (
    "background", "head", "torso", "upper_arm", "lower_arm", "upper_leg", "lower_leg",
)

# PASCAL-Part person part names grouped into the 6 parts of the multi-task benchmark.
HUMAN_PART_GROUPS = {
    **dict.fromkeys(
        ("hair", "head", "lear", "rear", "leye", "reye", "lebrow", "rebrow", "nose", "mouth"), 1
    ),
    **dict.fromkeys(("neck", "torso"), 2),
    **dict.fromkeys(("luarm", "ruarm"), 3),
    **dict.fromkeys(("llarm", "rlarm", "lhand", "rhand"), 4),
    **dict.fromkeys(("luleg", "ruleg"), 5),
    **dict.fromkeys(("llleg", "rlleg", "lfoot", "rfoot"), 6),
}

_TASK_FOLDERS = {
    "human_parts": ("human_parts", ".mat"),
    "saliency": ("sal_distill", ".png"),
    "normals": ("normals_distill", ".png"),
    "edge": ("pascal-context/trainval", ".mat"),
}


def _as_list(value: Any) -> list[Any]:
    # scipy's squeeze_me turns a 1x1 struct array into one struct and an empty one into [].
    if isinstance(value, np.ndarray):
        return list(value.flat)
    return [value]


def _load_mat(path: Path) -> Any:
    from scipy.io import loadmat
    from scipy.io.matlab import MatReadError

    try:
        return loadmat(path, squeeze_me=True, struct_as_record=False)
    except (MatReadError, OSError, ValueError) as error:
        raise ComponentBuildError(
            f"MATLAB file {str(path)!r} could not be read ({type(error).__name__}: {error}); "
            "replace the file"
        ) from error


def read_human_parts(path: Path, person_class: int, size: tuple[int, int]) -> np.ndarray:
    """Return the 6-part label map of ``path`` (uint8); an image of ``size`` (height, width)
    without person parts is all 255, so it is ignored."""
    content = _load_mat(path)
    if "anno" not in content:
        raise ComponentBuildError(
            f"human parts file {str(path)!r} has no 'anno' struct; expected a PASCAL-Part "
            "annotation"
        )
    anno = content["anno"]
    labels: np.ndarray | None = None
    for obj in _as_list(getattr(anno, "objects", [])):
        parts = _as_list(getattr(obj, "parts", []))
        if int(obj.class_ind) != person_class or not parts:
            continue
        if labels is None:
            labels = np.zeros(np.shape(obj.mask), dtype=np.uint8)
        for part in parts:
            name = str(part.part_name)
            if name not in HUMAN_PART_GROUPS:
                raise ComponentBuildError(
                    f"human parts file {str(path)!r} names the unknown part {name!r} (known: "
                    f"{', '.join(sorted(HUMAN_PART_GROUPS))})"
                )
            labels[np.asarray(part.mask, dtype=bool)] = HUMAN_PART_GROUPS[name]
    if labels is None:
        return np.full(size, IGNORE_INDEX, dtype=np.uint8)
    return labels


def read_label_map(path: Path) -> np.ndarray:
    """Return ``LabelMap`` of a PASCAL-Context annotation file."""
    content = _load_mat(path)
    if "LabelMap" not in content:
        raise ComponentBuildError(
            f"PASCAL-Context file {str(path)!r} has no 'LabelMap'; expected a "
            "pascal-context/trainval annotation"
        )
    return np.asarray(content["LabelMap"])


class _PascalReader:
    """Reads and resizes one item of the layout."""

    def __init__(self, config: PascalContextConfig, root: Path, ids: list[str]) -> None:
        self.config = config
        self.root = root
        self.ids = ids
        self.semseg_paths = [self._semseg_path(image_id) for image_id in ids]

    def _semseg_path(self, image_id: str) -> Path:
        voc = self.root / "semseg" / "VOC12" / f"{image_id}.png"
        return voc if voc.is_file() else self.root / "semseg" / "pascal-context" / f"{image_id}.png"

    def task_path(self, task: str, index: int) -> Path:
        if task == "semseg":
            return self.semseg_paths[index]
        folder, suffix = _TASK_FOLDERS[task]
        return self.root / folder / f"{self.ids[index]}{suffix}"

    def expected_files(self) -> dict[str, list[Path]]:
        expected = {
            "image": [self.root / "JPEGImages" / f"{image_id}.jpg" for image_id in self.ids]
        }
        for task in self.config.tasks:
            expected[task] = [self.task_path(task, index) for index in range(len(self.ids))]
        if "normals" in self.config.tasks and self.config.normals_valid_labels is not None:
            expected["normals (valid labels)"] = [
                self.task_path("edge", index) for index in range(len(self.ids))
            ]
        return expected

    def load(self, index: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        image = read_image(self.root / "JPEGImages" / f"{self.ids[index]}.jpg")
        size = tuple(image.shape[-2:])
        targets = {task: self._target(task, index, size) for task in self.config.tasks}
        return resize(image, targets, self.config.image_size)

    def _target(self, task: str, index: int, size: tuple[int, int]) -> torch.Tensor:
        path = self.task_path(task, index)
        if task == "semseg":
            labels = read_png(path).astype(np.int64)
            check_label_range(labels, len(PASCAL_CLASS_NAMES), path, task)
            return _sized(torch.from_numpy(labels), size, path)
        if task == "human_parts":
            labels = read_human_parts(path, self.config.person_class, size).astype(np.int64)
            return _sized(torch.from_numpy(labels), size, path)
        if task == "saliency":
            values = read_png(path).astype(np.float32)
            if values.ndim == 3:
                values = values[..., 0]
            return _sized(torch.from_numpy((values / 255.0 > 0.5).astype(np.float32))[None], size, path)
        if task == "edge":
            # NOTE: edges are label changes between 4-neighbours, two pixels wide; the ASTMT
            # loader thins the Laplacian of LabelMap to one pixel instead.
            edge = boundaries(read_label_map(path)).astype(np.float32)
            return _sized(torch.from_numpy(edge)[None], size, path)
        return self._normals(index, path, size)

    def _normals(self, index: int, path: Path, size: tuple[int, int]) -> torch.Tensor:
        stored = read_png(path)
        if stored.ndim != 3 or stored.shape[-1] < 3:
            raise ComponentBuildError(
                f"normals file {str(path)!r} is not an RGB image (shape {stored.shape})"
            )
        stored = stored[..., :3]
        valid = stored.any(axis=-1)
        if self.config.normals_valid_labels is not None:
            label_map = read_label_map(self.task_path("edge", index))
            valid &= np.isin(label_map, self.config.normals_valid_labels)
        vectors = 2.0 * stored.astype(np.float32) / 255.0 - 1.0
        vectors /= np.maximum(np.linalg.norm(vectors, axis=-1, keepdims=True), 1e-12)
        vectors *= valid[..., None]
        return _sized(torch.from_numpy(vectors).permute(2, 0, 1).contiguous(), size, path)


def _sized(value: torch.Tensor, size: tuple[int, int], path: Path) -> torch.Tensor:
    if tuple(value.shape[-2:]) != size:
        raise ComponentBuildError(
            f"{str(path)!r} is {value.shape[-2]}x{value.shape[-1]} pixels but its image is "
            f"{size[0]}x{size[1]}; targets must match their image"
        )
    return value


def build_pascal_context(config: PascalContextConfig, seed: int) -> DatasetBundle:
    """Factory of the ``pascal_context`` dataset (``seed`` is unused: the splits are fixed)."""
    del seed
    root = config.root_path()
    if not root.is_dir():
        raise ComponentBuildError(
            f"pascal_context: folder {str(root)!r} not found; set data.root to the PASCAL_MT "
            "folder (it contains JPEGImages/ and ImageSets/)"
        )
    split_names = {"train": config.train_split, "val": config.val_split}
    if config.test_split is not None:
        split_names["test"] = config.test_split
    splits = {}
    for split, name in split_names.items():
        ids = read_split_ids(root / "ImageSets" / "Context" / f"{name}.txt", "pascal_context",
                             f"{split}_split")
        reader = _PascalReader(config, root, ids)
        check_files("pascal_context", reader.expected_files())
        # NOTE: rotation treats the distilled normals' y axis as pointing down the image, as
        # the ASTMT and MTLoRA training code implies. The archive does not document it.
        augmenter = make_augmenter(config, normals_y_up=False) if split == "train" else None
        splits[split] = DenseSplit(reader.load, len(ids), augmenter)
    names = {"semseg": PASCAL_CLASS_NAMES, "human_parts": HUMAN_PART_NAMES}
    tasks = {task: make_task_info(task, names) for task in config.tasks}
    sizes = " / ".join(f"{len(split)} {name}" for name, split in splits.items())
    description = f"pascal_context {root}: {sizes} images, tasks {', '.join(config.tasks)}"
    return make_bundle(config, splits, tasks, description)
