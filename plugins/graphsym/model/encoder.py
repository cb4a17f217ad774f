"""The ``gatv2`` graph encoder: GATv2 attention layers with residual connections.

GATv2 is the attention layer of Brody, Alon & Yahav, "How Attentive are Graph Attention
Networks?" (ICLR 2022). It scores an edge with ``a^T LeakyReLU(W [h_i || h_j || e_ij])``, so
the ranking of neighbours depends on the receiving node, unlike the static attention of GAT.
GraPhSyM (Said et al.) applies a GATv2 network to gate-level netlists to predict
post-physical-synthesis delay and area. This module is this project's own implementation,
built on ``torch_geometric.nn.GATv2Conv`` (torch_geometric 2.8).

Layout: a linear input projection to ``hidden`` and an activation, then ``depth`` times
``h = h + dropout(act(norm(GATv2Conv(h, edge_index, edge_attr))))`` (without ``h +`` when
``residual`` is off). ``forward`` returns :class:`~.readout.NodeEmbeddings` with node
embeddings of width ``out_features = hidden`` and the batch vector that heads pool by.
"""

from __future__ import annotations

import logging
from typing import Any

import torch
from torch import nn
from torch_geometric.nn import GATv2Conv

from adaptlab.core.errors import ComponentBuildError

from ..config import GATv2EncoderConfig
from .readout import NodeEmbeddings

__all__ = ["GATv2Encoder", "activation_layer", "build_gatv2_encoder"]

logger = logging.getLogger(__name__)

_ACTIVATIONS = {
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "elu": nn.ELU,
    "leaky_relu": nn.LeakyReLU,
    "silu": nn.SiLU,
}


def activation_layer(name: str) -> nn.Module:
    """Return a new activation module for a configuration's ``activation`` value."""
    return _ACTIVATIONS[name]()


def _norm_layer(kind: str, width: int) -> nn.Module:
    if kind == "layer":
        return nn.LayerNorm(width)
    if kind == "batch":
        return nn.BatchNorm1d(width)
    return nn.Identity()


class GATv2Encoder(nn.Module):
    """Encodes a ``torch_geometric`` batch into node embeddings ``(num_nodes, out_features)``.

    The batch needs ``x`` of width ``node_features`` and ``edge_index``, plus ``edge_attr`` of
    width ``edge_features`` when that is positive. A single ``Data`` object counts as a batch
    of one graph.
    It returns ``NodeEmbeddings`` (embeddings, batch vector, number of graphs), the batched
    form that the ``GraphEncoder`` contract allows.
    """

    def __init__(self, config: GATv2EncoderConfig, node_features: int, edge_features: int) -> None:
        super().__init__()
        self.node_features = node_features
        self.edge_features = edge_features
        self.out_features = config.hidden
        self.residual = config.residual
        head_width = config.hidden // config.heads if config.concat else config.hidden
        self.input = nn.Linear(node_features, config.hidden)
        self.input_activation = activation_layer(config.activation)
        self.convs = nn.ModuleList(
            GATv2Conv(
                config.hidden,
                head_width,
                heads=config.heads,
                concat=config.concat,
                dropout=config.attention_dropout,
                add_self_loops=config.add_self_loops,
                edge_dim=edge_features or None,
                share_weights=config.share_weights,
            )
            for _ in range(config.depth)
        )
        self.norms = nn.ModuleList(_norm_layer(config.norm, config.hidden) for _ in range(config.depth))
        self.activations = nn.ModuleList(activation_layer(config.activation) for _ in range(config.depth))
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, batch: Any) -> NodeEmbeddings:
        x = batch.x
        if x.ndim != 2 or x.shape[1] != self.node_features:
            raise ValueError(
                f"node features have shape {tuple(x.shape)}, but the encoder was built for "
                f"{self.node_features} per node; rebuild the graphs or the model"
            )
        edge_attr = None
        if self.edge_features:
            edge_attr = getattr(batch, "edge_attr", None)
            if edge_attr is None or edge_attr.ndim != 2 or edge_attr.shape[1] != self.edge_features:
                found = "none" if edge_attr is None else tuple(edge_attr.shape)
                raise ValueError(
                    f"the encoder needs edge_attr with {self.edge_features} features per edge, "
                    f"found {found}"
                )
        h = self.input_activation(self.input(x))
        if self.training and any(conv.dropout > 0 for conv in self.convs):
            convolve = self._pyg_layers(batch.edge_index, edge_attr)
        else:
            convolve = self._fused_layers(h.shape[0], batch.edge_index, edge_attr)
        for layer, (norm, activation) in enumerate(zip(self.norms, self.activations)):
            update = self.dropout(activation(norm(convolve(layer, h))))
            h = h + update if self.residual else update
        nodes_to_graphs = getattr(batch, "batch", None)
        if nodes_to_graphs is None:
            nodes_to_graphs = torch.zeros(h.shape[0], dtype=torch.long, device=h.device)
            num_graphs = 1
        else:
            num_graphs = int(batch.num_graphs)
        return NodeEmbeddings(h, nodes_to_graphs, num_graphs)

    def _pyg_layers(self, edge_index: torch.Tensor, edge_attr: torch.Tensor | None):
        """Return a function that applies layer ``i`` through ``GATv2Conv.forward``."""

        def convolve(layer: int, h: torch.Tensor) -> torch.Tensor:
            return self.convs[layer](h, edge_index, edge_attr)

        return convolve

    def _fused_layers(self, num_nodes: int, edge_index: torch.Tensor, edge_attr: torch.Tensor | None):
        """Return a function that applies layer ``i`` with the computation of ``GATv2Conv``
        (torch_geometric 2.8) written out, sharing work between layers.

        ``GATv2Conv`` removes and re-adds self-loops, averages the edge features of each
        node's incoming edges for its loop (``fill_value="mean"``) and projects the edge
        features in every layer. Here the loops are built once, each layer's edge projection is
        added to the attention input inside one ``addmm``, and its two node projections are one
        product. With the same parameters the output equals ``GATv2Conv``'s up to float rounding
        (a test compares them), so trained models load and predict unchanged. Attention dropout
        is not applied, which is why training with attention dropout uses ``_pyg_layers``.
        """
        first = self.convs[0]
        heads, channels = first.heads, first.out_channels
        if first.add_self_loops:
            keep = edge_index[0] != edge_index[1]
            if not bool(keep.all()):
                edge_index = edge_index[:, keep]
                edge_attr = edge_attr[keep] if edge_attr is not None else None
            loops = torch.arange(num_nodes, device=edge_index.device)
            if edge_attr is not None:
                target = edge_index[1]
                total = edge_attr.new_zeros((num_nodes, edge_attr.shape[1])).index_add_(0, target, edge_attr)
                count = edge_attr.new_zeros(num_nodes).index_add_(0, target, edge_attr.new_ones(target.shape[0]))
                edge_attr = torch.cat([edge_attr, total / count.clamp(min=1).unsqueeze(1)])
            edge_index = torch.cat([edge_index, torch.stack([loops, loops])], dim=1)
        source, target = edge_index[0], edge_index[1]
        edge_count = source.shape[0]
        target_per_head = target.unsqueeze(1).expand(-1, heads)

        def convolve(layer: int, h: torch.Tensor) -> torch.Tensor:
            conv = self.convs[layer]
            if conv.share_weights:
                x_left = x_right = conv.lin_l(h)
            else:
                weight = torch.cat([conv.lin_l.weight, conv.lin_r.weight])
                bias = torch.cat([conv.lin_l.bias, conv.lin_r.bias]) if conv.lin_l.bias is not None else None
                x_left, x_right = torch.nn.functional.linear(h, weight, bias).split(heads * channels, dim=1)
            messages = x_left.index_select(0, source)
            scores = messages + x_right.index_select(0, target)
            if edge_attr is not None:
                # The edge projection is added inside the matrix product (addmm's beta = 1).
                scores = torch.addmm(scores, edge_attr, conv.lin_edge.weight.T)
            scores = torch.nn.functional.leaky_relu(scores, conv.negative_slope)
            # a^T per head as one block-diagonal (heads, heads * channels) product. It is written
            # transposed because the product with only `heads` output columns ran about 4x
            # slower (torch 2.14 on an x86_64 CPU).
            scores = (torch.block_diag(*conv.att[0].unsqueeze(1)) @ scores.T).T
            # Softmax over each node's incoming edges, shifted by their maximum as in
            # torch_geometric.utils.softmax.
            maximum = scores.new_zeros((num_nodes, heads)).scatter_reduce_(
                0, target_per_head, scores.detach(), reduce="amax", include_self=False)
            scores = (scores - maximum.index_select(0, target)).exp()
            total = scores.new_zeros((num_nodes, heads)).index_add_(0, target, scores) + 1e-16
            alpha = scores / total.index_select(0, target)
            weighted = messages.view(edge_count, heads, channels) * alpha.unsqueeze(-1)
            out = weighted.new_zeros((num_nodes, heads, channels)).index_add_(0, target, weighted)
            out = out.view(num_nodes, heads * channels) if conv.concat else out.mean(dim=1)
            return out + conv.bias if conv.bias is not None else out

        return convolve


def build_gatv2_encoder(
    config: GATv2EncoderConfig, node_features: int, edge_features: int
) -> GATv2Encoder:
    """Factory of the ``gatv2`` graph encoder; the feature widths come from the dataset."""
    if node_features < 1:
        raise ComponentBuildError(
            f"graph encoder 'gatv2' got node_features={node_features}; the dataset must declare "
            "node_features (the width of x) in its tasks' extra"
        )
    if edge_features < 0:
        raise ComponentBuildError(
            f"graph encoder 'gatv2' got edge_features={edge_features}; it must be 0 or more"
        )
    encoder = GATv2Encoder(config, node_features, edge_features)
    parameters = sum(parameter.numel() for parameter in encoder.parameters())
    logger.info(
        "built gatv2 encoder: %d node and %d edge features, depth %d, %d heads, hidden %d, "
        "%d parameters", node_features, edge_features, config.depth, config.heads, config.hidden,
        parameters,
    )
    return encoder
