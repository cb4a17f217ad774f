"""A small real plugin for the training tests: synthetic blobs, an MLP, linear heads, a policy.

Dataset ``blobs``: Gaussian inputs whose label for each task is the sign of a projection on a
random direction, so every task is linearly separable. ``delay_s`` sleeps in ``__getitem__``
to slow a run down for the SIGKILL test without changing any value.
"""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn
from torch.utils.data import Dataset

from adaptlab.core import hookimpl
from adaptlab.core.contracts import ComponentConfig, DatasetBundle, HeadConfig, TaskInfo
from adaptlab.registry import PluginSelection, Registry, load_registry

ADAPTLAB_HOOK_API = "1.0"


class BlobsConfig(ComponentConfig):
    features: int = Field(8, ge=1)
    train_size: int = Field(128, ge=1)
    val_size: int = Field(64, ge=1)
    test_size: int = Field(0, ge=0)
    tasks: list[str] = Field(default_factory=lambda: ["label"])
    delay_s: float = Field(0.0, ge=0)

    def task_names(self) -> list[str]:
        return list(self.tasks)


class BlobsSplit(Dataset):
    def __init__(self, inputs: torch.Tensor, targets: dict[str, torch.Tensor], delay_s: float):
        self.inputs = inputs
        self.targets = targets
        self.delay_s = delay_s

    def __len__(self) -> int:
        return self.inputs.shape[0]

    def __getitem__(self, index: int):
        if self.delay_s:
            time.sleep(self.delay_s)
        return self.inputs[index], {task: values[index] for task, values in self.targets.items()}


def build_blobs(config: BlobsConfig, seed: int) -> DatasetBundle:
    generator = torch.Generator().manual_seed(seed)
    sizes = {"train": config.train_size, "val": config.val_size, "test": config.test_size}
    total = sum(sizes.values())
    inputs = torch.randn(total, config.features, generator=generator)
    directions = torch.randn(len(config.tasks), config.features, generator=generator)
    labels = {
        task: (inputs @ directions[index] > 0).long() for index, task in enumerate(config.tasks)
    }
    splits = {}
    start = 0
    for name, size in sizes.items():
        if size == 0:
            continue
        part = slice(start, start + size)
        splits[name] = BlobsSplit(
            inputs[part], {task: values[part] for task, values in labels.items()}, config.delay_s
        )
        start += size
    tasks = {task: TaskInfo(task, "classification", num_classes=2) for task in config.tasks}
    return DatasetBundle(splits=splits, tasks=tasks, description="linearly separable blobs")


class MLPConfig(ComponentConfig):
    in_features: int = 8
    hidden: int = 32
    out_features: int = 16
    dropout: float = Field(0.0, ge=0, lt=1)
    freeze_first: bool = False


class MLPBackbone(nn.Module):
    def __init__(self, config: MLPConfig) -> None:
        super().__init__()
        self.out_features = config.out_features
        self.net = nn.Sequential(
            nn.Linear(config.in_features, config.hidden),
            nn.LayerNorm(config.hidden),
            nn.ReLU(),
            nn.Dropout(config.dropout),
            nn.Linear(config.hidden, config.out_features),
            nn.ReLU(),
        )
        if config.freeze_first:
            self.net[0].requires_grad_(False)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.net(inputs)


class LinearHeadConfig(HeadConfig):
    pass


class Accuracy:
    def __init__(self) -> None:
        self.correct = 0
        self.total = 0

    def update(self, output: torch.Tensor, target: torch.Tensor) -> None:
        self.correct += int((output.argmax(dim=-1) == target).sum())
        self.total += int(target.numel())

    def compute(self) -> dict[str, float]:
        return {"accuracy": self.correct / max(1, self.total)}


class LinearHead(nn.Module):
    def __init__(self, in_features: int, num_classes: int) -> None:
        super().__init__()
        self.linear = nn.Linear(in_features, num_classes)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.linear(features)

    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(output.float(), target)

    def new_metric(self) -> Accuracy:
        return Accuracy()


def build_head(config: LinearHeadConfig, task: TaskInfo, in_features: int) -> LinearHead:
    return LinearHead(in_features, task.num_classes or 2)


class BudgetConfig(ComponentConfig):
    value: float = 0.5


class ConstantBudget:
    """A policy whose regularizer is a fixed value, so its share of the loss is known."""

    def __init__(self, config: BudgetConfig) -> None:
        self.value = config.value
        self.attached_to = None

    def attach(self, model: nn.Module) -> None:
        self.attached_to = type(model).__name__

    def regularizer(self) -> torch.Tensor:
        return torch.tensor(self.value)

    def stats(self) -> dict[str, float]:
        return {"executed": 1.0}


@hookimpl
def adaptlab_register_datasets(register) -> None:
    register("blobs", config=BlobsConfig, factory=build_blobs, summary="Separable blobs.")


@hookimpl
def adaptlab_register_backbones(register) -> None:
    register("mlp", config=MLPConfig, factory=MLPBackbone, summary="Two-layer MLP.")


@hookimpl
def adaptlab_register_heads(register) -> None:
    register("linear", config=LinearHeadConfig, factory=build_head, summary="Linear classifier.")


@hookimpl
def adaptlab_register_policies(register) -> None:
    register("constant_budget", config=BudgetConfig, factory=ConstantBudget, summary="Fixed loss.")


def load_test_registry() -> Registry:
    """Registry with the installed ``supervised`` recipe and this module as plugin ``testkit``."""
    import sys

    registry = load_registry(
        PluginSelection(only=["supervised"]), extra_plugins={"testkit": sys.modules[__name__]}
    )
    if registry.problems:
        raise RuntimeError("test registry has problems: " + "; ".join(registry.problems))
    return registry


def spec_data(output_dir: str, **sections: dict) -> dict:
    """Spec data of a small run; each keyword deep-merges into that top-level section.

    ``model={"heads": ...}`` replaces the heads instead of merging into them.
    """
    data = {
        "seed": 0,
        "name": "blobs",
        "output_dir": output_dir,
        "data": {"name": "blobs"},
        "model": {
            "backbone": {"name": "mlp"},
            "heads": {"label": {"name": "linear"}},
        },
        "train": {
            "recipe": "supervised",
            "epochs": 3,
            "batch_size": 16,
            "device": "cpu",
            "progress": False,
            "optimizer": {"name": "adamw", "lr": 0.01},
            "scheduler": {"name": "constant"},
        },
    }
    for key, value in sections.items():
        data[key] = _merge(data.get(key), value)
    heads = sections.get("model", {}).get("heads")
    if heads is not None:
        data["model"]["heads"] = heads
    return data


def _merge(base, update):
    if isinstance(base, dict) and isinstance(update, dict):
        merged = dict(base)
        for key, value in update.items():
            merged[key] = _merge(base.get(key), value)
        return merged
    return update
