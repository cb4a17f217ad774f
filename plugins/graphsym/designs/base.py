"""The common design type of the GraPhSyM data flow: Verilog text, ports and an optional check.

Every circuit source (the prefix adder generator, the comparator and multiplier generators, a
user's own Verilog file) returns a :class:`Design`. The synthesis steps consume its Verilog
text. Generated designs also carry their 2-input gate list, which the bit-parallel simulator
in :mod:`.simulate` checks against the design's reference function before the design is used.

Port bits are named like the netlist model's nets: ``name[index]`` for a port wider than one
bit and plain ``name`` for a 1-bit port.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "GATE_OPS",
    "Design",
    "DesignError",
    "Gate",
    "GateBuilder",
    "design_key",
    "port_bits",
]

logger = logging.getLogger(__name__)

# Operator of each gate kind and its number of inputs. "buf" is a plain wire assignment, used
# only where an output port must repeat a net that already has a name.
GATE_OPS: dict[str, int] = {"and": 2, "or": 2, "xor": 2, "not": 1, "buf": 1}

Reference = Callable[[dict[str, int]], dict[str, int]]


class DesignError(ValueError):
    """A design is invalid or fails its check: bad ports, undriven nets, a wrong output."""


@dataclass(frozen=True)
class Gate:
    """One gate: the net it drives, its operator (a key of ``GATE_OPS``) and its input nets."""

    output: str
    op: str
    inputs: tuple[str, ...]


def port_bits(name: str, width: int) -> list[str]:
    """Return the net names of a port's bits, least significant first."""
    if width == 1:
        return [name]
    return [f"{name}[{index}]" for index in range(width)]


@dataclass(frozen=True)
class Design:
    """A combinational circuit entering the synthesis flow.

    ``inputs`` and ``outputs`` map port names to widths in bits, in declaration order.
    ``reference`` maps input port values to expected output port values and is ``None`` for a
    user's file. ``gates`` is the 2-input gate list in topological order, or ``None`` when the
    Verilog is not in the assign-only form. ``settings`` are the JSON-serializable generator
    settings that :func:`design_key` hashes with the Verilog text.
    """

    name: str
    top: str
    verilog: str
    inputs: dict[str, int]
    outputs: dict[str, int]
    reference: Reference | None = field(default=None, compare=False, repr=False)
    settings: dict[str, Any] = field(default_factory=dict)
    gates: tuple[Gate, ...] | None = field(default=None, repr=False)

    @property
    def gate_count(self) -> int | None:
        return None if self.gates is None else len(self.gates)

    @classmethod
    def from_verilog_file(cls, path: str | Path, top: str) -> Design:
        """Load a user's Verilog file; the whole file text is kept, ``top`` selects the module.

        Ports are read from module ``top``. The gate list is filled only when that module
        consists of declarations and single-operator ``assign`` statements. The design has no
        reference function, so the simulation check cannot run on it.
        """
        from adaptlab.plugins.graphsym.designs.verilog import parse_assign_gates, read_module_ports

        path = Path(path)
        try:
            text = path.read_text()
        except FileNotFoundError:
            raise DesignError(f"Verilog file not found: {path}; check the path") from None
        except (OSError, UnicodeDecodeError) as error:
            raise DesignError(f"cannot read Verilog file {path}: {error}") from error

        inputs, outputs = read_module_ports(text, top)
        try:
            gates: tuple[Gate, ...] | None = parse_assign_gates(text, top, inputs, outputs)
        except DesignError as error:
            logger.debug("module %s in %s has no gate list for simulation: %s", top, path, error)
            gates = None
        settings = {"generator": "verilog_file", "top": top}
        return cls(
            name=top,
            top=top,
            verilog=text,
            inputs=inputs,
            outputs=outputs,
            settings=settings,
            gates=gates,
        )


def design_key(design: Design) -> str:
    """Return the sha256 hex digest of the design's top module, Verilog text and settings.

    Settings are serialized as JSON with sorted keys, so the key does not depend on dict order.
    Two designs with the same key produce the same synthesis results.
    """
    try:
        settings = json.dumps(design.settings, sort_keys=True, separators=(",", ":"))
    except TypeError as error:
        raise DesignError(
            f"design {design.name!r}: settings are not JSON-serializable ({error}); "
            "use strings, numbers, lists and dicts"
        ) from error
    digest = hashlib.sha256()
    for part in (design.top, design.verilog, settings):
        encoded = part.encode()
        # Length prefixes keep the concatenation unambiguous.
        digest.update(len(encoded).to_bytes(8, "big"))
        digest.update(encoded)
    return digest.hexdigest()


class GateBuilder:
    """Collects gates in topological order: each gate may only read nets that already exist.

    Port bits of ``inputs`` exist from the start. Output port bits are bound with
    :meth:`drive`, which renames the driving gate's output to the port bit where it can.
    """

    def __init__(self, inputs: Mapping[str, int], outputs: Mapping[str, int]) -> None:
        for name, width in {**inputs, **outputs}.items():
            if not name.isidentifier() or width < 1:
                raise DesignError(
                    f"invalid port {name!r} of width {width}: expected an identifier and width >= 1"
                )
        overlap = set(inputs) & set(outputs)
        if overlap:
            raise DesignError(f"ports {sorted(overlap)} are declared both as inputs and outputs")
        self.inputs = dict(inputs)
        self.outputs = dict(outputs)
        self._gates: list[Gate] = []
        self._driver: dict[str, int] = {}  # net -> index of its gate in self._gates
        self._nets = {bit for name, width in inputs.items() for bit in port_bits(name, width)}
        self._output_bits = {
            bit for name, width in outputs.items() for bit in port_bits(name, width)
        }
        self._renames: dict[str, str] = {}
        self._counter = 0

    def bit(self, port: str, index: int) -> str:
        """Return the net of input port bit ``port[index]``."""
        width = self.inputs.get(port)
        if width is None or not 0 <= index < width:
            raise DesignError(f"no input bit {port}[{index}]; inputs are {self.inputs}")
        return port_bits(port, width)[index]

    def gate(self, op: str, *inputs: str, output: str | None = None) -> str:
        """Add a gate and return the net it drives (``output`` or a fresh ``w<k>`` name)."""
        arity = GATE_OPS.get(op)
        if arity is None:
            raise DesignError(f"unknown gate operator {op!r}; expected one of {sorted(GATE_OPS)}")
        if len(inputs) != arity:
            raise DesignError(f"gate {op!r} takes {arity} inputs, got {len(inputs)}: {inputs}")
        for net in inputs:
            if net not in self._nets:
                raise DesignError(f"gate {op!r} reads net {net!r} before any gate drives it")
        if output is None:
            output = f"w{self._counter}"
            self._counter += 1
        if output in self._nets or output in self._output_bits:
            raise DesignError(f"net {output!r} is already driven or is an output port bit")
        self._driver[output] = len(self._gates)
        self._gates.append(Gate(output, op, tuple(inputs)))
        self._nets.add(output)
        return output

    def and_(self, x: str, y: str, output: str | None = None) -> str:
        return self.gate("and", x, y, output=output)

    def or_(self, x: str, y: str, output: str | None = None) -> str:
        return self.gate("or", x, y, output=output)

    def xor(self, x: str, y: str, output: str | None = None) -> str:
        return self.gate("xor", x, y, output=output)

    def not_(self, x: str, output: str | None = None) -> str:
        return self.gate("not", x, output=output)

    def drive(self, port: str, index: int, net: str) -> None:
        """Bind output port bit ``port[index]`` to ``net``.

        The gate driving ``net`` is renamed to the port bit unless ``net`` is a primary input or
        already drives another port bit. In those cases a ``buf`` gate is added.
        """
        width = self.outputs.get(port)
        if width is None or not 0 <= index < width:
            raise DesignError(f"no output bit {port}[{index}]; outputs are {self.outputs}")
        bit = port_bits(port, width)[index]
        if bit in self._nets or bit in self._renames.values():
            raise DesignError(f"output bit {bit!r} is driven twice")
        if net not in self._nets:
            raise DesignError(f"output bit {bit!r} is bound to net {net!r}, which no gate drives")
        if net in self._driver and net not in self._renames:
            self._renames[net] = bit
        else:
            self._nets.add(bit)
            self._driver[bit] = len(self._gates)
            self._gates.append(Gate(bit, "buf", (net,)))

    def gates(self) -> tuple[Gate, ...]:
        """Return the gate list with port renames applied; raises if an output bit is undriven."""
        driven = set(self._renames.values()) | (self._nets & self._output_bits)
        missing = sorted(self._output_bits - driven)
        if missing:
            raise DesignError(f"output bits {missing[:8]} are not driven; bind them with drive()")

        def rename(net: str) -> str:
            return self._renames.get(net, net)

        return tuple(
            Gate(rename(gate.output), gate.op, tuple(rename(net) for net in gate.inputs))
            for gate in self._gates
        )

    def build(self, name: str, settings: dict[str, Any], reference: Reference | None) -> Design:
        """Return the :class:`Design` with structural Verilog for the collected gates."""
        from adaptlab.plugins.graphsym.designs.verilog import write_verilog

        gates = self.gates()
        verilog = write_verilog(name, self.inputs, self.outputs, gates)
        return Design(
            name=name,
            top=name,
            verilog=verilog,
            inputs=dict(self.inputs),
            outputs=dict(self.outputs),
            reference=reference,
            settings=settings,
            gates=gates,
        )
