"""Plugin manager and component registry of adaptlab."""

from __future__ import annotations

from adaptlab.registry._components import Component, ComponentRegistry, suggest
from adaptlab.registry._plugins import (
    ENTRY_POINT_GROUP,
    Command,
    PluginRecord,
    PluginSelection,
    Registry,
    load_registry,
)

__all__ = [
    "ENTRY_POINT_GROUP",
    "Command",
    "Component",
    "ComponentRegistry",
    "PluginRecord",
    "PluginSelection",
    "Registry",
    "get_registry",
    "load_registry",
    "reset_registry",
    "suggest",
]

_current: Registry | None = None


def get_registry() -> Registry:
    """Return the process-wide registry, loading plugins from the environment on first use."""
    global _current
    if _current is None:
        _current = load_registry()
    return _current


def reset_registry(registry: Registry | None = None) -> None:
    """Replace the process-wide registry (``None`` reloads it on next use)."""
    global _current
    _current = registry
