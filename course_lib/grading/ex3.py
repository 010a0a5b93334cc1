"""Checks of exercise 3, fault tolerance (練習 3 實現容錯機制).

1. failure detection: the learner's phi accrual detector against the closed form of the
   normal tail, its window and floor, monotonic and finite however long the silence;
2. automatic recovery: the learner's recovery manager driven by the course's
   :class:`~course_lib.detect.PhiAccrualDetector` through a seeded heartbeat scenario,
   its events compared with what the detector's suspicions imply;
3. data backup: round trip, a crash before the backup was durable (``os.fsync`` made
   to fail) leaves the previous one, a damaged file is refused;
4. load balancing: consistent hashing's spread, minimal movement, health, the same
   mapping in another process;
5. hot standby: real ZooKeeper sessions; the primary in a process of its own, frozen
   (SIGSTOP) past its session timeout; take-over time, one ``on_active`` per node, no
   polling while waiting, and the woken primary's write refused by a
   :class:`~course_lib.coord.FencedStorage` (fencing tokens).

Each check calls the learner's code on its own thread first, so code still marked
``raise NotImplementedError`` fails at once; every wait has a deadline.
"""

from __future__ import annotations

import math
import os
import pickle
import random
import signal
import tempfile
import time
from pathlib import Path

from . import expect
from .ex1 import Run, bounded, wait_until

NODE_CRASHED = "node_crashed"
NODE_RECOVERED = "node_recovered"


# -- 1. failure detection ----------------------------------------------------------------

def reference_phi(elapsed: float, mean: float, std: float) -> float:
    """-log10 P(X > elapsed) for X ~ Normal(mean, std), exact far into the tail."""
    from course_lib.detect import tails

    return tails.normal_phi((elapsed - mean) / std)


def window_stats(intervals, window: int, min_std: float) -> tuple[float, float]:
    last = intervals[-window:]
    mean = sum(last) / len(last)
    std = math.sqrt(sum((x - mean) ** 2 for x in last) / len(last))
    return mean, max(std, min_std)


def close(a: float, b: float, rel: float = 1e-6) -> bool:
    return isinstance(a, (int, float)) and math.isfinite(a) and abs(a - b) <= rel * max(1.0, abs(b))


def failure_detection(PhiAccrual) -> str:
    rng = random.Random(3)
    intervals = [max(0.05, rng.gauss(1.0, 0.2)) for _ in range(40)]
    detector = PhiAccrual(window=100, min_std=0.05)
    now = 100.0
    detector.heartbeat(now)
    first = detector.phi(now + 5.0)
    expect(first == 0.0, f"with one heartbeat (no interval measured yet) phi should be 0.0, "
                         f"got {first!r}")
    for interval in intervals:
        now += interval
        detector.heartbeat(now)
    mean, std = window_stats(intervals, 100, 0.05)
    for elapsed in (0.0, 0.5, 1.0, 1.3, 2.0, 3.0):
        got, want = detector.phi(now + elapsed), reference_phi(elapsed, mean, std)
        expect(close(got, want),
               f"after 40 intervals (mean {mean:.4f} s, std {std:.4f} s), {elapsed} s after the "
               f"last heartbeat phi should be -log10(0.5 * erfc(z / sqrt(2))) = {want:.6f} with "
               f"z = (elapsed - mean) / std; got {got!r} (population std: divide by n)")

    previous, grid = -1.0, [i * 0.05 for i in range(400)] + [25, 40, 60, 100, 1e3, 1e4, 1e6]
    for elapsed in grid:
        try:
            value = detector.phi(now + elapsed)
        except (ValueError, OverflowError, ZeroDivisionError) as error:
            value = f"{type(error).__name__}: {error}"
        expect(isinstance(value, (int, float)) and math.isfinite(value),
               f"phi {elapsed:g} s after the last heartbeat is {value!r}: it must stay finite "
               "however long the silence (erfc underflows to 0 past z ~ 38: work with the "
               "logarithm of the tail there, e.g. its asymptotic series)")
        expect(value >= previous - 1e-9 and value >= 0.0,
               f"phi went down from {previous:.6f} to {value:.6f} as the silence grew to "
               f"{elapsed:g} s: it must be non-negative and non-decreasing between heartbeats")
        previous = value
    for elapsed in (40, 100, 1e3):
        got, want = detector.phi(now + elapsed), reference_phi(elapsed, mean, std)
        expect(close(got, want, 1e-3),
               f"{elapsed:g} s after the last heartbeat (z = {(elapsed - mean) / std:.0f}) phi "
               f"should be {want:.4f}, got {got!r}")

    regular = PhiAccrual(window=10, min_std=0.1)
    t = 0.0
    regular.heartbeat(t)
    for interval in [1.0] * 50 + [3.0] * 10:
        t += interval
        regular.heartbeat(t)
    got, want = regular.phi(t + 3.0), reference_phi(3.0, 3.0, 0.1)
    expect(close(got, want),
           f"window=10: after 50 intervals of 1 s then 10 of 3 s, only the last 10 count "
           f"(mean 3 s, std 0 -> floored at min_std=0.1), so 3 s after the last heartbeat phi "
           f"should be {want:.5f}; got {got!r} (drop the oldest interval from the running "
           "sums when the window is full)")
    got, want = regular.phi(t + 3.1), reference_phi(3.1, 3.0, 0.1)
    expect(close(got, want), f"with std floored at min_std=0.1, phi 3.1 s after the last "
                             f"heartbeat should be {want:.5f}; got {got!r}")

    big = PhiAccrual(window=10_000, min_std=0.05)
    began, t, calls = time.monotonic(), 0.0, 0
    for _ in range(12_000):
        t += 1.0 + (calls % 7) * 0.01
        big.heartbeat(t)
        big.phi(t + 0.5)
        calls += 1
        if time.monotonic() - began > 3.0:
            break
    spent = time.monotonic() - began
    expect(calls == 12_000,
           f"with window=10000, {calls} heartbeat()+phi() calls took {spent:.1f} s: keep "
           "running sums of the intervals and of their squares (O(1) per call) instead of "
           "recomputing the statistics over the window")
    return ("phi matches the normal tail's closed form; non-decreasing and finite up to a "
            f"silence of 1e6 s; window and std floor respected; {spent * 1e6 / 12_000:.0f} µs "
            "per heartbeat+phi with a 10,000-interval window")


# -- 2. automatic recovery ------------------------------------------------------------------

class Tape:
    """Heartbeats of a seeded scenario: each node beats every ~1 s except while silent."""

    SILENT = {"a": [(45.0, math.inf)], "b": [(10.0, 15.0)], "c": [(20.0, 40.0)],
              "d": [(30.0, math.inf)]}

    def __init__(self, seed: int):
        rng = random.Random(seed)
        self.beats: list[tuple[float, str]] = []
        for node, silences in self.SILENT.items():
            t = rng.uniform(0.0, 1.0)
            while t < 60.0:
                if not any(start <= t < end for start, end in silences):
                    self.beats.append((t, node))
                t += max(0.5, rng.gauss(1.0, 0.08))
        self.beats.sort()

    def detector(self):
        from course_lib.detect import PhiAccrualDetector

        return PhiAccrualDetector(threshold=8.0, min_std_dev=0.1, first_heartbeat_estimate=1.0)


def expected_events(tape: Tape, times) -> list[tuple[float, str, str]]:
    """What the detector's suspicions imply, node ``a`` (the manager itself) excluded."""
    detector, failed, events, beats = tape.detector(), set(), [], iter(tape.beats)
    pending = next(beats, None)
    for now in times:
        while pending is not None and pending[0] <= now:
            detector.heartbeat(pending[1], pending[0])
            pending = next(beats, None)
        suspected = set(detector.suspected(now)) - {"a"}
        events += [(now, NODE_CRASHED, n) for n in sorted(suspected - failed)]
        events += [(now, NODE_RECOVERED, n) for n in sorted(failed - suspected)]
        failed = suspected
    return events


def automatic_recovery(RecoveryManager) -> str:
    tape, times = Tape(seed=2024), [i * 0.25 for i in range(1, 241)]
    expected = expected_events(tape, times)
    detector, fetched = tape.detector(), []
    snapshots = {"b": (3, 17, {"x": "b"}), "c": (4, 2, {"x": "c"}), "d": (9, 99, {"x": "d"})}

    def fetch_state(node):
        fetched.append(node)
        return snapshots.get(node)

    manager = RecoveryManager("a", ["a", "b", "c", "d"], detector, fetch_state)
    calls: list[tuple[float, str, str]] = []
    clock = {"now": 0.0}

    def on_crash(node):
        calls.append((clock["now"], NODE_CRASHED, node))
        if node == "d":
            raise RuntimeError("the pager is down")

    manager.register_handler(NODE_CRASHED, on_crash)
    beats = iter(tape.beats)
    pending = next(beats, None)
    returned = []
    for now in times:
        clock["now"] = now
        if now == 30.0:  # from now on recoveries have a handler too
            manager.register_handler(NODE_RECOVERED,
                                     lambda node: calls.append((clock["now"], NODE_RECOVERED, node)))
        while pending is not None and pending[0] <= now:
            detector.heartbeat(pending[1], pending[0])
            pending = next(beats, None)
        result = manager.poll(now)
        expect(isinstance(result, list), f"poll(now) should return the list of (event_type, "
                                         f"node) it handled, got {result!r}")
        returned += [(now,) + tuple(r) for r in result]

    described = "; ".join(f"{e} {n} at t={t:g}" for t, e, n in expected)
    expect([e for e in returned] == expected,
           f"in the seeded scenario (b silent 10-15 s, c 20-40 s, d from 30 s, the manager's own "
           f"node a from 45 s) poll() should report exactly: {described}; it reported: "
           + ("; ".join(f"{e} {n} at t={t:g}" for t, e, n in returned) or "nothing")
           + " (one event per change of suspicion, never your own node)")
    wanted_calls = [e for e in expected if e[1] == NODE_CRASHED or e[0] >= 30.0]
    expect(calls == wanted_calls,
           f"the handlers should have been called for {wanted_calls}, were called for {calls} "
           "(a handler that raises must not stop the manager; an event with no handler is "
           "recorded, not lost)")
    history = [tuple(h) for h in manager.history]
    outcomes = [(h[1], h[2], h[3]) for h in history]
    wanted = [(n, e, "failed" if (e, n) == (NODE_CRASHED, "d") else
               "unhandled" if e == NODE_RECOVERED and t < 30.0 else "handled")
              for t, e, n in expected]
    expect(outcomes == wanted,
           f"history should be {wanted} as (node, event_type, outcome), got {outcomes}")
    expect([h[0] for h in history] == [t for t, _, _ in expected],
           "history entries should carry the poll's now as their time")

    fetched.clear()
    source = manager.recover_state()
    expect("d" not in fetched, "recover_state() asked d, which is currently failed: ask only "
                               "the peers not handled as failed")
    expect("a" not in fetched, "recover_state() asked the manager's own node")
    expect(source == "c" and manager.state == {"x": "c"},
           f"peers answered b: (epoch 3, seq 17), c: (epoch 4, seq 2); recover_state() should "
           f"adopt c's state (the newest: compare (epoch, seq), epoch first), but it returned "
           f"{source!r} with state {manager.state!r}")
    snapshots["c"] = None
    expect(manager.recover_state() == "b" and manager.state == {"x": "b"},
           "with c unreachable (fetch_state returned None), recover_state() should adopt b's state")
    snapshots["b"] = None
    expect(manager.recover_state() is None and manager.state == {"x": "b"},
           "with no peer answering, recover_state() should return None and keep the state")
    return (f"{len(expected)} events of a seeded 60 s scenario, each handled once, own node "
            "never reported; a raising handler and a missing one recorded; state recovered from "
            "the newest (epoch, seq), failed peers not asked")


# -- 3. data backup --------------------------------------------------------------------------

def data_backup(write_backup, read_backup, BackupCorrupted) -> str:
    state = {"balance": 12345, "owner": "ada", "orders": [1, 2, 3], "note": "備份"}
    real_fsync = os.fsync
    syncs = {"n": 0, "fail": False}

    def fsync(fd):
        syncs["n"] += 1
        if syncs["fail"]:
            raise OSError("simulated crash: the machine lost power before fsync returned")
        return real_fsync(fd)

    with tempfile.TemporaryDirectory(prefix="ex3-backup-") as folder:
        path = Path(folder) / "state.backup"
        os.fsync = fsync
        try:
            write_backup(path, state, 7)
            synced = syncs["n"]
            restored = read_backup(path)
            expect(isinstance(restored, tuple) and len(restored) == 2 and
                   restored[0] == 7 and restored[1] == state,
                   f"read_backup should return (7, {state!r}) after write_backup(path, state, 7), "
                   f"got {restored!r}")
            expect(synced >= 1, "write_backup never called os.fsync: when it returns the backup "
                                "may still be only in the page cache")
            write_backup(path, {"balance": 1}, 8)
            expect(read_backup(path) == (8, {"balance": 1}), "a second write_backup did not replace the first")
            write_backup(path, state, 9)
            syncs["fail"] = True
            crashed = False
            try:
                write_backup(path, {"balance": 0, "owner": "mallory"}, 10)
            except OSError:
                crashed = True
            syncs["fail"] = False
            expect(crashed, "write_backup swallowed the error of a failing os.fsync")
            try:
                after = read_backup(path)
            except BackupCorrupted:
                after = "BackupCorrupted"
            expect(after == (9, state),
                   f"a crash during write_backup (os.fsync failed before the new backup was "
                   f"durable) left {path.name} reading {after!r} instead of the previous backup "
                   f"(9, ...): write a temporary file, fsync it, then os.replace it over path")
        finally:
            os.fsync = real_fsync

        write_backup(path, state, 11)
        good = path.read_bytes()
        damages = []
        if b"12345" in good:
            damages.append(("a balance edited from 12345 to 12346", good.replace(b"12345", b"12346", 1)))
        damages.append(("a file cut in half", good[: len(good) // 2]))
        damages.append(("a flipped byte in the middle",
                        good[: len(good) // 2] + bytes([good[len(good) // 2] ^ 0x20]) + good[len(good) // 2 + 1:]))
        damages.append(("bytes that are not text", b"\xff\xfe\x00garbage"))
        damages.append(("an empty file", b""))
        for what, data in damages:
            path.write_bytes(data)
            try:
                got = read_backup(path)
            except BackupCorrupted:
                continue
            except Exception as error:
                expect(False, f"read_backup of {what} raised {type(error).__name__}: {error}; "
                              "turn every unreadable or altered file into BackupCorrupted")
            expect(False, f"read_backup accepted {what} and returned {got!r}: recompute the "
                          "checksum over the contents and refuse a mismatch with BackupCorrupted")
    return (f"round trip; fsync called; a crash before the new backup was durable kept the "
            f"previous one; {len(damages)} kinds of damage refused with BackupCorrupted")


# -- 4. load balancing -------------------------------------------------------------------------

def load_balancing(ConsistentHashRing) -> str:
    nodes = [f"node-{i}" for i in range(1, 6)]
    keys = [f"key-{i}" for i in range(10_000)]
    ring = ConsistentHashRing(nodes)
    before = {k: ring.node_for(k) for k in keys}
    counts = {n: 0 for n in nodes}
    for owner in before.values():
        expect(owner in counts, f"node_for returned {owner!r}, not one of the nodes {nodes}")
        counts[owner] += 1
    mean = len(keys) / len(nodes)
    expect(all(0.6 * mean <= c <= 1.5 * mean for c in counts.values()),
           f"10,000 keys over 5 nodes should give each 1,200 to 3,000 keys (mean 2,000), got "
           f"{counts}: place each node at many points (virtual nodes) of the ring")
    again = ConsistentHashRing(list(reversed(nodes)))
    expect(all(again.node_for(k) == before[k] for k in keys[:2000]),
           "a ring built from the same nodes in another order maps keys differently: the ring "
           "must depend only on the set of nodes (sort by position; hash with hashlib)")

    elsewhere = dict(zip(keys, _owners_in_another_process(ConsistentHashRing, nodes, keys[:500])))
    differ = [k for k, owner in elsewhere.items() if owner != before[k]]
    if differ:
        k = differ[0]
        expect(False, f"the same ring built in another Python process maps {len(differ)} of 500 "
                      f"keys elsewhere (e.g. {k!r}: {before[k]} here, {elsewhere[k]} there): every "
                      f"client and server must agree on a key's owner, and Python's hash() of a "
                      f"str changes from one process to the next (PYTHONHASHSEED) — hash with "
                      f"hashlib")

    ring.add("node-6")
    after = {k: ring.node_for(k) for k in keys}
    moved = [k for k in keys if after[k] != before[k]]
    wrong = [k for k in moved if after[k] != "node-6"]
    if wrong:
        key = wrong[0]
        expect(False, f"adding node-6 moved {len(wrong)} keys between old nodes (e.g. {key!r} "
                      f"from {before[key]} to {after[key]}): only keys that node-6 now owns may move")
    share = len(moved) / len(keys)
    expect(0.5 / 6 <= share <= 2.0 / 6,
           f"adding a 6th node moved {share:.1%} of the keys; consistent hashing moves about "
           "1/6 (16.7%) — every key moved should be one node-6 now owns")
    ring.remove("node-6")
    expect(all(ring.node_for(k) == before[k] for k in keys),
           "after remove('node-6') keys did not all go back to their owners before add('node-6')")

    ring.mark_down("node-2")
    down = {k: ring.node_for(k) for k in keys}
    expect(all(o != "node-2" for o in down.values()),
           f"after mark_down('node-2'), node_for still sent {sum(o == 'node-2' for o in down.values())} "
           "keys to node-2: a dead backend must get no traffic")
    shuffled = [k for k in keys if before[k] != "node-2" and down[k] != before[k]]
    expect(not shuffled, f"marking node-2 down moved {len(shuffled)} keys that node-2 did not own: "
                         "only its keys should go, to the next healthy node on the ring")
    spread = {n for k, n in down.items() if before[k] == "node-2"}
    expect(len(spread) >= 3, f"node-2's keys all went to {sorted(spread)}: with virtual nodes "
                             "they spread over the other nodes")
    ring.mark_up("node-2")
    expect(all(ring.node_for(k) == before[k] for k in keys),
           "after mark_up('node-2') the mapping is not what it was before mark_down")
    for n in nodes:
        ring.mark_down(n)
    try:
        ring.node_for("key-1")
        none_left = False
    except LookupError:
        none_left = True
    expect(none_left, "with every node marked down, node_for should raise LookupError")
    return (f"10,000 keys spread {min(counts.values())}-{max(counts.values())} per node; adding a "
            f"node moved {share:.1%}, all to it; a down node gets nothing and only its keys move; "
            "order-independent")


_OWNERS = """
import pickle, sys
ring_class, nodes, keys = pickle.loads(sys.stdin.buffer.read())
ring = ring_class(nodes)
sys.stdout.write("\\n".join(ring.node_for(k) for k in keys))
"""


def _owners_in_another_process(ConsistentHashRing, nodes: list, keys: list) -> list:
    """``node_for`` of each key by the learner's ring built in a fresh Python process
    with another string-hash seed (the class travels by value, with cloudpickle)."""
    import subprocess
    import sys

    import cloudpickle

    seed = "1" if os.environ.get("PYTHONHASHSEED") != "1" else "2"
    try:
        payload = cloudpickle.dumps((ConsistentHashRing, nodes, keys))
    except Exception as e:
        expect(False, f"could not send your ConsistentHashRing to a second process to compare "
                      f"its mapping ({type(e).__name__}: {e}); keep only plain data in it")
    run = subprocess.run([sys.executable, "-c", _OWNERS], input=payload, capture_output=True,
                         timeout=60, env=dict(os.environ, PYTHONHASHSEED=seed))
    lines = run.stderr.decode(errors="replace").strip().splitlines()
    expect(run.returncode == 0, "your ConsistentHashRing failed in a second Python process: "
                                + (lines[-1] if lines else f"exit status {run.returncode}"))
    return run.stdout.decode().split("\n")


# -- 5. hot-standby failover ------------------------------------------------------------------

class PausablePrimary:
    """The learner's ``HotStandby`` as the first primary, in a process of its own (forked,
    so the learner's class comes along) with its own ZooKeeper session, so that it can be
    frozen with SIGSTOP past its session timeout, as a long GC pause or a frozen VM
    would, then woken to write. The storage it writes to lives in the checker's process,
    as a real storage service outlives a frozen client; requests go over a pipe."""

    def __init__(self, HotStandby, path: str, identifier: str, address) -> None:
        import multiprocessing

        context = multiprocessing.get_context("fork")
        self.identifier = identifier
        self.conn, theirs = context.Pipe()
        self.process = context.Process(target=_serve_primary, daemon=True,
                                       args=(HotStandby, path, identifier, address, theirs))
        self.process.start()

    def ask(self, *request, what: str, timeout: float = 10.0):
        """Run ``request`` in the primary's process: its result, or the learner's
        exception raised again here (``NotActive``, ``StaleToken``...)."""
        self.conn.send(request)
        expect(self.conn.poll(timeout), f"{self.identifier}'s {what} had not returned after "
                                        f"{timeout:.0f} s")
        ok, value = self.conn.recv()
        if not ok:
            raise value
        return value

    def pause(self) -> None:
        os.kill(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.kill(self.process.pid, signal.SIGCONT)

    def close(self) -> None:
        if self.process.is_alive():
            self.resume()
            self.process.kill()
        self.process.join(5)
        self.conn.close()


class RemoteError(Exception):
    """An exception of the learner's code in the primary's process that could not be
    sent back as it is (its class does not pickle); ``name`` is its class's name."""

    def __init__(self, name: str, text: str) -> None:
        super().__init__(name, text)
        self.name, self.text = name, text

    def __str__(self) -> str:
        return f"{self.name}: {self.text}"


def error_name(error: BaseException) -> str:
    return error.name if isinstance(error, RemoteError) else type(error).__name__


def _serve_primary(HotStandby, path, identifier, address, conn) -> None:
    from course_lib.coord.fencing import FencedStorageClient
    from course_lib.zk import connect

    client = connect(timeout=4.0)
    calls: list[float] = []
    standby = HotStandby(client, path, identifier, FencedStorageClient(address, identifier),
                         on_active=lambda: calls.append(time.monotonic()))
    requests = {
        "start": standby.start,
        "state": lambda: (standby.is_active(), len(calls), standby.token),
        "write": standby.write,
    }
    while True:
        try:
            name, *args = conn.recv()
        except EOFError:
            return
        try:
            reply = (True, requests[name](*args))
        except BaseException as error:  # the learner's: raised again in the checker
            reply = (False, error)
        try:
            pickle.loads(pickle.dumps(reply))  # what the checker's process will unpickle
        except Exception:  # an exception (or a result) that does not travel
            error = reply[1] if not reply[0] else TypeError(f"{name} returned {reply[1]!r}")
            reply = (False, RemoteError(type(error).__name__, str(error)))
        conn.send(reply)


def called_once(calls: dict) -> None:
    """``calls``: node -> how many times its ``on_active`` was called, once each."""
    repeats = {name: count for name, count in calls.items() if count != 1}
    expect(not repeats, f"on_active was called {repeats} times: call it once, when the node "
                        "becomes active")


def hot_standby(HotStandby, NotActive) -> str:
    from course_lib.coord import FencedStorage

    storage = FencedStorage().start()
    with Run("ex3-standby") as run:
        path = run.path("primary")
        primary = PausablePrimary(HotStandby, path, "node-0", storage.address)
        try:
            return _failover(run, path, primary, storage, HotStandby, NotActive)
        finally:
            primary.close()
            storage.stop()


def _failover(run: Run, path: str, primary: PausablePrimary, storage, HotStandby, NotActive) -> str:
    calls: dict[str, list[float]] = {"node-1": [], "node-2": []}
    clients = [run.client() for _ in range(2)]
    standbys = [HotStandby(client, path, name, storage,
                           on_active=lambda name=name: calls[name].append(time.monotonic()))
                for client, name in zip(clients, calls)]
    state = lambda: primary.ask("state", what="is_active()")   # (active, on_active calls, token)
    expect(state()[0] is False, "is_active() before start() should be False")
    primary.ask("start", what="start() (it must return at once, not wait to become "
                              "active)", timeout=5.0)
    expect(wait_until(lambda: state()[0] is True, 3.0),
           "node-0 started first, alone, but it was not active within 3 s")
    time.sleep(0.1)
    called_once({"node-0": state()[1]})
    for i, standby in enumerate(standbys, start=1):
        bounded(standby.start, f"node-{i}'s start() (it must return at once, not wait to "
                               "become active)", timeout=5.0)
        time.sleep(0.05)
    time.sleep(0.2)
    actives = [f"node-{i}" for i, s in enumerate(standbys, start=1) if s.is_active()]
    woken = sorted(name for name, times in calls.items() if times)
    # node-0's own view, given a moment: a loaded machine can suspend its session briefly
    primary_active = wait_until(lambda: state()[0] is True, 3.0)
    expect(not actives and not woken and primary_active,
           f"exactly node-0 should be active; node-0's is_active() is {primary_active}, among "
           f"the standbys it is true for {actives} and on_active was called for {woken}")

    before = [run.meter(c).snapshot() for c in clients]
    time.sleep(0.5)
    idle = [run.meter(c).snapshot() for c in clients]
    polls = sum(i[0] - b[0] for i, b in zip(idle, before))
    expect(polls <= 2 and all(b[1] >= 1 for b in before),
           f"while node-0 was active, the two standbys sent {polls} requests to ZooKeeper in "
           f"0.5 s and had set {[b[1] for b in before]} watches: a standby must wait on a "
           "watch of the node ahead of it, not poll")

    primary.ask("write", "config", "v0", what="write()")
    expect(storage.read("config") == "v0", "the active node's write(...) did not reach the storage")
    token0 = state()[2]
    expect(isinstance(token0, int) and storage.highest_token == token0,
           f"write should pass the node's token ({token0!r}) to storage.write; the storage "
           f"saw token {storage.highest_token}")
    try:
        standbys[0].write("config", "from-a-standby")
        refused = False
    except NotActive:
        refused = True
    expect(refused and storage.read("config") == "v0",
           "a standby's write(...) should raise NotActive and leave the storage alone")

    primary.pause()  # frozen past its session timeout: ZooKeeper ends its session
    began = time.monotonic()
    expect(wait_until(lambda: calls["node-1"], 15.0),
           "node-0 was frozen (SIGSTOP) and its session expired, but 15 s on node-1's "
           "on_active had not been called: the standby must watch the node ahead of it and "
           "take over when it goes")
    takeover = calls["node-1"][0] - began
    expect(standbys[0].is_active() and not standbys[1].is_active() and not calls["node-2"],
           "after node-0's session expired, node-1 (next in line) alone should be active")
    standbys[0].write("config", "v1")
    token1 = standbys[0].token
    expect(isinstance(token1, int) and token1 > token0,
           f"the new primary's token {token1!r} should be larger than the old one's {token0!r}: "
           "use the sequence number of the node that won")

    primary.resume()  # wakes believing, maybe, that it is still the primary; it writes
    try:
        primary.ask("write", "config", "stale", what="write() after waking")
        how = "accepted"
    except Exception as error:
        how = error_name(error)
    stale = [r for r in storage.log if r.accepted and r.value == "stale"]
    expect(not stale and storage.read("config") == "v1",
           f"node-0 woke from its pause after node-1 took over, and its write reached the "
           f"storage (which now holds {storage.read('config')!r}): its write must be refused, "
           "by NotActive or by the storage refusing its older token")
    refusal = {"NotActive": "refused by NotActive",
               "StaleToken": "refused by the storage, for its older token"}.get(how, f"refused ({how})")

    standbys[0].stop()
    expect(standbys[0].is_active() is False, "is_active() right after stop() should be False")
    expect(wait_until(lambda: calls["node-2"], 5.0),
           "after node-1 stopped (stop()), node-2 did not become active within 5 s")
    standbys[1].write("config", "v2")
    expect(storage.read("config") == "v2" and standbys[1].token > token1,
           "the third primary's write did not go through with a larger token")
    time.sleep(0.2)
    called_once({"node-0": state()[1], **{name: len(times) for name, times in calls.items()}})
    return (f"one active at a time, woken by a watch; the standby took over {takeover:.2f} s "
            f"after the primary froze; tokens grow; the woken primary's write was {refusal}")
