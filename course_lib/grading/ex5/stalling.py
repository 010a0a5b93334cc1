"""A service that freezes once, driven on virtual time through connections: the ground
on which exercise 5's task 3 tells an honest load generator from one that hides a stall.

Why connections: a real client library (HTTP/1.1, a database driver) carries one request
at a time per connection and hands back the response later.  A load generator built on a
fixed set of such connections — one per "user", as wrk does — can only send when a
connection is free; while the service is frozen every connection waits, the generator
stops sending, and the few requests that were in flight are the only ones that see the
freeze.  Measured from when each request was actually sent, the percentiles look fine:
Gil Tene's *coordinated omission* (the generator coordinates with the service to omit
the bad moments).  An open-loop generator schedules its sends in advance, never waits
for a response to decide when to send, and measures each latency from the scheduled
time — what wrk2 does.

Time is virtual (ms) and moves only when the client asks: :meth:`StallingService.advance_to`
(sleep until a time), :meth:`~StallingService.next_response` (block until the next
response) and :meth:`~StallingService.wait_all` (until every response is in).  Each
request's service time is drawn, in send order, from ``random.Random(seed)``: the same
sends at the same times give the same responses, exactly.
"""

from __future__ import annotations

import heapq
import math
import random
from typing import Optional

from ...check import Operation

MAX_REQUESTS = 100_000


class Request:
    """One request: sent on ``connection`` at ``sent_at`` (ms); ``done_at`` is the time its
    response arrived, or ``None`` while it has not arrived yet (the client cannot see the
    future: time must pass first)."""

    __slots__ = ("id", "connection", "sent_at", "_done", "_delivered")

    def __init__(self, id: int, connection: "Connection", sent_at: float, done: float) -> None:
        self.id, self.connection, self.sent_at = id, connection, sent_at
        self._done, self._delivered = done, False

    @property
    def done_at(self) -> Optional[float]:
        return self._done if self._delivered else None

    def __repr__(self) -> str:
        state = f"done_at={self._done:.3f}" if self._delivered else "in flight"
        return f"Request(id={self.id}, connection={self.connection.id}, sent_at={self.sent_at:.3f}, {state})"


class Connection:
    """A connection to the service: one request at a time, like an HTTP/1.1 keep-alive
    connection.  ``send()`` sends a request now (at ``service.now``); a second ``send()``
    before its response has arrived is refused."""

    def __init__(self, service: "StallingService", id: int) -> None:
        self.service, self.id = service, id
        self.last: Optional[Request] = None     # the request sent last on this connection

    @property
    def busy(self) -> bool:
        """Waiting for the response of its last request."""
        return self.last is not None and not self.last._delivered

    def send(self) -> Request:
        if self.busy:
            raise ValueError(
                f"connection {self.id} is still waiting for the response to request "
                f"{self.last.id} (sent at {self.last.sent_at:.3f} ms); a connection carries one "
                f"request at a time: use an idle one, or service.connect() a new one")
        self.last = self.service._admit(self)
        return self.last

    def __repr__(self) -> str:
        return f"Connection({self.id}, {'busy' if self.busy else 'idle'})"


class StallingService:
    """``workers`` workers serving a FIFO queue; a request takes ``service_ms`` ×
    uniform(0.5, 1.5) of a worker's time.  During ``[stall_at_ms, stall_at_ms +
    stall_ms)`` the whole service is frozen (a stop-the-world GC pause, a SIGSTOP): no
    work progresses, nothing completes; work in progress resumes afterwards.
    ``stall_ms=0``: no stall.

    A client talks to it through :meth:`connect`, virtual time moves only through
    :meth:`advance_to`, :meth:`next_response` and :meth:`wait_all`, and every request
    sent is logged in :attr:`sent`.  Capacity: ``workers / service_ms`` requests per ms.
    """

    def __init__(self, workers: int, service_ms: float, stall_at_ms: float, stall_ms: float,
                 seed: int = 0) -> None:
        if not isinstance(workers, int) or isinstance(workers, bool) or workers < 1:
            raise ValueError(f"workers must be an int >= 1, got {workers!r}")
        for name, value in (("service_ms", service_ms), ("stall_at_ms", stall_at_ms),
                            ("stall_ms", stall_ms)):
            if not _finite(value) or value < 0 or (name == "service_ms" and value == 0):
                raise ValueError(f"{name} must be a finite number {'>' if name == 'service_ms' else '>='} 0, "
                                 f"got {value!r}")
        self.workers, self.service_ms, self.seed = workers, float(service_ms), seed
        self.stall_at_ms, self.stall_ms = float(stall_at_ms), float(stall_ms)
        self.sent: list[Request] = []            # every request, in the order sent
        self.connections: list[Connection] = []
        self._rng = random.Random(seed)
        self._now = 0.0
        self._free = [0.0] * workers             # heap: when each worker is next free
        self._flight: list[tuple[float, int]] = []   # heap of (done, request id), undelivered

    # -- what a client sees ------------------------------------------------------------

    @property
    def now(self) -> float:
        """The virtual clock, in ms; it starts at 0."""
        return self._now

    @property
    def stall(self) -> tuple[float, float]:
        """``(start, end)`` of the freeze, in ms."""
        return self.stall_at_ms, self.stall_at_ms + self.stall_ms

    @property
    def in_flight(self) -> int:
        """Requests sent whose response has not arrived yet."""
        return len(self._flight)

    def connect(self) -> Connection:
        """A new idle connection (cheap here; a real one costs a handshake)."""
        connection = Connection(self, len(self.connections))
        self.connections.append(connection)
        return connection

    def advance_to(self, t_ms: float) -> float:
        """Sleep until ``t_ms``: time passes, and every response due by then arrives
        (its connection becomes idle).  A time already past returns at once — as a
        real sleep does.  Returns ``now``."""
        if not _finite(t_ms):
            raise ValueError(f"advance_to needs a finite time in ms, got {t_ms!r}")
        self._now = max(self._now, float(t_ms))
        while self._flight and self._flight[0][0] <= self._now:
            self._deliver()
        return self._now

    def next_response(self, until: Optional[float] = None) -> Optional[Request]:
        """Block until the next response arrives (time passes to it) and return its
        request — or, with ``until``, block at most until that time (``select`` with a
        timeout): ``None`` if no response arrived by then (time is then ``until``), or if
        no request is in flight at all.  Responses due at the same instant come one call
        at a time."""
        if until is not None and not _finite(until):
            raise ValueError(f"until must be a finite time in ms or None, got {until!r}")
        if self._flight and (until is None or self._flight[0][0] <= max(until, self._now)):
            self._now = max(self._now, self._flight[0][0])
            return self._deliver()
        if until is not None:
            self.advance_to(until)
        return None

    def wait_all(self) -> float:
        """Block until every request sent has its response; returns ``now``."""
        while self._flight:
            self.next_response()
        return self._now

    # -- the service -------------------------------------------------------------------

    def _admit(self, connection: Connection) -> Request:
        if connection.service is not self:
            raise ValueError(f"{connection!r} belongs to another service")
        if len(self.sent) >= MAX_REQUESTS:
            raise ValueError(f"more than {MAX_REQUESTS} requests sent to {self!r}: is the rate "
                             f"right? (rate_per_s is per second, times are in ms)")
        start = max(self._now, heapq.heappop(self._free))      # FIFO: send order
        done = self._finish(start, self.service_ms * self._rng.uniform(0.5, 1.5))
        heapq.heappush(self._free, done)
        request = Request(len(self.sent), connection, self._now, done)
        self.sent.append(request)
        heapq.heappush(self._flight, (done, request.id))
        return request

    def _finish(self, start: float, work: float) -> float:
        """When ``work`` ms of service begun at ``start`` ends, the freeze skipped."""
        s, e = self.stall
        if start >= e or start + work <= s:
            return start + work
        if start < s:
            return start + work + (e - s)      # running when the freeze begins: paused for all of it
        return e + work                        # due to start inside the freeze: starts after it

    def _deliver(self) -> Request:
        _, rid = heapq.heappop(self._flight)
        request = self.sent[rid]
        request._delivered = True
        return request

    def twin(self, **changes) -> "StallingService":
        """A fresh service with the same parameters (and seed), some changed: e.g.
        ``twin(stall_ms=0)`` is the same service without its freeze."""
        params = dict(workers=self.workers, service_ms=self.service_ms,
                      stall_at_ms=self.stall_at_ms, stall_ms=self.stall_ms, seed=self.seed)
        params.update(changes)
        return StallingService(**params)

    def __repr__(self) -> str:
        return (f"StallingService(workers={self.workers}, service_ms={self.service_ms:g}, "
                f"stall_at_ms={self.stall_at_ms:g}, stall_ms={self.stall_ms:g}, seed={self.seed})")


def closed_loop(service: StallingService, clients: int, duration_ms: float,
                think_ms: float = 0.0) -> list:
    """``clients`` closed-loop clients, one connection each: each sends a request, waits
    for its response, thinks ``think_ms``, sends the next — until ``duration_ms`` (from
    ``service.now``); then the run waits for the last responses.  Latencies are measured
    from when each request was sent (``Operation(connection id, ("get", None), sent_at,
    None, done_at)``), as wrk and most benchmarks do.  During a freeze every client
    waits, so the loop stops sending: coordinated omission.
    """
    if not isinstance(clients, int) or isinstance(clients, bool) or clients < 1:
        raise ValueError(f"clients must be an int >= 1, got {clients!r}")
    if not _finite(duration_ms) or duration_ms <= 0 or not _finite(think_ms) or think_ms < 0:
        raise ValueError(f"need duration_ms > 0 and think_ms >= 0, got {duration_ms!r}, {think_ms!r}")
    end = service.now + duration_ms
    sent: list[Request] = []
    thinking: list[tuple[float, int, Connection]] = []     # (when it sends next, id, conn)
    for _ in range(clients):
        sent.append(service.connect().send())
    while True:
        response = service.next_response(until=thinking[0][0] if thinking else None)
        if response is not None:
            wake = response.done_at + think_ms
            if wake < end:
                heapq.heappush(thinking, (wake, response.connection.id, response.connection))
        elif thinking:
            _, _, conn = heapq.heappop(thinking)           # its think time is over: now
            sent.append(conn.send())
        else:
            break                                          # nobody waits, nothing in flight
    return [Operation(r.connection.id, ("get", None), r.sent_at, None, r.done_at) for r in sent]


def _finite(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)
