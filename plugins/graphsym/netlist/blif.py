"""Read and write mapped BLIF, the form ABC ``write_blif`` and Yosys ``write_blif -gates`` produce.

Reads ``.model/.inputs/.outputs/.end``, library cells as ``.gate`` or ``.subckt`` lines with
``pin=net`` connections, ``.cname`` instance names (Yosys ``write_blif -cname``), and ``.names``
only where it is a constant or a buffer (``.names a y`` with cover ``1 1``). Any other ``.names``
is unmapped logic and raises :class:`NetlistError`. ABC's constant gates ``_const0_``/``_const1_``
become constant aliases. Lines continue with a trailing backslash and ``#`` starts a comment
(Berkeley BLIF format, 1992 specification).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

from .model import CONSTANT_NETS, Instance, Netlist, NetlistError

__all__ = ["parse_blif", "read_blif", "write_blif"]

logger = logging.getLogger(__name__)

# Directives that carry timing or layout hints and have no effect on connectivity.
_IGNORED = {".default_input_arrival", ".default_output_required", ".input_arrival", ".output_required",
            ".default_input_drive", ".default_output_load", ".area", ".delay", ".wire_load_slope", ".clock"}


# ABC's mapper writes constant drivers as these built-in gates (one output pin ``z``).
_ABC_CONSTANT_GATES = {"_const0_": "$const0", "_const1_": "$const1"}


def _logical_lines(text: str) -> Iterator[tuple[int, list[str]]]:
    """Yield (first line number, tokens) per logical line, joining backslash continuations."""
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].rstrip()
        if not pending:
            start = number
        continued = line.endswith("\\")
        if continued:
            line = line[:-1]
        pending.extend(line.split())
        if continued:
            continue
        if pending:
            yield start, pending
        pending = []
    if pending:
        yield start, pending


def parse_blif(text: str, top: str | None = None, source: str = "<blif>") -> Netlist:
    """Parse mapped BLIF and return model ``top`` (default: the first model).

    Instances without a ``.cname`` are named ``g<n>`` in file order.
    """
    models: list[Netlist] = []
    netlist: Netlist | None = None
    names_target: tuple[int, list[str]] | None = None
    names_rows: list[list[str]] = []

    def fail(line: int, message: str) -> NetlistError:
        return NetlistError(f"{source}:{line}: {message}")

    def finish_names() -> None:
        nonlocal names_target, names_rows
        if names_target is None or netlist is None:
            return
        line, nets = names_target
        *fanins, output = nets
        if not fanins:
            ones = [row for row in names_rows if row == ["1"]]
            if names_rows and len(ones) != len(names_rows):
                raise fail(line, f".names {output}: a constant's cover must be empty or '1'")
            constant = "$const1" if ones else "$const0"
            if output in CONSTANT_NETS:
                if output != constant:
                    raise fail(line, f".names {output}: drives the opposite constant")
            else:
                netlist.aliases[output] = constant
        elif len(fanins) == 1 and names_rows == [["1", "1"]]:
            netlist.aliases[output] = fanins[0]
        else:
            raise fail(line, f".names {' '.join(nets)}: only constants and buffers are allowed in a mapped netlist")
        names_target, names_rows = None, []

    for line, tokens in _logical_lines(text):
        keyword = tokens[0]
        if not keyword.startswith("."):
            if names_target is None:
                raise fail(line, f"unexpected line {' '.join(tokens)!r} outside a .names block")
            names_rows.append(tokens)
            continue
        finish_names()
        if keyword == ".model":
            netlist = Netlist(name=tokens[1] if len(tokens) > 1 else "top")
            models.append(netlist)
            continue
        if netlist is None:
            raise fail(line, f"{keyword} before .model")
        if keyword == ".inputs":
            netlist.inputs.extend(tokens[1:])
        elif keyword == ".outputs":
            netlist.outputs.extend(tokens[1:])
        elif keyword in (".gate", ".subckt"):
            if len(tokens) < 2:
                raise fail(line, f"{keyword} without a cell name")
            pins: dict[str, str] = {}
            for connection in tokens[2:]:
                pin, sep, net = connection.partition("=")
                if not sep or not pin or not net:
                    raise fail(line, f"{keyword} {tokens[1]}: connection {connection!r} is not pin=net")
                if pin in pins:
                    raise fail(line, f"{keyword} {tokens[1]}: pin {pin!r} connected twice")
                pins[pin] = net
            if tokens[1] in _ABC_CONSTANT_GATES and len(pins) == 1:
                netlist.aliases[next(iter(pins.values()))] = _ABC_CONSTANT_GATES[tokens[1]]
                continue
            name = f"g{len(netlist.instances)}"
            netlist.instances.append(Instance(name=name, cell=tokens[1], pins=pins))
        elif keyword == ".cname":
            if not netlist.instances or len(tokens) != 2:
                raise fail(line, ".cname must follow a .gate or .subckt and give one name")
            last = netlist.instances[-1]
            netlist.instances[-1] = Instance(name=tokens[1], cell=last.cell, pins=last.pins)
        elif keyword == ".names":
            if len(tokens) < 2:
                raise fail(line, ".names without an output net")
            names_target = (line, tokens[1:])
        elif keyword == ".end":
            netlist = None
        elif keyword in _IGNORED:
            continue
        elif keyword == ".latch":
            raise fail(line, ".latch found: only combinational netlists are supported")
        else:
            raise fail(line, f"unsupported BLIF directive {keyword!r}")
    finish_names()

    if not models:
        raise NetlistError(f"{source}:1: no .model found")
    if top is None:
        chosen = models[0]
    else:
        matches = [model for model in models if model.name == top]
        if not matches:
            raise NetlistError(f"{source}: model {top!r} not found; models present: {[m.name for m in models]}")
        chosen = matches[0]
    logger.debug("parsed %s: model %s, %d instances", source, chosen.name, len(chosen.instances))
    return chosen


def read_blif(path: str | Path, top: str | None = None) -> Netlist:
    """Read a BLIF file; see :func:`parse_blif`."""
    path = Path(path)
    return parse_blif(path.read_text(), top=top, source=str(path))


def write_blif(netlist: Netlist, *, gate_keyword: str = ".gate", instance_names: bool = False) -> str:
    """Write the netlist as mapped BLIF.

    Aliases become ``.names`` buffers and the constant nets become constant ``.names``. ABC
    rejects ``.names`` mixed with ``.gate`` in one model (ABC inside Yosys 0.70 traps while
    reading it), so a netlist meant for ABC must carry no aliases and no constants.
    ``instance_names`` adds ``.cname`` lines, which ABC does not read.
    """
    for name in netlist.inputs + netlist.outputs:
        if any(ch.isspace() for ch in name) or "=" in name:
            raise NetlistError(f"netlist {netlist.name!r}: net {name!r} cannot be written to BLIF (space or '=')")
    lines = [f".model {netlist.name}", ".inputs " + " ".join(netlist.inputs), ".outputs " + " ".join(netlist.outputs)]
    used_constants = {
        value for instance in netlist.instances for value in instance.pins.values() if value in CONSTANT_NETS
    } | {value for value in netlist.aliases.values() if value in CONSTANT_NETS}
    for constant in sorted(used_constants):
        lines.append(f".names {constant}")
        if CONSTANT_NETS[constant]:
            lines.append("1")
    for instance in netlist.instances:
        for net in instance.pins.values():
            if any(ch.isspace() for ch in net) or "=" in net:
                raise NetlistError(f"instance {instance.name!r}: net {net!r} cannot be written to BLIF (space or '=')")
        connections = " ".join(f"{pin}={net}" for pin, net in instance.pins.items())
        lines.append(f"{gate_keyword} {instance.cell} {connections}")
        if instance_names:
            lines.append(f".cname {instance.name}")
    for target, value in netlist.aliases.items():
        lines.append(f".names {value} {target}")
        lines.append("1 1")
    lines.append(".end")
    return "\n".join(lines) + "\n"
