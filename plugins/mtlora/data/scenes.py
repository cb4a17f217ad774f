"""The ``scenes`` dataset: ray-cast 3D scenes with exact labels for six dense tasks.

Each scene is a room seen by a pinhole camera at the origin (focal length = image side in
pixels, about 53 degrees of view): a floor plane at y = -1.2 m, a back wall at z = 12 m and
1 to ``max_objects`` objects standing on the floor. Object class k (1-based) has the shape
``sphere``, ``box`` (turned about the vertical axis) or ``cylinder`` for k mod 3 = 1, 2, 0,
and its own hue, so shape and colour together identify the class. Every pixel's label comes
from the surface that its central ray hits first:

- ``semseg``: 0 for floor and wall, k for an object of class k;
- ``human_parts``: 0 for floor and wall; 1, 2, 3 for the upper, middle and lower third of
  the object's height (every object class has these parts);
- ``saliency``: 1 on objects;
- ``edge``: 1 where the surface differs from a 4-neighbour's (a boundary two pixels wide,
  object against object or object against background);
- ``normals``: unit surface normal in the camera frame, x right, y up, z toward the camera;
- ``depth``: distance along the optical axis in metres (every pixel is valid).

The image is Lambert shading under one directional light, a checkered floor and Gaussian
pixel noise. Item ``i`` of a split depends only on the seed, the split and ``i``, so the same
configuration gives bitwise identical tensors on every run.
"""

from __future__ import annotations

import colorsys
import logging
import math
import time
from dataclasses import dataclass

import numpy as np
import torch

from adaptlab.core.contracts import DatasetBundle
from adaptlab.plugins.mtlora.data.common import DenseSplit, make_augmenter, make_bundle, make_task_info
from adaptlab.plugins.mtlora.data.config import ScenesConfig

__all__ = ["FLOOR_Y", "SceneArrays", "build_scenes", "class_names", "render_scene", "render_split"]

logger = logging.getLogger(__name__)

FLOOR_Y = -1.2
WALL_Z = 12.0
SHAPES = ("sphere", "box", "cylinder")
PART_NAMES = ("background", "upper", "middle", "lower")
_SPLIT_IDS = {"train": 0, "val": 1, "test": 2}
_LIGHT = np.array([-0.45, 0.8, -0.4]) / np.linalg.norm([-0.45, 0.8, -0.4])


def class_names(object_classes: int) -> tuple[str, ...]:
    """Return the semseg class names: ``background`` then ``SHAPE_k`` per object class."""
    names = ["background"]
    for k in range(1, object_classes + 1):
        names.append(f"{SHAPES[(k - 1) % 3]}_{k}")
    return tuple(names)


@dataclass
class SceneArrays:
    """One rendered scene as numpy arrays of shape ``(H, W)`` or ``(H, W, 3)``.

    ``instance`` is 0 for floor and wall and 1.. for objects in placement order.
    """

    image: np.ndarray  # uint8 (H, W, 3)
    semseg: np.ndarray  # uint8
    parts: np.ndarray  # uint8
    instance: np.ndarray  # uint8
    normals: np.ndarray  # float32 (H, W, 3), camera frame x right, y up, z toward the camera
    depth: np.ndarray  # float32 metres

    @property
    def saliency(self) -> np.ndarray:
        return (self.instance > 0).astype(np.uint8)

    @property
    def edge(self) -> np.ndarray:
        return boundaries(self.instance)


def boundaries(labels: np.ndarray) -> np.ndarray:
    """Return 1 where a pixel's label differs from one of its four neighbours, else 0."""
    edge = np.zeros(labels.shape, dtype=bool)
    vertical = labels[1:, :] != labels[:-1, :]
    horizontal = labels[:, 1:] != labels[:, :-1]
    edge[1:, :] |= vertical
    edge[:-1, :] |= vertical
    edge[:, 1:] |= horizontal
    edge[:, :-1] |= horizontal
    return edge.astype(np.uint8)


def _rays(size: int) -> np.ndarray:
    # Ray directions with unit z component, so a hit's ray parameter t is its depth.
    centres = (np.arange(size) + 0.5 - size / 2) / size
    u, v = np.meshgrid(centres, -centres)
    return np.stack([u, v, np.ones_like(u)], axis=-1).reshape(-1, 3)


def _hit_sphere(rays: np.ndarray, centre: np.ndarray, radius: float) -> tuple[np.ndarray, np.ndarray]:
    a = (rays * rays).sum(1)
    b = -2.0 * rays @ centre
    c = centre @ centre - radius * radius
    disc = b * b - 4 * a * c
    hit = disc >= 0
    t = np.where(hit, (-b - np.sqrt(np.maximum(disc, 0))) / (2 * a), np.inf)
    t = np.where(t > 0, t, np.inf)
    normals = (rays * t[:, None] - centre) / radius
    return t, normals


def _hit_box(
    rays: np.ndarray, centre: np.ndarray, half: np.ndarray, yaw: float
) -> tuple[np.ndarray, np.ndarray]:
    cos, sin = math.cos(yaw), math.sin(yaw)
    rotation = np.array([[cos, 0.0, sin], [0.0, 1.0, 0.0], [-sin, 0.0, cos]])
    origin = rotation.T @ (-centre)
    directions = rays @ rotation  # each row is rotation.T @ ray
    with np.errstate(divide="ignore", invalid="ignore"):
        inverse = 1.0 / np.where(np.abs(directions) < 1e-12, 1e-12, directions)
        near = (-half - origin) * inverse
        far = (half - origin) * inverse
    entry = np.minimum(near, far)
    exit_ = np.maximum(near, far)
    t_enter = entry.max(1)
    t_exit = exit_.min(1)
    hit = (t_exit >= t_enter) & (t_enter > 0)
    axis = entry.argmax(1)
    local = np.zeros_like(rays)
    rows = np.arange(len(rays))
    local[rows, axis] = -np.sign(directions[rows, axis])
    return np.where(hit, t_enter, np.inf), local @ rotation.T


def _hit_cylinder(
    rays: np.ndarray, base: np.ndarray, radius: float, height: float
) -> tuple[np.ndarray, np.ndarray]:
    cx, bottom, cz = base
    top = bottom + height
    dx, dy, dz = rays[:, 0], rays[:, 1], rays[:, 2]
    a = dx * dx + dz * dz
    b = -2.0 * (dx * cx + dz * cz)
    c = cx * cx + cz * cz - radius * radius
    disc = b * b - 4 * a * c
    t_side = np.where(disc >= 0, (-b - np.sqrt(np.maximum(disc, 0))) / (2 * a), np.inf)
    y_side = dy * t_side
    t_side = np.where((t_side > 0) & (y_side >= bottom) & (y_side <= top), t_side, np.inf)
    with np.errstate(divide="ignore", invalid="ignore"):
        t_cap = np.where(dy < 0, top / np.where(dy < 0, dy, -1.0), np.inf)
    inside_cap = (dx * t_cap - cx) ** 2 + (dz * t_cap - cz) ** 2 <= radius * radius
    t_cap = np.where((t_cap > 0) & inside_cap, t_cap, np.inf)
    side_normals = np.stack(
        [(dx * t_side - cx) / radius, np.zeros_like(dx), (dz * t_side - cz) / radius], axis=1
    )
    cap_normals = np.tile([0.0, 1.0, 0.0], (len(rays), 1))
    use_cap = t_cap < t_side
    return np.minimum(t_cap, t_side), np.where(use_cap[:, None], cap_normals, side_normals)


def _place_object(rng: np.random.Generator, object_class: int) -> dict:
    shape = SHAPES[(object_class - 1) % 3]
    depth = rng.uniform(3.0, 6.5)
    x = rng.uniform(-0.35, 0.35) * depth
    spec: dict = {"shape": shape, "class": object_class}
    if shape == "sphere":
        radius = rng.uniform(0.4, 0.9)
        spec.update(centre=np.array([x, FLOOR_Y + radius, depth]), radius=radius)
        spec["extent"] = (FLOOR_Y, FLOOR_Y + 2 * radius)
    elif shape == "box":
        half = rng.uniform(0.3, 0.8, size=3)
        spec.update(
            centre=np.array([x, FLOOR_Y + half[1], depth]), half=half,
            yaw=rng.uniform(0.0, math.pi / 2),
        )
        spec["extent"] = (FLOOR_Y, FLOOR_Y + 2 * half[1])
    else:
        radius = rng.uniform(0.3, 0.7)
        # The top stays below the camera (y = 0), so the cap is seen from above.
        height = rng.uniform(0.6, 1.1)
        spec.update(base=np.array([x, FLOOR_Y, depth]), radius=radius, height=height)
        spec["extent"] = (FLOOR_Y, FLOOR_Y + height)
    return spec


def _albedo(object_class: int, object_classes: int, rng: np.random.Generator) -> np.ndarray:
    hue = (object_class - 1) / object_classes
    value = 0.85 + rng.uniform(-0.1, 0.1)
    return np.array(colorsys.hsv_to_rgb(hue, 0.75, value))


def render_scene(
    size: int, rng: np.random.Generator, object_classes: int, max_objects: int, noise: float
) -> SceneArrays:
    """Render one scene drawn from ``rng`` at ``size x size`` pixels."""
    # Rays that miss a shape have t = inf, and inf * 0 in the unused normals is NaN.
    with np.errstate(invalid="ignore"):
        return _render(size, rng, object_classes, max_objects, noise)


def _render(
    size: int, rng: np.random.Generator, object_classes: int, max_objects: int, noise: float
) -> SceneArrays:
    rays = _rays(size)
    count = len(rays)

    # Background: the wall everywhere, then the floor where it is nearer.
    t_best = np.full(count, WALL_Z)
    normals = np.tile([0.0, 0.0, -1.0], (count, 1))
    with np.errstate(divide="ignore"):
        t_floor = np.where(rays[:, 1] < 0, FLOOR_Y / np.where(rays[:, 1] < 0, rays[:, 1], -1), np.inf)
    on_floor = t_floor < t_best
    t_best = np.where(on_floor, t_floor, t_best)
    normals[on_floor] = [0.0, 1.0, 0.0]
    semseg = np.zeros(count, dtype=np.uint8)
    parts = np.zeros(count, dtype=np.uint8)
    instance = np.zeros(count, dtype=np.uint8)
    albedo = np.empty((count, 3))

    points = rays * t_best[:, None]
    checker = (np.floor(points[:, 0]) + np.floor(points[:, 2])) % 2
    floor_tint = rng.uniform(0.35, 0.6)
    wall_colour = rng.uniform(0.55, 0.85, size=3)
    albedo[:] = wall_colour
    albedo[on_floor] = (floor_tint + 0.15 * checker[on_floor])[:, None]

    objects = [
        _place_object(rng, int(rng.integers(1, object_classes + 1)))
        for _ in range(int(rng.integers(1, max_objects + 1)))
    ]
    for index, spec in enumerate(objects, start=1):
        if spec["shape"] == "sphere":
            t, hit_normals = _hit_sphere(rays, spec["centre"], spec["radius"])
        elif spec["shape"] == "box":
            t, hit_normals = _hit_box(rays, spec["centre"], spec["half"], spec["yaw"])
        else:
            t, hit_normals = _hit_cylinder(rays, spec["base"], spec["radius"], spec["height"])
        nearer = t < t_best
        t_best = np.where(nearer, t, t_best)
        normals[nearer] = hit_normals[nearer]
        semseg[nearer] = spec["class"]
        instance[nearer] = index
        bottom, top = spec["extent"]
        y = rays[nearer, 1] * t[nearer]
        band = np.clip(np.floor(3.0 * (top - y) / (top - bottom)), 0, 2)
        parts[nearer] = (1 + band).astype(np.uint8)
        albedo[nearer] = _albedo(spec["class"], object_classes, rng)

    normals /= np.linalg.norm(normals, axis=1, keepdims=True)
    shading = 0.35 + 0.65 * np.clip(normals @ _LIGHT, 0.0, None)
    colour = albedo * shading[:, None] + rng.normal(0.0, noise, size=(count, 3))
    image = np.clip(np.rint(colour * 255.0), 0, 255).astype(np.uint8)

    # Camera frame of the targets: z toward the camera, the opposite of the ray direction.
    camera_normals = normals * np.array([1.0, 1.0, -1.0])
    shape2d = (size, size)
    return SceneArrays(
        image=image.reshape(size, size, 3),
        semseg=semseg.reshape(shape2d),
        parts=parts.reshape(shape2d),
        instance=instance.reshape(shape2d),
        normals=camera_normals.reshape(size, size, 3).astype(np.float32),
        depth=t_best.reshape(shape2d).astype(np.float32),
    )


def scene_generator(seed: int, split: str, index: int) -> np.random.Generator:
    """Return the generator of scene ``index`` of ``split``, independent of every other scene."""
    return np.random.default_rng([seed, _SPLIT_IDS[split], index])


def render_split(config: ScenesConfig, seed: int, split: str, count: int) -> list[SceneArrays]:
    """Render ``count`` scenes of ``split`` (``train``, ``val`` or ``test``)."""
    return [
        render_scene(
            config.image_size, scene_generator(seed, split, index), config.object_classes,
            config.max_objects, config.noise,
        )
        for index in range(count)
    ]


def scene_targets(scene: SceneArrays, tasks: list[str]) -> dict[str, torch.Tensor]:
    """Return the targets of ``scene`` as tensors in the encoding of the tasks module."""
    targets: dict[str, torch.Tensor] = {}
    for task in tasks:
        if task == "semseg":
            targets[task] = torch.from_numpy(scene.semseg.astype(np.int64))
        elif task == "human_parts":
            targets[task] = torch.from_numpy(scene.parts.astype(np.int64))
        elif task == "saliency":
            targets[task] = torch.from_numpy(scene.saliency.astype(np.float32))[None]
        elif task == "edge":
            targets[task] = torch.from_numpy(scene.edge.astype(np.float32))[None]
        elif task == "normals":
            targets[task] = torch.from_numpy(scene.normals).permute(2, 0, 1).contiguous()
        else:
            targets[task] = torch.from_numpy(scene.depth)[None]
    return targets


class _SceneStore:
    """Rendered scenes of one split, held as tensors (image in [0, 1])."""

    def __init__(self, scenes: list[SceneArrays], tasks: list[str]) -> None:
        self.images = [
            torch.from_numpy(scene.image).permute(2, 0, 1).float() / 255.0 for scene in scenes
        ]
        self.targets = [scene_targets(scene, tasks) for scene in scenes]

    def load(self, index: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        return self.images[index].clone(), {
            task: value.clone() for task, value in self.targets[index].items()
        }


def build_scenes(config: ScenesConfig, seed: int) -> DatasetBundle:
    """Factory of the ``scenes`` dataset: renders every split in memory."""
    scene_seed = config.seed if config.seed is not None else seed
    started = time.monotonic()
    counts = {"train": config.counts.train, "val": config.counts.val, "test": config.counts.test}
    splits = {}
    for split, count in counts.items():
        if count == 0:
            continue
        store = _SceneStore(render_split(config, scene_seed, split, count), config.tasks)
        augmenter = make_augmenter(config, normals_y_up=True) if split == "train" else None
        splits[split] = DenseSplit(store.load, count, augmenter)
    names = {
        "semseg": class_names(config.object_classes),
        "human_parts": PART_NAMES,
    }
    tasks = {task: make_task_info(task, names) for task in config.tasks}
    sizes = " / ".join(f"{len(split)} {name}" for name, split in splits.items())
    description = (
        f"scenes {config.image_size}px, seed {scene_seed}: {sizes} images, tasks "
        f"{', '.join(config.tasks)} (rendered in {time.monotonic() - started:.1f} s)"
    )
    return make_bundle(config, splits, tasks, description)
