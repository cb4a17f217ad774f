"""Optimizers over trainable parameters and learning-rate schedules stepped per optimizer step."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable

import torch
from torch import nn
from torch.optim.lr_scheduler import LambdaLR

from adaptlab.core.errors import RunError
from adaptlab.core.runs import format_count
from adaptlab.core.training.config import OptimizerConfig, SchedulerConfig

__all__ = ["build_optimizer", "build_scheduler", "lr_factor", "parameter_groups_for_decay"]

logger = logging.getLogger(__name__)


def parameter_groups_for_decay(
    model: nn.Module, weight_decay: float
) -> list[dict[str, object]]:
    """Split trainable parameters into a decayed group and a group without weight decay.

    Parameters with fewer than two dimensions (biases, norm scales and shifts) get no weight
    decay. Frozen parameters are left out. Empty groups are omitted.
    """
    decayed, plain = [], []
    for parameter in model.parameters():
        if not parameter.requires_grad:
            continue
        (decayed if parameter.ndim >= 2 else plain).append(parameter)
    groups: list[dict[str, object]] = []
    if decayed:
        groups.append({"params": decayed, "weight_decay": weight_decay})
    if plain:
        groups.append({"params": plain, "weight_decay": 0.0})
    if not groups:
        raise RunError(
            "the model has no trainable parameters; check that the adapter leaves its weights "
            "trainable or that the backbone is not frozen entirely"
        )
    return groups


def build_optimizer(model: nn.Module, config: OptimizerConfig) -> torch.optim.Optimizer:
    """Build AdamW or SGD over the trainable parameters of ``model``."""
    groups = parameter_groups_for_decay(model, config.weight_decay)
    if config.name == "adamw":
        return torch.optim.AdamW(groups, lr=config.lr, betas=tuple(config.betas))
    return torch.optim.SGD(
        groups, lr=config.lr, momentum=config.momentum, nesterov=config.nesterov
    )


def lr_factor(
    step: int,
    config: SchedulerConfig,
    base_lr: float,
    total_steps: int,
    steps_per_epoch: int,
) -> float:
    """Return the multiplier of ``base_lr`` used by optimizer step ``step`` (0-based).

    Warm-up (all schedules): steps ``0 .. W-1`` use ``(step + 1) / W`` so the peak is reached
    at step ``W - 1``. After warm-up:

    - ``constant``: 1.
    - ``cosine``: ``m + (1 - m) * (1 + cos(pi * p)) / 2`` with ``p = (step - W) / (T - W)``
      and ``m = min_lr / base_lr``, falling from 1 towards ``m`` at ``T = total_steps``.
    - ``step``: ``gamma ** (step // (step_size * steps_per_epoch))``, a decay every
      ``step_size`` epochs counted in optimizer steps.
    """
    warmup = config.warmup_steps
    if step < warmup:
        return (step + 1) / warmup
    if config.name == "constant":
        return 1.0
    if config.name == "step":
        return config.gamma ** (step // (config.step_size * steps_per_epoch))
    floor = config.min_lr / base_lr
    progress = min(1.0, (step - warmup) / max(1, total_steps - warmup))
    return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))


def build_scheduler(
    optimizer: torch.optim.Optimizer,
    config: SchedulerConfig,
    steps_per_epoch: int,
    epochs: int,
) -> LambdaLR:
    """Build the schedule of ``config`` as a ``LambdaLR`` stepped after every optimizer step.

    Logs a warning when the warm-up is longer than the run, because the learning rate then
    never reaches the optimizer's ``lr``.
    """
    total_steps = steps_per_epoch * epochs
    if config.warmup_steps > total_steps:
        logger.warning(
            "train.scheduler.warmup_steps (%d) is larger than the run's %s (%s of %d), so the "
            "learning rate never reaches train.optimizer.lr; set warmup_steps to at most %d "
            "or train more epochs",
            config.warmup_steps,
            format_count(total_steps, "optimizer step"),
            format_count(epochs, "epoch"),
            steps_per_epoch,
            total_steps,
        )
    base_lr = float(optimizer.param_groups[0]["lr"])

    def factor(step: int) -> float:
        return lr_factor(step, config, base_lr, total_steps, steps_per_epoch)

    lambdas: list[Callable[[int], float]] = [factor] * len(optimizer.param_groups)
    return LambdaLR(optimizer, lr_lambda=lambdas)
