"""The example specs of examples/mtlora validate, and the LoRA baseline adapts only blocks."""

from __future__ import annotations

from pathlib import Path

import pytest

from adaptlab.core.compose import build_data, build_model
from adaptlab.core.errors import SpecError
from adaptlab.core.spec import load_spec

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "mtlora"


@pytest.mark.parametrize("name", sorted(path.name for path in EXAMPLES.glob("*.yaml")))
def test_example_validates(name):
    spec = load_spec(EXAMPLES / name)

    assert spec.data.name in {"scenes", "pascal_context"}
    assert set(spec.model.heads) == set(spec.data.config.tasks)


def test_misspelt_monitor_metric_rejected():
    with pytest.raises(SpecError, match=r"reports no metric 'mIoU'; did you mean 'miou'\?"):
        load_spec(EXAMPLES / "scenes_cpu.yaml", ["train.monitor=semseg/mIoU"])


def test_published_configuration_values():
    spec = load_spec(EXAMPLES / "pascal_swin_t.yaml")

    assert spec.model.adapter.config.shared_rank == 64
    assert spec.model.adapter.config.task_rank == 4
    assert spec.model.adapter.config.scale == 4.0
    assert spec.model.backbone.config.image_size == 448
    assert spec.train.config.epochs == 300
    weights = {task: head.config.loss_weight for task, head in spec.model.heads.items()}
    assert weights == {"semseg": 1.0, "human_parts": 2.0, "saliency": 5.0, "normals": 10.0}


def test_lora_baseline_leaves_patch_embedding_alone():
    spec = load_spec(
        EXAMPLES / "scenes_lora_baseline.yaml",
        ["data.counts.train=2", "data.counts.val=1", "data.counts.test=0"],
    )
    bundle = build_data(spec)
    model = build_model(spec, bundle.tasks)

    adapted = {name.rsplit(".lora_A", 1)[0] for name, _ in model.named_parameters() if ".lora_A" in name}
    assert adapted
    assert not any("patch_embed" in name for name in adapted)
    assert all(".blocks." in name for name in adapted)
    # qkv, proj, fc1 and fc2 of each of the 8 blocks.
    assert len(adapted) == 32
