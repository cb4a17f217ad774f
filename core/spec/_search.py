"""The ``search:`` section of a spec, read by ``adaptlab tune`` and ignored by ``adaptlab train``.

``search.space`` maps dotted spec paths to distributions written as one-key mappings, e.g.
``train.optimizer.lr: {loguniform: [1.0e-4, 1.0e-2]}``. A nested mapping is read as a dotted
path too, so ``search.space.train.epochs={choice: [1, 2]}`` given as an override works. The
other fields configure Ray Tune: the metric and mode, the trial count, the scheduler, the
search algorithm, resources, failures and where the experiment is stored.

Only pydantic is imported here; :mod:`adaptlab.tuning` turns these models into Ray Tune
objects.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal, Union

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    model_validator,
)

from adaptlab.registry import suggest

__all__ = [
    "DISTRIBUTIONS",
    "Distribution",
    "SearchSpec",
    "search_path_problems",
    "validate_search",
]

_MAX_SHOWN = 60


class _Dimension(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Choice(_Dimension):
    """Uniform choice among listed values, each of which may be a whole component mapping."""

    choice: list[Any] = Field(min_length=1, description="Values to choose from.")


class Grid(_Dimension):
    """Every listed value is tried (with every value of the other grid dimensions)."""

    grid: list[Any] = Field(min_length=1, description="Values that are all tried.")


class Uniform(_Dimension):
    """Float drawn uniformly from ``[low, high]``."""

    uniform: tuple[float, float] = Field(description="[low, high].")

    @model_validator(mode="after")
    def _check(self) -> Uniform:
        _check_range(*self.uniform)
        return self


class LogUniform(_Dimension):
    """Float whose logarithm is uniform in ``[log low, log high]``, with a positive ``low``."""

    loguniform: tuple[float, float] = Field(description="[low, high], both positive.")

    @model_validator(mode="after")
    def _check(self) -> LogUniform:
        low, high = self.loguniform
        if low <= 0:
            raise ValueError(f"low must be positive for a log-uniform range (found low {low})")
        _check_range(low, high)
        return self


class RandInt(_Dimension):
    """Integer drawn uniformly from ``[low, high]``, both ends included."""

    randint: tuple[int, int] = Field(description="[low, high], both included.")

    @model_validator(mode="after")
    def _check(self) -> RandInt:
        _check_range(*self.randint)
        return self


class QUniform(_Dimension):
    """Float drawn uniformly from ``[low, high]`` and rounded to a multiple of ``q``."""

    quniform: tuple[float, float, float] = Field(description="[low, high, q].")

    @model_validator(mode="after")
    def _check(self) -> QUniform:
        _check_range(*self.quniform[:2])
        _check_step(*self.quniform)
        return self


class QRandInt(_Dimension):
    """Integer drawn from ``[low, high]`` and rounded to a multiple of ``q``."""

    qrandint: tuple[int, int, int] = Field(description="[low, high, q], low and high included.")

    @model_validator(mode="after")
    def _check(self) -> QRandInt:
        _check_range(*self.qrandint[:2])
        _check_step(*self.qrandint)
        return self


def _check_range(low: float, high: float) -> None:
    if low >= high:
        raise ValueError(f"low must be below high (found low {low}, high {high})")


def _check_step(low: float, high: float, q: float) -> None:
    if q <= 0:
        raise ValueError(f"the step q must be positive (found {q})")
    if q > high - low:
        raise ValueError(f"the step q ({q}) must not exceed high - low ({high - low})")


DISTRIBUTIONS: dict[str, type[_Dimension]] = {
    "choice": Choice,
    "grid": Grid,
    "uniform": Uniform,
    "loguniform": LogUniform,
    "randint": RandInt,
    "quniform": QUniform,
    "qrandint": QRandInt,
}


def _distribution_tag(value: Any) -> str | None:
    if isinstance(value, Mapping) and len(value) == 1:
        key = next(iter(value))
        return key if key in DISTRIBUTIONS else None
    if isinstance(value, _Dimension):
        return next(iter(type(value).model_fields))
    return None


Distribution = Annotated[
    Union[tuple(Annotated[model, Tag(name)] for name, model in DISTRIBUTIONS.items())],  # noqa: UP007
    Discriminator(
        _distribution_tag,
        custom_error_type="invalid_distribution",
        custom_error_message=f"expected a one-key mapping with one of {', '.join(DISTRIBUTIONS)}",
    ),
]


class Resources(BaseModel):
    """Resources that Ray reserves for each trial; fractions share a device between trials."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    cpu: float = Field(1.0, gt=0, description="CPU cores per trial.")
    gpu: float = Field(0.0, ge=0, description="GPUs per trial; 0.5 runs two trials per GPU.")


class FifoScheduler(BaseModel):
    """Run every trial to its last epoch."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Literal["fifo"] = "fifo"


class AshaScheduler(BaseModel):
    """Asynchronous successive halving: stop trials whose metric trails at each rung.

    Time is counted in ``training_iteration``, which is the number of epochs reported.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Literal["asha"]
    grace_period: int = Field(1, ge=1, description="Epochs every trial runs before a stop.")
    reduction_factor: float = Field(
        3.0, gt=1, description="Fraction 1/reduction_factor of trials continues at each rung."
    )
    max_t: int | None = Field(
        None, ge=1, description="Epochs after which every trial stops (default: train.epochs)."
    )
    brackets: int = Field(1, ge=1, description="Number of brackets (Hyperband-style).")


class PbtScheduler(BaseModel):
    """Population-based training: trials copy a better trial's checkpoint and perturb it.

    Only search dimensions under ``model.heads`` and the data section may be perturbed,
    because resuming restores the optimizer state (including its learning rate) and an
    architecture change cannot load the copied weights.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Literal["pbt"]
    perturbation_interval: int = Field(
        1, ge=1, description="Epochs between exploit/explore steps."
    )
    quantile_fraction: float = Field(
        0.25, gt=0, le=0.5, description="Bottom fraction of trials that copies the top fraction."
    )
    resample_probability: float = Field(
        0.25, ge=0, le=1, description="Probability of resampling a value instead of perturbing it."
    )


Scheduler = Annotated[
    Union[FifoScheduler, AshaScheduler, PbtScheduler], Field(discriminator="name")  # noqa: UP007
]


class RandomSearch(BaseModel):
    """Random sampling of every dimension, grid dimensions expanded (Ray's BasicVariantGenerator)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Literal["random"] = "random"


class GridSearch(BaseModel):
    """Every combination of the listed values; ``choice`` and integer ranges are enumerated."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Literal["grid"]


class OptunaSearch(BaseModel):
    """Optuna's samplers through Ray Tune's OptunaSearch; several metrics make it multi-objective."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Literal["optuna"]
    # NOTE: optuna 5.1's NSGAIISampler holds a thread lock, which Ray Tune cannot pickle into
    # its experiment state, so NSGA-II is not offered; TPE handles several objectives too.
    sampler: Literal["tpe", "random"] = Field(
        "tpe", description="Optuna sampler: tpe (also with several metrics) or random."
    )


SearchAlgorithm = Annotated[
    Union[RandomSearch, GridSearch, OptunaSearch], Field(discriminator="name")  # noqa: UP007
]


class SearchSpec(BaseModel):
    """The ``search:`` section: search space and how Ray Tune explores it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    space: dict[str, Distribution] = Field(
        min_length=1, description="Dotted spec path -> distribution, e.g. {choice: [4, 8]}."
    )
    metric: str | list[str] | None = Field(
        None,
        description="Metric to optimize, e.g. 'digit/accuracy' or 'parameters/trainable'; a "
        "list makes an Optuna search multi-objective (default: train.monitor, else 'loss').",
    )
    mode: Literal["max", "min"] | list[Literal["max", "min"]] | None = Field(
        None, description="max or min, one per metric (default: inferred from the metric name)."
    )
    num_samples: int | None = Field(
        None,
        ge=1,
        description="Trials to sample; with grid dimensions, repeats of the whole grid "
        "(default: 8, or 1 with search_alg grid).",
    )
    max_concurrent_trials: int | None = Field(
        None, ge=1, description="Trials running at once (default: as many as resources allow)."
    )
    time_budget_s: float | None = Field(
        None, gt=0, description="Seconds after which no trial starts and running ones stop."
    )
    resources_per_trial: Resources = Field(default_factory=Resources)
    scheduler: Scheduler = Field(default_factory=FifoScheduler)
    search_alg: SearchAlgorithm = Field(default_factory=RandomSearch)
    seed: int | None = Field(
        None, ge=0, description="Seed of the sampler (default: the spec's seed)."
    )
    max_failures: int = Field(
        1, ge=0, description="Restarts of a failed trial from its last checkpoint."
    )
    storage_path: str | None = Field(
        None,
        description="Folder of experiments; on a multi-node cluster a filesystem every node "
        "mounts at the same path (default: OUTPUT_DIR/tune).",
    )
    experiment_name: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$",
        description="Experiment folder name (default: NAME-tune-TIMESTAMP).",
    )
    address: str | None = Field(
        None,
        description="Ray cluster to join, e.g. 10.0.0.5:6379 (default: RAY_ADDRESS, else a "
        "local cluster).",
    )
    ray_temp_dir: str | None = Field(
        None, description="Temporary folder of a local Ray cluster (removed at the end)."
    )

    @model_validator(mode="after")
    def _check_objectives(self) -> SearchSpec:
        metrics = self.metrics()
        if isinstance(self.mode, list) and len(self.mode) != len(metrics or self.mode):
            raise ValueError(
                f"mode lists {len(self.mode)} values for {len(metrics)} metrics; give one "
                "mode per metric"
            )
        if len(metrics) > 1:
            if self.search_alg.name != "optuna":
                raise ValueError(
                    "several metrics need search_alg {name: optuna}, which searches for the "
                    "Pareto front of all of them"
                )
            if self.scheduler.name != "fifo":
                raise ValueError(
                    f"scheduler {self.scheduler.name!r} stops trials by one metric; use "
                    "scheduler {name: fifo} with several metrics"
                )
        return self

    def metrics(self) -> list[str]:
        """Return the metric names as a list (empty when the metric is left to the default)."""
        if self.metric is None:
            return []
        return [self.metric] if isinstance(self.metric, str) else list(self.metric)


def flatten_space(raw: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Join nested space mappings into dotted keys; a distribution mapping ends the descent."""
    flat: dict[str, Any] = {}
    for key, value in raw.items():
        path = f"{prefix}{key}"
        nested = (
            isinstance(value, Mapping)
            and len(value) >= 1
            and _distribution_tag(value) is None
            and all(isinstance(item, Mapping) for item in value.values())
        )
        if nested:
            flat.update(flatten_space(value, prefix=path + "."))
        else:
            flat[path] = value  # a distribution, or a malformed one that validation reports
    return flat


def validate_search(raw: Any, problems: list[str]) -> SearchSpec | None:
    """Validate the raw ``search:`` section; append one line per problem to ``problems``."""
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        problems.append(f"search: expected a section (mapping) (found {_short(raw)})")
        return None
    data = dict(raw)
    if isinstance(data.get("space"), Mapping):
        # A null value removes a dimension that an extended file or an earlier layer added.
        flat = flatten_space(data["space"])
        data["space"] = {path: value for path, value in flat.items() if value is not None}
        for path, value in data["space"].items():
            if isinstance(value, Mapping) and len(value) == 1:
                key = str(next(iter(value)))
                if key not in DISTRIBUTIONS:
                    hint = suggest(key, list(DISTRIBUTIONS))
                    problems.append(
                        f"search.space.{path}: unknown distribution {key!r}"
                        + (f"; {hint}" if hint else "")
                        + f" (choose one of {', '.join(DISTRIBUTIONS)})"
                    )
                    return None
    try:
        return SearchSpec.model_validate(data)
    except ValidationError as error:
        problems.extend(_format(error))
        return None


_UNION_TAGS = {"scheduler": ("fifo", "asha", "pbt"), "search_alg": ("random", "grid", "optuna")}


def _format(error: ValidationError) -> list[str]:
    lines = []
    for item in error.errors(include_url=False):
        parts: list[str] = []
        for part in item["loc"]:
            text = str(part)
            # pydantic puts the union member's tag into the location: a distribution name
            # that repeats the field after it, or the scheduler or search_alg name.
            if parts and (parts[-1] == text or text in _UNION_TAGS.get(parts[-1], ())):
                continue
            if text.startswith(("function-", "literal[", "tagged-union")):
                continue
            parts.append(text)
        if parts and parts[-1] in DISTRIBUTIONS and len(parts) >= 2 and parts[0] == "space":
            parts = parts[:-1]
        path = ".".join(["search", *parts])
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            known = list(SearchSpec.model_fields) if len(parts) == 1 else []
            hint = suggest(parts[-1], known) if known else ""
            message = "unknown field" + (f"; {hint}" if hint else "")
        elif item["type"] != "missing" and "(found " not in message and parts:
            message += f" (found {_short(item.get('input'))})"
        lines.append(f"{path}: {message}")
    return lines


def search_path_problems(search: SearchSpec, resolved: Mapping[str, Any]) -> list[str]:
    """Return a problem line for each space path that names nothing in the resolved spec.

    ``resolved`` is ``Spec.to_data()`` (its search section is left out), so fields left at
    their defaults count as present. A path below another space path whose values are mappings (a
    choice between components) is checked per trial instead, since it exists only for some
    of the choices.
    """
    known = set(_all_paths({key: value for key, value in resolved.items() if key != "search"}))
    component_paths = [
        path
        for path, dimension in search.space.items()
        if any(isinstance(value, Mapping) for value in _listed_values(dimension))
    ]
    problems = []
    for path in search.space:
        if path.split(".")[0] in ("name", "output_dir", "search"):
            problems.append(
                f"search.space.{path}: this path cannot be searched; search the seed or a "
                "field of data, model or train"
            )
            continue
        if path in known or any(path.startswith(other + ".") for other in component_paths):
            continue
        hint = suggest(path, sorted(known))
        parent = path.rpartition(".")[0]
        if not hint and parent in known:
            siblings = sorted(p.rpartition(".")[2] for p in known if p.rpartition(".")[0] == parent)
            hint = suggest(path.rpartition(".")[2], siblings)
        problems.append(
            f"search.space.{path}: no such field in the spec"
            + (f"; {hint}" if hint else "; `adaptlab show SPEC` lists every field")
        )
    return problems


def _listed_values(dimension: Any) -> list[Any]:
    if isinstance(dimension, Choice):
        return list(dimension.choice)
    if isinstance(dimension, Grid):
        return list(dimension.grid)
    return []


def _all_paths(data: Mapping[str, Any], prefix: str = "") -> list[str]:
    paths = []
    for key, value in data.items():
        path = f"{prefix}{key}"
        paths.append(path)
        if isinstance(value, Mapping):
            paths += _all_paths(value, prefix=path + ".")
    return paths


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _MAX_SHOWN else text[: _MAX_SHOWN - 3] + "..."
