"""Built-in plugin ``peft``: parameter-efficient fine-tuning methods from peft as adapters.

Components: ``lora``, ``dora``, ``loha``, ``lokr``, ``ia3``, ``oft``, ``vera`` with typed
fields, and ``peft`` for any other peft method that injects layers, configured with peft's
own option names. Importing this module stays cheap; peft is imported when an adapter is
built (see :mod:`adaptlab.plugins.peft_adapters.adapter`).
"""

from __future__ import annotations

from adaptlab.core.contracts import Register
from adaptlab.core.hookspecs import hookimpl
from adaptlab.plugins.peft_adapters.config import (
    DoraConfig,
    GenericPeftConfig,
    Ia3Config,
    LohaConfig,
    LokrConfig,
    LoraConfig,
    OftConfig,
    PeftAdapterConfig,
    VeraConfig,
)

__all__ = [
    "ADAPTLAB_HOOK_API",
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

ADAPTLAB_HOOK_API = "1.0"

_FACTORY = "adaptlab.plugins.peft_adapters.adapter:build_peft_adapter"

_ADAPTERS: tuple[tuple[str, type[PeftAdapterConfig], str], ...] = (
    ("lora", LoraConfig, "LoRA: low-rank weight updates (Hu et al., 2021) via peft."),
    ("dora", DoraConfig, "DoRA: LoRA on the weight direction plus a trained magnitude, via peft."),
    ("loha", LohaConfig, "LoHa: Hadamard product of two low-rank updates (FedPara), via peft."),
    ("lokr", LokrConfig, "LoKr: Kronecker-product weight updates (LyCORIS), via peft."),
    ("ia3", Ia3Config, "(IA)3: learned rescaling of layer activations, via peft."),
    ("oft", OftConfig, "OFT: block-diagonal orthogonal weight rotations, via peft."),
    ("vera", VeraConfig, "VeRA: shared random projections with trained scaling vectors, via peft."),
    ("peft", GenericPeftConfig, "Any other peft method that injects layers, by PeftType name."),
)


@hookimpl
def adaptlab_register_adapters(register: Register) -> None:
    """Register the peft adapters."""
    for name, config, summary in _ADAPTERS:
        register(name, config=config, factory=_FACTORY, summary=summary)
