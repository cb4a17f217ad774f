"""``adaptlab tune``: sample, validate and run the trials of a spec's ``search:`` section.

The steps: load the spec, apply the command-line settings to its search section, sample
configurations and validate their trial specs (``--dry-run`` stops here and prints them),
start or join a Ray cluster, run the trials through Ray Tune, then print and write results.
"""

from __future__ import annotations

import argparse
import logging
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from adaptlab.core.errors import RunError, SpecError
from adaptlab.core.spec import load_spec
from adaptlab.core.spec._search import SearchSpec
from adaptlab.core.training.monitor import infer_mode
from adaptlab.registry import Registry, suggest
from adaptlab.tuning.cluster import probe_address, ray_session, resolve_address
from adaptlab.tuning.runner import (
    Objective,
    check_resume,
    read_experiment,
    run_experiment,
    write_experiment,
)
from adaptlab.tuning.space import check_space, dimensions, format_value, sample_values
from adaptlab.tuning.trainable import PARAMETERS_METRIC, TrialContext, plugin_records

__all__ = ["run"]

logger = logging.getLogger(__name__)

DEFAULT_DRY_RUN_SAMPLES = 8


def run(arguments: argparse.Namespace) -> int:
    """Run ``adaptlab tune``; return the exit status (2 when a trial spec is invalid)."""
    registry: Registry = arguments._registry
    stored = read_experiment(arguments.resume) if arguments.resume else None
    if arguments.spec is None and stored is None:
        raise RunError("tune needs a SPEC file with a search: section, or --resume EXPERIMENT_DIR")
    if arguments.spec is not None:
        spec = load_spec(arguments.spec, arguments.overrides, registry=registry)
        if spec.search is None:
            raise SpecError(
                "no search: section; add search.space with at least one dotted path, e.g. "
                "search: {space: {train.optimizer.lr: {loguniform: [1.0e-4, 1.0e-2]}}}",
                source=str(arguments.spec),
            )
        base = spec.to_data()
        search = _apply_options(base.pop("search"), arguments)
    else:
        base = dict(stored["spec"])
        search = _apply_options(stored["search"], arguments)
    objective = _objective(search, base, registry)
    dims = dimensions(search)
    seed = search.seed if search.seed is not None else int(base.get("seed", 0))
    grid_all = search.search_alg.name == "grid"

    count = arguments.samples or search.num_samples
    if arguments.dry_run:
        count = count or (1 if grid_all else DEFAULT_DRY_RUN_SAMPLES)
        return _dry_run(base, dims, registry, sample_values(dims, count, seed, grid_all=grid_all))
    samples = sample_values(dims, min(count or 8, 64), seed, grid_all=grid_all)
    problems = check_space(base, dims, registry, samples)
    if problems:
        raise SpecError(problems, source=str(arguments.spec or arguments.resume))

    address = resolve_address(arguments.address, search.address)
    if address is not None:
        # Probe before the experiment folder exists, so an unreachable cluster leaves nothing.
        probe_address(address)
    if stored is not None:
        check_resume(arguments.resume, stored, base, search)
        experiment_dir = arguments.resume.resolve()
    else:
        experiment_dir = _new_experiment_dir(base, search)
        write_experiment(experiment_dir, base, search, str(arguments.spec))
    plugins, import_paths = plugin_records(registry)
    context = TrialContext(
        base=base,
        dims=tuple(dims),
        experiment_dir=str(experiment_dir),
        plugins=plugins,
        import_paths=import_paths,
        metrics=objective.metrics,
    )
    epochs = int(base.get("train", {}).get("epochs") or 1)
    _print(f"experiment {experiment_dir}")
    with ray_session(
        address,
        temp_dir=arguments.ray_temp_dir or search.ray_temp_dir,
        verbose=logging.getLogger("adaptlab").getEffectiveLevel() <= logging.DEBUG,
    ):
        result_grid = run_experiment(
            experiment_dir, context, search, dims, objective, epochs, resume=stored is not None
        )
    return _report(result_grid, experiment_dir, dims, objective, str(base.get("output_dir", "runs")))


def _apply_options(raw: dict[str, Any], arguments: argparse.Namespace) -> SearchSpec:
    """Return the search section with the command-line settings applied, validated again."""
    data = dict(raw)
    if arguments.samples is not None:
        data["num_samples"] = arguments.samples
    if arguments.metric:
        metrics = [m.strip() for m in arguments.metric.split(",") if m.strip()]
        data["metric"] = metrics[0] if len(metrics) == 1 else metrics
    if arguments.mode:
        modes = [m.strip() for m in arguments.mode.split(",") if m.strip()]
        data["mode"] = modes[0] if len(modes) == 1 else modes
    if arguments.concurrency is not None:
        data["max_concurrent_trials"] = arguments.concurrency
    if arguments.time_budget is not None:
        data["time_budget_s"] = arguments.time_budget
    try:
        return SearchSpec.model_validate(data)
    except ValidationError as error:
        lines = [
            f"search.{'.'.join(str(p) for p in item['loc'])}: "
            f"{item['msg'].removeprefix('Value error, ')} (found {item.get('input')!r})"
            for item in error.errors(include_url=False)
        ]
        raise SpecError(lines) from None


def _objective(search: SearchSpec, base: dict[str, Any], registry: Registry) -> Objective:
    """Return the metrics and modes, defaulting to ``train.monitor`` and its mode."""
    train = base.get("train") or {}
    metrics = search.metrics() or [train.get("monitor") or "loss"]
    if search.mode is None:
        modes = [None] * len(metrics)
    elif isinstance(search.mode, str):
        modes = [search.mode]
    else:
        modes = list(search.mode)
    resolved = []
    for metric, mode in zip(metrics, modes):
        _check_metric(metric, base, registry)
        if mode is None and metric == train.get("monitor") and train.get("mode"):
            mode = train["mode"]
        if mode is None:
            mode = "min" if metric == PARAMETERS_METRIC else infer_mode(metric)
        resolved.append(mode)
    return Objective(tuple(metrics), tuple(resolved))


def _check_metric(metric: str, base: dict[str, Any], registry: Registry) -> None:
    """Reject ``TASK/METRIC`` when the task's head declares its metrics and lacks this one."""
    task, _, name = metric.rpartition("/")
    heads = (base.get("model") or {}).get("heads") or {}
    if not task or task not in heads or name == "loss":
        return
    try:
        config = registry.get("head", heads[task]["name"]).config
    except Exception:  # noqa: BLE001 - the spec already validated; an odd head is not checked
        return
    declared = getattr(config, "metric_names", None)
    if not callable(declared):
        return
    names = list(declared())
    if name not in names:
        hint = suggest(name, names)
        raise SpecError(
            f"search.metric: head {heads[task]['name']!r} of task {task!r} reports no metric "
            f"{name!r}" + (f"; {hint}" if hint else "") + f" (its metrics: {', '.join(names)})"
        )


def _new_experiment_dir(base: dict[str, Any], search: SearchSpec) -> Path:
    storage = Path(search.storage_path or Path(str(base.get("output_dir", "runs"))) / "tune")
    storage = storage.expanduser().resolve()
    name = search.experiment_name
    if name is None:
        prefix = base.get("name") or (base.get("data") or {}).get("name") or "experiment"
        name = f"{prefix}-tune-{datetime.now():%Y%m%d-%H%M%S}"
    path = storage / name
    if path.exists():
        raise RunError(
            f"experiment folder {path} exists; resume it with --resume {path}, or choose "
            "another search.experiment_name"
        )
    try:
        path.mkdir(parents=True)
    except OSError as error:
        raise RunError(f"cannot create the experiment folder {path}: {error}") from None
    return path


def _dry_run(
    base: dict[str, Any], dims: list, registry: Registry, samples: list[dict[str, Any]]
) -> int:
    from adaptlab.core.cli import _table

    headers = ["trial", *[dim.path for dim in dims], "spec"]
    rows = []
    invalid = 0
    for index, values in enumerate(samples, start=1):
        problems = check_space(base, [], registry, [values])
        if problems:
            invalid += 1
            status = "invalid: " + "; ".join(p.partition("): ")[2] or p for p in problems)
        else:
            status = "valid"
        rows.append([str(index), *[format_value(values.get(dim.path)) for dim in dims], status])
    _print(_table(headers, rows))
    # The values that no sample drew are checked as a real run checks them before it starts.
    unsampled = check_space(base, dims, registry, [])
    if invalid:
        _print(f"{invalid} of {len(samples)} sampled trial specs are invalid")
    for problem in unsampled:
        _print(f"invalid value outside the samples: {problem}")
    if invalid or unsampled:
        return SpecError.exit_code
    _print(f"all {len(samples)} sampled trial specs are valid, and so is every listed value and "
           "both ends of every range")
    return 0


def _report(result_grid: Any, experiment_dir: Path, dims: list, objective: Objective,
            output_dir: str) -> int:
    from adaptlab.core.cli import _table
    from adaptlab.tuning.results import collect_results, table_rows, write_results

    rows = collect_results(result_grid, experiment_dir, dims, objective.metrics, objective.modes)
    headers, cells = table_rows(rows, dims, objective.metrics)
    _print(_table(headers, cells))
    written = write_results(rows, experiment_dir, dims, objective.metrics, objective.modes,
                            output_dir)
    for kind, path in written.items():
        _print(f"{kind.replace('_', ' ')}: {path}")
    failed = sum(row.status == "failed" for row in rows)
    if failed == len(rows):
        _print(f"all {len(rows)} trials failed")
        return 1
    if failed:
        _print(f"{failed} of {len(rows)} trials failed")
    return 0


def _print(text: str = "") -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()
