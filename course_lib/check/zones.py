"""The unique-values fast path: a register whose written values are all distinct.

When every write of a partition writes a value no other write writes (and not the
initial value) — as Jepsen's and this course's workloads do — linearizability of a
read/write register is decided in ``O(n log n)`` without any search (Gibbons & Korach
1997; the *zones* of Golab, Li & Shah 2011).  Each written value ``v`` has a *cluster*:
its write and the reads that returned ``v`` (the initial value's cluster has a virtual
write before everything).  With ``f`` the earliest return and ``l`` the latest call in
the cluster, the value must be current over ``[f, l]`` when ``f < l`` (a *forward*
zone), or the whole cluster fits at one instant of ``[l, f]`` (a *backward* zone).  The
history is linearizable iff

1. every read returns a written (or the initial) value and does not precede its write;
2. no two forward zones overlap;
3. no backward zone lies inside a forward zone.

Times are the distinct ranks of :func:`~course_lib.check.history.endpoint_ranks`, so
equal timestamps follow the checker's tie rule.  When the conditions hold, a
linearization is built (each cluster at its zone, write first); when they do not, the
evidence is the longest *time* prefix that is linearizable: the earliest return ``T``
such that the history cut just after ``T`` is not (operations called before the cut,
those still running at it treated as outcome unknown).  The operation returning at
``T`` is a read that no order of the prefix lets through.

Unknown-outcome writes take effect only if some read returned their value; unknown
reads are dropped by the caller.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Hashable, Sequence
from typing import Any, Optional

_INIT = -1                 # the initial value's cluster: a virtual write before everything
_NEVER = float("inf")


def unique_writes(views: Sequence[tuple[str, Any]], initial: Any) -> Optional[dict]:
    """``{value: op index}`` of the writes when every written value is hashable,
    distinct, and not the initial value; else None (the fast path does not apply)."""
    write_of: dict[Hashable, int] = {}
    for i, (kind, value) in enumerate(views):
        if kind != "write":
            continue
        try:
            if value in write_of or value == initial:
                return None
        except TypeError:
            return None
        write_of[value] = i
    return write_of


def zone_order(views: Sequence[tuple[str, Any]], completed: Sequence[bool],
               call_rank: Sequence[int], ret_rank: Sequence[int], write_of: dict,
               initial: Any, cut: float = _NEVER) -> Optional[list[int]]:
    """A linearization (op indices) of the history cut at rank ``cut``, or None if that
    history is not linearizable.

    The cut keeps the operations called before ``cut``; those returning after it are
    running, i.e. outcome unknown: a running read constrains nothing, a running write
    takes effect only if some kept read returned its value.
    """
    clusters: dict[int, list] = {}            # write index or _INIT -> [f, l, reads]
    for i, (kind, value) in enumerate(views):
        if kind != "read" or call_rank[i] >= cut or not completed[i] or ret_rank[i] >= cut:
            continue
        try:
            w = _INIT if value == initial else write_of.get(value)
        except TypeError:                     # an unhashable output: nobody wrote it
            return None
        if w is None:
            return None                       # a value nobody wrote
        if w != _INIT and (call_rank[w] >= cut or ret_rank[i] < call_rank[w]):
            return None                       # the read precedes its write
        cluster = clusters.get(w)
        if cluster is None:
            cluster = clusters[w] = [_NEVER, -1, []] if w != _INIT else [-1, -1, []]
        cluster[0] = min(cluster[0], ret_rank[i])
        cluster[1] = max(cluster[1], call_rank[i])
        cluster[2].append(i)
    for w in write_of.values():
        if call_rank[w] >= cut:
            continue
        running = not completed[w] or ret_rank[w] >= cut
        if running and w not in clusters:
            continue                          # an unread unknown write: never took effect
        cluster = clusters.setdefault(w, [_NEVER, -1, []])
        if not running:
            cluster[0] = min(cluster[0], ret_rank[w])
        cluster[1] = max(cluster[1], call_rank[w])

    forward = sorted((f, l, w) for w, (f, l, _) in clusters.items() if f < l)
    for (_, l1, _), (f2, _, _) in zip(forward, forward[1:]):
        if f2 < l1:
            return None                       # two values current at once
    starts = [f for f, _, _ in forward]

    def covering(t: float) -> int:
        """Index of the forward zone containing rank ``t``, or -1."""
        j = bisect_left(starts, t) - 1
        return j if j >= 0 and forward[j][1] > t else -1

    points = []
    for seq, (w, (f, l, reads)) in enumerate(clusters.items()):
        if f < l:
            if w != _INIT:
                points.append((f, seq, 0, w))
            points.extend((max(call_rank[r], f), seq, 1, r) for r in reads)
            continue
        j = covering(l)
        if j >= 0:
            if forward[j][1] > f:
                return None                   # the whole cluster inside another's zone
            t = forward[j][1] + 0.5           # just after that zone, still within [l, f]
        else:
            t = l
        if w != _INIT:
            points.append((t, seq, 0, w))
        points.extend((t, seq, 1, r) for r in reads)
    points.sort()
    return [i for *_, i in points]


def longest_prefix(views: Sequence[tuple[str, Any]], completed: Sequence[bool],
                   call_rank: Sequence[int], ret_rank: Sequence[int], write_of: dict,
                   initial: Any) -> tuple[list[int], int]:
    """For a history that is not linearizable: ``(prefix, failed)``, the linearization
    of the history cut at the earliest return ``T`` after which the cut history is not
    linearizable, and the operation returning at ``T`` (see the module docstring)."""
    args = (views, completed, call_rank, ret_rank, write_of, initial)
    returns = sorted(ret_rank[i] for i in range(len(views)) if completed[i])
    lo, hi = 0, len(returns) - 1
    if hi < 0 or zone_order(*args, cut=returns[hi] + 1) is not None:
        raise AssertionError("longest_prefix() called on a linearizable history")
    while lo < hi:                            # monotone: a longer cut keeps a violation
        mid = (lo + hi) // 2
        if zone_order(*args, cut=returns[mid] + 1) is None:
            hi = mid
        else:
            lo = mid + 1
    cut = returns[lo]
    prefix = zone_order(*args, cut=cut)
    if prefix is None:
        raise AssertionError("zone check is not monotone in the cut")
    failed = next(i for i in range(len(views)) if completed[i] and ret_rank[i] == cut)
    return prefix, failed
