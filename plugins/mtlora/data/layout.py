"""Reading helpers shared by the folder datasets: split lists, missing files, decoding."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from adaptlab.core.errors import ComponentBuildError
from adaptlab.plugins.mtlora.tasks import IGNORE_INDEX

__all__ = ["check_files", "check_label_range", "read_image", "read_png", "read_split_ids"]

_DECODE_ERRORS = (OSError, UnidentifiedImageError, ValueError)


def read_split_ids(path: Path, dataset: str, field: str) -> list[str]:
    """Return the image ids listed in ``path``, one per line (blank lines skipped)."""
    if not path.is_file():
        raise ComponentBuildError(
            f"{dataset}: split list {str(path)!r} not found; check root and {field} (the "
            f"folder {str(path.parent)!r} should contain {path.name})"
        )
    ids = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    if not ids:
        raise ComponentBuildError(f"{dataset}: split list {str(path)!r} lists no image ids")
    return ids


def check_files(dataset: str, expected: Mapping[str, Sequence[Path]]) -> None:
    """Raise one ``ComponentBuildError`` naming every task (or ``image``) with missing files.

    ``expected`` maps a task to its files, which lie in one folder per task. The message names
    that folder, the number of missing files and the first of them.
    """
    problems = []
    for task, paths in expected.items():
        missing = [path for path in paths if not path.is_file()]
        if missing:
            folder = missing[0].parent
            problems.append(
                f"task {task!r}: {len(missing)} of {len(paths)} files missing in "
                f"{str(folder)!r} (first: {missing[0].name})"
            )
    if problems:
        raise ComponentBuildError(
            f"{dataset}: incomplete dataset folder: {'; '.join(problems)}; add the files or "
            "remove the task from data.tasks"
        )


def read_image(path: Path) -> torch.Tensor:
    """Decode an RGB image into float ``[3, H, W]`` in [0, 1]."""
    try:
        with Image.open(path) as image:
            array = np.asarray(image.convert("RGB"), dtype=np.uint8)
    except _DECODE_ERRORS as error:
        raise ComponentBuildError(
            f"image {str(path)!r} could not be decoded ({type(error).__name__}: {error}); "
            "replace the file"
        ) from error
    return torch.from_numpy(array.copy()).permute(2, 0, 1).float() / 255.0


def read_png(path: Path) -> np.ndarray:
    """Decode a PNG (or any Pillow format) into a numpy array, unchanged."""
    try:
        with Image.open(path) as image:
            return np.asarray(image).copy()
    except _DECODE_ERRORS as error:
        raise ComponentBuildError(
            f"label file {str(path)!r} could not be decoded ({type(error).__name__}: "
            f"{error}); replace the file"
        ) from error


def check_label_range(labels: np.ndarray, num_classes: int, path: Path, task: str) -> None:
    """Raise when ``labels`` contains a value outside ``0..num_classes-1`` other than 255."""
    invalid = (labels != IGNORE_INDEX) & ((labels < 0) | (labels >= num_classes))
    if invalid.any():
        value = int(labels[invalid].flat[0])
        raise ComponentBuildError(
            f"{task} label file {str(path)!r} contains the value {value}, outside the "
            f"{num_classes} classes 0..{num_classes - 1} (255 marks ignored pixels); fix the "
            "file or remove it from the split list"
        )
