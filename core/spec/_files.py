"""Reading spec files: safe YAML, ``extends:`` composition and ``dotted.path=value`` overrides.

Everything here works on plain data (dicts, lists, scalars). YAML is read with a safe loader,
so a spec can never construct Python objects or run code.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from adaptlab.core.errors import SpecError

__all__ = ["DISCRIMINATORS", "apply_overrides", "load_spec_data", "merge", "parse_override"]

logger = logging.getLogger(__name__)

# Keys that choose the component of a section. When a later layer names another component,
# the earlier layer's settings for the section are dropped instead of merged.
DISCRIMINATORS = ("name", "recipe")


class _StrictSafeLoader(yaml.SafeLoader):
    """A safe loader that rejects duplicate keys instead of keeping the last one."""


def _construct_mapping(loader: _StrictSafeLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    mapping: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in mapping:
            raise yaml.constructor.ConstructorError(
                "while reading a mapping",
                node.start_mark,
                f"found duplicate key {key!r}",
                key_node.start_mark,
            )
        mapping[key] = loader.construct_object(value_node, deep=True)
    return mapping


_StrictSafeLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping
)


def read_yaml(path: Path) -> dict[str, Any]:
    """Read one spec file; its top level must be a mapping."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError(f"file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as error:
        raise SpecError(f"cannot read {path}: {error}") from None
    try:
        data = yaml.load(text, Loader=_StrictSafeLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        problem = error.problem or "invalid syntax"
        if "'\\t'" in problem:
            problem += "; indent with spaces, YAML does not allow tabs there"
        raise SpecError(f"{where}: malformed YAML: {problem}") from None
    except yaml.YAMLError as error:
        raise SpecError(f"{path}: malformed YAML: {error}") from None
    if data is None:
        return {}
    _check_size(data, path)
    if not isinstance(data, dict):
        raise SpecError(
            f"{path}: the top level must be a mapping of sections (found {type(data).__name__})"
        )
    return data


MAX_VALUES = 100_000


def _check_size(data: Any, path: Path) -> None:
    """Reject documents that expand to more than MAX_VALUES values.

    YAML aliases are shared when loaded, but merging and validation copy them, so a few nested
    aliases ("billion laughs") would otherwise take minutes and gigabytes.
    """
    pending = [data]
    seen = 0
    while pending:
        value = pending.pop()
        seen += 1
        if seen > MAX_VALUES:
            raise SpecError(
                f"{path}: the spec expands to more than {MAX_VALUES:,} values; "
                "remove nested YAML aliases (*name) or split the spec"
            )
        if isinstance(value, dict):
            pending.extend(value.values())
        elif isinstance(value, list):
            pending.extend(value)


def merge(base: Mapping[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """Deep-merge ``update`` onto ``base``; lists and scalars in ``update`` replace."""
    merged = dict(base)
    for key, value in update.items():
        previous = merged.get(key)
        if isinstance(previous, Mapping) and isinstance(value, Mapping):
            if _switches_component(previous, value):
                merged[key] = dict(value)
            else:
                merged[key] = merge(previous, value)
        else:
            merged[key] = value
    return merged


def _switches_component(previous: Mapping[str, Any], value: Mapping[str, Any]) -> bool:
    return any(
        key in previous and key in value and previous[key] != value[key] for key in DISCRIMINATORS
    )


def load_spec_data(path: str | Path) -> dict[str, Any]:
    """Read ``path`` and every file it ``extends:``, merged into one mapping."""
    return _load(Path(path).expanduser().resolve(), stack=())


def _load(path: Path, stack: tuple[Path, ...]) -> dict[str, Any]:
    if path in stack:
        chain = " -> ".join(str(p) for p in (*stack, path))
        raise SpecError(f"extends: cycle detected: {chain}; remove one of these extends entries")
    data = read_yaml(path)
    parents = data.pop("extends", None)
    if parents is None:
        return data
    if isinstance(parents, str):
        parents = [parents]
    if not isinstance(parents, list) or not all(isinstance(p, str) for p in parents):
        raise SpecError(
            f"{path}: extends: expected a file path or a list of file paths (found {parents!r})"
        )
    combined: dict[str, Any] = {}
    for parent in parents:
        parent_path = (path.parent / Path(parent).expanduser()).resolve()
        if not parent_path.is_file():
            raise SpecError(
                f"{path}: extends: file not found: {parent!r} (looked for {parent_path}); "
                "paths are relative to the including file"
            )
        combined = merge(combined, _load(parent_path, (*stack, path)))
    return merge(combined, data)


def parse_override(text: str) -> tuple[str, Any]:
    """Split ``dotted.path=value``; the value is parsed as YAML (``8``, ``null``, ``[1, 2]``)."""
    path, sep, raw = text.partition("=")
    path = path.strip()
    if not sep or not path or any(not part for part in path.split(".")):
        raise SpecError(f"invalid override {text!r}: expected dotted.path=value, e.g. train.epochs=3")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return path, value


def apply_overrides(data: dict[str, Any], overrides: Iterable[str]) -> tuple[dict[str, Any], dict[str, str]]:
    """Apply overrides onto a copy of ``data``.

    Returns the new mapping and, for each overridden dotted path, the override text, so that
    validation errors can say which override produced the value. Intermediate mappings are
    created when missing; whether the path exists is decided by validation, which knows every
    field, including those left at their defaults.
    """
    result = merge({}, data)
    origins: dict[str, str] = {}
    problems: list[str] = []
    for text in overrides:
        path, value = parse_override(text)
        node: dict[str, Any] = result
        parts = path.split(".")
        for depth, part in enumerate(parts[:-1]):
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            elif not isinstance(child, dict):
                prefix = ".".join(parts[: depth + 1])
                problems.append(
                    f"override {text!r}: {prefix} is {child!r}, not a section, so it has no "
                    f"field {parts[depth + 1]!r}"
                )
                break
            node = child
        else:
            last = parts[-1]
            previous = node.get(last)
            switches = len(parts) > 1 and last in DISCRIMINATORS
            if switches and previous is not None and previous != value:
                dropped = sorted(k for k in node if k != last)
                if dropped:
                    logger.info(
                        "override %s switches the component; dropping its settings %s",
                        text,
                        ", ".join(dropped),
                    )
                node.clear()
            if isinstance(previous, dict) and isinstance(value, dict):
                node[last] = merge(previous, value)
            else:
                node[last] = value
            origins[path] = text
    if problems:
        raise SpecError(problems)
    return result, origins
