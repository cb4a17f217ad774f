"""A Liberty library packed into numpy arrays for :mod:`.levelized`: NLDM tables and arc edges.

Built once per :class:`~adaptlab.plugins.graphsym.liberty.model.Library` object and kept in
``Library.derived``. Tables are padded to the largest index sizes of the library, and each
cell's timing arcs are unrolled into arc edges in the order in which the reference timer
(:func:`~.sta.analyze_timing`) evaluates them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from ..liberty.model import Library, Table

__all__ = ["FALL", "RISE", "LibraryArrays", "TableAxis"]

logger = logging.getLogger(__name__)

# Column of a (net, transition) pair in the levelized timer's (nets, 2) arrays.
RISE = 0
FALL = 1


class TableAxis:
    """One axis (slew or load) of every table: vectorized :func:`interpolation_weight`.

    Libraries usually index all tables on a few shared grids. With a single grid a lookup is
    one ``searchsorted``. Otherwise each table's index is padded with ``inf``, so counting the
    points at or below a value gives ``bisect_right``.
    """

    def __init__(self, indices: list[tuple[float, ...]]) -> None:
        grids = sorted(set(indices))
        self.single = np.array(grids[0]) if len(grids) == 1 else None
        width = max((len(index) for index in indices), default=2)
        self.padded = np.full((max(len(indices), 1), width), np.inf)
        self.last_segment = np.zeros(max(len(indices), 1), dtype=np.int64)
        for row, index in enumerate(indices):
            self.padded[row, :len(index)] = index
            self.last_segment[row] = len(index) - 2

    def locate(self, values: np.ndarray, tables: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Return segment ``i`` and weight ``t`` of each value on its table's index.

        The value is ``v[i] + t * (v[i + 1] - v[i])``, with ``t`` outside [0, 1] past either
        end, computed with the same operations as ``interpolation_weight``.
        """
        if self.single is not None:
            grid = self.single
            segment = np.searchsorted(grid, values, side="right") - 1
            np.minimum(segment, len(grid) - 2, out=segment)
            np.maximum(segment, 0, out=segment)
            low = grid[segment]
            return segment, (values - low) / (grid[segment + 1] - low)
        rows = self.padded[tables]
        segment = (rows <= values[:, None]).sum(axis=1) - 1
        np.minimum(segment, self.last_segment[tables], out=segment)
        np.maximum(segment, 0, out=segment)
        flat = rows.ravel()
        position = np.arange(len(values)) * rows.shape[1] + segment
        low = flat[position]
        return segment, (values - low) / (flat[position + 1] - low)


@dataclass
class CellArcs:
    """The arc edges of one cell, in the reference timer's evaluation order.

    ``index`` is the cell's position in ``Library.cells``, which is also its row in the
    ``LibraryArrays`` tables. Pins are numbered by their position in ``Cell.pins``. Each arc edge is one entry of the
    tuples: related input pin, output pin, input and output transition (``RISE`` or ``FALL``),
    and the delay and transition table numbers (-1 where a transition table is missing, so the
    input slew passes through).
    """

    index: int
    related: tuple[int, ...]
    output: tuple[int, ...]
    input_edge: tuple[int, ...]
    output_edge: tuple[int, ...]
    delay_table: tuple[int, ...]
    transition_table: tuple[int, ...]
    tie_outputs: frozenset[int]
    """Output pins without any combinational arc, which the timer treats as constant drivers."""


def _sources(sense: str, output_edge: int) -> tuple[int, ...]:
    """Input transitions that cause ``output_edge`` for a timing sense, in the reference's order."""
    if sense == "positive_unate":
        return (output_edge,)
    if sense == "negative_unate":
        return (FALL if output_edge == RISE else RISE,)
    return (RISE, FALL)


class LibraryArrays:
    """Every NLDM table of a library and every cell's pins and arc edges, as padded arrays.

    ``values`` has shape ``(tables, slew points, load points)``. Per cell row (``CellArcs.index``)
    and pin position: ``pin_capacitance`` (pF), ``pin_is_input`` and ``pin_is_tie``. Per cell
    row and arc edge: the ``arc_*`` arrays, valid where ``arc_valid``.
    """

    def __init__(self, library: Library) -> None:
        tables: list[Table] = []
        numbers: dict[int, int] = {}

        def number(table: Table | None) -> int:
            if table is None:
                return -1
            if id(table) not in numbers:
                numbers[id(table)] = len(tables)
                tables.append(table)
            return numbers[id(table)]

        self.cells: dict[str, CellArcs] = {}
        for cell in library.cells.values():
            positions = {name: position for position, name in enumerate(cell.pins)}
            inputs = {pin.name for pin in cell.input_pins}
            rows: list[tuple[int, int, int, int, int, int]] = []
            ties = set()
            for pin in cell.output_pins:
                arcs = [arc for arc in pin.arcs if arc.is_combinational]
                if not arcs:
                    ties.add(positions[pin.name])
                for arc in arcs:
                    if arc.related_pin not in inputs:
                        continue  # the reference finds no input net for it and skips the arc
                    related, output = positions[arc.related_pin], positions[pin.name]
                    if arc.timing_type != "combinational_fall" and arc.cell_rise is not None:
                        for source in _sources(arc.timing_sense, RISE):
                            rows.append((related, output, source, RISE, number(arc.cell_rise),
                                         number(arc.rise_transition)))
                    if arc.timing_type != "combinational_rise" and arc.cell_fall is not None:
                        for source in _sources(arc.timing_sense, FALL):
                            rows.append((related, output, source, FALL, number(arc.cell_fall),
                                         number(arc.fall_transition)))
            columns = tuple(zip(*rows)) if rows else ((),) * 6
            self.cells[cell.name] = CellArcs(len(self.cells), *columns, frozenset(ties))

        self.slew_axis = TableAxis([table.index_1 for table in tables])
        self.load_axis = TableAxis([table.index_2 for table in tables])
        width_1 = self.slew_axis.padded.shape[1]
        width_2 = self.load_axis.padded.shape[1]
        self.values = np.zeros((max(len(tables), 1), width_1, width_2))
        for row, table in enumerate(tables):
            self.values[row, :len(table.index_1), :len(table.index_2)] = table.values

        cells = [library.cells[name] for name in self.cells]
        arcs = list(self.cells.values())
        self.max_pins = max((len(cell.pins) for cell in cells), default=1)
        self.cell_area = np.array([cell.area for cell in cells], dtype=np.float64)
        self.pin_capacitance = np.zeros((len(cells), self.max_pins))
        self.pin_is_input = np.zeros((len(cells), self.max_pins), dtype=bool)
        self.pin_is_tie = np.zeros((len(cells), self.max_pins), dtype=bool)
        for row, (cell, cell_arcs) in enumerate(zip(cells, arcs)):
            for position, pin in enumerate(cell.pins.values()):
                self.pin_capacitance[row, position] = pin.capacitance
                self.pin_is_input[row, position] = pin.direction == "input"
            self.pin_is_tie[row, list(cell_arcs.tie_outputs)] = True

        shape = (len(cells), max((len(cell_arcs.related) for cell_arcs in arcs), default=1) or 1)
        self.arc_valid = np.zeros(shape, dtype=bool)
        self.arc_related = np.zeros(shape, dtype=np.int64)
        self.arc_output = np.zeros(shape, dtype=np.int64)
        self.arc_input_edge = np.zeros(shape, dtype=np.int64)
        self.arc_output_edge = np.zeros(shape, dtype=np.int64)
        self.arc_delay_table = np.zeros(shape, dtype=np.int64)
        self.arc_transition_table = np.zeros(shape, dtype=np.int64)
        for row, cell_arcs in enumerate(arcs):
            count = len(cell_arcs.related)
            self.arc_valid[row, :count] = True
            self.arc_related[row, :count] = cell_arcs.related
            self.arc_output[row, :count] = cell_arcs.output
            self.arc_input_edge[row, :count] = cell_arcs.input_edge
            self.arc_output_edge[row, :count] = cell_arcs.output_edge
            self.arc_delay_table[row, :count] = cell_arcs.delay_table
            self.arc_transition_table[row, :count] = cell_arcs.transition_table
        logger.debug("packed library %s: %d cells, %d tables", library.name, len(cells), len(tables))
