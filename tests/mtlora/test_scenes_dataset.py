"""The scenes dataset: determinism, exact geometry, delta-m wiring and a short training run."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from adaptlab.core.errors import SpecError
from adaptlab.core.spec import validate_spec
from adaptlab.plugins.mtlora.data.config import ScenesConfig
from adaptlab.plugins.mtlora.data.scenes import boundaries, build_scenes, render_split

ALL_TASKS = ["semseg", "human_parts", "saliency", "normals", "edge", "depth"]


def _config(**fields) -> ScenesConfig:
    fields.setdefault("tasks", ALL_TASKS)
    fields.setdefault("image_size", 32)
    fields.setdefault("counts", {"train": 6, "val": 3})
    return ScenesConfig(**fields)


def test_same_seed_gives_identical_tensors():
    first = build_scenes(_config(), seed=3)
    second = build_scenes(_config(), seed=3)

    for split in ("train", "val"):
        for index in range(len(first.splits[split])):
            image_a, targets_a = first.splits[split][index]
            image_b, targets_b = second.splits[split][index]
            assert torch.equal(image_a, image_b)
            for task in ALL_TASKS:
                assert torch.equal(targets_a[task], targets_b[task]), (split, index, task)


def test_other_seed_gives_other_scenes():
    image_a, _ = build_scenes(_config(), seed=3).splits["train"][0]
    image_b, _ = build_scenes(_config(), seed=4).splits["train"][0]

    assert not torch.equal(image_a, image_b)


def test_config_seed_overrides_spec_seed():
    image_a, _ = build_scenes(_config(seed=11), seed=3).splits["train"][0]
    image_b, _ = build_scenes(_config(seed=11), seed=4).splits["train"][0]

    assert torch.equal(image_a, image_b)


def test_targets_are_exact_and_consistent():
    scenes = render_split(_config(image_size=48, object_classes=5), seed=0, split="train", count=8)

    for scene in scenes:
        objects = scene.instance > 0
        assert objects.any()
        norms = np.linalg.norm(scene.normals, axis=-1)
        np.testing.assert_allclose(norms, 1.0, atol=1e-5)
        assert (scene.depth > 0).all()
        # Objects stand between 2 and 8 m; the wall is at 12 m.
        assert scene.depth[objects].min() > 2.0
        assert scene.depth[objects].max() < 8.0
        assert np.array_equal(scene.semseg > 0, objects)
        assert set(np.unique(scene.semseg)) <= set(range(6))
        assert set(np.unique(scene.parts[objects])) <= {1, 2, 3}
        assert (scene.parts[~objects] == 0).all()
        # Every visible surface faces its pixel's ray: normal . ray < 0, with rays
        # (u, v, -1) in the targets' frame (z toward the camera).
        centres = (np.arange(48) + 0.5 - 24) / 48
        u, v = np.meshgrid(centres, -centres)
        facing = scene.normals[..., 0] * u + scene.normals[..., 1] * v - scene.normals[..., 2]
        assert (facing < 1e-6).all()
        assert np.array_equal(scene.edge, boundaries(scene.instance))


def test_item_encoding_matches_task_contract():
    bundle = build_scenes(_config(), seed=0)
    image, targets = bundle.splits["train"][0]

    assert image.shape == (3, 32, 32)
    assert image.dtype == torch.float32
    assert targets["semseg"].dtype == torch.int64
    assert targets["semseg"].shape == (32, 32)
    assert targets["saliency"].shape == (1, 32, 32)
    assert set(targets["saliency"].unique().tolist()) <= {0.0, 1.0}
    assert targets["normals"].shape == (3, 32, 32)
    assert targets["depth"].shape == (1, 32, 32)
    assert bundle.tasks["semseg"].num_classes == 5
    assert bundle.tasks["human_parts"].num_classes == 4
    assert bundle.tasks["normals"].kind == "normals"


def test_delta_m_is_derived_with_baselines():
    bundle = build_scenes(
        _config(tasks=["semseg", "normals"],
                single_task={"semseg/miou": 50.0, "normals/mean_error": 20.0}),
        seed=0,
    )

    derived = bundle.derived_metrics({"semseg/miou": 55.0, "normals/mean_error": 20.0})

    assert derived["delta_m"] == pytest.approx(5.0)


def test_no_baselines_means_no_derived_metric():
    assert build_scenes(_config(), seed=0).derived_metrics is None


def _spec_data(**train) -> dict:
    return {
        "seed": 0,
        "data": {"name": "scenes", "image_size": 32, "tasks": ["semseg", "normals"],
                 "counts": {"train": 8, "val": 4}},
        "model": {
            "backbone": {"name": "swin", "variant": "swin_tiny_patch4_window7_224",
                         "image_size": 32, "window_size": 2, "embed_dim": 8,
                         "depths": [1, 1, 1, 1], "num_heads": [1, 1, 2, 2]},
            "adapter": {"name": "mtlora", "shared_rank": 2, "task_rank": 2, "scale": 4.0},
            "heads": {
                "semseg": {"name": "hrnet", "channels": [4, 4, 4, 4], "hidden_multiplier": 1},
                "normals": {"name": "hrnet", "channels": [4, 4, 4, 4], "hidden_multiplier": 1,
                            "loss_weight": 10.0},
            },
        },
        "train": {"recipe": "supervised", "epochs": 1, "batch_size": 4, **train},
    }


def test_delta_m_monitor_without_baselines_is_spec_error():
    with pytest.raises(SpecError, match="delta_m needs single-task baselines"):
        validate_spec(_spec_data(monitor="delta_m"))


def test_baseline_for_missing_task_is_spec_error():
    data = _spec_data()
    data["data"]["single_task"] = {"depth/rmse": 1.0}

    with pytest.raises(SpecError, match="names task 'depth', which is not in tasks"):
        validate_spec(data)


def test_delta_m_headless_baseline_rejected():
    data = _spec_data(monitor="delta_m")
    data["data"]["tasks"] = ["semseg", "normals", "depth"]
    data["data"]["single_task"] = {"semseg/miou": 50.0, "depth/rmse": 1.0}

    with pytest.raises(SpecError) as caught:
        validate_spec(data)

    message = str(caught.value)
    assert "delta_m baselines depth/rmse" in message
    assert "no head in model.heads (heads: semseg, normals)" in message
    assert "add a head for each of those tasks or remove those baselines" in message
    assert "\n" not in message


def test_headless_baseline_without_delta_m_valid():
    data = _spec_data(monitor="semseg/miou")
    data["data"]["tasks"] = ["semseg", "normals", "depth"]
    data["data"]["single_task"] = {"depth/rmse": 1.0}

    validate_spec(data)


def test_delta_m_mode_min_rejected():
    data = _spec_data(monitor="delta_m", mode="min")
    data["data"]["single_task"] = {"semseg/miou": 50.0}

    with pytest.raises(SpecError, match="delta_m is higher-is-better.*set train.mode to max"):
        validate_spec(data)

    for mode in ("max", None):
        data["train"]["mode"] = mode
        validate_spec(data)


def test_check_monitor_one_argument():
    config = ScenesConfig(tasks=["semseg", "depth"], single_task={"depth/rmse": 1.0})

    assert config.check_monitor("delta_m") is None
    assert "depth/rmse" in config.check_monitor("delta_m", tasks=["semseg"])
    assert config.check_monitor("other") is None


def test_training_on_scenes_reports_delta_m(tmp_path):
    from adaptlab.core.training.api import train

    data = _spec_data(monitor="delta_m")
    data["output_dir"] = str(tmp_path)
    data["data"]["single_task"] = {"semseg/miou": 50.0, "normals/mean_error": 30.0}

    summary = train(validate_spec(data))

    metrics = summary["final_metrics"]
    expected = 100.0 / 2 * (
        (metrics["semseg/miou"] - 50.0) / 50.0 - (metrics["normals/mean_error"] - 30.0) / 30.0
    )
    assert summary["status"] == "completed"
    assert metrics["delta_m"] == pytest.approx(expected)
    assert summary["monitor"] == {"name": "delta_m", "mode": "max"}
    assert 0.0 <= metrics["semseg/miou"] <= 100.0
    logged = json.loads((tmp_path / summary["run_dir"] / "metrics.jsonl").read_text().splitlines()[-1])
    assert "delta_m" in json.dumps(logged)
