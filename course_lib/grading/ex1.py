"""Checks of exercise 1, a distributed coordination system (練習 1 實現分布式協調系統).

Each check takes the learner's class, drives it against the real ZooKeeper ensemble
(``course_lib.zk.connect()``: the test session's ensemble under CI, the learner's local
one otherwise) from several clients — several sessions, as several processes would
have — and raises :class:`~course_lib.grading.CheckFailed` with a sentence in the
learner's terms, or returns a one-line summary of what it verified.

Every check works under a namespace of its own (``/course-grading/ex1-<random>``),
deletes it and stops every client it opened, whatever happens; every wait has a
deadline.  The learner's code is first called on the checker's own thread, so code
still marked ``raise NotImplementedError`` fails the check at once.

Herd effect and polling are measured from the outside: each client the check hands to
the learner's code is metered (:class:`Meter`) — every request it sends to ZooKeeper
and every watch notification it receives is counted, whatever kazoo API made it.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from typing import Callable

from kazoo.client import KazooClient

from . import expect

ROOT = "/course-grading"


class Meter:
    """Counts one kazoo client's requests and watch notifications (from the outside).

    Every request a ``KazooClient`` sends (sync or async, from any recipe) goes through
    ``client._call``; every watch notification is dispatched as a ``"watch"`` callback by
    ``client.handler.dispatch_callback``.  Both are wrapped on this one client.
    """

    def __init__(self, client: KazooClient):
        self._guard = threading.Lock()
        self.requests = 0
        self.watches_set = 0
        self.watch_firings = 0
        call, dispatch = client._call, client.handler.dispatch_callback

        def counting_call(request, async_object):
            with self._guard:
                self.requests += 1
                if getattr(request, "watcher", None) is not None:
                    self.watches_set += 1
            return call(request, async_object)

        def counting_dispatch(callback):
            if getattr(callback, "type", None) == "watch":
                with self._guard:
                    self.watch_firings += 1
            return dispatch(callback)

        client._call = counting_call
        client.handler.dispatch_callback = counting_dispatch

    def snapshot(self) -> tuple[int, int, int]:
        with self._guard:
            return self.requests, self.watches_set, self.watch_firings


class Run:
    """One check's ZooKeeper world: a unique namespace, metered clients, cleanup."""

    def __init__(self, name: str):
        self.base = f"{ROOT}/{name}-{uuid.uuid4().hex[:10]}"
        self.clients: list[KazooClient] = []
        self.meters: dict[int, Meter] = {}

    def __enter__(self) -> "Run":
        self.admin = self.client()
        self.admin.ensure_path(self.base)
        return self

    def __exit__(self, *exc) -> None:
        for client in self.clients[1:]:
            stop(client)
        try:
            self.admin.delete(self.base, recursive=True)
        except Exception:  # cleanup must not hide the check's own result
            pass
        stop(self.admin)

    def client(self) -> KazooClient:
        from course_lib.zk import connect

        client = connect(timeout=4.0)
        self.clients.append(client)
        self.meters[id(client)] = Meter(client)
        return client

    def meter(self, client: KazooClient) -> Meter:
        return self.meters[id(client)]

    def path(self, *parts: str) -> str:
        return "/".join((self.base,) + parts)

    def children(self, path: str) -> list[str]:
        try:
            return self.admin.get_children(path)
        except Exception:
            return []


def stop(client: KazooClient) -> None:
    """Close the client's session (its ephemeral nodes go at once) and its connection."""
    try:
        client.stop()
        client.close()
    except Exception:
        pass


def wait_until(condition: Callable[[], bool], timeout: float, interval: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def settle(read: Callable, ok: Callable, timeout: float = 3.0):
    """``read()`` until ``ok(value)`` or ``timeout`` seconds; the last value read.

    A ZooKeeper client reads from its own server, which may lag behind a write made
    through another server (reads are sequentially consistent, not linearizable), so
    a read that follows another client's write is retried for a moment.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = read()
        if ok(value) or time.monotonic() >= deadline:
            return value
        time.sleep(0.02)


def bounded(call: Callable, what: str, timeout: float = 10.0):
    """``call()`` on a thread of its own, for the learner's calls that may block: its
    result, or its exception re-raised here, or ``CheckFailed`` after ``timeout`` s."""
    result, errors = [], []

    def run():
        try:
            result.append(call())
        except BaseException as error:  # re-raised on the checker's thread
            errors.append(error)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout)
    if errors:
        raise errors[0]
    expect(not thread.is_alive(), f"{what} had not returned after {timeout:.0f} s")
    return result[0]


def canonical(value) -> str:
    return json.dumps(value, sort_keys=True)


class Workers:
    """Threads running the learner's code; their first exception is re-raised here."""

    def __init__(self) -> None:
        self.threads: list[threading.Thread] = []
        self.errors: list[BaseException] = []

    def start(self, target: Callable, *args) -> threading.Thread:
        def run():
            try:
                target(*args)
            except BaseException as error:  # re-raised on the checker's thread
                self.errors.append(error)

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        self.threads.append(thread)
        return thread

    def join(self, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        for thread in self.threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        if self.errors:
            raise self.errors[0]
        stuck = sum(t.is_alive() for t in self.threads)
        expect(stuck == 0, f"{stuck} of {len(self.threads)} threads running {what} had not "
                           f"finished after {timeout:.0f} s (a wait without a wake-up? an "
                           "endless retry?)")


# -- 1. service discovery -------------------------------------------------------------

def service_discovery(ServiceRegistry) -> str:
    with Run("ex1-discovery") as run:
        root = run.path("services")
        clients = [run.client() for _ in range(3)]
        registries = [ServiceRegistry(c, root) for c in clients]
        infos = [{"host": f"10.0.0.{i + 1}", "port": 8080 + i} for i in range(3)]
        paths = [r.register("api", info) for r, info in zip(registries, infos)]
        expect(all(isinstance(p, str) and p.startswith(root + "/") for p in paths),
               f"register() should return the path of the instance's znode under {root}, "
               f"got {paths!r}")
        expect(len(set(paths)) == 3,
               f"three instances of 'api' registered from three clients got the paths "
               f"{paths!r}: each instance needs a znode of its own (sequence=True)")

        observer = ServiceRegistry(run.client(), root)
        found = settle(lambda: observer.discover("api"), lambda f: isinstance(f, list) and len(f) >= 3)
        expect(isinstance(found, list), f"discover('api') should return a list, got {found!r}")
        expect(len(found) == 3,
               f"after 3 instances of 'api' registered from 3 clients, discover('api') returned "
               f"{len(found)}: {found!r}; each instance needs its own znode (ephemeral "
               "sequential children of ROOT/api), not one node per service")
        expect([canonical(i) for i in found] == [canonical(i) for i in infos],
               f"discover('api') returned {found!r}; expected the three infos in registration "
               f"order {infos!r} (get_children returns names unsorted: sort them)")
        expect(observer.discover("nothing-here") == [],
               "discover() of a service nobody registered should return [] (NoNodeError?)")
        registries[0].register("db", {"host": "10.0.1.1", "port": 5432})
        expect(len(settle(lambda: observer.discover("db"), lambda f: len(f) >= 1)) == 1
               and len(observer.discover("api")) == 3,
               "registering a 'db' instance changed what discover('api') or discover('db') "
               "return: keep one parent znode per service")

        seen: list[list] = []
        observer.watch("api", lambda instances: seen.append(list(instances)))
        expect(wait_until(lambda: bool(seen), 2.0),
               "watch('api', callback) should call callback(instances) at once with the "
               "current instances; it was not called within 2 s")
        expect(len(seen[-1]) == 3, f"watch('api', ...) first called back with {seen[-1]!r}, "
                                   "expected the 3 live instances")

        stop(clients[1])  # instance 2's process ends: its session closes
        expect(wait_until(lambda: len(observer.discover("api")) == 2, 5.0),
               f"after the client of instance 2 closed its session, discover('api') still "
               f"returned {len(observer.discover('api'))} instances after 5 s; register with "
               "ephemeral=True so an instance vanishes with its session")
        expect(wait_until(lambda: len(seen[-1]) == 2, 5.0),
               f"after instance 2's session closed, the watch callback was last called with "
               f"{len(seen[-1])} instances (after 5 s); watch the service's children so "
               "departures are seen")
        expect(canonical(observer.discover("api")) == canonical([infos[0], infos[2]]),
               f"after instance 2 left, discover('api') returned {observer.discover('api')!r}")

        registries[2].deregister(paths[2])
        expect(wait_until(lambda: len(observer.discover("api")) == 1, 3.0),
               "after deregister(path) of instance 3, discover('api') still lists it")
        expect(wait_until(lambda: len(seen[-1]) == 1, 3.0),
               f"after a second change (deregister) the watch callback was last called with "
               f"{len(seen[-1])} instances: a ZooKeeper watch fires once, re-arm it (or use "
               "kazoo's ChildrenWatch)")
        registries[0].register("api", {"host": "10.0.0.9", "port": 9090})
        expect(wait_until(lambda: len(seen[-1]) == 2, 3.0),
               "a newly registered instance never reached the watch callback within 3 s")
    return ("3 instances from 3 sessions discovered in order; an instance vanished when its "
            "session closed and on deregister; the watch saw every change")


# -- 2. configuration management ------------------------------------------------------

def configuration(ConfigStore, ConfigConflict) -> str:
    with Run("ex1-config") as run:
        root = run.path("config")
        a, b = ConfigStore(run.client(), root), ConfigStore(run.client(), root)
        missing = a.get("never-set")
        expect(tuple(missing) == (None, -1) if isinstance(missing, (tuple, list)) else False,
               f"get() of a key never set should return (None, -1), got {missing!r}")
        v0 = a.set("limits", {"rps": 10})
        expect(v0 == 0, f"set() of a new key should return its version 0, got {v0!r}")
        got = settle(lambda: b.get("limits"), lambda g: tuple(g) != (None, -1))
        expect(tuple(got) == ({"rps": 10}, 0),
               f"another client's get('limits') returned {got!r}, expected ({{'rps': 10}}, 0)")
        v1 = b.set("limits", {"rps": 20}, expected_version=0)
        expect(v1 == 1, f"set(..., expected_version=0) on version 0 should succeed and return "
                        f"version 1, got {v1!r}")
        try:
            a.set("limits", {"rps": 30}, expected_version=0)
            refused = False
        except ConfigConflict:
            refused = True
        expect(refused, "a.set('limits', ..., expected_version=0) succeeded although b had "
                        "already changed it to version 1: a compare-and-set must raise "
                        "ConfigConflict (pass version=expected_version to set; catch "
                        "BadVersionError)")
        expect(tuple(b.get("limits")) == ({"rps": 20}, 1),
               f"a refused compare-and-set changed the value: get() now returns "
               f"{b.get('limits')!r}")
        expect(a.set("fresh", "x", expected_version=-1) == 0,
               "set(key, value, expected_version=-1) should create a new key (version 0)")
        for key, version, why in (("fresh", -1, "exists already"),
                                  ("absent", 3, "does not exist")):
            try:
                a.set(key, "y", expected_version=version)
                refused = False
            except ConfigConflict:
                refused = True
            expect(refused, f"set({key!r}, ..., expected_version={version}) should raise "
                            f"ConfigConflict: the key {why}")
        expect(a.set("limits", {"rps": 25}) == 2, "set() without expected_version should "
                                                  "overwrite whatever is there (version 2)")

        seen: list[tuple] = []
        b.watch("limits", lambda value, version: seen.append((value, version)))
        expect(wait_until(lambda: bool(seen), 2.0),
               "watch(key, callback) should call callback(value, version) at once")
        wait_until(lambda: canonical(seen[-1]) == canonical(({"rps": 25}, 2)), 3.0)
        expect(canonical(seen[-1]) == canonical(({"rps": 25}, 2)),
               f"watch first called back with {seen[-1]!r}, expected ({{'rps': 25}}, 2)")
        a.set("limits", {"rps": 40})
        expect(wait_until(lambda: canonical(seen[-1]) == canonical(({"rps": 40}, 3)), 3.0),
               f"after another client set 'limits' to {{'rps': 40}}, the watch was last called "
               f"with {seen[-1]!r} (after 3 s)")
        a.set("limits", {"rps": 50})
        expect(wait_until(lambda: canonical(seen[-1]) == canonical(({"rps": 50}, 4)), 3.0),
               "the watch saw the first change but not the second: a ZooKeeper watch fires "
               "once, re-arm it (or use kazoo's DataWatch)")

        first = a.update("counter", lambda value: (value or 0) + 1)
        expect(isinstance(first, (tuple, list)) and first[0] == 1,
               f"update('counter', +1) on a missing key should return (1, version), got {first!r}")
        stores = [ConfigStore(run.client(), root) for _ in range(4)]
        start = threading.Barrier(4, timeout=10)

        def increment(store):
            start.wait()
            for _ in range(10):
                store.update("counter", lambda value: (value or 0) + 1)

        workers = Workers()
        for store in stores:
            workers.start(increment, store)
        workers.join(30.0, "update()")
        final = settle(lambda: a.get("counter")[0], lambda v: v == 41)
        expect(final == 41, f"4 clients each called update('counter', +1) 10 times at once, "
                            f"but the counter ended at {final} instead of 41: "
                            f"{41 - final if isinstance(final, int) else '?'} updates were lost; "
                            "update must retry with a fresh read when its compare-and-set "
                            "conflicts")
    return ("versions and compare-and-set (conflict refused, value unchanged); the watch saw "
            "every change; 40 concurrent increments from 4 clients, none lost")


# -- 3. leader election -----------------------------------------------------------------

def leader_election(LeaderElection) -> str:
    # joined in an order that is not the names' alphabetical order: the line is the order
    # of joining (ZooKeeper's sequence numbers), not the identifiers
    names = ("carol", "alice", "bob")
    with Run("ex1-election") as run:
        path = run.path("election")
        observer = LeaderElection(run.client(), path, "observer")
        expect(observer.leader() is None,
               f"leader() with no candidate should return None, got {observer.leader()!r}")
        clients = [run.client() for _ in names]
        candidates = [LeaderElection(c, path, name) for c, name in zip(clients, names)]
        expect(candidates[0].is_leader() is False, "is_leader() before join() should be False")
        for candidate in candidates:
            candidate.join()
            time.sleep(0.05)

        def leaders():
            return [name for name, c, zk in zip(names, candidates, clients)
                    if zk.connected and c.is_leader()]

        def agreed(name):
            return (leaders() == [name] and observer.leader() == name
                    and all(c.leader() == name for c, zk in zip(candidates, clients) if zk.connected))

        expect(wait_until(lambda: agreed("carol"), 3.0),
               f"carol, alice, bob joined in that order; expected carol (the first to join) to "
               f"lead, with everyone's leader() agreeing, but is_leader() is true for {leaders()} "
               f"and observer.leader() is {observer.leader()!r}: the line is the order of "
               f"joining, which ZooKeeper's sequence numbers give, not the names")
        began = time.monotonic()
        stop(clients[0])  # the leader's process ends: its session closes
        expect(wait_until(lambda: agreed("alice"), 5.0),
               f"5 s after the leader's client (carol) stopped, is_leader() is true for "
               f"{leaders()} and observer.leader() is {observer.leader()!r}; expected alice "
               "(next in line) alone: candidates must be ephemeral so a dead leader's node goes")
        failover = time.monotonic() - began
        candidates[1].resign()
        expect(candidates[1].is_leader() is False, "is_leader() right after resign() should be False")
        expect(wait_until(lambda: agreed("bob"), 3.0),
               f"after alice resigned, expected bob to lead; is_leader() is true for "
               f"{leaders()} and leader() is {observer.leader()!r}: resign() must remove "
               f"the candidate's node, not only forget it")
    return (f"first to join leads, everyone agrees on leader(); fail-over to the next "
            f"candidate {failover:.2f} s after the leader's client stopped; resign hands over")


# -- 4. distributed lock ------------------------------------------------------------------

def distributed_lock(DistributedLock) -> str:
    with Run("ex1-lock") as run:
        path = run.path("lock")
        solo = DistributedLock(run.client(), path, "solo")
        got = bounded(lambda: solo.acquire(timeout=5), "acquire(timeout=5) on a free lock")
        expect(got is True, f"acquire(timeout=5) on a free lock should return True, got {got!r}")
        other = DistributedLock(run.client(), path, "other")
        began = time.monotonic()
        got = bounded(lambda: other.acquire(timeout=0.3), "acquire(timeout=0.3) on a held lock")
        waited = time.monotonic() - began
        expect(got is False, f"acquire(timeout=0.3) returned {got!r} while another client held "
                             "the lock: mutual exclusion is broken")
        expect(waited < 2.0, f"acquire(timeout=0.3) took {waited:.1f} s to give up")
        expect(wait_until(lambda: len(run.children(path)) == 1, 2.0),
               f"after acquire(timeout=0.3) gave up, {path} still has "
               f"{len(run.children(path))} children: a waiter that gives up must delete its "
               "node, or it blocks everyone queued behind it")
        waiter_ahead_gives_up(run, DistributedLock, path, holder=solo)
        bounded(solo.release, "release()")
        expect(wait_until(lambda: not run.children(path), 2.0),
               "after release(), the holder's node is still there: delete it")
        expect(bounded(lambda: other.acquire(timeout=5), "acquire(timeout=5)") is True,
               "acquire() after the holder released should succeed")
        bounded(other.release, "release()")

        # Mutual exclusion: read-modify-write of a znode counter from 4 sessions.
        counter = run.path("counter")
        run.admin.create(counter, b"0")
        inside = {"now": 0, "max": 0}
        guard = threading.Lock()

        def work(lock, zk):
            for _ in range(6):
                expect(lock.acquire(timeout=20) is True, "acquire(timeout=20) gave up under contention")
                with guard:
                    inside["now"] += 1
                    inside["max"] = max(inside["max"], inside["now"])
                value = int(zk.get(counter)[0])
                time.sleep(0.003)
                zk.set(counter, str(value + 1).encode())
                with guard:
                    inside["now"] -= 1
                lock.release()

        workers = Workers()
        for i in range(4):
            zk = run.client()
            workers.start(work, DistributedLock(zk, path, f"worker-{i}"), zk)
        workers.join(40.0, "acquire/release")
        run.admin.sync(counter)
        total = int(run.admin.get(counter)[0])
        expect(inside["max"] == 1 and total == 24,
               f"4 clients each did 6 locked read-modify-writes of a counter znode: the counter "
               f"is {total} (expected 24) and up to {inside['max']} clients were inside the lock "
               "at once: mutual exclusion is broken")

        # Fairness and one wake-up per release: a holder, then 5 waiters queued in order.
        holder = DistributedLock(run.client(), path, "holder")
        expect(bounded(lambda: holder.acquire(timeout=5), "acquire(timeout=5)") is True,
               "acquire() of a free lock failed")
        order: list[int] = []
        waiters = Workers()
        clients = []

        def wait_and_hold(lock, i):
            expect(lock.acquire(timeout=20) is True, f"waiter {i} gave up after 20 s")
            order.append(i)
            time.sleep(0.05)
            lock.release()

        for i in range(5):
            zk = run.client()
            clients.append(zk)
            waiters.start(wait_and_hold, DistributedLock(zk, path, f"waiter-{i}"), i)
            expect(wait_until(lambda: len(run.children(path)) == i + 2 or waiters.errors, 3.0),
                   f"waiter {i} called acquire() but {path} has {len(run.children(path))} "
                   f"children, expected {i + 2}: each contender creates one ephemeral "
                   "sequential child of the lock path")
            if waiters.errors:
                raise waiters.errors[0]
        time.sleep(0.1)  # let notifications caused by the queueing itself settle
        before = [run.meter(zk).snapshot() for zk in clients]
        time.sleep(0.4)
        idle = [run.meter(zk).snapshot() for zk in clients]
        polls = sum(i[0] - b[0] for i, b in zip(idle, before))
        watched = sum(b[1] for b in before)
        bounded(holder.release, "release()")
        waiters.join(30.0, "acquire() behind a holder")
        after = [run.meter(zk).snapshot() for zk in clients]
        firings = sum(a[2] - b[2] for a, b in zip(after, before))
        expect(order == [0, 1, 2, 3, 4],
               f"waiters queued in the order 0, 1, 2, 3, 4 but acquired the lock in the order "
               f"{order}: a fair lock goes to the lowest sequence number first")
        expect(polls <= 2 and watched >= 5,
               f"while 5 waiters waited 0.4 s for a held lock they sent {polls} requests to "
               f"ZooKeeper and had set {watched} watches: waiting must block on a watch "
               "(exists(path, watch=...)), not poll")
        expect(firings <= 5,
               f"5 releases woke the waiters {firings} times in all, not once per release: "
               "herd effect; each waiter should watch only the node just before its own, not "
               "the lock's children")
    return ("no lost update in 24 locked read-modify-writes from 4 sessions; give-up leaves "
            f"no node, and the waiter behind keeps waiting; 5 waiters served in arrival order, {firings} wake-ups for 5 releases, "
            f"{polls} requests while waiting")


def waiter_ahead_gives_up(run: Run, DistributedLock, path: str, holder) -> None:
    """``holder`` holds the lock; a waiter queues with a short timeout, a second one
    behind it. When the first gives up, its node vanishes and the second is woken, but
    the lock is still held: the second must list the children again and keep waiting."""
    quitter = DistributedLock(run.client(), path, "quitter")
    patient = DistributedLock(run.client(), path, "patient")
    waiters, got = Workers(), {}

    def take(name, lock, timeout):
        got[name] = lock.acquire(timeout=timeout)

    waiters.start(take, "quitter", quitter, 1.0)
    expect(wait_until(lambda: len(run.children(path)) == 2 or waiters.errors, 3.0),
           "a waiter called acquire() but created no node under the lock path")
    waiters.start(take, "patient", patient, 20.0)
    expect(wait_until(lambda: len(run.children(path)) == 3 or waiters.errors, 3.0),
           "a second waiter called acquire() but created no node under the lock path")
    expect(wait_until(lambda: "quitter" in got or waiters.errors, 5.0),
           "acquire(timeout=1.0) behind a held lock had not given up after 5 s")
    if waiters.errors:
        raise waiters.errors[0]
    expect(got["quitter"] is False, f"acquire(timeout=1.0) returned {got['quitter']!r} while "
                                    "another client held the lock: mutual exclusion is broken")
    time.sleep(0.5)  # the patient waiter was woken by the quitter's node going
    expect("patient" not in got,
           f"the waiter ahead gave up and its node vanished, and the waiter behind it then "
           f"returned {got.get('patient')!r} from acquire() while the lock was still held: "
           "mutual exclusion is broken. A vanished predecessor is not a released lock: list "
           "the children again, and hold the lock only if none is ahead of yours")
    bounded(holder.release, "release()")
    waiters.join(5.0, "acquire() once the holder released")
    expect(got["patient"] is True, "the waiter behind did not get the lock once it was free")
    bounded(patient.release, "release()")
    expect(bounded(lambda: holder.acquire(timeout=5), "acquire(timeout=5)") is True,
           "acquire() of a free lock failed")


# -- 5. event notification ----------------------------------------------------------------

def event_notification(EventBus) -> str:
    with Run("ex1-events") as run:
        root = run.path("events")
        publisher = EventBus(run.client(), root)
        old = [publisher.publish("orders", {"old": i}) for i in range(3)]
        expect(all(isinstance(s, int) for s in old) and old == sorted(set(old)),
               f"publish() should return increasing integer sequence numbers, got {old!r}")
        late, replay = [], []
        subscribers = [run.client(), run.client()]
        for client in subscribers:  # their servers have seen the old events (no stale read)
            client.sync(root)
        EventBus(subscribers[0], root).subscribe("orders", lambda seq, event: late.append((seq, event)))
        EventBus(subscribers[1], root).subscribe("orders", lambda seq, event: replay.append((seq, event)),
                                                 from_start=True)
        published: dict[int, dict] = {}
        guard = threading.Lock()

        def publish_many(bus, writer):
            for n in range(10):
                event = {"writer": writer, "n": n}
                seq = bus.publish("orders", event)
                with guard:
                    published[seq] = event

        workers = Workers()
        for writer in ("w1", "w2"):
            workers.start(publish_many, EventBus(run.client(), root), writer)
        workers.join(20.0, "publish()")
        expect(len(published) == 20, f"20 publish() calls returned only {len(published)} "
                                     "distinct sequence numbers")
        wait_until(lambda: len(late) >= 20 and len(replay) >= 23, 8.0)
        time.sleep(0.3)  # duplicates arrive late, if at all
        new = sorted(published)
        old_events = {seq: {"old": i} for i, seq in enumerate(old)}
        for name, got, expected in (("a subscriber", late, new),
                                    ("a subscriber with from_start=True", replay, old + new)):
            seqs = [s for s, _ in got]
            if name == "a subscriber":
                stale = [s for s in seqs if s in old_events]
                expect(not stale, f"{name} that joined after 3 events were published received "
                                  f"the old event(s) {stale}: start after the newest existing "
                                  "event unless from_start=True")
            twice = sorted({s for s in seqs if seqs.count(s) > 1})
            expect(not twice, f"{name} received event(s) {twice[:5]} more than once: remember "
                              "the last sequence number delivered")
            expect(seqs == sorted(seqs), f"{name} received events out of order: {seqs[:12]}...")
            lost = sorted(set(expected) - set(seqs))
            expect(not lost, f"{name} never received event(s) {lost[:8]} (published by two "
                             f"other clients, 20 in a burst; got {len(seqs)} of {len(expected)}"
                             "): a watch fires once — re-arm it and read every child past the "
                             "last one delivered")
            for seq, event in got:
                want = published.get(seq, old_events.get(seq))
                expect(canonical(event) == canonical(want),
                       f"{name} got event {seq} as {event!r}, but {want!r} was published")
    return ("20 events from 2 publishers delivered in order, exactly once, to a late subscriber "
            "(no old ones) and with the 3 old ones to a from_start subscriber")
