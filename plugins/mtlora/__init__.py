"""MTLoRA: task-agnostic and task-specific LoRA on Swin for multi-task dense prediction.

Agiza, Neseem and Reda, "MTLoRA: Low-Rank Adaptation Approach for Efficient Multi-Task
Learning", CVPR 2024.
"""

from __future__ import annotations

from adaptlab.core.contracts import Register
from adaptlab.core.hookspecs import hookimpl

ADAPTLAB_HOOK_API = "1.1"


@hookimpl
def adaptlab_register_backbones(register: Register) -> None:
    """Register the ``swin`` backbone."""
    from adaptlab.plugins.mtlora.config import SwinBackboneConfig

    register(
        "swin",
        config=SwinBackboneConfig,
        factory="adaptlab.plugins.mtlora.backbone:build_swin_backbone",
        summary="Swin Transformer v1 (timm) returning four stage feature maps for dense heads.",
    )


@hookimpl
def adaptlab_register_adapters(register: Register) -> None:
    """Register the ``mtlora`` adapter."""
    from adaptlab.plugins.mtlora.config import MTLoRAConfig

    register(
        "mtlora",
        config=MTLoRAConfig,
        factory="adaptlab.plugins.mtlora.adapter:build_mtlora_adapter",
        summary="MTLoRA: task-agnostic and task-specific low-rank branches on swin (own code).",
    )


@hookimpl
def adaptlab_register_heads(register: Register) -> None:
    """Register the ``hrnet`` dense head."""
    from adaptlab.plugins.mtlora.config import HRNetHeadConfig

    register(
        "hrnet",
        config=HRNetHeadConfig,
        factory="adaptlab.plugins.mtlora.heads:build_hrnet_head",
        summary="MTLoRA's per-task downsamplers and HRNet-style concatenation decoder.",
    )


@hookimpl
def adaptlab_register_datasets(register: Register) -> None:
    """Register the ``scenes``, ``pascal_context`` and ``nyud`` datasets."""
    from adaptlab.plugins.mtlora.data.config import NyudConfig, PascalContextConfig, ScenesConfig

    register(
        "scenes",
        config=ScenesConfig,
        factory="adaptlab.plugins.mtlora.data.scenes:build_scenes",
        summary="Ray-cast 3D scenes with exact semseg, parts, saliency, normals, edge, depth.",
    )
    register(
        "pascal_context",
        config=PascalContextConfig,
        factory="adaptlab.plugins.mtlora.data.pascal:build_pascal_context",
        summary="PASCAL-Context in the PASCAL_MT multi-task layout (5 dense tasks).",
    )
    register(
        "nyud",
        config=NyudConfig,
        factory="adaptlab.plugins.mtlora.data.nyud:build_nyud",
        summary="NYUD-v2 in the NYUD_MT multi-task layout (semseg, normals, edge, depth).",
    )


@hookimpl
def adaptlab_register_commands(register) -> None:  # noqa: ANN001 - typed by the hookspec
    """Register ``adaptlab mtlora`` (subcommands ``export-scenes`` and ``compare``)."""
    from adaptlab.plugins.mtlora.reproduce import add_arguments

    register(
        "mtlora",
        arguments=add_arguments,
        run="adaptlab.plugins.mtlora.reproduce:run_command",
        summary="Export the scenes dataset, or compare MTLoRA with baselines on it.",
    )
