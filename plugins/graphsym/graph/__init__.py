"""Netlist graphs for the GATv2 encoder: nodes, edges and timing features (needs torch)."""

from .features import (
    CELL_FAMILIES,
    EDGE_FEATURE_NAMES,
    FEATURE_NAMES,
    FEATURE_VERSION,
    FeatureScales,
    cell_family,
    edge_feature_names,
    feature_cache_key,
    netlist_to_graph,
)

__all__ = [
    "CELL_FAMILIES",
    "EDGE_FEATURE_NAMES",
    "FEATURE_NAMES",
    "FEATURE_VERSION",
    "FeatureScales",
    "cell_family",
    "edge_feature_names",
    "feature_cache_key",
    "netlist_to_graph",
]
