"""The pascal_context loader on small PASCAL_MT layouts exported from scenes."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from adaptlab.core.errors import ComponentBuildError, SpecError
from adaptlab.core.spec import validate_spec
from adaptlab.plugins.mtlora.data.common import IMAGENET_STD
from adaptlab.plugins.mtlora.data.config import PascalContextConfig, ScenesConfig
from adaptlab.plugins.mtlora.data.export import export_scenes
from adaptlab.plugins.mtlora.data.pascal import build_pascal_context, read_human_parts
from adaptlab.plugins.mtlora.data.scenes import build_scenes

TASKS = ["semseg", "human_parts", "saliency", "normals", "edge"]
SCENES = ScenesConfig(tasks=TASKS, image_size=32, counts={"train": 4, "val": 2})


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pascal") / "PASCAL_MT"
    export_scenes(SCENES, seed=5, folder=folder, layout="pascal_context")
    return folder


def _copy(exported, tmp_path):
    folder = tmp_path / "copy"
    shutil.copytree(exported, folder)
    return folder


def _config(root, **fields) -> PascalContextConfig:
    return PascalContextConfig(root=str(root), image_size=32, tasks=TASKS, **fields)


def test_export_round_trips(exported):
    original = build_scenes(SCENES, seed=5)
    loaded = build_pascal_context(_config(exported), seed=0)

    assert len(loaded.splits["train"]) == 4
    assert len(loaded.splits["val"]) == 2
    for index in range(4):
        image, targets = loaded.splits["train"][index]
        expected_image, expected = original.splits["train"][index]
        for task in ("semseg", "human_parts", "saliency", "edge"):
            assert torch.equal(targets[task], expected[task]), (index, task)
        cosine = (targets["normals"] * expected["normals"]).sum(0).clamp(-1, 1)
        assert torch.rad2deg(torch.acos(cosine)).max() < 1.0
        # JPEG changes pixels by a few levels out of 255.
        levels = (image - expected_image) * torch.tensor(IMAGENET_STD).view(3, 1, 1) * 255
        assert levels.abs().mean() < 6.0


def test_loader_never_writes_into_dataset(exported):
    before = sorted(path.relative_to(exported) for path in exported.rglob("*"))

    bundle = build_pascal_context(_config(exported), seed=0)
    bundle.splits["train"][0]

    assert sorted(path.relative_to(exported) for path in exported.rglob("*")) == before


def test_task_infos_follow_pascal_context(exported):
    bundle = build_pascal_context(_config(exported), seed=0)

    assert bundle.tasks["semseg"].num_classes == 21
    assert bundle.tasks["human_parts"].num_classes == 7
    assert bundle.tasks["saliency"].kind == "saliency"


def test_missing_files_of_one_task(exported, tmp_path):
    folder = _copy(exported, tmp_path)
    for name in ("train_000001.png", "train_000003.png"):
        (folder / "sal_distill" / name).unlink()

    with pytest.raises(ComponentBuildError) as caught:
        build_pascal_context(_config(folder), seed=0)

    message = str(caught.value)
    assert "task 'saliency': 2 of 4 files missing" in message
    assert str(folder / "sal_distill") in message
    assert "semseg" not in message


def test_out_of_range_label_names_file_and_value(exported, tmp_path):
    folder = _copy(exported, tmp_path)
    path = folder / "semseg" / "pascal-context" / "train_000002.png"
    labels = np.asarray(Image.open(path)).copy()
    labels[0, 0] = 33
    Image.fromarray(labels).save(path)
    bundle = build_pascal_context(_config(folder), seed=0)

    with pytest.raises(ComponentBuildError) as caught:
        bundle.splits["train"][2]

    assert str(path) in str(caught.value)
    assert "contains the value 33, outside the 21 classes" in str(caught.value)


def test_image_without_person_parts_is_ignored(tmp_path):
    from scipy.io import savemat

    path = tmp_path / "no_person.mat"
    objects = np.zeros((1, 1), dtype=[("class", "O"), ("class_ind", "O"), ("mask", "O"),
                                      ("parts", "O")])
    objects[0, 0] = ("cat", 8, np.ones((3, 4), dtype=np.uint8), np.zeros((1, 0)))
    savemat(path, {"anno": {"imname": "x", "objects": objects}})

    labels = read_human_parts(path, person_class=15, size=(3, 4))

    assert labels.shape == (3, 4)
    assert (labels == 255).all()


def test_normals_valid_labels_mask(exported):
    # Label ids of pascal-context/trainval are the scene instances here: 0 is floor and wall.
    bundle = build_pascal_context(_config(exported, normals_valid_labels=[0]), seed=0)
    _, targets = bundle.splits["train"][0]
    _, scene_targets = build_scenes(SCENES, seed=5).splits["train"][0]

    valid = targets["normals"].abs().sum(0) > 0
    assert torch.equal(valid, scene_targets["saliency"][0] == 0)


def test_relative_root_is_spec_error():
    data = {
        "data": {"name": "pascal_context", "root": "data/PASCAL_MT", "tasks": ["semseg"]},
        "model": {"backbone": {"name": "swin"}, "heads": {"semseg": {"name": "hrnet"}}},
        "train": {"recipe": "supervised"},
    }

    with pytest.raises(SpecError, match="root 'data/PASCAL_MT' is relative; give an absolute"):
        validate_spec(data)


def test_missing_root_names_folder(tmp_path):
    with pytest.raises(ComponentBuildError, match="folder .* not found; set data.root"):
        build_pascal_context(_config(tmp_path / "absent"), seed=0)


def test_unsupported_task_is_rejected():
    with pytest.raises(ValueError, match="this dataset has no task depth"):
        PascalContextConfig(root="/data", tasks=["semseg", "depth"])


def test_loader_resizes_to_image_size(exported):
    config = PascalContextConfig(root=str(exported), image_size=16, tasks=TASKS)

    image, targets = build_pascal_context(config, seed=0).splits["val"][1]

    assert image.shape == (3, 16, 16)
    assert targets["semseg"].shape == (16, 16)
    assert targets["human_parts"].shape == (16, 16)
    assert targets["saliency"].shape == (1, 16, 16)
    assert targets["edge"].shape == (1, 16, 16)
    assert targets["normals"].shape == (3, 16, 16)
    assert set(targets["human_parts"].unique().tolist()) <= {0, 1, 2, 3}
    assert set(targets["saliency"].unique().tolist()) <= {0.0, 1.0}
    norms = targets["normals"].norm(dim=0)
    torch.testing.assert_close(norms, torch.ones_like(norms), atol=1e-5, rtol=0)
