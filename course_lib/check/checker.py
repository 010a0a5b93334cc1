"""Linearizability checking: Wing & Gong's search with Lowe's memoisation.

A history is linearizable for a model when the operations can be put in one sequential
order that (1) the model accepts and (2) respects real time: if ``a`` returned before
``b`` was called, ``a`` comes first.  Operations with an unknown outcome (``ret is
None``) may take effect at any time after their call, or never.

The search (Wing & Gong 1993, Lowe 2017 "Testing for linearizability", as in Porcupine):

- every operation contributes a *call* entry and, when completed, a *return* entry; the
  entries are sorted by time into a doubly linked list;
- walking the list from the head, a call entry is a candidate to linearize next as long
  as no return entry has been passed; linearizing it *lifts* its call and return out of
  the list and restarts from the head;
- reaching a return entry means its operation had to be linearized by now: backtrack
  (pop the last linearized operation, *unlift* it, try the next candidate);
- ``(set of linearized operations, model state)`` pairs already seen are skipped (Lowe):
  the rest of the search from such a configuration is the same.  The set is kept small
  as ``(base, window, unknown)``: completed operations ranked by call time, all those
  ranked below ``base`` linearized, ``window`` an int bitset of the ones from ``base``
  on, and ``unknown`` an int bitset of the unknown-outcome ones — so a cache entry costs
  a few words, not one bit per operation of the history;
- success when every completed operation is linearized (unknown-outcome operations that
  are left over simply never took effect); failure when the stack is empty.

One reduction on top: when a configuration is entered, a candidate the model calls
read-only (:meth:`Model.read_only`, e.g. a read) that the model accepts is linearized at
once and no alternative is tried, because moving a read-only operation to the earliest
point it is allowed keeps any valid order valid.  If that configuration fails, so does
the one before it, and the search backtracks past both.

Cost: the number of configurations explored grows with the number of operations in
flight at once on one partition (exponential in the worst case); partitioning by key
keeps it small.  See ``benchmarks/bench_check.py``.

Real-time order at equal timestamps: a return at time ``t`` happens before a call at
``t``, so ``a`` with ``a.ret == b.call`` precedes ``b``.  Two zero-length operations at
the same instant are concurrent.  Entries therefore sort by ``(time, phase)`` with phase
0 = return of a non-zero-length operation, 1 = call of a zero-length one, 2 = return of a
zero-length one, 3 = call of a non-zero-length one.
"""

from __future__ import annotations

import math
import time
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Optional

from .history import Operation
from .models import UNKNOWN, Model


@dataclass(frozen=True)
class Evidence:
    """Why one partition is not linearizable.

    ``prefix`` is the longest sequence of operations the search could linearize (in
    linearization order) and ``state`` the model state after it; ``stuck`` are the
    operations that real time allows next, each of which the model rejects in ``state``.
    At least one of them is completed (an unknown-outcome operation never blocks).
    """

    key: Hashable
    prefix: tuple[Operation, ...]
    state: Hashable
    stuck: tuple[Operation, ...]
    model: Model = field(repr=False, compare=False)

    def describe(self) -> str:
        show = self.model.describe_operation
        lines = [f"partition {self.key!r}: not linearizable"]
        lines.append(
            f"  longest linearizable prefix: {len(self.prefix)} operation(s), "
            f"ending in state {self.model.describe_state(self.state)}"
        )
        for op in self.prefix[-5:]:
            lines.append(f"    ... client {op.client_id!r}: {show(op.input, _output(op))} "
                         f"{_interval(op)}")
        lines.append("  none of these can go next:")
        for op in self.stuck:
            lines.append(f"    client {op.client_id!r}: {show(op.input, _output(op))} "
                         f"{_interval(op)}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.describe()


@dataclass(frozen=True)
class PartitionResult:
    """The verdict on one independent sub-history.

    ``ok`` is True, False, or None (timed out).  When True, ``linearization`` is a valid
    order of the operations that took effect; when False, ``evidence`` says why.
    ``explored`` counts model steps taken by the search.
    """

    key: Hashable
    operations: tuple[Operation, ...]
    ok: Optional[bool]
    linearization: Optional[tuple[Operation, ...]]
    evidence: Optional[Evidence]
    explored: int


@dataclass(frozen=True)
class CheckResult:
    """The verdict on a history: ``ok`` is True, False, or None when the timeout ran out.

    ``ok`` is False as soon as one partition is not linearizable, None if none failed but
    some were not decided in time, True if all are linearizable.
    """

    ok: Optional[bool]
    partitions: tuple[PartitionResult, ...]
    model: Model = field(repr=False, compare=False)
    elapsed: float = field(default=0.0, compare=False)

    @property
    def evidence(self) -> tuple[Evidence, ...]:
        """One :class:`Evidence` per failing partition."""
        return tuple(p.evidence for p in self.partitions if p.evidence is not None)

    @property
    def failing_operations(self) -> tuple[Operation, ...]:
        """The operations that could not be placed (the ``stuck`` ones of every evidence)."""
        return tuple(op for e in self.evidence for op in e.stuck)

    @property
    def linearization(self) -> Optional[dict[Hashable, tuple[Operation, ...]]]:
        """For a linearizable history, a valid order per partition key; else None."""
        if self.ok is not True:
            return None
        return {p.key: p.linearization for p in self.partitions}

    def explain(self) -> str:
        verdict = {True: "linearizable", False: "NOT linearizable", None: "undecided (timeout)"}
        n = sum(len(p.operations) for p in self.partitions)
        head = (f"{verdict[self.ok]}: {n} operation(s) in {len(self.partitions)} "
                f"partition(s), checked in {self.elapsed:.3f} s")
        return "\n".join([head, *(e.describe() for e in self.evidence)])

    def __bool__(self) -> bool:
        raise TypeError("CheckResult has three outcomes; test result.ok is True / False / None")


def _output(op: Operation) -> Any:
    return op.output if op.ret is not None else UNKNOWN


def _interval(op: Operation) -> str:
    return f"[{op.call:g}, {'?' if op.ret is None else format(op.ret, 'g')}]"


def validate_history(model: Model, history: Iterable[Any]) -> list[Operation]:
    """Return ``history`` as a list, raising ``ValueError`` naming the first bad item."""
    ops = list(history)
    for i, op in enumerate(ops):
        if not isinstance(op, Operation):
            raise ValueError(
                f"history[{i}] is a {type(op).__name__}, not an Operation: {op!r}"
            )
        for name in ("call", "ret"):
            t = getattr(op, name)
            if t is None and name == "ret":
                continue
            if isinstance(t, bool) or not isinstance(t, (int, float)) or math.isnan(t) \
                    or math.isinf(t):
                raise ValueError(f"history[{i}]: {name} time must be a finite number, got {t!r}")
        if op.ret is not None and op.ret < op.call:
            raise ValueError(f"history[{i}]: returns at {op.ret} before its call at {op.call}")
        try:
            model.validate(op.input)
        except ValueError as e:
            raise ValueError(f"history[{i}] (client {op.client_id!r}): {e}") from None
    return ops


def _entries(ops: Sequence[Operation]) -> list[tuple[int, bool]]:
    """Call/return entries ``(op index, is_call)`` in time order (see module docstring)."""
    keyed = []
    for i, op in enumerate(ops):
        zero = op.ret is not None and op.ret == op.call
        keyed.append(((op.call, 1 if zero else 3, i), i, True))
        if op.ret is not None:
            keyed.append(((op.ret, 2 if zero else 0, i), i, False))
    keyed.sort(key=lambda k: k[0])
    return [(i, is_call) for _, i, is_call in keyed]


class _Timeout(Exception):
    pass


def _search(model: Model, ops: Sequence[Operation], deadline: Optional[float]):
    """Run the search on one partition.

    Returns ``(ok, order, explored)``: ``order`` is the linearization (op indices) when
    ok, else the longest prefix found.  Raises :class:`_Timeout` past ``deadline``.
    """
    entries = _entries(ops)
    m = len(entries)
    head, tail = m, m + 1
    nxt = [e + 1 for e in range(m)] + [0, tail]
    prv = [e - 1 for e in range(m)] + [head, m - 1]
    if m:
        nxt[m - 1] = tail
        prv[0] = head
    else:
        nxt[head] = tail
        prv[tail] = head
    op_of = [i for i, _ in entries]
    is_call = [c for _, c in entries]
    match = [-1] * m
    call_entry = [0] * len(ops)
    for e, (i, c) in enumerate(entries):
        if c:
            call_entry[i] = e
        else:
            match[call_entry[i]] = e
    inputs = [op.input for op in ops]
    outputs = [op.output if op.ret is not None else UNKNOWN for op in ops]
    done = [1 if op.ret is not None else 0 for op in ops]
    read_only = [model.read_only(inputs[i], outputs[i]) for i in range(len(ops))]

    completed = sorted((i for i in range(len(ops)) if done[i]), key=lambda i: ops[i].call)
    rank = [0] * len(ops)
    for k, i in enumerate(completed):
        rank[i] = k
    unknown_bit = [0] * len(ops)
    for k, i in enumerate(i for i in range(len(ops)) if not done[i]):
        unknown_bit[i] = 1 << k

    step = model.step
    cache: set = set()
    state = model.init()
    base = window = unknown = 0
    remaining = len(completed)
    frame: Optional[tuple] = None
    depth = best_depth = 0
    best_frame: Optional[tuple] = None
    explored = 0
    e = nxt[head]
    fresh = True
    while remaining:
        chosen = -1
        stutter = False
        while is_call[e]:
            i = op_of[e]
            explored += 1
            if deadline is not None and not explored & 1023 and time.monotonic() > deadline:
                raise _Timeout
            ok, new_state = step(state, inputs[i], outputs[i])
            if ok:
                if done[i]:
                    k = rank[i] - base
                    if k:
                        key = (base, window | (1 << k), unknown, new_state)
                    else:
                        w = window | 1
                        shift = (w ^ (w + 1)).bit_length() - 1
                        key = (base + shift, w >> shift, unknown, new_state)
                else:
                    key = (base, window, unknown | unknown_bit[i], new_state)
                if fresh and read_only[i]:
                    stutter = True
                    chosen = e if key not in cache else -1
                    chosen_key = key
                    break
                if chosen < 0 and key not in cache:
                    chosen, chosen_key = e, key
                    if not fresh:
                        break
            e = nxt[e]
        if chosen >= 0:
            e = chosen
            i = op_of[e]
            cache.add(chosen_key)
            frame = (e, state, base, window, unknown, stutter, frame)
            base, window, unknown, state = chosen_key
            p, n = prv[e], nxt[e]
            nxt[p] = n
            prv[n] = p
            r = match[e]
            if r >= 0:
                p, n = prv[r], nxt[r]
                nxt[p] = n
                prv[n] = p
            remaining -= done[i]
            depth += 1
            if depth > best_depth:
                best_depth, best_frame = depth, frame
            e = nxt[head]
            fresh = True
            continue
        while True:
            if frame is None:
                return False, _unwind(best_frame, op_of), explored
            e, state, base, window, unknown, stutter, frame = frame
            i = op_of[e]
            r = match[e]
            if r >= 0:
                nxt[prv[r]] = r
                prv[nxt[r]] = r
            nxt[prv[e]] = e
            prv[nxt[e]] = e
            remaining += done[i]
            depth -= 1
            if not stutter:
                break
        e = nxt[e]
        fresh = False
    return True, _unwind(frame, op_of), explored


def _unwind(frame: Optional[tuple], op_of: list[int]) -> list[int]:
    order = []
    while frame is not None:
        e, frame = frame[0], frame[-1]
        order.append(op_of[e])
    order.reverse()
    return order


def _evidence(key: Hashable, model: Model, ops: Sequence[Operation],
              prefix: list[int]) -> Evidence:
    state = model.init()
    for i in prefix:
        _, state = model.step(state, ops[i].input, _output(ops[i]))
    placed = set(prefix)
    first_return = min(
        ((ops[i].ret, 2 if ops[i].ret == ops[i].call else 0)
         for i in range(len(ops)) if i not in placed and ops[i].ret is not None),
        default=(math.inf, 0),
    )
    stuck = tuple(
        op for i, op in enumerate(ops)
        if i not in placed
        and (op.call, 1 if op.ret == op.call else 3) < first_return
    )
    return Evidence(key, tuple(ops[i] for i in prefix), state, stuck, model)


def check(model: Model, history: Iterable[Operation],
          timeout: Optional[float] = None) -> CheckResult:
    """Decide whether ``history`` is linearizable with respect to ``model``.

    ``history`` is any iterable of :class:`Operation` in any order.  Each partition of
    ``model.partition(history)`` is checked alone; ``timeout`` (seconds, for the whole
    call) bounds the search, and partitions not decided in time get ``ok=None``.
    Raises ``ValueError`` for items that are not operations, bad times, or inputs the
    model does not know.  Model states must be hashable.
    """
    started = time.monotonic()
    ops = validate_history(model, history)
    if timeout is not None and timeout < 0:
        raise ValueError(f"timeout must be >= 0 seconds, got {timeout!r}")
    deadline = None if timeout is None else started + timeout
    try:
        hash(model.init())
    except TypeError:
        raise ValueError(f"{model!r}: model states must be hashable, "
                         f"init() returned {model.init()!r}") from None
    results = []
    for group in model.partition(ops):
        if not (isinstance(group, tuple) and len(group) == 2
                and all(isinstance(op, Operation) for op in group[1])):
            raise ValueError(f"{model!r}: partition() must return (key, operations) pairs, "
                             f"got {group!r:.200}")
        key, part = group[0], list(group[1])
        try:
            ok, order, explored = _search(model, part, deadline)
        except _Timeout:
            results.append(PartitionResult(key, tuple(part), None, None, None, 0))
            continue
        except TypeError as e:
            if "unhashable" in str(e):
                raise ValueError(f"{model!r}: model states must be hashable ({e})") from None
            raise
        if ok:
            results.append(PartitionResult(
                key, tuple(part), True, tuple(part[i] for i in order), None, explored))
        else:
            results.append(PartitionResult(
                key, tuple(part), False, None, _evidence(key, model, part, order), explored))
    verdicts = [r.ok for r in results]
    overall: Optional[bool]
    if False in verdicts:
        overall = False
    elif None in verdicts:
        overall = None
    else:
        overall = True
    return CheckResult(overall, tuple(results), model, time.monotonic() - started)
