"""Configuration of the ``supervised`` recipe (the ``train:`` section of a spec).

Kept free of torch so that validating a spec stays cheap.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, ValidationInfo, field_validator

from adaptlab.core.contracts import ComponentConfig

__all__ = [
    "CheckpointConfig",
    "EarlyStoppingConfig",
    "OptimizerConfig",
    "SchedulerConfig",
    "SupervisedConfig",
]


class OptimizerConfig(ComponentConfig):
    """Optimizer of the trainable parameters."""

    name: Literal["adamw", "sgd"] = Field("adamw", description="Optimizer: adamw or sgd.")
    lr: float = Field(1e-3, gt=0, allow_inf_nan=False, description="Peak learning rate.")
    weight_decay: float = Field(
        0.01, ge=0, allow_inf_nan=False, description="Decoupled (adamw) or L2 (sgd) decay."
    )
    betas: tuple[float, float] = Field(
        (0.9, 0.999),
        description="AdamW decay rates of the first and second moment estimates, each in [0, 1).",
    )
    momentum: float = Field(0.9, ge=0, lt=1, description="SGD momentum.")
    nesterov: bool = Field(False, description="Use Nesterov momentum with sgd.")

    @field_validator("betas")
    @classmethod
    def _check_betas(cls, value: tuple[float, float]) -> tuple[float, float]:
        # torch.optim.AdamW raises on a beta outside [0, 1), but only when training starts.
        if not all(0.0 <= beta < 1.0 for beta in value):
            raise ValueError("each beta must be in [0, 1); the usual values are [0.9, 0.999]")
        return value

    @field_validator("nesterov")
    @classmethod
    def _check_nesterov(cls, value: bool, info: ValidationInfo) -> bool:
        name, momentum = info.data.get("name"), info.data.get("momentum")
        if value and (name != "sgd" or momentum == 0):
            raise ValueError(
                f"nesterov needs name 'sgd' and a momentum above 0 (name is {name!r}, "
                f"momentum {momentum})"
            )
        return value


class SchedulerConfig(ComponentConfig):
    """Learning-rate schedule, stepped once per optimizer step."""

    name: Literal["constant", "cosine", "step"] = Field(
        "cosine", description="constant, cosine (decay to min_lr after warm-up) or step."
    )
    warmup_steps: int = Field(0, ge=0, description="Linear warm-up length in optimizer steps.")
    min_lr: float = Field(
        0.0, ge=0, allow_inf_nan=False, description="Final learning rate of the cosine schedule."
    )
    step_size: int = Field(
        1, ge=1, description="Epochs between decays of the step schedule."
    )
    gamma: float = Field(0.1, gt=0, le=1, description="Decay factor of the step schedule.")


class EarlyStoppingConfig(ComponentConfig):
    """Stop when the monitored metric has not improved for ``patience`` evaluations."""

    patience: int = Field(5, ge=1, description="Evaluations without improvement before stopping.")
    min_delta: float = Field(0.0, ge=0, description="Smallest change that counts as improvement.")


class CheckpointConfig(ComponentConfig):
    """Checkpoint frequency, retention and content."""

    every_epochs: int = Field(1, ge=1, description="Epochs between checkpoints.")
    keep_last: int = Field(2, ge=1, description="Number of most recent checkpoints kept.")
    keep_best: bool = Field(True, description="Also keep the checkpoint with the best monitor.")
    weights: Literal["all", "trainable"] = Field(
        "all",
        description="Model weights stored per checkpoint: all, or only trainable parameters "
        "and buffers (for large frozen pretrained backbones that the spec rebuilds identically).",
    )


class SupervisedConfig(ComponentConfig):
    """Supervised single- or multi-task training with weighted task losses."""

    epochs: int = Field(10, ge=1, description="Number of passes over the training split.")
    batch_size: int = Field(32, ge=1, description="Samples per forward pass.")
    eval_batch_size: int | None = Field(
        None, ge=1, description="Samples per evaluation batch (default: batch_size)."
    )
    accumulate_steps: int = Field(
        1, ge=1, description="Batches whose gradients are summed before one optimizer step."
    )
    optimizer: OptimizerConfig = Field(default_factory=OptimizerConfig)
    scheduler: SchedulerConfig = Field(default_factory=SchedulerConfig)
    grad_clip: float | None = Field(
        None, gt=0, description="Maximum global gradient norm; unset disables clipping."
    )
    precision: Literal["auto", "fp32", "bf16", "fp16"] = Field(
        "auto",
        description="Autocast precision on CUDA; auto picks bf16 where supported. "
        "The CPU always trains in fp32.",
    )
    device: Literal["auto", "cpu", "cuda"] = Field(
        "auto", description="Where to train; auto picks cuda when available."
    )
    deterministic: bool = Field(
        True, description="Use deterministic algorithms so a seeded run repeats bitwise."
    )
    num_workers: int = Field(0, ge=0, description="DataLoader worker processes.")
    eval_every: int = Field(1, ge=1, description="Epochs between evaluations on the val split.")
    monitor: str | None = Field(
        None,
        description="Metric that selects the best checkpoint and drives early stopping, "
        "as 'TASK/METRIC' (e.g. 'digit/accuracy'), 'loss', or 'delta_m' (derived by datasets "
        "with single-task baselines); default: the loss.",
    )
    mode: Literal["min", "max"] | None = Field(
        None, description="Whether the monitor improves downwards or upwards (default: by name)."
    )
    early_stopping: EarlyStoppingConfig | None = Field(
        None, description="Early stopping on the monitor; unset trains all epochs."
    )
    checkpoint: CheckpointConfig = Field(default_factory=CheckpointConfig)
    progress: bool = Field(True, description="Show a progress bar on a terminal.")
    log_every: int = Field(50, ge=1, description="Optimizer steps between training log lines.")

    @field_validator("monitor")
    @classmethod
    def _check_monitor(cls, value: str | None) -> str | None:
        # Datasets with single-task baselines derive delta_m across tasks. The spec validator
        # checks with the dataset whether it reports it.
        if value is not None and value not in ("loss", "delta_m") and "/" not in value:
            raise ValueError(
                "monitor must be 'loss' or 'TASK/METRIC', e.g. 'digit/accuracy' (or 'delta_m' "
                "with a dataset that has single-task baselines)"
            )
        return value

    @field_validator("scheduler")
    @classmethod
    def _check_min_lr(cls, value: SchedulerConfig, info: ValidationInfo) -> SchedulerConfig:
        optimizer = info.data.get("optimizer")
        if optimizer is not None and value.name == "cosine" and value.min_lr > optimizer.lr:
            raise ValueError(
                f"min_lr ({value.min_lr}) is above optimizer.lr ({optimizer.lr}); the cosine "
                "schedule decays from lr to min_lr"
            )
        return value
