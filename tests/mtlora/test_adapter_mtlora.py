"""The ``mtlora`` adapter: configuration checks, layer injection, trainable rules, task streams."""

from __future__ import annotations

import pytest
import torch
from pydantic import ValidationError
from swin_testkit import TINY_SIZE, TWO_TASKS, compose, perturb_adapter, tiny_backbone
from torch import nn

from adaptlab.core.compose import parameter_groups
from adaptlab.core.errors import ComponentBuildError
from adaptlab.plugins.mtlora.adapter import build_mtlora_adapter
from adaptlab.plugins.mtlora.config import MTLoRAConfig
from adaptlab.plugins.mtlora.lora import MTLoRALinear
from adaptlab.registry import get_registry


@pytest.mark.parametrize(
    "settings",
    [
        {"shared_rank": 0},
        {"shared_rank": -4},
        {"shared_rank": [16, 16, 0, 16]},
        {"task_rank": 0},
        {"task_rank": {"semseg": 4, "normals": -1}},
    ],
)
def test_rank_not_positive_rejected(settings) -> None:
    with pytest.raises(ValidationError, match="must be a positive integer"):
        MTLoRAConfig(**settings)


def test_config_shape_errors() -> None:
    with pytest.raises(ValidationError, match="one rank per stage"):
        MTLoRAConfig(shared_rank=[8, 8])
    with pytest.raises(ValidationError, match="numbered 1 to 4"):
        MTLoRAConfig(stages=[0, 1])
    with pytest.raises(ValidationError, match="qkv listed more than once"):
        MTLoRAConfig(shared_layers=["qkv", "qkv"])
    with pytest.raises(ValidationError, match="Input should be 'proj', 'fc1' or 'fc2'"):
        MTLoRAConfig(task_layers=["qkv"])


def test_registry_passes_tasks() -> None:
    component = get_registry().get("adapter", "mtlora")
    config = component.config.model_validate({"shared_rank": 4, "task_rank": 2})
    adapter = component.build(config, tasks=("semseg", "normals"))

    assert adapter.tasks == ("semseg", "normals")
    assert adapter.task_ranks == {"semseg": 2, "normals": 2}


def test_task_rank_mapping_must_match_tasks() -> None:
    config = MTLoRAConfig(task_rank={"semseg": 4, "depth": 2})

    with pytest.raises(ComponentBuildError, match="missing: normals, unknown: depth"):
        build_mtlora_adapter(config, ("semseg", "normals"))
    with pytest.raises(ComponentBuildError, match="needs the task names"):
        build_mtlora_adapter(MTLoRAConfig(), ())


def test_rejects_other_backbone() -> None:
    adapter = build_mtlora_adapter(MTLoRAConfig(), ("semseg",))

    with pytest.raises(ComponentBuildError, match="needs the 'swin' backbone"):
        adapter.apply(nn.Sequential(nn.Linear(4, 4)))


def test_layers_and_ranks() -> None:
    config = MTLoRAConfig(shared_rank=[2, 3, 4, 5], task_rank={"semseg": 1, "normals": 2})
    backbone = build_mtlora_adapter(config, tuple(TWO_TASKS)).apply(tiny_backbone())
    stages = backbone.model.layers

    # Stage 2 has two blocks: only the last one carries task branches, and never on qkv.
    first, last = stages[1].blocks
    assert isinstance(first.attn.qkv, MTLoRALinear) and first.attn.qkv.task_names == ()
    assert first.mlp.fc1.task_names == ()
    assert last.attn.qkv.task_names == ()
    for layer in (last.attn.proj, last.mlp.fc1, last.mlp.fc2):
        assert layer.task_names == ("semseg", "normals")
        assert layer.lora_a.shape[0] == 3
        assert layer.lora_task_a["semseg"].shape[0] == 1
        assert layer.lora_task_a["normals"].shape[0] == 2
    assert stages[3].blocks[0].attn.qkv.lora_a.shape == (5, 192)
    assert isinstance(stages[1].downsample.reduction, nn.Linear)
    assert backbone.task_stages == frozenset({0, 1, 2, 3})


def test_task_layers_without_shared_branch() -> None:
    config = MTLoRAConfig(shared_rank=2, task_rank=1, shared_layers=["qkv"])
    backbone = build_mtlora_adapter(config, tuple(TWO_TASKS)).apply(tiny_backbone())
    last = backbone.model.layers[1].blocks[1]

    assert isinstance(last.attn.qkv, MTLoRALinear)
    assert type(backbone.model.layers[1].blocks[0].mlp.fc1) is nn.Linear
    for layer in (last.attn.proj, last.mlp.fc1, last.mlp.fc2):
        assert layer.task_names == ("semseg", "normals")
        assert not hasattr(layer, "lora_a")
    features = backbone(torch.randn(1, 3, TINY_SIZE, TINY_SIZE))
    assert tuple(features["tasks"]["normals"][1].shape) == (1, 96, 4, 4)


def test_patch_merging_branch_freezes_reduction() -> None:
    backbone = build_mtlora_adapter(
        MTLoRAConfig(shared_rank=4, patch_merging=True), tuple(TWO_TASKS)
    ).apply(tiny_backbone())
    reduction = backbone.model.layers[1].downsample.reduction

    assert isinstance(reduction, MTLoRALinear)
    assert reduction.lora_a.shape == (4, 4 * 24)
    assert not reduction.base.weight.requires_grad
    assert reduction.lora_b.requires_grad


def test_trainable_rules() -> None:
    model = compose(tiny_backbone(), TWO_TASKS, MTLoRAConfig(shared_rank=2, task_rank=1))
    trainable = {n for n, p in model.backbone.named_parameters() if p.requires_grad}
    frozen = {n for n, p in model.backbone.named_parameters() if not p.requires_grad}

    assert "model.layers.0.blocks.0.attn.qkv.base.weight" in frozen
    assert "model.layers.0.blocks.0.attn.qkv.base.bias" in frozen
    assert "model.layers.0.blocks.0.mlp.fc2.base.weight" in frozen
    assert "model.layers.0.blocks.0.attn.qkv.lora_a" in trainable
    assert "model.layers.0.blocks.0.mlp.fc1.lora_task_b.normals" in trainable
    assert "model.layers.0.blocks.0.norm1.weight" in trainable
    assert "model.layers.1.downsample.norm.bias" in trainable
    assert "model.layers.1.downsample.reduction.weight" in trainable
    assert "model.patch_embed.proj.weight" in trainable
    assert "model.patch_embed.norm.weight" in trainable
    assert "model.layers.2.blocks.0.attn.relative_position_bias_table" in trainable
    assert {name.rsplit(".", 2)[-2] for name in frozen} <= {"base"}


def test_parameter_groups_of_adapter() -> None:
    model = compose(tiny_backbone(), TWO_TASKS, MTLoRAConfig(shared_rank=2, task_rank=1))
    groups = parameter_groups(model)
    lora = sum(p.numel() for n, p in model.backbone.named_parameters() if ".lora_" in n)
    trained = sum(p.numel() for p in model.backbone.parameters() if p.requires_grad)
    frozen = sum(p.numel() for p in model.backbone.parameters() if not p.requires_grad)

    assert groups["adapter"] == {"trainable": lora, "total": lora}
    assert groups["other"] == {"trainable": trained - lora, "total": trained - lora}
    assert groups["backbone"] == {"trainable": 0, "total": frozen}
    assert groups["heads"]["trainable"] == sum(p.numel() for p in model.heads.parameters())


def test_unfrozen_subset() -> None:
    model = compose(tiny_backbone(), TWO_TASKS, MTLoRAConfig(unfrozen=["norm"]))
    names = {n for n, p in model.backbone.named_parameters() if p.requires_grad and ".lora_" not in n}

    assert names and all(".norm" in name or "norm1" in name or "norm2" in name for name in names)


def test_zero_init_matches_plain_backbone() -> None:
    plain = tiny_backbone().eval()
    adapted = build_mtlora_adapter(MTLoRAConfig(shared_rank=4), tuple(TWO_TASKS)).apply(
        tiny_backbone()
    ).eval()
    images = torch.randn(2, 3, TINY_SIZE, TINY_SIZE)
    with torch.no_grad():
        expected = plain(images)["stages"]
        features = adapted(images)

    for stage, reference in enumerate(expected):
        assert torch.equal(features["stages"][stage], reference)
        for task in TWO_TASKS:
            assert torch.equal(features["tasks"][task][stage], reference)


def test_task_streams_differ_after_step() -> None:
    model = compose(tiny_backbone(), TWO_TASKS, MTLoRAConfig(shared_rank=2, task_rank=2))
    images = torch.randn(2, 3, TINY_SIZE, TINY_SIZE)
    targets = {
        "semseg": torch.randint(0, 5, (2, TINY_SIZE, TINY_SIZE)),
        "normals": torch.nn.functional.normalize(torch.randn(2, 3, TINY_SIZE, TINY_SIZE), dim=1),
    }
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(trainable, lr=0.5)

    model.train()
    outputs = model(images)
    loss = sum(model.heads[t].loss(outputs[t], targets[t]) for t in TWO_TASKS)
    loss.backward()
    optimizer.step()
    model.eval()
    with torch.no_grad():
        streams = model.backbone(images)["tasks"]

    for stage in range(4):
        difference = (streams["semseg"][stage] - streams["normals"][stage]).abs().max()
        assert difference > 1e-6, f"stage {stage + 1}"


@pytest.mark.parametrize("combine", ["task", "task_plus_shared", "normalized_sum"])
def test_combine_modes(combine) -> None:
    backbone = build_mtlora_adapter(
        MTLoRAConfig(shared_rank=2, task_rank=1, combine=combine), tuple(TWO_TASKS)
    ).apply(tiny_backbone())
    perturb_adapter(backbone)
    layer = backbone.model.layers[0].blocks[0].mlp.fc1
    x = torch.randn(3, 24)
    task_input = torch.randn(2, 3, 24)

    layer.eval()
    shared, tasks = layer.forward_tasks(x, task_input)
    frozen = layer.base(x)
    semseg_update = layer._task_update("semseg", task_input[0])
    normals_update = layer._task_update("normals", task_input[1])
    assert tasks.shape == (2, 3, 96)
    if combine == "normalized_sum":
        assert not hasattr(layer, "lora_a")
        expected_shared = frozen + layer.lora_norm(2 * frozen + semseg_update + normals_update)
        assert torch.allclose(shared, expected_shared, atol=1e-5)
        assert torch.allclose(tasks[0], frozen + semseg_update, atol=1e-5)
    else:
        shared_update = layer._shared_update(x)
        assert torch.allclose(shared, frozen + shared_update, atol=1e-5)
        extra = shared_update if combine == "task_plus_shared" else 0.0
        assert torch.allclose(tasks[0], frozen + semseg_update + extra, atol=1e-5)
        assert torch.allclose(tasks[1], frozen + normals_update + extra, atol=1e-5)


def test_unequal_task_ranks_match_equal_path() -> None:
    backbone = build_mtlora_adapter(
        MTLoRAConfig(shared_rank=2, task_rank={"normals": 3, "semseg": 1}), tuple(TWO_TASKS)
    ).apply(tiny_backbone())
    perturb_adapter(backbone)
    layer = backbone.model.layers[0].blocks[0].mlp.fc2
    hidden = torch.randn(2, 5, 96)

    layer.eval()
    _, tasks = layer.forward_tasks(hidden)

    assert layer.task_names == ("semseg", "normals")
    for position, task in enumerate(layer.task_names):
        expected = layer.base(hidden) + layer._task_update(task, hidden)
        assert torch.allclose(tasks[position], expected, atol=1e-5)
