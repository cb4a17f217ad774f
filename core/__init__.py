"""Core of adaptlab: extension-point contracts, specs, composition and training."""

from __future__ import annotations

from adaptlab.core.contracts import ComponentConfig, HeadConfig, TaskInfo
from adaptlab.core.errors import (
    AdaptlabError,
    CheckpointError,
    ComponentBuildError,
    PluginError,
    RegistryError,
    RunError,
    SpecError,
)
from adaptlab.core.hookspecs import HOOK_API_VERSION, hookimpl

__version__ = "0.1.0"

__all__ = [
    "HOOK_API_VERSION",
    "AdaptlabError",
    "CheckpointError",
    "ComponentBuildError",
    "ComponentConfig",
    "HeadConfig",
    "PluginError",
    "RegistryError",
    "RunError",
    "SpecError",
    "TaskInfo",
    "__version__",
    "hookimpl",
]
