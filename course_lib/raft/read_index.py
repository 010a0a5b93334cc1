"""Linearizable reads without writing the log: ReadIndex (Ongaro thesis §6.4).

The leader records its commit index as the read point, then confirms it is still
the leader by a round of heartbeats: each AppendEntries carries the latest read
round (``read_ctx``) and every reply from the current term acknowledges it.  Once a
quorum has acknowledged a round, every read up to it may be served as soon as the
state machine has applied the read point.  Reads asked before the leader committed
an entry of its own term wait for it (its commit index may be stale until then).
"""

from __future__ import annotations

from typing import Any


class ReadIndexQueue:
    __slots__ = ("seq", "pending", "deferred")

    def __init__(self) -> None:
        self.seq = 0                       # the latest read round started (carried in AppendEntries)
        self.pending: list = []            # [round, ctx, index, acks], oldest first
        self.deferred: list = []           # ctxs waiting for this term's first commit

    def clear(self) -> None:
        self.pending = []
        self.deferred = []

    def defer(self, ctx: Any) -> None:
        self.deferred.append(ctx)

    def release_deferred(self, node) -> None:
        deferred, self.deferred = self.deferred, []
        for ctx in deferred:
            node.start_read(ctx)

    def add(self, ctx: Any, index: int, self_id: str) -> None:
        self.seq += 1
        self.pending.append([self.seq, ctx, index, {self_id}])

    def ack(self, peer: str, round_: int, voters: tuple, quorum: int) -> list:
        """Record that ``peer`` answered round ``round_``; return reads now confirmed."""
        for req in self.pending:
            if req[0] > round_:
                break
            req[3].add(peer)
        done = []
        while self.pending:
            req = self.pending[0]
            if sum(1 for v in voters if v in req[3]) < quorum:
                break
            self.pending.pop(0)
            done.append((req[1], req[2]))
        return done
