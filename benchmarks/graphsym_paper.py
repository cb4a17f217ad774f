"""Paper-scale graphsym accuracy: held-out delay and area accuracy on 32- and 64-bit adders.

GraPhSyM (Said et al.) reports 98.3 % delay and 96.1 % area accuracy (100 % minus the mean
absolute percentage error) on adders it did not train on, with a training set of a few
thousand designs. This script trains the model of ``examples/graphsym/adders.yaml`` once per
``--widths`` entry on ``--count`` distinct adders of that width (the six classic topologies,
then random prefix graphs), with the example's split by design, and scores the best
checkpoint on the held-out test designs.

For each width it prints the dataset build time (labelled designs per second), the training
time per epoch and the test accuracies. For a run with fewer designs than the paper scale it
also prints an estimate of what ``--count 1000`` per width (2,000 designs over 32 and 64 bits)
would take, scaled linearly from the measured times.

    python benchmarks/graphsym_paper.py [--widths 32 64] [--count 1000] [--epochs 40]
        [--output-dir runs/graphsym-paper]

The default is the paper scale, which takes hours on a 2-core machine; pass, for example,
``--count 24 --epochs 2`` to check that the pipeline runs.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

from adaptlab.core.compose import build_data
from adaptlab.core.spec import load_spec
from adaptlab.core.training.api import evaluate, train

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "examples" / "graphsym" / "adders.yaml"
PUBLISHED = {"delay/accuracy": 98.3, "area/accuracy": 96.1}
PAPER_COUNT = 1000


def run_width(width: int, arguments: argparse.Namespace) -> dict[str, float]:
    """Build, train and test on adders of one width; return timings and test metrics."""
    overrides = [
        f"data.width={width}",
        f"data.count={arguments.count}",
        f"train.epochs={arguments.epochs}",
        f"output_dir={arguments.output_dir}",
        f"name=graphsym-paper-{width}",
        # A cache of its own, so that the build time counts every design once.
        f"data.cache_dir={Path(arguments.output_dir) / 'cache'}",
    ]
    if arguments.workers is not None:
        overrides.append(f"data.workers={arguments.workers}")
    spec = load_spec(SPEC, overrides)

    start = time.perf_counter()
    build_data(spec)  # builds and caches every labelled design; training reads them back
    build_seconds = time.perf_counter() - start

    start = time.perf_counter()
    summary = train(spec)
    train_seconds = time.perf_counter() - start
    metrics = evaluate(Path(summary["run_dir"]), split="test")
    return {
        "width": width,
        "designs": arguments.count,
        "build_seconds": build_seconds,
        "train_seconds": train_seconds,
        "epoch_seconds": train_seconds / arguments.epochs,
        **{name: float(value) for name, value in metrics.items()},
        "run_dir": summary["run_dir"],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--widths", type=int, nargs="+", default=[32, 64], help="Adder widths in bits, one run each.")
    parser.add_argument("--count", type=int, default=PAPER_COUNT, help="Distinct adders per width.")
    parser.add_argument("--epochs", type=int, default=40, help="Training epochs per run.")
    parser.add_argument("--workers", type=int, default=None, help="Dataset worker processes (default: the spec's).")
    parser.add_argument("--output-dir", default="runs/graphsym-paper", help="Folder for the run folders.")
    arguments = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    results = [run_width(width, arguments) for width in arguments.widths]
    print(f"{'width':>5} {'designs':>7} {'build s':>8} {'designs/s':>9} {'s/epoch':>8} "
          f"{'delay acc %':>11} {'area acc %':>10}")
    for result in results:
        print(f"{result['width']:>5} {result['designs']:>7} {result['build_seconds']:>8.1f} "
              f"{result['designs'] / max(result['build_seconds'], 1e-9):>9.2f} {result['epoch_seconds']:>8.1f} "
              f"{result.get('delay/accuracy', float('nan')):>11.2f} {result.get('area/accuracy', float('nan')):>10.2f}")
    print(f"published (GraPhSyM): delay {PUBLISHED['delay/accuracy']} %, area {PUBLISHED['area/accuracy']} %")
    if arguments.count < PAPER_COUNT:
        scale = PAPER_COUNT / arguments.count
        build = sum(result["build_seconds"] for result in results) * scale
        # An epoch visits every training design once, so its time grows with the count too.
        # Fixed costs per epoch (validation, checkpoints) dominate small runs, so this overstates.
        training = sum(result["epoch_seconds"] for result in results) * scale * 40
        print(f"estimate for {PAPER_COUNT} designs per width and 40 epochs, scaled linearly from this run: "
              f"building {build / 60:.0f} min (uncached), training at most {training / 60:.0f} min")
    print(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
