"""Further circuits for the same flow: a prefix comparator and an unsigned array multiplier.

Both return a :class:`~.base.Design` with a gate list and a reference function, and both are
simulated before they are returned, exactly like the prefix adders.

* Comparator ``lt = (a < b)`` for unsigned n-bit inputs. Scanning from the most significant
  bit, ``a < b`` at the first bit where they differ. Per bit, ``l_i = ~a_i & b_i`` plays the
  role of generate and ``e_i = ~a_i ^ b_i`` (bit equality) the role of propagate, so the prefix
  operator of an adder computes ``LT_{n-1:0}``. Any prefix graph can be used, and the ripple
  graph gives the simple serial comparator. Only the cone of node ``(n - 1, 0)`` is built.
* Array multiplier ``p = a * b`` for unsigned n-bit inputs: AND partial products ``a_j & b_i``
  summed row by row with ripple-carry rows of half and full adders (a carry-propagate array).
"""

from __future__ import annotations

import logging

from adaptlab.plugins.graphsym.designs.base import Design, DesignError, GateBuilder
from adaptlab.plugins.graphsym.designs.circuit import build_prefix_network, required_nodes
from adaptlab.plugins.graphsym.designs.prefix import PrefixGraph
from adaptlab.plugins.graphsym.designs.simulate import check_design

__all__ = ["array_multiplier", "prefix_comparator"]

logger = logging.getLogger(__name__)

MULTIPLIER_WIDTHS = range(2, 17)


def prefix_comparator(graph: PrefixGraph, name: str | None = None) -> Design:
    """Build, simulate and return the unsigned comparator ``lt = (a < b)`` over ``graph``.

    Ports are ``a[n-1:0]``, ``b[n-1:0]`` and the 1-bit output ``lt``.
    """
    n = graph.n
    name = name or f"comparator_{graph.topology}_{n}"
    builder = GateBuilder({"a": n, "b": n}, {"lt": 1})
    root = (n - 1, 0)
    _, need_p = required_nodes(graph, [root])

    less: list[str] = []
    equal: list[str] = []
    for i in range(n):
        b_i = builder.bit("b", i)
        not_a = builder.not_(builder.bit("a", i), output=f"na_{i}")
        less.append(builder.and_(not_a, b_i, output=f"l_{i}"))
        # Bit equality is needed only where the network reads P of input (i, i).
        equal.append(builder.xor(not_a, b_i, output=f"e_{i}") if (i, i) in need_p else "")

    result = build_prefix_network(builder, graph, less, equal, [root])
    builder.drive("lt", 0, result[root])

    settings = {
        "generator": "prefix_comparator",
        "n": n,
        "topology": graph.topology,
        "nodes": sorted([i, j] for i, j in graph.nodes if i != j),
    }
    design = builder.build(
        name, settings, reference=lambda values: {"lt": int(values["a"] < values["b"])}
    )
    check_design(design)
    logger.debug("built comparator %s: %d gates", name, design.gate_count)
    return design


def _add_rows(builder: GateBuilder, row: int, x: list[str], y: list[str]) -> list[str]:
    """Add bit lists ``x`` and ``y`` (aligned at bit 0, ``len(y) <= len(x)``) by ripple carry."""
    result: list[str] = []
    carry: str | None = None
    for k, x_k in enumerate(x):
        operands = [x_k]
        if k < len(y):
            operands.append(y[k])
        if carry:
            operands.append(carry)
        tag = f"{row}_{k}"
        if len(operands) == 1:
            result.append(x_k)
            carry = None
        elif len(operands) == 2:
            result.append(builder.xor(*operands, output=f"s_{tag}"))
            carry = builder.and_(*operands, output=f"c_{tag}")
        else:
            first, second, carry_in = operands
            half = builder.xor(first, second, output=f"h_{tag}")
            result.append(builder.xor(half, carry_in, output=f"s_{tag}"))
            both = builder.and_(first, second, output=f"k_{tag}")
            chained = builder.and_(half, carry_in, output=f"r_{tag}")
            carry = builder.or_(both, chained, output=f"c_{tag}")
    if carry:
        result.append(carry)
    return result


def array_multiplier(n: int, name: str | None = None) -> Design:
    """Build, simulate and return the unsigned n x n array multiplier ``p[2n-1:0] = a * b``.

    ``n`` ranges from 2 to 16. Designs with ``n <= 8`` are checked on every input pair.
    """
    if n not in MULTIPLIER_WIDTHS:
        raise DesignError(f"invalid multiplier width n={n!r}: expected an integer from 2 to 16")
    name = name or f"multiplier_array_{n}"
    builder = GateBuilder({"a": n, "b": n}, {"p": 2 * n})

    def partial_products(i: int) -> list[str]:
        b_i = builder.bit("b", i)
        return [builder.and_(builder.bit("a", j), b_i, output=f"pp_{i}_{j}") for j in range(n)]

    first_row = partial_products(0)
    builder.drive("p", 0, first_row[0])
    # `upper` is the running sum from weight i upwards; row i adds a * b_i shifted by i.
    upper = first_row[1:]
    for i in range(1, n):
        total = _add_rows(builder, i, partial_products(i), upper)
        builder.drive("p", i, total[0])
        upper = total[1:]
    for k, net in enumerate(upper):
        builder.drive("p", n + k, net)

    settings = {"generator": "array_multiplier", "n": n}
    design = builder.build(
        name, settings, reference=lambda values: {"p": values["a"] * values["b"]}
    )
    check_design(design)
    logger.debug("built multiplier %s: %d gates", name, design.gate_count)
    return design
