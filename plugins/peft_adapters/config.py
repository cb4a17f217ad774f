"""Configuration models of the peft adapters (light: imports pydantic only).

Each model maps its fields to the keyword arguments of the matching peft config class
(peft 0.21) in :meth:`PeftAdapterConfig.peft_options`. Target selection is not passed on as
written: the adapter resolves it against the module it is applied to.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar, Literal

from pydantic import Field, ValidationInfo, field_validator

from adaptlab.core.contracts import ComponentConfig

__all__ = [
    "ALL_LINEAR",
    "DoraConfig",
    "GenericPeftConfig",
    "Ia3Config",
    "LohaConfig",
    "LokrConfig",
    "LoraConfig",
    "OftConfig",
    "PeftAdapterConfig",
    "VeraConfig",
]

ALL_LINEAR = "all-linear"

_TARGETS_HELP = (
    "Layers that receive the adapter: a list of names, each matching a layer whose full "
    "name equals it or ends with '.NAME' (e.g. [qkv, fc1]); a single string, which is a "
    "regular expression matched against the whole dotted name (e.g. "
    "'model\\.blocks\\.\\d+\\.attn\\.qkv'); or 'all-linear' for every nn.Linear layer. "
    "Full names of a timm backbone start with 'model.'."
)

Targets = list[str] | str


def _check_targets(value: Targets | None) -> Targets | None:
    if value is None:
        return None
    if isinstance(value, str):
        if value.lower() == ALL_LINEAR:
            return ALL_LINEAR
        try:
            re.compile(value)
        except re.error as error:
            raise ValueError(f"invalid regular expression ({error})") from None
        return value
    if not value:
        raise ValueError("list of layer names is empty; give at least one name or 'all-linear'")
    if any(not name for name in value):
        raise ValueError("layer names must not be empty")
    return value


class PeftAdapterConfig(ComponentConfig):
    """Fields shared by every peft adapter."""

    peft_type: ClassVar[str] = ""

    target_modules: Targets = Field(ALL_LINEAR, description=_TARGETS_HELP)
    exclude_modules: Targets | None = Field(
        None,
        description=(
            "Layers removed from the targets, written like target_modules ('all-linear' "
            "excludes every linear layer)."
        ),
    )
    modules_to_save: list[str] | None = Field(
        None,
        description=(
            "Modules (not adapted layers) that are trained in full and saved with the "
            "adapter, matched by name suffix like target_modules lists (e.g. [norm])."
        ),
    )

    @field_validator("target_modules", "exclude_modules")
    @classmethod
    def _validate_targets(cls, value: Targets | None) -> Targets | None:
        return _check_targets(value)

    def peft_method(self) -> str:
        """Return the peft ``PeftType`` name of this adapter (``LORA``, ``IA3``, ...)."""
        return self.peft_type

    def peft_options(self) -> dict[str, Any]:
        """Return keyword arguments of the peft config class, without target selection."""
        raise NotImplementedError


class LoraConfig(PeftAdapterConfig):
    """LoRA: a trainable low-rank update B·A added to each target layer's weight."""

    peft_type: ClassVar[str] = "LORA"

    r: int = Field(8, gt=0, description="Rank of the update matrices.")
    alpha: float = Field(
        8.0, gt=0, description="Scaling numerator: the update is scaled by alpha / r."
    )
    dropout: float = Field(
        0.0, ge=0.0, lt=1.0, description="Dropout probability on the adapter's input."
    )
    bias: Literal["none", "all", "lora_only"] = Field(
        "none",
        description=(
            "Biases that are trained: none, all biases of the model, or only those of the "
            "adapted layers."
        ),
    )
    use_rslora: bool = Field(
        False, description="Scale the update by alpha / sqrt(r) (rank-stabilized LoRA)."
    )
    init: Literal["default", "gaussian", "pissa", "olora", "orthogonal", "random"] = Field(
        "default",
        description=(
            "Initialization: default (B = 0, so the adapter starts as a no-op), gaussian, "
            "pissa or olora (from the base weight's SVD or QR; they modify the base weight), "
            "orthogonal (needs an even r), or random (A and B random, for debugging)."
        ),
    )

    def peft_options(self) -> dict[str, Any]:
        init: bool | str = {"default": True, "random": False}.get(self.init, self.init)
        return {
            "r": self.r,
            "lora_alpha": self.alpha,
            "lora_dropout": self.dropout,
            "bias": self.bias,
            "use_rslora": self.use_rslora,
            "init_lora_weights": init,
            "use_dora": False,
        }

    @field_validator("init")
    @classmethod
    def _check_orthogonal_rank(cls, value: str, info: ValidationInfo) -> str:
        rank = info.data.get("r")
        if value == "orthogonal" and rank is not None and rank % 2:
            raise ValueError(f"init 'orthogonal' needs an even r, but r is {rank}")
        return value


class DoraConfig(LoraConfig):
    """DoRA: LoRA on the weight's direction plus a trainable per-output magnitude vector."""

    def peft_options(self) -> dict[str, Any]:
        return {**super().peft_options(), "use_dora": True}


class _InitChoice(PeftAdapterConfig):
    init: Literal["default", "random"] = Field(
        "default",
        description=(
            "Initialization: default (the adapter starts as a no-op) or random (it changes "
            "the outputs from the start, for debugging)."
        ),
    )


class _LycorisFields(PeftAdapterConfig):
    """Fields that LoHa and LoKr share (both methods come from the LyCORIS family)."""

    r: int = Field(8, gt=0, description="Rank of each low-rank factor.")
    alpha: float = Field(8.0, gt=0, description="Scaling numerator: updates are scaled by alpha / r.")
    rank_dropout: float = Field(
        0.0, ge=0.0, lt=1.0, description="Dropout probability over the rank dimension in training."
    )
    module_dropout: float = Field(
        0.0, ge=0.0, lt=1.0,
        description="Probability of skipping a layer's adapter entirely in a training step.",
    )
    use_effective_conv2d: bool = Field(
        False, description="Use the parameter-efficient decomposition for convolutions with k > 1."
    )

    def _lycoris_options(self) -> dict[str, Any]:
        return {
            "r": self.r,
            "alpha": self.alpha,
            "rank_dropout": self.rank_dropout,
            "module_dropout": self.module_dropout,
            "use_effective_conv2d": self.use_effective_conv2d,
        }


class LohaConfig(_LycorisFields, _InitChoice):
    """LoHa: the weight update is the Hadamard product of two low-rank products."""

    peft_type: ClassVar[str] = "LOHA"

    def peft_options(self) -> dict[str, Any]:
        return {**self._lycoris_options(), "init_weights": self.init == "default"}


class LokrConfig(_LycorisFields):
    """LoKr: the weight update is a Kronecker product of a small matrix and a low-rank one."""

    peft_type: ClassVar[str] = "LOKR"

    decompose_both: bool = Field(
        False, description="Also factor the left Kronecker matrix into a low-rank product."
    )
    decompose_factor: int = Field(
        -1,
        ge=-1,
        description=(
            "Size of the left Kronecker factor along each dimension; -1 picks the factor "
            "closest to the square root of the dimension."
        ),
    )
    init: Literal["default", "random", "lycoris"] = Field(
        "default",
        description=(
            "Initialization: default (no-op start), random (for debugging) or lycoris (the "
            "LyCORIS library's scheme)."
        ),
    )

    @field_validator("decompose_factor")
    @classmethod
    def _reject_zero_factor(cls, value: int) -> int:
        if value == 0:
            raise ValueError("decompose_factor must be -1 (automatic) or a positive integer")
        return value

    def peft_options(self) -> dict[str, Any]:
        init: bool | str = {"default": True, "random": False}.get(self.init, self.init)
        return {
            **self._lycoris_options(),
            "decompose_both": self.decompose_both,
            "decompose_factor": self.decompose_factor,
            "init_weights": init,
        }


class Ia3Config(_InitChoice):
    """(IA)³: trainable vectors that rescale the activations of each target layer."""

    peft_type: ClassVar[str] = "IA3"

    feedforward_modules: Targets | None = Field(
        None,
        description=(
            "Target layers whose input, not output, is rescaled (the paper's feed-forward "
            "layers, e.g. [fc2] in a ViT); written like target_modules and a subset of them. "
            "None rescales every target's output."
        ),
    )

    @field_validator("feedforward_modules")
    @classmethod
    def _validate_feedforward(cls, value: Targets | None) -> Targets | None:
        return _check_targets(value)

    def peft_options(self) -> dict[str, Any]:
        return {"init_ia3_weights": self.init == "default"}


class OftConfig(_InitChoice):
    """OFT: a trainable block-diagonal orthogonal rotation of each target layer's weight."""

    peft_type: ClassVar[str] = "OFT"

    block_size: int = Field(
        32,
        ge=0,
        description=(
            "Side of each orthogonal block; must divide every target's input width. Set "
            "exactly one of block_size and r; 0 leaves it unset."
        ),
    )
    r: int = Field(
        0,
        ge=0,
        validate_default=True,
        description="Number of orthogonal blocks per layer; 0 leaves it unset.",
    )
    module_dropout: float = Field(
        0.0, ge=0.0, lt=1.0,
        description="Probability of replacing a block by the identity in a training step.",
    )
    bias: Literal["none", "all", "oft_only"] = Field(
        "none", description="Biases that are trained: none, all, or those of adapted layers."
    )
    coft: bool = Field(False, description="Constrain the rotation's distance from the identity (COFT).")
    eps: float = Field(6e-5, gt=0, description="Maximum distance from the identity under coft.")
    block_share: bool = Field(False, description="Share one block's parameters across a layer.")
    use_cayley_neumann: bool = Field(
        True,
        description=(
            "Approximate the Cayley transform with a Neumann series (faster, less exactly "
            "orthogonal)."
        ),
    )

    @field_validator("r")
    @classmethod
    def _check_one_size(cls, value: int, info: ValidationInfo) -> int:
        block_size = info.data.get("block_size")
        if block_size is None:
            return value
        if value and block_size:
            raise ValueError(
                f"set exactly one of block_size and r, but block_size is {block_size}; set "
                "block_size to 0 to use r"
            )
        if not value and not block_size:
            raise ValueError("set exactly one of block_size and r to a positive value")
        return value

    def peft_options(self) -> dict[str, Any]:
        return {
            "r": self.r,
            "oft_block_size": self.block_size,
            "module_dropout": self.module_dropout,
            "bias": self.bias,
            "coft": self.coft,
            "eps": self.eps,
            "block_share": self.block_share,
            "use_cayley_neumann": self.use_cayley_neumann,
            "init_weights": self.init == "default",
        }


class VeraConfig(_InitChoice):
    """VeRA: frozen random projections shared by all layers with trainable scaling vectors."""

    peft_type: ClassVar[str] = "VERA"

    r: int = Field(256, gt=0, description="Rank of the shared random projections.")
    dropout: float = Field(
        0.0, ge=0.0, lt=1.0, description="Dropout probability on the adapter's input."
    )
    d_initial: float = Field(0.1, gt=0, description="Initial value of the scaling vector d.")
    projection_seed: int = Field(
        0, ge=0, description="Seed of the shared random projections."
    )
    save_projection: bool = Field(
        True, description="Store the shared projections in the state dict (safe to reload)."
    )
    bias: Literal["none", "all", "vera_only"] = Field(
        "none", description="Biases that are trained: none, all, or those of adapted layers."
    )

    def peft_options(self) -> dict[str, Any]:
        return {
            "r": self.r,
            "vera_dropout": self.dropout,
            "d_initial": self.d_initial,
            "projection_prng_key": self.projection_seed,
            "save_projection": self.save_projection,
            "bias": self.bias,
            "init_weights": self.init == "default",
        }


_COMMON_FIELDS = ("target_modules", "exclude_modules", "modules_to_save")


class GenericPeftConfig(PeftAdapterConfig):
    """Any peft method that injects layers, configured with peft's own option names."""

    method: str = Field(
        description=(
            "peft method: a PeftType name such as LORA, BOFT, HRA, FOURIERFT or VBLORA "
            "(case-insensitive). Prompt-learning methods are not supported."
        ),
        pattern=r"^[A-Za-z][A-Za-z0-9_]*$",
    )
    options: dict[str, Any] = Field(
        default_factory=dict,
        description=(
            "Keyword arguments of the method's peft config class, e.g. {boft_block_size: 4} "
            "for BOFT; peft checks them when the adapter is built."
        ),
    )

    @field_validator("method")
    @classmethod
    def _normalize_method(cls, value: str) -> str:
        return value.upper()

    @field_validator("options")
    @classmethod
    def _reject_common_fields(cls, value: dict[str, Any]) -> dict[str, Any]:
        for key in ("peft_type", *_COMMON_FIELDS):
            if key in value:
                hint = "set it next to method" if key != "peft_type" else "use method"
                raise ValueError(f"options must not contain {key!r}; {hint}")
        return value

    def peft_method(self) -> str:
        return self.method

    def peft_options(self) -> dict[str, Any]:
        return dict(self.options)
