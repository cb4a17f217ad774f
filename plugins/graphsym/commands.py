"""The graphsym subcommands: ``adaptlab data`` and ``adaptlab predict``.

This module contains the option tables, which the CLI builds on every start, so it imports only
argparse and the configuration models. ``data`` runs here with lazy imports of the torch-free
dataset builder. ``predict`` runs in :mod:`adaptlab.plugins.graphsym.predict`, which imports
torch.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from adaptlab.core.errors import ComponentBuildError, SpecError
from adaptlab.plugins.graphsym.config import AddersDatasetConfig

__all__ = ["add_data_arguments", "add_predict_arguments", "data_config", "run_data"]

logger = logging.getLogger(__name__)

# Options of `adaptlab data` that set a field of the adders configuration: (option, field, metavar).
_DATA_OPTIONS = (
    ("--width", "width", "BITS"),
    ("--count", "count", "N"),
    ("--delay-target-factor", "delay_target_factor", "F"),
    ("--delay-target-ns", "delay_target_ns", "D"),
    ("--library", "library", "LIB"),
    ("--backend", "backend", None),
    ("--workers", "workers", "K"),
    ("--cache-dir", "cache_dir", "DIR"),
    ("--seed", "seed", "S"),
    ("--max-fanout", "max_fanout", "N"),
)
_OPTION_TYPES = {"width": int, "count": int, "workers": int, "seed": int, "max_fanout": int,
                 "delay_target_factor": float, "delay_target_ns": float}
ADDERS = "adders"


def _help(field: str) -> str:
    """Return the configuration field's description, the single source of the help text."""
    description = AddersDatasetConfig.model_fields[field].description or ""
    return description.replace("%", "%%")


def add_data_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options of ``adaptlab data``."""
    parser.usage = "adaptlab data [-h] {adders | SPEC [PATH=VALUE ...]} [options]"
    parser.description = (
        "Build the labelled designs of a graphsym dataset into the cache, with one synthesis "
        "worker per core: `adaptlab data adders` with the options below, or `adaptlab data "
        "SPEC` for the data section of a spec. An interrupted build keeps every finished "
        "record, and a rerun builds only the rest."
    )
    parser.add_argument("source", metavar="adders|SPEC", help="'adders', or a spec file (YAML).")
    parser.add_argument(
        "overrides", nargs="*", metavar="PATH=VALUE",
        help="Overrides of the spec, such as data.count=50 (with SPEC only).",
    )
    # The factor and the absolute target both set the delay target, so only one may be given.
    delay_target = parser.add_mutually_exclusive_group()
    for option, field, metavar in _DATA_OPTIONS:
        group = delay_target if field in ("delay_target_factor", "delay_target_ns") else parser
        if field == "backend":
            group.add_argument(option, choices=("auto", "yowasp", "native"), help=_help(field))
        else:
            group.add_argument(option, type=_OPTION_TYPES.get(field, str), metavar=metavar, help=_help(field))
    parser.add_argument(
        "--batch-size", type=int, default=None, metavar="N",
        help="Designs per Yosys run in a worker (default 16). Smaller batches lose less work "
        "to an interruption; larger ones start Yosys less often.",
    )


def add_predict_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options of ``adaptlab predict``."""
    parser.description = (
        "Predict the post-physical-synthesis delay and area of mapped netlists with a trained "
        "graphsym run, next to the delay and area the project's timer gives the netlists "
        "themselves."
    )
    parser.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="Run folder written by `adaptlab train`.")
    parser.add_argument(
        "netlists", type=Path, nargs="+", metavar="NETLIST",
        help="Mapped netlists: structural Verilog (.v, .sv), BLIF (.blif) or Yosys JSON (.json).",
    )
    parser.add_argument(
        "--target", type=float, required=True, metavar="D",
        help="Delay target D in ns that the post-synthesis sizing aims at; must be positive.",
    )
    parser.add_argument(
        "--liberty", type=Path, metavar="LIB",
        help="Liberty file the netlists are mapped to (default: the library the run was "
        "trained with).",
    )
    parser.add_argument(
        "--checkpoint", default="best",
        help="Checkpoint to load: best, last, or an epoch number (default: best).",
    )
    parser.add_argument("--top", metavar="MODULE", help="Top module, when a file contains several modules.")
    parser.add_argument("--json", action="store_true", help="Print the predictions as JSON.")


def _given_options(arguments: argparse.Namespace) -> dict[str, Any]:
    return {field: getattr(arguments, field) for _, field, _ in _DATA_OPTIONS if getattr(arguments, field) is not None}


def _options_error(error: ValidationError) -> SpecError:
    """Turn a validation error of command-line options into one SpecError naming each option."""
    options = {field: option for option, field, _ in _DATA_OPTIONS}
    problems = []
    for item in error.errors():
        field = str(item["loc"][0]) if item["loc"] else ""
        name = options.get(field, field or "options")
        value = f" (got {item['input']!r})" if field in options else ""
        problems.append(f"{name}: {item['msg']}{value}")
    return SpecError(problems, source="adaptlab data options")


def data_config(arguments: argparse.Namespace) -> AddersDatasetConfig:
    """Return the adders configuration that ``adaptlab data`` builds.

    ``adaptlab data adders`` takes the options over the defaults. ``adaptlab data SPEC`` takes
    the spec's data section with its overrides, and the options override both. Raises
    SpecError for an invalid option, spec or override.
    """
    options = _given_options(arguments)
    source = arguments.source
    if source == ADDERS and not Path(source).is_file():
        if arguments.overrides:
            raise SpecError(
                f"overrides {' '.join(arguments.overrides)} apply only to a spec file; use "
                "options such as --count 50 with 'adders'"
            )
        try:
            return AddersDatasetConfig(**options)
        except ValidationError as error:
            raise _options_error(error) from None

    from adaptlab.core.spec import load_spec

    path = Path(source)
    if not path.is_file():
        raise SpecError(f"{source!r} is neither 'adders' nor an existing spec file; check the path")
    for override in arguments.overrides:
        if "=" not in override:
            raise SpecError(f"invalid override {override!r}: expected dotted.path=value", source=str(path))
    spec = load_spec(path, list(arguments.overrides), registry=getattr(arguments, "_registry", None))
    if spec.data.name != ADDERS:
        raise SpecError(
            f"data.name is {spec.data.name!r}, but `adaptlab data` builds graphsym datasets only "
            f"({ADDERS!r}); use `adaptlab validate --build` to build other datasets",
            source=str(path),
        )
    try:
        return AddersDatasetConfig(**{**spec.data.config.model_dump(), **options})
    except ValidationError as error:
        raise _options_error(error) from None


def _write(text: str = "") -> None:
    sys.stdout.write(text + "\n")


def run_data(arguments: argparse.Namespace) -> int:
    """Build the labelled designs of the chosen configuration and print a summary.

    Returns 0 when every record exists afterwards and 1 when some jobs failed. Ctrl-C stops
    the build: the finished records stay in the cache and the CLI exits with status 130.
    """
    from adaptlab.plugins.graphsym.dataset import DEFAULT_BATCH_SIZE, DatasetError
    from adaptlab.plugins.graphsym.dataset.splits import build_split_records

    config = data_config(arguments)
    batch_size = arguments.batch_size if arguments.batch_size is not None else DEFAULT_BATCH_SIZE
    if batch_size < 1:
        raise SpecError(f"--batch-size: must be at least 1 (got {batch_size})")
    try:
        labelled = build_split_records(config, batch_size=batch_size)
    except DatasetError as error:
        raise ComponentBuildError(f"data: building the designs failed: {error}") from None

    sizes = ", ".join(f"{name} {len(records)}" for name, records in labelled.splits.items())
    total = sum(len(records) for records in labelled.splits.values())
    _write(f"labelled designs: {total} records ({sizes})")
    _write(f"built: {labelled.built} (rebuilt from corrupt cache files: {labelled.rebuilt}); "
           f"reused from the cache: {labelled.cached}; failed: {labelled.failed}")
    rate = f", {labelled.built / labelled.seconds:.2f} designs per second" if labelled.built else ""
    _write(f"time: {labelled.seconds:.1f} s{rate}")
    _write(f"cache: {labelled.cache_dir}")
    _write(f"library: {labelled.library}")
    if labelled.failed:
        for build in labelled.builds:
            for failure in build.failures[:5]:
                _write(f"failed: {failure.design_name} at {failure.delay_target}: {failure.error}")
        _write(f"{labelled.failed} jobs failed; rerun the same command to retry them")
        return 1
    return 0
