"""Dataset component ``adders``: labelled prefix adders as torch_geometric graphs.

Each item is the graph of a pre-physical netlist, with features from the project's NLDM timer
at the design's delay target. It has two targets, both of the post-physical netlist after ABC
buffering and sizing: ``delay``, the critical-path delay in ns, and ``area``, the total cell
area. Splits hold out whole designs, so validation and test adders are unseen in training.
"""

from __future__ import annotations

import logging
import os
import random
from pathlib import Path
from typing import Any

import torch
from torch_geometric.data import Batch, Data

from adaptlab.core.contracts import DatasetBundle, TaskInfo
from adaptlab.core.errors import ComponentBuildError
from adaptlab.plugins.graphsym.config import AddersDatasetConfig
from adaptlab.plugins.graphsym.dataset import (
    DatasetError,
    DelayTarget,
    Record,
    adder_specs,
    build_dataset,
)
from adaptlab.plugins.graphsym.graph.features import EDGE_FEATURE_NAMES, FEATURE_NAMES, netlist_to_graph
from adaptlab.plugins.graphsym.liberty.generate import LIBRARY_VERSION, write_library
from adaptlab.plugins.graphsym.liberty.parse import read_liberty
from adaptlab.plugins.graphsym.netlist.model import NetlistError
from adaptlab.plugins.graphsym.timing.sta import TimingOptions

__all__ = ["GraphItems", "build_adders", "collate_graphs"]

logger = logging.getLogger(__name__)

TASKS = ("delay", "area")


def cache_root(config: AddersDatasetConfig) -> Path:
    if config.cache_dir is not None:
        return Path(config.cache_dir).expanduser()
    base = os.environ.get("ADAPTLAB_CACHE")
    root = Path(base).expanduser() if base else Path.home() / ".cache" / "adaptlab"
    return root / "graphsym"


def library_path(config: AddersDatasetConfig, root: Path) -> Path:
    """Return the Liberty file to use, writing the synthetic library on first use."""
    if config.library is not None:
        path = Path(config.library).expanduser().resolve()
        if not path.is_file():
            raise ComponentBuildError(
                f"data.library: Liberty file not found: {path}; give an existing .lib file or "
                "leave library unset for the synthetic library"
            )
        return path
    path = root / f"synthetic-v{LIBRARY_VERSION}.lib"
    if not path.is_file():
        root.mkdir(parents=True, exist_ok=True)
        write_library(path)
    return path


class GraphItems(torch.utils.data.Dataset):
    """Graphs with their ``delay`` and ``area`` targets, one item per labelled design."""

    def __init__(self, graphs: list[Data], targets: list[dict[str, torch.Tensor]]) -> None:
        self.graphs = graphs
        self.targets = targets

    def __len__(self) -> int:
        return len(self.graphs)

    def __getitem__(self, index: int) -> tuple[Data, dict[str, torch.Tensor]]:
        return self.graphs[index], self.targets[index]


def collate_graphs(items: list[tuple[Data, dict[str, torch.Tensor]]]) -> tuple[Batch, dict[str, torch.Tensor]]:
    """Batch graphs with torch_geometric and stack each task's targets to shape ``(batch,)``."""
    graphs = Batch.from_data_list([graph for graph, _ in items])
    targets = {task: torch.stack([target[task] for _, target in items]) for task in TASKS}
    return graphs, targets


def _to_item(record: Record, library: Any) -> tuple[Data, dict[str, torch.Tensor]]:
    options = TimingOptions(delay_target=record.delay_target_ns)
    graph = netlist_to_graph(record.pre, library, options)
    targets = {
        "delay": torch.tensor(record.post_delay_ns, dtype=torch.float32),
        "area": torch.tensor(record.post_area, dtype=torch.float32),
    }
    return graph, targets


def _split(records: list[Record], config: AddersDatasetConfig) -> dict[str, list[Record]]:
    order = sorted(records, key=lambda record: record.design_key)
    random.Random(config.seed).shuffle(order)
    count = len(order)
    n_val = max(1, round(count * config.val_fraction))
    n_test = round(count * config.test_fraction)
    if count - n_val - n_test < 1:
        raise ComponentBuildError(
            f"data.count: {count} labelled designs leave none for training after the val and "
            "test shares; raise count or lower val_fraction and test_fraction"
        )
    return {
        "val": order[:n_val],
        "test": order[n_val : n_val + n_test],
        "train": order[n_val + n_test :],
    }


def _statistics(values: list[float], transform: str) -> dict[str, Any]:
    tensor = torch.tensor(values, dtype=torch.float64)
    if transform == "log":
        tensor = tensor.log()
    std = float(tensor.std()) if len(values) > 1 else 1.0
    return {"transform": transform, "mean": float(tensor.mean()), "std": std if std > 0 else 1.0}


def build_adders(config: AddersDatasetConfig, seed: int) -> DatasetBundle:
    """Build (or read from the cache) the labelled adders and return graph splits."""
    root = cache_root(config)
    liberty = library_path(config, root)
    target = (
        DelayTarget(config.delay_target_ns)
        if config.delay_target_ns is not None
        else DelayTarget(config.delay_target_factor, relative=True)
    )
    try:
        specs = adder_specs(width=config.width, count=config.count, seed=config.seed)
        built = build_dataset(
            specs,
            liberty,
            [target],
            root / "records",
            workers=config.workers or os.cpu_count(),
            backend=config.backend,
        )
        library = read_liberty(liberty)
    except DatasetError as error:
        raise ComponentBuildError(f"data: building the adders failed: {error}") from error
    records = list(built)
    logger.info("adders: %s", built.summary())

    splits = _split(records, config)
    items: dict[str, GraphItems] = {}
    for name, chosen in splits.items():
        try:
            pairs = [_to_item(record, library) for record in chosen]
        except NetlistError as error:
            raise ComponentBuildError(f"data: a labelled netlist is invalid: {error}") from error
        items[name] = GraphItems([graph for graph, _ in pairs], [target for _, target in pairs])

    tasks = {}
    for task in TASKS:
        values = [float(item[task]) for item in items["train"].targets]
        extra = {
            "node_features": len(FEATURE_NAMES),
            "edge_features": len(EDGE_FEATURE_NAMES),
            **_statistics(values, config.target_transform),
        }
        unit = "ns" if task == "delay" else "library area units"
        tasks[task] = TaskInfo(name=task, kind="regression", num_outputs=1, extra=extra)
        logger.info("adders: task %s (%s), train mean %.4g", task, unit, sum(values) / len(values))
    return DatasetBundle(
        splits=items,
        tasks=tasks,
        collate_fn=collate_graphs,
        description=f"{len(records)} {config.width}-bit prefix adders",
    )
