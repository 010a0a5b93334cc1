"""Just-in-time linearization search on one partition (Wing & Gong 1993, Lowe 2017).

This is Porcupine's algorithm, with three reductions that keep it sound:

- every operation contributes a *call* entry and, when completed, a *return* entry, in
  real-time order (:func:`~course_lib.check.history.endpoint_order`).  The call entries
  of read-only operations (:meth:`Model.read_only`) sit in one doubly linked list, those
  of the others in a second, the return entries in a third.  An operation is a
  *candidate* while its call entry comes before the first return entry still listed:
  every operation that precedes it in real time is then linearized;
- linearizing a candidate *lifts* its entries out of the lists (dancing links) and
  enters a new configuration; reaching a configuration with no acceptable candidate
  means the operation whose return entry is first had to be linearized by now: pop the
  last operation, *unlift* it, and try the next candidate after it (backtrack);
- a configuration is ``(linearized set, model state)``.  Configurations proved to fail
  are remembered (Lowe's memoisation) and skipped when met again.  The set is kept small
  as ``(base, window, unknown)``: completed operations are ranked by call, all ranks
  below ``base`` are linearized, ``window`` is an int bitset of the ranks from ``base``
  on, so the key stays a few words long however long the history is.  Operations with an
  unknown outcome (``ret is None``) never return, so their bits never retire; they sit
  in the ``unknown`` bitset and a configuration is also skipped when one that failed had
  the same completed set and state and a *subset* of its unknown bits: linearizing an
  optional operation can only remove futures, so the one with fewer is at least as free;
- greedy reads: when a configuration is entered, a read-only candidate the model accepts
  is linearized at once and nothing else is tried there — moving a read-only operation
  to the earliest point real time allows keeps any valid order valid.  If the
  configuration after it fails, so does the one before.  Only the read-only list is
  scanned for this (Porcupine scans nothing; the first version of this checker called
  the model on *every* candidate of every configuration entered).

The caller drops unknown-outcome operations that are read-only (they constrain nothing)
before calling :func:`linearize`.
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from dataclasses import dataclass
from typing import Optional

from .history import Operation, endpoint_order
from .models import UNKNOWN, Model

#: The search yields control every this many model steps (power of two minus one mask).
YIELD_MASK = 1023


@dataclass(frozen=True)
class SearchOutcome:
    """``ok``; ``order``: the linearization (indices into the ops searched) when ok, else
    the longest prefix found (the most completed operations linearized, first reached);
    ``explored``: model steps taken."""

    ok: bool
    order: tuple[int, ...]
    explored: int


def linearize(model: Model, ops: Sequence[Operation],
              entries: Optional[list[tuple[int, bool]]] = None,
              ) -> Generator[int, None, SearchOutcome]:
    """Search a linearization of ``ops``; a generator that yields the step count every
    ``YIELD_MASK + 1`` model steps (so a caller can interleave partitions and stop at a
    deadline) and returns a :class:`SearchOutcome`.  ``entries`` is
    ``endpoint_order(ops)`` if the caller has it already."""
    n = len(ops)
    if entries is None:
        entries = endpoint_order(ops)
    m = len(entries)
    inputs = [op.input for op in ops]
    outputs = [op.output if op.ret is not None else UNKNOWN for op in ops]
    done = [op.ret is not None for op in ops]
    read_only = [done[i] and model.read_only(inputs[i], outputs[i]) for i in range(n)]

    # Three lists over one pair of arrays: heads m, m+2, m+4, each tail its head + 1; the
    # sentinels compare above every entry, so "e < first_return" stops at a tail.
    head_r, head_w, head_t = m, m + 2, m + 4
    nxt = [0] * (m + 6)
    prv = [0] * (m + 6)
    op_of = [i for i, _ in entries]
    call_of = [0] * n
    ret_of = [-1] * n
    members: dict[int, list[int]] = {head_r: [], head_w: [], head_t: []}
    for e, (i, is_call) in enumerate(entries):
        if is_call:
            call_of[i] = e
            members[head_r if read_only[i] else head_w].append(e)
        else:
            ret_of[i] = e
            members[head_t].append(e)
    for head, chain in members.items():
        p = head
        for e in chain:
            nxt[p] = e
            prv[e] = p
            p = e
        nxt[p] = head + 1
        prv[head + 1] = p

    completed = sorted((i for i in range(n) if done[i]), key=lambda i: call_of[i])
    rank = [0] * n
    for k, i in enumerate(completed):
        rank[i] = k
    unknown_bit = [0] * n
    for k, i in enumerate(i for i in range(n) if not done[i]):
        unknown_bit[i] = 1 << k
    has_unknown = any(unknown_bit)

    step = model.step
    failed: set = set()                   # (base, window, state), no unknown ops
    failed_u: dict = {}                   # (base, window, state) -> [unknown bitsets]
    state = model.init()
    base = window = unknown = 0
    remaining = len(completed)
    frame = None                          # (op, state, base, window, unknown, greedy, up)
    best = 0
    best_frame = None
    explored = 0
    fresh = True
    resume = head_w

    while remaining:
        first_return = nxt[head_t]        # an entry < m: some completed op is unplaced
        chosen = -1
        greedy = False
        if fresh:
            e = nxt[head_r]
            while e < first_return:
                i = op_of[e]
                explored += 1
                if not explored & YIELD_MASK:
                    yield explored
                ok, new_state = step(state, inputs[i], outputs[i])
                if ok:
                    greedy = True
                    break
                e = nxt[e]
            if not greedy:
                e = nxt[head_w]
        else:
            e = nxt[resume]
        while e < first_return:
            i = op_of[e]
            if not greedy:
                explored += 1
                if not explored & YIELD_MASK:
                    yield explored
                ok, new_state = step(state, inputs[i], outputs[i])
            if ok:
                if done[i]:
                    k = rank[i] - base
                    if k:
                        nb, nw = base, window | (1 << k)
                    else:
                        w = window | 1
                        shift = (w ^ (w + 1)).bit_length() - 1
                        nb, nw = base + shift, w >> shift
                    nu = unknown
                else:
                    nb, nw, nu = base, window, unknown | unknown_bit[i]
                key = (nb, nw, new_state)
                if has_unknown:
                    seen = failed_u.get(key)
                    pruned = seen is not None and any(u | nu == nu for u in seen)
                else:
                    pruned = key in failed
                if not pruned:
                    chosen = e
                    break
            if greedy:
                break                     # the greedy child failed before: so does this
            e = nxt[e]

        if chosen >= 0:
            i = op_of[chosen]
            frame = (i, state, base, window, unknown, greedy, frame)
            state, base, window, unknown = new_state, nb, nw, nu
            p, q = prv[chosen], nxt[chosen]
            nxt[p] = q
            prv[q] = p
            r = ret_of[i]
            if r >= 0:
                p, q = prv[r], nxt[r]
                nxt[p] = q
                prv[q] = p
                remaining -= 1
                if len(completed) - remaining > best:
                    best, best_frame = len(completed) - remaining, frame
            fresh = True
            continue

        while True:                       # this configuration fails: remember, pop
            if has_unknown:
                failed_u.setdefault((base, window, state), []).append(unknown)
            else:
                failed.add((base, window, state))
            if frame is None:
                return SearchOutcome(False, _unwind(best_frame), explored)
            i, state, base, window, unknown, was_greedy, frame = frame
            r = ret_of[i]
            if r >= 0:
                nxt[prv[r]] = r
                prv[nxt[r]] = r
                remaining += 1
            e = call_of[i]
            nxt[prv[e]] = e
            prv[nxt[e]] = e
            if not was_greedy:
                break
        resume = call_of[i]
        fresh = False
    return SearchOutcome(True, _unwind(frame), explored)


def _unwind(frame) -> tuple[int, ...]:
    order = []
    while frame is not None:
        order.append(frame[0])
        frame = frame[-1]
    order.reverse()
    return tuple(order)
