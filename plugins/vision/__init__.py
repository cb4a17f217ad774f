"""Built-in plugin ``vision``: image-classification datasets and the classification head.

Components: head ``classification``; datasets ``image_folder`` (``root/CLASS_NAME/IMAGE``)
and ``digits`` (scikit-learn's bundled 8x8 digits, exported once as PNG files). Importing
this module stays cheap; torch, Pillow and scikit-learn are imported when a component is
built.
"""

from __future__ import annotations

from adaptlab.core.contracts import Register
from adaptlab.core.hookspecs import hookimpl
from adaptlab.plugins.vision.config import (
    ClassificationHeadConfig,
    DigitsConfig,
    ImageFolderConfig,
)

__all__ = ["ADAPTLAB_HOOK_API", "ClassificationHeadConfig", "DigitsConfig", "ImageFolderConfig"]

ADAPTLAB_HOOK_API = "1.0"


@hookimpl
def adaptlab_register_heads(register: Register) -> None:
    """Register the ``classification`` head."""
    register(
        "classification",
        config=ClassificationHeadConfig,
        factory="adaptlab.plugins.vision.head:build_classification_head",
        summary="Linear or MLP classifier with cross-entropy, accuracy and macro F1.",
    )


@hookimpl
def adaptlab_register_datasets(register: Register) -> None:
    """Register the ``image_folder`` and ``digits`` datasets."""
    register(
        "image_folder",
        config=ImageFolderConfig,
        factory="adaptlab.plugins.vision.image_folder:build_image_folder",
        summary="Images in root/CLASS_NAME/ folders with a stratified train/val/test split.",
    )
    register(
        "digits",
        config=DigitsConfig,
        factory="adaptlab.plugins.vision.digits:build_digits",
        summary="scikit-learn's 1,797 handwritten 8x8 digits, exported once as PNG files.",
    )
