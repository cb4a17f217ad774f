"""Registers ``adaptlab tune`` through the plugin hooks, as any third party would.

The options are defined here, with argparse only, because they are added on every CLI start;
the command itself lives in :mod:`adaptlab.tuning.command` and is imported when it runs.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from adaptlab.core.hookspecs import hookimpl

ADAPTLAB_HOOK_API = "1.1"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options of ``adaptlab tune`` to its parser."""
    parser.usage = (
        "adaptlab tune [-h] [options] SPEC [PATH=VALUE ...]\n"
        "       adaptlab tune --resume EXPERIMENT_DIR [SPEC [PATH=VALUE ...]]"
    )
    parser.add_argument(
        "spec_and_overrides",
        nargs="*",
        metavar="SPEC",
        help="Spec file with a search: section, then overrides such as train.epochs=2.",
    )
    parser.add_argument("--samples", type=int, metavar="N",
                        help="Trials to sample (sets search.num_samples).")
    parser.add_argument("--metric", metavar="M",
                        help="Metric to optimize, e.g. digit/accuracy; comma-separated metrics "
                        "make an Optuna search multi-objective.")
    parser.add_argument("--mode", metavar="max|min",
                        help="max or min, comma-separated with several metrics.")
    parser.add_argument("--concurrency", type=int, metavar="K",
                        help="Trials running at once (sets search.max_concurrent_trials).")
    parser.add_argument("--time-budget", type=float, metavar="S",
                        help="Seconds after which no trial starts and running ones stop.")
    parser.add_argument("--address", metavar="ADDR",
                        help="Ray cluster to join as HOST:PORT (default: RAY_ADDRESS, then "
                        "search.address, else a local cluster).")
    parser.add_argument("--ray-temp-dir", metavar="DIR",
                        help="Folder for the local Ray cluster's temporary files.")
    parser.add_argument("--resume", type=Path, metavar="EXPERIMENT_DIR",
                        help="Continue an interrupted experiment.")
    parser.add_argument("--dry-run", action="store_true",
                        help="Sample and validate trial specs, print them and exit; starts no Ray.")


@hookimpl
def adaptlab_register_commands(register) -> None:  # noqa: ANN001 - typed by the hookspec
    register(
        "tune",
        arguments=add_arguments,
        run="adaptlab.tuning.command:run",
        summary="Search ranks, budgets and architectures of a spec's search: section with Ray Tune.",
    )
