"""Static timing analysis of gate-level netlists against a Liberty library.

``analyze_timing`` computes arrivals, slews, required times, slack, the critical path and area.
``levelized_timing`` computes the same values as arrays, vectorized per logic level, for graph
features. ``build_timing_graph`` checks a netlist and numbers its nets for both timers and the
graph features.
"""

from .graph import CONSTANT_DRIVER, PRIMARY_INPUT_DRIVER, TimingGraph, build_timing_graph
from .levelized import LevelizedTiming, levelized_timing
from .sta import InstanceTiming, NetTiming, TimingOptions, TimingReport, analyze_timing

__all__ = [
    "CONSTANT_DRIVER",
    "PRIMARY_INPUT_DRIVER",
    "InstanceTiming",
    "LevelizedTiming",
    "NetTiming",
    "TimingGraph",
    "TimingOptions",
    "TimingReport",
    "analyze_timing",
    "build_timing_graph",
    "levelized_timing",
]
