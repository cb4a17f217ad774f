"""The ``mtlora`` adapter: injects MTLoRA layers into the ``swin`` backbone, freezes and merges.

The trained parameters follow the MTLoRA reference configuration (Agiza et al., CVPR 2024;
github.com/scale-lab/MTLoRA). They are the low-rank branches, every LayerNorm, the patch
embedding, the relative position bias tables and the patch-merging reductions. Every other
backbone weight is frozen. With Swin-T at 448 px, four tasks (21, 7, 1 and 3 output channels),
task rank 4, shared rank 64 and ``hrnet`` heads, 8,344,634 parameters train, as the reference
reports.
"""

from __future__ import annotations

import logging
from collections import Counter

from torch import nn

from adaptlab.core.errors import ComponentBuildError
from adaptlab.plugins.mtlora.config import MTLoRAConfig
from adaptlab.plugins.mtlora.lora import MTLoRALinear

__all__ = ["ADAPTER_PREFIX", "MTLoRAAdapter", "build_mtlora_adapter"]

logger = logging.getLogger(__name__)

ADAPTER_PREFIX = "lora_"
"""Start of the name of every adapter parameter (``...attn.qkv.lora_a``)."""


class MTLoRAAdapter:
    """An ``Adapter`` (see :class:`adaptlab.core.contracts.Adapter`) for MTLoRA on ``swin``.

    ``parameter_group(name, parameter)`` classifies the adapted backbone's parameters for the
    parameter report: ``adapter`` for the low-rank branches, ``other`` for the trained
    backbone parameters (norms, patch embedding, bias tables, reductions) and ``None``
    (frozen backbone) for the rest.
    """

    def __init__(self, config: MTLoRAConfig, tasks: tuple[str, ...]) -> None:
        self.config = config
        self.tasks = tasks
        # Ordered like ``tasks``, because the task streams are stacked in that order.
        if isinstance(config.task_rank, int):
            self.task_ranks = dict.fromkeys(tasks, config.task_rank)
        else:
            self.task_ranks = {task: config.task_rank[task] for task in tasks}

    def apply(self, module: nn.Module) -> nn.Module:
        """Replace the adapted linear layers of ``module`` in place and set ``requires_grad``.

        Raises ``ComponentBuildError`` when ``module`` is not a ``swin`` backbone or already
        carries MTLoRA layers.
        """
        model = getattr(module, "model", None)
        if not hasattr(module, "task_stages") or not hasattr(model, "layers"):
            raise ComponentBuildError(
                f"adapter 'mtlora' needs the 'swin' backbone, not {type(module).__name__}; set "
                "model.backbone.name to swin"
            )
        if any(isinstance(child, MTLoRALinear) for child in module.modules()):
            raise ComponentBuildError(
                "the backbone already has MTLoRA layers; apply the adapter to a freshly built one"
            )
        config = self.config
        ranks = config.stage_ranks()
        stages = config.adapted_stages()
        counts: Counter[str] = Counter()
        for index in stages:
            stage = model.layers[index]
            last = len(stage.blocks) - 1
            for position, block in enumerate(stage.blocks):
                task_layers = set(config.task_layers) if position == last else set()
                for name in config.shared_layers:
                    parent = block.attn if name in ("qkv", "proj") else block.mlp
                    with_tasks = name in task_layers
                    setattr(parent, name, self._wrap(getattr(parent, name), ranks[index], with_tasks))
                    counts[f"{name}+tasks" if with_tasks else name] += 1
                for name in task_layers - set(config.shared_layers):
                    parent = block.attn if name == "proj" else block.mlp
                    layer = self._wrap(getattr(parent, name), ranks[index], True, shared_branch=False)
                    setattr(parent, name, layer)
                    counts[f"{name} (tasks only)"] += 1
            if config.patch_merging and index + 1 < len(model.layers):
                # The stage's output is merged by the next stage's downsample layer.
                merging = model.layers[index + 1].downsample
                merging.reduction = self._wrap(merging.reduction, ranks[index], False)
                counts["reduction"] += 1

        module.task_names = self.tasks
        module.task_stages = frozenset(stages) if config.task_layers else frozenset()
        self._set_trainable(module)
        trainable = sum(p.numel() for p in module.parameters() if p.requires_grad)
        total = sum(p.numel() for p in module.parameters())
        logger.info(
            "applied mtlora to %s (%s) for tasks %s: %d of %d backbone parameters trainable",
            type(module).__name__, ", ".join(f"{name} x{n}" for name, n in counts.items()),
            ", ".join(self.tasks), trainable, total,
        )
        return module

    def _wrap(
        self, layer: nn.Module, rank: int, with_tasks: bool, shared_branch: bool = True
    ) -> MTLoRALinear:
        if not isinstance(layer, nn.Linear):
            raise ComponentBuildError(
                f"mtlora expected an nn.Linear but found {type(layer).__name__}; apply it to a "
                "freshly built swin backbone"
            )
        config = self.config
        return MTLoRALinear(
            layer,
            rank=rank,
            scale=config.scale,
            dropout=config.dropout,
            task_ranks=self.task_ranks if with_tasks else None,
            task_scale=config.task_scale,
            combine=config.combine,
            random_init=config.init == "random",
            shared_branch=shared_branch,
        )

    def _set_trainable(self, module: nn.Module) -> None:
        unfrozen = set(self.config.unfrozen)
        model = module.model
        for parameter in module.parameters():
            parameter.requires_grad_(False)
        for name, parameter in module.named_parameters():
            if self._is_adapter(name):
                parameter.requires_grad_(True)
        if "norm" in unfrozen:
            for child in module.modules():
                if isinstance(child, nn.LayerNorm):
                    child.requires_grad_(True)
        if "patch_embed" in unfrozen:
            model.patch_embed.requires_grad_(True)
        if "relative_position_bias" in unfrozen:
            for name, parameter in module.named_parameters():
                if name.endswith("relative_position_bias_table"):
                    parameter.requires_grad_(True)
        if "patch_merging" in unfrozen:
            for stage in model.layers:
                reduction = getattr(stage.downsample, "reduction", None)
                # A reduction with its own low-rank branch stays frozen, as in the reference.
                if isinstance(reduction, nn.Linear):
                    reduction.requires_grad_(True)

    @staticmethod
    def _is_adapter(name: str) -> bool:
        return any(part.startswith(ADAPTER_PREFIX) for part in name.split("."))

    def parameter_group(self, name: str, parameter: nn.Parameter) -> str | None:
        """Return ``adapter``, ``other`` (trained backbone parameter) or ``None`` (frozen)."""
        if self._is_adapter(name):
            return "adapter"
        return "other" if parameter.requires_grad else None

    def merge(self, module: nn.Module) -> nn.Module:
        """Fold the task-agnostic branches into the base weights, in place, for inference.

        Layers without task branches become their plain ``nn.Linear`` again, so the shared
        path runs as fast as the unadapted backbone. Layers with task branches stay MTLoRA
        layers with a merged base weight. Raises ``ComponentBuildError`` if a merged weight is
        not finite and ``ValueError`` if ``module`` has no MTLoRA layers.
        """
        import torch

        layers = [(name, child) for name, child in module.named_modules() if isinstance(child, MTLoRALinear)]
        if not layers:
            raise ValueError(
                f"{type(module).__name__} has no MTLoRA layers; call apply() before merge()"
            )
        replaced = 0
        for name, layer in layers:
            layer.merge()
            if not torch.isfinite(layer.base.weight).all():
                raise ComponentBuildError(
                    f"merging mtlora into {name!r} gave non-finite weights; the adapter "
                    "weights are broken (NaN or infinite)"
                )
            if layer.task_names:
                continue
            parent_name, _, child_name = name.rpartition(".")
            setattr(module.get_submodule(parent_name), child_name, layer.base)
            replaced += 1
        logger.info(
            "merged mtlora into %d layers of %s (%d keep their task branches)",
            len(layers), type(module).__name__, len(layers) - replaced,
        )
        return module


def build_mtlora_adapter(config: MTLoRAConfig, tasks: tuple[str, ...] = ()) -> MTLoRAAdapter:
    """Factory of the ``mtlora`` adapter; ``tasks`` are the spec's task names (heads)."""
    if not tasks:
        raise ComponentBuildError(
            "adapter 'mtlora' needs the task names; add at least one entry to model.heads"
        )
    if isinstance(config.task_rank, dict):
        missing = [task for task in tasks if task not in config.task_rank]
        extra = [task for task in config.task_rank if task not in tasks]
        if missing or extra:
            raise ComponentBuildError(
                f"model.adapter.task_rank must give a rank for exactly the tasks "
                f"{', '.join(tasks)}; missing: {', '.join(missing) or 'none'}, unknown: "
                f"{', '.join(extra) or 'none'}"
            )
    return MTLoRAAdapter(config, tuple(tasks))
