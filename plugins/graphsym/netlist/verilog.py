"""Read and write structural gate-level Verilog, the subset that Yosys ``write_verilog -noattr`` and
ABC ``write_verilog`` produce (checked against Yosys 0.70 and the ABC inside it).

It reads non-ANSI and ANSI port lists and ``input``/``output``/``wire`` declarations with ranges.
Cell instances take named pin connections (``.A(n1)``) and an optional ``#(...)`` parameter list.
``assign`` and pins accept nets, bit-selects, part-selects, concatenations and sized constants.
An escaped identifier such as ``\\a[0] `` is the scalar net ``a[0]``. Comments and ``(* ... *)``
attributes are skipped.
Behavioural code (``always``, operators) is rejected with a :class:`NetlistError`.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

from .model import CONSTANT_NETS, Instance, Netlist, NetlistError

__all__ = ["parse_verilog", "read_verilog", "write_verilog"]

logger = logging.getLogger(__name__)

_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<comment>//[^\n]*|/\*.*?\*/|\(\*.*?\*\))
  | (?P<escaped>\\\S+)
  | (?P<number>\d*\s*'[sS]?[bBoOdDhH]\s*[0-9a-fA-FxXzZ_?]+|\d+)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_$]*)
  | (?P<punct>[()\[\]{},;.:=#])
  | (?P<other>\S)
    """,
    re.VERBOSE | re.DOTALL,
)
_DIRECTIONS = ("input", "output", "inout")
_CONSTANT_BIT = {"0": "$const0", "1": "$const1"}


@dataclass
class _Token:
    kind: str
    text: str
    line: int


def _tokenize(text: str, source: str) -> list[_Token]:
    tokens: list[_Token] = []
    line = 1
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            raise NetlistError(f"{source}:{line}: unexpected character {text[position]!r}")
        kind = match.lastgroup or ""
        value = match.group()
        if kind == "escaped":
            tokens.append(_Token("ident", value[1:], line))
        elif kind not in ("space", "comment"):
            tokens.append(_Token(kind, value, line))
        line += value.count("\n")
        position = match.end()
    return tokens


def _constant_bits(literal: str, source: str, line: int) -> list[str]:
    """Return the bits of a Verilog number, MSB first, as constant net names."""
    literal = literal.replace(" ", "").replace("_", "")
    if "'" not in literal:
        return [_CONSTANT_BIT[bit] for bit in format(int(literal), "032b")]
    width_text, rest = literal.split("'", 1)
    rest = rest.lstrip("sS")
    base, digits = rest[0].lower(), rest[1:]
    if any(ch in "xXzZ?" for ch in digits):
        raise NetlistError(f"{source}:{line}: constant {literal!r} has x/z bits; the netlist must be fully defined")
    value = int(digits, {"b": 2, "o": 8, "d": 10, "h": 16}[base])
    width = int(width_text) if width_text else max(value.bit_length(), 1)
    return [_CONSTANT_BIT[bit] for bit in format(value, f"0{width}b")[-width:]]


class _Parser:
    def __init__(self, tokens: list[_Token], source: str) -> None:
        self.tokens = tokens
        self.source = source
        self.index = 0

    # -- token helpers
    def peek(self, offset: int = 0) -> _Token | None:
        position = self.index + offset
        return self.tokens[position] if position < len(self.tokens) else None

    def error(self, message: str, token: _Token | None = None) -> NetlistError:
        token = token or self.peek() or (self.tokens[-1] if self.tokens else _Token("", "", 1))
        return NetlistError(f"{self.source}:{token.line}: {message}")

    def next(self) -> _Token:
        token = self.peek()
        if token is None:
            raise self.error("unexpected end of file")
        self.index += 1
        return token

    def expect(self, text: str) -> _Token:
        token = self.next()
        if token.text != text:
            raise self.error(f"expected {text!r}, found {token.text!r}", token)
        return token

    def accept(self, text: str) -> bool:
        token = self.peek()
        if token is not None and token.text == text:
            self.index += 1
            return True
        return False

    def identifier(self) -> str:
        token = self.next()
        if token.kind != "ident":
            raise self.error(f"expected an identifier, found {token.text!r}", token)
        return token.text

    def integer(self) -> int:
        token = self.next()
        if token.kind != "number" or not token.text.isdigit():
            raise self.error(f"expected an integer, found {token.text!r}", token)
        return int(token.text)

    # -- module structure
    def modules(self) -> list[Netlist]:
        result = []
        while self.peek() is not None:
            token = self.next()
            if token.text != "module":
                raise self.error(f"expected 'module', found {token.text!r}", token)
            result.append(self.module())
        return result

    def module(self) -> Netlist:
        self.ranges: dict[str, tuple[int, int]] = {}
        self.port_order: list[str] = []
        self.directions: dict[str, str] = {}
        netlist = Netlist(name=self.identifier())
        if self.accept("#"):
            self.skip_balanced()
        if self.accept("("):
            self.port_list()
        self.expect(";")
        while True:
            token = self.peek()
            if token is None:
                raise self.error(f"module {netlist.name!r} has no 'endmodule'")
            if token.text == "endmodule":
                self.next()
                break
            if token.text in _DIRECTIONS:
                self.next()
                self.declaration(token.text)
            elif token.text in ("wire", "tri", "supply0", "supply1"):
                self.next()
                self.declaration(None)
            elif token.text == "assign":
                self.next()
                self.assignment(netlist)
            elif token.kind == "ident" and token.text not in ("always", "initial", "reg", "function", "generate"):
                self.instance(netlist)
            else:
                raise self.error(f"unsupported statement {token.text!r}: only a structural netlist can be read", token)
        for port in self.port_order:
            if port not in self.directions:
                raise self.error(f"port {port!r} of module {netlist.name!r} has no direction")
            bits = list(reversed(self.bits_of(port)))
            if self.directions[port] == "output":
                netlist.outputs.extend(bits)
            else:
                netlist.inputs.extend(bits)
        return netlist

    def skip_balanced(self) -> None:
        self.expect("(")
        depth = 1
        while depth:
            token = self.next()
            depth += {"(": 1, ")": -1}.get(token.text, 0)

    def port_list(self) -> None:
        if self.accept(")"):
            return
        direction: str | None = None
        bounds: tuple[int, int] | None = None
        while True:
            token = self.peek()
            if token is not None and token.text in _DIRECTIONS:
                direction = self.next().text
                bounds = None
                self.accept("wire")
                if self.peek() is not None and self.peek().text == "[":
                    bounds = self.range()
            name = self.identifier()
            self.port_order.append(name)
            if direction is not None:
                self.directions[name] = direction
                if bounds is not None:
                    self.ranges[name] = bounds
            if self.accept(")"):
                return
            self.expect(",")

    def range(self) -> tuple[int, int]:
        self.expect("[")
        left = self.integer()
        self.expect(":")
        right = self.integer()
        self.expect("]")
        return left, right

    def declaration(self, direction: str | None) -> None:
        self.accept("wire")
        bounds = self.range() if self.peek() is not None and self.peek().text == "[" else None
        while True:
            name = self.identifier()
            if bounds is not None:
                self.ranges[name] = bounds
            if direction is not None:
                self.directions[name] = direction
                if name not in self.port_order:
                    raise self.error(f"{direction} {name!r} is not in the module port list")
            if self.accept(";"):
                return
            self.expect(",")

    # -- expressions: lists of bit nets, MSB first
    def bits_of(self, name: str) -> list[str]:
        if name not in self.ranges:
            return [name]
        left, right = self.ranges[name]
        step = -1 if left >= right else 1
        return [f"{name}[{index}]" for index in range(left, right + step, step)]

    def expression(self) -> list[str]:
        token = self.next()
        if token.kind == "number":
            return _constant_bits(token.text, self.source, token.line)
        if token.text == "{":
            return self.concatenation()
        if token.kind != "ident":
            raise self.error(f"expected a net, constant or concatenation, found {token.text!r}", token)
        name = token.text
        if not self.accept("["):
            return self.bits_of(name)
        left = self.integer()
        if self.accept(":"):
            right = self.integer()
            self.expect("]")
            step = -1 if left >= right else 1
            return [f"{name}[{index}]" for index in range(left, right + step, step)]
        self.expect("]")
        return [f"{name}[{left}]"]

    def concatenation(self) -> list[str]:
        token = self.peek()
        if token is not None and token.kind == "number" and self.peek(1) is not None and self.peek(1).text == "{":
            count = self.integer()
            self.expect("{")
            inner = self.concatenation()
            self.expect("}")
            return inner * count
        bits: list[str] = []
        while True:
            bits.extend(self.expression())
            if self.accept("}"):
                return bits
            self.expect(",")

    # -- statements
    def assignment(self, netlist: Netlist) -> None:
        while True:
            token = self.peek()
            target = self.expression()
            self.expect("=")
            value = self.expression()
            if len(value) < len(target) and all(bit in CONSTANT_NETS for bit in value):
                value = ["$const0"] * (len(target) - len(value)) + value
            if len(value) != len(target):
                raise self.error(f"assign: {len(target)} target bits but {len(value)} value bits", token)
            for lhs, rhs in zip(target, value):
                if lhs in CONSTANT_NETS:
                    raise self.error("assign: the target is a constant", token)
                if lhs in netlist.aliases:
                    raise self.error(f"net {lhs!r} is assigned twice", token)
                netlist.aliases[lhs] = rhs
            if self.accept(";"):
                return
            self.expect(",")

    def instance(self, netlist: Netlist) -> None:
        cell_token = self.next()
        if self.accept("#"):
            self.skip_balanced()
        name = self.identifier()
        self.expect("(")
        pins: dict[str, str] = {}
        if not self.accept(")"):
            while True:
                if not self.accept("."):
                    raise self.error(
                        f"instance {name!r} of {cell_token.text!r}: only named pin connections (.A(net)) are supported"
                    )
                pin = self.identifier()
                self.expect("(")
                bits = [] if self.peek() is not None and self.peek().text == ")" else self.expression()
                self.expect(")")
                if len(bits) > 1:
                    raise self.error(f"instance {name!r} pin {pin!r}: {len(bits)} bits connected, expected 1")
                if bits:
                    pins[pin] = bits[0]
                if self.accept(")"):
                    break
                self.expect(",")
        self.expect(";")
        netlist.instances.append(Instance(name=name, cell=cell_token.text, pins=pins))


def parse_verilog(text: str, top: str | None = None, source: str = "<verilog>") -> Netlist:
    """Parse structural Verilog and return module ``top`` (default: the only module, or the one
    that no other module instantiates)."""
    modules = _Parser(_tokenize(text, source), source).modules()
    if not modules:
        raise NetlistError(f"{source}:1: no module found")
    by_name = {module.name: module for module in modules}
    if top is not None:
        if top not in by_name:
            raise NetlistError(f"{source}: module {top!r} not found; modules present: {sorted(by_name)}")
        return by_name[top]
    used = {instance.cell for module in modules for instance in module.instances}
    roots = [module for module in modules if module.name not in used]
    if len(roots) != 1:
        raise NetlistError(f"{source}: cannot tell the top module among {sorted(by_name)}; pass top=")
    logger.debug("parsed %s: module %s, %d instances", source, roots[0].name, len(roots[0].instances))
    return roots[0]


def read_verilog(path: str | Path, top: str | None = None) -> Netlist:
    """Read a structural Verilog file; see :func:`parse_verilog`."""
    path = Path(path)
    return parse_verilog(path.read_text(), top=top, source=str(path))


def _escape(name: str) -> str:
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_$]*", name):
        return name
    return f"\\{name} "


def write_verilog(netlist: Netlist, module_name: str | None = None) -> str:
    """Write the netlist as flat structural Verilog with one scalar port per port bit.

    Port bits such as ``a[0]`` become escaped scalar ports (``\\a[0] ``), the form ABC writes, so
    :func:`parse_verilog` reads back the same net names. Constants are written as ``1'b0``/``1'b1``.
    """

    def net(name: str) -> str:
        if name in CONSTANT_NETS:
            return f"1'b{CONSTANT_NETS[name]}"
        return _escape(name)

    ports = list(dict.fromkeys(netlist.inputs + netlist.outputs))
    lines = [f"module {_escape(module_name or netlist.name)} ("]
    lines.append(",\n".join(f"  {_escape(port)}" for port in ports))
    lines.append(");")
    lines += [f"  input {_escape(port)};" for port in netlist.inputs]
    lines += [f"  output {_escape(port)};" for port in netlist.outputs]
    port_set = set(ports)
    wires: dict[str, None] = {}
    for instance in netlist.instances:
        for value in instance.pins.values():
            if value not in port_set and value not in CONSTANT_NETS:
                wires[value] = None
    for target, value in netlist.aliases.items():
        for name in (target, value):
            if name not in port_set and name not in CONSTANT_NETS:
                wires[name] = None
    lines += [f"  wire {_escape(name)};" for name in wires]
    for instance in netlist.instances:
        connections = ", ".join(f".{pin}({net(value)})" for pin, value in instance.pins.items())
        lines.append(f"  {_escape(instance.cell)} {_escape(instance.name)} ({connections});")
    for target, value in netlist.aliases.items():
        lines.append(f"  assign {net(target)} = {net(value)};")
    lines.append("endmodule")
    return "\n".join(lines) + "\n"
