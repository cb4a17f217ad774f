"""Built-in plugin ``timm``: any timm image model as a pooled-feature backbone.

Importing this module stays cheap; timm and torch are imported when the backbone is built
(see :mod:`adaptlab.plugins.timm_backbone.backbone`).
"""

from __future__ import annotations

from adaptlab.core.contracts import Register
from adaptlab.core.hookspecs import hookimpl
from adaptlab.plugins.timm_backbone.config import TimmBackboneConfig

__all__ = ["ADAPTLAB_HOOK_API", "TimmBackboneConfig"]

ADAPTLAB_HOOK_API = "1.0"


@hookimpl
def adaptlab_register_backbones(register: Register) -> None:
    """Register the ``timm`` backbone."""
    register(
        "timm",
        config=TimmBackboneConfig,
        factory="adaptlab.plugins.timm_backbone.backbone:build_timm_backbone",
        summary="Any timm image model (ResNet, ViT, Swin, ...) returning pooled features.",
    )
