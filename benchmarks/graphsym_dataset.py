"""Measure graphsym dataset throughput: labelled 32-bit adders per second through build_dataset.

Each repeat labels ``--count`` distinct 32-bit adders (the six classic topologies, then random
prefix graphs) at a delay target of ``--factor`` times each pre netlist's critical delay, in a
fresh cache folder, so every design is synthesized. The project's target is at least 3 designs
per second on a 2-core machine.

Afterwards it times the equivalence proof of the last build's (pre, post) pairs in batches of
``--batch-size``, once with the SAT proof for every pair and once as ``build_dataset`` proves
them (``synth.equivalence.prove_equivalent``: structural hashing first, SAT for the rest). The load average is printed because other processes
on a shared machine slow every Yosys run down.

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
from adaptlab.plugins.graphsym.liberty import read_liberty, write_library
from adaptlab.plugins.graphsym.synth import get_backend
from adaptlab.plugins.graphsym.synth.equivalence import prove_equivalent

TARGET_PER_SECOND = 3.0


def time_proofs(records, library_path: Path, folder: Path, batch_size: int, structural: bool) -> tuple[float, int]:
    """Prove every record's pair in batches; return the seconds taken and the pairs sent to SAT."""
    library = read_liberty(library_path)
    backend = get_backend()
    pairs = [(record.pre, record.post) for record in records]
    solved = 0
    start = time.perf_counter()
    for first in range(0, len(pairs), batch_size):
        workdir = folder / f"proof{int(structural)}_{first}"
        result = prove_equivalent(pairs[first:first + batch_size], library, library_path, workdir, backend,
                                  structural=structural)
        solved += len(result.solver)
    return time.perf_counter() - start, solved


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
    rates, seconds = [], []
    steps: collections.Counter[str] = collections.Counter()
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs before the builds")
    with tempfile.TemporaryDirectory(prefix="graphsym-bench-") as folder:
        library = write_library(Path(folder) / "library.lib")
        for repeat in range(arguments.repeat):
            start = time.perf_counter()
            records = build_dataset(
                specs, library, [DelayTarget(arguments.factor, relative=True)], Path(folder) / f"cache{repeat}",
                workers=arguments.workers, progress=False, batch_size=arguments.batch_size,
            )
            seconds.append(time.perf_counter() - start)
            rates.append(len(records) / seconds[-1])
            for record in records:
                steps.update(record.seconds)
            print(f"repeat {repeat}: {len(records)} designs in {seconds[-1]:.2f} s = {rates[-1]:.2f} designs/s")
        print(f"median {statistics.median(rates):.2f} designs/s (target {TARGET_PER_SECOND}), "
              f"{arguments.workers} workers, batch size {arguments.batch_size}, {os.cpu_count()} CPUs, "
              f"load average {os.getloadavg()[0]:.1f} after the builds")
        total = sum(steps.values())
        shares = ", ".join(f"{name} {value / arguments.repeat:.1f} s ({100 * value / total:.0f}%)"
                           for name, value in steps.items())
        print(f"worker time per build, summed over workers: {shares}")

        sat_seconds, _ = time_proofs(records, library, Path(folder), arguments.batch_size, structural=False)
        new_seconds, solved = time_proofs(records, library, Path(folder), arguments.batch_size, structural=True)
        print(f"equivalence proofs of {len(records)} pairs in one process: SAT for every pair {sat_seconds:.2f} s, "
              f"structural hashing first {new_seconds:.2f} s ({solved} pairs left to SAT), "
              f"{sat_seconds / max(new_seconds, 1e-9):.0f}x faster")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
