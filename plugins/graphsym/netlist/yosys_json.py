"""Read a flat, technology-mapped module from Yosys ``write_json`` output into a :class:`Netlist`.

Yosys JSON numbers every signal bit; the strings ``"0"`` and ``"1"`` are constant bits (format of
Yosys 0.70, ``write_json`` help text). This reader names each bit after a port when it is one,
otherwise after its first visible ``netnames`` entry, otherwise after a hidden name, and finally
``$n<bit>``. A bit shared by several ports, or a port bit that is a constant, becomes an alias.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .model import Instance, Netlist, NetlistError

__all__ = ["parse_yosys_json", "read_yosys_json"]

logger = logging.getLogger(__name__)

_CONSTANT_BITS = {"0": "$const0", "1": "$const1"}


def _bit_names(name: str, entry: Mapping[str, Any]) -> list[str]:
    """Return the name of each bit of a port or net entry, in ``bits`` order (LSB first)."""
    bits = entry.get("bits", [])
    width = len(bits)
    if width == 1 and "offset" not in entry:
        return [name]
    offset = int(entry.get("offset", 0))
    if entry.get("upto"):
        return [f"{name}[{offset + width - 1 - i}]" for i in range(width)]
    return [f"{name}[{offset + i}]" for i in range(width)]


def _pick_module(modules: Mapping[str, Any], top: str | None, source: str) -> tuple[str, Mapping[str, Any]]:
    if top is not None:
        if top not in modules:
            raise NetlistError(f"{source}: module {top!r} not found; modules present: {sorted(modules)}")
        return top, modules[top]
    candidates = [
        (name, module)
        for name, module in modules.items()
        if not module.get("attributes", {}).get("blackbox") and module.get("cells") is not None
    ]
    marked = [item for item in candidates if module_is_top(item[1])]
    if len(marked) == 1:
        return marked[0]
    if len(candidates) == 1:
        return candidates[0]
    raise NetlistError(
        f"{source}: {len(candidates)} non-blackbox modules and no unique top; pass top= one of "
        f"{sorted(name for name, _ in candidates)}"
    )


def module_is_top(module: Mapping[str, Any]) -> bool:
    """Return whether Yosys marked the module as the top (attribute ``top``, after ``hierarchy -top``)."""
    value = module.get("attributes", {}).get("top")
    return value not in (None, 0, "0", "00000000000000000000000000000000")


def parse_yosys_json(data: str | Mapping[str, Any], top: str | None = None, source: str = "<json>") -> Netlist:
    """Parse Yosys JSON text (or its decoded dict) and return module ``top`` as a Netlist.

    Raises NetlistError for invalid JSON, a missing module, a cell with a multi-bit pin, or a
    bit that is neither a number nor a constant.
    """
    if isinstance(data, str):
        try:
            document = json.loads(data)
        except json.JSONDecodeError as error:
            raise NetlistError(f"{source}:{error.lineno}: invalid JSON: {error.msg}") from error
    else:
        document = data
    modules = document.get("modules")
    if not isinstance(modules, Mapping) or not modules:
        raise NetlistError(f"{source}: no 'modules' object; is this Yosys write_json output?")
    name, module = _pick_module(modules, top, source)

    names: dict[int, str] = {}
    netlist = Netlist(name=name)
    ports = module.get("ports", {})

    def bit_key(bit: Any, where: str) -> int | str:
        if isinstance(bit, int):
            return bit
        if bit in _CONSTANT_BITS:
            return bit
        raise NetlistError(f"{source}: module {name!r}, {where}: unsupported bit {bit!r} (only numbers, '0', '1')")

    # Ports first: input bits are named after the input; an output bit that is an input, a
    # constant or another output's bit becomes an alias of that net.
    for direction in ("input", "output"):
        for port_name, port in ports.items():
            if port.get("direction") not in (direction, "inout"):
                continue
            if port.get("direction") == "inout" and direction == "output":
                continue
            for bit, bit_name in zip(port.get("bits", []), _bit_names(port_name, port)):
                key = bit_key(bit, f"port {port_name!r}")
                if direction == "input":
                    netlist.inputs.append(bit_name)
                    if isinstance(key, int):
                        names.setdefault(key, bit_name)
                    continue
                netlist.outputs.append(bit_name)
                if isinstance(key, str):
                    netlist.aliases[bit_name] = _CONSTANT_BITS[key]
                elif key in names:
                    netlist.aliases[bit_name] = names[key]
                else:
                    names[key] = bit_name

    # Remaining bits: visible net names before hidden ones (Yosys sets hide_name for $-names).
    netnames = module.get("netnames", {})
    for hidden in (0, 1):
        for net_name, net in netnames.items():
            if int(net.get("hide_name", 0)) != hidden:
                continue
            for bit, bit_name in zip(net.get("bits", []), _bit_names(net_name, net)):
                if isinstance(bit, int):
                    names.setdefault(bit, bit_name)

    def net_of(bit: Any, where: str) -> str:
        key = bit_key(bit, where)
        if isinstance(key, str):
            return _CONSTANT_BITS[key]
        return names.setdefault(key, f"$n{key}")

    for cell_name, cell in module.get("cells", {}).items():
        pins: dict[str, str] = {}
        for pin, bits in cell.get("connections", {}).items():
            where = f"cell {cell_name!r} pin {pin!r}"
            if len(bits) != 1:
                raise NetlistError(
                    f"{source}: module {name!r}, {where} has {len(bits)} bits; expected a bit-blasted, "
                    "technology-mapped netlist (1 bit per pin)"
                )
            pins[pin] = net_of(bits[0], where)
        netlist.instances.append(Instance(name=cell_name, cell=cell["type"], pins=pins))
    logger.debug("parsed %s: module %s, %d instances", source, name, len(netlist.instances))
    return netlist


def read_yosys_json(path: str | Path, top: str | None = None) -> Netlist:
    """Read a Yosys JSON file; see :func:`parse_yosys_json`."""
    path = Path(path)
    return parse_yosys_json(path.read_text(), top=top, source=str(path))
