"""Liberty cell libraries: the model, a reader, and the project's synthetic library.

``read_liberty`` reads a PDK's ``.lib`` file; ``generate_library`` writes the synthetic
library derived from logical effort, whose text is deterministic for given parameters.
"""

from .generate import LIBRARY_VERSION, SyntheticLibraryParams, generate_library, write_library
from .model import Cell, Library, LibertyError, Pin, Table, TimingArc, drive_strength
from .parse import parse_liberty, read_liberty

__all__ = [
    "LIBRARY_VERSION",
    "Cell",
    "Library",
    "LibertyError",
    "Pin",
    "SyntheticLibraryParams",
    "Table",
    "TimingArc",
    "drive_strength",
    "generate_library",
    "parse_liberty",
    "read_liberty",
    "write_library",
]
