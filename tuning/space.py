"""Search spaces: from the spec's ``search.space`` to Ray Tune domains, trial values and specs.

A choice whose values are all scalars reaches Ray Tune as those values. A choice that lists
mappings or lists (a choice between whole components, such as ``{name: lora, r: 8}`` and
``{name: dora, r: 4}``) reaches it as the indices ``0 .. n-1``, because Optuna's categorical
distributions accept scalars only. :func:`decode` turns a Ray config back into spec values.

Every trial spec is the resolved base spec with the sampled values set at their dotted paths,
validated by the same models as ``adaptlab train`` (:func:`adaptlab.core.spec.validate_spec`).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from adaptlab.core.errors import SpecError
from adaptlab.core.spec import Spec, merge, validate_spec
from adaptlab.core.spec._search import SearchSpec
from adaptlab.registry import Registry

__all__ = [
    "Dimension",
    "check_space",
    "decode",
    "dimensions",
    "format_value",
    "format_values",
    "ray_param_space",
    "sample_values",
    "trial_data",
    "trial_spec",
]

_SCALARS = (type(None), bool, int, float, str)


@dataclass(frozen=True)
class Dimension:
    """One searched path: its distribution kind, its listed values or its bounds."""

    path: str
    kind: str
    values: tuple[Any, ...] = ()
    bounds: tuple[float, ...] = ()

    @property
    def encoded(self) -> bool:
        """Whether Ray Tune receives indices instead of the listed values."""
        return bool(self.values) and not all(isinstance(v, _SCALARS) for v in self.values)

    def grid_values(self) -> list[Any] | None:
        """Return every value a grid search tries, or ``None`` for a continuous range."""
        if self.values:
            return list(self.values)
        if self.kind == "randint":
            low, high = (int(b) for b in self.bounds)
            return list(range(low, high + 1))
        if self.kind in ("qrandint", "quniform"):
            low, high, q = self.bounds
            first = math.ceil(low / q - 1e-9)
            last = math.floor(high / q + 1e-9)
            values = [k * q for k in range(first, last + 1)]
            return [int(v) for v in values] if self.kind == "qrandint" else values
        return None

    def edge_values(self) -> list[Any]:
        """Return values that bound this dimension: every listed value, or both range ends."""
        grid = self.grid_values()
        if grid is not None and (self.values or len(grid) <= 2):
            return grid
        if grid is not None:
            return [grid[0], grid[-1]]
        return [self.bounds[0], self.bounds[1]]


def dimensions(search: SearchSpec) -> list[Dimension]:
    """Return the dimensions of ``search.space`` in the order the spec lists them."""
    result = []
    for path, distribution in search.space.items():
        kind = next(iter(type(distribution).model_fields))
        raw = getattr(distribution, kind)
        if kind in ("choice", "grid"):
            result.append(Dimension(path, kind, values=tuple(raw)))
        else:
            result.append(Dimension(path, kind, bounds=tuple(raw)))
    return result


def ray_param_space(dims: Iterable[Dimension], *, grid_all: bool = False) -> dict[str, Any]:
    """Return Ray Tune's ``param_space``, keyed by dotted path.

    ``grid_all`` (search algorithm ``grid``) turns every dimension into a grid search and
    raises :class:`SpecError` for a continuous range, which has no finite set of values.
    """
    from ray import tune

    space: dict[str, Any] = {}
    for dim in dims:
        listed = list(range(len(dim.values))) if dim.encoded else list(dim.values)
        if grid_all:
            values = listed if dim.values else dim.grid_values()
            if values is None:
                raise SpecError(
                    f"search.space.{dim.path}: search_alg grid cannot enumerate a {dim.kind} "
                    "range; use choice, grid, randint, qrandint or quniform, or search_alg "
                    "random"
                )
            space[dim.path] = tune.grid_search(values)
        elif dim.kind == "choice":
            space[dim.path] = tune.choice(listed)
        elif dim.kind == "grid":
            space[dim.path] = tune.grid_search(listed)
        elif dim.kind == "uniform":
            space[dim.path] = tune.uniform(*dim.bounds)
        elif dim.kind == "loguniform":
            space[dim.path] = tune.loguniform(*dim.bounds)
        elif dim.kind == "randint":
            # Ray's randint excludes the upper bound; the spec's includes it.
            space[dim.path] = tune.randint(int(dim.bounds[0]), int(dim.bounds[1]) + 1)
        elif dim.kind == "quniform":
            space[dim.path] = tune.quniform(*dim.bounds)
        elif dim.kind == "qrandint":
            space[dim.path] = tune.qrandint(*(int(b) for b in dim.bounds))
        else:
            raise ValueError(f"unknown distribution kind {dim.kind!r}")
    return space


def decode(config: Mapping[str, Any], dims: Iterable[Dimension]) -> dict[str, Any]:
    """Return ``{path: spec value}`` for the dimensions' keys of a Ray Tune trial config."""
    values = {}
    for dim in dims:
        if dim.path not in config:
            continue
        value = config[dim.path]
        if dim.encoded:
            value = copy.deepcopy(dim.values[int(value)])
        elif isinstance(value, float) and value.is_integer() and dim.kind == "qrandint":
            value = int(value)
        elif hasattr(value, "item"):  # numpy scalars from Ray's samplers
            value = value.item()
        values[dim.path] = value
    return values


def sample_values(
    dims: list[Dimension], count: int, seed: int, *, grid_all: bool = False
) -> list[dict[str, Any]]:
    """Sample ``count`` configurations the way Ray's BasicVariantGenerator does.

    Grid dimensions are expanded in every sample, so the result has ``count`` times the grid
    size entries. Used by the dry run and by the check before Ray starts; Optuna's own
    sampler is not consulted.
    """
    import numpy as np
    from ray.tune.search.variant_generator import generate_variants

    space = ray_param_space(dims, grid_all=grid_all)
    random_state = np.random.RandomState(seed)
    configs = []
    for _ in range(count):
        for _, resolved in generate_variants(space, random_state=random_state):
            configs.append(decode(resolved, dims))
    return configs


def trial_data(
    base: Mapping[str, Any], values: Mapping[str, Any], output_dir: str | Path | None = None
) -> dict[str, Any]:
    """Return spec data: ``base`` with each sampled value set at its dotted path.

    Shorter paths are set first, so a component chosen at ``model.adapter`` receives the
    values of its fields searched below it. A mapping value merges into the section like an
    override: naming another component replaces the section's settings.
    """
    data = copy.deepcopy(dict(base))
    data.pop("search", None)
    for path in sorted(values, key=lambda p: p.count(".")):
        _assign(data, path, values[path])
    if output_dir is not None:
        data["output_dir"] = str(output_dir)
    return data


def _assign(data: dict[str, Any], path: str, value: Any) -> None:
    parts = path.split(".")
    node = data
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = node[part] = {}
        node = child
    # merge() one level up, so that naming another component replaces the whole section.
    node.update(merge({parts[-1]: node.get(parts[-1])}, {parts[-1]: copy.deepcopy(value)}))


def trial_spec(
    base: Mapping[str, Any],
    values: Mapping[str, Any],
    registry: Registry,
    output_dir: str | Path | None = None,
) -> Spec:
    """Return the validated spec of one trial; raise :class:`SpecError` naming its values."""
    data = trial_data(base, values, output_dir)
    try:
        return validate_spec(data, registry=registry)
    except SpecError as error:
        raise SpecError(
            [f"trial ({format_values(values)}): {problem}" for problem in error.problems]
        ) from None


def check_space(
    base: Mapping[str, Any],
    dims: list[Dimension],
    registry: Registry,
    samples: list[dict[str, Any]],
) -> list[str]:
    """Validate trial specs before Ray starts; return one line per invalid trial spec.

    Checked are every listed value and both ends of every range (each set alone, the other
    dimensions at their first sampled value), then each of ``samples``. Combinations that no
    sample met are validated again when their trial starts.
    """
    problems: list[str] = []
    seen: set[str] = set()
    reference = samples[0] if samples else {}
    candidates: list[dict[str, Any]] = []
    for dim in dims:
        for value in dim.edge_values():
            candidates.append({**reference, dim.path: value})
    candidates += samples
    for values in candidates:
        key = repr(sorted(values.items(), key=lambda item: item[0]))
        if key in seen:
            continue
        seen.add(key)
        try:
            trial_spec(base, values, registry)
        except SpecError as error:
            for problem in error.problems:
                if problem not in problems:
                    problems.append(problem)
    return problems


def format_value(value: Any) -> str:
    """Render a sampled value compactly: ``0.0031``, ``{name: dora, r: 4}``."""
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k}: {format_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(format_value(v) for v in value) + "]"
    return str(value)


def format_values(values: Mapping[str, Any]) -> str:
    """Render ``{path: value}`` as ``path=value, ...``."""
    return ", ".join(f"{path}={format_value(value)}" for path, value in values.items())
