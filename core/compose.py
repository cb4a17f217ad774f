"""Composition of a trainable model from a validated spec.

The composed model is ``backbone -> (adapter) -> one head per task``, with an optional policy
attached. Graph models use a graph encoder in place of the backbone. Building imports torch and
the components' factory modules; nothing here runs on the listing and validation paths.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from adaptlab.core.contracts import DatasetBundle, TaskInfo
from adaptlab.core.errors import ComponentBuildError
from adaptlab.core.spec import ComponentRef, Spec
from adaptlab.registry import Registry, get_registry

__all__ = ["ComposedModel", "build_data", "build_model", "parameter_groups"]

logger = logging.getLogger(__name__)


class ComposedModel(nn.Module):
    """Backbone (or graph encoder) shared by the task heads.

    ``forward`` returns a mapping from task name to that head's output. ``loss_weights`` contains
    each task's weight in the summed loss. ``policy`` is the attached policy or ``None``.
    """

    def __init__(
        self,
        backbone: nn.Module,
        heads: Mapping[str, nn.Module],
        loss_weights: Mapping[str, float],
        adapter: Any = None,
        policy: Any = None,
    ) -> None:
        super().__init__()
        self.backbone = backbone
        self.heads = nn.ModuleDict(dict(heads))
        self.loss_weights = dict(loss_weights)
        self.adapter = adapter
        self.policy = policy

    def forward(self, inputs: Any) -> dict[str, Any]:
        features = self.backbone(inputs)
        return {task: head(features) for task, head in self.heads.items()}

    def merged(self) -> ComposedModel:
        """Return this model with the adapter folded into the backbone (for inference)."""
        if self.adapter is None:
            return self
        self.backbone = self.adapter.merge(self.backbone)
        self.adapter = None
        return self


def _build(registry: Registry, ref: ComponentRef, **inputs: Any) -> Any:
    component = registry.get(ref.kind, ref.name)
    try:
        return component.build(ref.config, **inputs)
    except (ValueError, TypeError, KeyError, RuntimeError, FileNotFoundError) as error:
        # NOTE: factories should raise ComponentBuildError themselves; this catches the rest
        # so that a plugin's unchecked input still reaches the user as one line.
        raise ComponentBuildError(
            f"building {ref.kind} {ref.name!r} failed: {type(error).__name__}: {error}"
        ) from error


def _accepts_keyword(factory: Any, name: str) -> bool:
    """Return whether ``factory`` can be called with the keyword argument ``name``."""
    import inspect

    try:
        parameters = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(
        p.name == name and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        or p.kind is p.VAR_KEYWORD
        for p in parameters
    )


def build_data(spec: Spec, registry: Registry | None = None) -> DatasetBundle:
    """Build the dataset of ``spec`` and check that every head's task exists in it."""
    registry = registry or get_registry()
    bundle = _build(registry, spec.data, seed=spec.seed)
    for required in ("train", "val"):
        if required not in bundle.splits:
            raise ComponentBuildError(
                f"dataset {spec.data.name!r} returned no {required!r} split "
                f"(splits: {', '.join(bundle.splits)})"
            )
    missing = [task for task in spec.model.heads if task not in bundle.tasks]
    if missing:
        raise ComponentBuildError(
            f"dataset {spec.data.name!r} has no task {', '.join(map(repr, missing))}; "
            f"its tasks are {', '.join(bundle.tasks)}; rename the entries of model.heads"
        )
    return bundle


def build_model(
    spec: Spec, tasks: Mapping[str, TaskInfo], registry: Registry | None = None
) -> ComposedModel:
    """Build backbone, adapter, heads and policy of ``spec`` into one module."""
    registry = registry or get_registry()
    model_spec = spec.model
    if model_spec.backbone is not None:
        backbone = _build(registry, model_spec.backbone)
    else:
        # Graph datasets declare their feature widths in every task's TaskInfo.extra.
        encoder_ref = model_spec.graph_encoder
        first = next(iter(tasks.values()))
        backbone = _build(
            registry,
            encoder_ref,
            node_features=int(first.extra.get("node_features", 0)),
            edge_features=int(first.extra.get("edge_features", 0)),
        )

    out_features = getattr(backbone, "out_features", None)
    if not isinstance(out_features, int):
        raise ComponentBuildError(
            "the backbone does not declare an integer `out_features`, which heads need"
        )

    adapter = None
    if model_spec.adapter is not None:
        component = registry.get("adapter", model_spec.adapter.name)
        inputs: dict[str, Any] = {}
        if _accepts_keyword(component.load_factory(), "tasks"):
            inputs["tasks"] = tuple(model_spec.heads)
        adapter = _build(registry, model_spec.adapter, **inputs)
        backbone = adapter.apply(backbone)

    heads = {}
    channels = getattr(backbone, "feature_channels", None)
    for task, ref in model_spec.heads.items():
        inputs = {}
        if channels is not None and _accepts_keyword(
            registry.get("head", ref.name).load_factory(), "feature_channels"
        ):
            inputs["feature_channels"] = tuple(channels)
        heads[task] = _build(registry, ref, task=tasks[task], in_features=out_features, **inputs)
    weights = {task: float(ref.config.loss_weight) for task, ref in model_spec.heads.items()}
    model = ComposedModel(backbone, heads, weights, adapter=adapter)

    if model_spec.policy is not None:
        policy = _build(registry, model_spec.policy)
        policy.attach(model)
        model.policy = policy
    return model


def parameter_groups(model: ComposedModel) -> dict[str, dict[str, int]]:
    """Count trainable and total parameters by group: backbone, adapter, heads, policy.

    An adapter may classify the adapted backbone's parameters with a method
    ``parameter_group(name, parameter) -> str | None`` (``name`` as in
    ``model.backbone.named_parameters()``); a returned string is the group, for example
    ``other`` for trained backbone weights that are not adapter weights. Without that method,
    or where it returns ``None``, the trainable parameters of an adapted backbone count as
    ``adapter`` and the rest as ``backbone``.
    """
    groups: dict[str, dict[str, int]] = {}

    def add(group: str, parameter: torch.Tensor) -> None:
        counts = groups.setdefault(group, {"trainable": 0, "total": 0})
        counts["total"] += parameter.numel()
        if parameter.requires_grad:
            counts["trainable"] += parameter.numel()

    classify = getattr(model.adapter, "parameter_group", None)
    head_ids = {id(p) for p in model.heads.parameters()}
    backbone_names = {id(p): name for name, p in model.backbone.named_parameters()}
    for parameter in model.parameters():
        if id(parameter) in head_ids:
            add("heads", parameter)
        elif id(parameter) in backbone_names:
            group = None
            if callable(classify):
                group = classify(backbone_names[id(parameter)], parameter)
            if group is None:
                adapted = model.adapter is not None and parameter.requires_grad
                group = "adapter" if adapted else "backbone"
            add(group, parameter)
        else:
            add("policy", parameter)
    return groups
