"""Labelled design records: design specs, delay targets, cache keys and the record payload.

A record covers one design at one delay target. It contains the pre-physical netlist
(structure-preserving mapping onto the library) and the post-physical netlist (ABC buffering and
sizing at the delay target). Its labels are the critical delay (ns) and area (Liberty area unit)
of both netlists, timed by :func:`~adaptlab.plugins.graphsym.timing.analyze_timing` with the same library
and :class:`~adaptlab.plugins.graphsym.timing.TimingOptions`.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math
import random
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..designs import (
    Design,
    array_multiplier,
    build_prefix_graph,
    design_key,
    prefix_adder,
    prefix_comparator,
    random_prefix_graph,
)
from ..designs.other import MULTIPLIER_WIDTHS
from ..designs.prefix import TOPOLOGIES
from ..netlist.model import Netlist
from ..timing import TimingOptions
from .netlist_json import netlist_from_json, netlist_to_json

__all__ = [
    "CIRCUITS",
    "FLOW_VERSION",
    "DatasetError",
    "DelayTarget",
    "DesignSpec",
    "LibraryFingerprint",
    "Record",
    "aggressive_target",
    "canonical_json",
    "record_key",
]

# Bump whenever the synthesis scripts, the label definitions or the record layout change, so that
# cached records made by the old flow get new keys and are rebuilt.
FLOW_VERSION = "1"
RANDOM_TOPOLOGY = "random"
ARRAY_TOPOLOGY = "array"
# Generated circuit kinds: prefix adders (the training data), and comparators and array
# multipliers for testing on circuits the model has not seen.
CIRCUITS = ("adder", "comparator", "multiplier")
_SYNTHETIC_HEADER = re.compile(r"^\s*\*\s*(\S+), version (\S+):", re.MULTILINE)


class DatasetError(ValueError):
    """An invalid dataset request (spec, delay target, library), or a build in which every design failed."""


def canonical_json(value: Any) -> bytes:
    """Serialize ``value`` as compact JSON with sorted keys: equal values give equal bytes."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()


@dataclass(frozen=True)
class DesignSpec:
    """Settings of one generated design: an adder, a comparator or a multiplier.

    ``circuit`` is a key of :data:`CIRCUITS`. Adders and comparators are built over a prefix
    graph: ``topology`` is a key of :data:`~adaptlab.plugins.graphsym.designs.prefix.TOPOLOGIES`
    or ``"random"``, and ``seed`` and ``density`` are required for ``"random"`` and must be None
    otherwise. Multipliers are array multipliers: ``topology`` is ``"array"``, ``width`` is
    2 to 16 bits, and ``seed`` and ``density`` must be None.
    """

    topology: str
    width: int
    seed: int | None = None
    density: float | None = None
    circuit: str = "adder"

    def __post_init__(self) -> None:
        if self.circuit not in CIRCUITS:
            raise DatasetError(f"unknown circuit {self.circuit!r}; expected one of: {', '.join(CIRCUITS)}")
        if self.circuit == "multiplier":
            if self.topology != ARRAY_TOPOLOGY or self.seed is not None or self.density is not None:
                raise DatasetError(
                    f"multiplier spec {self}: use topology {ARRAY_TOPOLOGY!r} without seed and density"
                )
            if self.width not in MULTIPLIER_WIDTHS:
                raise DatasetError(
                    f"multiplier spec {self}: width must be {MULTIPLIER_WIDTHS.start} to "
                    f"{MULTIPLIER_WIDTHS.stop - 1} bits"
                )
        elif self.topology == RANDOM_TOPOLOGY:
            if self.seed is None or self.density is None:
                raise DatasetError(f"random {self.circuit} spec {self}: set both seed and density")
        elif self.topology in TOPOLOGIES:
            if self.seed is not None or self.density is not None:
                raise DatasetError(f"{self.circuit} spec {self}: seed and density apply only to topology 'random'")
        else:
            known = ", ".join([*sorted(TOPOLOGIES), RANDOM_TOPOLOGY])
            raise DatasetError(f"unknown {self.circuit} topology {self.topology!r}; expected one of: {known}")

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def build(self) -> Design:
        """Generate and simulate the design (memoized per spec, so repeated calls are cheap)."""
        return _build_design(self)


@functools.lru_cache(maxsize=4096)
def _build_design(spec: DesignSpec) -> Design:
    if spec.circuit == "multiplier":
        return array_multiplier(spec.width)
    generator = prefix_adder if spec.circuit == "adder" else prefix_comparator
    if spec.topology != RANDOM_TOPOLOGY:
        return generator(build_prefix_graph(spec.topology, spec.width))
    graph = random_prefix_graph(spec.width, random.Random(spec.seed), spec.density)
    # The name comes from the node set, not the seed, so two seeds that draw the same graph give
    # the same Verilog and the same design_key.
    nodes = canonical_json(sorted([i, j] for i, j in graph.nodes if i != j))
    return generator(graph, name=f"{spec.circuit}_random_{spec.width}_{hashlib.sha256(nodes).hexdigest()[:12]}")


@dataclass(frozen=True)
class DelayTarget:
    """A delay target for ABC sizing: ``value`` ns, or ``value`` times the pre netlist's critical delay."""

    value: float
    relative: bool = False

    def __post_init__(self) -> None:
        kind = "delay target factor" if self.relative else "delay target"
        if isinstance(self.value, bool) or not isinstance(self.value, (int, float)) or not math.isfinite(self.value):
            raise DatasetError(f"{kind} must be a finite number, got {self.value!r}")
        if self.value <= 0:
            raise DatasetError(
                f"{kind} must be > 0, got {self.value!r}; give a delay target in ns "
                "or a factor of the pre netlist's critical delay such as 0.75"
            )
        if not self.relative and round(self.value * 1000) < 1:
            raise DatasetError(f"delay target {self.value!r} ns rounds to 0 ps; ABC takes whole picoseconds")

    @classmethod
    def coerce(cls, target: DelayTarget | float) -> DelayTarget:
        """Return ``target`` unchanged, or a plain number as an absolute target in ns."""
        return target if isinstance(target, DelayTarget) else cls(target)

    def resolve_ns(self, pre_delay_ns: float) -> float:
        """Return the delay target in ns for a design whose pre netlist has ``pre_delay_ns``."""
        return aggressive_target(pre_delay_ns, self.value) if self.relative else float(self.value)

    def as_dict(self) -> dict[str, Any]:
        return {"kind": "relative" if self.relative else "absolute_ns", "value": self.value}


def aggressive_target(pre_delay_ns: float, factor: float) -> float:
    """Return ``factor * pre_delay_ns``: the delay target, in ns, for a factor below 1 such as 0.75."""
    if not math.isfinite(pre_delay_ns) or pre_delay_ns <= 0:
        raise DatasetError(f"pre netlist critical delay must be > 0 ns, got {pre_delay_ns!r}")
    if not math.isfinite(factor) or factor <= 0:
        raise DatasetError(f"delay target factor must be > 0, got {factor!r}")
    return pre_delay_ns * factor


@dataclass(frozen=True)
class LibraryFingerprint:
    """Identity of a Liberty file: sha256 of its bytes, plus the synthetic library's name and version."""

    path: str
    sha256: str
    name: str | None
    version: str | None

    @classmethod
    def of(cls, path: str | Path) -> LibraryFingerprint:
        path = Path(path)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise DatasetError(f"Liberty file not found: {path}; check library_path") from None
        # Only the synthetic library's header comment names a version (see liberty.generate).
        match = _SYNTHETIC_HEADER.search(data[:2000].decode(errors="replace"))
        name, version = (match.group(1), match.group(2)) if match else (None, None)
        return cls(str(path), hashlib.sha256(data).hexdigest(), name, version)


def record_key(
    design_digest: str,
    library_sha256: str,
    backend_version: str,
    target: DelayTarget,
    timing_options: TimingOptions,
    max_fanout: int | None = None,
) -> str:
    """Return the cache key: sha256 over design, library bytes, back end, delay target, timer options and FLOW_VERSION.

    ``backend_version`` is the back end's ``version()`` string, which starts with its name.
    ``max_fanout`` (ABC ``buffer -N``) enters the key only when set, so records sized with ABC's
    default keep the keys they had before the option existed.
    """
    material = {
        "design_key": design_digest,
        "library_sha256": library_sha256,
        "backend": backend_version,
        "delay_target": target.as_dict(),
        "timing_options": dataclasses.asdict(timing_options),
        "flow_version": FLOW_VERSION,
    }
    if max_fanout is not None:
        material["max_fanout"] = max_fanout
    return hashlib.sha256(canonical_json(material)).hexdigest()


@dataclass(frozen=True)
class Record:
    """One labelled design: netlists before and after sizing at one delay target, and their timing.

    Delays are critical-path delays in ns from the project's NLDM timer; areas are sums of Liberty
    cell areas. ``delay_target_ns`` is the resolved target and ``delay_target_ps`` the whole
    picoseconds ABC received. ``provenance`` names the back end, library, flow and timer options.
    """

    key: str
    spec: DesignSpec
    design_name: str
    design_key: str
    delay_target: DelayTarget
    delay_target_ns: float
    delay_target_ps: int
    pre_delay_ns: float
    pre_area: float
    post_delay_ns: float
    post_area: float
    pre: Netlist = field(repr=False)
    post: Netlist = field(repr=False)
    provenance: dict[str, Any] = field(default_factory=dict, repr=False)
    seconds: dict[str, float] = field(default_factory=dict, repr=False)

    def to_payload(self) -> dict[str, Any]:
        """Return the JSON-serializable payload stored in the cache."""
        return {
            "key": self.key,
            "spec": self.spec.as_dict(),
            "design": {"name": self.design_name, "design_key": self.design_key},
            "delay_target": {
                **self.delay_target.as_dict(),
                "resolved_ns": self.delay_target_ns,
                "abc_ps": self.delay_target_ps,
            },
            "labels": {
                "pre_delay_ns": self.pre_delay_ns,
                "pre_area": self.pre_area,
                "post_delay_ns": self.post_delay_ns,
                "post_area": self.post_area,
            },
            "pre_netlist": netlist_to_json(self.pre),
            "post_netlist": netlist_to_json(self.post),
            "provenance": self.provenance,
            "seconds": self.seconds,
        }

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> Record:
        """Rebuild a record from :meth:`to_payload` output; raises KeyError or NetlistError when malformed."""
        target = payload["delay_target"]
        labels = payload["labels"]
        return cls(
            key=payload["key"],
            spec=DesignSpec(**payload["spec"]),
            design_name=payload["design"]["name"],
            design_key=payload["design"]["design_key"],
            delay_target=DelayTarget(target["value"], relative=target["kind"] == "relative"),
            delay_target_ns=target["resolved_ns"],
            delay_target_ps=target["abc_ps"],
            pre_delay_ns=labels["pre_delay_ns"],
            pre_area=labels["pre_area"],
            post_delay_ns=labels["post_delay_ns"],
            post_area=labels["post_area"],
            pre=netlist_from_json(payload["pre_netlist"]),
            post=netlist_from_json(payload["post_netlist"]),
            provenance=payload["provenance"],
            seconds=payload["seconds"],
        )
