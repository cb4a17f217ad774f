"""adaptlab plugin with bottleneck adapters and an L1 budget on their gates.

adaptlab loads this module through the ``adaptlab`` entry-point group (see ``pyproject.toml``).
It must stay cheap to import, so it imports only the configuration models, which need only
pydantic, and gives the factories as ``"module:function"`` strings. torch is imported only
when a model that uses these components is built.
"""

from __future__ import annotations

from adaptlab.core import hookimpl
from adaptlab.core.contracts import Register
from adaptlab_bottleneck.config import BottleneckConfig, GateSparsityConfig

__all__ = ["ADAPTLAB_HOOK_API", "adaptlab_register_adapters", "adaptlab_register_policies"]

__version__ = "0.1.0"

# The adaptlab hook API this plugin is written for. adaptlab skips, and reports, a plugin
# whose major version differs from its own.
ADAPTLAB_HOOK_API = "1.0"


@hookimpl
def adaptlab_register_adapters(register: Register) -> None:
    register(
        "bottleneck",
        config=BottleneckConfig,
        factory="adaptlab_bottleneck.adapter:build_adapter",
        summary="Houlsby-style bottleneck adapters after chosen linear layers (own code).",
    )


@hookimpl
def adaptlab_register_policies(register: Register) -> None:
    register(
        "gate_sparsity",
        config=GateSparsityConfig,
        factory="adaptlab_bottleneck.policy:build_policy",
        summary="L1 budget on bottleneck adapter gates, skipping near-zero adapters at inference.",
    )
