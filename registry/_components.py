"""Registered components and the registry that looks them up."""

from __future__ import annotations

import difflib
import fnmatch
import importlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from adaptlab.core.contracts import COMPONENT_KINDS, ComponentKind
from adaptlab.core.errors import PluginError, RegistryError

__all__ = ["Component", "ComponentRegistry", "suggest"]


def suggest(name: str, candidates: list[str]) -> str:
    """Return a ``did you mean ...?`` hint for ``name`` among ``candidates``, or ``""``."""
    close = difflib.get_close_matches(name, candidates, n=3, cutoff=0.5)
    if not close:
        return ""
    return "did you mean " + " or ".join(repr(c) for c in close) + "?"


@dataclass(frozen=True)
class Component:
    """One registered component: its identity, configuration model and lazy factory."""

    kind: ComponentKind
    name: str
    plugin: str
    plugin_version: str
    config: type[BaseModel]
    summary: str
    factory: str | Callable[..., Any] = field(repr=False)

    @property
    def qualified_name(self) -> str:
        return f"{self.kind}:{self.name}"

    def load_factory(self) -> Callable[..., Any]:
        """Import and return the factory; an import failure names the plugin and the path."""
        if callable(self.factory):
            return self.factory
        module_name, _, attribute = self.factory.partition(":")
        try:
            module = importlib.import_module(module_name)
            target = module
            for part in attribute.split("."):
                target = getattr(target, part)
        except Exception as error:  # noqa: BLE001 - any import failure belongs to the plugin
            raise PluginError(
                self.plugin,
                f"cannot load the factory {self.factory!r} of {self.qualified_name}: "
                f"{type(error).__name__}: {error}",
            ) from error
        if not callable(target):
            raise PluginError(
                self.plugin, f"factory {self.factory!r} of {self.qualified_name} is not callable"
            )
        return target

    def build(self, config: BaseModel, **inputs: Any) -> Any:
        """Call the factory with a validated configuration and the kind's keyword inputs."""
        return self.load_factory()(config, **inputs)


class ComponentRegistry:
    """Components by kind and name, with the plugins that registered them.

    A name claimed by two plugins is kept as a conflict: looking it up raises an error naming
    both plugins, while every other component stays usable.
    """

    def __init__(self) -> None:
        self._components: dict[str, dict[str, Component]] = {kind: {} for kind in COMPONENT_KINDS}
        self._conflicts: dict[tuple[str, str], list[str]] = {}

    def add(self, component: Component) -> None:
        """Add ``component``; raise :class:`RegistryError` naming both plugins on a clash."""
        self._check_kind(component.kind)
        by_name = self._components[component.kind]
        key = (component.kind, component.name)
        if key in self._conflicts:
            self._conflicts[key].append(component.plugin)
            raise RegistryError(self._conflict_message(key))
        existing = by_name.get(component.name)
        if existing is not None:
            self._conflicts[key] = [existing.plugin, component.plugin]
            del by_name[component.name]
            raise RegistryError(self._conflict_message(key))
        by_name[component.name] = component

    def get(self, kind: str, name: str) -> Component:
        """Return the component ``kind:name`` or raise with the closest names."""
        self._check_kind(kind)
        if (kind, name) in self._conflicts:
            raise RegistryError(self._conflict_message((kind, name)))
        by_name = self._components[kind]
        if name in by_name:
            return by_name[name]
        known = sorted(by_name)
        hint = suggest(name, known)
        listing = ", ".join(known) if known else "no plugin that provides one is loaded"
        message = f"unknown {kind} {name!r}"
        message += f"; {hint}" if hint else f"; available: {listing}"
        message += " (run `adaptlab components " + kind + "` to list them)"
        raise RegistryError(message)

    def names(self, kind: str) -> list[str]:
        self._check_kind(kind)
        return sorted(self._components[kind])

    def find(self, kind: str | None = None, pattern: str = "*") -> list[Component]:
        """Return components whose name matches the shell-style ``pattern``, sorted."""
        kinds = COMPONENT_KINDS if kind is None else (kind,)
        found: list[Component] = []
        for each in kinds:
            self._check_kind(each)
            found += [
                component
                for name, component in sorted(self._components[each].items())
                if fnmatch.fnmatchcase(name, pattern)
            ]
        return found

    def conflicts(self) -> dict[tuple[str, str], list[str]]:
        return dict(self._conflicts)

    def __iter__(self) -> Iterator[Component]:
        for kind in COMPONENT_KINDS:
            yield from (self._components[kind][name] for name in sorted(self._components[kind]))

    def _conflict_message(self, key: tuple[str, str]) -> str:
        kind, name = key
        plugins = " and ".join(repr(p) for p in self._conflicts[key])
        return (
            f"{kind} {name!r} is registered by both plugins {plugins}; disable one of them "
            "with --disable-plugin NAME or ADAPTLAB_DISABLE_PLUGINS=NAME"
        )

    @staticmethod
    def _check_kind(kind: str) -> None:
        if kind not in COMPONENT_KINDS:
            hint = suggest(kind, list(COMPONENT_KINDS))
            raise RegistryError(
                f"unknown component kind {kind!r}; "
                + (hint + " " if hint else "")
                + "kinds are: "
                + ", ".join(COMPONENT_KINDS)
            )
