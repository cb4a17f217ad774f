"""Weighted multi-task loss, evaluation over a split and the monitored metric.

Evaluation metric names are ``loss`` (mean weighted loss over the split, policy
regularizer included), ``TASK/loss`` (mean unweighted loss of one head) and ``TASK/METRIC``
for every value the head's metric computes. Policies add ``policy/STAT`` averaged over
batches.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from adaptlab.core.errors import RunError
from adaptlab.core.training.data import Precision, batch_size_of, move_to_device
from adaptlab.core.training.monitor import Monitor, infer_mode

__all__ = ["Monitor", "compute_loss", "evaluate_model", "infer_mode"]

logger = logging.getLogger(__name__)

def compute_loss(
    model: nn.Module, outputs: Mapping[str, Any], targets: Mapping[str, Any]
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Return ``sum_t w_t * head_t.loss(output_t, target_t)`` plus the policy regularizer.

    ``w_t`` is ``model.loss_weights[t]``. The second value maps each task to its unweighted
    loss, detached. A policy whose ``regularizer()`` returns ``None`` adds nothing.
    """
    if not isinstance(targets, Mapping):
        raise RunError(
            "dataset items must be (inputs, targets) with targets a mapping from task name to "
            f"target; found targets of type {type(targets).__name__}"
        )
    total: torch.Tensor | None = None
    per_task: dict[str, torch.Tensor] = {}
    for task, head in model.heads.items():
        if task not in targets:
            raise RunError(
                f"the batch has no target for task {task!r} (targets: {', '.join(targets)}); "
                "the dataset must return a target for every head in model.heads"
            )
        value = head.loss(outputs[task], targets[task])
        per_task[task] = value.detach()
        weighted = float(model.loss_weights.get(task, 1.0)) * value
        total = weighted if total is None else total + weighted
    policy = getattr(model, "policy", None)
    if policy is not None:
        regularizer = policy.regularizer()
        if regularizer is not None:
            total = regularizer if total is None else total + regularizer
    if total is None:
        raise RunError("the model has no task heads, so there is no loss to train")
    return total, per_task


def evaluate_model(
    model: nn.Module,
    loader: Any,
    device: torch.device,
    precision: Precision,
    artifacts: tuple[Path, str] | None = None,
    timed: bool = False,
    derived: Callable[[Mapping[str, float]], Mapping[str, float]] | None = None,
) -> dict[str, float]:
    """Evaluate ``model`` over every batch of ``loader``; return the metrics by name.

    The model is put in eval mode and restored to its previous mode afterwards. Losses are
    averaged over samples, not batches. With ``timed``, ``time/forward_ms_per_sample`` is the
    wall time of the forward passes divided by the number of samples (left out otherwise, so
    that training logs stay reproducible). With ``artifacts=(folder, stem)``, every task metric
    that has ``write_artifacts(folder, stem)`` writes its files (plots, prediction tables)
    there, with ``stem`` naming the split. ``derived`` (a dataset's ``derived_metrics``) adds
    metrics computed across tasks from the others.
    """
    was_training = model.training
    model.eval()
    task_metrics = {task: head.new_metric() for task, head in model.heads.items()}
    loss_sum = 0.0
    task_sums = dict.fromkeys(model.heads, 0.0)
    policy_sums: dict[str, float] = {}
    samples = 0
    batches = 0
    forward_seconds = 0.0
    policy = getattr(model, "policy", None)
    try:
        with torch.no_grad():
            for inputs, targets in loader:
                inputs = move_to_device(inputs, device)
                targets = move_to_device(targets, device)
                started = time.perf_counter()
                with precision.autocast(device):
                    outputs = model(inputs)
                if device.type == "cuda":
                    torch.cuda.synchronize(device)
                forward_seconds += time.perf_counter() - started
                with precision.autocast(device):
                    loss, per_task = compute_loss(model, outputs, targets)
                count = batch_size_of(targets, inputs)
                samples += count
                batches += 1
                loss_sum += float(loss) * count
                for task, value in per_task.items():
                    task_sums[task] += float(value) * count
                    task_metrics[task].update(outputs[task], targets[task])
                if policy is not None:
                    for key, value in policy.stats().items():
                        policy_sums[key] = policy_sums.get(key, 0.0) + float(value)
    finally:
        model.train(was_training)
    if samples == 0:
        raise RunError("the evaluation split is empty; the dataset returned no samples")
    metrics = {"loss": loss_sum / samples}
    for task, metric in task_metrics.items():
        metrics[f"{task}/loss"] = task_sums[task] / samples
        for name, value in metric.compute().items():
            metrics[f"{task}/{name}"] = float(value)
    for key, value in policy_sums.items():
        metrics[f"policy/{key}"] = value / batches
    if derived is not None:
        for name, value in derived(dict(metrics)).items():
            metrics[name] = float(value)
    if timed:
        metrics["time/forward_ms_per_sample"] = 1000.0 * forward_seconds / samples
    if artifacts is not None:
        folder, stem = artifacts
        for task, metric in task_metrics.items():
            writer = getattr(metric, "write_artifacts", None)
            if callable(writer):
                for path in writer(folder, f"{stem}-{task}"):
                    logger.info("wrote %s", path)
    return metrics
