"""Vectorized graph features against a per-node construction from the reference timing report."""

from __future__ import annotations

import math
import random

import pytest
import torch

from adaptlab.plugins.graphsym.designs import build_prefix_graph, prefix_adder, random_prefix_graph
from adaptlab.plugins.graphsym.graph import FEATURE_NAMES, FeatureScales, cell_family, netlist_to_graph
from adaptlab.plugins.graphsym.liberty import generate_library, parse_liberty
from adaptlab.plugins.graphsym.netlist.model import Instance, Netlist
from adaptlab.plugins.graphsym.timing import TimingOptions, analyze_timing, build_timing_graph

COLUMN = {name: index for index, name in enumerate(FEATURE_NAMES)}
GATE_CELLS = {"and": "AND2_X2", "or": "OR2_X1", "xor": "XOR2_X1", "not": "INV_X4", "buf": "BUF_X1"}
SCALES = FeatureScales(drive=2.0, area=3.0, capacitance=0.004, fanout=3.0, level=10.0)


@pytest.fixture(scope="module")
def library():
    return parse_liberty(generate_library())


def adder_netlist(design) -> Netlist:
    instances = [Instance(f"g{index}", GATE_CELLS[gate.op], {**dict(zip(("A", "B"), gate.inputs)), "Y": gate.output})
                 for index, gate in enumerate(design.gates)]
    inputs = [f"{port}[{bit}]" for port, width in design.inputs.items() for bit in range(width)]
    outputs = [f"sum[{bit}]" for bit in range(design.outputs["sum"])] + ["cout"]
    return Netlist(design.name, inputs=inputs, outputs=outputs, instances=instances)


def random_netlist(library, seed: int) -> Netlist:
    """Random cells with shuffled pin order, constants, an alias and an output read twice."""
    rng = random.Random(seed)
    nets = ["a", "b", "c", "$const0", "$const1"]
    instances = []
    for index in range(80):
        cell = library.cells[rng.choice(sorted(library.cells))]
        pins = [(pin.name, rng.choice(nets[-20:])) for pin in cell.input_pins]
        pins += [(pin.name, f"n{index}") for pin in cell.output_pins]
        rng.shuffle(pins)
        instances.append(Instance(f"u{index}", cell.name, dict(pins)))
        nets.append(f"n{index}")
    outputs = rng.sample(nets[5:], 6) + [nets[-1], "alias"]
    return Netlist(f"random{seed}", inputs=["a", "b", "c"], outputs=outputs, instances=instances,
                   aliases={"alias": "b"})


def reference_graph(netlist: Netlist, library, options: TimingOptions, scales: FeatureScales):
    """Build x, edge_index and edge_attr node by node, as the feature definitions read."""
    report = analyze_timing(netlist, library, options)
    graph = build_timing_graph(netlist, library)
    target = report.delay_target
    ratio = lambda value: 1.0 if math.isinf(value) else value / target  # noqa: E731
    arrival = lambda value: (value if math.isfinite(value) else 0.0) / target  # noqa: E731

    rows, driver_node = [], {}
    for node, net in enumerate(graph.input_nets):
        driver_node.setdefault(net, node)
        timing = report.nets[graph.net_names[net]]
        row = [0.0] * len(FEATURE_NAMES)
        row[COLUMN["kind_pi"]] = 1.0
        row[COLUMN["fanout"]] = timing.fanout / scales.fanout
        row[COLUMN["load"]] = timing.load / scales.capacitance
        row[COLUMN["arrival"]], row[COLUMN["slack"]] = arrival(timing.arrival), ratio(timing.slack)
        rows.append(row)

    for index, instance in enumerate(netlist.instances):
        for _, net in graph.instance_outputs[index]:
            driver_node[net] = len(graph.input_nets) + index
        timing = report.instances[instance.name]
        row = [0.0] * len(FEATURE_NAMES)
        row[COLUMN[f"family_{cell_family(library.cells[instance.cell]).lower()}"]] = 1.0
        row[COLUMN["kind_cell"]] = 1.0
        row[COLUMN["drive_strength"]] = (timing.drive_strength or 1.0) / scales.drive
        row[COLUMN["area"]] = timing.area / scales.area
        row[COLUMN["input_capacitance"]] = timing.input_capacitance / scales.capacitance
        row[COLUMN["fanout"]] = timing.fanout / scales.fanout
        row[COLUMN["load"]] = timing.load / scales.capacitance
        row[COLUMN["level"]] = timing.level / scales.level
        row[COLUMN["arrival"]], row[COLUMN["slack"]] = arrival(timing.arrival), ratio(timing.slack)
        rows.append(row)

    for net in graph.output_nets:
        timing = report.nets[graph.net_names[net]]
        row = [0.0] * len(FEATURE_NAMES)
        row[COLUMN["kind_po"]] = 1.0
        row[COLUMN["input_capacitance"]] = options.output_load / scales.capacitance
        row[COLUMN["level"]] = timing.level / scales.level
        row[COLUMN["arrival"]], row[COLUMN["slack"]] = arrival(timing.arrival), ratio(timing.slack)
        rows.append(row)

    edges = []
    for net, sinks in enumerate(graph.sinks):
        if net in driver_node:
            edges += [(driver_node[net], len(graph.input_nets) + index,
                       graph.cells[index].pins[pin].capacitance) for index, pin in sinks]
    first_output = len(graph.input_nets) + len(netlist.instances)
    edges += [(driver_node[net], first_output + position, options.output_load)
              for position, net in enumerate(graph.output_nets) if net in driver_node]
    sources, targets, capacitances = (list(column) for column in zip(*edges))
    edge_index = torch.tensor([sources + targets, targets + sources])
    scaled = torch.tensor(capacitances, dtype=torch.float32) / scales.capacitance
    edge_attr = torch.zeros((2 * len(edges), 3))
    edge_attr[:len(edges), 0] = edge_attr[len(edges):, 1] = 1.0
    edge_attr[:, 2] = torch.cat([scaled, scaled])
    return torch.tensor(rows, dtype=torch.float32), edge_index, edge_attr, report


def assert_same_graph(netlist: Netlist, library, options: TimingOptions, scales: FeatureScales) -> None:
    data = netlist_to_graph(netlist, library, options, scales=scales)
    x, edge_index, edge_attr, report = reference_graph(netlist, library, options, scales)
    assert torch.equal(data.x, x)
    assert torch.equal(data.edge_index, edge_index)
    assert torch.equal(data.edge_attr, edge_attr)
    assert data.critical_delay.item() == pytest.approx(report.critical_delay, rel=1e-6)
    assert data.area.item() == pytest.approx(report.area, rel=1e-6)


@pytest.mark.parametrize("topology", ["ripple", "sklansky", "kogge_stone", "brent_kung"])
def test_adder_features_match_reference(library, topology: str) -> None:
    netlist = adder_netlist(prefix_adder(build_prefix_graph(topology, 16), check_vectors=16))
    assert_same_graph(netlist, library, TimingOptions(delay_target=0.3), SCALES)
    assert_same_graph(netlist, library, TimingOptions(wire_load_per_fanout=0.001), FeatureScales())


@pytest.mark.parametrize("seed", [5, 6])
def test_random_adder_features_match_reference(library, seed: int) -> None:
    netlist = adder_netlist(prefix_adder(random_prefix_graph(16, random.Random(seed), 0.6), f"r{seed}",
                                         check_vectors=16))
    assert_same_graph(netlist, library, TimingOptions(delay_target=0.25), SCALES)


@pytest.mark.parametrize("seed", [31, 32, 33])
def test_random_netlist_features_match_reference(library, seed: int) -> None:
    netlist = random_netlist(library, seed)
    assert_same_graph(netlist, library, TimingOptions(delay_target=0.5), SCALES)
    assert_same_graph(netlist, library, TimingOptions(input_slew=0.1, output_load=0.01), FeatureScales())
