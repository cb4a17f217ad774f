"""graphsym: GATv2 estimation of post-physical-synthesis delay and area of netlists.

Method: GraPhSyM (graph neural network estimation of post-synthesis metrics). Training data
are prefix adders generated here, mapped by Yosys/ABC onto a Liberty library (the
pre-physical netlist) and then buffered and sized by ABC at a delay target (the
post-physical netlist); delay and area of both come from this package's own NLDM timer.

Registered components: dataset ``adders``, graph encoder ``gatv2`` and head
``graph_regression``. Commands: ``adaptlab data`` builds labelled designs into the cache, and
``adaptlab predict`` estimates post-synthesis delay and area of netlists with a trained run.
"""

from __future__ import annotations

from adaptlab.core.hookspecs import hookimpl
from adaptlab.plugins.graphsym.commands import add_data_arguments, add_predict_arguments
from adaptlab.plugins.graphsym.config import (
    AddersDatasetConfig,
    GATv2EncoderConfig,
    GraphRegressionHeadConfig,
)

ADAPTLAB_HOOK_API = "1.1"


@hookimpl
def adaptlab_register_graph_encoders(register) -> None:  # noqa: ANN001 - typed by the hookspec
    register(
        "gatv2",
        config=GATv2EncoderConfig,
        factory="adaptlab.plugins.graphsym.model.encoder:build_gatv2_encoder",
        summary="GATv2 layers with edge features and residual connections (torch_geometric).",
    )


@hookimpl
def adaptlab_register_heads(register) -> None:  # noqa: ANN001 - typed by the hookspec
    register(
        "graph_regression",
        config=GraphRegressionHeadConfig,
        factory="adaptlab.plugins.graphsym.model.heads:build_graph_regression_head",
        summary="Graph readout and MLP regression on normalized targets (delay, area).",
    )


@hookimpl
def adaptlab_register_datasets(register) -> None:  # noqa: ANN001 - typed by the hookspec
    register(
        "adders",
        config=AddersDatasetConfig,
        factory="adaptlab.plugins.graphsym.adders:build_adders",
        summary="Prefix adders synthesized by Yosys/ABC with post-sizing delay and area labels.",
    )


@hookimpl
def adaptlab_register_commands(register) -> None:  # noqa: ANN001 - typed by the hookspec
    register(
        "data",
        arguments=add_data_arguments,
        run="adaptlab.plugins.graphsym.commands:run_data",
        summary="Build the labelled designs of a graphsym dataset into the cache.",
    )
    register(
        "predict",
        arguments=add_predict_arguments,
        run="adaptlab.plugins.graphsym.predict:run_predict",
        summary="Predict post-synthesis delay and area of mapped netlists with a trained run.",
    )
