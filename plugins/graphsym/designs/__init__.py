"""Circuit generators for GraPhSyM training data: prefix graphs, adders and other designs.

Every generator returns a :class:`Design` whose gate list has passed a bit-parallel
simulation against its reference function. The submodules name the source of each
construction.
"""

from adaptlab.plugins.graphsym.designs.base import (
    Design,
    DesignError,
    Gate,
    GateBuilder,
    design_key,
)
from adaptlab.plugins.graphsym.designs.circuit import prefix_adder
from adaptlab.plugins.graphsym.designs.other import array_multiplier, prefix_comparator
from adaptlab.plugins.graphsym.designs.prefix import (
    TOPOLOGIES,
    PrefixGraph,
    PrefixGraphError,
    build_prefix_graph,
    legalize,
    random_prefix_graph,
)
from adaptlab.plugins.graphsym.designs.simulate import check_adder, check_design, simulate

__all__ = [
    "TOPOLOGIES",
    "Design",
    "DesignError",
    "Gate",
    "GateBuilder",
    "PrefixGraph",
    "PrefixGraphError",
    "array_multiplier",
    "build_prefix_graph",
    "check_adder",
    "check_design",
    "design_key",
    "legalize",
    "prefix_adder",
    "prefix_comparator",
    "random_prefix_graph",
    "simulate",
]
