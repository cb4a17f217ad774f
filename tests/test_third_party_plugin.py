"""End-to-end tests of the third-party plugin example in examples/third_party_plugin.

The example is pip-installed into a temporary folder (``--target``), so the project's
environment stays unchanged. The CLI runs in subprocesses that see that folder through
``PYTHONPATH``. The in-process tests put it on ``sys.path`` for one test at a time.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import types
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path

import pytest

from adaptlab.registry import PluginSelection, load_registry

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "third_party_plugin"
SPEC = EXAMPLE / "spec.yaml"
BUILTIN_PLUGINS = ["timm", "peft", "vision", "supervised"]
PLUGIN = "bottleneck"
PACKAGE = "adaptlab_bottleneck"
# The example's pyproject.toml requires this version, the first that builds wheels without the
# separate `wheel` package. --no-build-isolation builds with the environment's setuptools.
MIN_SETUPTOOLS = (70, 1)

# spec.yaml adapts vit_tiny (width 192, 4 blocks) with reduction 8 and gates. One adapter has
# down (192 * 24 + 24) + up (24 * 192 + 192) + gate 1 = 9433 parameters, and there are 2 per block.
SPEC_ADAPTER_PARAMETERS = 8 * 9433
# unfrozen_parameters: ["*norm*"] also trains norm1 and norm2 of each block and the final norm,
# each with a weight and a bias of width 192.
SPEC_NORM_PARAMETERS = (2 * 4 + 1) * 2 * 192


def _setuptools_version() -> tuple[int, ...]:
    try:
        text = metadata.version("setuptools")
    except metadata.PackageNotFoundError:
        return ()
    return tuple(int(part) for part in text.split(".")[:2] if part.isdigit())


@pytest.fixture(scope="module")
def plugin_target(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Install the example into a temporary folder and return that folder."""
    if _setuptools_version() < MIN_SETUPTOOLS:
        pytest.skip(
            "building the example offline needs setuptools>=70.1 in this environment; "
            "run: pip install 'setuptools>=70.1'"
        )

    root = tmp_path_factory.mktemp("third-party-plugin")
    # setuptools builds inside the source folder (build/, *.egg-info), so build from a copy.
    source = root / "source"
    shutil.copytree(
        EXAMPLE,
        source,
        ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__", ".pytest_cache"),
    )

    target = root / "site"
    command = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--no-deps",
        "--no-build-isolation",
        "--no-index",
        "--disable-pip-version-check",
        "--target",
        str(target),
        str(source),
    ]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=300)

    assert completed.returncode == 0, f"pip install failed:\n{completed.stdout}\n{completed.stderr}"
    assert (target / PACKAGE / "__init__.py").is_file()
    return target


@pytest.fixture
def plugin_on_path(plugin_target: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Put the installed example on sys.path for one test and forget its modules afterwards."""
    monkeypatch.syspath_prepend(str(plugin_target))
    yield plugin_target
    for name in [name for name in sys.modules if name.split(".")[0] == PACKAGE]:
        del sys.modules[name]


def _cli_environment(plugin_target: Path) -> dict[str, str]:
    environment = dict(os.environ)
    paths = [str(plugin_target)]
    if environment.get("PYTHONPATH"):
        paths.append(environment["PYTHONPATH"])
    environment["PYTHONPATH"] = os.pathsep.join(paths)
    environment["ADAPTLAB_PLUGINS"] = ",".join([*BUILTIN_PLUGINS, PLUGIN])
    environment["HF_HUB_OFFLINE"] = "1"
    environment.pop("ADAPTLAB_DISABLE_PLUGINS", None)
    return environment


def _run_cli(
    plugin_target: Path,
    *arguments: str,
    cwd: Path,
    environment: dict[str, str] | None = None,
    timeout: int = 120,
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "adaptlab.core.cli", *arguments],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=environment or _cli_environment(plugin_target),
        timeout=timeout,
    )


def _explain(completed: subprocess.CompletedProcess[str]) -> str:
    return f"exit {completed.returncode}\nstdout:\n{completed.stdout}\nstderr:\n{completed.stderr}"


def _rows_starting_with(text: str, *first_cells: str) -> list[list[str]]:
    rows = [line.split() for line in text.splitlines()]
    return [row for row in rows if row[: len(first_cells)] == list(first_cells)]


# In-process checks: registration through the installed entry point and extra_plugins.


def test_install_leaves_entry_point(plugin_target: Path) -> None:
    distributions = [
        distribution
        for distribution in metadata.distributions(path=[str(plugin_target)])
        if distribution.metadata["Name"] == "adaptlab-bottleneck"
    ]

    assert len(distributions) == 1
    assert distributions[0].version == "0.1.0"
    entry_points = {
        entry_point.name: entry_point.value
        for entry_point in distributions[0].entry_points.select(group="adaptlab")
    }
    assert entry_points == {PLUGIN: PACKAGE}


def test_entry_point_registers_components(plugin_on_path: Path) -> None:
    registry = load_registry(PluginSelection(autoload=False, only=[PLUGIN]))

    record = registry.plugins[PLUGIN]
    adapter = registry.get("adapter", "bottleneck")
    policy = registry.get("policy", "gate_sparsity")

    assert record.error is None
    assert record.version == "0.1.0"
    assert record.hook_api == "1.0"
    assert record.module == PACKAGE
    assert record.components == ["adapter:bottleneck", "policy:gate_sparsity"]
    assert (adapter.kind, adapter.plugin) == ("adapter", PLUGIN)
    assert (policy.kind, policy.plugin) == ("policy", PLUGIN)
    assert adapter.factory == "adaptlab_bottleneck.adapter:build_adapter"
    assert "reduction" in adapter.config.model_fields


def test_registration_does_not_import_torch(plugin_target: Path, tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from adaptlab.registry import PluginSelection, load_registry\n"
        f"registry = load_registry(PluginSelection(autoload=False, only=[{PLUGIN!r}]))\n"
        "assert registry.names('adapter') == ['bottleneck'], registry.problems\n"
        "print(sorted(name for name in ('torch', 'timm', 'peft') if name in sys.modules))\n"
    )

    completed = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=_cli_environment(plugin_target),
        timeout=120,
    )

    assert completed.returncode == 0, _explain(completed)
    assert completed.stdout.strip() == "[]"


def test_extra_plugins_beside_builtins(plugin_on_path: Path) -> None:
    import adaptlab_bottleneck

    registry = load_registry(
        PluginSelection(autoload=False, only=BUILTIN_PLUGINS),
        extra_plugins={PLUGIN: adaptlab_bottleneck},
    )

    assert registry.conflicts() == {}
    assert registry.get("adapter", "bottleneck").plugin == PLUGIN
    assert registry.get("policy", "gate_sparsity").plugin == PLUGIN
    assert not [problem for problem in registry.problems if PLUGIN in problem]


def test_disabled_plugin_not_loaded(plugin_on_path: Path) -> None:
    registry = load_registry(
        PluginSelection(autoload=False, only=[PLUGIN], disabled=[PLUGIN])
    )

    assert PLUGIN not in registry.plugins
    assert registry.names("adapter") == []


def test_duplicate_name_names_both_plugins(plugin_on_path: Path) -> None:
    import adaptlab_bottleneck

    from adaptlab.core.errors import RegistryError

    # A second plugin that registers the same adapter name, as a fork of the example would.
    fork = types.ModuleType("adaptlab_bottleneck_fork")
    fork.ADAPTLAB_HOOK_API = "1.0"
    fork.adaptlab_register_adapters = adaptlab_bottleneck.adaptlab_register_adapters

    registry = load_registry(
        PluginSelection(autoload=False),
        extra_plugins={PLUGIN: adaptlab_bottleneck, "fork": fork},
    )

    with pytest.raises(RegistryError, match="both plugins 'bottleneck' and 'fork'"):
        registry.get("adapter", "bottleneck")
    assert registry.conflicts() == {("adapter", "bottleneck"): [PLUGIN, "fork"]}
    assert registry.get("policy", "gate_sparsity").plugin == PLUGIN
    assert any("'fork'" in problem for problem in registry.problems)


def test_example_adapter_on_timm_vit(plugin_on_path: Path) -> None:
    timm = pytest.importorskip("timm")
    import torch

    from adaptlab.core.contracts import Adapter

    registry = load_registry(PluginSelection(autoload=False, only=[PLUGIN]))
    component = registry.get("adapter", "bottleneck")
    adapter = component.build(component.config.model_validate({}))
    torch.manual_seed(0)
    model = timm.create_model(
        "vit_tiny_patch16_224", pretrained=False, num_classes=0, img_size=32, patch_size=4, depth=4
    ).eval()
    images = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    expected = model(images)

    adapted = adapter.apply(model)

    trainable = sum(p.numel() for p in adapted.parameters() if p.requires_grad)
    assert isinstance(adapter, Adapter)
    # Width 192, reduction 16: (192 * 12 + 12) + (12 * 192 + 192) = 4812 per adapter, 8 adapters.
    assert trainable == 8 * 4812
    assert torch.equal(adapted(images), expected)


def test_spec_composes_adapter_and_policy(plugin_on_path: Path) -> None:
    import torch

    from adaptlab.core.compose import build_model, parameter_groups
    from adaptlab.core.contracts import TaskInfo
    from adaptlab.core.spec import load_spec
    from adaptlab_bottleneck.layer import BottleneckAdapter
    from adaptlab_bottleneck.policy import GateSparsityPolicy

    registry = load_registry(PluginSelection(autoload=False, only=[*BUILTIN_PLUGINS, PLUGIN]))
    spec = load_spec(SPEC, registry=registry)
    tasks = {"digit": TaskInfo("digit", "classification", num_classes=10)}
    torch.manual_seed(0)

    model = build_model(spec, tasks, registry=registry)
    model.train()
    outputs = model(torch.randn(2, 3, 32, 32))

    adapters = [module for module in model.modules() if isinstance(module, BottleneckAdapter)]
    adapter_parameters = sum(p.numel() for a in adapters for p in a.parameters())
    norm_parameters = sum(
        p.numel() for name, p in model.backbone.named_parameters() if "norm" in name
    )
    assert len(adapters) == 8
    assert adapter_parameters == SPEC_ADAPTER_PARAMETERS
    # unfrozen_parameters: ["*norm*"] keeps the LayerNorms trainable, and nothing else of the
    # backbone is.
    assert norm_parameters == SPEC_NORM_PARAMETERS
    assert parameter_groups(model)["adapter"]["trainable"] == adapter_parameters + norm_parameters
    assert outputs["digit"].shape == (2, 10)
    assert isinstance(model.policy, GateSparsityPolicy)
    assert model.policy.stats()["executed_fraction"] == 1.0
    # All gates start at 1.0: the penalty is 1e-3 * (1.0 - budget 0.5).
    assert model.policy.regularizer().item() == pytest.approx(5.0e-4)


# CLI checks, each in a subprocess that imports the installed example through PYTHONPATH.


def test_cli_lists_adapter(plugin_target: Path, tmp_path: Path) -> None:
    completed = _run_cli(plugin_target, "components", "adapter", cwd=tmp_path)

    assert completed.returncode == 0, _explain(completed)
    assert _rows_starting_with(completed.stdout, "adapter", "bottleneck", PLUGIN), _explain(
        completed
    )


def test_cli_lists_policy_by_pattern(plugin_target: Path, tmp_path: Path) -> None:
    completed = _run_cli(plugin_target, "components", "policy", "gate_*", cwd=tmp_path)

    assert completed.returncode == 0, _explain(completed)
    assert _rows_starting_with(completed.stdout, "policy", "gate_sparsity", PLUGIN), _explain(
        completed
    )


def test_cli_plugins_shows_hook_api(plugin_target: Path, tmp_path: Path) -> None:
    completed = _run_cli(plugin_target, "plugins", cwd=tmp_path)

    rows = _rows_starting_with(completed.stdout, PLUGIN, "0.1.0", "1.0")
    assert completed.returncode == 0, _explain(completed)
    assert len(rows) == 1, _explain(completed)
    assert rows[0][-1] == "ok", _explain(completed)


def test_cli_describes_adapter_fields(plugin_target: Path, tmp_path: Path) -> None:
    completed = _run_cli(plugin_target, "describe", "adapter", "bottleneck", cwd=tmp_path)

    assert completed.returncode == 0, _explain(completed)
    for field in ("target_modules", "reduction", "activation", "gate", "unfrozen_parameters"):
        assert field in completed.stdout, _explain(completed)
    assert "Reduction factor" in completed.stdout, _explain(completed)


def test_cli_validates_example_spec(plugin_target: Path, tmp_path: Path) -> None:
    completed = _run_cli(plugin_target, "validate", str(SPEC), cwd=tmp_path)

    assert completed.returncode == 0, _explain(completed)
    assert "valid" in completed.stdout, _explain(completed)
    assert "adapter bottleneck" in completed.stdout, _explain(completed)


@pytest.mark.parametrize(
    ("override", "reported"),
    [
        ("model.adapter.reduction=0", "model.adapter.reduction"),
        ("model.adapter.rank=4", "model.adapter.rank"),
        ("model.policy.threshold=-1", "model.policy.threshold"),
        ("model.adapter.name=bottlenek", "bottleneck"),
    ],
)
def test_cli_rejects_invalid_settings(
    plugin_target: Path, tmp_path: Path, override: str, reported: str
) -> None:
    completed = _run_cli(plugin_target, "validate", str(SPEC), override, cwd=tmp_path)

    assert completed.returncode == 2, _explain(completed)
    assert reported in completed.stderr, _explain(completed)
    assert "Traceback" not in completed.stderr, _explain(completed)


def test_cli_spec_fails_when_plugin_disabled(plugin_target: Path, tmp_path: Path) -> None:
    environment = _cli_environment(plugin_target)
    environment["ADAPTLAB_DISABLE_PLUGINS"] = PLUGIN

    completed = _run_cli(
        plugin_target, "validate", str(SPEC), cwd=tmp_path, environment=environment
    )

    assert completed.returncode == 2, _explain(completed)
    assert "unknown adapter 'bottleneck'" in completed.stderr, _explain(completed)


def test_cli_trains_example_one_epoch(plugin_target: Path, tmp_path: Path) -> None:
    runs = tmp_path / "runs"

    completed = _run_cli(
        plugin_target,
        "train",
        str(SPEC),
        "train.epochs=1",
        f"output_dir={runs}",
        cwd=tmp_path,
        timeout=600,
    )

    assert completed.returncode == 0, _explain(completed)
    run_dirs = [path for path in runs.iterdir() if path.is_dir()]
    assert len(run_dirs) == 1, _explain(completed)
    assert run_dirs[0].name.startswith("digits-bottleneck"), run_dirs
    resolved = [
        path
        for path in run_dirs[0].rglob("*.yaml")
        if "name: bottleneck" in path.read_text(encoding="utf-8")
    ]
    assert resolved, f"no YAML file in {run_dirs[0]} records the bottleneck adapter"

    summary = json.loads((run_dirs[0] / "summary.json").read_text(encoding="utf-8"))
    groups = summary["parameters"]["groups"]
    gate_l1 = summary["final_metrics"]["policy/gate_l1"]
    assert summary["status"] == "completed"
    assert groups["adapter"]["trainable"] == SPEC_ADAPTER_PARAMETERS + SPEC_NORM_PARAMETERS
    assert groups["backbone"]["trainable"] == 0
    # The gates start at 1.0, so a changed mean shows that they were trained.
    assert gate_l1 > 0.0
    assert gate_l1 != 1.0
