"""Plugin loading and component look-up."""

from __future__ import annotations

import sys
import textwrap
import types
from pathlib import Path

import pytest
from pydantic import BaseModel

from adaptlab.core import HOOK_API_VERSION, ComponentConfig, hookimpl
from adaptlab.core.errors import PluginError, RegistryError
from adaptlab.registry import PluginSelection, load_registry


class _Config(ComponentConfig):
    width: int = 4


def _plugin(name: str, components: dict[str, list[str]], *, api: str | None = "1.0"):
    """A real plugin module registering ``components`` ({kind hook suffix: [names]})."""
    module = types.ModuleType(name)
    if api is not None:
        module.ADAPTLAB_HOOK_API = api
    for suffix, names in components.items():

        def hook(register, _names=tuple(names)):
            for component in _names:
                register(component, config=_Config, factory=dict, summary=f"{component} summary")

        hook.__name__ = f"adaptlab_register_{suffix}"
        setattr(module, hook.__name__, hookimpl(hook))
    return module


def _empty_selection() -> PluginSelection:
    return PluginSelection(autoload=False)


def test_lookup_returns_component_metadata():
    registry = load_registry(_empty_selection(), {"demo": _plugin("demo", {"adapters": ["lora"]})})
    component = registry.get("adapter", "lora")
    assert component.plugin == "demo"
    assert component.kind == "adapter"
    assert component.summary == "lora summary"
    assert component.config is _Config


def test_unknown_name_suggests_closest():
    registry = load_registry(
        _empty_selection(), {"demo": _plugin("demo", {"adapters": ["lora", "loha", "ia3"]})}
    )
    with pytest.raises(RegistryError, match=r"did you mean 'lora'"):
        registry.get("adapter", "lorra")


def test_unknown_kind_is_rejected():
    registry = load_registry(_empty_selection())
    with pytest.raises(RegistryError, match="did you mean 'adapter'"):
        registry.get("adapters", "lora")


def test_wildcard_listing_filters_names():
    registry = load_registry(
        _empty_selection(),
        {"demo": _plugin("demo", {"adapters": ["lora", "loha", "ia3"], "heads": ["lin"]})},
    )
    assert [c.name for c in registry.find("adapter", "lo*")] == ["loha", "lora"]
    assert [c.qualified_name for c in registry.find(None, "l*")] == [
        "adapter:loha",
        "adapter:lora",
        "head:lin",
    ]


def test_duplicate_names_error_names_both_plugins():
    registry = load_registry(
        _empty_selection(),
        {
            "first": _plugin("first", {"adapters": ["lora", "only_first"]}),
            "second": _plugin("second", {"adapters": ["lora"]}),
        },
    )
    with pytest.raises(RegistryError) as caught:
        registry.get("adapter", "lora")
    assert "'first'" in str(caught.value)
    assert "'second'" in str(caught.value)
    assert registry.get("adapter", "only_first").plugin == "first"
    assert any("lora" in problem for problem in registry.problems)


def test_hook_that_raises_is_isolated():
    broken = _plugin("broken", {"adapters": ["partial"]})

    @hookimpl
    def adaptlab_register_heads(register):
        raise RuntimeError("boom in hook")

    broken.adaptlab_register_heads = adaptlab_register_heads
    registry = load_registry(
        _empty_selection(), {"broken": broken, "good": _plugin("good", {"heads": ["lin"]})}
    )
    assert registry.plugins["broken"].error is not None
    assert "boom in hook" in registry.plugins["broken"].error
    assert registry.names("adapter") == []  # nothing half-registered
    assert registry.names("head") == ["lin"]


def test_other_major_hook_api_is_refused():
    registry = load_registry(
        _empty_selection(), {"future": _plugin("future", {"adapters": ["x"]}, api="2.0")}
    )
    record = registry.plugins["future"]
    assert not record.loaded
    assert HOOK_API_VERSION in record.error
    assert registry.names("adapter") == []


def test_invalid_registration_reported():
    module = types.ModuleType("bad")

    @hookimpl
    def adaptlab_register_adapters(register):
        register("bad", config=dict, factory="x:y", summary="")

    module.adaptlab_register_adapters = adaptlab_register_adapters
    registry = load_registry(_empty_selection(), {"bad": module})
    assert "pydantic model class" in registry.plugins["bad"].error


def test_lazy_factory_import_error_names_plugin():
    module = types.ModuleType("lazy")

    @hookimpl
    def adaptlab_register_heads(register):
        register("ghost", config=_Config, factory="no_such_module_xyz:make", summary="")

    module.adaptlab_register_heads = adaptlab_register_heads
    registry = load_registry(_empty_selection(), {"lazy": module})
    component = registry.get("head", "ghost")
    with pytest.raises(PluginError, match="'lazy'.*no_such_module_xyz"):
        component.build(_Config())


def _install_distribution(root: Path, dist: str, entry: str, module_source: str) -> None:
    """Write a minimal installed distribution (dist-info with entry points) under ``root``."""
    module = f"{dist}_plugin"
    (root / f"{module}.py").write_text(textwrap.dedent(module_source))
    info = root / f"{dist}-1.2.3.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.2.3\n")
    (info / "entry_points.txt").write_text(f"[adaptlab]\n{entry} = {module}\n")


@pytest.fixture
def site(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    for name in [m for m in sys.modules if m.endswith("_plugin")]:
        sys.modules.pop(name, None)


GOOD_PLUGIN = """
    from adaptlab.core import ComponentConfig, hookimpl

    ADAPTLAB_HOOK_API = "1.0"

    class Config(ComponentConfig):
        size: int = 1

    @hookimpl
    def adaptlab_register_policies(register):
        register("gate", config=Config, factory="builtins:dict", summary="A gate policy.")
"""


def test_entry_point_plugin_is_discovered(site):
    _install_distribution(site, "goodpkg", "goodpkg", GOOD_PLUGIN)
    registry = load_registry(PluginSelection(only=["goodpkg"]))
    record = registry.plugins["goodpkg"]
    assert record.loaded
    assert record.version == "1.2.3"
    assert record.hook_api == "1.0"
    assert record.components == ["policy:gate"]


def test_plugin_raising_at_import_is_reported(site):
    _install_distribution(site, "goodpkg", "goodpkg", GOOD_PLUGIN)
    _install_distribution(site, "badpkg", "badpkg", "raise ImportError('missing libfoo')\n")
    registry = load_registry(PluginSelection(only=["goodpkg", "badpkg"]))
    assert "missing libfoo" in registry.plugins["badpkg"].error
    assert registry.get("policy", "gate").plugin == "goodpkg"


def test_disabled_plugin_is_not_loaded(site):
    _install_distribution(site, "goodpkg", "goodpkg", GOOD_PLUGIN)
    registry = load_registry(PluginSelection(only=["goodpkg"], disabled=["goodpkg"]))
    assert "goodpkg" not in registry.plugins


def test_selection_reads_environment():
    selection = PluginSelection.from_environment(
        {
            "ADAPTLAB_PLUGINS": "a, b",
            "ADAPTLAB_DISABLE_PLUGINS": "b",
            "ADAPTLAB_DISABLE_PLUGIN_AUTOLOAD": "1",
        }
    )
    assert selection.only == ["a", "b"]
    assert selection.wants("a")
    assert not selection.wants("b")
    assert not selection.wants("c")
    assert not PluginSelection(autoload=False).wants("anything")


def test_builtin_plugins_register_through_entry_points():
    registry = load_registry(PluginSelection(only=["supervised"]))
    assert registry.plugins["supervised"].module == "adaptlab.plugins.supervised"
    assert registry.get("recipe", "supervised").plugin == "supervised"


def test_config_model_is_pydantic():
    registry = load_registry(PluginSelection(only=["supervised"]))
    assert issubclass(registry.get("recipe", "supervised").config, BaseModel)


def test_misspelt_hook_is_reported():
    module = types.ModuleType("typo")

    @hookimpl
    def adaptlab_register_adaptors(register):
        register("x", config=_Config, factory=dict, summary="")

    module.adaptlab_register_adaptors = adaptlab_register_adaptors
    registry = load_registry(_empty_selection(), {"typo": module})
    error = registry.plugins["typo"].error
    assert "unknown hook 'adaptlab_register_adaptors'" in error
    assert "did you mean 'adaptlab_register_adapters'" in error


def test_conflict_removes_name_from_both_records():
    registry = load_registry(
        _empty_selection(),
        {
            "first": _plugin("first", {"adapters": ["lora", "only_first"]}),
            "second": _plugin("second", {"adapters": ["lora"]}),
        },
    )
    assert registry.plugins["first"].components == ["adapter:only_first"]
    assert registry.plugins["second"].components == []
