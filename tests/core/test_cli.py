"""The ``adaptlab`` command line, run as a real subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

HEAVY = ("torch", "timm", "peft", "transformers", "torch_geometric", "ray", "numpy")

SPEC = """
    name: digits-cli
    data: {name: digits, image_size: 16}
    model:
      backbone: {name: timm, model: resnet18}
      adapter: {name: lora, r: 4, target_modules: [conv2]}
      heads:
        digit: {name: classification}
    train: {recipe: supervised, epochs: 1, batch_size: 64}
"""


def run_cli(*arguments: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "adaptlab.core.cli", *arguments],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=dict(os.environ),
        timeout=120,
    )


def heavy_modules_after(*arguments: str) -> list[str]:
    """Run the CLI in-process in a fresh interpreter and list heavy modules it imported."""
    code = (
        "import sys\n"
        "from adaptlab.core.cli import main\n"
        f"try:\n    main({list(arguments)!r})\nexcept SystemExit:\n    pass\n"
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & {set(HEAVY)!r}))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    return json.loads(result.stdout.strip().splitlines()[-1].replace("'", '"'))


@pytest.fixture
def spec_file(tmp_path: Path) -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text(textwrap.dedent(SPEC))
    return path


@pytest.mark.parametrize(
    "arguments",
    [
        ("--help",),
        ("components",),
        ("plugins",),
        ("describe", "adapter", "lora"),
        ("validate", "SPEC"),
    ],
)
def test_cheap_commands_skip_heavy_imports(arguments, spec_file):
    arguments = tuple(str(spec_file) if a == "SPEC" else a for a in arguments)
    assert heavy_modules_after(*arguments) == []


def test_plugins_lists_versions_and_api():
    result = run_cli("plugins")
    assert result.returncode == 0
    assert "supervised" in result.stdout
    assert "recipe:supervised" in result.stdout
    assert "1.0" in result.stdout


def test_components_filters_kind_and_pattern():
    result = run_cli("components", "adapter", "lo*")
    assert result.returncode == 0
    names = [line.split()[1] for line in result.stdout.splitlines()[1:]]
    assert "lora" in names
    assert all(name.startswith("lo") for name in names)


def test_components_pattern_without_kind():
    result = run_cli("components", "digit*")
    assert result.returncode == 0
    assert "dataset" in result.stdout


def test_describe_shows_fields_and_defaults():
    result = run_cli("describe", "recipe", "supervised")
    assert result.returncode == 0
    assert "optimizer.lr" in result.stdout
    assert "0.001" in result.stdout


def test_describe_unknown_component_exit_two():
    result = run_cli("describe", "adapter", "lorra")
    assert result.returncode == 2
    assert "did you mean 'lora'" in result.stderr
    assert "Traceback" not in result.stderr


def test_validate_valid_spec(spec_file):
    result = run_cli("validate", str(spec_file))
    assert result.returncode == 0, result.stderr
    assert "valid" in result.stdout


def test_validate_reports_all_errors_exit_two(spec_file):
    result = run_cli("validate", str(spec_file), "train.epochs=0", "model.adapter.r=-2")
    assert result.returncode == 2
    assert "2 problems" in result.stderr
    assert "train.epochs" in result.stderr
    assert "model.adapter.r" in result.stderr
    assert "Traceback" not in result.stderr


def test_validate_missing_file_exit_two(tmp_path):
    result = run_cli("validate", str(tmp_path / "absent.yaml"))
    assert result.returncode == 2
    assert "file not found" in result.stderr
    assert "Traceback" not in result.stderr


def test_show_prints_resolved_defaults(spec_file):
    result = run_cli("show", str(spec_file), "train.epochs=4")
    assert result.returncode == 0, result.stderr
    assert "epochs: 4" in result.stdout
    assert "weight_decay: 0.01" in result.stdout


def test_schema_writes_json_file(tmp_path):
    target = tmp_path / "schema.json"
    result = run_cli("schema", "--output", str(target))
    assert result.returncode == 0, result.stderr
    schema = json.loads(target.read_text())
    assert "adapter_lora" in schema["$defs"]


def test_disable_plugin_flag_removes_components():
    result = run_cli("--disable-plugin", "peft", "components", "adapter")
    assert result.returncode == 0
    names = [line.split()[1] for line in result.stdout.splitlines()[1:] if line.strip()]
    assert "lora" not in names


def test_train_without_spec_is_usage_error():
    result = run_cli("train")
    assert result.returncode == 2
    assert "--resume" in result.stderr


def test_resume_with_overrides_is_usage_error(tmp_path):
    result = run_cli("train", "--resume", str(tmp_path), "train.epochs=2")
    assert result.returncode == 2
    assert "overrides cannot change a resumed run" in result.stderr


def test_schema_to_missing_folder_exit_two(tmp_path):
    result = run_cli("schema", "--output", str(tmp_path / "absent" / "schema.json"))
    assert result.returncode == 2
    assert "cannot write" in result.stderr
    assert "Traceback" not in result.stderr


def test_validate_without_spec_shows_usage():
    result = run_cli("validate")
    assert result.returncode == 2
    assert "SPEC [PATH=VALUE ...]" in result.stderr


def test_validate_rejects_stray_argument(spec_file):
    result = run_cli("validate", str(spec_file), "epochs")
    assert result.returncode == 2
    assert "invalid override 'epochs'" in result.stderr


def test_components_misspelt_kind_suggests():
    result = run_cli("components", "adaptor")
    assert result.returncode == 0
    assert "did you mean 'adapter'" in result.stdout


def test_disabling_unknown_plugin_warns():
    result = run_cli("--disable-plugin", "nosuch", "components")
    assert result.returncode == 0
    assert "plugin 'nosuch' was disabled but no installed package provides it" in result.stderr


def test_table_fits_narrow_terminal():
    env = dict(os.environ, COLUMNS="80")
    result = subprocess.run(
        [sys.executable, "-m", "adaptlab.core.cli", "describe", "adapter", "lora"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert result.returncode == 0
    assert max(len(line) for line in result.stdout.splitlines()) <= 80


def test_validate_build_catches_bad_model(spec_file):
    result = run_cli("validate", "--build", str(spec_file), "model.backbone.model=resnet_nope")
    assert result.returncode == 2
    assert "resnet_nope" in result.stderr
    assert "Traceback" not in result.stderr


def test_validate_build_reports_sizes(spec_file):
    result = run_cli("validate", "--build", str(spec_file))
    assert result.returncode == 0, result.stderr
    assert "splits train 1439, val 179, test 179" in result.stdout
