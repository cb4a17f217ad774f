"""Node embeddings of a graph batch and their readout into one vector per graph.

The graph encoder returns :class:`NodeEmbeddings` instead of a bare tensor, because pooling
needs each node's graph index and ``ComposedModel`` passes the encoder's output unchanged to
every head. Heads pool it with :class:`Readout`.
"""

from __future__ import annotations

import logging
from typing import NamedTuple

import torch
from torch import nn
from torch_geometric.nn import global_add_pool, global_max_pool, global_mean_pool
from torch_geometric.nn.aggr import AttentionalAggregation

__all__ = ["READOUTS", "NodeEmbeddings", "Readout", "as_node_embeddings"]

logger = logging.getLogger(__name__)

READOUTS = ("mean", "max", "sum", "attention", "mean_max")


class NodeEmbeddings(NamedTuple):
    """Output of the graph encoder.

    ``x`` has shape ``(num_nodes, out_features)``. ``batch`` maps each node to its graph,
    ``(num_nodes,)`` with values in ``[0, num_graphs)``, as in ``torch_geometric.data.Batch``.
    It is a named tuple, so the trainer's ``move_to_device`` moves its tensors.
    """

    x: torch.Tensor
    batch: torch.Tensor
    num_graphs: int


class Readout(nn.Module):
    """Pools node embeddings ``(num_nodes, in_features)`` into ``(num_graphs, out_features)``.

    ``out_features`` is ``2 * in_features`` for ``mean_max`` and ``in_features`` otherwise.
    ``attention`` weights nodes by a softmax, within each graph, of a learned linear gate.
    A graph without nodes pools to zeros.
    """

    def __init__(self, kind: str, in_features: int) -> None:
        super().__init__()
        if kind not in READOUTS:
            raise ValueError(f"unknown readout {kind!r}; choose one of {', '.join(READOUTS)}")
        self.kind = kind
        self.in_features = in_features
        self.out_features = 2 * in_features if kind == "mean_max" else in_features
        self.attention = (
            AttentionalAggregation(gate_nn=nn.Linear(in_features, 1)) if kind == "attention" else None
        )

    def forward(self, embeddings: NodeEmbeddings) -> torch.Tensor:
        x, batch, size = embeddings.x, embeddings.batch, embeddings.num_graphs
        if size == 1 and self.kind != "attention" and x.shape[0] > 0:
            return self._pool_one_graph(x)
        if self.kind == "mean":
            return global_mean_pool(x, batch, size)
        if self.kind == "sum":
            return global_add_pool(x, batch, size)
        if self.kind == "max":
            return global_max_pool(x, batch, size)
        if self.kind == "attention":
            return self.attention(x, batch, dim_size=size)
        return torch.cat([global_mean_pool(x, batch, size), global_max_pool(x, batch, size)], dim=-1)

    def _pool_one_graph(self, x: torch.Tensor) -> torch.Tensor:
        """Pool a batch of one non-empty graph with plain reductions, which skips the scatter
        of the batched path (the result is the same up to float rounding)."""
        if self.kind == "mean":
            return x.mean(dim=0, keepdim=True)
        if self.kind == "sum":
            return x.sum(dim=0, keepdim=True)
        if self.kind == "max":
            return x.amax(dim=0, keepdim=True)
        return torch.cat([x.mean(dim=0, keepdim=True), x.amax(dim=0, keepdim=True)], dim=-1)


def as_node_embeddings(features: NodeEmbeddings | torch.Tensor) -> NodeEmbeddings:
    """Accept the encoder's output, or a bare ``(num_nodes, features)`` tensor of one graph."""
    if isinstance(features, NodeEmbeddings):
        return features
    if isinstance(features, torch.Tensor) and features.ndim == 2:
        batch = torch.zeros(features.shape[0], dtype=torch.long, device=features.device)
        return NodeEmbeddings(features, batch, 1)
    raise TypeError(
        "a graph head expects NodeEmbeddings from a graph encoder or a (num_nodes, features) "
        f"tensor, got {type(features).__name__}"
    )
