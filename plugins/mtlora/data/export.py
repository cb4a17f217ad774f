"""Writing ``scenes`` to disk in the PASCAL-Context (PASCAL_MT) or NYUD (NYUD_MT) layout.

The files use the encodings that :mod:`~adaptlab.plugins.mtlora.data.pascal` and
:mod:`~adaptlab.plugins.mtlora.data.nyud` read, so an export loads back through those
datasets. Images are JPEG (quality 95), as in the original archives, so pixels change by a
few levels; labels are lossless. PASCAL normals are stored as 8-bit PNG, which quantises each
component to 2/255. Objects become person-class objects whose upper, middle and lower parts
are the PASCAL-Part parts ``head``, ``torso`` and ``luarm`` (6-part labels 1, 2, 3).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from adaptlab.core.errors import ComponentBuildError
from adaptlab.plugins.mtlora.data.config import ScenesConfig
from adaptlab.plugins.mtlora.data.scenes import SceneArrays, render_split

__all__ = ["LAYOUTS", "export_scenes"]

logger = logging.getLogger(__name__)

LAYOUTS = ("pascal_context", "nyud")
_PART_NAMES = {1: "head", 2: "torso", 3: "luarm"}
_PERSON_CLASS = 15


def _write_png(path: Path, array: np.ndarray) -> None:
    Image.fromarray(array).save(path)


def _write_jpeg(path: Path, image: np.ndarray) -> None:
    # Full-resolution colour (no 4:2:0 subsampling) keeps the export close to the render.
    Image.fromarray(image).save(path, quality=95, subsampling=0)


def _parts_struct(scene: SceneArrays) -> dict:
    """Build a PASCAL-Part ``anno`` struct: one person object per scene object."""
    object_dtype = [("class", "O"), ("class_ind", "O"), ("mask", "O"), ("parts", "O")]
    part_dtype = [("part_name", "O"), ("mask", "O")]
    instances = [int(value) for value in np.unique(scene.instance) if value > 0]
    objects = np.zeros((1, len(instances)), dtype=object_dtype)
    for position, instance in enumerate(instances):
        mask = scene.instance == instance
        labels = [int(value) for value in np.unique(scene.parts[mask]) if value > 0]
        parts = np.zeros((1, len(labels)), dtype=part_dtype)
        for part_position, label in enumerate(labels):
            part_mask = (mask & (scene.parts == label)).astype(np.uint8)
            parts[0, part_position] = (_PART_NAMES[label], part_mask)
        objects[0, position] = ("person", _PERSON_CLASS, mask.astype(np.uint8), parts)
    return {"imname": "", "objects": objects}


def _write_pascal(folder: Path, image_id: str, scene: SceneArrays) -> None:
    from scipy.io import savemat

    _write_jpeg(folder / "JPEGImages" / f"{image_id}.jpg", scene.image)
    _write_png(folder / "semseg" / "pascal-context" / f"{image_id}.png", scene.semseg)
    savemat(folder / "human_parts" / f"{image_id}.mat", {"anno": _parts_struct(scene)})
    _write_png(folder / "sal_distill" / f"{image_id}.png", scene.saliency * 255)
    encoded = np.clip(np.rint((scene.normals + 1.0) / 2.0 * 255.0), 0, 255).astype(np.uint8)
    _write_png(folder / "normals_distill" / f"{image_id}.png", encoded)
    savemat(
        folder / "pascal-context" / "trainval" / f"{image_id}.mat",
        {"LabelMap": scene.instance.astype(np.uint16)},
    )


def _write_nyud(folder: Path, image_id: str, scene: SceneArrays) -> None:
    _write_jpeg(folder / "images" / f"{image_id}.jpg", scene.image)
    # NYUD stores class c as c + 1 and 0 for unlabelled pixels.
    _write_png(folder / "segmentation" / f"{image_id}.png", (scene.semseg + 1).astype(np.uint8))
    np.save(folder / "depth" / f"{image_id}.npy", scene.depth)
    np.save(folder / "normals" / f"{image_id}.npy", scene.normals)
    np.save(folder / "edge" / f"{image_id}.npy", scene.edge.astype(np.float32))


_FOLDERS = {
    "pascal_context": (
        "JPEGImages", "semseg/pascal-context", "human_parts", "sal_distill", "normals_distill",
        "pascal-context/trainval", "ImageSets/Context",
    ),
    "nyud": ("images", "segmentation", "depth", "normals", "edge", "gt_sets"),
}


def export_scenes(
    config: ScenesConfig,
    seed: int,
    folder: Path,
    layout: str = "pascal_context",
    splits: Sequence[str] = ("train", "val", "test"),
) -> dict[str, int]:
    """Render the splits of ``config`` into ``folder`` in ``layout``; return images per split.

    ``folder`` must be empty or absent, so an export never mixes with other files. A split
    with a count of 0 is skipped. Image ids are ``SPLIT_NNNNNN``.
    """
    if layout not in LAYOUTS:
        raise ComponentBuildError(f"unknown layout {layout!r}; choose one of {', '.join(LAYOUTS)}")
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise ComponentBuildError(
            f"export folder {str(folder)!r} exists and is not empty; choose a new folder"
        )
    for name in _FOLDERS[layout]:
        (folder / name).mkdir(parents=True, exist_ok=True)
    scene_seed = config.seed if config.seed is not None else seed
    counts = {"train": config.counts.train, "val": config.counts.val, "test": config.counts.test}
    written: dict[str, int] = {}
    for split in splits:
        count = counts[split]
        if count == 0:
            continue
        ids = [f"{split}_{index:06d}" for index in range(count)]
        for image_id, scene in zip(ids, render_split(config, scene_seed, split, count), strict=True):
            if layout == "pascal_context":
                _write_pascal(folder, image_id, scene)
            else:
                _write_nyud(folder, image_id, scene)
        list_folder = folder / ("ImageSets/Context" if layout == "pascal_context" else "gt_sets")
        (list_folder / f"{split}.txt").write_text("".join(f"{image_id}\n" for image_id in ids))
        written[split] = count
        logger.info("exported %d %s scenes to %s (%s layout)", count, split, folder, layout)
    return written
