"""Measure graphsym dataset throughput: labelled 32-bit adders per second through build_dataset.

Each repeat labels ``--count`` distinct 32-bit adders (the six classic topologies, then random
prefix graphs) at a delay target of ``--factor`` times each pre netlist's critical delay, in a
fresh cache folder, so every design is synthesized. The project's target is at least 3 designs
per second on a 2-core machine.

    python benchmarks/graphsym_dataset.py [--count 20] [--workers 2] [--batch-size 16] [--repeat 3]
"""

from __future__ import annotations

import argparse
import collections
import os
import statistics
import tempfile
import time
from pathlib import Path

from adaptlab.plugins.graphsym.dataset import DelayTarget, adder_specs, build_dataset
from adaptlab.plugins.graphsym.liberty import write_library

TARGET_PER_SECOND = 3.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=20, help="Adders per repeat.")
    parser.add_argument("--width", type=int, default=32, help="Adder width in bits.")
    parser.add_argument("--factor", type=float, default=0.75, help="Delay target as a factor of the pre critical delay.")
    parser.add_argument("--workers", type=int, default=os.cpu_count(), help="Worker processes.")
    parser.add_argument("--batch-size", type=int, default=16, help="Maximum number of jobs per Yosys run.")
    parser.add_argument("--repeat", type=int, default=3, help="Timed builds, each in a fresh cache.")
    arguments = parser.parse_args()

    specs = adder_specs(arguments.width, arguments.count, seed=0)
    rates = []
    steps: collections.Counter[str] = collections.Counter()
    with tempfile.TemporaryDirectory(prefix="graphsym-bench-") as folder:
        library = write_library(Path(folder) / "library.lib")
        for repeat in range(arguments.repeat):
            start = time.perf_counter()
            records = build_dataset(
                specs, library, [DelayTarget(arguments.factor, relative=True)], Path(folder) / f"cache{repeat}",
                workers=arguments.workers, progress=False, batch_size=arguments.batch_size,
            )
            seconds = time.perf_counter() - start
            rates.append(len(records) / seconds)
            for record in records:
                steps.update(record.seconds)
            print(f"repeat {repeat}: {len(records)} designs in {seconds:.2f} s = {rates[-1]:.2f} designs/s")
    print(f"median {statistics.median(rates):.2f} designs/s (target {TARGET_PER_SECOND}), "
          f"{arguments.workers} workers, batch size {arguments.batch_size}, {os.cpu_count()} CPUs")
    total = sum(steps.values())
    shares = ", ".join(f"{name} {value / arguments.repeat:.1f} s ({100 * value / total:.0f}%)" for name, value in steps.items())
    print(f"worker time per build, summed over workers: {shares}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
