"""Tests of the vision plugin: classification head and metric, image_folder and digits."""

from __future__ import annotations

import math
import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import pytest
import torch
from PIL import Image
from pydantic import ValidationError
from sklearn.metrics import f1_score

from adaptlab.core.contracts import TaskInfo, TaskHead
from adaptlab.core.errors import ComponentBuildError, SpecError
from adaptlab.core.spec import load_spec
from adaptlab.plugins.vision.config import (
    ClassificationHeadConfig,
    DigitsConfig,
    ImageFolderConfig,
)
from adaptlab.plugins.vision.digits import MARKER_NAME
from adaptlab.registry import PluginSelection, load_registry

DIGITS_SPEC = Path(__file__).resolve().parents[2] / "examples" / "digits" / "lora.yaml"
THREE_CLASSES = TaskInfo(name="label", kind="classification", num_classes=3)


@pytest.fixture(scope="module")
def registry():
    return load_registry(PluginSelection(only=["vision"]))


def make_head(registry, task=THREE_CLASSES, in_features=8, **fields):
    component = registry.get("head", "classification")
    return component.build(component.config(**fields), task=task, in_features=in_features)


def build_dataset(registry, name, seed=0, **fields):
    component = registry.get("dataset", name)
    return component.build(component.config(**fields), seed=seed)


def write_png(path, color, size=(20, 12), mode="RGB"):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, color).save(path)


@pytest.fixture
def pets(tmp_path):
    """Two classes of five 20x12 PNG images each; every cat is white, every dog is black."""
    root = tmp_path / "pets"
    for index in range(5):
        write_png(root / "cat" / f"c{index}.png", (255, 255, 255))
        write_png(root / "dog" / f"d{index}.jpg", (0, 0, 0))
    (root / "dog" / "notes.txt").write_text("not an image")
    return root


# Classification head and metric ------------------------------------------------------------


def test_head_mlp_shapes_and_size(registry):
    head = make_head(registry, hidden=[16], dropout=0.1)

    logits = head(torch.randn(4, 8))

    assert isinstance(head, TaskHead)
    assert logits.shape == (4, 3)
    assert sum(p.numel() for p in head.parameters()) == (8 * 16 + 16) + (16 * 3 + 3)


def test_head_loss_uniform_logits(registry):
    head = make_head(registry)

    loss = head.loss(torch.zeros(5, 3), torch.tensor([0, 1, 2, 0, 1]))

    assert loss.item() == pytest.approx(math.log(3))


def test_head_loss_label_smoothing(registry):
    head = make_head(registry, label_smoothing=0.3)
    logits = torch.tensor([[2.0, 0.0, -1.0]])

    loss = head.loss(logits, torch.tensor([0]))

    log_p = torch.log_softmax(logits, dim=1)[0]
    expected = 0.7 * -log_p[0] + 0.3 * -log_p.mean()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)


def test_metric_perfect_predictions(registry):
    metric = make_head(registry).new_metric()
    target = torch.tensor([0, 1, 2, 2])

    metric.update(10.0 * torch.nn.functional.one_hot(target, 3).float(), target)
    result = metric.compute()

    assert result["accuracy"] == 1.0
    assert result["macro_f1"] == 1.0
    assert result["loss"] < 1e-3


def test_metric_known_confusion(registry):
    metric = make_head(registry).new_metric()
    target = [0, 0, 1, 1, 2, 2]
    predicted = [0, 1, 1, 1, 2, 0]
    logits = torch.nn.functional.one_hot(torch.tensor(predicted), 3).float()

    # Two batches: the metric accumulates over the whole split.
    metric.update(logits[:4], torch.tensor(target[:4]))
    metric.update(logits[4:], torch.tensor(target[4:]))
    result = metric.compute()

    # Per-class F1: class 0 = 1/2, class 1 = 4/5, class 2 = 2/3.
    assert result["accuracy"] == pytest.approx(4 / 6)
    assert result["macro_f1"] == pytest.approx((0.5 + 0.8 + 2 / 3) / 3)
    assert result["macro_f1"] == pytest.approx(f1_score(target, predicted, average="macro"))
    one_hot_loss = -torch.log_softmax(torch.tensor([1.0, 0.0, 0.0]), 0)
    assert result["loss"] == pytest.approx((4 * one_hot_loss[0] + 2 * one_hot_loss[1]).item() / 6)


def test_metric_absent_class_excluded(registry):
    metric = make_head(registry).new_metric()
    target = torch.tensor([0, 1, 1])

    metric.update(torch.nn.functional.one_hot(torch.tensor([0, 1, 0]), 3).float(), target)

    expected = f1_score([0, 1, 1], [0, 1, 0], average="macro")
    assert metric.compute()["macro_f1"] == pytest.approx(expected)


def test_metric_empty_rejected(registry):
    with pytest.raises(ValueError, match="no samples"):
        make_head(registry).new_metric().compute()


@pytest.mark.parametrize(
    ("task", "expected"),
    [
        (TaskInfo(name="depth", kind="regression", num_outputs=1), "of kind 'regression'"),
        (TaskInfo(name="label", kind="classification"), "num_classes=None"),
    ],
)
def test_head_rejects_wrong_task(registry, task, expected):
    with pytest.raises(ComponentBuildError, match=expected):
        make_head(registry, task=task)


def test_head_metric_names_match_compute(registry):
    metric = make_head(registry).new_metric()
    metric.update(torch.randn(4, 3), torch.tensor([0, 1, 2, 1]))

    names = ClassificationHeadConfig.metric_names()

    assert names == ("accuracy", "macro_f1", "loss")
    assert set(names) == set(metric.compute())


def test_head_hidden_error_names_field():
    with pytest.raises(ValidationError) as caught:
        ClassificationHeadConfig(hidden=[16, 0])

    [error] = caught.value.errors()
    assert error["loc"] == ("hidden",)
    assert error["msg"] == "Value error, hidden widths must be positive integers"


def test_spec_error_at_hidden_field():
    registry = load_registry(PluginSelection(only=["vision", "timm", "peft", "supervised"]))

    with pytest.raises(SpecError) as caught:
        load_spec(DIGITS_SPEC, ["model.heads.digit.hidden=[0]"], registry=registry)

    [problem] = caught.value.problems
    assert problem.startswith(
        "model.heads.digit.hidden: hidden widths must be positive integers (found [0])"
    )


# image_folder ------------------------------------------------------------------------------


def test_image_folder_splits_and_items(registry, pets):
    bundle = build_dataset(
        registry, "image_folder", root=str(pets), image_size=8, val_fraction=0.2,
        test_fraction=0.2,
    )

    task = bundle.tasks["label"]
    image, target = bundle.splits["train"][0]
    assert task.kind == "classification"
    assert task.num_classes == 2
    assert task.class_names == ("cat", "dog")
    assert {name: len(split) for name, split in bundle.splits.items()} == {
        "train": 6, "val": 2, "test": 2,
    }
    assert bundle.splits["val"].labels().tolist() == [0, 1]
    assert image.shape == (3, 8, 8)
    assert target["label"].dtype == torch.long


def test_image_folder_normalizes_pixels(registry, pets):
    bundle = build_dataset(
        registry, "image_folder", root=str(pets), image_size=8, channels=1, mean=[0.25],
        std=[0.5],
    )
    split = bundle.splits["train"]

    images = {int(split[i][1]["label"]): split[i][0] for i in range(len(split))}

    assert images[0].shape == (1, 8, 8)
    assert torch.allclose(images[0], torch.full((1, 8, 8), 1.5))
    assert torch.allclose(images[1], torch.full((1, 8, 8), -0.5))


def test_image_folder_scales_sixteen_bit(registry, tmp_path):
    root = tmp_path / "depth"
    for label, value in (("far", 65535), ("near", 32896)):
        (root / label).mkdir(parents=True)
        Image.fromarray(np.full((4, 4), value, dtype=np.uint16)).save(root / label / "0.png")
        Image.fromarray(np.full((4, 4), value, dtype=np.uint16)).save(root / label / "1.png")

    bundle = build_dataset(
        registry, "image_folder", root=str(root), image_size=4, channels=1, mean=[0.0],
        std=[1.0], val_fraction=0.5, test_fraction=0.0,
    )
    split = bundle.splits["train"]
    images = {int(split[i][1]["label"]): split[i][0] for i in range(len(split))}

    # 16-bit values are scaled by 1/257: 65535 -> 255 and 32896 -> 128.
    assert torch.allclose(images[0], torch.full((1, 4, 4), 1.0))
    assert torch.allclose(images[1], torch.full((1, 4, 4), 128 / 255))


def test_image_folder_preload_matches_lazy(registry, tmp_path):
    root = tmp_path / "noise"
    rng = np.random.default_rng(0)
    for label in ("a", "b"):
        for index in range(4):
            pixels = rng.integers(0, 256, size=(10, 14, 3), dtype=np.uint8)
            (root / label).mkdir(parents=True, exist_ok=True)
            Image.fromarray(pixels).save(root / label / f"{index}.png")
    fields = {"root": str(root), "image_size": 6, "val_fraction": 0.25, "test_fraction": 0.0}

    lazy = build_dataset(registry, "image_folder", **fields)
    loaded = build_dataset(registry, "image_folder", preload=True, **fields)

    assert "test" not in lazy.splits
    for name in ("train", "val"):
        for index in range(len(lazy.splits[name])):
            assert torch.equal(lazy.splits[name][index][0], loaded.splits[name][index][0])


def test_image_folder_split_seeded(registry, tmp_path):
    root = tmp_path / "many"
    for index in range(30):
        write_png(root / "x" / f"{index:02d}.png", (index, 0, 0), size=(4, 4))
        write_png(root / "y" / f"{index:02d}.png", (0, index, 0), size=(4, 4))
    fields = {"root": str(root), "image_size": 4, "val_fraction": 0.2, "test_fraction": 0.1}

    first = build_dataset(registry, "image_folder", seed=0, **fields).splits["val"].indices
    again = build_dataset(registry, "image_folder", seed=0, **fields).splits["val"].indices
    other = build_dataset(registry, "image_folder", seed=1, **fields).splits["val"].indices
    fixed = build_dataset(registry, "image_folder", seed=1, split_seed=0, **fields)

    assert len(first) == 12
    assert first == again
    assert first != other
    assert fixed.splits["val"].indices == first


def test_image_folder_augments_train_only(registry, tmp_path):
    root = tmp_path / "halves"
    for label in ("a", "b"):
        for index in range(10):
            pixels = np.zeros((16, 16), dtype=np.uint8)
            pixels[:, :8] = 255
            (root / label).mkdir(parents=True, exist_ok=True)
            Image.fromarray(pixels).save(root / label / f"{index}.png")
    bundle = build_dataset(
        registry, "image_folder", root=str(root), image_size=16, channels=1,
        augment=["hflip"], val_fraction=0.5, test_fraction=0.0,
    )

    torch.manual_seed(0)
    train_views = {bundle.splits["train"][0][0][0, 0, 0].item() for _ in range(20)}
    val_views = {bundle.splits["val"][0][0][0, 0, 0].item() for _ in range(20)}

    assert len(train_views) == 2
    assert len(val_views) == 1


def test_image_folder_separate_val_root(registry, pets, tmp_path):
    val_root = tmp_path / "val"
    write_png(val_root / "dog" / "v.png", (0, 0, 0))

    bundle = build_dataset(
        registry, "image_folder", root=str(pets), val_root=str(val_root), val_fraction=0,
        test_fraction=0, image_size=4,
    )

    assert len(bundle.splits["train"]) == 10
    assert bundle.splits["val"].labels().tolist() == [1]


def test_image_folder_corrupt_image_named(registry, pets):
    (pets / "cat" / "broken.png").write_bytes(b"\x89PNG but not really")

    for preload in (False, True):
        with pytest.raises(ComponentBuildError) as error:
            build_dataset(registry, "image_folder", root=str(pets), preload=preload)
        assert "broken.png" in str(error.value)


def test_image_folder_empty_class_named(registry, pets):
    (pets / "bird").mkdir()

    with pytest.raises(ComponentBuildError) as error:
        build_dataset(registry, "image_folder", root=str(pets))

    assert "bird" in str(error.value)
    assert "contains no images" in str(error.value)


def test_image_folder_missing_root(registry, tmp_path):
    with pytest.raises(ComponentBuildError, match="not found"):
        build_dataset(registry, "image_folder", root=str(tmp_path / "absent"))


def test_image_folder_no_class_folders(registry, tmp_path):
    write_png(tmp_path / "flat.png", (1, 2, 3))

    with pytest.raises(ComponentBuildError, match="has no class folders"):
        build_dataset(registry, "image_folder", root=str(tmp_path))


def test_image_folder_unknown_val_class(registry, pets, tmp_path):
    write_png(tmp_path / "val" / "horse" / "h.png", (9, 9, 9))

    with pytest.raises(ComponentBuildError, match="horse' is not a class of the training folder"):
        build_dataset(
            registry, "image_folder", root=str(pets), val_root=str(tmp_path / "val"),
            val_fraction=0,
        )


def test_image_folder_empty_val_split(registry, pets):
    with pytest.raises(ComponentBuildError, match="val split .* is empty"):
        build_dataset(registry, "image_folder", root=str(pets), val_fraction=0.05)


@pytest.mark.parametrize(
    "fields",
    [
        {"val_fraction": 0.6, "test_fraction": 0.4},
        {"val_fraction": 0.0},
        {"val_root": "/data/val"},
        {"channels": 1, "mean": [0.5, 0.5, 0.5]},
        {"std": [0.2, 0.0, 0.2]},
        {"augment": ["rotate"]},
        {"task": "has space"},
    ],
)
def test_image_folder_config_rejects(fields):
    with pytest.raises(ValidationError):
        ImageFolderConfig(root="/data", **fields)


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        (
            {"val_fraction": 0.6, "test_fraction": 0.4},
            "test_fraction",
            "val_fraction + test_fraction must be below 1 to leave training images "
            "(val_fraction is 0.6)",
        ),
        ({"val_fraction": 0.0}, "val_root", "the val split is required"),
        ({"val_root": "/data/val"}, "val_root", "set val_fraction to 0 when val_root is given"),
        ({"test_root": "/data/test"}, "test_root", "set test_fraction to 0 when test_root"),
        ({"channels": 1, "mean": [0.5, 0.5, 0.5]}, "mean", "mean needs one value per channel (1)"),
        ({"std": [0.2, 0.0, 0.2]}, "std", "std values must be positive"),
        ({"augment": ["hflip", "hflip"]}, "augment", "augment lists an augmentation twice"),
    ],
)
def test_image_folder_errors_name_field(fields, field, message):
    with pytest.raises(ValidationError) as caught:
        ImageFolderConfig(root="/data", **fields)

    [error] = caught.value.errors()
    assert error["loc"] == (field,)
    assert message in error["msg"]


def test_digits_val_error_names_field():
    with pytest.raises(ValidationError) as caught:
        DigitsConfig(val_fraction=0)

    [error] = caught.value.errors()
    assert error["loc"] == ("val_fraction",)
    assert "the val split is required" in error["msg"]


def test_dataset_configs_declare_tasks():
    assert ImageFolderConfig(root="/data", task="species").task_names() == ["species"]
    assert DigitsConfig().task_names() == ["digit"]


# digits ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def digits_cache(tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")
    previous = os.environ.get("ADAPTLAB_CACHE")
    os.environ["ADAPTLAB_CACHE"] = str(cache)
    yield cache
    if previous is None:
        os.environ.pop("ADAPTLAB_CACHE", None)
    else:
        os.environ["ADAPTLAB_CACHE"] = previous


def png_counts(root):
    return {folder.name: len(list(folder.glob("*.png"))) for folder in root.iterdir() if folder.is_dir()}


def test_digits_export_and_splits(registry, digits_cache):
    bundle = build_dataset(registry, "digits")

    root = digits_cache / "digits"
    counts = png_counts(root)
    image, target = bundle.splits["train"][0]
    assert sorted(counts) == [str(digit) for digit in range(10)]
    assert sum(counts.values()) == 1797
    assert (root / MARKER_NAME).is_file()
    assert bundle.tasks["digit"].num_classes == 10
    # Class sizes 178, 182, 177, 183, 181, 182, 181, 179, 174, 180: 10 % of each rounds to 18,
    # except 174 -> 17, so val and test get 179 images each.
    assert {name: len(split) for name, split in bundle.splits.items()} == {
        "train": 1439, "val": 179, "test": 179,
    }
    assert sorted(set(bundle.splits["val"].labels().tolist())) == list(range(10))
    assert image.shape == (3, 32, 32)
    # Grayscale repeated as RGB, then normalized with the ImageNet mean and std per channel.
    assert torch.allclose(image[0] * 0.229 + 0.485, image[1] * 0.224 + 0.456, atol=1e-6)
    assert 0 <= int(target["digit"]) <= 9
    assert not list(digits_cache.glob(".digits.partial-*"))


def test_digits_export_reused(registry, digits_cache):
    build_dataset(registry, "digits")
    marker = digits_cache / "digits" / MARKER_NAME
    written = marker.stat().st_mtime_ns

    bundle = build_dataset(registry, "digits", image_size=16, channels=1)

    assert marker.stat().st_mtime_ns == written
    assert bundle.splits["test"][0][0].shape == (1, 16, 16)


def test_digits_partial_export_rewritten(registry, tmp_path):
    root = tmp_path / "partial"
    write_png(root / "3" / "0001.png", (0,), size=(8, 8), mode="L")

    build_dataset(registry, "digits", root=str(root))

    assert sum(png_counts(root).values()) == 1797
    assert (root / MARKER_NAME).is_file()


def test_digits_foreign_folder_kept(registry, tmp_path):
    (tmp_path / "thesis.tex").write_text("important")

    with pytest.raises(ComponentBuildError, match="not a digits export"):
        build_dataset(registry, "digits", root=str(tmp_path))

    assert (tmp_path / "thesis.tex").read_text() == "important"
