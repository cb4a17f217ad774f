"""Ray Tune experiments of adaptlab trials: building the Tuner, running it and resuming it.

An experiment folder (``STORAGE_PATH/EXPERIMENT_NAME``) contains Ray Tune's own state, the
trials' adaptlab run folders under ``trials/``, the result files, and ``adaptlab-tune.json``:
the resolved base spec and search section it was started with, which ``--resume`` compares
against the spec given then.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from adaptlab.core.errors import RunError, SpecError
from adaptlab.core.runs import atomic_write_json, read_json, spec_differences
from adaptlab.core.spec._search import SearchSpec
from adaptlab.tuning.space import Dimension, format_values, ray_param_space
from adaptlab.tuning.trainable import ERROR_FILE, TrialContext, run_trial

__all__ = ["EXPERIMENT_FILE", "Objective", "check_resume", "read_experiment", "run_experiment"]

logger = logging.getLogger(__name__)

EXPERIMENT_FILE = "adaptlab-tune.json"

# Fields that may differ when an experiment resumes: where it runs and where it is stored.
# Everything else is compared, because Ray Tune restores its own copy of the trial count,
# concurrency, budget and failure settings and would silently ignore a changed value.
_MAY_CHANGE_ON_RESUME = (
    "search.address",
    "search.ray_temp_dir",
    "search.storage_path",
    "search.experiment_name",
    "output_dir",
)


@dataclass(frozen=True)
class Objective:
    """The metrics a search optimizes and the direction of each."""

    metrics: tuple[str, ...]
    modes: tuple[str, ...]

    @property
    def primary(self) -> str:
        return self.metrics[0]

    @property
    def primary_mode(self) -> str:
        return self.modes[0]


def write_experiment(path: Path, base: Mapping[str, Any], search: SearchSpec, source: str | None) -> None:
    """Record what an experiment was started with, for ``--resume``."""
    atomic_write_json(
        path / EXPERIMENT_FILE,
        {
            "source": source,
            "created": datetime.now().isoformat(timespec="seconds"),
            "spec": dict(base),
            "search": search.model_dump(mode="json", exclude_none=True),
        },
    )


def read_experiment(path: Path) -> dict[str, Any]:
    """Read ``adaptlab-tune.json`` of an experiment folder; raise :class:`RunError` if absent."""
    record = Path(path) / EXPERIMENT_FILE
    if not record.is_file():
        raise RunError(
            f"{path} is not an adaptlab tune experiment (no {EXPERIMENT_FILE}); pass the "
            "experiment folder that `adaptlab tune` printed when it started"
        )
    return read_json(record)


def check_resume(path: Path, stored: Mapping[str, Any], base: Mapping[str, Any],
                 search: SearchSpec) -> None:
    """Raise :class:`RunError` listing each difference between the stored and the given search.

    Differences in the base spec count too, since every trial trains it; fields listed in
    ``_MAY_CHANGE_ON_RESUME`` may differ.
    """
    old = {**stored["spec"], "search": stored["search"]}
    new = {**dict(base), "search": search.model_dump(mode="json", exclude_none=True)}
    differences = spec_differences(old, new, ignore=_MAY_CHANGE_ON_RESUME)
    if differences:
        lines = "\n".join(f"  {line}" for line in differences)
        raise RunError(
            f"cannot resume {path}: the search differs from the one it started with "
            f"(stored -> given):\n{lines}\n"
            "Resume without a spec to continue the experiment as it was, or start a new "
            "experiment with the changed spec."
        )


def build_search(search: SearchSpec, dims: list[Dimension], objective: Objective, epochs: int):
    """Return Ray Tune's ``(param_space, search_alg, scheduler)`` for the search section."""
    grid_all = search.search_alg.name == "grid"
    param_space = ray_param_space(dims, grid_all=grid_all)
    search_alg = None
    if search.search_alg.name == "optuna":
        grid_paths = [dim.path for dim in dims if dim.kind == "grid"]
        if grid_paths:
            raise SpecError(
                f"search.space.{grid_paths[0]}: Optuna samples every dimension itself and "
                "cannot expand a grid; use choice for this path, or search_alg random"
            )
        from ray.tune.search.optuna import OptunaSearch

        multi = len(objective.metrics) > 1
        search_alg = OptunaSearch(
            metric=list(objective.metrics) if multi else objective.primary,
            mode=list(objective.modes) if multi else objective.primary_mode,
            sampler=_optuna_sampler(search),
        )
    scheduler = None
    if search.scheduler.name == "asha":
        from ray.tune.schedulers import ASHAScheduler

        config = search.scheduler
        max_t = config.max_t or epochs
        scheduler = ASHAScheduler(
            time_attr="training_iteration",
            max_t=max_t,
            grace_period=min(config.grace_period, max_t),
            reduction_factor=config.reduction_factor,
            brackets=config.brackets,
        )
    elif search.scheduler.name == "pbt":
        from ray.tune.schedulers import PopulationBasedTraining

        movable = [dim.path for dim in dims if not dim.path.startswith(("model.heads.", "data."))]
        if movable:
            raise SpecError(
                f"search.space.{movable[0]}: scheduler pbt can only perturb paths under "
                "model.heads or data, because a resumed run restores its optimizer state "
                "and its architecture from the copied checkpoint; use scheduler asha"
            )
        scheduler = PopulationBasedTraining(
            time_attr="training_iteration",
            perturbation_interval=search.scheduler.perturbation_interval,
            hyperparam_mutations=dict(param_space),
            quantile_fraction=search.scheduler.quantile_fraction,
            resample_probability=search.scheduler.resample_probability,
        )
    return param_space, search_alg, scheduler


def _optuna_sampler(search: SearchSpec) -> Any:
    import optuna

    if search.search_alg.sampler == "random":
        return optuna.samplers.RandomSampler(seed=search.seed)
    return optuna.samplers.TPESampler(seed=search.seed)


def run_experiment(
    experiment_dir: Path,
    context: TrialContext,
    search: SearchSpec,
    dims: list[Dimension],
    objective: Objective,
    epochs: int,
    *,
    resume: bool = False,
) -> Any:
    """Run (or resume) the experiment in ``experiment_dir``; return Ray's ResultGrid.

    Must run inside :func:`adaptlab.tuning.cluster.ray_session`.
    """
    from ray import tune
    from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback

    # Tune adds a TensorBoard logger whenever tensorboardX is installed, and tensorboardX
    # imports torch into the driver (about 470 MB of RSS, measured with torch 2.14). The CSV
    # and JSON loggers, which the results are read from, are passed explicitly instead.
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    param_space, search_alg, scheduler = build_search(search, dims, objective, epochs)
    resources = {"cpu": search.resources_per_trial.cpu, "gpu": search.resources_per_trial.gpu}
    trainable = tune.with_resources(tune.with_parameters(run_trial, context=context), resources)
    if resume:
        logger.info("resuming experiment %s", experiment_dir)
        tuner = tune.Tuner.restore(
            str(experiment_dir), trainable=trainable, resume_errored=True, param_space=param_space
        )
        return tuner.fit()

    multi = len(objective.metrics) > 1
    num_samples = search.num_samples or (1 if search.search_alg.name == "grid" else 8)
    tune_config = tune.TuneConfig(
        metric=None if multi else objective.primary,
        mode=None if multi else objective.primary_mode,
        search_alg=search_alg,
        scheduler=scheduler,
        num_samples=num_samples,
        max_concurrent_trials=search.max_concurrent_trials,
        time_budget_s=search.time_budget_s,
        trial_dirname_creator=_trial_dirname,
    )
    run_config = tune.RunConfig(
        name=experiment_dir.name,
        storage_path=str(experiment_dir.parent.resolve()),
        failure_config=tune.FailureConfig(max_failures=search.max_failures),
        # PBT restores other trials' older checkpoints, so it keeps them all (a few bytes each).
        checkpoint_config=tune.CheckpointConfig(
            num_to_keep=None if search.scheduler.name == "pbt" else 2
        ),
        verbose=1 if logger.isEnabledFor(logging.DEBUG) else 0,
        callbacks=[
            CSVLoggerCallback(),
            JsonLoggerCallback(),
            _trial_log(context, dims, search.max_failures),
        ],
    )
    tuner = tune.Tuner(
        trainable, param_space=param_space, tune_config=tune_config, run_config=run_config
    )
    return tuner.fit()


def _trial_dirname(trial: Any) -> str:
    return str(trial.trial_id)


def _trial_log_class() -> type:
    from ray.tune import Callback

    class TrialLog(Callback):
        """Log trial starts, retries, failures and completions through adaptlab's logger."""

        def __init__(self, context: TrialContext, dims: list[Dimension], max_failures: int):
            self.context = context
            self.dims = dims
            self.max_failures = max_failures

        def _values(self, trial: Any) -> str:
            from adaptlab.tuning.space import decode

            return format_values(decode(trial.config, self.dims))

        def _error(self, trial: Any) -> str:
            path = self.context.trial_dir(trial.trial_id) / ERROR_FILE
            try:
                record = read_json(path)
                return f"{record['type']}: {record['message']}"
            except (OSError, ValueError, KeyError, TypeError, RunError):
                return "see the trial's error.txt"

        def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            logger.info("trial %s started: %s", trial.trial_id, self._values(trial))

        def on_trial_recover(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            logger.warning(
                "trial %s failed (%s); restarting it from its last checkpoint (failure %d of "
                "%d allowed)",
                trial.trial_id, self._error(trial), trial.run_metadata.num_failures,
                self.max_failures,
            )

        def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            logger.warning("trial %s failed: %s", trial.trial_id, self._error(trial))

        def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            logger.info("trial %s finished", trial.trial_id)

    return TrialLog


def _trial_log(context: TrialContext, dims: list[Dimension], max_failures: int) -> Any:
    """Return the logging callback; its class is defined lazily because it subclasses Ray's."""
    return _trial_log_class()(context, dims, max_failures)
