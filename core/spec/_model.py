"""The spec language: validated models of a whole spec.

Validation runs in two stages and reports the problems of both at once. The first stage checks
the fixed layout (sections, seed, output folder). The second looks up each component section's
``name:`` (``recipe:`` for ``train``) in the registry and validates the rest of the section with
that component's own configuration model.
"""

from __future__ import annotations

import re
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from adaptlab.core.errors import RegistryError, SpecError
from adaptlab.core.spec._files import apply_overrides, load_spec_data
from adaptlab.core.spec._search import SearchSpec, search_path_problems, validate_search
from adaptlab.registry import Registry, get_registry, suggest

__all__ = ["ComponentRef", "ModelSpec", "Spec", "load_spec", "validate_spec"]

_MAX_SHOWN = 60


class ComponentRef(BaseModel):
    """A component chosen in a spec, with its validated configuration."""

    model_config = ConfigDict(arbitrary_types_allowed=True, frozen=True)

    kind: str
    name: str
    config: Any
    discriminator: str = "name"

    def to_data(self) -> dict[str, Any]:
        return {self.discriminator: self.name, **self.config.model_dump(mode="json")}


class ModelSpec(BaseModel):
    """The ``model:`` section: what is composed into one trainable module."""

    model_config = ConfigDict(frozen=True)

    backbone: ComponentRef | None = None
    adapter: ComponentRef | None = None
    heads: dict[str, ComponentRef]
    policy: ComponentRef | None = None
    graph_encoder: ComponentRef | None = None


class Spec(BaseModel):
    """A fully validated spec."""

    model_config = ConfigDict(frozen=True)

    seed: int
    name: str | None
    output_dir: str
    data: ComponentRef
    model: ModelSpec
    train: ComponentRef
    search: SearchSpec | None = None
    source: str | None = None

    def to_data(self) -> dict[str, Any]:
        """Return the resolved spec as plain data, defaults included, ready for YAML.

        The ``search:`` section, read only by ``adaptlab tune``, is included when present.
        """
        model: dict[str, Any] = {}
        for section in ("backbone", "adapter", "policy", "graph_encoder"):
            ref = getattr(self.model, section)
            model[section] = ref.to_data() if ref is not None else None
        model["heads"] = {task: ref.to_data() for task, ref in self.model.heads.items()}
        data = {
            "seed": self.seed,
            "name": self.name,
            "output_dir": self.output_dir,
            "data": self.data.to_data(),
            "model": model,
            "train": self.train.to_data(),
        }
        if self.search is not None:
            data["search"] = self.search.model_dump(mode="json", exclude_none=True)
        return data


_RUN_NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"


class _Layout(BaseModel):
    """First validation stage: the fixed sections, components left as mappings."""

    model_config = ConfigDict(extra="forbid")

    class _Model(BaseModel):
        model_config = ConfigDict(extra="forbid")

        backbone: dict[str, Any] | None = None
        adapter: dict[str, Any] | None = None
        heads: dict[str, dict[str, Any]] = Field(min_length=1)
        policy: dict[str, Any] | None = None
        graph_encoder: dict[str, Any] | None = None

    seed: int = Field(
        0, ge=0, strict=True, description="Seed of every random number generator of the run."
    )
    name: str | None = Field(
        None, pattern=_RUN_NAME, description="Run name; the run folder is NAME-TIMESTAMP."
    )
    output_dir: str = Field("runs", description="Folder receiving run folders.")
    data: dict[str, Any]
    model: _Model
    train: dict[str, Any]
    search: Any = None  # validated by validate_search


_SECTIONS: tuple[tuple[str, str, str], ...] = (
    # (dotted path, component kind, discriminator key)
    ("data", "dataset", "name"),
    ("model.backbone", "backbone", "name"),
    ("model.adapter", "adapter", "name"),
    ("model.policy", "policy", "name"),
    ("model.graph_encoder", "graph_encoder", "name"),
    ("train", "recipe", "recipe"),
)


def load_spec(
    path: str | Path, overrides: list[str] | tuple[str, ...] = (), registry: Registry | None = None
) -> Spec:
    """Read, compose, override and validate the spec at ``path``."""
    data = load_spec_data(path)
    return validate_spec(data, overrides=overrides, registry=registry, source=str(path))


def validate_spec(
    data: Mapping[str, Any],
    overrides: list[str] | tuple[str, ...] = (),
    registry: Registry | None = None,
    source: str | None = None,
) -> Spec:
    """Validate plain spec data; raise :class:`SpecError` listing every problem."""
    registry = registry or get_registry()
    data, origins = apply_overrides(dict(data), overrides)
    model = data.get("model")
    if isinstance(model, Mapping) and isinstance(model.get("heads"), Mapping):
        # A head set to null (in a child file or an override) removes an inherited head.
        data["model"] = {
            **model,
            "heads": {task: ref for task, ref in model["heads"].items() if ref is not None},
        }
    problems: list[str] = []
    try:
        layout = _Layout.model_validate(data)
    except ValidationError as error:
        problems += _format_errors(error, prefix="", model=_Layout, origins=origins)
        layout = None

    refs: dict[str, ComponentRef | None] = {}
    for path, kind, key in _SECTIONS:
        section = _lookup(data, path)
        if section is None or not isinstance(section, Mapping):
            refs[path] = None
            continue
        refs[path] = _validate_component(
            section, path, kind, key, registry, problems, origins
        )
    heads: dict[str, ComponentRef] = {}
    raw_heads = _lookup(data, "model.heads")
    if isinstance(raw_heads, Mapping):
        for task, section in raw_heads.items():
            if isinstance(section, Mapping):
                ref = _validate_component(
                    section, f"model.heads.{task}", "head", "name", registry, problems, origins
                )
                if ref is not None:
                    heads[str(task)] = ref

    if isinstance(data.get("model"), Mapping):
        has_backbone = data["model"].get("backbone") is not None
        has_encoder = data["model"].get("graph_encoder") is not None
        if has_backbone == has_encoder:
            problems.append(
                "model: set exactly one of model.backbone (images, sequences) and "
                "model.graph_encoder (graphs)"
                + (" (found both)" if has_backbone else " (found neither)")
            )
    dataset = refs.get("data")
    if dataset is not None and heads:
        problems += _check_tasks(dataset, heads)
    if refs.get("train") is not None and heads:
        problems += _check_monitor(refs["train"], heads, origins)
    if dataset is not None and refs.get("train") is not None:
        problems += _check_dataset_monitor(dataset, refs["train"], origins, heads)
    search = validate_search(data.get("search"), problems)

    if problems or layout is None:
        raise SpecError(problems, source=source)
    spec = Spec(
        seed=layout.seed,
        name=layout.name,
        output_dir=layout.output_dir,
        data=refs["data"],
        model=ModelSpec(
            backbone=refs["model.backbone"],
            adapter=refs["model.adapter"],
            heads=heads,
            policy=refs["model.policy"],
            graph_encoder=refs["model.graph_encoder"],
        ),
        train=refs["train"],
        search=search,
        source=source,
    )
    if search is not None:
        problems = search_path_problems(search, spec.to_data())
        if problems:
            raise SpecError(problems, source=source)
    return spec


def _validate_component(
    section: Mapping[str, Any],
    path: str,
    kind: str,
    key: str,
    registry: Registry,
    problems: list[str],
    origins: Mapping[str, str],
) -> ComponentRef | None:
    name = section.get(key)
    if name is None:
        names = ", ".join(registry.names(kind)) or "no plugin that provides one is loaded"
        problems.append(f"{path}.{key}: missing; choose the {kind} (available: {names})")
        return None
    try:
        component = registry.get(kind, str(name))
    except RegistryError as error:
        problems.append(f"{path}.{key}: {error}" + _origin(f"{path}.{key}", origins))
        return None
    settings = {k: v for k, v in section.items() if k != key}
    try:
        config = component.config.model_validate(settings)
    except ValidationError as error:
        problems += _format_errors(error, prefix=path, model=component.config, origins=origins)
        return None
    return ComponentRef(kind=kind, name=str(name), config=config, discriminator=key)


def _check_tasks(dataset: ComponentRef, heads: Mapping[str, ComponentRef]) -> list[str]:
    declared = getattr(dataset.config, "task_names", None)
    if not callable(declared):
        return []
    tasks = list(declared())
    problems = []
    for task in heads:
        if task not in tasks:
            hint = suggest(task, tasks)
            problems.append(
                f"model.heads.{task}: dataset {dataset.name!r} has no task {task!r}"
                + (f"; {hint}" if hint else "")
                + f" (its tasks: {', '.join(tasks)})"
            )
    return problems


def _check_monitor(
    recipe: ComponentRef, heads: Mapping[str, ComponentRef], origins: Mapping[str, str]
) -> list[str]:
    """Check a recipe's ``monitor: TASK/METRIC`` against the heads and their declared metrics.

    Heads declare metrics through an optional classmethod ``metric_names()`` on their
    configuration class; a head without it is not checked here but when training evaluates.
    """
    monitor = getattr(recipe.config, "monitor", None)
    if not isinstance(monitor, str) or "/" not in monitor:
        return []
    origin = _origin("train.monitor", origins)
    task, _, metric = monitor.partition("/")
    if task not in heads:
        hint = suggest(task, list(heads))
        return [
            f"train.monitor: no head for task {task!r} in {monitor!r}"
            + (f"; {hint}" if hint else f" (tasks with heads: {', '.join(heads)})")
            + origin
        ]
    head = heads[task]
    declared = getattr(head.config, "metric_names", None)
    if not callable(declared):
        return []
    names = list(declared())
    if metric in names or metric == "loss":  # the trainer reports every task's loss
        return []
    hint = suggest(metric, names)
    return [
        f"train.monitor: head {head.name!r} of task {task!r} reports no metric {metric!r}"
        + (f"; {hint}" if hint else "")
        + f" (its metrics: {', '.join(names)})"
        + origin
    ]


def _check_dataset_monitor(
    dataset: ComponentRef,
    recipe: ComponentRef,
    origins: Mapping[str, str],
    heads: Mapping[str, ComponentRef] | None = None,
) -> list[str]:
    """Let the dataset judge a ``train.monitor`` without ``/``, such as a derived ``delta_m``.

    A dataset configuration may define ``check_monitor(name) -> str | None``, returning why
    the dataset cannot report ``name`` (for example missing single-task baselines) or None.
    Where it accepts the keywords ``tasks`` (the tasks of model.heads) and ``mode``
    (train.mode), they are passed too.
    """
    import inspect

    monitor = getattr(recipe.config, "monitor", None)
    if not isinstance(monitor, str) or "/" in monitor or monitor == "loss":
        return []
    check = getattr(dataset.config, "check_monitor", None)
    if callable(check):
        accepted = inspect.signature(check).parameters
        extra: dict[str, Any] = {}
        if "tasks" in accepted and heads is not None:
            extra["tasks"] = list(heads)
        if "mode" in accepted:
            extra["mode"] = getattr(recipe.config, "mode", None)
        problem = check(monitor, **extra)
    else:
        problem = (
            f"dataset {dataset.name!r} derives no metric {monitor!r}; monitor 'loss' or "
            "'TASK/METRIC'"
        )
    return [f"train.monitor: {problem}" + _origin("train.monitor", origins)] if problem else []


def _lookup(data: Mapping[str, Any], path: str) -> Any:
    node: Any = data
    for part in path.split("."):
        if not isinstance(node, Mapping):
            return None
        node = node.get(part)
    return node


def _origin(path: str, origins: Mapping[str, str]) -> str:
    for candidate, text in origins.items():
        if path == candidate or path.startswith(candidate + ".") or candidate.startswith(path + "."):
            return f" [set by override {text!r}]"
    return ""


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _MAX_SHOWN else text[: _MAX_SHOWN - 3] + "..."


# Location parts that pydantic adds for union members and validator wrappers rather than for
# fields, e.g. ('target_modules', 'list[str]', 0) or ('hidden', 'function-after[...]').
_NOT_A_FIELD = re.compile(
    r"^(str|int|float|bool|bytes|none|list|dict|tuple|set|frozenset|literal|union|"
    r"function-[a-z]+|lax-or-strict|json-or-python|tagged-union|is-instance|chain)(\[.*)?$"
    r"|\[",
    re.IGNORECASE,
)


def _field_path(loc: tuple[Any, ...]) -> list[str]:
    return [str(part) for part in loc if not _NOT_A_FIELD.search(str(part))]


def _format_errors(
    error: ValidationError, prefix: str, model: type[BaseModel], origins: Mapping[str, str]
) -> list[str]:
    """Turn pydantic errors into one line per path: path, problem, value found, expectation.

    A value rejected by every member of a union yields one error per member; those are joined
    into one line listing what each member expected.
    """
    grouped: dict[str, list[dict[str, Any]]] = {}
    for item in error.errors(include_url=False):
        loc = _field_path(item["loc"])
        path = ".".join(filter(None, [prefix, *loc])) or "(top level)"
        grouped.setdefault(path, []).append({**item, "loc": loc})
    lines = []
    for path, items in grouped.items():
        first = items[0]
        loc, kind = first["loc"], first["type"]
        if kind == "missing" and model is _Layout and len(loc) == 1:
            message = "missing required section"
        elif kind == "missing":
            message = "missing required field"
            expected = _field_type(model, loc)
            if expected:
                message += f" (expected {expected})"
        elif kind == "extra_forbidden":
            known = _field_names(model, loc[:-1])
            hint = suggest(loc[-1], known)
            message = "unknown field"
            if hint:
                message += f"; {hint}"
            elif known:
                message += f"; valid fields: {', '.join(known)}"
        else:
            reasons = list(dict.fromkeys(_reason(item["msg"]) for item in items))
            reasons[1:] = [reason.removeprefix("Input should be ") for reason in reasons[1:]]
            message = " or ".join(reasons) + f" (found {_short(first.get('input'))})"
        lines.append(f"{path}: {message}{_origin(path, origins)}")
    return lines


def _reason(message: str) -> str:
    return message.removeprefix("Value error, ").removeprefix("Assertion failed, ")


def _model_at(model: type[BaseModel], loc: list[str]) -> type[BaseModel] | None:
    """Follow field annotations of ``model`` along ``loc``; ``None`` when it leaves models."""
    current: Any = model
    for part in loc:
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return None
        field = current.model_fields.get(part)
        if field is None:
            return None
        current = _unwrap(field.annotation)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _unwrap(annotation: Any) -> Any:
    for argument in typing.get_args(annotation) or ():
        if isinstance(argument, type) and issubclass(argument, BaseModel):
            return argument
    return annotation


def _field_names(model: type[BaseModel], loc: list[str]) -> list[str]:
    target = _model_at(model, loc)
    return sorted(target.model_fields) if target is not None else []


def _field_type(model: type[BaseModel], loc: list[str]) -> str:
    target = _model_at(model, loc[:-1])
    if target is None or loc[-1] not in target.model_fields:
        return ""
    return _type_name(target.model_fields[loc[-1]].annotation)


def _type_name(annotation: Any) -> str:
    """Render a type annotation the way a spec author reads it: ``int | None``, ``'a' | 'b'``."""
    origin = typing.get_origin(annotation)
    arguments = typing.get_args(annotation)
    if origin is Literal:
        return " | ".join(repr(a) for a in arguments)
    if origin in (typing.Union, types.UnionType):
        return " | ".join(_type_name(a) for a in arguments)
    if origin is typing.Annotated:
        return _type_name(arguments[0])
    if origin is dict:
        return "a mapping"
    if origin is not None:
        inner = ", ".join(_type_name(a) for a in arguments)
        return f"{getattr(origin, '__name__', str(origin))}[{inner}]"
    if annotation is type(None):
        return "None"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "a section (mapping)"
    if annotation is Any:
        return "any value"
    if isinstance(annotation, type):
        return annotation.__name__
    return str(annotation).replace("typing.", "")
