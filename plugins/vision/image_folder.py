"""The ``image_folder`` dataset: images stored as ``root/CLASS_NAME/IMAGE``, one class per folder.

Class names are the sorted names of the non-hidden subfolders of ``root``; images are found
recursively inside each class folder by extension. Splits are stratified: for every class,
``round(n * fraction)`` of its images (shuffled with the split seed) go to val and to test,
keeping at least one image for training. Images are decoded with Pillow, resized so the
shorter side is ``image_size`` and center-cropped, then scaled to [0, 1] and normalized.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError
from torch.utils.data import Dataset

from adaptlab.core.contracts import DatasetBundle, TaskInfo
from adaptlab.core.errors import ComponentBuildError
from adaptlab.plugins.vision.config import ImageFolderConfig, ImageDataConfig

__all__ = [
    "IMAGE_EXTENSIONS",
    "FolderListing",
    "ImageSplit",
    "build_image_folder",
    "decode_image",
    "load_image_folder",
    "scan_folder",
    "split_by_class",
]

logger = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (
    ".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm",
)
_DECODE_ERRORS = (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError)


@dataclass
class FolderListing:
    """Image files of one folder with their class indices."""

    root: Path
    class_names: list[str]
    paths: list[Path]
    labels: list[int]


def scan_folder(root: Path, class_names: Sequence[str] | None = None) -> FolderListing:
    """List the images under ``root``; ``class_names`` fixes the label order (val/test roots).

    Raises ``ComponentBuildError`` when ``root`` is missing, has no class folders, has a
    class folder without images, or (with ``class_names``) has a class not in that list.
    """
    if not root.exists():
        raise ComponentBuildError(
            f"image folder {str(root)!r} not found; set root to a folder laid out as "
            "root/CLASS_NAME/IMAGE"
        )
    if not root.is_dir():
        raise ComponentBuildError(f"image folder {str(root)!r} is a file, not a folder")
    folders = sorted(
        entry for entry in root.iterdir() if entry.is_dir() and not entry.name.startswith(".")
    )
    if not folders:
        raise ComponentBuildError(
            f"image folder {str(root)!r} has no class folders; expected root/CLASS_NAME/IMAGE"
        )
    names = [folder.name for folder in folders] if class_names is None else list(class_names)
    index = {name: position for position, name in enumerate(names)}
    paths: list[Path] = []
    labels: list[int] = []
    for folder in folders:
        if folder.name not in index:
            raise ComponentBuildError(
                f"class folder {str(folder)!r} is not a class of the training folder "
                f"(classes: {', '.join(names)}); rename or remove it"
            )
        images = _list_images(folder)
        if not images:
            raise ComponentBuildError(
                f"class folder {str(folder)!r} contains no images (extensions: "
                f"{', '.join(IMAGE_EXTENSIONS)}); add images or remove the folder"
            )
        paths += images
        labels += [index[folder.name]] * len(images)
    return FolderListing(root=root, class_names=names, paths=paths, labels=labels)


def _list_images(folder: Path) -> list[Path]:
    found = []
    for directory, subfolders, files in os.walk(folder, followlinks=True):
        subfolders[:] = [name for name in subfolders if not name.startswith(".")]
        found += [
            Path(directory, name)
            for name in files
            if not name.startswith(".") and Path(name).suffix.lower() in IMAGE_EXTENSIONS
        ]
    return sorted(found)


def split_by_class(
    labels: Sequence[int], fractions: Sequence[float], seed: int
) -> list[list[int]]:
    """Split indices by class into ``[train, *one split per fraction]`` (sorted indices).

    Each class contributes ``floor(n * fraction + 0.5)`` images to every held-out split and
    keeps at least one for training (held-out counts shrink, last split first).
    """
    rng = np.random.default_rng(seed)
    splits: list[list[int]] = [[] for _ in range(len(fractions) + 1)]
    members_by_class: dict[int, list[int]] = {}
    for position, label in enumerate(labels):
        members_by_class.setdefault(label, []).append(position)
    for label in sorted(members_by_class):
        members = members_by_class[label]
        shuffled = [members[i] for i in rng.permutation(len(members))]
        counts = [math.floor(len(members) * fraction + 0.5) for fraction in fractions]
        for position in reversed(range(len(counts))):
            excess = sum(counts) - (len(members) - 1)
            if excess > 0:
                counts[position] -= min(excess, counts[position])
        start = sum(counts)
        splits[0] += shuffled[start:]
        for position, count in enumerate(counts):
            begin = sum(counts[:position])
            splits[position + 1] += shuffled[begin:begin + count]
    return [sorted(split) for split in splits]


def decode_image(path: Path, image_size: int, channels: int) -> torch.Tensor:
    """Decode ``path`` into a ``uint8`` tensor ``(channels, image_size, image_size)``."""
    try:
        with Image.open(path) as image:
            if image.mode == "I" or image.mode.startswith("I;16"):
                image = _sixteen_bit_to_l(image)
            image = image.convert("L" if channels == 1 else "RGB")
            image = ImageOps.fit(image, (image_size, image_size), Image.Resampling.BILINEAR)
            array = np.asarray(image, dtype=np.uint8)
    except _DECODE_ERRORS as error:
        raise ComponentBuildError(
            f"image {str(path)!r} could not be decoded ({type(error).__name__}: {error}); "
            "replace or delete the file"
        ) from error
    if array.ndim == 2:
        array = array[:, :, None]
    return torch.from_numpy(array.copy()).permute(2, 0, 1).contiguous()


def _sixteen_bit_to_l(image: Image.Image) -> Image.Image:
    # Pillow's convert("L") clips 16-bit values at 255 instead of scaling them.
    # NOTE: mode "I" (32-bit integers) is assumed to hold 16-bit values, as PNG and TIFF do.
    values = np.asarray(image, dtype=np.float64) / 257.0
    return Image.fromarray(np.rint(values).clip(0, 255).astype(np.uint8), mode="L")


def _check_header(path: Path) -> None:
    try:
        with Image.open(path):
            pass
    except _DECODE_ERRORS as error:
        raise ComponentBuildError(
            f"image {str(path)!r} is not a readable image ({type(error).__name__}: {error}); "
            "replace or delete the file"
        ) from error


class _ImageSource:
    """The images of one folder, decoded on access or held in memory as ``uint8``."""

    def __init__(
        self, listing: FolderListing, image_size: int, channels: int, preload: bool
    ) -> None:
        self.paths = listing.paths
        self.labels = torch.tensor(listing.labels, dtype=torch.long)
        self.image_size = image_size
        self.channels = channels
        self.pixels: torch.Tensor | None = None
        started = time.monotonic()
        if preload:
            self.pixels = torch.empty(
                (len(self.paths), channels, image_size, image_size), dtype=torch.uint8
            )
            for position, path in enumerate(self.paths):
                self.pixels[position] = decode_image(path, image_size, channels)
        else:
            for path in self.paths:
                _check_header(path)
        logger.info(
            "%s %d images of %s in %.1f s", "decoded" if preload else "checked",
            len(self.paths), listing.root, time.monotonic() - started,
        )

    def image(self, position: int) -> torch.Tensor:
        if self.pixels is not None:
            return self.pixels[position]
        # NOTE: in lazy mode only the file header was checked at build time, so a file
        # truncated after its header raises here, during training.
        return decode_image(self.paths[position], self.image_size, self.channels)


class _ImageTransform:
    """Scales ``uint8`` pixels to [0, 1], applies training augmentations and normalizes."""

    def __init__(
        self,
        mean: Sequence[float],
        std: Sequence[float],
        augment: Sequence[str],
        image_size: int,
    ) -> None:
        self.mean = torch.tensor(mean, dtype=torch.float32).view(-1, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(-1, 1, 1)
        self.augmentation = None
        if augment:
            from torchvision.transforms import v2

            steps = []
            if "crop" in augment:
                padding = max(1, image_size // 8)
                steps.append(v2.RandomCrop(image_size, padding=padding, padding_mode="reflect"))
            if "hflip" in augment:
                steps.append(v2.RandomHorizontalFlip(p=0.5))
            self.augmentation = v2.Compose(steps)

    def __call__(self, pixels: torch.Tensor) -> torch.Tensor:
        if self.augmentation is not None:
            pixels = self.augmentation(pixels)
        image = pixels.to(torch.float32) / 255.0
        return (image - self.mean) / self.std


class ImageSplit(Dataset):
    """One split: items are ``(image, {task: label})`` with a float image ``(C, H, W)``."""

    def __init__(
        self,
        source: _ImageSource,
        indices: Sequence[int],
        task: str,
        transform: _ImageTransform,
    ) -> None:
        self.source = source
        self.indices = list(indices)
        self.task = task
        self.transform = transform

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, item: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        position = self.indices[item]
        image = self.transform(self.source.image(position))
        return image, {self.task: self.source.labels[position]}

    def labels(self) -> torch.Tensor:
        """Return the class index of every item, in item order."""
        return self.source.labels[self.indices]


def load_image_folder(
    config: ImageDataConfig,
    seed: int,
    root: Path,
    val_root: Path | None = None,
    test_root: Path | None = None,
    preload: bool = False,
) -> DatasetBundle:
    """Build the train/val/test splits of an image folder (shared by every image dataset)."""
    listing = scan_folder(root)
    source = _ImageSource(listing, config.image_size, config.channels, preload)
    split_seed = config.split_seed if config.split_seed is not None else seed
    train, val, test = split_by_class(
        listing.labels, [config.val_fraction, config.test_fraction], split_seed
    )

    mean, std = config.normalization()
    plain = _ImageTransform(mean, std, (), config.image_size)
    augmented = _ImageTransform(mean, std, config.augment, config.image_size)
    splits: dict[str, ImageSplit] = {"train": ImageSplit(source, train, config.task, augmented)}
    for name, extra_root, indices in (("val", val_root, val), ("test", test_root, test)):
        if extra_root is not None:
            extra = scan_folder(extra_root, listing.class_names)
            extra_source = _ImageSource(extra, config.image_size, config.channels, preload)
            splits[name] = ImageSplit(
                extra_source, range(len(extra.paths)), config.task, plain
            )
        elif indices:
            splits[name] = ImageSplit(source, indices, config.task, plain)

    if "val" not in splits:
        raise ComponentBuildError(
            f"the val split of {str(root)!r} is empty: val_fraction={config.val_fraction} "
            "rounds to 0 images in every class; raise val_fraction, add images or set val_root"
        )

    task = TaskInfo(
        name=config.task,
        kind="classification",
        num_classes=len(listing.class_names),
        class_names=tuple(listing.class_names),
    )
    sizes = " / ".join(f"{len(split)} {name}" for name, split in splits.items())
    description = f"image folder {root}: {task.num_classes} classes, {sizes} images"
    logger.info("%s", description)
    return DatasetBundle(splits=splits, tasks={config.task: task}, description=description)


def _resolve(path: str) -> Path:
    return Path(path).expanduser().resolve()


def build_image_folder(config: ImageFolderConfig, seed: int) -> DatasetBundle:
    """Factory of the ``image_folder`` dataset."""
    return load_image_folder(
        config,
        seed,
        _resolve(config.root),
        val_root=_resolve(config.val_root) if config.val_root else None,
        test_root=_resolve(config.test_root) if config.test_root else None,
        preload=config.preload,
    )
