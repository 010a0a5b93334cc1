"""A key-value client with a session, hosted by the simulator (thesis §6.3).

One operation at a time per client (a client is a sequential process, as the
linearizability checker assumes); many clients may run at once.  The client sends its
request to the server it believes leads; on a "not leader" reply it follows the hint,
and when no reply comes within ``retry_ms`` it tries the next server — always with the
same sequence number, so the state machine applies the command at most once.  After
``timeout_ms`` the operation is given up: its outcome is unknown (``ret is None``).

:class:`ClosedLoopClients` keeps a number of such clients busy (a load generator: each
submits its next operation when its last one ends); the workloads are plain functions
``(rng, client_id, n) -> op`` so a real cluster's load threads draw the same operations.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence

from ..sim import Process
from .kv import validate_op


@dataclass(frozen=True, slots=True)
class ClientRequest:
    src: str
    dst: str
    session: str
    seq: int
    op: tuple


@dataclass(frozen=True, slots=True)
class ClientReply:
    src: str
    dst: str
    seq: int
    ok: bool
    result: Any = None
    leader_hint: Optional[str] = None


class ClientTimeout(TimeoutError):
    pass


class ClientOp:
    """A submitted operation: poll ``done``; then ``result`` (``timed_out`` if unknown)."""
    __slots__ = ("client_id", "input", "call", "seq", "done", "result", "ret", "timed_out")

    def __init__(self, client_id, op, call, seq) -> None:
        self.client_id = client_id
        self.input = op
        self.call = call
        self.seq = seq
        self.done = False
        self.result = None
        self.ret: Optional[float] = None
        self.timed_out = False

    def __repr__(self) -> str:
        return (f"ClientOp({self.client_id!r}, {self.input!r}, call={self.call}, "
                f"done={self.done}, result={self.result!r}, ret={self.ret})")


class KVCommands:
    """``put`` / ``append`` / ``get`` as one blocking call each, for a client whose
    ``_run(op, timeout_ms)`` submits ``op`` and returns its result (simulated or real)."""

    def _run(self, op: tuple, timeout_ms: Optional[float]):
        raise NotImplementedError

    def put(self, key: str, value: str, timeout_ms: Optional[float] = None) -> None:
        return self._run(("put", key, value), timeout_ms)

    def append(self, key: str, value: str, timeout_ms: Optional[float] = None) -> None:
        return self._run(("append", key, value), timeout_ms)

    def get(self, key: str, timeout_ms: Optional[float] = None) -> str:
        return self._run(("get", key), timeout_ms)


class RaftClient(KVCommands, Process):
    ticking = False

    def __init__(self, client_id: str, cluster, *, retry_ms: float, timeout_ms: float) -> None:
        super().__init__(client_id)
        self.cluster = cluster
        self.retry_ms = retry_ms
        self.timeout_ms = timeout_ms
        self.rng = cluster.sim.random.stream(f"client:{client_id}")
        self.incarnation = 0
        self.seq = 0
        self.current: Optional[ClientOp] = None
        self.leader_guess: Optional[str] = None
        self._attempt = 0
        self.ops: list[ClientOp] = []
        #: called as ``on_complete(op)`` when an operation finishes or times out
        #: (e.g. a closed-loop load generator submits the next operation from it)
        self.on_complete = None

    @property
    def alive(self) -> bool:
        return self.sim.is_alive(self.node_id)

    @property
    def session(self) -> str:
        return f"{self.node_id}/{self.incarnation}"

    # -- API -------------------------------------------------------------------------
    def submit(self, op: tuple, timeout_ms: Optional[float] = None) -> ClientOp:
        """Start ``op`` without waiting; drive the simulation and poll ``op.done``."""
        op = validate_op(op)
        if not self.sim.is_alive(self.node_id):
            raise ValueError(f"client {self.node_id!r} is down")
        if self.current is not None and not self.current.done:
            raise ValueError(f"client {self.node_id!r} already has an operation in flight: "
                             f"{self.current.input!r}; use another client for concurrency")
        if timeout_ms is None:
            timeout_ms = self.timeout_ms
        if not isinstance(timeout_ms, (int, float)) or timeout_ms <= 0:
            raise ValueError(f"timeout_ms must be > 0, got {timeout_ms!r}")
        self.seq += 1
        handle = ClientOp(self.node_id, op, self.sim.now, self.seq)
        self.current = handle
        self.ops.append(handle)
        self.cluster._ops.append(handle)
        self.sim.trace.record(self.sim.now, "client_call", self.node_id, (self.seq, op))
        self.sim.scheduler.schedule(timeout_ms, self._on_deadline, handle)
        self._send()
        return handle

    def _run(self, op: tuple, timeout_ms: Optional[float]):
        handle = self.submit(op, timeout_ms)
        self.cluster.sim.run_until(lambda: handle.done, (timeout_ms or self.timeout_ms) + 1)
        if handle.timed_out or not handle.done:
            raise ClientTimeout(f"client {self.node_id!r}: {op!r} timed out (outcome unknown)")
        return handle.result

    # -- protocol --------------------------------------------------------------------
    def _pick_server(self) -> str:
        members = self.cluster.members
        if self.leader_guess in members:
            return self.leader_guess
        return members[self.rng.randrange(len(members))]

    def _send(self) -> None:
        op = self.current
        target = self._pick_server()
        self.leader_guess = target
        self._attempt += 1
        self.sim.send(self.node_id, target, ClientRequest(self.node_id, target, self.session, op.seq, op.input))
        self.sim.scheduler.schedule(self.retry_ms, self._on_retry, op, self._attempt)

    def _on_retry(self, op: ClientOp, attempt: int) -> None:
        if op is self.current and not op.done and attempt == self._attempt:
            self.leader_guess = None             # silence: try another server
            self._send()

    def _resend(self, op: ClientOp, attempt: int) -> None:
        if op is self.current and not op.done and attempt == self._attempt:
            self._send()

    def on_message(self, src: str, msg: ClientReply) -> None:
        op = self.current
        if op is None or op.done or msg.seq != op.seq:
            return                                   # a late or duplicated reply
        if msg.ok:
            self._finish(op, msg.result)
            return
        if msg.leader_hint is not None and msg.leader_hint != src:
            self.leader_guess = msg.leader_hint
            self._send()
        else:
            self.leader_guess = None
            # nobody knows a leader yet: back off a little before the next try
            self._attempt += 1
            self.sim.scheduler.schedule(self.retry_ms / 4, self._resend, op, self._attempt)

    def _finish(self, op: ClientOp, result: Any) -> None:
        op.done = True
        op.result = result
        op.ret = self.sim.now
        self.sim.trace.record(self.sim.now, "client_return", self.node_id, (op.seq, result))
        if self.on_complete is not None:
            self.on_complete(op)

    def _on_deadline(self, op: ClientOp) -> None:
        if not op.done:
            op.done = True
            op.timed_out = True
            self.sim.trace.record(self.sim.now, "client_timeout", self.node_id, (op.seq,))
            if self.on_complete is not None:
                self.on_complete(op)

    def on_crash(self) -> None:
        op = self.current
        if op is not None and not op.done:
            op.done = True
            op.timed_out = True
        self.current = None

    def on_restart(self) -> None:
        # a new incarnation: a new session, since the old sequence numbers are lost
        self.incarnation += 1
        self.seq = 0
        self.leader_guess = None


# ----------------------------------------------------------------------------- load
APPEND_KEYS = ("a", "b")      # append-only keys: exactly-once and prefix checks
PUT_KEY = "c"                 # put / get key: checked by the linearizability checker


def mixed_workload(rng: random.Random, client_id: str, n: int) -> tuple:
    """The campaigns' mix: appends and reads of ``APPEND_KEYS``, puts and reads of
    ``PUT_KEY`` (``n`` numbers the operation, so appended values are unique)."""
    r = rng.random()
    if r < 0.35:
        return ("append", rng.choice(APPEND_KEYS), f"{client_id}.{n};")
    if r < 0.65:
        return ("get", rng.choice(APPEND_KEYS))
    if r < 0.8:
        return ("put", PUT_KEY, str(rng.randrange(100)))
    return ("get", PUT_KEY)


def writes_workload(rng: random.Random, client_id: str, n: int) -> tuple:
    """Writers only: ``put`` one of the keys a, b, c to a number below 1000."""
    return ("put", "abc"[rng.randrange(3)], str(rng.randrange(1000)))


class ClosedLoopClients:
    """Closed-loop clients: each submits its next operation when the last one ends.

    ``ClosedLoopClients(cluster, n, rng)`` starts clients ``k0..k{n-1}`` at once, with
    :func:`mixed_workload` and a think time drawn from ``think_ms`` before each
    operation.  :meth:`resize` changes how many run (a client taken off finishes the
    operation it has in flight, then stops; one added later resumes under its old id);
    ``running = False`` stops them all.  Everything is drawn from ``rng``.
    """

    def __init__(self, c, n_clients: int, rng: random.Random, *, prefix: str = "k",
                 workload: Callable[[random.Random, str, int], tuple] = mixed_workload,
                 think_ms: Sequence[float] = (0, 0, 5, 20)) -> None:
        if not think_ms or any(not isinstance(x, (int, float)) or x < 0 for x in think_ms):
            raise ValueError(f"think_ms must be a non-empty sequence of ms >= 0, got {think_ms!r}")
        self.c = c
        self.rng = rng
        self.running = True
        self.prefix = prefix
        self.workload = workload
        self.think_ms = tuple(think_ms)
        self.clients: list = []
        self._n = 0
        self.resize(n_clients)

    @property
    def size(self) -> int:
        return len(self.clients)

    def resize(self, n_clients: int) -> None:
        """Run ``n_clients`` clients (``prefix0`` .. ``prefix{n-1}``)."""
        if not isinstance(n_clients, int) or isinstance(n_clients, bool) or n_clients < 0:
            raise ValueError(f"the number of clients must be an int >= 0, got {n_clients!r}")
        for k in self.clients[n_clients:]:
            k.on_complete = None
        del self.clients[n_clients:]
        while len(self.clients) < n_clients:
            k = self.c.client(f"{self.prefix}{len(self.clients)}")
            self.clients.append(k)
            k.on_complete = self._next
            if k.current is None or k.current.done:
                self._next(None, k)

    def _next(self, _op, k=None) -> None:
        if k is None:
            k = self.c.clients[_op.client_id]
        if not self.running:
            return
        self._n += 1
        op = self.workload(self.rng, k.node_id, self._n)
        think = self.rng.choice(self.think_ms)
        self.c.sim.scheduler.schedule(think, self._submit, k, op)

    def _submit(self, k, op) -> None:
        if self.running and k in self.clients and k.alive and (k.current is None or k.current.done):
            k.submit(op)
