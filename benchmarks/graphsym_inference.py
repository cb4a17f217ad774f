"""Time graphsym inference per 32-bit adder: graph features plus the GATv2 forward pass.

Builds (or reads from the cache) ``--designs`` labelled 32-bit adders, composes the model of
``examples/graphsym/adders.yaml`` (random weights: the time does not depend on them), and times
one design at a time on the CPU: the timer-based feature extraction, the forward pass alone, and
both together. The median over ``--repeat`` passes per design is reported.

Target: under 5 ms per 32-bit design in total on the CPU.

    python benchmarks/graphsym_inference.py [--designs 8] [--repeat 50]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
from torch_geometric.data import Batch

from adaptlab.core.compose import build_data, build_model
from adaptlab.core.spec import load_spec
from adaptlab.plugins.graphsym.adders import cache_root, library_path
from adaptlab.plugins.graphsym.dataset import DelayTarget, adder_specs, build_dataset
from adaptlab.plugins.graphsym.graph.features import netlist_to_graph
from adaptlab.plugins.graphsym.liberty.parse import read_liberty
from adaptlab.plugins.graphsym.timing.sta import TimingOptions

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "examples" / "graphsym" / "adders.yaml"
TARGET_MS = 5.0


def median_ms(call, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--designs", type=int, default=8, help="Number of adders to time.")
    parser.add_argument("--repeat", type=int, default=50, help="Timed passes per design.")
    arguments = parser.parse_args()

    spec = load_spec(SPEC, [f"data.count={max(arguments.designs, 10)}", "data.val_fraction=0.1"])
    bundle = build_data(spec)
    model = build_model(spec, bundle.tasks).eval()
    torch.set_grad_enabled(False)

    config = spec.data.config
    liberty = library_path(config, cache_root(config))
    library = read_liberty(liberty)
    records = build_dataset(
        adder_specs(width=32, count=arguments.designs, seed=0),
        liberty,
        [DelayTarget(config.delay_target_factor, relative=True)],
        cache_root(config) / "records",
        progress=False,
    )
    features, forward, total, cells = [], [], [], []
    for record in records:
        options = TimingOptions(delay_target=record.delay_target_ns)
        graph = netlist_to_graph(record.pre, library, options)
        batch = Batch.from_data_list([graph])
        cells.append(len(record.pre.instances))
        features.append(median_ms(lambda: netlist_to_graph(record.pre, library, options),
                                  arguments.repeat))
        forward.append(median_ms(lambda: model(batch), arguments.repeat))
        total.append(median_ms(
            lambda: model(Batch.from_data_list([netlist_to_graph(record.pre, library, options)])),
            arguments.repeat,
        ))
    total_ms = statistics.median(total)
    print(f"{len(records)} 32-bit adders, {min(cells)}-{max(cells)} cells, "
          f"{torch.get_num_threads()} torch threads, median over designs of per-design medians:")
    print(f"  features (timer + graph): {statistics.median(features):.2f} ms")
    print(f"  GATv2 forward pass:       {statistics.median(forward):.2f} ms")
    verdict = "ok" if total_ms < TARGET_MS else "ABOVE TARGET"
    print(f"  both, per design:         {total_ms:.2f} ms (target < {TARGET_MS} ms) {verdict}")
    return 0 if total_ms < TARGET_MS else 1


if __name__ == "__main__":
    sys.exit(main())
