"""Trainer state in checkpoints: model weights, optimizer, scheduler, scaler, RNG, progress.

Tensor keys in the checkpoint file are prefixed: ``model/NAME`` for the model's state dict,
``optimizer/...``, ``scaler/...`` and ``rng/...`` for the rest. The JSON side records the
progress counters, the best value so far and the early-stopping counter.
"""

from __future__ import annotations

import logging
import random
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from adaptlab.core.checkpoint import pack_state, unpack_state
from adaptlab.core.errors import CheckpointError
from adaptlab.core.runs import format_count

__all__ = [
    "MODEL_PREFIX",
    "TrainerProgress",
    "capture_rng_state",
    "load_model_weights",
    "model_weights",
    "restore_rng_state",
]

logger = logging.getLogger(__name__)

MODEL_PREFIX = "model/"


@dataclass
class TrainerProgress:
    """Counters that a resumed run continues from.

    ``epoch`` is the number of completed epochs. ``best_value`` and ``best_epoch`` follow every
    strict improvement of the monitor, and ``best_metrics`` contains all validation metrics of
    that epoch. ``last_metrics`` are those of the latest evaluation, in epoch
    ``last_eval_epoch``. ``stopping_reference`` is the value early stopping compares against,
    which moves only by more than ``min_delta``. ``stale_evaluations`` counts the evaluations
    since it last moved.
    """

    epoch: int = 0
    global_step: int = 0
    best_value: float | None = None
    best_epoch: int | None = None
    stopping_reference: float | None = None
    stale_evaluations: int = 0
    stopped_early: bool = False
    elapsed_s: float = 0.0
    last_metrics: dict[str, float] = field(default_factory=dict)
    last_eval_epoch: int | None = None
    best_metrics: dict[str, float] = field(default_factory=dict)
    last_train_loss: float | None = None

    def to_data(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> TrainerProgress:
        known = {name: data[name] for name in cls.__dataclass_fields__ if name in data}
        return cls(**known)


def model_weights(model: nn.Module, which: str = "all") -> dict[str, torch.Tensor]:
    """Return the model's state dict under ``model/``; ``trainable`` keeps only trainable
    parameters and all buffers."""
    state = model.state_dict()
    if which == "trainable":
        frozen = {name for name, p in model.named_parameters() if not p.requires_grad}
        state = {name: tensor for name, tensor in state.items() if name not in frozen}
    return {MODEL_PREFIX + name: tensor for name, tensor in state.items()}


def load_model_weights(
    model: nn.Module, tensors: dict[str, torch.Tensor], which: str = "all"
) -> None:
    """Copy ``model/`` tensors into ``model``; raise CheckpointError on a layout mismatch.

    With ``which="trainable"`` the frozen parameters are expected to be missing and keep the
    values the spec built.
    """
    state = {k[len(MODEL_PREFIX):]: v for k, v in tensors.items() if k.startswith(MODEL_PREFIX)}
    expected = set(model.state_dict())
    if which == "trainable":
        frozen = {name for name, p in model.named_parameters() if not p.requires_grad}
        expected -= frozen
    missing = sorted(expected - set(state))
    unexpected = sorted(set(state) - set(model.state_dict()))
    if missing or unexpected:
        raise CheckpointError(
            "checkpoint weights do not match the model built from the spec "
            f"(missing: {', '.join(missing[:5]) or 'none'}{' ...' if len(missing) > 5 else ''}; "
            f"unexpected: {', '.join(unexpected[:5]) or 'none'}"
            f"{' ...' if len(unexpected) > 5 else ''}); the installed plugins build a "
            "different model than the one that was trained, so install the versions listed "
            "in the run's versions.json"
        )
    try:
        model.load_state_dict(state, strict=which == "all")
    except RuntimeError as error:
        raise CheckpointError(f"cannot load checkpoint weights into the model: {error}") from None


def capture_rng_state(tensors: dict[str, torch.Tensor]) -> dict[str, Any]:
    """Return the global Python, NumPy, torch and CUDA generator states, packed for JSON."""
    numpy_state = np.random.get_state(legacy=True)
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": (numpy_state[0], numpy_state[1].tolist(), *numpy_state[2:]),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        devices = range(torch.cuda.device_count())
        state["cuda"] = [torch.cuda.get_rng_state(index) for index in devices]
    return pack_state(state, "rng", tensors)


def restore_rng_state(packed: dict[str, Any], tensors: dict[str, torch.Tensor]) -> None:
    """Restore the generator states saved by :func:`capture_rng_state`."""
    state = unpack_state(packed, tensors)
    random.setstate(state["python"])
    name, keys, position, has_gauss, cached = state["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), position, has_gauss, cached))
    torch.set_rng_state(state["torch"].cpu())
    cuda_states = state.get("cuda")
    if cuda_states and torch.cuda.is_available():
        if len(cuda_states) != torch.cuda.device_count():
            logger.warning(
                "the checkpoint contains CUDA generator states of %s but %d are visible; "
                "restoring the first ones, so a resumed run may not repeat bitwise",
                format_count(len(cuda_states), "device"),
                torch.cuda.device_count(),
            )
        for index, value in enumerate(cuda_states[: torch.cuda.device_count()]):
            torch.cuda.set_rng_state(value.cpu(), index)
