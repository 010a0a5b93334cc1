"""Check 1, consistency testing: ``is_linearizable(history)`` for a read/write register,
by search — hand-made cases, then agreement with :func:`course_lib.check.check` on
hundreds of random small histories."""

from __future__ import annotations

import random
from typing import Callable, Sequence

from ...check import (
    Operation,
    StaleRegister,
    check,
    register,
    register_workload,
    simulate_history,
)
from .. import expect


def _show(history: Sequence[Operation]) -> str:
    parts = []
    for op in history:
        kind, arg = op.input
        what = f"write({arg!r})" if kind == "write" else "read()"
        out = "" if kind == "write" else (f" -> {op.output!r}" if op.ret is not None else " -> ?")
        end = "?" if op.ret is None else f"{op.ret:g}"
        parts.append(f"client {op.client_id}: {what}{out} [{op.call:g}, {end}]")
    return "; ".join(parts)


def _op(client, input, call, output=None, ret=None) -> Operation:
    return Operation(client, input, call, output, ret)


W = lambda v: ("write", v)          # noqa: E731
R = ("read", None)

_LIN_TABLE = [
    ([_op(0, W(1), 0, None, 2), _op(1, R, 3, 1, 4)], True, "a read after a write sees it"),
    ([_op(0, W(1), 0, None, 2), _op(1, R, 3, None, 4)], False,
     "a read that starts after write(1) returned cannot see the initial None"),
    ([_op(0, W(1), 0, None, 5), _op(1, R, 1, None, 2), _op(2, R, 3, 1, 4)], True,
     "reads concurrent with a write may see the old value, then the new one"),
    ([_op(0, W(1), 0, None, 5), _op(1, R, 1, 1, 2), _op(2, R, 3, None, 4)], False,
     "once a read saw 1, a later read cannot go back to None"),
    ([_op(0, W(1), 0, None, 1), _op(0, W(2), 2, None, 3), _op(1, R, 4, 1, 5)], False,
     "a stale read: write(2) completed before the read began"),
    ([_op(0, W(1), 0), _op(1, R, 3, 1, 4)], True,
     "a write with unknown outcome (ret=None) may have taken effect"),
    ([_op(0, W(1), 0), _op(1, R, 3, None, 4)], True,
     "a write with unknown outcome may also never take effect"),
    ([_op(0, W(1), 0, None, 2), _op(1, R, 2, 1, 3)], True,
     "a return at time t comes before a call at the same time t"),
    ([_op(0, W(1), 0, None, 2), _op(1, W(2), 2, None, 3), _op(2, R, 3, 1, 4)], False,
     "write(1) returned at 2 and write(2) began at 2: write(2) is later, so read() -> 1 after it is stale"),
    ([_op(0, W(1), 0, None, 4), _op(1, W(2), 1, None, 3), _op(2, R, 5, 1, 6), _op(3, R, 7, 2, 8)],
     False, "two concurrent writes are ordered once; the register cannot flip back from 1 to 2"),
    ([], True, "the empty history is linearizable"),
]


def consistency_testing(is_linearizable: Callable, seeds: Sequence[int] = range(300)) -> str:
    for history, want, why in _LIN_TABLE:
        got = is_linearizable(list(history))
        expect(got is want, f"is_linearizable returned {got!r}, expected {want} for "
                            f"[{_show(history)}] — {why}")
    model = register()
    verdicts = {True: 0, False: 0}
    for seed in seeds:
        rng = random.Random(seed)
        store = StaleRegister(p=rng.choice((0.0, 0.3, 0.6)), seed=seed)
        history = simulate_history(store, register_workload(), clients=rng.choice((2, 3)),
                                   ops=rng.randint(2, 7), seed=seed,
                                   unknown_rate=rng.choice((0.0, 0.2)),
                                   integer_times=rng.random() < 0.5)
        want = check(model, history).ok
        got = is_linearizable(list(history))
        expect(got is want, f"seed {seed}: is_linearizable returned {got!r}, the course's checker "
                            f"says {want} for [{_show(history)}] — replay with "
                            f"consistency_testing(is_linearizable, seeds=[{seed}])")
        verdicts[want] += 1
    return (f"{len(_LIN_TABLE)} hand-made cases; agreed with course_lib.check.check on "
            f"{len(seeds)} random histories ({verdicts[True]} linearizable, "
            f"{verdicts[False]} not)")
