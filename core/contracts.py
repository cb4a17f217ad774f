"""Contracts between the core and the components that plugins register.

Every component kind has a factory signature and a return type that the trainer relies on.
The return types are ``typing.Protocol`` classes: a plugin satisfies them structurally and
needs no base class from here except the configuration bases.

This module is imported by the CLI's listing path, so it must not import torch or any other
heavy library at module level; torch types appear only under ``TYPE_CHECKING``.

Factory signatures, by kind (``config`` is the validated configuration model instance):

=============== ============================================================== ==============
kind            factory call                                                   returns
=============== ============================================================== ==============
backbone        ``factory(config)``                                            ``Backbone``
adapter         ``factory(config[, tasks=tuple[str, ...]])``                   ``Adapter``
head            ``factory(config, task=TaskInfo, in_features=int)``            ``TaskHead``
policy          ``factory(config)``                                            ``Policy``
graph_encoder   ``factory(config, node_features=int, edge_features=int)``      ``GraphEncoder``
dataset         ``factory(config, seed=int)``                                  ``DatasetBundle``
recipe          ``factory(config)``                                            ``Recipe``
=============== ============================================================== ==============

An adapter factory that accepts a ``tasks`` keyword receives the names of the spec's tasks (the
keys of ``model.heads``, in order); multi-task adapters use it to create per-task branches.
A head factory that accepts a ``feature_channels`` keyword receives the backbone's
``feature_channels`` (the channel count of each feature map of a dense backbone, in order) when
the backbone declares that attribute.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = [
    "COMPONENT_KINDS",
    "Adapter",
    "Backbone",
    "ComponentConfig",
    "ComponentKind",
    "DatasetBundle",
    "GraphEncoder",
    "HeadConfig",
    "Metric",
    "Policy",
    "Recipe",
    "Register",
    "RegisterCommand",
    "RunContext",
    "TaskHead",
    "TaskInfo",
]

ComponentKind = Literal[
    "backbone", "adapter", "head", "policy", "graph_encoder", "dataset", "recipe"
]
COMPONENT_KINDS: tuple[ComponentKind, ...] = (
    "backbone",
    "adapter",
    "head",
    "policy",
    "graph_encoder",
    "dataset",
    "recipe",
)


class ComponentConfig(BaseModel):
    """Base of every component's configuration model.

    Unknown fields are rejected so that a misspelt key in a spec is an error, not a silently
    ignored setting. Each field's ``description`` is the help text that ``adaptlab describe``
    shows, so write it once there.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, protected_namespaces=())


class HeadConfig(ComponentConfig):
    """Base of task-head configurations: every head carries its task's loss weight."""

    loss_weight: float = Field(
        1.0, ge=0.0, description="Weight of this task's loss in the summed training loss."
    )


class Register(Protocol):
    """The callback each ``adaptlab_register_*`` hook receives.

    ``factory`` is either a callable or an import path ``"package.module:attribute"``. An
    import path is resolved only when the component is built, so registration stays cheap
    and the factory module may import torch freely.
    """

    def __call__(
        self,
        name: str,
        *,
        config: type[BaseModel],
        factory: str | Callable[..., Any],
        summary: str,
    ) -> None: ...


class RegisterCommand(Protocol):
    """The callback of ``adaptlab_register_commands``: adds one ``adaptlab NAME`` subcommand.

    ``arguments(parser)`` adds the command's options to its ``argparse`` parser; it runs on
    every CLI start, so it must stay cheap (no torch). ``run`` is a callable, or a lazy
    ``"package.module:attribute"`` path, that receives the parsed ``argparse.Namespace`` and
    returns the exit status. It reports a user's mistake by raising an ``AdaptlabError``
    subclass, which the CLI prints as one line. A name that a built-in command or another
    plugin already uses is reported as a problem and not added.
    """

    def __call__(
        self,
        name: str,
        *,
        arguments: Callable[[Any], None],
        run: str | Callable[[Any], int],
        summary: str,
    ) -> None: ...


@dataclass(frozen=True)
class TaskInfo:
    """Declaration of one task of a dataset.

    ``kind`` is a free-form tag that heads check (``"classification"``, ``"regression"``,
    ``"segmentation"``, ...). ``num_classes`` is set for classification-like tasks and
    ``num_outputs`` for regression targets.
    """

    name: str
    kind: str
    num_classes: int | None = None
    num_outputs: int | None = None
    class_names: tuple[str, ...] = ()
    extra: Mapping[str, Any] = field(default_factory=dict)


@runtime_checkable
class Backbone(Protocol):
    """A ``torch.nn.Module`` mapping a batch of inputs to features.

    ``out_features`` is the feature width that heads receive. ``forward`` returns a tensor of
    shape ``(batch, out_features)`` for pooled features, or a mapping of named feature maps for
    dense backbones (heads of those backbones document which names they read).
    """

    out_features: int

    def forward(self, inputs: torch.Tensor) -> torch.Tensor | Mapping[str, torch.Tensor]: ...


@runtime_checkable
class Adapter(Protocol):
    """A parameter-efficient fine-tuning method applied to a backbone.

    ``apply`` returns the adapted module (it may wrap or modify ``module`` in place) with
    ``requires_grad`` set: adapter weights trainable, frozen base weights not. The returned
    module keeps the ``Backbone`` contract. ``merge`` folds the adapter into the base weights
    for inference and returns a module with the same outputs. An adapter may also define
    ``parameter_group(name, parameter) -> str | None`` to name the group of each backbone
    parameter in parameter reports (see ``adaptlab.core.compose.parameter_groups``).
    """

    def apply(self, module: nn.Module) -> nn.Module: ...

    def merge(self, module: nn.Module) -> nn.Module: ...


class Metric(Protocol):
    """Accumulates a metric over a whole split; ``compute`` returns named floats.

    A metric may also define ``write_artifacts(folder: Path, stem: str) -> list[Path]``, which
    ``adaptlab evaluate`` calls to write files such as plots into the run folder; file names
    start with ``stem`` (for example ``eval-test-delay``).
    """

    def update(self, output: Any, target: Any) -> None: ...

    def compute(self) -> dict[str, float]: ...


@runtime_checkable
class TaskHead(Protocol):
    """A ``torch.nn.Module`` producing one task's prediction from backbone features.

    The trainer calls ``forward(features)``, then ``loss(output, target)`` (a scalar tensor,
    weighted afterwards by the head's ``loss_weight``), and at evaluation ``new_metric()``
    once per split, feeding it every batch.
    """

    def forward(self, features: Any) -> Any: ...

    def loss(self, output: Any, target: Any) -> torch.Tensor: ...

    def new_metric(self) -> Metric: ...


@runtime_checkable
class Policy(Protocol):
    """An adaptive-inference controller attached to a composed model.

    ``attach`` installs the controller on the model before training. ``regularizer`` returns a
    scalar tensor added to the training loss (for example a compute-budget loss) or ``None``.
    ``stats`` reports what the policy measured on the last batch (executed fraction, FLOPs).
    """

    def attach(self, model: nn.Module) -> None: ...

    def regularizer(self) -> torch.Tensor | None: ...

    def stats(self) -> dict[str, float]: ...


@runtime_checkable
class GraphEncoder(Protocol):
    """A ``torch.nn.Module`` encoding a batch of graphs.

    ``forward(batch)`` takes a ``torch_geometric.data.Batch`` and returns node embeddings of
    width ``out_features``: either a ``(num_nodes, out_features)`` tensor (one graph) or an
    object with attributes ``x`` (that tensor), ``batch`` (the graph index of each node) and
    ``num_graphs``. Readout to graph level belongs to the heads, which must accept both forms.
    """

    out_features: int

    def forward(self, batch: Any) -> Any: ...


@dataclass
class DatasetBundle:
    """Splits and task declarations returned by a dataset factory.

    Each split is a map-style ``torch.utils.data.Dataset`` whose items are
    ``(inputs, targets)`` with ``targets`` a mapping from task name to target. ``collate_fn``
    replaces the default collation (graph datasets need one). The splits ``train`` and
    ``val`` are required; ``test`` is used by ``adaptlab evaluate`` when present.
    ``derived_metrics``, when set, receives the flat metrics of an evaluation (``TASK/NAME``)
    and returns metrics computed across tasks (for example ``delta_m`` against single-task
    baselines), which are added to them under their own names.
    """

    splits: Mapping[str, Any]
    tasks: Mapping[str, TaskInfo]
    collate_fn: Callable[[list[Any]], Any] | None = None
    description: str = ""
    derived_metrics: Callable[[Mapping[str, float]], Mapping[str, float]] | None = None


@dataclass
class RunContext:
    """Inputs of a recipe: the validated spec, its run directory and whether to resume.

    ``registry`` is the registry that components are built from (``None``: the process-wide
    one). ``on_epoch_end(epoch, metrics, checkpoint_path)``, when set, is called after every
    epoch with the flat metrics of that epoch; tuning code reports to Ray Tune through it.
    """

    spec: Any
    run_dir: Path
    resume: bool = False
    registry: Any = None
    on_epoch_end: Callable[[int, dict[str, float], Path | None], Any] | None = None


@runtime_checkable
class Recipe(Protocol):
    """A training procedure. ``run`` trains inside ``context.run_dir`` and returns a summary."""

    def run(self, context: RunContext) -> dict[str, Any]: ...
