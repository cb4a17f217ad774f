"""In-memory model of a Liberty cell library, reduced to what static timing and graph features use.

The format is defined by Synopsys' Liberty Reference Manual (versions 2007.03 and R-2020.09 were
consulted). This model keeps the non-linear delay model (NLDM), which gives each timing arc four
tables of delay or output transition, indexed by input transition (slew) and output load.

Units are normalised when the library is read: times are in ns, capacitances in pF, and areas
stay in the library's area unit (square micrometres in the PDKs seen so far, since Liberty has
no area unit attribute).
"""

from __future__ import annotations

import logging
import re
from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

__all__ = [
    "Cell",
    "LibertyError",
    "Library",
    "Pin",
    "Table",
    "TimingArc",
    "drive_strength",
    "interpolation_weight",
]

logger = logging.getLogger(__name__)

T = TypeVar("T")

# Timing types whose arcs propagate a signal through combinational logic. Edge-triggered,
# constraint (setup, hold) and three-state arcs are kept in the model but the timer skips them.
COMBINATIONAL_TIMING_TYPES = frozenset({"combinational", "combinational_rise", "combinational_fall"})


class LibertyError(ValueError):
    """A Liberty file is malformed; the message starts with ``file:line``."""


def interpolation_weight(index: tuple[float, ...], x: float) -> tuple[int, float]:
    """Locate ``x`` on a sorted index: return ``(i, t)`` so that the value is
    ``v[i] + t * (v[i + 1] - v[i])``.

    Outside the index ``t`` is below 0 or above 1, which extrapolates linearly from the first or
    last segment. A one-point index returns ``(0, 0.0)``, so the table is constant along it.
    """
    count = len(index)
    if count < 2:
        return 0, 0.0
    i = bisect_right(index, x) - 1
    if i < 0:
        i = 0
    elif i > count - 2:
        i = count - 2
    low = index[i]
    return i, (x - low) / (index[i + 1] - low)


@dataclass(frozen=True)
class Table:
    """One NLDM lookup table: ``values[i][j]`` at input slew ``index_1[i]`` (ns) and output load
    ``index_2[j]`` (pF).

    Whatever variable order the file's template uses, the parser stores slew as ``index_1`` and
    load as ``index_2``. Each index has at least two points (see ``__post_init__``).
    """

    index_1: tuple[float, ...]
    index_2: tuple[float, ...]
    values: tuple[tuple[float, ...], ...]

    def __post_init__(self) -> None:
        # A one-point axis becomes a two-point axis with equal values, so that every lookup
        # takes the same branch-free path and is constant along that axis.
        if len(self.index_1) != len(self.values) or any(len(row) != len(self.index_2) for row in self.values):
            raise ValueError(
                f"table values are {len(self.values)} x {[len(row) for row in self.values]}, "
                f"indices are {len(self.index_1)} x {len(self.index_2)}"
            )
        if len(self.index_1) == 1:
            object.__setattr__(self, "index_1", (self.index_1[0], self.index_1[0] + 1.0))
            object.__setattr__(self, "values", (self.values[0], self.values[0]))
        if len(self.index_2) == 1:
            object.__setattr__(self, "index_2", (self.index_2[0], self.index_2[0] + 1.0))
            object.__setattr__(self, "values", tuple((row[0], row[0]) for row in self.values))

    def lookup(self, slew: float, load: float) -> float:
        """Bilinear interpolation at ``(slew, load)``, extrapolating linearly past the edges."""
        i, t = interpolation_weight(self.index_1, slew)
        j, u = interpolation_weight(self.index_2, load)
        return self.lookup_at(i, t, j, u)

    def lookup_at(self, i: int, t: float, j: int, u: float) -> float:
        """Interpolate at weights already computed by :func:`interpolation_weight`; the timer
        reuses one pair of weights for the delay and transition tables of an arc."""
        row = self.values[i]
        low = row[j] + u * (row[j + 1] - row[j])
        row = self.values[i + 1]
        high = row[j] + u * (row[j + 1] - row[j])
        return low + t * (high - low)

    def scaled(self, slew_scale: float, load_scale: float, value_scale: float) -> Table:
        """Return a copy with both indices and the values multiplied (for unit conversion)."""
        return Table(
            index_1=tuple(x * slew_scale for x in self.index_1),
            index_2=tuple(x * load_scale for x in self.index_2),
            values=tuple(tuple(v * value_scale for v in row) for row in self.values),
        )


@dataclass
class TimingArc:
    """A ``timing()`` group of an output pin: the delay from ``related_pin`` to that pin.

    A table is ``None`` where the file gives none, as in a ``combinational_rise`` arc without
    fall tables. The timer then propagates no transition through that edge.
    """

    related_pin: str
    timing_sense: str = "non_unate"
    timing_type: str = "combinational"
    cell_rise: Table | None = None
    cell_fall: Table | None = None
    rise_transition: Table | None = None
    fall_transition: Table | None = None
    line: int = 0

    @property
    def is_combinational(self) -> bool:
        return self.timing_type in COMBINATIONAL_TIMING_TYPES


@dataclass
class Pin:
    """A cell pin: direction (``input``, ``output``, ``inout`` or ``internal``), capacitance in pF,
    Boolean ``function`` in Liberty syntax (outputs only) and the arcs that end at it."""

    name: str
    direction: str
    capacitance: float = 0.0
    function: str | None = None
    max_capacitance: float | None = None
    max_transition: float | None = None
    arcs: list[TimingArc] = field(default_factory=list)
    line: int = 0


@dataclass
class Cell:
    """A library cell: area, pins by name, and whether it is sequential (it has an ``ff``,
    ``latch`` or ``statetable`` group)."""

    name: str
    area: float = 0.0
    pins: dict[str, Pin] = field(default_factory=dict)
    is_sequential: bool = False
    dont_use: bool = False
    line: int = 0

    @property
    def input_pins(self) -> list[Pin]:
        return [pin for pin in self.pins.values() if pin.direction == "input"]

    @property
    def output_pins(self) -> list[Pin]:
        return [pin for pin in self.pins.values() if pin.direction == "output"]

    @property
    def drive_strength(self) -> float | None:
        return drive_strength(self.name)


_DRIVE_SUFFIX = re.compile(r"(?:_X|X|_)(\d+(?:P\d+)?)$", re.IGNORECASE)


def drive_strength(cell_name: str) -> float | None:
    """Parse the drive strength from a cell name suffix: ``INV_X4`` and ``NAND2X2`` give 4 and 2,
    sky130's ``sky130_fd_sc_hd__inv_8`` gives 8, and ``BUF_X0P5`` gives 0.5.

    Returns ``None`` when the name has no such suffix.
    """
    match = _DRIVE_SUFFIX.search(cell_name)
    if match is None:
        return None
    return float(match.group(1).upper().replace("P", "."))


@dataclass
class Library:
    """A parsed library: cells by name, lookup-table templates, units and library defaults.

    ``defaults`` contains every numeric ``default_*`` attribute (``default_max_transition`` in
    ns, capacitances in pF, other values as written). ``attributes`` keeps the other library-level
    simple attributes as raw strings.
    """

    name: str
    cells: dict[str, Cell] = field(default_factory=dict)
    time_unit_ns: float = 1.0
    capacitance_unit_pf: float = 1.0
    defaults: dict[str, float] = field(default_factory=dict)
    attributes: dict[str, str] = field(default_factory=dict)
    source: str = "<string>"
    derived: dict[str, object] = field(default_factory=dict, init=False, repr=False, compare=False)
    """Arrays that the timer and the graph features derive from the cells on first use, by name
    (see :meth:`derive`). They are not part of the Liberty file."""

    def derive(self, name: str, build: Callable[[Library], T]) -> T:
        """Return ``build(self)``, computed on the first call for ``name`` and kept afterwards.

        NOTE: nothing tracks edits, so a library changed after a first call keeps the old
        value. Build a new Library instead of editing one in place.
        """
        if name not in self.derived:
            self.derived[name] = build(self)
        return self.derived[name]  # type: ignore[return-value]

    @property
    def default_max_transition(self) -> float | None:
        return self.defaults.get("default_max_transition")

    def cell(self, name: str) -> Cell:
        """Return the cell called ``name``; raises ``KeyError`` naming the library if absent."""
        try:
            return self.cells[name]
        except KeyError:
            raise KeyError(f"cell {name!r} is not in library {self.name!r} ({self.source})") from None
