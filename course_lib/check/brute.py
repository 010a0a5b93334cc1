"""A brute-force linearizability reference, for tiny histories and for testing the checker.

It tries every sequential order that respects real time, and every choice of which
unknown-outcome operations took effect, running the model from its initial state — no
linked list, no memoisation, no partitioning.  Exponential: keep histories to about
eight operations.
"""

from __future__ import annotations

from collections.abc import Sequence

from .history import Operation
from .models import UNKNOWN, Model


def precedes(a: Operation, b: Operation) -> bool:
    """Real-time order: ``a`` returned no later than ``b`` was called.

    A return at the same instant as a call counts as before it, except between two
    zero-length operations at one instant, which are concurrent.
    """
    if a.ret is None or a is b:
        return False
    if a.ret < b.call:
        return True
    return a.ret == b.call and not (a.call == a.ret and b.call == b.ret)


def brute_force_linearizable(model: Model, history: Sequence[Operation]) -> bool:
    """True if some real-time-respecting order of ``history`` is accepted by ``model``.

    All completed operations must appear in the order; unknown-outcome operations may
    appear (anywhere after their predecessors) or be left out.
    """
    ops = list(history)
    n = len(ops)
    before = [
        [j for j in range(n) if precedes(ops[j], ops[i])] for i in range(n)
    ]
    outputs = [op.output if op.ret is not None else UNKNOWN for op in ops]
    completed = [i for i in range(n) if ops[i].ret is not None]

    def extend(state, placed: frozenset) -> bool:
        if all(i in placed for i in completed):
            return True
        for i in range(n):
            if i in placed or not all(j in placed for j in before[i]):
                continue
            ok, new_state = model.step(state, ops[i].input, outputs[i])
            if ok and extend(new_state, placed | {i}):
                return True
        return False

    return extend(model.init(), frozenset())
