"""The herd effect, measured: ``HerdLock`` (the textbook anti-pattern) and ``count_wakeups``.

``HerdLock`` is kept **for measurement only** — do not use it to protect anything.
Layout: ``/NAMESPACE/herdlocks/NAME/lock``, a single ephemeral znode.  Whoever creates it
holds the lock; every other waiter sets an ``exists`` watch on *that one node* and
sleeps.  When the holder deletes it, ZooKeeper notifies **every** waiter; all of them
race to create the node again, one wins and the others go back to watching.  A release
with N waiters costs N notifications and N create attempts for one hand-over: the "herd
effect" that the ZooKeeper recipes documentation warns about.  It is the design the
chapter's polling lock becomes once the polling is replaced by a watch, and it is no
fairer: the winner of each race is whoever's ``create`` reaches the leader first.

:class:`~course_lib.coord.DistributedLock` avoids the herd by queueing: each waiter
watches only its predecessor, so a release wakes exactly one waiter.

``count_wakeups`` runs the same experiment on the three designs — the chapter's polling
lock, ``HerdLock``, ``DistributedLock`` — so their costs can be compared: one holder, N
waiters queued one after the other (each on its own ZooKeeper session, as separate
processes would be), then the queue drains.  Counted: watch notifications (wake-ups),
``create`` calls, the order in which waiters were served, and the idle gap between one
holder's release and the next holder's acquisition.
"""

from __future__ import annotations

import asyncio
import statistics
import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import Optional, Sequence

from kazoo.exceptions import NodeExistsError, NoNodeError
from kazoo.protocol.states import KazooState

from .base import Recipe, SessionLost
from .lock import DistributedLock
from .paths import check_name, check_timeout, join

DESIGNS = ("chapter", "herd", "ours")


class HerdLock(Recipe):
    """One ephemeral node; every waiter watches it (the herd anti-pattern, for measurement).

    ``wakeups`` counts watch notifications received while waiting, ``attempts`` the
    ``create`` calls made, ``woken_by`` the ``czxid`` of the holder's node whose
    deletion caused each wake-up (so wake-ups can be attributed to releases), and
    ``fencing_token`` is the ``czxid`` of our node while held (it only grows).
    """

    def __init__(self, zk, name: str, identifier: str = "", namespace: Optional[str] = None,
                 op_timeout: float = 10.0):
        super().__init__(zk, namespace, op_timeout)
        check_name(name, "lock name")
        if not isinstance(identifier, str):
            raise ValueError(f"identifier must be a string, not {identifier!r}")
        self.name = name
        self.identifier = identifier
        self.path = join(self.root, "herdlocks", name, "lock")
        self.wakeups = 0
        self.attempts = 0
        self.woken_by: list[int] = []
        self.waiting = False
        self._token: Optional[int] = None

    @property
    def held(self) -> bool:
        return self._token is not None

    @property
    def fencing_token(self) -> int:
        if self._token is None:
            raise RuntimeError(f"herd lock {self.name!r} is not held: there is no fencing token")
        return self._token

    def acquire(self, timeout: Optional[float] = None) -> bool:
        timeout = check_timeout(timeout)
        if self._token is not None:
            raise RuntimeError(f"herd lock {self.name!r} is already held by this object")
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            self.attempts += 1
            try:
                _, stat = self.call("create", self.path, self.identifier.encode(), ephemeral=True,
                                    makepath=True, include_data=True)
                self._token = stat.czxid
                return True
            except NodeExistsError:
                pass
            woke = threading.Event()
            stat = self.call("exists", self.path, watch=lambda _event: woke.set())
            if stat is None:
                continue  # released between our create and our exists: race again
            self.waiting = True
            try:
                while not woke.wait(0.25):
                    if deadline is not None and time.monotonic() >= deadline:
                        return False
                    if self.client.state == KazooState.LOST:
                        raise SessionLost("the ZooKeeper session expired while waiting")
            finally:
                self.waiting = False
            self.wakeups += 1
            self.woken_by.append(stat.czxid)

    def release(self) -> None:
        if self._token is None:
            raise RuntimeError(f"herd lock {self.name!r} is not held")
        self._token = None
        try:
            self.call("delete", self.path)
        except NoNodeError:
            pass


class _ChapterLockInThread:
    """The chapter's async polling lock, driven synchronously from a thread."""

    def __init__(self, client, namespace: str, name: str, retry_delay: float):
        from course_lib.chapter.coord import DistributedLock as ChapterLock
        from course_lib.chapter.coord import ZKCoordinator as ChapterCoordinator

        client.ensure_path(f"/{namespace}/locks")
        self.lock = ChapterLock(ChapterCoordinator("", namespace, client=client), name)
        self.retry_delay = retry_delay
        self.started = False

    @property
    def attempts(self) -> int:
        return self.lock.attempts

    @property
    def waiting(self) -> bool:
        return self.lock.attempts > 0

    def acquire(self) -> bool:
        return _run(lambda: self.lock.acquire(retry_delay=self.retry_delay))

    def release(self) -> None:
        _run(self.lock.release)


def _run(make_coroutine):
    """Run a coroutine to completion from synchronous code — on a helper thread when
    this thread already runs an event loop (a Jupyter kernel's main thread)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(make_coroutine())
    outcome: list = []

    def target() -> None:
        try:
            outcome.append((True, asyncio.run(make_coroutine())))
        except BaseException as error:
            outcome.append((False, error))

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join()
    ok, value = outcome[0]
    if not ok:
        raise value
    return value


@dataclass(frozen=True)
class WakeupCount:
    """What ``count_wakeups`` measured for one design and one number of waiters."""

    design: str
    waiters: int
    releases: int              # releases that had at least one waiter behind them
    wakeups: int               # watch notifications received by waiters
    attempts: int              # create() calls made by the waiters
    first_release_wakeups: int  # waiters woken by the holder's (first) release
    arrival: tuple             # waiter ids in the order they started waiting
    served: tuple              # waiter ids in the order they got the lock
    handover_ms: float         # median idle gap between a release and the next acquire
    holds: tuple               # (id, acquired, released) with time.time() values

    @property
    def wakeups_per_release(self) -> float:
        return self.wakeups / self.releases

    @property
    def attempts_per_release(self) -> float:
        return self.attempts / self.releases

    @property
    def fair(self) -> bool:
        """Served in arrival order (first come, first served)."""
        return self.arrival == self.served


def count_wakeups(clients: Sequence, design: str, waiters: int, *, hold: float = 0.02,
                  namespace: str = "herd", name: str = "l", retry_delay: float = 0.1,
                  timeout: float = 60.0) -> WakeupCount:
    """Queue ``waiters`` waiters behind one holder, release, and count what the drain costs.

    ``clients``: at least ``waiters + 1`` started kazoo clients (one session each;
    ``clients[0]`` is the first holder).  ``design``: ``"chapter"`` (polling every
    ``retry_delay`` s), ``"herd"`` (:class:`HerdLock`) or ``"ours"``
    (:class:`DistributedLock`).  Each waiter starts only once the previous one waits,
    so arrival order is known; each holds the lock ``hold`` seconds.  Use a fresh
    ``name`` (or namespace) per call.
    """
    if design not in DESIGNS:
        raise ValueError(f"unknown design {design!r}: use one of {', '.join(DESIGNS)}")
    if isinstance(waiters, bool) or not isinstance(waiters, int) or waiters < 1:
        raise ValueError(f"waiters must be a positive integer, not {waiters!r}")
    if len(clients) < waiters + 1:
        raise ValueError(f"{waiters} waiters and a holder need {waiters + 1} clients, "
                         f"not {len(clients)}")
    locks = [_make(design, clients[i], namespace, name, f"w{i}", retry_delay)
             for i in range(waiters + 1)]
    holder, queue = locks[0], locks[1:]
    holds: list[tuple[str, float, float]] = []
    served: list[str] = []
    record = threading.Lock()
    errors: list[BaseException] = []

    def use(lock, ident: str) -> None:
        try:
            lock.acquire()
            acquired = time.time()
            with record:
                served.append(ident)
            time.sleep(hold)
            released = time.time()
            lock.release()
            with record:
                holds.append((ident, acquired, released))
        except BaseException as error:  # reported in the caller's thread
            errors.append(error)

    holder.acquire()
    first_acquired = time.time()
    threads = []
    deadline = time.monotonic() + timeout
    for i, lock in enumerate(queue, start=1):
        thread = threading.Thread(target=use, args=(lock, f"w{i}"), daemon=True)
        thread.start()
        threads.append(thread)
        while not _is_waiting(lock, holder, i):
            if errors or time.monotonic() > deadline:
                break
            time.sleep(0.002)
    before = [_attempts(lock) for lock in queue]
    first_token = holder.fencing_token if design == "herd" else None
    released = time.time()
    holder.release()
    holds.append(("w0", first_acquired, released))
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    if errors:
        raise errors[0]
    if any(t.is_alive() for t in threads):
        raise TimeoutError(f"{design}: the queue of {waiters} did not drain in {timeout} s")

    wakeups = sum(getattr(lock, "wakeups", 0) for lock in queue)
    if design == "herd":  # attributed: woken by the deletion of the first holder's node
        first = Counter(c for lock in queue for c in lock.woken_by)[first_token]
    elif design == "ours":  # only the first waiter watches the first holder's entry
        first = queue[0].wakeups
    else:  # pollers are never woken: they keep asking
        first = 0
    attempts = sum(_attempts(lock) for lock in queue) - sum(before) + waiters  # + first tries
    ordered = sorted(holds, key=lambda h: h[1])
    gaps = [(b[1] - a[2]) * 1000 for a, b in zip(ordered, ordered[1:])]
    return WakeupCount(design, waiters, releases=waiters, wakeups=wakeups, attempts=attempts,
                       first_release_wakeups=first, arrival=tuple(f"w{i}" for i in range(1, waiters + 1)),
                       served=tuple(served), handover_ms=statistics.median(gaps),
                       holds=tuple(ordered))


def _make(design: str, client, namespace: str, name: str, ident: str, retry_delay: float):
    if design == "ours":
        return DistributedLock(client, name, ident, namespace=namespace, op_timeout=30)
    if design == "herd":
        return HerdLock(client, name, ident, namespace=namespace, op_timeout=30)
    return _ChapterLockInThread(client, namespace, name, retry_delay)


def _is_waiting(lock, holder, position: int) -> bool:
    if isinstance(lock, DistributedLock):
        return len(holder.holders()) >= position + 1
    return lock.waiting


def _attempts(lock) -> int:
    return getattr(lock, "attempts", 0)
