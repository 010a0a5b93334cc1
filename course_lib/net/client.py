"""A blocking key-value client of a :class:`~.cluster.ProcessCluster` (one per thread).

The protocol is the simulator's (:mod:`course_lib.raft.client`): a
:class:`~course_lib.raft.client.ClientRequest` ``(session, seq, op)`` to the server
believed to lead; a :class:`~course_lib.raft.client.ClientReply` back.  On "not leader"
it follows the hint; on silence for ``retry_ms`` (a paused or cut-off server) it tries
another — always with the same ``seq``, so the servers' sessions apply the command at
most once.  After ``timeout_ms`` it gives up: :class:`ClientTimeout`, and the history
records the operation with ``ret=None`` (outcome unknown).  When a server does not
answer and the cluster reports a node whose core raised, it gives up at once with the
:class:`NodeCrashed` (recorded the same way): a bug to read in that
node's traceback, not a timeout to wait for.

Every session name carries a random token, so a new client object never collides with
an old one's sessions left in a restarted cluster's state machine.
"""

from __future__ import annotations

import os
import random
import socket
import threading
import time
from typing import Any, Optional

from ..check.history import Operation
from ..raft.client import ClientReply, ClientRequest, ClientTimeout, KVCommands
from ..raft.kv import validate_op
from . import codec


class NodeCrashed(RuntimeError):
    """A node process that had started exited by itself with an error: its core or its
    driver raised (the message holds the node's traceback tail and its log's path)."""


class NetClient(KVCommands):
    def __init__(self, client_id: str, cluster, *, retry_ms: float = 500,
                 timeout_ms: float = 5000) -> None:
        self.client_id = client_id
        self.cluster = cluster
        self.retry_ms = retry_ms
        self.timeout_ms = timeout_ms
        self.session = f"{client_id}/{os.urandom(4).hex()}"
        self.seq = 0
        self.leader_guess: Optional[str] = None
        self.rng = random.Random()
        self._socks: dict[str, socket.socket] = {}
        self._busy = threading.Lock()

    # -- API (put / append / get: KVCommands) --------------------------------------------------
    def close(self) -> None:
        for s in self._socks.values():
            s.close()
        self._socks.clear()

    # -- protocol -------------------------------------------------------------------------------
    def _run(self, op: tuple, timeout_ms: Optional[float]) -> Any:
        op = validate_op(op)
        if timeout_ms is None:
            timeout_ms = self.timeout_ms
        if not isinstance(timeout_ms, (int, float)) or isinstance(timeout_ms, bool) or timeout_ms <= 0:
            raise ValueError(f"timeout_ms must be > 0, got {timeout_ms!r}")
        if not self._busy.acquire(blocking=False):
            raise ValueError(f"client {self.client_id!r} already has an operation in flight; "
                             f"use one client object per thread")
        try:
            self.seq += 1
            call = time.time()
            try:
                result = self._attempts(op, self.seq, time.monotonic() + timeout_ms / 1000)
            except (ClientTimeout, NodeCrashed):
                self.cluster._record(Operation(self.client_id, op, call, None, None))
                raise
            self.cluster._record(Operation(self.client_id, op, call, result, max(call, time.time())))
            return result
        finally:
            self._busy.release()

    def _pick(self, avoid: Optional[str]) -> str:
        if self.leader_guess is not None:
            return self.leader_guess
        members = [m for m in self.cluster.members if m != avoid] or list(self.cluster.members)
        return self.rng.choice(members)

    def _drop(self, nid: str) -> None:
        s = self._socks.pop(nid, None)
        if s is not None:
            s.close()

    def _attempts(self, op: tuple, seq: int, deadline: float) -> Any:
        last = None
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ClientTimeout(f"client {self.client_id!r}: {op!r} timed out (outcome unknown)")
            target = self._pick(last)
            self.leader_guess = target
            wait = min(self.retry_ms / 1000, remaining)
            try:
                sock = self._socks.get(target)
                if sock is None:
                    sock = socket.create_connection(self.cluster.address(target), timeout=wait)
                    codec.send_frame(sock, ("client",))
                    self._socks[target] = sock
                sock.settimeout(wait)
                codec.send_frame(sock, ClientRequest(self.client_id, target, self.session, seq, op))
                while True:
                    reply = codec.recv_frame(sock)
                    if isinstance(reply, ClientReply) and reply.seq == seq:
                        break                        # earlier replies are late answers to retries
            except (OSError, ValueError):
                self._drop(target)                   # silence, refused, reset: try another
                self.leader_guess = None
                last = target
                crashed = getattr(self.cluster, "raise_for_crashed", None)
                if crashed is not None:
                    crashed()                        # a core that raised: say so, now
                continue
            if reply.ok:
                return reply.result
            last = target
            if reply.leader_hint is not None and reply.leader_hint != target:
                self.leader_guess = reply.leader_hint
            else:
                self.leader_guess = None             # nobody knows a leader yet: back off
                time.sleep(min(0.05, max(0.0, deadline - time.monotonic())))
