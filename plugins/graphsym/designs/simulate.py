"""Bit-parallel simulation of gate lists and the functional check of generated designs.

Each net is a Python integer whose bit ``v`` is the net's value under test vector ``v``, so
one pass over the gate list evaluates every vector at once. Each gate costs one big-integer
operation, whose time grows only with the number of vectors divided by the machine word
size. A design passes when every output bit matches its reference function on every vector.
Generators call these checks before they return a design.
"""

from __future__ import annotations

import itertools
import logging
import random
from collections.abc import Mapping, Sequence

from adaptlab.plugins.graphsym.designs.base import Design, DesignError, Gate, Reference, port_bits

__all__ = [
    "adder_corner_vectors",
    "adder_reference",
    "check_adder",
    "check_design",
    "corner_vectors",
    "simulate",
]

logger = logging.getLogger(__name__)

Vector = Mapping[str, int]

DEFAULT_RANDOM_VECTORS = 2048
# Designs with at most this many input bits are checked on every input combination by default.
EXHAUSTIVE_INPUT_BITS = 16


def simulate(gates: Sequence[Gate], inputs: Mapping[str, int], count: int) -> dict[str, int]:
    """Evaluate ``gates`` in order on ``count`` vectors and return the bit vector of every net.

    ``inputs`` maps each primary input net to its bit vector. Gates must be in topological
    order, as :class:`~.base.GateBuilder` and the Verilog reader produce them.
    """
    mask = (1 << count) - 1
    values = dict(inputs)
    for gate in gates:
        try:
            operands = [values[net] for net in gate.inputs]
        except KeyError as error:
            raise DesignError(
                f"gate driving {gate.output!r} reads net {error.args[0]!r} before it is driven; "
                "the gate list must be in topological order"
            ) from None
        if gate.op == "and":
            result = operands[0] & operands[1]
        elif gate.op == "or":
            result = operands[0] | operands[1]
        elif gate.op == "xor":
            result = operands[0] ^ operands[1]
        elif gate.op == "not":
            result = ~operands[0] & mask
        elif gate.op == "buf":
            result = operands[0]
        else:
            raise DesignError(f"gate driving {gate.output!r} has unknown operator {gate.op!r}")
        values[gate.output] = result
    return values


def _pack(values: Sequence[int], width: int) -> list[int]:
    """Transpose port values into one bit vector per port bit, least significant bit first."""
    if not values:
        return [0] * width
    rows = [format(value, f"0{width}b") for value in values]
    # Column c of the rows contains bit (width - 1 - c) of every vector, vector 0 first.
    columns = ["".join(column) for column in zip(*rows)]
    return [int(columns[width - 1 - bit][::-1], 2) for bit in range(width)]


def _unpack(bit_vectors: Sequence[int], index: int) -> int:
    return sum(((vector >> index) & 1) << bit for bit, vector in enumerate(bit_vectors))


def corner_vectors(ports: Mapping[str, int]) -> list[dict[str, int]]:
    """Return all-zero, all-one, one and alternating-bit values for the input ports.

    With up to three ports every combination of the five patterns is returned, otherwise all
    ports take the same pattern.
    """

    def patterns(width: int) -> list[int]:
        mask = (1 << width) - 1
        alternating = int("01" * width, 2) & mask
        return list(dict.fromkeys([0, 1, mask, alternating, alternating ^ mask]))

    names = list(ports)
    choices = [patterns(ports[name]) for name in names]
    if len(names) <= 3:
        return [dict(zip(names, values)) for values in itertools.product(*choices)]
    return [
        {name: values[k % len(values)] for name, values in zip(names, choices)} for k in range(5)
    ]


def _random_vectors(ports: Mapping[str, int], count: int, seed: int) -> list[dict[str, int]]:
    rng = random.Random(seed)
    return [{name: rng.getrandbits(width) for name, width in ports.items()} for _ in range(count)]


def _exhaustive_vectors(ports: Mapping[str, int]) -> list[dict[str, int]]:
    names = list(ports)
    ranges = [range(1 << ports[name]) for name in names]
    return [dict(zip(names, values)) for values in itertools.product(*ranges)]


def _format_ports(values: Mapping[str, int], widths: Mapping[str, int]) -> str:
    return ", ".join(f"{name}={values[name]:#0{(widths[name] + 3) // 4 + 2}x}" for name in widths)


def check_design(
    design: Design,
    vectors: int | Sequence[Vector] | None = None,
    *,
    seed: int = 0,
    reference: Reference | None = None,
) -> int:
    """Simulate the design's gate list and compare every output with the reference function.

    ``vectors`` is an explicit list of input port values, or a number of random vectors added to
    :func:`corner_vectors`. ``None`` checks every input combination when the design has at most
    16 input bits, else the corners and 2048 random vectors. ``reference`` overrides the
    design's own. Returns the number of vectors checked. Raises :class:`DesignError` naming the
    first failing vector, with its expected and actual outputs.
    """
    reference = reference or design.reference
    if design.gates is None:
        raise DesignError(f"design {design.name!r} has no gate list, so it cannot be simulated")
    if reference is None:
        raise DesignError(
            f"design {design.name!r} has no reference function; pass reference= to check it"
        )

    total_input_bits = sum(design.inputs.values())
    if vectors is None:
        if total_input_bits <= EXHAUSTIVE_INPUT_BITS:
            vectors = _exhaustive_vectors(design.inputs)
        else:
            vectors = corner_vectors(design.inputs) + _random_vectors(
                design.inputs, DEFAULT_RANDOM_VECTORS, seed
            )
    elif isinstance(vectors, int):
        vectors = corner_vectors(design.inputs) + _random_vectors(design.inputs, vectors, seed)
    vectors = list(vectors)
    if not vectors:
        raise DesignError(f"design {design.name!r}: no test vectors given")

    for index, vector in enumerate(vectors):
        for name, width in design.inputs.items():
            value = vector.get(name)
            if not isinstance(value, int) or not 0 <= value < (1 << width):
                raise DesignError(
                    f"test vector {index} for design {design.name!r}: "
                    f"input {name!r} = {value!r} is "
                    f"missing or outside [0, 2**{width})"
                )

    count = len(vectors)
    inputs: dict[str, int] = {}
    for name, width in design.inputs.items():
        packed = _pack([vector[name] for vector in vectors], width)
        inputs.update(zip(port_bits(name, width), packed))
    values = simulate(design.gates, inputs, count)

    expected_values = [reference(dict(vector)) for vector in vectors]
    first_failure = count
    failing_bit = ""
    actual_bits: dict[str, list[int]] = {}
    for name, width in design.outputs.items():
        bits = port_bits(name, width)
        missing = [bit for bit in bits if bit not in values]
        if missing:
            raise DesignError(
                f"design {design.name!r}: output bits {missing[:8]} are not driven by any gate"
            )
        actual_bits[name] = [values[bit] for bit in bits]
        try:
            expected_column = [outputs[name] for outputs in expected_values]
        except KeyError:
            raise DesignError(
                f"reference function of design {design.name!r} returns no value for output {name!r}"
            ) from None
        expected_bits = _pack([value & ((1 << width) - 1) for value in expected_column], width)
        for bit, actual, expected in zip(bits, actual_bits[name], expected_bits):
            difference = actual ^ expected
            if difference:
                index = (difference & -difference).bit_length() - 1
                if index < first_failure:
                    first_failure, failing_bit = index, bit

    if first_failure < count:
        vector = vectors[first_failure]
        actual = {name: _unpack(bits, first_failure) for name, bits in actual_bits.items()}
        raise DesignError(
            f"design {design.name!r} fails its functional check "
            f"on vector {first_failure} of {count}: "
            f"inputs {_format_ports(vector, design.inputs)}; "
            f"expected {_format_ports(expected_values[first_failure], design.outputs)}; "
            f"got {_format_ports(actual, design.outputs)} (first wrong bit: {failing_bit}). "
            "The gate list does not implement the reference function; inspect the gates in the "
            "fan-in cone of that bit."
        )
    logger.debug(
        "design %s passed simulation on %d vectors (%d gates)",
        design.name,
        count,
        len(design.gates),
    )
    return count


def adder_corner_vectors(n: int) -> list[dict[str, int]]:
    """Return corner inputs of an n-bit adder.

    They are 0 + 0, all ones + 1, all ones + all ones and the alternating patterns. For every
    bit i there are also a carry generated at i (``2**i + 2**i``) and a carry generated at i
    that propagates through all higher bits to ``cout``.
    """
    mask = (1 << n) - 1
    alternating = int("01" * n, 2) & mask
    pairs = [
        (0, 0),
        (mask, 1),
        (1, mask),
        (mask, mask),
        (alternating, alternating ^ mask),
        (alternating, alternating),
        (alternating ^ mask, alternating ^ mask),
        (alternating ^ mask, alternating),
    ]
    for bit in range(n):
        pairs.append((1 << bit, 1 << bit))
        pairs.append(((mask << bit) & mask, 1 << bit))
    return [{"a": a, "b": b} for a, b in pairs]


def adder_reference(n: int) -> Reference:
    """Return the reference function of an n-bit adder: ``sum = (a + b) mod 2**n``, ``cout``."""
    mask = (1 << n) - 1

    def add(values: dict[str, int]) -> dict[str, int]:
        total = values["a"] + values["b"]
        return {"sum": total & mask, "cout": total >> n}

    return add


def check_adder(
    design: Design, vectors: int | Sequence[Vector] = DEFAULT_RANDOM_VECTORS, *, seed: int = 0
) -> int:
    """Check an n-bit adder (``a``, ``b`` -> ``sum``, ``cout``) against integer addition.

    An integer ``vectors`` adds that many random vectors to :func:`adder_corner_vectors`; a
    sequence is used as given. Returns the number of vectors checked.
    """
    n = design.inputs.get("a")
    expected_ports = ({"a": n, "b": n}, {"sum": n, "cout": 1})
    if n is None or (design.inputs, design.outputs) != expected_ports:
        raise DesignError(
            f"design {design.name!r} is not an adder: ports are inputs {design.inputs}, outputs "
            f"{design.outputs}; expected inputs a[n-1:0], b[n-1:0] and outputs sum[n-1:0], cout"
        )
    if isinstance(vectors, int):
        vectors = adder_corner_vectors(n) + _random_vectors(design.inputs, vectors, seed)

    return check_design(design, vectors, reference=adder_reference(n))
