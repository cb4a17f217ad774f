"""The encoder's fused GATv2 layers against torch_geometric's GATv2Conv with the same weights."""

from __future__ import annotations

import pytest
import torch
from torch_geometric.data import Batch, Data

from adaptlab.plugins.graphsym.config import GATv2EncoderConfig
from adaptlab.plugins.graphsym.model.encoder import GATv2Encoder
from adaptlab.plugins.graphsym.model.readout import NodeEmbeddings, Readout

NODE_FEATURES = 6
EDGE_FEATURES = 3


def random_graph(seed: int, nodes: int = 40, edges: int = 90) -> Data:
    """A random directed graph with reverse edges, a self-loop and a node without in-edges."""
    generator = torch.Generator().manual_seed(seed)
    source = torch.randint(0, nodes - 1, (edges,), generator=generator)
    target = torch.randint(0, nodes - 1, (edges,), generator=generator)
    source[0] = target[0] = 3
    edge_index = torch.stack([torch.cat([source, target]), torch.cat([target, source])])
    return Data(x=torch.randn(nodes, NODE_FEATURES, generator=generator), edge_index=edge_index,
                edge_attr=torch.rand(2 * edges, EDGE_FEATURES, generator=generator))


def pyg_forward(encoder: GATv2Encoder, batch) -> torch.Tensor:
    """The encoder's layer loop with every layer run by GATv2Conv.forward."""
    h = encoder.input_activation(encoder.input(batch.x))
    for conv, norm, activation in zip(encoder.convs, encoder.norms, encoder.activations):
        update = encoder.dropout(activation(norm(conv(h, batch.edge_index, batch.edge_attr))))
        h = h + update if encoder.residual else update
    return h


def build(seed: int = 0, **options) -> GATv2Encoder:
    torch.manual_seed(seed)
    config = GATv2EncoderConfig(hidden=32, depth=3, heads=4, **options)
    return GATv2Encoder(config, NODE_FEATURES, EDGE_FEATURES)


@pytest.mark.parametrize("options", [
    {},
    {"concat": False},
    {"share_weights": True},
    {"add_self_loops": False},
    {"norm": "batch", "residual": False},
])
def test_fused_layers_match_gatv2conv(options: dict) -> None:
    encoder = build(**options).eval()
    batch = Batch.from_data_list([random_graph(1), random_graph(2)])
    with torch.no_grad():
        fused = encoder(batch).x
        reference = pyg_forward(encoder, batch)
    assert fused.shape == reference.shape
    assert torch.allclose(fused, reference, atol=1e-5, rtol=1e-5)


def test_fused_gradients_match_gatv2conv() -> None:
    encoder = build(seed=3).train()
    batch = Batch.from_data_list([random_graph(4)])
    encoder(batch).x.square().sum().backward()
    fused = [parameter.grad.clone() for parameter in encoder.parameters()]
    encoder.zero_grad()
    pyg_forward(encoder, batch).square().sum().backward()
    for parameter, gradient in zip(encoder.parameters(), fused):
        assert torch.allclose(gradient, parameter.grad, atol=1e-4, rtol=1e-4)


def test_attention_dropout_training_uses_gatv2conv() -> None:
    encoder = build(seed=5, attention_dropout=0.3).train()
    batch = Batch.from_data_list([random_graph(6)])
    torch.manual_seed(7)
    output = encoder(batch).x
    torch.manual_seed(7)
    assert torch.equal(output, pyg_forward(encoder, batch))


@pytest.mark.parametrize("kind", ["mean", "max", "sum", "mean_max"])
def test_single_graph_readout_matches_batched(kind: str) -> None:
    readout = Readout(kind, 8)
    x = torch.randn(30, 8)
    single = readout(NodeEmbeddings(x, torch.zeros(30, dtype=torch.long), 1))
    # The same nodes as graph 0 of two graphs take the batched (scatter) path.
    batched = readout(NodeEmbeddings(torch.cat([x, x[:5]]), torch.tensor([0] * 30 + [1] * 5), 2))
    assert torch.allclose(single[0], batched[0], atol=1e-6)
