"""Pieces shared by the MTLoRA datasets: task declarations, the split dataset and the bundle."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from functools import partial

import torch
from torch.utils.data import Dataset

from adaptlab.core.contracts import DatasetBundle, TaskInfo
from adaptlab.plugins.mtlora.data.config import TASK_KIND, DenseDataConfig
from adaptlab.plugins.mtlora.data.transforms import Augmenter
from adaptlab.plugins.mtlora.tasks import delta_m

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "DenseSplit", "make_bundle", "make_task_info"]

logger = logging.getLogger(__name__)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

Item = tuple[torch.Tensor, dict[str, torch.Tensor]]


def make_task_info(task: str, class_names: Mapping[str, Sequence[str]]) -> TaskInfo:
    """Declare ``task``; ``class_names[task]`` lists the classes of segmentation tasks."""
    kind = TASK_KIND[task]
    if kind == "segmentation":
        names = tuple(class_names[task])
        return TaskInfo(name=task, kind=kind, num_classes=len(names), class_names=names)
    outputs = 3 if kind == "normals" else 1
    return TaskInfo(name=task, kind=kind, num_outputs=outputs)


class DenseSplit(Dataset):
    """One split: ``load(index)`` returns an image in [0, 1] and its targets at the final size.

    Items are ``(image, targets)`` with the image normalised by the ImageNet mean and standard
    deviation after the optional training augmentation.
    """

    def __init__(
        self,
        load: Callable[[int], Item],
        length: int,
        augmenter: Augmenter | None = None,
    ) -> None:
        self.load = load
        self.length = length
        self.augmenter = augmenter
        self.mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
        self.std = torch.tensor(IMAGENET_STD).view(3, 1, 1)

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> Item:
        if not 0 <= index < self.length:
            raise IndexError(index)
        image, targets = self.load(index)
        if self.augmenter is not None:
            image, targets = self.augmenter(image, targets)
        return (image - self.mean) / self.std, targets


def make_augmenter(config: DenseDataConfig, normals_y_up: bool) -> Augmenter | None:
    """Return the training augmenter of ``config``, or None when augmentation is off."""
    augment = config.augment
    if augment is None or augment.is_identity():
        return None
    return Augmenter(augment.hflip, augment.scale, augment.rotate, normals_y_up=normals_y_up)


def _derive_delta_m(baselines: Mapping[str, float], metrics: Mapping[str, float]) -> dict[str, float]:
    return {"delta_m": delta_m(metrics, baselines)}


def make_bundle(
    config: DenseDataConfig,
    splits: Mapping[str, Dataset],
    tasks: Mapping[str, TaskInfo],
    description: str,
) -> DatasetBundle:
    """Assemble the bundle; with ``config.single_task`` it derives ``delta_m`` at evaluation."""
    derived = None
    if config.single_task:
        derived = partial(_derive_delta_m, dict(config.single_task))
    logger.info("%s", description)
    return DatasetBundle(
        splits=dict(splits), tasks=dict(tasks), description=description, derived_metrics=derived
    )
