"""Hook API 1.1 and the optional keywords of factories: plugin commands, task names passed to
multi-task adapters, feature channels passed to dense heads, and cross-task derived metrics."""

from __future__ import annotations

import types

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader

from adaptlab.core import ComponentConfig, hookimpl
from adaptlab.core.cli import main
from adaptlab.core.compose import ComposedModel, build_model
from adaptlab.core.contracts import HeadConfig, TaskInfo
from adaptlab.core.errors import RunError
from adaptlab.core.spec import validate_spec
from adaptlab.core.training.data import resolve_precision
from adaptlab.core.training.evaluation import evaluate_model
from adaptlab.registry import PluginSelection, load_registry


def _command_plugin(name: str, command: str, *, fail_with: Exception | None = None):
    module = types.ModuleType(name)
    module.ADAPTLAB_HOOK_API = "1.1"

    def arguments(parser):
        parser.add_argument("--who", default="world")

    def run(arguments):
        if fail_with is not None:
            raise fail_with
        print(f"hello {arguments.who} from {name}")
        return 0

    @hookimpl
    def adaptlab_register_commands(register):
        register(command, arguments=arguments, run=run, summary="Say hello.\nSecond line.")

    module.adaptlab_register_commands = adaptlab_register_commands
    return module


def _load(**plugins):
    return load_registry(PluginSelection(autoload=False), plugins)


def test_plugin_command_is_registered_with_its_plugin():
    registry = _load(greeter=_command_plugin("greeter", "hello"))
    command = registry.commands["hello"]
    assert (command.plugin, command.summary) == ("greeter", "Say hello.")
    assert "command:hello" in registry.plugins["greeter"].components
    assert registry.problems == []


def test_builtin_command_name_is_rejected():
    registry = _load(bad=_command_plugin("bad", "train"))
    assert "train" not in registry.commands
    assert any("'train', which is a built-in command" in p for p in registry.problems)


def test_duplicate_command_keeps_first_plugin():
    registry = _load(first=_command_plugin("first", "hello"), second=_command_plugin("second", "hello"))
    assert registry.commands["hello"].plugin == "first"
    assert any("both 'first' and 'second'" in p for p in registry.problems)


def test_misspelt_command_hook_is_reported_with_a_suggestion():
    module = types.ModuleType("typo")
    module.adaptlab_register_command = hookimpl(lambda register: None)
    registry = _load(typo=module)
    assert "did you mean 'adaptlab_register_commands'" in registry.plugins["typo"].error


@pytest.fixture
def cli_with(monkeypatch):
    """Make the CLI load only the given plugin modules."""
    import adaptlab.registry as registry_package

    def install(**plugins):
        original = registry_package.load_registry

        def load(selection=None, extra_plugins=None):
            return original(PluginSelection(autoload=False), plugins)

        monkeypatch.setattr(registry_package, "load_registry", load)

    return install


def test_cli_runs_a_plugin_command(cli_with, capsys):
    cli_with(greeter=_command_plugin("greeter", "hello"))
    assert main(["hello", "--who", "reader"]) == 0
    assert capsys.readouterr().out == "hello reader from greeter\n"


def test_cli_help_lists_plugin_commands(cli_with, capsys):
    cli_with(greeter=_command_plugin("greeter", "hello"))
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "Say hello. [plugin greeter]" in capsys.readouterr().out


def test_plugin_command_error_is_one_line(cli_with, capsys):
    cli_with(greeter=_command_plugin("greeter", "hello", fail_with=RunError("no greeting today")))
    assert main(["hello"]) == RunError.exit_code
    assert capsys.readouterr().err == "error: no greeting today\n"


def test_broken_command_arguments_do_not_break_other_commands(cli_with, capsys):
    module = _command_plugin("broken", "hello")

    @hookimpl
    def adaptlab_register_commands(register):
        def arguments(parser):
            raise RuntimeError("bad option table")

        register("hello", arguments=arguments, run=lambda arguments: 0, summary="Broken.")

    module.adaptlab_register_commands = adaptlab_register_commands
    cli_with(broken=module)
    assert main(["components"]) == 0
    assert "bad option table" in capsys.readouterr().err


# Optional factory keywords ---------------------------------------------------------------


class _Empty(ComponentConfig):
    pass


class _Head(HeadConfig):
    pass


class _Tasks(ComponentConfig):
    def task_names(self):
        return ["even", "digit"]


class _DenseBackbone(nn.Module):
    out_features = 8
    feature_channels = (4, 8)

    def __init__(self, config):
        super().__init__()
        self.linear = nn.Linear(2, 8)

    def forward(self, inputs):
        return self.linear(inputs)


class _TaskAdapter:
    def __init__(self, config, tasks):
        self.tasks = tasks

    def apply(self, module):
        module.adapted_for = self.tasks
        return module

    def merge(self, module):
        return module


class _ChannelHead(nn.Module):
    def __init__(self, config, task, in_features, feature_channels):
        super().__init__()
        self.feature_channels = feature_channels
        self.linear = nn.Linear(in_features, 1)

    def forward(self, features):
        return self.linear(features)


def _keyword_plugin():
    module = types.ModuleType("keywords")

    @hookimpl
    def adaptlab_register_datasets(register):
        register("two_tasks", config=_Tasks, factory=dict, summary="")

    @hookimpl
    def adaptlab_register_backbones(register):
        register("dense", config=_Empty, factory=_DenseBackbone, summary="")

    @hookimpl
    def adaptlab_register_adapters(register):
        register("per_task", config=_Empty, factory=_TaskAdapter, summary="")

    @hookimpl
    def adaptlab_register_heads(register):
        register("channels", config=_Head, factory=_ChannelHead, summary="")

    module.adaptlab_register_datasets = adaptlab_register_datasets
    module.adaptlab_register_backbones = adaptlab_register_backbones
    module.adaptlab_register_adapters = adaptlab_register_adapters
    module.adaptlab_register_heads = adaptlab_register_heads
    return module


def test_factories_receive_optional_keywords():
    registry = load_registry(PluginSelection(only=["supervised"]), {"kw": _keyword_plugin()})
    spec = validate_spec(
        {
            "data": {"name": "two_tasks"},
            "model": {
                "backbone": {"name": "dense"},
                "adapter": {"name": "per_task"},
                "heads": {"even": {"name": "channels"}, "digit": {"name": "channels"}},
            },
            "train": {"recipe": "supervised"},
        },
        registry=registry,
    )
    tasks = {name: TaskInfo(name, "classification", num_classes=2) for name in ("even", "digit")}
    model = build_model(spec, tasks, registry)
    assert model.backbone.adapted_for == ("even", "digit")
    assert [head.feature_channels for head in model.heads.values()] == [(4, 8), (4, 8)]


# Derived metrics -------------------------------------------------------------------------


class _Mean:
    def __init__(self):
        self.values = []

    def update(self, output, target):
        self.values.append(float((output.squeeze(-1) - target).abs().mean()))

    def compute(self):
        return {"error": sum(self.values) / len(self.values)}


class _RegressionHead(nn.Module):
    def __init__(self, offset):
        super().__init__()
        self.offset = offset

    def forward(self, features):
        return features[:, :1] + self.offset

    def loss(self, output, target):
        return (output.squeeze(-1) - target).abs().mean()

    def new_metric(self):
        return _Mean()


def test_derived_metrics_are_computed_from_the_task_metrics():
    model = ComposedModel(
        nn.Identity(), {"a": _RegressionHead(1.0), "b": _RegressionHead(3.0)}, {"a": 1.0, "b": 1.0}
    )
    inputs = torch.zeros(4, 2)
    targets = {"a": torch.zeros(4), "b": torch.zeros(4)}
    loader = DataLoader([(inputs[i], {k: v[i] for k, v in targets.items()}) for i in range(4)], 2)
    device = torch.device("cpu")

    def gap(metrics):
        return {"error_gap": metrics["b/error"] - metrics["a/error"]}

    metrics = evaluate_model(model, loader, device, resolve_precision("fp32", device), derived=gap)
    assert metrics["a/error"] == pytest.approx(1.0)
    assert metrics["b/error"] == pytest.approx(3.0)
    assert metrics["error_gap"] == pytest.approx(2.0)
