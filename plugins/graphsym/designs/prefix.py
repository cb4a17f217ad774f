"""Parallel-prefix graphs for n-bit adders: classic topologies, legalization and random graphs.

A prefix graph over bits ``0..n-1`` is a set of nodes ``(i, j)`` with ``i >= j``. Node
``(i, j)`` computes the group generate/propagate pair of bits ``i..j``. The nodes ``(i, i)`` are
the inputs and the nodes ``(i, 0)`` are the outputs, and all of them are always present. As in
PrefixRL (Roy et al. 2021, "PrefixRL: Optimization of Parallel Prefix Circuits using Deep
Reinforcement Learning", arXiv:2205.07000), the node set alone defines the graph. The upper
parent of a non-input node ``(i, j)`` is the node ``(i, k)`` of the same row with the smallest
``k > j``, and its lower parent is ``(k - 1, j)``. A graph is legal when every lower parent
exists.

Topologies built here, for any ``n >= 2``:

* ripple: ``(i, 0)`` from ``(i, i)`` and ``(i - 1, 0)``, depth ``n - 1``.
* Sklansky 1960 ("Conditional-sum addition logic"): divide and conquer, depth ``log2 n``,
  size ``(n/2) log2 n``, fanout up to ``n/2``.
* Kogge & Stone 1973 ("A parallel algorithm for the efficient solution of a general class of
  recurrence equations"): span doubling at every level, depth ``log2 n``, size
  ``n log2 n - n + 1``.
* Brent & Kung 1982 ("A regular layout for parallel adders"): up-sweep tree and down-sweep,
  depth ``2 log2 n - 2``, size ``2n - 2 - log2 n``.
* Han & Carlson 1987 ("Fast area-efficient VLSI adders"): Kogge-Stone on the odd bits and one
  more level for the even bits, depth ``log2 n + 1``, size ``(n/2) log2 n``.
* Ladner & Fischer 1980 ("Parallel prefix computation"): built here as Sklansky on the odd bits
  and one more level for the even bits (a sparse Sklansky graph), depth ``log2 n + 1``, size
  ``n - 1 + (n/4) log2(n/2)``.

  NOTE: Ladner and Fischer define a family of graphs that trade depth for size. Only this one
  member is built here.

The sizes and depths above hold for ``n`` a power of two.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cached_property

__all__ = [
    "TOPOLOGIES",
    "Node",
    "PrefixGraph",
    "PrefixGraphError",
    "brent_kung",
    "build_prefix_graph",
    "han_carlson",
    "kogge_stone",
    "ladner_fischer",
    "legalize",
    "random_prefix_graph",
    "ripple",
    "sklansky",
]

logger = logging.getLogger(__name__)

Node = tuple[int, int]

MIN_WIDTH = 2


class PrefixGraphError(ValueError):
    """A prefix graph is invalid: a node out of range, a missing input/output or lower parent."""


def _check_width(n: int) -> None:
    if not isinstance(n, int) or isinstance(n, bool) or n < MIN_WIDTH:
        raise PrefixGraphError(
            f"invalid prefix graph width n={n!r}: expected an integer >= {MIN_WIDTH}"
        )


@dataclass(frozen=True)
class PrefixGraph:
    """A legal n-bit prefix graph; construction raises :class:`PrefixGraphError` otherwise.

    ``topology`` is a label (``"kogge_stone"``, ``"random"``, ...) carried into generator
    settings. It plays no part in equality checks beyond being a field.
    """

    n: int
    nodes: frozenset[Node]
    topology: str = "custom"

    def __post_init__(self) -> None:
        _check_width(self.n)
        for node in self.nodes:
            i, j = node
            if not 0 <= j <= i < self.n:
                raise PrefixGraphError(
                    f"{self.topology} prefix graph (n={self.n}): node {node} is out of range; "
                    f"nodes (i, j) need 0 <= j <= i < {self.n}"
                )
        for i in range(self.n):
            for required in ((i, i), (i, 0)):
                if required not in self.nodes:
                    raise PrefixGraphError(
                        f"{self.topology} prefix graph (n={self.n}): missing input/output node "
                        f"{required}; call legalize() to add it"
                    )
        for node in self.nodes:
            if node[0] == node[1]:
                continue
            lower = self.lower_parent(node)
            if lower not in self.nodes:
                raise PrefixGraphError(
                    f"{self.topology} prefix graph (n={self.n}) is not legal: node {node} needs "
                    f"lower parent {lower}; call legalize() to add missing parents"
                )

    @cached_property
    def _rows(self) -> dict[int, list[int]]:
        """The ``j`` values of each row ``i``, ascending."""
        rows: dict[int, list[int]] = {i: [] for i in range(self.n)}
        for i, j in self.nodes:
            rows[i].append(j)
        for values in rows.values():
            values.sort()
        return rows

    def upper_parent(self, node: Node) -> Node:
        """Return the node ``(i, k)`` of row ``i`` with the smallest ``k > j``."""
        i, j = node
        if i == j:
            raise PrefixGraphError(f"input node {node} has no parents")
        row = self._rows[i]
        for k in row:
            if k > j:
                return (i, k)
        raise AssertionError(f"row {i} lacks its input node")  # (i, i) is checked at construction

    def lower_parent(self, node: Node) -> Node:
        """Return ``(k - 1, j)`` where ``(i, k)`` is the upper parent of ``node = (i, j)``."""
        _, k = self.upper_parent(node)
        return (k - 1, node[1])

    def parents(self, node: Node) -> tuple[Node, Node]:
        """Return ``(upper, lower)`` of a non-input node."""
        return self.upper_parent(node), self.lower_parent(node)

    @cached_property
    def ordered_nodes(self) -> tuple[Node, ...]:
        """Non-input nodes in an order where both parents come first (by span, then row)."""
        inner = [node for node in self.nodes if node[0] != node[1]]
        inner.sort(key=lambda node: (node[0] - node[1], node[0]))
        return tuple(inner)

    @cached_property
    def levels(self) -> dict[Node, int]:
        """Logic level of every node: 0 for inputs, else one more than the deeper parent."""
        levels = {(i, i): 0 for i in range(self.n)}
        for node in self.ordered_nodes:
            upper, lower = self.parents(node)
            levels[node] = 1 + max(levels[upper], levels[lower])
        return levels

    @cached_property
    def fanouts(self) -> dict[Node, int]:
        """Number of prefix nodes that use each node as upper or lower parent."""
        counts = dict.fromkeys(self.nodes, 0)
        for node in self.ordered_nodes:
            for parent in self.parents(node):
                counts[parent] += 1
        return counts

    @property
    def size(self) -> int:
        """Number of non-input nodes, i.e. prefix operators."""
        return len(self.nodes) - self.n

    @property
    def depth(self) -> int:
        """Maximum logic level over all nodes (in prefix operators)."""
        return max(self.levels.values())

    @property
    def max_fanout(self) -> int:
        """Maximum prefix-graph fanout; the uses by sum XORs of an adder are not counted."""
        return max(self.fanouts.values())

    def describe(self) -> str:
        return (
            f"{self.topology} n={self.n}: size {self.size}, depth {self.depth}, "
            f"max fanout {self.max_fanout}"
        )


def legalize(n: int, nodes: Iterable[Node], topology: str = "custom") -> PrefixGraph:
    """Make a node set legal the PrefixRL way and return the graph.

    The inputs ``(i, i)`` and outputs ``(i, 0)`` are added. Rows are then processed from
    ``i = n - 1`` down to 1. For each node ``(i, j)`` of the row, the upper parent is the node
    ``(i, k)`` with the smallest ``k > j``, and a missing lower parent ``(k - 1, j)`` is added to
    row ``k - 1``. Because ``k - 1 < i``, every added node lands in a row not yet processed, so a
    single pass legalizes the added nodes as well. Nodes are only added, never removed.
    """
    _check_width(n)
    rows: dict[int, set[int]] = {i: {i, 0} for i in range(n)}
    for node in nodes:
        i, j = node
        if not 0 <= j <= i < n:
            raise PrefixGraphError(
                f"cannot legalize: node {node} is out of range; nodes (i, j) need 0 <= j <= i < {n}"
            )
        rows[i].add(j)

    added = 0
    for i in range(n - 1, 0, -1):
        row = sorted(rows[i])
        # row[-1] == i, so every j except the input has a next element, which is its upper
        # parent's k.
        for j, k in zip(row, row[1:]):
            lower_row = rows[k - 1]
            if j not in lower_row:
                lower_row.add(j)
                added += 1

    result = frozenset((i, j) for i, row in rows.items() for j in row)
    logger.debug("legalized %s prefix graph n=%d: added %d lower parents", topology, n, added)
    return PrefixGraph(n, result, topology)


def ripple(n: int) -> PrefixGraph:
    """Serial prefix graph: every output ``(i, 0)`` from ``(i, i)`` and ``(i - 1, 0)``."""
    _check_width(n)
    nodes = {(i, i) for i in range(n)} | {(i, 0) for i in range(n)}
    return PrefixGraph(n, frozenset(nodes), "ripple")


def _sklansky_nodes(n: int) -> set[Node]:
    # At level l, bit i with bit l set joins the block ending at i (low l bits of i cleared)
    # with the block below it, giving node (i, i with the low l + 1 bits cleared).
    nodes = {(i, i) for i in range(n)}
    level = 0
    while (1 << level) < n:
        for i in range(n):
            if (i >> level) & 1:
                nodes.add((i, (i >> (level + 1)) << (level + 1)))
        level += 1
    return nodes


def _kogge_stone_nodes(n: int) -> set[Node]:
    # At level l, every bit i >= 2**(l-1) forms the span 2**l ending at i, clipped at bit 0.
    nodes = {(i, i) for i in range(n)}
    span = 2
    while span // 2 < n:
        for i in range(span // 2, n):
            nodes.add((i, max(0, i - span + 1)))
        span *= 2
    return nodes


def sklansky(n: int) -> PrefixGraph:
    """Sklansky (1960) divide-and-conquer graph: minimum depth, high fanout."""
    _check_width(n)
    return PrefixGraph(n, frozenset(_sklansky_nodes(n)), "sklansky")


def kogge_stone(n: int) -> PrefixGraph:
    """Kogge & Stone (1973) graph: minimum depth, fanout 2 except for the low outputs.

    The clipped spans make ``(0, 0)`` feed ``log2 n`` nodes, so ``max_fanout`` is ``log2 n``
    for ``n >= 4``.
    """
    _check_width(n)
    return PrefixGraph(n, frozenset(_kogge_stone_nodes(n)), "kogge_stone")


def brent_kung(n: int) -> PrefixGraph:
    """Brent & Kung (1982) graph: a binary up-sweep tree, then the missing outputs."""
    _check_width(n)
    nodes = {(i, i) for i in range(n)}
    span = 2
    while span <= n:
        # Up-sweep: bit i whose low log2(span) bits are all ones closes a block of `span` bits.
        for i in range(span - 1, n, span):
            nodes.add((i, i - span + 1))
        span *= 2
    # Down-sweep: each missing output takes the largest block of its row and the output below.
    nodes.update((i, 0) for i in range(n))
    return PrefixGraph(n, frozenset(nodes), "brent_kung")


def _sparse_nodes(n: int, pair_nodes: Callable[[int], set[Node]]) -> set[Node]:
    """Apply a topology to the bit pairs (2u + 1, 2u), then add one level for the even bits."""
    nodes = {(i, i) for i in range(n)}
    pairs = n // 2
    if pairs >= 2:
        pair_graph = pair_nodes(pairs)
    else:
        pair_graph = {(0, 0)}
    # Pair node (u, v) covers bits 2u + 1 .. 2v; the pair inputs (u, u) are the nodes (2u + 1, 2u).
    nodes.update((2 * u + 1, 2 * v) for u, v in pair_graph)
    # Even bits take (i, i) and the output (i - 1, 0) of the odd bit below.
    nodes.update((i, 0) for i in range(2, n, 2))
    return nodes


def han_carlson(n: int) -> PrefixGraph:
    """Han & Carlson (1987) graph: Kogge-Stone on odd bits, one extra level for even bits."""
    _check_width(n)
    return PrefixGraph(n, frozenset(_sparse_nodes(n, _kogge_stone_nodes)), "han_carlson")


def ladner_fischer(n: int) -> PrefixGraph:
    """Ladner & Fischer (1980) graph: Sklansky on odd bits, one extra level for even bits."""
    _check_width(n)
    return PrefixGraph(n, frozenset(_sparse_nodes(n, _sklansky_nodes)), "ladner_fischer")


TOPOLOGIES: dict[str, Callable[[int], PrefixGraph]] = {
    "ripple": ripple,
    "sklansky": sklansky,
    "kogge_stone": kogge_stone,
    "brent_kung": brent_kung,
    "han_carlson": han_carlson,
    "ladner_fischer": ladner_fischer,
}


def build_prefix_graph(topology: str, n: int) -> PrefixGraph:
    """Build a named classic topology; raises :class:`PrefixGraphError` for an unknown name."""
    try:
        constructor = TOPOLOGIES[topology]
    except KeyError:
        known = ", ".join(sorted(TOPOLOGIES))
        raise PrefixGraphError(
            f"unknown prefix topology {topology!r}; expected one of: {known}"
        ) from None
    return constructor(n)


def random_prefix_graph(n: int, rng: random.Random, density: float) -> PrefixGraph:
    """Sample a random legal prefix graph.

    Each node ``(i, j)`` with ``0 < j < i`` is kept with probability ``density``, then
    :func:`legalize` adds the missing parents. ``density=0`` gives the ripple graph and
    ``density=1`` the graph of all nodes. There are ``(n - 1)(n - 2) / 2`` candidates, so for
    ``n = 128`` a density of 0.05 already samples about 400 nodes. The draws depend only on
    ``rng``'s state, so a seeded ``random.Random`` gives the same graph on every run.
    """
    _check_width(n)
    if not isinstance(rng, random.Random):
        raise TypeError(
            f"rng must be a random.Random instance, got {type(rng).__name__}; "
            "use random.Random(seed)"
        )
    if not 0.0 <= density <= 1.0:
        raise PrefixGraphError(f"invalid density {density!r}: expected a probability in [0, 1]")
    sampled = [(i, j) for i in range(2, n) for j in range(1, i) if rng.random() < density]
    graph = legalize(n, sampled, topology="random")
    logger.debug("sampled random prefix graph: %s", graph.describe())
    return graph
