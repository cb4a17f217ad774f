"""Static timing analysis of gate-level netlists against a Liberty library.

``analyze_timing`` computes arrivals, slews, required times, slack, the critical path and area.
``build_timing_graph`` checks a netlist and numbers its nets for the timer and graph features.
"""

from .graph import CONSTANT_DRIVER, PRIMARY_INPUT_DRIVER, TimingGraph, build_timing_graph
from .sta import InstanceTiming, NetTiming, TimingOptions, TimingReport, analyze_timing

__all__ = [
    "CONSTANT_DRIVER",
    "PRIMARY_INPUT_DRIVER",
    "InstanceTiming",
    "NetTiming",
    "TimingGraph",
    "TimingOptions",
    "TimingReport",
    "analyze_timing",
    "build_timing_graph",
]
