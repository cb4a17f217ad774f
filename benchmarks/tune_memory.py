"""Measure the ``adaptlab tune`` driver's resident memory over many small trials.

Runs ``--trials`` trials (default 50) of the tiny digits model of ``tune_overhead.py`` for one
epoch each, with LoRA ranks drawn from 1..16 and a log-uniform learning rate, on a local Ray
cluster. A thread samples this process's RSS every 0.2 s. The script prints, in MB, the RSS
before Ray starts, its peak, and its value after the experiment and ``ray.shutdown()``. A
driver that grows with the trial count shows as a peak far above the start.

    python benchmarks/tune_memory.py [--trials 50] [--concurrency 2]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import secrets
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

from tune_overhead import tiny_spec  # noqa: E402

MB = 1024 * 1024


class RssSampler(threading.Thread):
    """Samples the RSS of this process until stopped; keeps the peak."""

    def __init__(self, interval_s: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.process = psutil.Process()
        self.interval_s = interval_s
        self.peak = self.process.memory_info().rss
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(self.interval_s):
            self.peak = max(self.peak, self.process.memory_info().rss)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=50, help="Number of trials.")
    parser.add_argument("--concurrency", type=int, default=2, help="Trials at once.")
    arguments = parser.parse_args()
    os.environ.setdefault("RAY_AUTH_TOKEN", secrets.token_hex(16))
    from adaptlab.core.cli import main as cli_main

    with tempfile.TemporaryDirectory(prefix="adaptlab-bench-") as folder:
        spec = Path(folder) / "tune.yaml"
        search = {
            "space": {"model.adapter.r": {"randint": [1, 16]},
                      "train.optimizer.lr": {"loguniform": [1.0e-3, 1.0e-2]}},
            "metric": "digit/accuracy",
            "mode": "max",
            "num_samples": arguments.trials,
            "max_concurrent_trials": arguments.concurrency,
        }
        spec.write_text(yaml.safe_dump(tiny_spec(Path(folder) / "runs", 1, **search)))
        sampler = RssSampler()
        start = sampler.process.memory_info().rss
        sampler.start()
        started = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()) as output:
            status = cli_main(["-q", "tune", str(spec)])
        elapsed = time.perf_counter() - started
        torch_loaded = "torch" in sys.modules
        sampler.stopped.set()
        sampler.join()
        end = sampler.process.memory_info().rss
        if status != 0:
            sys.stdout.write(output.getvalue())
            return status

    print(f"{arguments.trials} trials of 1 epoch, {arguments.concurrency} at a time, "
          f"{elapsed:.0f} s")
    print(f"driver RSS: start {start / MB:.0f} MB, peak {max(sampler.peak, end) / MB:.0f} MB, "
          f"end {end / MB:.0f} MB (torch imported by the driver: {torch_loaded})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
