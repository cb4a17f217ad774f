"""Dataset component ``adders``: labelled prefix adders as torch_geometric graphs.

Each item is the graph of a pre-physical netlist, with features from the project's NLDM timer
at the design's delay target. It has two targets, both of the post-physical netlist after ABC
buffering and sizing: ``delay``, the critical-path delay in ns, and ``area``, the total cell
area. Splits hold out whole designs, so validation and test adders are unseen in training.
The test split can instead hold designs at unseen delay targets or other circuits (see
:mod:`~adaptlab.plugins.graphsym.dataset.splits`).
"""

from __future__ import annotations

import logging
from typing import Any

import torch
from torch_geometric.data import Batch, Data

from adaptlab.core.contracts import DatasetBundle, TaskInfo
from adaptlab.core.errors import ComponentBuildError
from adaptlab.plugins.graphsym.config import AddersDatasetConfig
from adaptlab.plugins.graphsym.dataset import DatasetError, Record
from adaptlab.plugins.graphsym.dataset.splits import SPLITS, build_split_records, cache_root, library_path
from adaptlab.plugins.graphsym.graph.features import EDGE_FEATURE_NAMES, FEATURE_NAMES, netlist_to_graph
from adaptlab.plugins.graphsym.liberty.parse import read_liberty
from adaptlab.plugins.graphsym.netlist.model import NetlistError
from adaptlab.plugins.graphsym.timing.sta import TimingOptions

__all__ = ["GraphItems", "build_adders", "cache_root", "collate_graphs", "library_path"]

logger = logging.getLogger(__name__)

TASKS = ("delay", "area")


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


def _statistics(values: list[float], transform: str) -> dict[str, Any]:
    tensor = torch.tensor(values, dtype=torch.float64)
    if transform == "log":
        tensor = tensor.log()
    std = float(tensor.std()) if len(values) > 1 else 1.0
    return {"transform": transform, "mean": float(tensor.mean()), "std": std if std > 0 else 1.0}


def build_adders(config: AddersDatasetConfig, seed: int) -> DatasetBundle:
    """Build (or read from the cache) the labelled designs of every split and return graph splits.

    ``TaskInfo.extra`` of each task carries the feature widths, the target normalization of
    the train split (``transform``, ``mean``, ``std``) and the delay targets of the training
    and test splits. The heads keep the normalization in their checkpointed buffers.
    """
    try:
        labelled = build_split_records(config)
        library = read_liberty(labelled.library)
    except DatasetError as error:
        raise ComponentBuildError(f"data: building the adders failed: {error}") from error
    if not labelled.splits["train"]:
        raise ComponentBuildError(
            "data: no train design could be labelled; see the errors logged above"
        )

    items: dict[str, GraphItems] = {}
    for name in SPLITS:
        try:
            pairs = [_to_item(record, library) for record in labelled.splits[name]]
        except NetlistError as error:
            raise ComponentBuildError(f"data: a labelled netlist is invalid: {error}") from error
        items[name] = GraphItems([graph for graph, _ in pairs], [target for _, target in pairs])
    if not items["test"]:
        del items["test"]

    targets = {
        "training_delay_targets": [target.as_dict() for target in labelled.training_targets],
        "test_delay_targets": [target.as_dict() for target in labelled.test_targets],
    }
    tasks = {}
    for task in TASKS:
        values = [float(item[task]) for item in items["train"].targets]
        extra = {
            "node_features": len(FEATURE_NAMES),
            "edge_features": len(EDGE_FEATURE_NAMES),
            **_statistics(values, config.target_transform),
            **targets,
        }
        unit = "ns" if task == "delay" else "library area units"
        tasks[task] = TaskInfo(name=task, kind="regression", num_outputs=1, extra=extra)
        logger.info("adders: task %s (%s), train mean %.4g", task, unit, sum(values) / len(values))
    sizes = ", ".join(f"{name} {len(split)}" for name, split in items.items())
    test = f"; test: {', '.join(config.test_circuits)}" if config.test_circuits else ""
    return DatasetBundle(
        splits=items,
        tasks=tasks,
        collate_fn=collate_graphs,
        description=f"{config.width}-bit prefix adders ({sizes}){test}",
    )
