"""Extension points of adaptlab.

A plugin is a module named by an entry point in the ``adaptlab`` group. It implements any of
the hooks below with ``@adaptlab.core.hookimpl``; each hook receives a ``register`` callback
(see :class:`adaptlab.core.contracts.Register`) and calls it once per component it provides.
What each kind's factory must return is written down in :mod:`adaptlab.core.contracts`.

The hook API is versioned by :data:`HOOK_API_VERSION` (``MAJOR.MINOR``). A plugin states the
version it was written for in a module attribute ``ADAPTLAB_HOOK_API``; a plugin whose major
version differs is not loaded and is reported instead. Minor versions only add hooks:

- 1.0: the seven component hooks;
- 1.1: :func:`adaptlab_register_commands`, for plugins that add ``adaptlab`` subcommands.
"""

from __future__ import annotations

import pluggy

from adaptlab.core.contracts import Register, RegisterCommand

__all__ = ["HOOK_API_VERSION", "PROJECT_NAME", "hookimpl", "hookspec"]

PROJECT_NAME = "adaptlab"
HOOK_API_VERSION = "1.1"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def adaptlab_register_backbones(register: Register) -> None:
    """Register backbones: factories returning a :class:`~adaptlab.core.contracts.Backbone`."""


@hookspec
def adaptlab_register_adapters(register: Register) -> None:
    """Register adapters (PEFT methods): factories returning an ``Adapter``."""


@hookspec
def adaptlab_register_heads(register: Register) -> None:
    """Register task heads: factories returning a ``TaskHead`` for one task."""


@hookspec
def adaptlab_register_policies(register: Register) -> None:
    """Register adaptive-inference policies: factories returning a ``Policy``."""


@hookspec
def adaptlab_register_graph_encoders(register: Register) -> None:
    """Register graph encoders: factories returning a ``GraphEncoder`` module."""


@hookspec
def adaptlab_register_datasets(register: Register) -> None:
    """Register datasets: factories returning a ``DatasetBundle``."""


@hookspec
def adaptlab_register_recipes(register: Register) -> None:
    """Register training recipes: factories returning a ``Recipe``."""


@hookspec
def adaptlab_register_commands(register: RegisterCommand) -> None:
    """Register ``adaptlab`` subcommands (hook API 1.1): see ``RegisterCommand``."""
