"""Tests of the plugin's registration with adaptlab and of its configuration models."""

from __future__ import annotations

import subprocess
import sys
import types
from importlib import metadata

import pytest
from pydantic import ValidationError

import adaptlab_bottleneck
from adaptlab.registry import PluginSelection, Registry, load_registry
from adaptlab_bottleneck.adapter import BottleneckMethod
from adaptlab_bottleneck.config import BottleneckConfig, GateSparsityConfig
from adaptlab_bottleneck.policy import GateSparsityPolicy


def isolated_registry(module: object = adaptlab_bottleneck) -> Registry:
    """Load a registry holding only ``module``, ignoring every installed plugin."""
    return load_registry(PluginSelection(autoload=False), extra_plugins={"bottleneck": module})


def test_components_registered() -> None:
    registry = isolated_registry()

    adapter = registry.get("adapter", "bottleneck")
    policy = registry.get("policy", "gate_sparsity")

    assert registry.problems == []
    assert adapter.plugin == "bottleneck"
    assert adapter.config is BottleneckConfig
    assert adapter.factory == "adaptlab_bottleneck.adapter:build_adapter"
    assert policy.plugin == "bottleneck"
    assert policy.config is GateSparsityConfig
    assert registry.plugins["bottleneck"].hook_api == "1.0"
    assert registry.plugins["bottleneck"].components == [
        "adapter:bottleneck",
        "policy:gate_sparsity",
    ]


def test_registry_builds_components() -> None:
    registry = isolated_registry()
    adapter = registry.get("adapter", "bottleneck")
    policy = registry.get("policy", "gate_sparsity")

    built_adapter = adapter.build(adapter.config.model_validate({"reduction": 8}))
    built_policy = policy.build(policy.config.model_validate({"weight": 0.01}))

    assert isinstance(built_adapter, BottleneckMethod)
    assert built_adapter.config.reduction == 8
    assert isinstance(built_policy, GateSparsityPolicy)


def test_entry_point_installed() -> None:
    found = {
        entry_point.name: entry_point.value
        for entry_point in metadata.entry_points(group="adaptlab")
    }

    assert found.get("bottleneck") == "adaptlab_bottleneck"


def test_installed_entry_point_loads() -> None:
    registry = load_registry(PluginSelection(only=["bottleneck"]))

    record = registry.plugins["bottleneck"]
    assert record.error is None
    assert record.version == "0.1.0"
    assert registry.names("adapter") == ["bottleneck"]


def test_import_does_not_load_torch() -> None:
    code = (
        "import sys, adaptlab_bottleneck\n"
        "from adaptlab.registry import PluginSelection, Registry, load_registry\n"
        "load_registry(PluginSelection(only=['bottleneck']))\n"
        "print(sorted(name for name in ('torch', 'timm') if name in sys.modules))\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )

    assert completed.stdout.strip() == "[]"


def test_other_major_hook_api_rejected() -> None:
    future = types.ModuleType("adaptlab_bottleneck_future")
    future.ADAPTLAB_HOOK_API = "2.0"
    future.adaptlab_register_adapters = adaptlab_bottleneck.adaptlab_register_adapters

    registry = isolated_registry(future)

    assert registry.names("adapter") == []
    assert "hook API 2.0" in registry.plugins["bottleneck"].error


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        ({"reduction": 0}, "reduction"),
        ({"target_modules": []}, "target_modules"),
        ({"target_modules": [" "]}, "target_modules"),
        ({"activation": "swish"}, "activation"),
        ({"rank": 8}, "rank"),
    ],
)
def test_invalid_adapter_settings_rejected(settings: dict, field: str) -> None:
    with pytest.raises(ValidationError) as raised:
        BottleneckConfig.model_validate(settings)

    assert raised.value.errors()[0]["loc"][0] == field


@pytest.mark.parametrize("field", ["weight", "budget", "threshold"])
def test_negative_policy_settings_rejected(field: str) -> None:
    with pytest.raises(ValidationError):
        GateSparsityConfig.model_validate({field: -0.1})


def test_every_field_documented() -> None:
    for model in (BottleneckConfig, GateSparsityConfig):
        for name, info in model.model_fields.items():
            assert info.description, f"{model.__name__}.{name} has no description"
