"""Labelled GraPhSyM datasets: synthesize, time and cache (design, delay target) records.

``build_dataset`` turns design specs and delay targets into :class:`Record` objects, each with
the pre- and post-physical netlists and their critical delay and area, and keeps every record in
a content-addressed cache so that builds resume where they stopped. ``adder_specs`` gives the
default set of 32-bit prefix adders. This package does not import torch.
"""

from .builder import DEFAULT_BATCH_SIZE, DatasetBuild, Failure, adder_specs, build_dataset
from .cache import CorruptRecordError, RecordCache
from .netlist_json import netlist_from_json, netlist_to_json
from .records import (
    FLOW_VERSION,
    DatasetError,
    DelayTarget,
    DesignSpec,
    LibraryFingerprint,
    Record,
    aggressive_target,
    record_key,
)

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "FLOW_VERSION",
    "CorruptRecordError",
    "DatasetBuild",
    "DatasetError",
    "DelayTarget",
    "DesignSpec",
    "Failure",
    "LibraryFingerprint",
    "Record",
    "RecordCache",
    "adder_specs",
    "aggressive_target",
    "build_dataset",
    "netlist_from_json",
    "netlist_to_json",
    "record_key",
]
