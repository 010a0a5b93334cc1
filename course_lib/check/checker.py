"""Linearizability checking: P-compositional, Wing & Gong / Lowe search, unique-values zones.

A history is linearizable for a model when the operations can be put in one sequential
order that (1) the model accepts and (2) respects real time: if ``a`` returned before
``b`` was called, ``a`` comes first.  Operations with an unknown outcome (``ret is
None``) may take effect at any time after their call, or never.

How :func:`check` decides, as Porcupine does and a little more:

1. the history is split by ``model.partition`` into independent sub-histories
   (P-compositionality, Herlihy & Wing 1990: linearizable iff each one is);
2. in each partition, unknown-outcome operations the model calls read-only, or whose
   effect no output shows (:meth:`~Model.unobserved`), are dropped: they may not have
   happened, and removing them from a valid order leaves it valid.  Kept, such an
   operation never retires and the search tries it at every point: on a KV history with
   7 of them pending this was 1.2 million model steps instead of 65;
3. a partition of plain reads and blind writes of distinct values (the model's
   :meth:`~Model.register_view`) is decided in ``O(n log n)`` by the zone conditions
   (:mod:`course_lib.check.zones`), without search;
4. the others go to the just-in-time search (:mod:`course_lib.check.search`): a doubly
   linked list of call/return entries, lift/unlift, a cache of failed
   ``(linearized bitset, state)`` configurations, greedy reads;
5. searches of different partitions are interleaved, in slices of model steps that
   double each round, so a cheap failing partition is found before an expensive one is
   finished; by default the check stops at the first failing partition (the others are
   reported as not checked, ``method="not checked"``), as Porcupine does.

Real-time order at equal timestamps: a return at time ``t`` happens before a call at
``t``, so ``a`` with ``a.ret == b.call`` precedes ``b``; two zero-length operations at
the same instant are concurrent (:func:`~course_lib.check.history.endpoint_order`).

Cost: the search explores at most the distinct configurations, exponential in the
number of operations in flight at once on one partition in the worst case.  Measured
limits (``benchmarks/bench_check.py``, BENCHMARKS.md): about 9 appends in flight on one
key is more than 10 s; unknown-outcome writes that some read did observe stay candidates
for ever and cost the most (3 of them on one key: 1 million model steps instead of
2,500).  Partitioning, the dropped unknown operations and the unique-values path keep
the common histories far below that.
"""

from __future__ import annotations

import math
import time
from collections.abc import Generator, Hashable, Iterable
from dataclasses import dataclass, field
from typing import Any, Optional

from .history import Operation, endpoint_order, ranks_of
from .models import UNKNOWN, Model
from .search import SearchOutcome, linearize
from .zones import longest_prefix, unique_writes, zone_order

#: ``PartitionResult.method`` values.
SEARCH, UNIQUE_VALUES, TIMEOUT, NOT_CHECKED = "search", "unique values", "timeout", "not checked"

_FIRST_SLICE = 4          # yields (of 1,024 model steps) per partition in round one


@dataclass(frozen=True)
class Evidence:
    """Why one partition is not linearizable, as data (a plot draws it).

    - ``prefix``: the longest linearizable prefix found, in linearization order: a
      sequence the model accepts that respects real time (for the search, the most
      completed operations it could linearize; for the unique-values path, every
      operation called before ``failed`` returned that could take effect);
    - ``prefix_ids``: the same operations as indices into the history given to
      :func:`check` (``None`` for an operation a custom ``partition`` made up);
    - ``state``: the model state after the prefix, i.e. before ``failed``;
    - ``failed``: the first operation that cannot be placed: completed, not in the
      prefix, the first of the unplaced ones to return — real time forbids going on
      without it and the model rejects it in ``state``; ``failed_id`` its index;
    - ``stuck``: every operation real time allows next (called before ``failed``
      returned, not in the prefix) that the model rejects in ``state``, ``failed``
      among them, in call order.
    """

    key: Hashable
    prefix: tuple[Operation, ...]
    state: Hashable
    stuck: tuple[Operation, ...]
    model: Model = field(repr=False, compare=False)
    failed: Optional[Operation] = None
    prefix_ids: tuple[Optional[int], ...] = ()
    failed_id: Optional[int] = None

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
        if self.failed is not None:
            op = self.failed
            lines.append(f"  cannot be placed next: client {op.client_id!r}: "
                         f"{show(op.input, _output(op))} {_interval(op)}")
        others = [op for op in self.stuck if op is not self.failed]
        if others:
            lines.append("  nor can these, which real time also allows next:")
        for op in others:
            lines.append(f"    client {op.client_id!r}: {show(op.input, _output(op))} "
                         f"{_interval(op)}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.describe()


@dataclass(frozen=True)
class PartitionResult:
    """The verdict on one independent sub-history.

    ``ok`` is True, False, or None (undecided).  When True, ``linearization`` is a valid
    order of the operations that took effect; when False, ``evidence`` says why.
    ``explored`` counts model steps taken by the search.  ``method`` says how it was
    decided: ``"search"``, ``"unique values"`` (the zone conditions, no search), or why
    not: ``"timeout"``, ``"not checked"`` (another partition failed first).
    """

    key: Hashable
    operations: tuple[Operation, ...]
    ok: Optional[bool]
    linearization: Optional[tuple[Operation, ...]]
    evidence: Optional[Evidence]
    explored: int
    method: str = SEARCH


@dataclass(frozen=True)
class CheckResult:
    """The verdict on a history: ``ok`` is True, False, or None when undecided.

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
        skipped = sum(p.method == NOT_CHECKED for p in self.partitions)
        if skipped:
            head += f" ({skipped} partition(s) not checked after the first failure)"
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


class _Partition:
    """One sub-history on its way to a :class:`PartitionResult`."""

    def __init__(self, model: Model, key: Hashable, ops: list[Operation],
                 ids: list[Optional[int]]) -> None:
        self.model, self.key, self.ops, self.ids = model, key, ops, ids
        # Unknown-outcome operations that are read-only, or whose effect no output shows,
        # constrain nothing: leave them out (they did not take effect).
        unknown = [j for j, op in enumerate(ops)
                   if op.ret is None and not model.read_only(op.input, UNKNOWN)]
        hidden = model.unobserved(
            [ops[j].input for j in unknown],
            [(op.input, op.output) for op in ops if op.ret is not None]) if unknown else []
        if len(hidden) != len(unknown):
            raise ValueError(f"{model!r}: unobserved() must return one bool per unknown "
                             f"operation, got {hidden!r:.200}")
        kept_unknown = {j for j, h in zip(unknown, hidden) if not h}
        self.kept = [j for j, op in enumerate(ops) if op.ret is not None or j in kept_unknown]
        self.order = endpoint_order(ops)
        self.call_rank, self.ret_rank = ranks_of(self.order, len(ops))
        self.result: Optional[PartitionResult] = None
        self.search: Optional[Generator[int, None, SearchOutcome]] = None
        self.explored = 0

    def try_unique_values(self) -> bool:
        """Decide by the zone conditions if the partition qualifies (see zones.py)."""
        model = self.model
        views = []
        for j in self.kept:
            view = model.register_view(self.ops[j].input)
            if view is None:
                return False
            views.append(view)
        if not views:
            return False
        initial = model.register_initial()
        views = [(kind, self.ops[j].output if kind == "read" else value)
                 for (kind, value), j in zip(views, self.kept)]
        write_of = unique_writes(views, initial)
        if write_of is None:
            return False
        completed = [self.ops[j].ret is not None for j in self.kept]
        ranks = ([self.call_rank[j] for j in self.kept], [self.ret_rank[j] for j in self.kept])
        args = (views, completed, *ranks, write_of, initial)
        order = zone_order(*args)
        if order is not None:
            self.succeed([self.kept[k] for k in order], 0, UNIQUE_VALUES)
        else:
            prefix, failed = longest_prefix(*args)
            self.fail([self.kept[k] for k in prefix], self.kept[failed], 0, UNIQUE_VALUES)
        return True

    def start_search(self) -> None:
        position = {j: k for k, j in enumerate(self.kept)}
        entries = [(position[j], is_call) for j, is_call in self.order if j in position]
        self.search = linearize(self.model, [self.ops[j] for j in self.kept], entries)

    def run(self, slices: int, deadline: Optional[float]) -> bool:
        """Advance the search by up to ``slices`` × 1,024 model steps; False if the
        deadline passed first."""
        assert self.search is not None
        try:
            for _ in range(slices):
                if deadline is not None and time.monotonic() > deadline:
                    return False
                self.explored = next(self.search)
        except StopIteration as stop:
            outcome: SearchOutcome = stop.value
            order = [self.kept[k] for k in outcome.order]
            if outcome.ok:
                self.succeed(order, outcome.explored, SEARCH)
            else:
                placed = set(order)
                failed = min((j for j in self.kept
                              if self.ops[j].ret is not None and j not in placed),
                             key=lambda j: self.ret_rank[j])
                self.fail(order, failed, outcome.explored, SEARCH)
        except TypeError as e:
            if "unhashable" in str(e):
                raise ValueError(f"{self.model!r}: model states must be hashable ({e})") from None
            raise
        return True

    def succeed(self, order: list[int], explored: int, method: str) -> None:
        ops = self.ops
        if method == UNIQUE_VALUES:       # built from register_view(): step() must agree
            state = self.model.init()
            for j in order:
                ok, state = self.model.step(state, ops[j].input, _output(ops[j]))
                if not ok:
                    raise RuntimeError(
                        f"{self.model!r}: the order found for partition {self.key!r} is "
                        f"rejected by step() at {ops[j]!r}; register_view() disagrees "
                        f"with step()")
        self.result = PartitionResult(self.key, tuple(ops), True,
                                      tuple(ops[j] for j in order), None, explored, method)

    def fail(self, prefix: list[int], failed: int, explored: int, method: str) -> None:
        model, ops = self.model, self.ops
        state = model.init()
        for j in prefix:
            ok, state = model.step(state, ops[j].input, _output(ops[j]))
            if not ok:
                raise RuntimeError(f"{model!r}: the prefix found for partition {self.key!r} "
                                   f"is rejected by step() at {ops[j]!r}")
        placed = set(prefix)
        limit = self.ret_rank[failed]
        stuck = [j for j in self.kept
                 if j not in placed and self.call_rank[j] < limit
                 and not model.step(state, ops[j].input, _output(ops[j]))[0]]
        if failed not in stuck:
            raise RuntimeError(f"{model!r}: the operation found unplaceable in partition "
                               f"{self.key!r} is accepted in the state before it: {ops[failed]!r}")
        stuck.sort(key=lambda j: self.call_rank[j])
        evidence = Evidence(
            self.key, tuple(ops[j] for j in prefix), state, tuple(ops[j] for j in stuck), model,
            failed=ops[failed], prefix_ids=tuple(self.ids[j] for j in prefix),
            failed_id=self.ids[failed])
        self.result = PartitionResult(self.key, tuple(ops), False, None, evidence, explored,
                                      method)

    def undecided(self, method: str) -> PartitionResult:
        return PartitionResult(self.key, tuple(self.ops), None, None, None, self.explored, method)


def check(model: Model, history: Iterable[Operation], timeout: Optional[float] = None,
          *, all_partitions: bool = False) -> CheckResult:
    """Decide whether ``history`` is linearizable with respect to ``model``.

    ``history`` is any iterable of :class:`Operation` in any order.  Each partition of
    ``model.partition(history)`` is checked alone (see the module docstring for how);
    ``timeout`` (seconds, for the whole call) bounds the search, and partitions not
    decided in time get ``ok=None``.  The check stops at the first partition found not
    linearizable, leaving the undecided ones ``ok=None`` (``method="not checked"``);
    ``all_partitions=True`` decides every partition, to get evidence for each.
    Raises ``ValueError`` for items that are not operations, bad times, inputs the model
    does not know, a negative timeout, or unhashable model states.
    """
    started = time.monotonic()
    ops = validate_history(model, history)
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float))
                                or math.isnan(timeout) or timeout < 0):
        raise ValueError(f"timeout must be a number of seconds >= 0 (or None), got {timeout!r}")
    if not isinstance(all_partitions, bool):
        raise ValueError(f"all_partitions must be True or False, got {all_partitions!r}")
    deadline = None if timeout is None else started + timeout
    try:
        hash(model.init())
    except TypeError:
        raise ValueError(f"{model!r}: model states must be hashable, "
                         f"init() returned {model.init()!r}") from None
    index_of = {id(op): i for i, op in enumerate(ops)}
    partitions = []
    for group in model.partition(ops):
        if not (isinstance(group, tuple) and len(group) == 2
                and all(isinstance(op, Operation) for op in group[1])):
            raise ValueError(f"{model!r}: partition() must return (key, operations) pairs, "
                             f"got {group!r:.200}")
        part = list(group[1])
        partitions.append(_Partition(model, group[0], part,
                                     [index_of.get(id(op)) for op in part]))

    def failed_yet() -> bool:
        return not all_partitions and any(p.result is not None and p.result.ok is False
                                          for p in partitions)

    pending = []
    for p in partitions:
        if failed_yet():
            break
        if not p.try_unique_values():
            p.start_search()
            pending.append(p)
    slices = _FIRST_SLICE
    timed_out = False
    while pending and not failed_yet():
        for p in pending:
            if not p.run(slices, deadline):
                timed_out = True
                break
            if p.result is not None and p.result.ok is False and not all_partitions:
                break
        pending = [p for p in pending if p.result is None]
        if timed_out:
            break
        slices *= 2
    results = []
    for p in partitions:
        if p.result is not None:
            results.append(p.result)
        else:
            results.append(p.undecided(TIMEOUT if timed_out else NOT_CHECKED))
    verdicts = [r.ok for r in results]
    overall: Optional[bool]
    if False in verdicts:
        overall = False
    elif None in verdicts:
        overall = None
    else:
        overall = True
    return CheckResult(overall, tuple(results), model, time.monotonic() - started)
