"""Spec files: YAML safety, extends, overrides and validation errors."""

from __future__ import annotations

import textwrap
import types
from pathlib import Path
from typing import Literal

import pytest
from pydantic import Field

from adaptlab.core import ComponentConfig, HeadConfig, hookimpl
from adaptlab.core.errors import SpecError
from adaptlab.core.spec import load_spec, load_spec_data, validate_spec
from adaptlab.core.spec._schema import describe_fields, spec_json_schema
from adaptlab.registry import PluginSelection, load_registry


class ToyDataConfig(ComponentConfig):
    size: int = Field(100, ge=1)
    task: str = "label"

    def task_names(self) -> list[str]:
        return [self.task]


class Inner(ComponentConfig):
    depth: int = Field(2, ge=1)
    act: Literal["relu", "gelu"] = "relu"


class ToyBackboneConfig(ComponentConfig):
    width: int = Field(8, gt=0)
    inner: Inner = Field(default_factory=Inner)


class ToyAdapterConfig(ComponentConfig):
    r: int = Field(gt=0)


class OtherAdapterConfig(ComponentConfig):
    scale: float = 1.0


def _plugin():
    module = types.ModuleType("toy")

    @hookimpl
    def adaptlab_register_datasets(register):
        register("toy", config=ToyDataConfig, factory="x:y", summary="Toy data.")

    @hookimpl
    def adaptlab_register_backbones(register):
        register("mlp", config=ToyBackboneConfig, factory="x:y", summary="MLP.")

    @hookimpl
    def adaptlab_register_adapters(register):
        register("lora", config=ToyAdapterConfig, factory="x:y", summary="LoRA.")
        register("scaler", config=OtherAdapterConfig, factory="x:y", summary="Scaler.")

    @hookimpl
    def adaptlab_register_heads(register):
        register("linear", config=HeadConfig, factory="x:y", summary="Linear head.")

    for hook in (
        adaptlab_register_datasets,
        adaptlab_register_backbones,
        adaptlab_register_adapters,
        adaptlab_register_heads,
    ):
        setattr(module, hook.__name__, hook)
    return module


@pytest.fixture
def registry():
    return load_registry(PluginSelection(only=["supervised"]), {"toy": _plugin()})


VALID = """
    seed: 3
    data: {name: toy, size: 50}
    model:
      backbone: {name: mlp, width: 16, inner: {depth: 3}}
      adapter: {name: lora, r: 4}
      heads:
        label: {name: linear, loss_weight: 2.0}
    train: {recipe: supervised, epochs: 2, optimizer: {name: sgd, lr: 0.1}}
"""


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text))
    return path


def problems_of(call) -> list[str]:
    with pytest.raises(SpecError) as caught:
        call()
    return caught.value.problems


def test_valid_spec_resolves_defaults(tmp_path, registry):
    spec = load_spec(write(tmp_path, "s.yaml", VALID), registry=registry)
    assert spec.seed == 3
    assert spec.model.backbone.config.inner.depth == 3
    assert spec.model.backbone.config.inner.act == "relu"
    assert spec.model.heads["label"].config.loss_weight == 2.0
    assert spec.train.config.optimizer.lr == 0.1
    assert spec.train.config.batch_size == 32


def test_resolved_spec_round_trips(tmp_path, registry):
    spec = load_spec(write(tmp_path, "s.yaml", VALID), registry=registry)
    again = validate_spec(spec.to_data(), registry=registry)
    assert again.to_data() == spec.to_data()


def test_malformed_yaml_names_line(tmp_path, registry):
    path = write(tmp_path, "bad.yaml", "data: {name: toy\nmodel: [\n")
    (problem,) = problems_of(lambda: load_spec(path, registry=registry))
    assert "malformed YAML" in problem
    assert "bad.yaml:" in problem


def test_duplicate_yaml_key_rejected(tmp_path, registry):
    path = write(tmp_path, "dup.yaml", "seed: 1\nseed: 2\n")
    (problem,) = problems_of(lambda: load_spec(path, registry=registry))
    assert "duplicate key 'seed'" in problem


def test_python_tags_never_execute(tmp_path, registry):
    path = write(tmp_path, "evil.yaml", "seed: !!python/object/apply:os.system ['echo pwned']\n")
    (problem,) = problems_of(lambda: load_spec(path, registry=registry))
    assert "malformed YAML" in problem


def test_top_level_must_be_mapping(tmp_path, registry):
    path = write(tmp_path, "list.yaml", "- a\n- b\n")
    (problem,) = problems_of(lambda: load_spec(path, registry=registry))
    assert "must be a mapping" in problem


def test_unknown_component_suggests_name(tmp_path, registry):
    text = VALID.replace("name: lora", "name: lorra")
    (problem,) = problems_of(lambda: load_spec(write(tmp_path, "s.yaml", text), registry=registry))
    assert problem.startswith("model.adapter.name: unknown adapter 'lorra'")
    assert "did you mean 'lora'" in problem


def test_errors_at_every_depth_reported_together(tmp_path, registry):
    text = """
        seed: -1
        colour: red
        data: {name: toy, size: many}
        model:
          backbone: {name: mlp, width: 0, inner: {depth: 2, act: tanh, extra: 1}}
          heads:
            label: {name: linear, loss_weight: -1}
        train: {recipe: supervised, optimizer: {lr: 0}}
    """
    problems = problems_of(lambda: load_spec(write(tmp_path, "s.yaml", text), registry=registry))
    joined = "\n".join(problems)
    assert len(problems) == 8
    assert "seed: Input should be greater than or equal to 0 (found -1)" in joined
    assert "colour: unknown field" in joined
    assert "data.size: Input should be a valid integer" in joined
    assert "model.backbone.width: Input should be greater than 0 (found 0)" in joined
    assert "model.backbone.inner.act: Input should be 'relu' or 'gelu' (found 'tanh')" in joined
    assert "model.backbone.inner.extra: unknown field" in joined
    assert "model.heads.label.loss_weight" in joined
    assert "train.optimizer.lr: Input should be greater than 0 (found 0)" in joined


def test_missing_sections_reported(tmp_path, registry):
    problems = problems_of(
        lambda: load_spec(write(tmp_path, "s.yaml", "seed: 1\n"), registry=registry)
    )
    joined = "\n".join(problems)
    for section in ("data", "model", "train"):
        assert f"{section}: missing required section" in joined


def test_missing_required_component_field(tmp_path, registry):
    text = VALID.replace("{name: lora, r: 4}", "{name: lora}")
    (problem,) = problems_of(lambda: load_spec(write(tmp_path, "s.yaml", text), registry=registry))
    assert problem == "model.adapter.r: missing required field (expected int)"


def test_missing_discriminator_lists_choices(tmp_path, registry):
    text = VALID.replace("{name: mlp, width: 16, inner: {depth: 3}}", "{width: 16}")
    (problem,) = problems_of(lambda: load_spec(write(tmp_path, "s.yaml", text), registry=registry))
    assert problem == "model.backbone.name: missing; choose the backbone (available: mlp)"


def test_head_without_dataset_task(tmp_path, registry):
    text = VALID.replace("label: {name: linear", "labl: {name: linear")
    (problem,) = problems_of(lambda: load_spec(write(tmp_path, "s.yaml", text), registry=registry))
    assert "model.heads.labl: dataset 'toy' has no task 'labl'" in problem
    assert "did you mean 'label'" in problem


def test_backbone_or_graph_encoder_required(tmp_path, registry):
    text = VALID.replace("backbone: {name: mlp, width: 16, inner: {depth: 3}}", "backbone: null")
    (problem,) = problems_of(lambda: load_spec(write(tmp_path, "s.yaml", text), registry=registry))
    assert "exactly one of model.backbone" in problem


def test_extends_merges_relative_paths(tmp_path, registry):
    (tmp_path / "base").mkdir()
    write(tmp_path / "base", "common.yaml", VALID)
    child = write(
        tmp_path,
        "child.yaml",
        """
        extends: base/common.yaml
        model:
          backbone: {width: 32}
        train: {epochs: 7}
        """,
    )
    spec = load_spec(child, registry=registry)
    assert spec.model.backbone.config.width == 32
    assert spec.model.backbone.config.inner.depth == 3
    assert spec.train.config.epochs == 7
    assert spec.train.config.optimizer.name == "sgd"


def test_extends_switching_component_drops_old_settings(tmp_path, registry):
    write(tmp_path, "base.yaml", VALID)
    child = write(tmp_path, "child.yaml", "extends: base.yaml\nmodel: {adapter: {name: scaler}}\n")
    spec = load_spec(child, registry=registry)
    assert spec.model.adapter.name == "scaler"
    assert spec.model.adapter.config.scale == 1.0


def test_extends_cycle_detected(tmp_path, registry):
    write(tmp_path, "a.yaml", "extends: b.yaml\nseed: 1\n")
    write(tmp_path, "b.yaml", "extends: a.yaml\n")
    (problem,) = problems_of(lambda: load_spec(tmp_path / "a.yaml", registry=registry))
    assert "cycle" in problem
    assert "a.yaml -> " in problem


def test_extends_missing_file(tmp_path, registry):
    write(tmp_path, "a.yaml", "extends: nowhere.yaml\n")
    (problem,) = problems_of(lambda: load_spec(tmp_path / "a.yaml", registry=registry))
    assert "file not found: 'nowhere.yaml'" in problem
    assert "relative to the including file" in problem


def test_overrides_apply_on_top(tmp_path, registry):
    path = write(tmp_path, "s.yaml", VALID)
    spec = load_spec(
        path,
        ["train.epochs=9", "model.backbone.inner.act=gelu", "train.grad_clip=1.5", "seed=11"],
        registry=registry,
    )
    assert spec.train.config.epochs == 9
    assert spec.model.backbone.config.inner.act == "gelu"
    assert spec.train.config.grad_clip == 1.5
    assert spec.seed == 11


def test_override_switches_component(tmp_path, registry):
    spec = load_spec(
        write(tmp_path, "s.yaml", VALID), ["model.adapter.name=scaler"], registry=registry
    )
    assert spec.model.adapter.name == "scaler"


def test_null_head_removes_inherited_head(tmp_path, registry):
    write(tmp_path, "base.yaml", VALID)
    child = write(tmp_path, "child.yaml", "extends: base.yaml\nmodel:\n  heads:\n    other: {name: linear}\n")

    spec = load_spec(child, ["model.heads.other=null"], registry=registry)

    assert list(spec.model.heads) == ["label"]


def test_override_unknown_path_is_error(tmp_path, registry):
    path = write(tmp_path, "s.yaml", VALID)
    (problem,) = problems_of(lambda: load_spec(path, ["train.epocs=3"], registry=registry))
    assert problem.startswith("train.epocs: unknown field; did you mean 'epochs'?")
    assert "[set by override 'train.epocs=3']" in problem


def test_override_through_scalar_is_error(tmp_path, registry):
    path = write(tmp_path, "s.yaml", VALID)
    (problem,) = problems_of(lambda: load_spec(path, ["seed.value=3"], registry=registry))
    assert "seed is 3, not a section" in problem


def test_override_without_equals_is_error(tmp_path, registry):
    path = write(tmp_path, "s.yaml", VALID)
    (problem,) = problems_of(lambda: load_spec(path, ["train.epochs"], registry=registry))
    assert "expected dotted.path=value" in problem


def test_json_schema_lists_components(registry):
    schema = spec_json_schema(registry)
    text = str(schema)
    assert schema["title"] == "adaptlab spec"
    assert "adapter_lora" in schema["$defs"]
    assert "adapter_scaler" in schema["$defs"]
    assert "recipe_supervised" in schema["$defs"]
    assert "'discriminator'" in text


def test_describe_expands_nested_fields():
    rows = {row["name"]: row for row in describe_fields(ToyBackboneConfig)}
    assert rows["width"]["default"] == "8"
    assert rows["inner.act"]["type"] == "'relu' | 'gelu'"
    assert rows["inner.depth"]["default"] == "2"


def test_load_spec_data_keeps_plain_data(tmp_path):
    data = load_spec_data(write(tmp_path, "s.yaml", VALID))
    assert data["model"]["adapter"] == {"name": "lora", "r": 4}


class MetricHeadConfig(HeadConfig):
    @classmethod
    def metric_names(cls) -> tuple[str, ...]:
        return ("accuracy", "loss")


def test_monitor_checked_against_heads(tmp_path):
    module = _plugin()

    @hookimpl
    def adaptlab_register_heads(register):
        register("linear", config=MetricHeadConfig, factory="x:y", summary="Linear head.")

    module.adaptlab_register_heads = adaptlab_register_heads
    registry = load_registry(PluginSelection(only=["supervised"]), {"toy": module})
    path = write(tmp_path, "s.yaml", VALID)
    assert load_spec(path, ["train.monitor=label/accuracy"], registry=registry)
    (problem,) = problems_of(lambda: load_spec(path, ["train.monitor=label/acc"], registry=registry))
    assert "train.monitor: head 'linear' of task 'label' reports no metric 'acc'" in problem
    assert "did you mean 'accuracy'" in problem
    (problem,) = problems_of(lambda: load_spec(path, ["train.monitor=lbl/loss"], registry=registry))
    assert "train.monitor: no head for task 'lbl'" in problem


def test_top_level_name_override_renames(tmp_path, registry):
    spec = load_spec(write(tmp_path, "s.yaml", VALID), ["name=renamed"], registry=registry)
    assert spec.name == "renamed"
    assert spec.model.adapter.config.r == 4


def test_alias_expansion_is_bounded(tmp_path, registry):
    levels = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for level in range(1, 7):
        previous = f"*a{level - 1}"
        levels.append(f"a{level}: &a{level} [{', '.join([previous] * 10)}]")
    path = write(tmp_path, "bomb.yaml", "\n".join(levels) + "\n")
    (problem,) = problems_of(lambda: load_spec(path, registry=registry))
    assert "expands to more than 100,000 values" in problem


def test_tab_indentation_gets_hint(tmp_path, registry):
    path = write(tmp_path, "tab.yaml", "seed: 1\ndata:\n\tname: toy\n")
    (problem,) = problems_of(lambda: load_spec(path, registry=registry))
    assert "indent with spaces" in problem


def test_union_errors_joined_per_path(tmp_path, registry):
    class UnionConfig(ComponentConfig):
        targets: list[str] | str = "all"

    module = _plugin()

    @hookimpl
    def adaptlab_register_adapters(register):
        register("lora", config=UnionConfig, factory="x:y", summary="LoRA.")

    module.adaptlab_register_adapters = adaptlab_register_adapters
    union_registry = load_registry(PluginSelection(only=["supervised"]), {"toy": module})
    text = VALID.replace("{name: lora, r: 4}", "{name: lora, targets: 5}")
    path = write(tmp_path, "s.yaml", text)
    (problem,) = problems_of(lambda: load_spec(path, registry=union_registry))
    assert problem == (
        "model.adapter.targets: Input should be a valid list or a valid string (found 5)"
    )


def test_seed_rejects_boolean(tmp_path, registry):
    path = write(tmp_path, "s.yaml", VALID)
    (problem,) = problems_of(lambda: load_spec(path, ["seed=true"], registry=registry))
    assert problem.startswith("seed: Input should be a valid integer")
