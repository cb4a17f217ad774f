"""Test isolation: only the built-in plugins load, nothing is downloaded, caches are private."""

from __future__ import annotations

import os

import pytest

BUILTIN_PLUGINS = "timm,peft,vision,supervised,graphsym,mtlora,tuning"

# Set before any adaptlab import so that the process-wide registry reads them.
os.environ["ADAPTLAB_PLUGINS"] = BUILTIN_PLUGINS
os.environ["ADAPTLAB_DISABLE_PLUGIN_AUTOLOAD"] = "1"
os.environ.pop("ADAPTLAB_DISABLE_PLUGINS", None)
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"


@pytest.fixture(scope="session", autouse=True)
def _private_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Keep exported datasets out of the user's cache; shared by every test of the session."""
    if "ADAPTLAB_TEST_CACHE" in os.environ:
        os.environ["ADAPTLAB_CACHE"] = os.environ["ADAPTLAB_TEST_CACHE"]
    else:
        os.environ["ADAPTLAB_CACHE"] = str(tmp_path_factory.mktemp("adaptlab-cache"))


@pytest.fixture(autouse=True)
def _fresh_registry() -> None:
    from adaptlab.registry import reset_registry

    reset_registry()
    yield
    reset_registry()
