"""Netlist graphs, the GATv2 encoder and the graph regression head on hand-built netlists."""

from __future__ import annotations

import math

import pytest
import torch
from pydantic import ValidationError
from torch_geometric.loader import DataLoader

from adaptlab.core.compose import ComposedModel
from adaptlab.core.contracts import TaskInfo
from adaptlab.core.errors import ComponentBuildError
from adaptlab.plugins.graphsym.config import GATv2EncoderConfig, GraphRegressionHeadConfig
from adaptlab.plugins.graphsym.graph import (
    FEATURE_NAMES,
    FeatureScales,
    cell_family,
    edge_feature_names,
    feature_cache_key,
    netlist_to_graph,
)
from adaptlab.plugins.graphsym.liberty import Cell, Pin, generate_library, parse_liberty
from adaptlab.plugins.graphsym.model import (
    NodeEmbeddings,
    RegressionMetric,
    TargetNormalizer,
    build_gatv2_encoder,
    build_graph_regression_head,
)
from adaptlab.plugins.graphsym.netlist.model import Instance, Netlist
from adaptlab.plugins.graphsym.timing import TimingOptions, analyze_timing

OPTIONS = TimingOptions(input_slew=0.02, output_load=0.004, delay_target=0.5)
COLUMN = {name: index for index, name in enumerate(FEATURE_NAMES)}
NODE_FEATURES = len(FEATURE_NAMES)
EDGE_FEATURES = len(edge_feature_names())


@pytest.fixture(scope="module")
def library():
    return parse_liberty(generate_library())


def branched_chain() -> Netlist:
    """a -> u1 -> n1 -> u2 -> n2 -> u3 -> y, and n1 -> u4 -> z (u1 has fanout 2)."""
    return Netlist("branched", inputs=["a"], outputs=["y", "z"], instances=[
        Instance("u1", "INV_X1", {"A": "a", "Y": "n1"}),
        Instance("u2", "INV_X2", {"A": "n1", "Y": "n2"}),
        Instance("u3", "INV_X1", {"A": "n2", "Y": "y"}),
        Instance("u4", "BUF_X4", {"A": "n1", "Y": "z"}),
    ])


def inverter_chain(length: int) -> Netlist:
    nets = ["a"] + [f"n{i}" for i in range(1, length)] + ["y"]
    instances = [Instance(f"u{i + 1}", "INV_X1", {"A": nets[i], "Y": nets[i + 1]})
                 for i in range(length)]
    return Netlist(f"chain{length}", inputs=["a"], outputs=["y"], instances=instances)


def nand_tree() -> Netlist:
    return Netlist("tree", inputs=["a", "b", "c"], outputs=["y"], instances=[
        Instance("u1", "NAND2_X1", {"A": "a", "B": "b", "Y": "n1"}),
        Instance("u2", "XOR2_X1", {"A": "n1", "B": "c", "Y": "n2"}),
        Instance("u3", "AOI21_X1", {"A1": "n2", "A2": "a", "B": "$const0", "Y": "y"}),
    ])


def regression_task(**extra) -> TaskInfo:
    extra = {"node_features": NODE_FEATURES, "edge_features": EDGE_FEATURES, **extra}
    return TaskInfo(name="delay", kind="regression", num_outputs=1, extra=extra)


def build_pair(depth: int = 2, readout: str = "mean_max", **encoder_fields):
    encoder = build_gatv2_encoder(
        GATv2EncoderConfig(depth=depth, hidden=16, heads=2, **encoder_fields),
        node_features=NODE_FEATURES, edge_features=EDGE_FEATURES,
    )
    head = build_graph_regression_head(
        GraphRegressionHeadConfig(readout=readout, hidden=[8]),
        task=regression_task(transform="log", mean=-1.0, std=0.5),
        in_features=encoder.out_features,
    )
    return encoder, head


# -- graph features ---------------------------------------------------------------------------

def test_feature_matrix_shape_and_kinds(library) -> None:
    data = netlist_to_graph(branched_chain(), library, OPTIONS)
    assert data.x.shape == (7, len(FEATURE_NAMES))
    assert len(FEATURE_NAMES) == 22
    # Node order: primary inputs, cells in netlist order, primary outputs.
    assert data.x[:, COLUMN["kind_pi"]].tolist() == [1, 0, 0, 0, 0, 0, 0]
    assert data.x[:, COLUMN["kind_cell"]].tolist() == [0, 1, 1, 1, 1, 0, 0]
    assert data.x[:, COLUMN["kind_po"]].tolist() == [0, 0, 0, 0, 0, 1, 1]
    assert data.x[1:4, COLUMN["family_inv"]].tolist() == [1, 1, 1]
    assert data.x[4, COLUMN["family_buf"]].item() == 1.0
    assert data.x[:, :11].sum(dim=1).tolist() == [0, 1, 1, 1, 1, 0, 0]


def test_chain_fanout_level_arrival_values(library) -> None:
    netlist = branched_chain()
    data = netlist_to_graph(netlist, library, OPTIONS)
    report = analyze_timing(netlist, library, OPTIONS)
    scales = FeatureScales()
    x = data.x
    assert x[1, COLUMN["fanout"]].item() == pytest.approx(2 / scales.fanout)
    assert x[2, COLUMN["fanout"]].item() == pytest.approx(1 / scales.fanout)
    assert x[0, COLUMN["fanout"]].item() == pytest.approx(1 / scales.fanout)
    levels = [round(x[node, COLUMN["level"]].item() * scales.level) for node in range(7)]
    assert levels == [0, 1, 2, 3, 2, 3, 2]
    assert x[2, COLUMN["drive_strength"]].item() == pytest.approx(2 / scales.drive)
    assert x[4, COLUMN["drive_strength"]].item() == pytest.approx(4 / scales.drive)
    assert x[1, COLUMN["area"]].item() == pytest.approx(library.cell("INV_X1").area / scales.area)
    inv_x2_cap = library.cell("INV_X2").pins["A"].capacitance
    buf_x4_cap = library.cell("BUF_X4").pins["A"].capacitance
    assert x[1, COLUMN["load"]].item() == pytest.approx((inv_x2_cap + buf_x4_cap) / scales.capacitance)
    assert x[5, COLUMN["input_capacitance"]].item() == pytest.approx(0.004 / scales.capacitance)
    # The critical output's arrival over D is the critical delay over D (D = 0.5 ns).
    critical_node = 5 if report.critical_end == "y" else 6
    assert report.critical_delay > 0.0
    assert x[critical_node, COLUMN["arrival"]].item() == pytest.approx(report.critical_delay / 0.5)
    assert x[critical_node, COLUMN["slack"]].item() == pytest.approx(1.0 - report.critical_delay / 0.5)
    arrivals = [x[node, COLUMN["arrival"]].item() for node in (0, 1, 2, 3)]
    assert arrivals[0] == 0.0
    assert arrivals == sorted(arrivals)
    assert data.delay_target.tolist() == [0.5]
    assert data.critical_delay.item() == pytest.approx(report.critical_delay)
    assert data.area.item() == pytest.approx(report.area)


def test_edges_are_twice_connections(library) -> None:
    data = netlist_to_graph(branched_chain(), library, OPTIONS)
    # a->u1, n1->u2, n1->u4, n2->u3, u3->PO y, u4->PO z.
    forward = {(0, 1), (1, 2), (1, 4), (2, 3), (3, 5), (4, 6)}
    pairs = list(zip(data.edge_index[0].tolist(), data.edge_index[1].tolist()))
    assert data.edge_index.shape == (2, 12)
    assert set(pairs[:6]) == forward
    assert pairs[6:] == [(target, source) for source, target in pairs[:6]]
    assert data.edge_attr.shape == (12, 3)
    assert data.edge_attr[:6, :2].tolist() == [[1.0, 0.0]] * 6
    assert data.edge_attr[6:, :2].tolist() == [[0.0, 1.0]] * 6
    into_u2 = pairs.index((1, 2))
    expected = library.cell("INV_X2").pins["A"].capacitance / FeatureScales().capacitance
    assert data.edge_attr[into_u2, 2].item() == pytest.approx(expected)
    assert data.edge_attr[into_u2 + 6, 2].item() == pytest.approx(expected)


def test_constant_inputs_add_no_edge(library) -> None:
    data = netlist_to_graph(nand_tree(), library, OPTIONS, pin_capacitance=False)
    # a->u1, b->u1, a->u3, n1->u2, c->u2, n2->u3, u3->PO y; $const0 has no node.
    assert data.num_nodes == 3 + 3 + 1
    assert data.edge_index.shape == (2, 14)
    assert data.edge_attr.shape == (14, 2)
    assert data.x[5, COLUMN["family_aoi"]].item() == 1.0


def test_unreachable_slack_and_zero_target(library) -> None:
    netlist = Netlist("dangling", inputs=["a", "b"], outputs=["y"], instances=[
        Instance("u1", "INV_X1", {"A": "a", "Y": "y"}),
        Instance("u2", "INV_X1", {"A": "b", "Y": "unused"}),
    ])
    data = netlist_to_graph(netlist, library, OPTIONS)
    assert data.x[3, COLUMN["slack"]].item() == 1.0
    assert data.x[1, COLUMN["slack"]].item() == 1.0
    assert torch.isfinite(data.x).all()
    wires = Netlist("wires", inputs=["a"], outputs=["y"], aliases={"y": "a"})
    with pytest.raises(ValueError, match="delay target is 0.0 ns"):
        netlist_to_graph(wires, library, TimingOptions())


def test_cache_key_tracks_options() -> None:
    assert feature_cache_key() == feature_cache_key(FeatureScales())
    assert feature_cache_key() != feature_cache_key(FeatureScales(level=8.0))
    assert feature_cache_key() != feature_cache_key(pin_capacitance=False)
    with pytest.raises(ValueError, match="feature scale fanout must be positive"):
        FeatureScales(fanout=0.0)


@pytest.mark.parametrize(("function", "family"), [
    ("!A", "INV"),
    ("A", "BUF"),
    ("!(A & B)", "NAND"),
    ("!(A | B | C)", "NOR"),
    ("(A B C)", "AND"),
    ("A + B", "OR"),
    ("!((A1 & A2) | B | C)", "AOI"),
    ("!((A1 & A2) | (B1 & B2))", "AOI"),
    ("!((A1 | A2) & B & C)", "OAI"),
    ("A ^ B ^ C", "XOR"),
    ("!(A ^ B)", "XNOR"),
    ("(A & !S) | (B & S)", "other"),
    ("(A & B) | C", "other"),
    ("!((A & B) | (A & C) | (B & C))", "other"),
])
def test_cell_family_from_function(function: str, family: str) -> None:
    pins = {"Y": Pin("Y", "output", function=function)}
    assert cell_family(Cell("X", pins=pins)) == family


def test_cell_family_from_name() -> None:
    assert cell_family(Cell("sky130_fd_sc_hd__nand2_1")) == "NAND"
    assert cell_family(Cell("CLKINV_X4")) == "INV"
    assert cell_family(Cell("XNOR2_X1")) == "XNOR"
    assert cell_family(Cell("DLY4_X1")) == "other"


# -- encoder ----------------------------------------------------------------------------------

@pytest.mark.parametrize("depth", [1, 2, 3])
def test_encoder_output_shape_by_depth(library, depth: int) -> None:
    data = netlist_to_graph(branched_chain(), library, OPTIONS)
    encoder, _ = build_pair(depth=depth)
    output = encoder(data)
    assert isinstance(output, NodeEmbeddings)
    assert output.x.shape == (7, 16)
    assert output.batch.tolist() == [0] * 7
    assert output.num_graphs == 1
    assert len(encoder.convs) == depth


def test_encoder_residual_path_active(library) -> None:
    data = netlist_to_graph(branched_chain(), library, OPTIONS)
    for residual in (True, False):
        encoder, _ = build_pair(depth=3, residual=residual)
        with torch.no_grad():
            for parameter in encoder.convs.parameters():
                parameter.zero_()
        encoder.eval()
        projected = encoder.input_activation(encoder.input(data.x))
        output = encoder(data).x
        # Zeroed attention layers output 0, so only the skip connections carry the input.
        if residual:
            assert torch.allclose(output, projected)
        else:
            assert torch.count_nonzero(output).item() == 0
    assert torch.count_nonzero(projected).item() > 0


def test_encoder_rejects_wrong_widths(library) -> None:
    data = netlist_to_graph(branched_chain(), library, OPTIONS, pin_capacitance=False)
    encoder, _ = build_pair()
    with pytest.raises(ValueError, match=r"needs edge_attr with 3 features per edge, found \(12, 2\)"):
        encoder(data)
    with pytest.raises(ValidationError, match="divisible by heads"):
        GATv2EncoderConfig(hidden=30, heads=4)
    assert GATv2EncoderConfig(hidden=30, heads=4, concat=False).hidden == 30
    with pytest.raises(ComponentBuildError, match="node_features=0"):
        build_gatv2_encoder(GATv2EncoderConfig(), node_features=0, edge_features=3)


def test_gradient_reaches_first_layer(library) -> None:
    data = netlist_to_graph(branched_chain(), library, OPTIONS)
    encoder, head = build_pair(depth=3, norm="batch")
    loss = head.loss(head(encoder(data)), torch.tensor([0.3]))
    loss.backward()
    first = encoder.convs[0]
    gradients = [parameter.grad for parameter in first.parameters()]
    assert all(gradient is not None for gradient in gradients)
    assert sum(gradient.abs().sum().item() for gradient in gradients) > 0.0
    assert encoder.input.weight.grad.abs().sum().item() > 0.0


# -- head and metrics -------------------------------------------------------------------------

def test_normalization_round_trip() -> None:
    values = torch.tensor([0.05, 0.2, 1.0, 7.5])
    log_normalizer = TargetNormalizer("log", [-1.0], [0.5])
    normalized = log_normalizer.normalize(values)
    assert torch.allclose(normalized, (torch.log(values) + 1.0) / 0.5)
    assert torch.allclose(log_normalizer.denormalize(normalized), values, rtol=1e-6)
    plain = TargetNormalizer("none", [2.0, 10.0], [4.0, 5.0])
    pairs = torch.tensor([[2.0, 10.0], [6.0, 0.0]])
    assert plain.normalize(pairs).tolist() == [[0.0, 0.0], [1.0, -2.0]]
    assert torch.equal(plain.denormalize(plain.normalize(pairs)), pairs)
    with pytest.raises(ValueError, match="needs positive targets, found 0.0"):
        log_normalizer.normalize(torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match="std must be positive"):
        TargetNormalizer("none", [0.0], [0.0])


def test_head_reads_task_statistics() -> None:
    config = GraphRegressionHeadConfig()
    head = build_graph_regression_head(config, regression_task(transform="log", mean=0.5, std=2.0), 16)
    assert head.normalizer.transform == "log"
    assert head.normalizer.mean.tolist() == [0.5]
    assert head.normalizer.std.tolist() == [2.0]
    raw = build_graph_regression_head(GraphRegressionHeadConfig(normalize_targets=False),
                                      regression_task(transform="log", mean=0.5, std=2.0), 16)
    assert raw.normalizer.transform == "none"
    with pytest.raises(ComponentBuildError, match="kind 'classification'"):
        build_graph_regression_head(config, TaskInfo("delay", "classification", num_classes=2), 16)
    with pytest.raises(ComponentBuildError, match="std must be positive"):
        build_graph_regression_head(config, regression_task(std=-1.0), 16)
    with pytest.raises(ComponentBuildError, match="must be a number or a list of numbers"):
        build_graph_regression_head(config, regression_task(mean="0.5"), 16)


def test_metric_ten_percent_high() -> None:
    metric = RegressionMetric()
    targets = torch.tensor([1.0, 2.0, 3.0, 4.0])
    metric.update(targets[:2] * 1.1, targets[:2])
    metric.update(targets[2:] * 1.1, targets[2:])
    values = metric.compute()
    assert values["accuracy"] == pytest.approx(90.0)
    assert values["mape"] == pytest.approx(10.0)
    # R^2 = 1 - sum((0.1 t)^2) / sum((t - 2.5)^2) = 1 - 0.3 / 5.
    assert values["r2"] == pytest.approx(0.94)
    assert values["kendall_tau"] == pytest.approx(1.0)
    y_true, y_pred = metric.predictions()
    assert y_true == [1.0, 2.0, 3.0, 4.0]
    assert y_pred == pytest.approx([1.1, 2.2, 3.3, 4.4])
    assert set(values) == set(GraphRegressionHeadConfig.metric_names())


def test_metric_perfect_and_reversed() -> None:
    perfect = RegressionMetric()
    perfect.update(torch.tensor([0.3, 0.1, 0.7]), torch.tensor([0.3, 0.1, 0.7]))
    values = perfect.compute()
    assert values["r2"] == 1.0
    assert values["kendall_tau"] == pytest.approx(1.0)
    assert values["accuracy"] == 100.0
    reversed_order = RegressionMetric()
    reversed_order.update(torch.tensor([3.0, 2.0, 1.0]), torch.tensor([1.0, 2.0, 3.0]))
    assert reversed_order.compute()["kendall_tau"] == pytest.approx(-1.0)
    single = RegressionMetric()
    single.update(torch.tensor([2.0]), torch.tensor([1.0]))
    assert single.compute()["mape"] == pytest.approx(100.0)
    assert math.isnan(single.compute()["r2"])
    with pytest.raises(ValueError, match="received no samples"):
        RegressionMetric().compute()


def test_head_metric_denormalizes_output() -> None:
    head = build_graph_regression_head(
        GraphRegressionHeadConfig(), regression_task(transform="log", mean=-1.0, std=0.5), 16)
    metric = head.new_metric()
    targets = torch.tensor([0.2, 0.4, 0.8])
    metric.update(head.normalizer.normalize(targets * 1.1), targets)
    values = metric.compute()
    assert values["accuracy"] == pytest.approx(90.0, abs=1e-4)
    assert values["mape"] == pytest.approx(10.0, abs=1e-4)


@pytest.mark.parametrize("readout", ["mean", "max", "sum", "attention", "mean_max"])
def test_batch_of_three_graphs(library, readout: str) -> None:
    graphs = [netlist_to_graph(netlist, library, OPTIONS)
              for netlist in (inverter_chain(2), branched_chain(), nand_tree())]
    batch = next(iter(DataLoader(graphs, batch_size=3)))
    encoder, head = build_pair(depth=2, readout=readout)
    model = ComposedModel(encoder, {"delay": head}, {"delay": 1.0}).eval()
    with torch.no_grad():
        predictions = model(batch)["delay"]
        alone = [model(graph)["delay"] for graph in graphs]
    assert predictions.shape == (3,)
    assert batch.delay_target.tolist() == [0.5, 0.5, 0.5]
    # Pooling by the batch vector keeps graphs apart: batched equals one at a time.
    for index, prediction in enumerate(alone):
        assert prediction.shape == (1,)
        assert predictions[index].item() == pytest.approx(prediction.item(), abs=1e-5)
    loss = head.loss(predictions, batch.critical_delay)
    assert loss.ndim == 0
    assert torch.isfinite(loss)
