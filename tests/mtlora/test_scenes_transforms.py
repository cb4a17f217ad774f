"""Joint transforms of images and dense targets: flip, zoom, rotation, resize."""

from __future__ import annotations

import pytest
import torch

from adaptlab.plugins.mtlora.data.config import AugmentConfig, ScenesConfig
from adaptlab.plugins.mtlora.data.scenes import build_scenes
from adaptlab.plugins.mtlora.data.transforms import hflip, resize, rotate_normals, scale_rotate


def _item(size: int = 8):
    torch.manual_seed(0)
    image = torch.rand(3, size, size)
    normals = torch.nn.functional.normalize(torch.randn(3, size, size), dim=0)
    normals[:, 0, 0] = 0.0  # one invalid pixel
    targets = {
        "semseg": torch.randint(0, 5, (size, size)),
        "saliency": (torch.rand(1, size, size) > 0.5).float(),
        "normals": normals,
        "depth": torch.rand(1, size, size) + 1.0,
    }
    return image, targets


def test_flip_negates_normals_x():
    image, targets = _item()

    flipped_image, flipped = hflip(image, targets)

    assert torch.equal(flipped_image, image.flip(-1))
    assert torch.equal(flipped["semseg"], targets["semseg"].flip(-1))
    assert torch.equal(flipped["normals"][0], -targets["normals"][0].flip(-1))
    assert torch.equal(flipped["normals"][1:], targets["normals"][1:].flip(-1))
    assert torch.equal(flipped["depth"], targets["depth"].flip(-1))


def test_rotation_by_90_degrees_matches_rot90():
    image, targets = _item()

    rotated_image, rotated = scale_rotate(image, targets, scale=1.0, degrees=90.0)

    # torch.rot90 with dims (H, W) turns the content counter-clockwise on screen.
    assert torch.equal(rotated["semseg"], torch.rot90(targets["semseg"], 1, (0, 1)))
    torch.testing.assert_close(rotated_image, torch.rot90(image, 1, (1, 2)), atol=1e-5, rtol=0)
    # A normal pointing right (x) points up (y) after a counter-clockwise quarter turn.
    expected_normals = torch.rot90(targets["normals"], 1, (1, 2)).clone()
    expected_normals[0], expected_normals[1] = -expected_normals[1].clone(), expected_normals[0].clone()
    valid = rotated["normals"].abs().sum(0) > 0
    torch.testing.assert_close(
        rotated["normals"][:, valid], expected_normals[:, valid], atol=1e-5, rtol=0
    )


def test_rotate_normals_convention():
    right = torch.tensor([1.0, 0.0, 0.0]).view(3, 1, 1)

    up = rotate_normals(right, 90.0, y_up=True)
    down = rotate_normals(right, 90.0, y_up=False)

    torch.testing.assert_close(up.flatten(), torch.tensor([0.0, 1.0, 0.0]), atol=1e-6, rtol=0)
    torch.testing.assert_close(down.flatten(), torch.tensor([0.0, -1.0, 0.0]), atol=1e-6, rtol=0)


def test_zoom_divides_depth_and_marks_outside_invalid():
    image, targets = _item(16)
    targets["depth"] = torch.full((1, 16, 16), 4.0)

    _, zoomed_in = scale_rotate(image, targets, scale=2.0, degrees=0.0)
    _, zoomed_out = scale_rotate(image, targets, scale=0.5, degrees=0.0)

    assert torch.allclose(zoomed_in["depth"], torch.full((1, 16, 16), 2.0))
    # Zooming out brings in pixels from outside: invalid labels (255) and depth (0).
    assert zoomed_out["semseg"][0, 0].item() == 255
    assert zoomed_out["depth"][0, 0, 0].item() == 0.0
    assert zoomed_out["depth"][0, 8, 8].item() == pytest.approx(8.0)


def test_random_augmentation_keeps_labels_in_range():
    config = ScenesConfig(
        tasks=["semseg", "human_parts", "saliency", "normals", "edge", "depth"],
        image_size=32,
        counts={"train": 8, "val": 2},
        augment=AugmentConfig(hflip=True, scale=(0.75, 1.25), rotate=20.0),
    )
    bundle = build_scenes(config, seed=0)
    torch.manual_seed(1)

    for index in range(8):
        _, targets = bundle.splits["train"][index]
        semseg = set(targets["semseg"].unique().tolist())
        parts = set(targets["human_parts"].unique().tolist())
        assert semseg <= set(range(5)) | {255}
        assert parts <= set(range(4)) | {255}
        assert set(targets["saliency"].unique().tolist()) <= {0.0, 1.0}
        assert set(targets["edge"].unique().tolist()) <= {0.0, 1.0}
        norms = targets["normals"].norm(dim=0)
        valid = norms > 0
        torch.testing.assert_close(norms[valid], torch.ones_like(norms[valid]), atol=1e-5, rtol=0)
        assert (targets["depth"] >= 0).all()


def test_validation_split_is_not_augmented():
    plain = ScenesConfig(image_size=32, counts={"train": 2, "val": 2})
    augmented = plain.model_copy(update={"augment": AugmentConfig(rotate=30.0)})

    first = build_scenes(plain, seed=0).splits["val"][0]
    second = build_scenes(augmented, seed=0).splits["val"][0]

    assert torch.equal(first[0], second[0])


def test_resize_keeps_labels_and_unit_normals():
    image, targets = _item(16)

    resized_image, resized = resize(image, targets, 8)

    assert resized_image.shape == (3, 8, 8)
    assert resized["semseg"].dtype == torch.int64
    assert set(resized["semseg"].unique().tolist()) <= set(range(5))
    norms = resized["normals"].norm(dim=0)
    torch.testing.assert_close(norms[norms > 0], torch.ones_like(norms[norms > 0]), atol=1e-5, rtol=0)
