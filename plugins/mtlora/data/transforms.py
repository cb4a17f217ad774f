"""Joint transforms of an image and its dense targets: fixed resize, flip, scale and rotate.

Images are float ``[3, H, W]`` in [0, 1] (normalisation comes last, in the dataset); targets
use the encoding of :mod:`adaptlab.plugins.mtlora.tasks`. Labels (semseg, human_parts,
saliency, edge) are resampled with nearest neighbours and images bilinearly. Depth and normals
are resampled bilinearly where every contributing pixel is valid and are invalid (0)
elsewhere, so invalid pixels never blend into valid ones. Pixels that a zoom-out or a rotation brings in
from outside the image are invalid: 255 for segmentation labels, 0 for the other targets.

The augmentations follow the MTLoRA / ASTMT training recipe for PASCAL-Context (horizontal
flip with probability 0.5, zoom in [0.75, 1.25], rotation in [-20, 20] degrees), applied
here after the fixed resize so that every image is square.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
import torch.nn.functional as F

from adaptlab.plugins.mtlora.tasks import IGNORE_INDEX

__all__ = ["Augmenter", "hflip", "resize", "rotate_normals", "scale_rotate"]

Targets = dict[str, torch.Tensor]

_LABEL_TASKS = frozenset({"semseg", "human_parts"})
_BINARY_TASKS = frozenset({"saliency", "edge"})


def hflip(image: torch.Tensor, targets: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, Targets]:
    """Flip left-right; the x component of the normals changes sign."""
    flipped = {task: value.flip(-1) for task, value in targets.items()}
    if "normals" in flipped:
        normals = flipped["normals"].clone()
        normals[0] = -normals[0]
        flipped["normals"] = normals
    return image.flip(-1), flipped


def rotate_normals(normals: torch.Tensor, degrees: float, y_up: bool = True) -> torch.Tensor:
    """Rotate the in-plane (x, y) part of ``[3, H, W]`` normals with a counter-clockwise image
    rotation by ``degrees``. ``y_up`` is True when the normals' y axis points up the image."""
    radians = math.radians(degrees if y_up else -degrees)
    cosine, sine = math.cos(radians), math.sin(radians)
    rotated = normals.clone()
    rotated[0] = cosine * normals[0] - sine * normals[1]
    rotated[1] = sine * normals[0] + cosine * normals[1]
    return rotated


def _warp(value: torch.Tensor, grid: torch.Tensor, mode: str, fill: float) -> torch.Tensor:
    """Sample ``[C, H, W]`` at ``grid``; pixels from outside the input get ``fill``."""
    batch = value.unsqueeze(0).float()
    inside = torch.ones_like(batch[:, :1])
    warped = F.grid_sample(batch, grid, mode=mode, padding_mode="zeros", align_corners=False)
    coverage = F.grid_sample(inside, grid, mode="nearest", padding_mode="zeros", align_corners=False)
    warped = torch.where(coverage > 0.5, warped, torch.full_like(warped, fill))
    return warped[0]


def _warp_valid(
    value: torch.Tensor, valid: torch.Tensor, grid: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Bilinear warp of ``value`` keeping only pixels whose four neighbours are all valid."""
    warped = F.grid_sample(
        value.unsqueeze(0).float(), grid, mode="bilinear", padding_mode="zeros",
        align_corners=False,
    )[0]
    weight = F.grid_sample(
        valid.unsqueeze(0).unsqueeze(0).float(), grid, mode="bilinear", padding_mode="zeros",
        align_corners=False,
    )[0, 0]
    keep = weight > 1.0 - 1e-4
    return warped * keep, keep


def _transform_targets(
    targets: Mapping[str, torch.Tensor], grid: torch.Tensor, depth_scale: float
) -> Targets:
    result: Targets = {}
    for task, value in targets.items():
        if task in _LABEL_TASKS:
            warped = _warp(value.unsqueeze(0), grid, "nearest", float(IGNORE_INDEX))
            result[task] = warped[0].round().to(value.dtype)
        elif task in _BINARY_TASKS:
            result[task] = _warp(value, grid, "nearest", 0.0).to(value.dtype)
        elif task == "normals":
            warped, keep = _warp_valid(value, (value != 0).any(dim=0), grid)
            result[task] = F.normalize(warped, dim=0, eps=1e-12) * keep
        elif task == "depth":
            warped, _ = _warp_valid(value, value[0] > 0, grid)
            result[task] = warped / depth_scale
        else:
            raise ValueError(f"no transform is defined for task {task!r}")
    return result


def _affine_grid(size: tuple[int, int], scale: float, degrees: float) -> torch.Tensor:
    # Output pixel p samples the input at R(-degrees) p / scale in normalised coordinates
    # (y down), which zooms by `scale` and turns the content counter-clockwise on screen.
    radians = math.radians(degrees)
    cosine, sine = math.cos(radians), math.sin(radians)
    theta = torch.tensor(
        [[cosine / scale, -sine / scale, 0.0], [sine / scale, cosine / scale, 0.0]]
    ).unsqueeze(0)
    return F.affine_grid(theta, [1, 1, *size], align_corners=False)


def scale_rotate(
    image: torch.Tensor,
    targets: Mapping[str, torch.Tensor],
    scale: float,
    degrees: float,
    normals_y_up: bool = True,
) -> tuple[torch.Tensor, Targets]:
    """Zoom by ``scale`` about the centre and turn the content ``degrees`` counter-clockwise.

    Depth is divided by ``scale`` (zooming in by 2 looks like halving the distance) and the
    normals are rotated with the image. Square images keep their geometry; a non-square one
    is stretched in normalised coordinates, so callers resize to a square first.
    """
    grid = _affine_grid(tuple(image.shape[-2:]), scale, degrees)
    warped_image = _warp(image, grid, "bilinear", 0.0)
    warped = _transform_targets(targets, grid, scale)
    if "normals" in warped and degrees:
        warped["normals"] = rotate_normals(warped["normals"], degrees, y_up=normals_y_up)
    return warped_image, warped


def resize(
    image: torch.Tensor, targets: Mapping[str, torch.Tensor], size: int
) -> tuple[torch.Tensor, Targets]:
    """Resize to ``size x size``: bilinear (antialiased) image, nearest labels and depth,
    bilinear normals renormalised to unit length."""
    if tuple(image.shape[-2:]) == (size, size):
        return image, dict(targets)
    resized_image = F.interpolate(
        image.unsqueeze(0).float(), size=(size, size), mode="bilinear", align_corners=False,
        antialias=True,
    )[0]
    result: Targets = {}
    for task, value in targets.items():
        if task == "normals":
            valid = (value != 0).any(dim=0, keepdim=True).float()
            smooth = F.interpolate(value.unsqueeze(0).float(), size=(size, size), mode="bilinear",
                                   align_corners=False)[0]
            keep = F.interpolate(valid.unsqueeze(0), size=(size, size), mode="nearest")[0] > 0.5
            result[task] = F.normalize(smooth, dim=0, eps=1e-12) * keep
        else:
            batch = value.unsqueeze(0) if value.dim() == 3 else value.unsqueeze(0).unsqueeze(0)
            nearest = F.interpolate(batch.float(), size=(size, size), mode="nearest")
            nearest = nearest[0] if value.dim() == 3 else nearest[0, 0]
            result[task] = nearest.to(value.dtype)
    return resized_image, result


class Augmenter:
    """Random flip, zoom and rotation of training items, drawn from torch's global generator.

    The trainer seeds that generator, so a seeded run repeats its augmentations.
    """

    def __init__(
        self,
        hflip: bool,
        scale: tuple[float, float],
        rotate: float,
        normals_y_up: bool = True,
    ) -> None:
        self.flip = hflip
        self.scale = scale
        self.rotate = rotate
        self.normals_y_up = normals_y_up

    def __call__(
        self, image: torch.Tensor, targets: Mapping[str, torch.Tensor]
    ) -> tuple[torch.Tensor, Targets]:
        result = dict(targets)
        if self.flip and float(torch.rand(())) < 0.5:
            image, result = hflip(image, result)
        low, high = self.scale
        scale = low + (high - low) * float(torch.rand(()))
        degrees = self.rotate * (2.0 * float(torch.rand(())) - 1.0)
        if scale != 1.0 or degrees != 0.0:
            image, result = scale_rotate(image, result, scale, degrees, self.normals_y_up)
        return image, result
