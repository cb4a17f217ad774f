"""Equivalence proofs for netlist pairs: structural hashing first, a SAT proof for the rest.

ABC's ``buffer``, ``upsize`` and ``dnsize`` insert buffers and swap cells for others of the
same function, and leave the logic structure of the pre netlist alone. Both netlists of a pair
are therefore reduced to one canonical structure. Every cell output becomes a node keyed by the
truth table of its Liberty ``function`` and its input nodes, with the inputs of interchangeable
pins sorted. Buffers and double inversions are removed and constant cells become constants.
Nodes are hash-consed over both netlists, so two outputs get the same node only when their
cones have the same canonical structure, and equal structure computes equal Boolean functions.
A pair whose outputs all match is proved equivalent without a solver.

Every other pair gets the SAT proof of :func:`.flow.check_equivalence` (Yosys ``miter -equiv``
and ``sat -prove-asserts``), all in one Yosys run. Structural hashing never declares a pair
different: a mismatch only means that the solver decides.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

from ..liberty.function import FunctionSyntaxError, compile_function
from ..liberty.model import Library
from ..netlist.model import CONSTANT_NETS, Netlist
from ..netlist.verilog import write_verilog
from .backend import Backend, SynthesisError, log_tail
from .flow import LIBERTY_NAME, NotEquivalentError

__all__ = ["EquivalenceResult", "prove_equivalent", "structurally_equivalent"]

logger = logging.getLogger(__name__)

# Truth tables are enumerated up to this many inputs; wider cells leave the pair to SAT.
_MAX_INPUTS = 6


@dataclass(frozen=True)
class _OutputFunction:
    """The function of one cell output pin: input pins in truth-table order, the table as a
    bit mask (bit ``k`` is the output for the input assignment whose bit ``i`` drives pin
    ``i``), and groups of interchangeable pin positions."""

    pins: tuple[str, ...]
    table: int
    groups: tuple[tuple[int, ...], ...]


def _output_function(function: str, pins: list[str]) -> _OutputFunction | None:
    try:
        evaluate, names = compile_function(function)
    except FunctionSyntaxError:
        return None
    if len(pins) > _MAX_INPUTS or not set(names) <= set(pins):
        return None
    count = len(pins)
    table = 0
    for row in range(1 << count):
        if evaluate({pin: bool(row >> i & 1) for i, pin in enumerate(pins)}):
            table |= 1 << row

    def swapped(i: int, j: int) -> int:
        result = 0
        for row in range(1 << count):
            bit_i, bit_j = row >> i & 1, row >> j & 1
            other = row & ~(1 << i) & ~(1 << j) | bit_i << j | bit_j << i
            result |= (table >> other & 1) << row
        return result

    # Swapping two pins that leave the table unchanged is an equivalence relation on pins.
    groups: list[list[int]] = []
    for position in range(count):
        for group in groups:
            if swapped(group[0], position) == table:
                group.append(position)
                break
        else:
            groups.append([position])
    return _OutputFunction(tuple(pins), table, tuple(tuple(group) for group in groups))


def _library_functions(library: Library) -> dict[tuple[str, str], _OutputFunction | None]:
    functions: dict[tuple[str, str], _OutputFunction | None] = {}
    for cell in library.cells.values():
        inputs = [pin.name for pin in cell.input_pins]
        for pin in cell.output_pins:
            functions[cell.name, pin.name] = (
                _output_function(pin.function, inputs) if pin.function else None)
    return functions


class _Structure:
    """Hash-consed canonical nodes shared by the netlists of one comparison."""

    def __init__(self, functions: dict[tuple[str, str], _OutputFunction | None]) -> None:
        self.functions = functions
        self.nodes: dict[tuple, int] = {}
        self.inverse: dict[int, int] = {}  # node -> its input, for inverter nodes

    def node(self, key: tuple) -> int:
        number = self.nodes.get(key)
        if number is None:
            number = self.nodes[key] = len(self.nodes)
        return number

    def output_nodes(self, netlist: Netlist) -> list[int] | None:
        """Return the node of each output port, or None when a cell cannot be reduced."""
        drivers: dict[str, tuple[int, str]] = {}
        for index, instance in enumerate(netlist.instances):
            for pin, net in instance.pins.items():
                if (instance.cell, pin) in self.functions:
                    drivers[netlist.resolve(net)] = (index, pin)
        inputs = {netlist.resolve(port): port for port in netlist.inputs}
        values: dict[str, int] = {}
        for output in netlist.outputs:
            stack = [netlist.resolve(output)]
            while stack:
                net = stack[-1]
                if net in values:
                    stack.pop()
                    continue
                if net in inputs:
                    values[net] = self.node(("input", inputs[net]))
                elif net in CONSTANT_NETS:
                    values[net] = self.node(("constant", CONSTANT_NETS[net]))
                elif net not in drivers:
                    return None  # undriven: let the solver report it
                else:
                    instance = netlist.instances[drivers[net][0]]
                    function = self.functions[instance.cell, drivers[net][1]]
                    if function is None:
                        return None
                    children = [netlist.resolve(instance.pins[pin]) for pin in function.pins
                                if pin in instance.pins]
                    if len(children) != len(function.pins):
                        return None
                    pending = [child for child in children if child not in values]
                    if pending:
                        # Without a loop the stack contains at most the pending inputs of each
                        # instance on the current path.
                        if len(stack) > (_MAX_INPUTS + 1) * (len(netlist.instances) + 1):
                            return None  # a loop: let the solver report it
                        stack.extend(pending)
                        continue
                    values[net] = self._cell_node(function, [values[child] for child in children])
                stack.pop()
        return [values[netlist.resolve(output)] for output in netlist.outputs]

    def _cell_node(self, function: _OutputFunction, children: list[int]) -> int:
        count = len(children)
        table = function.table
        if table == 0 or table == (1 << (1 << count)) - 1:
            return self.node(("constant", int(table != 0)))
        if count == 1 and table == 0b10:
            return children[0]  # a buffer
        if count == 1 and table == 0b01:
            if children[0] in self.inverse:
                return self.inverse[children[0]]  # a double inversion
            node = self.node(("not", children[0]))
            self.inverse[node] = children[0]
            return node
        ordered: list[int] = [0] * count
        for group in function.groups:
            for position, child in zip(group, sorted(children[position] for position in group)):
                ordered[position] = child
        return self.node(("cell", count, table, tuple(ordered)))


def structurally_equivalent(gold: Netlist, gate: Netlist, library: Library) -> bool:
    """Return True when every output port of ``gate`` has the canonical structure of the same
    port of ``gold``, which proves the two equivalent; False means undecided, not different.

    Ports are matched by name. Cells must be in ``library``, with a parseable ``function`` of
    at most six inputs on every output pin that is used.
    """
    if sorted(gold.inputs) != sorted(gate.inputs) or sorted(gold.outputs) != sorted(gate.outputs):
        return False
    structure = _Structure(library.derive("structural_functions", _library_functions))
    gold_nodes = structure.output_nodes(gold)
    gate_nodes = structure.output_nodes(gate)
    if gold_nodes is None or gate_nodes is None:
        return False
    gate_by_port = dict(zip(gate.outputs, gate_nodes))
    return all(gate_by_port[port] == node for port, node in zip(gold.outputs, gold_nodes))


@dataclass(frozen=True)
class EquivalenceResult:
    """Indices of the pairs proved by structural hashing and of those proved by the SAT solver."""

    structural: tuple[int, ...]
    solver: tuple[int, ...]


def prove_equivalent(pairs: list[tuple[Netlist, Netlist]], library: Library, liberty_path: str | Path,
                     workdir: str | Path, backend: Backend, *, structural: bool = True) -> EquivalenceResult:
    """Prove each ``(gold, gate)`` pair equivalent: structural hashing first, then one Yosys
    run with a SAT proof per remaining pair.

    ``library`` is the parsed ``liberty_path``. ``structural=False`` sends every pair to the
    solver. Raises :class:`NotEquivalentError` when a
    solver finds a differing input, and SynthesisError when Yosys fails or proves fewer pairs
    than it was given.
    """
    by_structure = tuple(index for index, (gold, gate) in enumerate(pairs)
                         if structural and structurally_equivalent(gold, gate, library))
    solver = tuple(index for index in range(len(pairs)) if index not in set(by_structure))
    logger.debug("equivalence: %d pairs by structure, %d by SAT", len(by_structure), len(solver))
    if not solver:
        return EquivalenceResult(by_structure, solver)

    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    if not (workdir / LIBERTY_NAME).exists():
        shutil.copyfile(liberty_path, workdir / LIBERTY_NAME)
    lines = [f"read_liberty -ignore_miss_func {LIBERTY_NAME}", "design -save graphsym_library"]
    for index in solver:
        gold, gate = pairs[index]
        if sorted(gold.inputs) != sorted(gate.inputs) or sorted(gold.outputs) != sorted(gate.outputs):
            raise NotEquivalentError(
                f"netlists {gold.name!r} and {gate.name!r} have different ports: inputs "
                f"{sorted(set(gold.inputs) ^ set(gate.inputs))}, outputs "
                f"{sorted(set(gold.outputs) ^ set(gate.outputs))} differ")
        (workdir / f"equiv_gold{index}.v").write_text(write_verilog(gold, "graphsym_gold"))
        (workdir / f"equiv_gate{index}.v").write_text(write_verilog(gate, "graphsym_gate"))
        lines += [
            "design -load graphsym_library",
            f"read_verilog equiv_gold{index}.v",
            f"read_verilog equiv_gate{index}.v",
            "miter -equiv -flatten -make_assert graphsym_gold graphsym_gate graphsym_miter",
            "hierarchy -top graphsym_miter",
            "sat -verify -prove-asserts graphsym_miter",
        ]
    log = workdir / "equiv.log"
    try:
        backend.run_script("\n".join(lines) + "\n", workdir, "equiv")
    except SynthesisError:
        text = log.read_text(errors="replace") if log.exists() else ""
        if "model found" in text and "FAIL" in text:
            names = ", ".join(f"{pairs[index][1].name!r}" for index in solver)
            raise NotEquivalentError(
                f"a netlist among {names} is not equivalent to its pair: SAT found a differing "
                f"input (counterexample in {log})") from None
        raise
    proofs = log.read_text(errors="replace").count("no model found: SUCCESS!")
    if proofs != len(solver):
        raise SynthesisError(f"equivalence check proved {proofs} of {len(solver)} netlist pairs; "
                             f"see {log}: {log_tail(log)}")
    return EquivalenceResult(by_structure, solver)

