"""``adaptlab predict``: post-physical-synthesis delay and area of a user's mapped netlists.

A trained graphsym run is rebuilt from its ``spec.yaml`` and checkpoint. Each netlist is read
(structural Verilog, BLIF or Yosys JSON), timed once by the project's NLDM timer at the given
delay target D, and turned into the same graph features that training used
(:func:`~adaptlab.plugins.graphsym.graph.features.netlist_to_graph` with default scales and
options). The model then predicts the delay (ns) and area (Liberty area unit) that ABC
buffering and sizing at D would reach.

The target normalization of training (transform, mean and std of the train split) needs no
dataset rebuild. The transform is ``data.target_transform`` of the stored spec, and the mean and
std are buffers of each head's ``TargetNormalizer``, saved in every checkpoint.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from adaptlab.core.errors import AdaptlabError, RunError

from .dataset.splits import cache_root, library_path
from .liberty import Library, LibertyError, read_liberty
from .netlist.blif import read_blif
from .netlist.model import Netlist, NetlistError
from .netlist.verilog import read_verilog
from .netlist.yosys_json import read_yosys_json
from .timing import TimingOptions

if TYPE_CHECKING:
    import torch
    from torch_geometric.data import Data

# torch and torch_geometric take several seconds to import, so they load inside the functions
# that need them. An invalid argument of `adaptlab predict` is then reported at once.
__all__ = ["NetlistInputError", "Prediction", "Predictor", "load_predictor", "read_netlist", "run_predict"]

logger = logging.getLogger(__name__)

DATASET = "adders"
_READERS = {".v": read_verilog, ".sv": read_verilog, ".vg": read_verilog, ".blif": read_blif, ".json": read_yosys_json}


class NetlistInputError(AdaptlabError):
    """A netlist, Liberty file or delay target given to ``adaptlab predict`` is invalid."""

    exit_code = 2


@dataclass(frozen=True)
class Prediction:
    """Timer results of one pre netlist and the model's post-synthesis prediction.

    Delays are in ns and areas in the Liberty area unit. ``pre_*`` come from the project's
    timer on the given netlist; ``predicted_*`` estimate the netlist after ABC buffering and
    sizing at ``delay_target_ns``.
    """

    netlist: str
    module: str
    cells: int
    delay_target_ns: float
    pre_delay_ns: float
    pre_area: float
    predicted_delay_ns: float
    predicted_area: float


def read_netlist(path: Path, top: str | None = None) -> Netlist:
    """Read a mapped netlist, choosing the reader by file suffix; raise NetlistInputError."""
    path = Path(path)
    reader = _READERS.get(path.suffix.lower())
    if reader is None:
        known = ", ".join(sorted(_READERS))
        raise NetlistInputError(f"{path}: unknown netlist format {path.suffix or '(no suffix)'!r}; use one of {known}")
    if not path.is_file():
        raise NetlistInputError(f"netlist not found: {path}; check the path")
    try:
        netlist = reader(path, top=top)
    except NetlistError as error:
        raise NetlistInputError(f"{path}: cannot read the netlist: {error}") from None
    except (OSError, UnicodeDecodeError) as error:
        raise NetlistInputError(f"{path}: cannot read the file: {error}") from None
    if not netlist.instances:
        raise NetlistInputError(
            f"{path}: module {netlist.name!r} has no cells; give a netlist mapped to library cells "
            "(or choose the mapped module with --top)"
        )
    if not netlist.outputs:
        raise NetlistInputError(
            f"{path}: module {netlist.name!r} has no outputs, so it has no path to time; give a "
            "mapped netlist whose module drives at least one output"
        )
    return netlist


class Predictor:
    """A trained graphsym model with the Liberty library that its features are computed with."""

    def __init__(self, model: torch.nn.Module, library: Library, library_file: Path, checkpoint: Path) -> None:
        self.model = model.eval()
        self.library = library
        self.library_file = library_file
        self.checkpoint = checkpoint

    def graph(self, netlist: Netlist, delay_target_ns: float, source: str) -> Data:
        """Time ``netlist`` at the delay target and return its graph; raise NetlistInputError."""
        from .graph.features import netlist_to_graph

        try:
            return netlist_to_graph(netlist, self.library, TimingOptions(delay_target=delay_target_ns))
        except NetlistError as error:
            raise NetlistInputError(f"{source}: {error}") from None

    def predict(self, netlists: list[tuple[str, Netlist]], delay_target_ns: float) -> list[Prediction]:
        """Predict post-synthesis delay and area of each ``(label, netlist)`` at one delay target."""
        import torch
        from torch_geometric.data import Batch

        from .adders import TASKS

        check_delay_target(delay_target_ns)
        graphs = [self.graph(netlist, delay_target_ns, label) for label, netlist in netlists]
        start = time.perf_counter()
        with torch.no_grad():
            features = self.model.backbone(Batch.from_data_list(graphs))
            outputs = {task: self.model.heads[task].predict(features).reshape(-1) for task in TASKS}
        logger.info("predicted %d netlists in %.1f ms", len(graphs), 1000 * (time.perf_counter() - start))
        predictions = []
        for index, ((label, netlist), graph) in enumerate(zip(netlists, graphs)):
            predictions.append(
                Prediction(
                    netlist=label,
                    module=netlist.name,
                    cells=len(netlist.instances),
                    delay_target_ns=delay_target_ns,
                    pre_delay_ns=float(graph.critical_delay[0]),
                    pre_area=float(graph.area[0]),
                    predicted_delay_ns=float(outputs["delay"][index]),
                    predicted_area=float(outputs["area"][index]),
                )
            )
        return predictions


def check_delay_target(delay_target_ns: float) -> None:
    """Raise NetlistInputError unless the delay target is a positive, finite number of ns."""
    if not (isinstance(delay_target_ns, (int, float)) and math.isfinite(delay_target_ns) and delay_target_ns > 0):
        raise NetlistInputError(
            f"--target: the delay target must be a positive number of ns, got {delay_target_ns}; "
            "give the clock period or delay the sizing aims at, such as 0.5"
        )


def load_predictor(
    run_dir: Path, *, checkpoint: str = "best", liberty: Path | None = None, registry: Any = None
) -> Predictor:
    """Rebuild the model of a graphsym run, load one checkpoint and read the Liberty file.

    ``liberty`` defaults to the library the run was trained with. Raises RunError for a
    missing run folder or a run of another dataset, CheckpointError for a missing or corrupt
    checkpoint, and NetlistInputError for an unreadable Liberty file.
    """
    from adaptlab.core.checkpoint import load_checkpoint
    from adaptlab.core.compose import build_model
    from adaptlab.core.contracts import TaskInfo
    from adaptlab.core.training.api import load_run_spec, select_checkpoint
    from adaptlab.core.training.state import load_model_weights

    from .adders import TASKS
    from .graph.features import EDGE_FEATURE_NAMES, FEATURE_NAMES

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise RunError(f"run folder not found: {run_dir}; give a folder written by `adaptlab train`")
    spec = load_run_spec(run_dir, registry)
    if spec.data.name != DATASET or spec.model.graph_encoder is None or not set(TASKS) <= set(spec.model.heads):
        raise RunError(
            f"run {run_dir} was trained on dataset {spec.data.name!r} with heads "
            f"{', '.join(spec.model.heads)}; predict needs a graphsym run (dataset {DATASET!r} with "
            "delay and area heads)"
        )
    config = spec.data.config
    state_path = select_checkpoint(run_dir, checkpoint)
    loaded, tensors = load_checkpoint(state_path)

    # NOTE: a run does not record the feature definition (FEATURE_VERSION). A run trained before
    # a feature change that keeps the feature count gets today's features without a warning.
    # Placeholder statistics: the checkpoint's normalizer buffers replace mean and std.
    extra = {
        "node_features": len(FEATURE_NAMES),
        "edge_features": len(EDGE_FEATURE_NAMES),
        "transform": config.target_transform,
        "mean": 0.0,
        "std": 1.0,
    }
    tasks = {task: TaskInfo(name=task, kind="regression", num_outputs=1, extra=extra) for task in TASKS}
    model = build_model(spec, tasks, registry)
    load_model_weights(model, tensors, loaded.state.get("weights", "all"))

    library_file = Path(liberty) if liberty is not None else library_path(config, cache_root(config))
    if not library_file.is_file():
        raise NetlistInputError(f"Liberty file not found: {library_file}; give the .lib file the netlists are mapped to")
    try:
        library = read_liberty(library_file)
    except (LibertyError, OSError) as error:
        raise NetlistInputError(f"{library_file}: cannot read the Liberty file: {error}") from None
    logger.info("loaded %s of run %s (epoch %d); library %s", state_path.name, run_dir, loaded.epoch, library_file)
    return Predictor(model, library, library_file, state_path)


def _format_table(predictions: list[Prediction]) -> str:
    headers = ["NETLIST", "CELLS", "TARGET NS", "PRE DELAY NS", "PRE AREA", "PREDICTED DELAY NS", "PREDICTED AREA"]
    rows = [
        [p.netlist, str(p.cells), f"{p.delay_target_ns:.4g}", f"{p.pre_delay_ns:.4f}", f"{p.pre_area:.2f}",
         f"{p.predicted_delay_ns:.4f}", f"{p.predicted_area:.2f}"]
        for p in predictions
    ]
    widths = [max(len(row[i]) for row in [headers, *rows]) for i in range(len(headers))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in [headers, *rows])


def run_predict(arguments: argparse.Namespace) -> int:
    """Run ``adaptlab predict``: print one row (or JSON object) per netlist; return 0."""
    # Every check of the arguments comes before the imports of torch in load_predictor.
    check_delay_target(arguments.target)
    netlists = [(str(path), read_netlist(path, arguments.top)) for path in arguments.netlists]
    if arguments.liberty is not None and not Path(arguments.liberty).is_file():
        raise NetlistInputError(
            f"--liberty: Liberty file not found: {arguments.liberty}; give the .lib file the netlists are mapped to"
        )
    if not Path(arguments.run_dir).is_dir():
        raise RunError(f"run folder not found: {arguments.run_dir}; give a folder written by `adaptlab train`")
    predictor = load_predictor(
        arguments.run_dir,
        checkpoint=arguments.checkpoint,
        liberty=arguments.liberty,
        registry=getattr(arguments, "_registry", None),
    )
    predictions = predictor.predict(netlists, arguments.target)
    if arguments.json:
        sys.stdout.write(json.dumps([asdict(p) for p in predictions], indent=2) + "\n")
    else:
        sys.stdout.write(_format_table(predictions) + "\n")
        sys.stdout.write(f"checkpoint {predictor.checkpoint}; library {predictor.library_file}\n")
    return 0
