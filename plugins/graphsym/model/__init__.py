"""GATv2 encoder, graph readout, regression head and metrics of graphsym (needs torch).

Factories: :func:`build_gatv2_encoder` (graph encoder ``gatv2``) and
:func:`build_graph_regression_head` (head ``graph_regression``); their configurations are in
:mod:`adaptlab.plugins.graphsym.config`.
"""

from .encoder import GATv2Encoder, build_gatv2_encoder
from .heads import GraphRegressionHead, TargetNormalizer, build_graph_regression_head
from .metrics import RegressionMetric
from .readout import READOUTS, NodeEmbeddings, Readout

__all__ = [
    "READOUTS",
    "GATv2Encoder",
    "GraphRegressionHead",
    "NodeEmbeddings",
    "Readout",
    "RegressionMetric",
    "TargetNormalizer",
    "build_gatv2_encoder",
    "build_graph_regression_head",
]
