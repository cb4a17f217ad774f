"""Gate-level prefix adders: an n-bit ``sum = a + b`` with carry-out from a prefix graph.

The construction is the standard generate/propagate one (see the sources in :mod:`.prefix`):

* pre-processing ``p_i = a_i ^ b_i`` and ``g_i = a_i & b_i``;
* each prefix node ``(i, j)`` with upper parent ``hi`` and lower parent ``lo``:
  ``G = G_hi | (P_hi & G_lo)`` (an AO21 written as one AND and one OR), and
  ``P = P_hi & P_lo`` only where a later node reads it;
* post-processing ``sum_i = p_i ^ G_{i-1:0}`` with ``sum_0 = p_0``, and ``cout = G_{n-1:0}``.

Wires are named after the nodes (``G_7_4``, ``P_7_4``, ``t_7_4`` for the AND term), so the
prefix topology stays readable in the Verilog and in the mapped netlist.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from adaptlab.plugins.graphsym.designs.base import Design, GateBuilder
from adaptlab.plugins.graphsym.designs.prefix import Node, PrefixGraph
from adaptlab.plugins.graphsym.designs.simulate import adder_reference, check_adder

__all__ = ["build_prefix_network", "prefix_adder", "required_nodes"]

logger = logging.getLogger(__name__)


def required_nodes(graph: PrefixGraph, outputs: Iterable[Node]) -> tuple[set[Node], set[Node]]:
    """Return the nodes whose ``G`` and whose ``P`` are needed to compute ``outputs``.

    A node's ``G`` is needed for a requested output and for every parent of a needed node. Its
    ``P`` is needed when it is the upper parent of a node whose ``G`` is needed, or a parent of a
    node whose ``P`` is needed. Nodes ``(i, 0)`` never need ``P``, which is why an adder without
    carry-in has no ``P_i_0`` wires.
    """
    need_g = set(outputs)
    need_p: set[Node] = set()
    # Children before parents: spans shrink from child to parent.
    for node in reversed(graph.ordered_nodes):
        if node not in need_g and node not in need_p:
            continue
        upper, lower = graph.parents(node)
        if node in need_g:
            need_g.update((upper, lower))
            need_p.add(upper)
        if node in need_p:
            need_p.update((upper, lower))
    return need_g, need_p


def build_prefix_network(
    builder: GateBuilder,
    graph: PrefixGraph,
    generate: list[str],
    propagate: list[str],
    outputs: Iterable[Node],
) -> dict[Node, str]:
    """Add the prefix operators that compute ``outputs`` and return the ``G`` net of each node.

    ``generate`` and ``propagate`` are the nets of the input nodes ``(i, i)``. Only the fan-in
    cone of ``outputs`` is built, so a comparator that needs only ``(n - 1, 0)`` gets no unused
    gates. Inputs ``(i, i)`` missing from ``propagate`` are never read.
    """
    outputs = list(outputs)
    need_g, need_p = required_nodes(graph, outputs)
    g_net = {(i, i): net for i, net in enumerate(generate)}
    p_net = {(i, i): net for i, net in enumerate(propagate)}
    for node in graph.ordered_nodes:
        if node not in need_g and node not in need_p:
            continue
        upper, lower = graph.parents(node)
        suffix = f"{node[0]}_{node[1]}"
        if node in need_g:
            term = builder.and_(p_net[upper], g_net[lower], output=f"t_{suffix}")
            g_net[node] = builder.or_(g_net[upper], term, output=f"G_{suffix}")
        if node in need_p:
            p_net[node] = builder.and_(p_net[upper], p_net[lower], output=f"P_{suffix}")
    return {node: g_net[node] for node in outputs}


def prefix_adder(
    graph: PrefixGraph, name: str | None = None, *, check_vectors: int = 2048
) -> Design:
    """Build, simulate and return the n-bit adder whose carry network is ``graph``.

    Ports are ``a[n-1:0]``, ``b[n-1:0]``, ``sum[n-1:0]`` and ``cout``. The design is checked with
    :func:`~.simulate.check_adder` on corner vectors plus ``check_vectors`` random vectors
    before it is returned, so a wrong gate raises :class:`~.base.DesignError` here.
    """
    n = graph.n
    name = name or f"adder_{graph.topology}_{n}"
    builder = GateBuilder({"a": n, "b": n}, {"sum": n, "cout": 1})

    # p_0 feeds only sum[0], because no node (i, 0) reads its P.
    builder.xor(builder.bit("a", 0), builder.bit("b", 0), output="p_0")
    propagate = ["p_0"]
    generate = [builder.and_(builder.bit("a", 0), builder.bit("b", 0), output="g_0")]
    for i in range(1, n):
        a_i, b_i = builder.bit("a", i), builder.bit("b", i)
        propagate.append(builder.xor(a_i, b_i, output=f"p_{i}"))
        generate.append(builder.and_(a_i, b_i, output=f"g_{i}"))

    carries = build_prefix_network(builder, graph, generate, propagate, [(i, 0) for i in range(n)])

    builder.drive("sum", 0, "p_0")
    for i in range(1, n):
        builder.drive("sum", i, builder.xor(propagate[i], carries[(i - 1, 0)], output=f"s_{i}"))
    builder.drive("cout", 0, carries[(n - 1, 0)])

    settings = {
        "generator": "prefix_adder",
        "n": n,
        "topology": graph.topology,
        "nodes": sorted([i, j] for i, j in graph.nodes if i != j),
    }
    design = builder.build(name, settings, reference=adder_reference(n))
    check_adder(design, vectors=check_vectors)
    logger.debug("built adder %s: %s, %d gates", name, graph.describe(), design.gate_count)
    return design
