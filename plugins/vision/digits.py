"""The ``digits`` dataset: scikit-learn's bundled handwritten digits as an image folder.

``sklearn.datasets.load_digits`` ships 1,797 grayscale 8x8 images (values 0..16) of the
digits 0-9 with scikit-learn itself, so nothing is downloaded. They are written once as PNG
files to ``ROOT/DIGIT/NNNN.png`` and then read by the same loader as ``image_folder``.
The export is atomic: files go to a hidden temporary folder next to ``ROOT`` that is renamed
into place after a marker file records the per-class counts. A folder without a valid marker
that holds only digit class folders is treated as a partial export and rewritten.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path

from adaptlab.core.contracts import DatasetBundle
from adaptlab.core.errors import ComponentBuildError
from adaptlab.plugins.vision.config import DigitsConfig
from adaptlab.plugins.vision.image_folder import load_image_folder

__all__ = ["MARKER_NAME", "build_digits", "default_digits_root", "export_digits"]

logger = logging.getLogger(__name__)

MARKER_NAME = ".adaptlab-export.json"
_CLASS_NAMES = tuple(str(digit) for digit in range(10))
_PARTIAL_PREFIX = ".partial-"
_STALE_PARTIAL_SECONDS = 3600.0


def default_digits_root() -> Path:
    """Return ``$ADAPTLAB_CACHE/digits``, or ``~/.cache/adaptlab/digits`` when it is unset."""
    cache = os.environ.get("ADAPTLAB_CACHE")
    base = Path(cache).expanduser() if cache else Path.home() / ".cache" / "adaptlab"
    return base / "digits"


def _read_marker(root: Path) -> dict | None:
    try:
        marker = json.loads((root / MARKER_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return marker if isinstance(marker, dict) else None


def _is_complete(root: Path) -> bool:
    """Return whether ``root`` contains a finished export whose files match its marker."""
    marker = _read_marker(root)
    if marker is None or not isinstance(marker.get("counts"), dict):
        return False
    for name in _CLASS_NAMES:
        folder = root / name
        if not folder.is_dir():
            return False
        count = sum(1 for entry in folder.iterdir() if entry.suffix == ".png")
        if count != marker["counts"].get(name):
            return False
    return True


def _looks_like_export(root: Path) -> bool:
    allowed = set(_CLASS_NAMES) | {MARKER_NAME}
    return all(entry.name in allowed for entry in root.iterdir())


def _write_images(folder: Path) -> dict[str, int]:
    import numpy as np
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    # Pixel values are 0..16 (counts of set pixels in 4x4 blocks of the original 32x32 scan).
    pixels = np.rint(digits.images * (255.0 / 16.0)).clip(0, 255).astype(np.uint8)
    counts = dict.fromkeys(_CLASS_NAMES, 0)
    for name in _CLASS_NAMES:
        (folder / name).mkdir()
    for index, (image, label) in enumerate(zip(pixels, digits.target, strict=True)):
        name = str(int(label))
        Image.fromarray(image, mode="L").save(folder / name / f"{index:04d}.png")
        counts[name] += 1
    marker = {"source": "sklearn.datasets.load_digits", "images": len(pixels), "counts": counts}
    (folder / MARKER_NAME).write_text(json.dumps(marker, indent=1), encoding="utf-8")
    return counts


def _remove_stale_partials(parent: Path, name: str) -> None:
    # A crashed export leaves its temporary folder behind; one older than an hour cannot
    # belong to a running export, which takes seconds.
    now = time.time()
    for entry in parent.glob(f".{name}{_PARTIAL_PREFIX}*"):
        try:
            if now - entry.stat().st_mtime > _STALE_PARTIAL_SECONDS:
                shutil.rmtree(entry, ignore_errors=True)
                logger.info("removed stale partial export %s", entry)
        except OSError:
            continue


def export_digits(root: Path) -> Path:
    """Write the digits as PNG files under ``root`` unless a complete export is there.

    Raises ``ComponentBuildError`` when ``root`` exists but contains something other than a
    digits export, or cannot be written.
    """
    if _is_complete(root):
        return root
    if root.exists():
        if not root.is_dir() or not _looks_like_export(root):
            raise ComponentBuildError(
                f"digits root {str(root)!r} exists but is not a digits export; point root "
                "at a new or empty folder"
            )
        logger.warning("digits export at %s is incomplete; rewriting it", root)
        shutil.rmtree(root)
    try:
        root.parent.mkdir(parents=True, exist_ok=True)
        _remove_stale_partials(root.parent, root.name)
        partial = Path(tempfile.mkdtemp(prefix=f".{root.name}{_PARTIAL_PREFIX}", dir=root.parent))
        partial.chmod(0o755)  # mkdtemp creates 0700; the export is a shared cache
    except OSError as error:
        raise ComponentBuildError(
            f"cannot create the digits folder {str(root)!r} ({error}); set root or "
            "ADAPTLAB_CACHE to a writable folder"
        ) from error
    started = time.monotonic()
    try:
        counts = _write_images(partial)
        try:
            partial.rename(root)
        except OSError:
            if not _is_complete(root):
                raise
            logger.info("another process exported the digits to %s first", root)
            shutil.rmtree(partial, ignore_errors=True)
            return root
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    logger.info(
        "exported %d digit images to %s in %.1f s", sum(counts.values()), root,
        time.monotonic() - started,
    )
    return root


def build_digits(config: DigitsConfig, seed: int) -> DatasetBundle:
    """Factory of the ``digits`` dataset: export if needed, then load every image into memory."""
    root = Path(config.root).expanduser().resolve() if config.root else default_digits_root()
    export_digits(root)
    return load_image_folder(config, seed, root, preload=True)
