"""Plugin discovery through entry points and component registration through pluggy.

Plugins are the entry points of the ``adaptlab`` group. Which of them load is decided by
:class:`PluginSelection`, read from the environment or set by the CLI:

``ADAPTLAB_PLUGINS=a,b``
    load only these entry points (the allow-list wins over autoload settings);
``ADAPTLAB_DISABLE_PLUGIN_AUTOLOAD=1``
    load no entry point unless the allow-list names it;
``ADAPTLAB_DISABLE_PLUGINS=a,b``
    never load these.

A plugin that fails to import, targets another major hook API or raises inside a hook is
recorded with its error and contributes no component; every other plugin keeps working.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import metadata
from types import ModuleType
from typing import Any

import pluggy

from adaptlab.core import hookspecs
from adaptlab.core.contracts import COMPONENT_KINDS, ComponentKind
from adaptlab.core.errors import RegistryError
from adaptlab.registry._components import Component, ComponentRegistry

__all__ = ["Command", "PluginRecord", "PluginSelection", "Registry", "load_registry"]

logger = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "adaptlab"

HOOK_FOR_KIND: dict[ComponentKind, str] = {
    "backbone": "adaptlab_register_backbones",
    "adapter": "adaptlab_register_adapters",
    "head": "adaptlab_register_heads",
    "policy": "adaptlab_register_policies",
    "graph_encoder": "adaptlab_register_graph_encoders",
    "dataset": "adaptlab_register_datasets",
    "recipe": "adaptlab_register_recipes",
}


COMMAND_HOOK = "adaptlab_register_commands"

# Subcommands of the core CLI, which no plugin may take.
BUILTIN_COMMANDS = frozenset(
    {"plugins", "components", "describe", "validate", "show", "schema", "train", "evaluate"}
)


@dataclass(frozen=True)
class Command:
    """An ``adaptlab`` subcommand registered by a plugin (hook API 1.1)."""

    name: str
    plugin: str
    summary: str
    arguments: Any = field(repr=False)
    run: Any = field(repr=False)

    def load_run(self) -> Any:
        """Return the command's run callable, importing a ``"module:attribute"`` path."""
        if callable(self.run):
            return self.run
        import importlib

        from adaptlab.core.errors import PluginError

        module_name, _, attribute = self.run.partition(":")
        try:
            target: Any = importlib.import_module(module_name)
            for part in attribute.split("."):
                target = getattr(target, part)
        except Exception as error:  # noqa: BLE001 - any import failure belongs to the plugin
            raise PluginError(
                self.plugin,
                f"cannot load command {self.name!r} ({self.run!r}): {type(error).__name__}: {error}",
            ) from error
        return target


def _split_names(value: str | None) -> list[str]:
    return [name.strip() for name in (value or "").split(",") if name.strip()]


@dataclass
class PluginSelection:
    """Selection of the entry-point plugins to load."""

    autoload: bool = True
    only: list[str] | None = None
    disabled: list[str] = field(default_factory=list)

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> PluginSelection:
        environ = os.environ if environ is None else environ
        only = _split_names(environ.get("ADAPTLAB_PLUGINS")) or None
        autoload = environ.get("ADAPTLAB_DISABLE_PLUGIN_AUTOLOAD", "").strip().lower() not in (
            "1",
            "true",
            "yes",
        )
        return cls(
            autoload=autoload,
            only=only,
            disabled=_split_names(environ.get("ADAPTLAB_DISABLE_PLUGINS")),
        )

    def wants(self, name: str) -> bool:
        if name in self.disabled:
            return False
        if self.only is not None:
            return name in self.only
        return self.autoload


@dataclass
class PluginRecord:
    """Record of one plugin, as ``adaptlab plugins`` lists it."""

    name: str
    version: str
    module: str
    hook_api: str | None = None
    components: list[str] = field(default_factory=list)
    error: str | None = None

    @property
    def loaded(self) -> bool:
        return self.error is None


class Registry(ComponentRegistry):
    """The component registry together with the record of every plugin considered."""

    def __init__(self) -> None:
        super().__init__()
        self.plugins: dict[str, PluginRecord] = {}
        self.commands: dict[str, Command] = {}
        self.problems: list[str] = []
        self._manager = pluggy.PluginManager(hookspecs.PROJECT_NAME)
        self._manager.add_hookspecs(hookspecs)

    def add_plugin(self, name: str, module: ModuleType | Any, version: str = "0") -> PluginRecord:
        """Register every component that the plugin ``module`` provides under ``name``.

        Failures are recorded on the returned record and in ``problems``, never raised, so a
        broken plugin cannot take the others down.
        """
        record = PluginRecord(
            name=name,
            version=version,
            module=getattr(module, "__name__", type(module).__name__),
            hook_api=getattr(module, "ADAPTLAB_HOOK_API", None),
        )
        self.plugins[name] = record
        api_problem = _hook_api_problem(record.hook_api)
        if api_problem:
            self._fail(record, api_problem)
            return record
        unknown = _unknown_hooks(module)
        if unknown:
            self._fail(record, unknown)
            return record
        try:
            self._manager.register(module, name=name)
        except (ValueError, pluggy.PluginValidationError) as error:
            self._fail(record, f"invalid hook implementation: {error}")
            return record
        staged: list[Component] = []
        commands: list[Command] = []
        try:
            for kind in COMPONENT_KINDS:
                self._call_hook(name, version, kind, staged)
            self._call_command_hook(name, commands)
        except Exception as error:  # noqa: BLE001 - a plugin's own bug must not stop the rest
            self._manager.unregister(name=name)
            self._fail(record, f"raised inside a hook: {type(error).__name__}: {error}")
            return record
        for component in staged:
            try:
                self.add(component)
            except RegistryError as error:
                self.problems.append(str(error))
                logger.warning("%s", error)
                for other in self.plugins.values():
                    if component.qualified_name in other.components:
                        other.components.remove(component.qualified_name)
                continue
            record.components.append(component.qualified_name)
        for command in commands:
            self._add_command(record, command)
        return record

    def _call_command_hook(self, plugin: str, staged: list[Command]) -> None:
        hook = getattr(self._manager.hook, COMMAND_HOOK)
        for implementation in hook.get_hookimpls():
            if implementation.plugin_name != plugin:
                continue

            def register(name: str, *, arguments: Any, run: Any, summary: str) -> None:
                if not isinstance(name, str) or not name.replace("-", "").isalnum():
                    raise ValueError(f"command name {name!r} must be a word (letters, digits, -)")
                if not callable(arguments):
                    raise TypeError(f"command {name!r}: arguments must be callable")
                if not (callable(run) or (isinstance(run, str) and ":" in run)):
                    raise TypeError(
                        f"command {name!r}: run must be a callable or 'module:attribute'"
                    )
                line = (summary or "").strip().splitlines()[0] if summary else ""
                staged.append(Command(name, plugin, line, arguments, run))

            implementation.function(register=register)

    def _add_command(self, record: PluginRecord, command: Command) -> None:
        if command.name in BUILTIN_COMMANDS:
            problem = (
                f"plugin {record.name!r} registers command {command.name!r}, which is a built-in "
                "command; the plugin must choose another name"
            )
        elif command.name in self.commands:
            other = self.commands[command.name].plugin
            problem = (
                f"command {command.name!r} is registered by both {other!r} and {record.name!r}; "
                f"disable one of them (ADAPTLAB_DISABLE_PLUGINS={record.name})"
            )
        else:
            self.commands[command.name] = command
            record.components.append(f"command:{command.name}")
            return
        self.problems.append(problem)
        logger.warning("%s", problem)

    def _call_hook(
        self, plugin: str, version: str, kind: ComponentKind, staged: list[Component]
    ) -> None:
        hook = getattr(self._manager.hook, HOOK_FOR_KIND[kind])
        for implementation in hook.get_hookimpls():
            if implementation.plugin_name != plugin:
                continue

            def register(
                name: str, *, config: Any, factory: Any, summary: str, _kind: ComponentKind = kind
            ) -> None:
                staged.append(
                    _make_component(_kind, name, plugin, version, config, factory, summary)
                )

            implementation.function(register=register)

    def _fail(self, record: PluginRecord, message: str) -> None:
        record.error = message
        line = f"plugin {record.name!r} was not loaded: {message}"
        self.problems.append(line)
        logger.warning("%s", line)


def _make_component(
    kind: ComponentKind,
    name: str,
    plugin: str,
    version: str,
    config: Any,
    factory: Any,
    summary: str,
) -> Component:
    from pydantic import BaseModel

    if not isinstance(name, str) or not name or not name.replace("_", "").replace("-", "").isalnum():
        raise ValueError(f"component name {name!r} must be a non-empty word (letters, digits, _ -)")
    if not (isinstance(config, type) and issubclass(config, BaseModel)):
        raise TypeError(f"{kind} {name!r}: config must be a pydantic model class, got {config!r}")
    if not (callable(factory) or (isinstance(factory, str) and ":" in factory)):
        raise TypeError(
            f"{kind} {name!r}: factory must be a callable or 'module:attribute', got {factory!r}"
        )
    summary_line = (summary or "").strip().splitlines()[0] if summary else ""
    return Component(kind, name, plugin, version, config, summary_line, factory)


def _unknown_hooks(module: Any) -> str | None:
    """Name hook implementations whose name no hook specification has (a misspelt hook)."""
    from adaptlab.registry._components import suggest

    known = sorted([*HOOK_FOR_KIND.values(), COMMAND_HOOK])
    unknown = [
        attribute
        for attribute in dir(module)
        if attribute.startswith(hookspecs.PROJECT_NAME + "_")
        and attribute != "ADAPTLAB_HOOK_API"
        and callable(getattr(module, attribute))
        and attribute not in known
    ]
    if not unknown:
        return None
    parts = []
    for attribute in unknown:
        hint = suggest(attribute, known)
        parts.append(f"{attribute!r}" + (f" ({hint})" if hint else ""))
    return f"unknown hook {', '.join(parts)}; the hooks are {', '.join(known)}"


def _hook_api_problem(declared: Any) -> str | None:
    if declared is None:
        return None
    ours = hookspecs.HOOK_API_VERSION.split(".")[0]
    theirs = str(declared).split(".")[0]
    if theirs != ours:
        return (
            f"written for hook API {declared}, but this adaptlab provides "
            f"{hookspecs.HOOK_API_VERSION}; install a release of the plugin for API {ours}.x"
        )
    return None


def load_registry(
    selection: PluginSelection | None = None,
    extra_plugins: Mapping[str, ModuleType | Any] | None = None,
) -> Registry:
    """Load entry-point plugins chosen by ``selection`` plus ``extra_plugins`` given directly."""
    selection = selection or PluginSelection.from_environment()
    registry = Registry()
    seen: set[str] = set()
    for entry_point in _entry_points():
        if entry_point.name in seen or not selection.wants(entry_point.name):
            continue
        seen.add(entry_point.name)
        version = entry_point.dist.version if entry_point.dist is not None else "0"
        try:
            module = entry_point.load()
        except Exception as error:  # noqa: BLE001 - report any import failure, keep the rest
            record = PluginRecord(entry_point.name, version, entry_point.value)
            registry.plugins[entry_point.name] = record
            registry._fail(record, f"failed to import {entry_point.value!r}: "
                           f"{type(error).__name__}: {error}")
            continue
        registry.add_plugin(entry_point.name, module, version)
    installed = {entry_point.name for entry_point in _entry_points()} | set(extra_plugins or {})
    for name in selection.only or []:
        if name not in installed and name not in selection.disabled:
            _report(registry, f"plugin {name!r} was requested but no installed package provides it")
    for name in selection.disabled:
        if name not in installed:
            _report(registry, f"plugin {name!r} was disabled but no installed package provides it")
    for name, module in (extra_plugins or {}).items():
        registry.add_plugin(name, module)
    return registry


def _report(registry: Registry, problem: str) -> None:
    registry.problems.append(problem)
    logger.warning("%s; `adaptlab plugins` lists the installed plugins", problem)


def _entry_points(group: str = ENTRY_POINT_GROUP) -> Iterable[metadata.EntryPoint]:
    return sorted(metadata.entry_points(group=group), key=lambda ep: ep.name)
