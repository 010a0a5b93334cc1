"""Histories of concurrent operations, as recorded by clients.

An :class:`Operation` is one client call: what was asked (``input``), when it was
invoked (``call``), what came back (``output``) and when (``ret``).  Times are in any
single unit per history (simulated ms for the simulator, seconds for real runs).

``ret is None`` means the outcome is unknown (the client timed out or crashed): the
operation may or may not have taken effect, at any time after ``call``.  Its
``output`` is then ``None`` too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Hashable, Optional


@dataclass(frozen=True)
class Operation:
    client_id: Hashable
    input: Any
    call: float
    output: Any = None
    ret: Optional[float] = None

    def __post_init__(self) -> None:
        if self.ret is not None and self.ret < self.call:
            raise ValueError(
                f"operation {self.input!r} of client {self.client_id!r} returns at "
                f"{self.ret} before it was called at {self.call}"
            )
        if self.ret is None and self.output is not None:
            raise ValueError(
                f"operation {self.input!r} of client {self.client_id!r} has an output "
                f"but no return time; an unknown outcome has output=None"
            )

    @property
    def completed(self) -> bool:
        """True when the outcome is known (the call returned)."""
        return self.ret is not None


def endpoint_order(ops: "list[Operation] | tuple[Operation, ...]") -> list[tuple[int, bool]]:
    """Every call and return of ``ops`` as ``(op index, is_call)``, in real-time order.

    The order is total and encodes real-time precedence exactly: ``a`` precedes ``b``
    (``a`` returned no later than ``b`` was called) iff ``a``'s return comes before
    ``b``'s call.  Ties at one instant sort by phase: 0 = return of a non-zero-length
    operation, 1 = call of a zero-length one, 2 = return of a zero-length one, 3 = call
    of a non-zero-length one — so a return at ``t`` precedes a call at ``t``, except that
    two zero-length operations at the same instant are concurrent.  An operation whose
    outcome is unknown (``ret is None``) has only its call.
    """
    keyed = []
    for i, op in enumerate(ops):
        zero = op.ret is not None and op.ret == op.call
        keyed.append(((op.call, 1 if zero else 3, i), i, True))
        if op.ret is not None:
            keyed.append(((op.ret, 2 if zero else 0, i), i, False))
    keyed.sort(key=lambda k: k[0])
    return [(i, is_call) for _, i, is_call in keyed]


def endpoint_ranks(ops: "list[Operation] | tuple[Operation, ...]") -> tuple[list[int], list[int]]:
    """``(call_rank, ret_rank)``: each operation's positions in :func:`endpoint_order`.

    All ranks are distinct; an unknown outcome's ``ret_rank`` is ``len(ops) * 2 + i``,
    after every real endpoint, as if it returned after the end of the history.
    """
    return ranks_of(endpoint_order(ops), len(ops))


def ranks_of(order: list[tuple[int, bool]], n: int) -> tuple[list[int], list[int]]:
    """:func:`endpoint_ranks` from an already computed :func:`endpoint_order` of ``n`` ops."""
    call_rank = [0] * n
    ret_rank = [2 * n + i for i in range(n)]
    for position, (i, is_call) in enumerate(order):
        if is_call:
            call_rank[i] = position
        else:
            ret_rank[i] = position
    return call_rank, ret_rank
