"""The nyud loader on small NYUD_MT layouts exported from scenes."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from adaptlab.core.errors import ComponentBuildError
from adaptlab.plugins.mtlora.data.config import NyudConfig, ScenesConfig
from adaptlab.plugins.mtlora.data.export import export_scenes
from adaptlab.plugins.mtlora.data.nyud import build_nyud
from adaptlab.plugins.mtlora.data.scenes import build_scenes

TASKS = ["semseg", "normals", "edge", "depth"]
SCENES = ScenesConfig(tasks=TASKS, image_size=32, counts={"train": 3, "val": 2})


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    folder = tmp_path_factory.mktemp("nyud") / "NYUD_MT"
    export_scenes(SCENES, seed=2, folder=folder, layout="nyud")
    return folder


def _config(root, **fields) -> NyudConfig:
    return NyudConfig(root=str(root), image_size=32, tasks=TASKS, **fields)


def test_export_round_trips(exported):
    original = build_scenes(SCENES, seed=2)
    loaded = build_nyud(_config(exported), seed=0)

    assert len(loaded.splits["train"]) == 3
    for index in range(3):
        _, targets = loaded.splits["train"][index]
        _, expected = original.splits["train"][index]
        for task in ("semseg", "edge", "depth"):
            assert torch.equal(targets[task], expected[task]), (index, task)
        torch.testing.assert_close(targets["normals"], expected["normals"], atol=1e-6, rtol=0)
    assert loaded.tasks["semseg"].num_classes == 40


def test_unlabelled_and_invalid_pixels(exported, tmp_path):
    folder = tmp_path / "copy"
    shutil.copytree(exported, folder)
    path = folder / "segmentation" / "train_000000.png"
    labels = np.asarray(Image.open(path)).copy()
    labels[0, :] = 0
    Image.fromarray(labels).save(path)
    depth = np.load(folder / "depth" / "train_000000.npy")
    depth[1, :] = 0.0
    np.save(folder / "depth" / "train_000000.npy", depth)

    _, targets = build_nyud(_config(folder), seed=0).splits["train"][0]

    assert (targets["semseg"][0] == 255).all()
    assert (targets["depth"][0, 1] == 0).all()


def test_missing_depth_files(exported, tmp_path):
    folder = tmp_path / "copy"
    shutil.copytree(exported, folder)
    (folder / "depth" / "val_000001.npy").unlink()

    with pytest.raises(ComponentBuildError) as caught:
        build_nyud(_config(folder), seed=0)

    message = str(caught.value)
    assert "task 'depth': 1 of 2 files missing" in message
    assert str(folder / "depth") in message


def test_out_of_range_label_names_file_and_value(exported, tmp_path):
    folder = tmp_path / "copy"
    shutil.copytree(exported, folder)
    path = folder / "segmentation" / "train_000001.png"
    labels = np.asarray(Image.open(path)).copy()
    labels[3, 3] = 45
    Image.fromarray(labels).save(path)
    bundle = build_nyud(_config(folder), seed=0)

    with pytest.raises(ComponentBuildError) as caught:
        bundle.splits["train"][1]

    assert str(path) in str(caught.value)
    assert "contains the value 45" in str(caught.value)


def test_missing_split_list(exported):
    with pytest.raises(ComponentBuildError, match="split list .*test.txt' not found"):
        build_nyud(_config(exported, test_split="test"), seed=0)
