"""Library cells as Yosys reads them, and the techmap file that maps Yosys gates onto them 1:1.

Yosys ``read_liberty`` turns each cell's ``function`` attribute into a small module of internal
gates (``$_AND_``, ``$_NOT_``, ...). This module simulates those gates to get each cell's truth
table, so the cell functions come from Yosys's own Liberty reader.

The techmap file replaces each Yosys gate type with the smallest-area library cell of the same
function. A gate type the library lacks is rewritten into other gate types first (for example
XNOR as XOR followed by NOT). Unlike ``abc -liberty``, which turns the logic into an AIG and
re-covers it, this keeps exactly one library cell per gate of the input, so a prefix adder keeps
its topology.
"""

from __future__ import annotations

import itertools
import json
import logging
from dataclasses import dataclass
from pathlib import Path

from ..netlist.model import NetlistError
from .backend import Backend, SynthesisError

__all__ = ["GATE_FUNCTIONS", "LibraryCell", "gate_techmap", "read_library_cells"]

logger = logging.getLogger(__name__)

# Yosys fine-grained gate types: (input pins, truth table). Bit i of a truth table is the output
# when input pin k carries bit k of i (pin order as listed).
GATE_FUNCTIONS: dict[str, tuple[tuple[str, ...], int]] = {
    "$_BUF_": (("A",), 0b10),
    "$_NOT_": (("A",), 0b01),
    "$_AND_": (("A", "B"), 0b1000),
    "$_OR_": (("A", "B"), 0b1110),
    "$_XOR_": (("A", "B"), 0b0110),
    "$_NAND_": (("A", "B"), 0b0111),
    "$_NOR_": (("A", "B"), 0b0001),
    "$_XNOR_": (("A", "B"), 0b1001),
    "$_ANDNOT_": (("A", "B"), 0b0010),
    "$_ORNOT_": (("A", "B"), 0b1011),
    "$_MUX_": (("A", "B", "S"), 0b11001010),
}

# Rewrites of a gate type into other gate types, tried in order when the library has no cell
# for it. Each entry lists (gate type, {pin: net}) with inputs A, B, S, output Y, wires t0, t1, ...
_REWRITES: dict[str, list[list[tuple[str, dict[str, str]]]]] = {
    "$_BUF_": [[("$_NOT_", {"A": "A", "Y": "t0"}), ("$_NOT_", {"A": "t0", "Y": "Y"})]],
    "$_NOT_": [[("$_NAND_", {"A": "A", "B": "A", "Y": "Y"})], [("$_NOR_", {"A": "A", "B": "A", "Y": "Y"})]],
    "$_AND_": [[("$_NAND_", {"A": "A", "B": "B", "Y": "t0"}), ("$_NOT_", {"A": "t0", "Y": "Y"})]],
    "$_OR_": [[("$_NOR_", {"A": "A", "B": "B", "Y": "t0"}), ("$_NOT_", {"A": "t0", "Y": "Y"})]],
    "$_NAND_": [[("$_AND_", {"A": "A", "B": "B", "Y": "t0"}), ("$_NOT_", {"A": "t0", "Y": "Y"})]],
    "$_NOR_": [[("$_OR_", {"A": "A", "B": "B", "Y": "t0"}), ("$_NOT_", {"A": "t0", "Y": "Y"})]],
    "$_XNOR_": [[("$_XOR_", {"A": "A", "B": "B", "Y": "t0"}), ("$_NOT_", {"A": "t0", "Y": "Y"})]],
    "$_XOR_": [
        [("$_XNOR_", {"A": "A", "B": "B", "Y": "t0"}), ("$_NOT_", {"A": "t0", "Y": "Y"})],
        [
            ("$_NAND_", {"A": "A", "B": "B", "Y": "t0"}),
            ("$_NAND_", {"A": "A", "B": "t0", "Y": "t1"}),
            ("$_NAND_", {"A": "B", "B": "t0", "Y": "t2"}),
            ("$_NAND_", {"A": "t1", "B": "t2", "Y": "Y"}),
        ],
    ],
    "$_ANDNOT_": [[("$_NOT_", {"A": "B", "Y": "t0"}), ("$_AND_", {"A": "A", "B": "t0", "Y": "Y"})]],
    "$_ORNOT_": [[("$_NOT_", {"A": "B", "Y": "t0"}), ("$_OR_", {"A": "A", "B": "t0", "Y": "Y"})]],
    "$_MUX_": [
        [
            ("$_NOT_", {"A": "S", "Y": "t0"}),
            ("$_AND_", {"A": "A", "B": "t0", "Y": "t1"}),
            ("$_AND_", {"A": "B", "B": "S", "Y": "t2"}),
            ("$_OR_", {"A": "t1", "B": "t2", "Y": "Y"}),
        ]
    ],
}

_MAX_SIMULATED_INPUTS = 6


@dataclass(frozen=True)
class LibraryCell:
    """A combinational library cell: pins, area and truth table (None if it has several outputs
    or a function this module cannot simulate)."""

    name: str
    area: float
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    truth_table: int | None


def _evaluate(module: dict, inputs: list[int], assignment: int) -> dict[int, int]:
    """Simulate the internal gates of one ``read_liberty`` module for one input assignment."""
    values: dict[object, int] = {"0": 0, "1": 1}
    for k, bit in enumerate(inputs):
        values[bit] = (assignment >> k) & 1
    pending = list(module.get("cells", {}).values())
    while pending:
        progress = []
        for cell in pending:
            kind = cell["type"]
            if kind not in GATE_FUNCTIONS:
                raise KeyError(kind)
            pins, table = GATE_FUNCTIONS[kind]
            fanin = [cell["connections"][pin][0] for pin in pins]
            if all(bit in values for bit in fanin):
                index = sum(values[bit] << k for k, bit in enumerate(fanin))
                values[cell["connections"]["Y"][0]] = (table >> index) & 1
                progress.append(cell)
        if not progress:
            raise KeyError("loop or undriven net")
        pending = [cell for cell in pending if cell not in progress]
    return values  # type: ignore[return-value]


def read_library_cells(liberty: Path, workdir: Path, backend: Backend) -> dict[str, LibraryCell]:
    """Read every cell of a Liberty file through Yosys ``read_liberty`` and return them by name."""
    script = f"read_liberty -ignore_miss_func {liberty.name}\nwrite_json library_cells.json\n"
    backend.run_script(script, workdir, "library_cells")
    document = json.loads((workdir / "library_cells.json").read_text())
    cells: dict[str, LibraryCell] = {}
    for name, module in document.get("modules", {}).items():
        ports = module.get("ports", {})
        inputs = tuple(pin for pin, port in ports.items() if port["direction"] == "input")
        outputs = tuple(pin for pin, port in ports.items() if port["direction"] == "output")
        area = float(module.get("attributes", {}).get("area", 0.0))
        table: int | None = None
        if len(outputs) == 1 and len(inputs) <= _MAX_SIMULATED_INPUTS:
            input_bits = [ports[pin]["bits"][0] for pin in inputs]
            output_bit = ports[outputs[0]]["bits"][0]
            try:
                table = 0
                for assignment in range(1 << len(inputs)):
                    values = _evaluate(module, input_bits, assignment)
                    table |= values[output_bit] << assignment
            except KeyError as error:
                logger.debug("cell %s: function not simulated (%s)", name, error)
                table = None
        cells[name] = LibraryCell(name=name, area=area, inputs=inputs, outputs=outputs, truth_table=table)
    if not cells:
        raise SynthesisError(f"Liberty file {liberty.name}: Yosys read no cells; check the file")
    return cells


def _permuted_table(table: int, order: tuple[int, ...]) -> int:
    """Return the truth table seen when gate input k drives cell input ``order[k]``."""
    result = 0
    width = len(order)
    for index in range(1 << width):
        cell_index = sum(((index >> k) & 1) << order[k] for k in range(width))
        result |= ((table >> cell_index) & 1) << index
    return result


def match_cell(cells: dict[str, LibraryCell], gate: str) -> tuple[LibraryCell, dict[str, str]] | None:
    """Return the smallest-area cell computing Yosys gate ``gate`` and its gate-pin to cell-pin map."""
    pins, table = GATE_FUNCTIONS[gate]
    best: tuple[LibraryCell, dict[str, str]] | None = None
    for cell in sorted(cells.values(), key=lambda c: (c.area, c.name)):
        if cell.truth_table is None or len(cell.inputs) != len(pins):
            continue
        for order in itertools.permutations(range(len(pins))):
            if _permuted_table(cell.truth_table, order) == table:
                mapping = {pin: cell.inputs[order[k]] for k, pin in enumerate(pins)}
                mapping["Y"] = cell.outputs[0]
                best = (cell, mapping)
                break
        if best is not None:
            return best
    return None


def _escape(name: str) -> str:
    return name if name.replace("_", "a").isalnum() and not name[0].isdigit() else f"\\{name} "


def gate_techmap(cells: dict[str, LibraryCell]) -> tuple[str, dict[str, str]]:
    """Return the techmap Verilog text and, per gate type, the cell or rewrite it maps to.

    Gate types with neither a cell nor a usable rewrite are left out. A design that uses one
    keeps that gate after techmap, and the flow reports it as an error.
    """
    plan: dict[str, object] = {}
    for gate in GATE_FUNCTIONS:
        match = match_cell(cells, gate)
        if match is not None:
            plan[gate] = match
    changed = True
    while changed:
        changed = False
        for gate, rewrites in _REWRITES.items():
            if gate in plan:
                continue
            for rewrite in rewrites:
                if all(part in plan for part, _ in rewrite):
                    plan[gate] = rewrite
                    changed = True
                    break
    modules = []
    summary: dict[str, str] = {}
    for gate, choice in plan.items():
        pins, _ = GATE_FUNCTIONS[gate]
        header = f"module {_escape(gate)} (" + ", ".join(f"input {pin}" for pin in pins) + ", output Y);"
        body: list[str] = []
        if isinstance(choice, tuple):
            cell, mapping = choice
            connections = ", ".join(f".{mapping[pin]}({pin})" for pin in (*pins, "Y"))
            body.append(f"  {_escape(cell.name)} _TECHMAP_REPLACE_ ({connections});")
            summary[gate] = cell.name
        else:
            wires = sorted({net for _, conn in choice for net in conn.values() if net.startswith("t")})
            if wires:
                body.append("  wire " + ", ".join(wires) + ";")
            for k, (part, conn) in enumerate(choice):
                connections = ", ".join(f".{pin}({net})" for pin, net in conn.items())
                body.append(f"  {_escape(part)} {_escape(f'_TECHMAP_REPLACE_.g{k}')} ({connections});")
            summary[gate] = " + ".join(part for part, _ in choice)
        modules.append("\n".join([header, *body, "endmodule"]))
    logger.debug("gate mapping: %s", summary)
    return "\n\n".join(modules) + "\n", summary


def cell_area(cells: dict[str, LibraryCell], counts: dict[str, int]) -> float:
    """Return the total area of a cell count table; raises NetlistError for an unknown cell."""
    total = 0.0
    for name, count in counts.items():
        if name not in cells:
            raise NetlistError(f"cell {name!r} is not in the library")
        total += cells[name].area * count
    return total
