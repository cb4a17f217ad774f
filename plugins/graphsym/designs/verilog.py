"""Structural Verilog for gate lists: writing, port reading and the assign-only subset parser.

Generated modules contain one ``assign`` per gate, each with a single operator (``&``, ``|``,
``^``, ``~``) or a plain wire copy, so that a structure-preserving technology mapping keeps the
prefix topology. The reader handles Verilog-2001 port declarations in both the ANSI header
form and the body form, with ``[msb:0]`` ranges written as integers.
"""

from __future__ import annotations

import heapq
import logging
import re
from collections.abc import Iterable, Mapping

from adaptlab.plugins.graphsym.designs.base import DesignError, Gate, port_bits

__all__ = ["parse_assign_gates", "read_module_ports", "write_verilog"]

logger = logging.getLogger(__name__)

_OPERATOR = {"and": "&", "or": "|", "xor": "^"}
_SYMBOL_TO_OP = {symbol: op for op, symbol in _OPERATOR.items()}
_IDENTIFIER = r"[A-Za-z_][A-Za-z0-9_$]*"
_NET = rf"{_IDENTIFIER}(?:\s*\[\s*\d+\s*\])?"
_MODULE = re.compile(rf"\bmodule\s+({_IDENTIFIER})\b(.*?)\bendmodule\b", re.S)
_DECLARATION = re.compile(
    r"\b(input|output|inout)\b(.*?)(?=;|\binput\b|\boutput\b|\binout\b|\)\s*;)", re.S
)
_RANGE = re.compile(r"\[\s*([^\]:]+?)\s*:\s*([^\]]+?)\s*\]")
_ASSIGN = re.compile(
    rf"assign\s+(?P<lhs>{_NET})\s*=\s*"
    rf"(?:(?P<x>{_NET})\s*(?P<symbol>[&|^])\s*(?P<y>{_NET})"
    rf"|~\s*(?P<negated>{_NET})"
    rf"|(?P<copy>{_NET}))$",
    re.S,
)


def _expression(gate: Gate) -> str:
    if gate.op == "not":
        return f"~{gate.inputs[0]}"
    if gate.op == "buf":
        return gate.inputs[0]
    x, y = gate.inputs
    return f"{x} {_OPERATOR[gate.op]} {y}"


def _declaration(direction: str, name: str, width: int) -> str:
    if width == 1:
        return f"  {direction} {name};"
    return f"  {direction} [{width - 1}:0] {name};"


def write_verilog(
    top: str, inputs: Mapping[str, int], outputs: Mapping[str, int], gates: tuple[Gate, ...]
) -> str:
    """Return a Verilog-2001 module ``top`` with one ``assign`` per gate, in gate order."""
    if not top.isidentifier():
        raise DesignError(f"invalid module name {top!r}: use letters, digits and underscores")
    port_nets = {
        bit
        for ports in (inputs, outputs)
        for name, width in ports.items()
        for bit in port_bits(name, width)
    }
    wires = [gate.output for gate in gates if gate.output not in port_nets]

    lines = [f"module {top}({', '.join([*inputs, *outputs])});"]
    lines += [_declaration("input", name, width) for name, width in inputs.items()]
    lines += [_declaration("output", name, width) for name, width in outputs.items()]
    # Eight wire names per declaration keep lines readable for large adders.
    for start in range(0, len(wires), 8):
        lines.append(f"  wire {', '.join(wires[start:start + 8])};")
    lines += [f"  assign {gate.output} = {_expression(gate)};" for gate in gates]
    lines.append("endmodule")
    return "\n".join(lines) + "\n"


def _strip_comments(text: str) -> str:
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    return re.sub(r"//[^\n]*", "", text)


def _module_text(text: str, top: str) -> str:
    """Return the text of module ``top`` after its name, up to ``endmodule``."""
    names = []
    for match in _MODULE.finditer(_strip_comments(text)):
        if match.group(1) == top:
            return match.group(2)
        names.append(match.group(1))
    raise DesignError(f"module {top!r} not found; the file defines modules {names or 'none'}")


def _range_width(port: str, match: re.Match[str] | None) -> int:
    if match is None:
        return 1
    try:
        msb, lsb = int(match.group(1)), int(match.group(2))
    except ValueError:
        raise DesignError(
            f"port {port!r} has range {match.group(0)!r}; only integer ranges are supported, "
            "so substitute the parameter values"
        ) from None
    if lsb != 0 or msb < 0:
        raise DesignError(
            f"port {port!r} has range {match.group(0)!r}; only [msb:0] ranges are supported"
        )
    return msb + 1


def read_module_ports(text: str, top: str) -> tuple[dict[str, int], dict[str, int]]:
    """Return ``(inputs, outputs)`` of module ``top`` as port name to width, in declaration order.

    NOTE: a port declared ``[0:0]`` is read as a 1-bit port named without an index.
    """
    body = _module_text(text, top)
    ports: dict[str, dict[str, int]] = {"input": {}, "output": {}}
    for match in _DECLARATION.finditer(body):
        direction, rest = match.group(1), match.group(2)
        if direction == "inout":
            raise DesignError(
                f"module {top!r} has an inout port; only input and output ports are supported"
            )
        range_match = _RANGE.search(rest)
        names_text = _RANGE.sub(" ", rest)
        names_text = re.sub(r"\b(wire|reg|logic|signed|unsigned)\b", " ", names_text)
        names = [name.strip() for name in names_text.split(",") if name.strip()]
        for name in names:
            if not re.fullmatch(_IDENTIFIER, name):
                raise DesignError(
                    f"module {top!r}: cannot read port declaration {match.group(0).strip()!r}"
                )
            ports[direction][name] = _range_width(name, range_match)
    if not ports["input"] or not ports["output"]:
        raise DesignError(f"module {top!r} must declare at least one input and one output port")
    return ports["input"], ports["output"]


def _net_name(token: str) -> str:
    return re.sub(r"\s+", "", token)


def parse_assign_gates(
    text: str, top: str, inputs: Mapping[str, int], outputs: Mapping[str, int]
) -> tuple[Gate, ...]:
    """Read the gate list of a module written with declarations and single-operator assigns.

    Gates are returned in topological order. Raises :class:`DesignError` on any other statement
    (a cell instance, an ``always`` block, a multi-operator expression), on a net driven twice,
    on an undriven net and on a combinational loop.
    """
    body = _module_text(text, top)
    statements = [statement.strip() for statement in body.split(";")]
    gates: list[Gate] = []
    # The first statement is the port list of the module header.
    for statement in statements[1:]:
        if not statement or re.match(r"(input|output|wire)\b", statement) and "=" not in statement:
            continue
        match = _ASSIGN.fullmatch(statement)
        if match is None:
            raise DesignError(f"module {top!r}: unsupported statement {statement[:80]!r}")
        lhs = _net_name(match.group("lhs"))
        if match.group("symbol"):
            gate = Gate(
                lhs,
                _SYMBOL_TO_OP[match.group("symbol")],
                (_net_name(match.group("x")), _net_name(match.group("y"))),
            )
        elif match.group("negated"):
            gate = Gate(lhs, "not", (_net_name(match.group("negated")),))
        else:
            gate = Gate(lhs, "buf", (_net_name(match.group("copy")),))
        gates.append(gate)
    primary = [bit for name, width in inputs.items() for bit in port_bits(name, width)]
    ordered = _topological_order(top, gates, primary)
    undriven = [
        bit
        for name, width in outputs.items()
        for bit in port_bits(name, width)
        if bit not in {g.output for g in ordered}
    ]
    if undriven:
        raise DesignError(f"module {top!r}: output bits {undriven[:8]} are not driven by an assign")
    return ordered


def _topological_order(
    top: str, gates: list[Gate], primary_inputs: Iterable[str]
) -> tuple[Gate, ...]:
    primary = set(primary_inputs)
    drivers: dict[str, Gate] = {}
    for gate in gates:
        if gate.output in drivers or gate.output in primary:
            raise DesignError(f"module {top!r}: net {gate.output!r} is driven more than once")
        drivers[gate.output] = gate

    # Kahn's algorithm that always takes the ready gate earliest in the source, so a file that
    # is already in topological order keeps its order.
    readers: dict[str, list[int]] = {}
    waiting = []
    for index, gate in enumerate(gates):
        unresolved = {net for net in gate.inputs if net not in primary}
        waiting.append(len(unresolved))
        for net in unresolved:
            readers.setdefault(net, []).append(index)
    missing = sorted(net for net in readers if net not in drivers)
    if missing:
        raise DesignError(f"module {top!r}: nets {missing[:8]} are read but never driven")

    queue = [index for index, count in enumerate(waiting) if count == 0]
    heapq.heapify(queue)
    ordered: list[Gate] = []
    while queue:
        gate = gates[heapq.heappop(queue)]
        ordered.append(gate)
        for reader in readers.get(gate.output, []):
            waiting[reader] -= 1
            if waiting[reader] == 0:
                heapq.heappush(queue, reader)
    if len(ordered) < len(gates):
        looped = sorted(gate.output for index, gate in enumerate(gates) if waiting[index] > 0)
        raise DesignError(f"module {top!r}: combinational loop through nets {looped[:8]}")
    return tuple(ordered)
