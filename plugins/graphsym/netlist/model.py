"""In-memory model of a technology-mapped, bit-blasted gate-level netlist.

Every parser (Yosys JSON, structural Verilog, BLIF) produces a :class:`Netlist`; the timer, the
equivalence checks and the graph builder consume it. Net names are strings; a bus bit is
written ``name[index]``. Pin directions are not stored here: they come from the cell library,
so one netlist can be timed against any library that defines its cells.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["CONSTANT_NETS", "Instance", "Netlist", "NetlistError"]

# Nets tied to logic constants. Parsers map their format's constants (Yosys "0"/"1" bits,
# Verilog 1'b0/1'b1, BLIF .names with no inputs) onto these two names.
CONSTANT_NETS = {"$const0": 0, "$const1": 1}


class NetlistError(ValueError):
    """A netlist is malformed: an unknown cell, a loop, an undriven or multiply-driven net."""


@dataclass(frozen=True)
class Instance:
    """One placed cell: instance name, library cell name and the net on each pin."""

    name: str
    cell: str
    pins: dict[str, str]


@dataclass
class Netlist:
    """A flat combinational netlist of library cells.

    ``inputs`` and ``outputs`` list primary port bits in declaration order (``a[0]``, ``a[1]``,
    ...). ``aliases`` maps a net to the net that drives it through a plain wire assignment
    (``assign y = x``), so that output ports driven directly by inputs or constants are kept.
    """

    name: str
    inputs: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    instances: list[Instance] = field(default_factory=list)
    aliases: dict[str, str] = field(default_factory=dict)

    def resolve(self, net: str) -> str:
        """Follow wire aliases to the net that is really driven; detects alias cycles."""
        seen = {net}
        while net in self.aliases:
            net = self.aliases[net]
            if net in seen:
                raise NetlistError(f"netlist {self.name!r}: wire assignments form a loop at {net!r}")
            seen.add(net)
        return net

    def cell_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for instance in self.instances:
            counts[instance.cell] = counts.get(instance.cell, 0) + 1
        return counts
