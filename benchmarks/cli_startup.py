"""Time cheap CLI commands against ``python -c "import torch"`` on the same machine.

Target: ``adaptlab components`` and ``adaptlab validate SPEC`` each take at most 0.3x the time
of importing torch. Every command runs in a fresh interpreter; the median of ``--repeat`` runs
is reported, after one warm-up run of each so the file cache is equally warm for all.

    python benchmarks/cli_startup.py [--repeat 7]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "examples" / "digits" / "lora.yaml"
TARGET_RATIO = 0.3


def wall_time(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def median_time(command: list[str], repeat: int) -> float:
    wall_time(command)
    return statistics.median(wall_time(command) for _ in range(repeat))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7, help="Timed runs per command.")
    arguments = parser.parse_args()

    cli = [sys.executable, "-m", "adaptlab.core.cli"]
    baseline = median_time([sys.executable, "-c", "import torch"], arguments.repeat)
    cases = {
        "adaptlab components": cli + ["components"],
        f"adaptlab validate {SPEC.relative_to(ROOT)}": cli + ["validate", str(SPEC)],
    }
    print(f"baseline  python -c 'import torch': {baseline * 1000:.0f} ms (median of "
          f"{arguments.repeat})")
    failed = False
    for label, command in cases.items():
        seconds = median_time(command, arguments.repeat)
        ratio = seconds / baseline
        verdict = "ok" if ratio <= TARGET_RATIO else "ABOVE TARGET"
        failed |= ratio > TARGET_RATIO
        print(f"{label}: {seconds * 1000:.0f} ms, ratio {ratio:.2f} "
              f"(target <= {TARGET_RATIO}) {verdict}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
