"""Quorums, counted: why any two majorities share a node, and smaller "quorums" do not.

A quorum system over ``n`` nodes is a family of node sets any two of which intersect.
Majorities are one: if ``|A| > n/2`` and ``|B| > n/2`` then ``|A| + |B| > n``, so by the
pigeonhole principle ``A`` and ``B`` cannot be disjoint.  Paxos relies on exactly this:
a ballot that gathers promises from a majority meets every majority that accepted an
earlier value (P2c).  Sets of size ``k <= n/2`` do not intersect in general.
"""

from __future__ import annotations

from itertools import combinations
from typing import Optional, Sequence


def _check_n(n) -> int:
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"n must be an int >= 1, got {n!r}")
    return n


def node_names(n: int) -> tuple:
    return tuple(f"n{i}" for i in range(1, _check_n(n) + 1))


def quorums(n: int, size: int) -> list:
    """Every set of exactly ``size`` of the nodes ``n1..nn`` (sorted tuples)."""
    _check_n(n)
    if not isinstance(size, int) or isinstance(size, bool) or not 1 <= size <= n:
        raise ValueError(f"size must be an int in [1, n={n}], got {size!r}")
    return list(combinations(node_names(n), size))


def majorities(n: int) -> list:
    """Every majority of ``n`` nodes: all sets of more than ``n/2`` of them."""
    _check_n(n)
    return [q for size in range(n // 2 + 1, n + 1) for q in quorums(n, size)]


def pairs_checked(family: Sequence) -> tuple:
    """``(pairs, intersecting)``: how many pairs of the family there are, and how many share a node."""
    sets = [frozenset(q) for q in family]
    pairs = hits = 0
    for a, b in combinations(sets, 2):
        pairs += 1
        hits += bool(a & b)
    return pairs, hits


def disjoint_pair(n: int, size: int) -> Optional[tuple]:
    """Two disjoint sets of ``size`` nodes, or None when none exist (``2 * size > n``)."""
    qs = quorums(n, size)
    for a, b in combinations(qs, 2):
        if not set(a) & set(b):
            return a, b
    return None
