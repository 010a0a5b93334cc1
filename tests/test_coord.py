"""Coordination recipes against the real ZooKeeper ensemble, with real worker processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid

import pytest

from course_lib.chapter import coord as chapter
from course_lib.coord import (ConfigConflict, CoordinationTimeout, DistributedLock,
                              DistributedReadWriteLock, FencedStorage, LeaderElection, StaleToken,
                              ZKCoordinator)
from course_lib.zk import connect


@pytest.fixture
def namespace():
    return f"t{uuid.uuid4().hex[:10]}"


@pytest.fixture
def zk(session_ensemble):
    client = connect(session_ensemble.hosts)
    yield client
    client.stop()
    client.close()


def start_workers(hosts, namespace, n, count, *extra):
    return [subprocess.Popen(
        [sys.executable, "-m", "course_lib.coord.worker", "counter", "--hosts", hosts,
         "--namespace", namespace, "--name", "counter", "--id", f"w{i}", "--count", str(count),
         "--trace", *extra], stdout=subprocess.PIPE, text=True) for i in range(n)]


def collect(workers, timeout=240):
    lines = []
    for worker in workers:
        out, _ = worker.communicate(timeout=timeout)
        assert worker.returncode == 0, f"worker exited with {worker.returncode}"
        lines += [json.loads(line) for line in out.splitlines()]
    return lines


def assert_no_overlap(intervals):
    intervals = sorted(intervals)
    for (start_a, end_a, who_a), (start_b, end_b, who_b) in zip(intervals, intervals[1:]):
        assert start_b >= end_a, f"{who_a} held until {end_a}, {who_b} from {start_b}"


def counter_value(client, namespace):
    return int(client.get(f"/{namespace}/counters/counter")[0])


def test_mutual_exclusion_8_processes_200_each(zk, session_ensemble, namespace):
    lines = collect(start_workers(session_ensemble.hosts, namespace, 8, 200))
    held = [e for e in lines if e["event"] == "held"]
    assert len(held) == 1600
    assert counter_value(zk, namespace) == 1600  # no lost update
    assert_no_overlap([(e["acquired"], e["released"], e["worker"]) for e in held])
    tokens = sorted(held, key=lambda e: e["acquired"])
    assert [e["token"] for e in tokens] == sorted(e["token"] for e in tokens)  # tokens only grow


def test_mutual_exclusion_while_a_server_is_killed_and_restarted(private_ensemble, namespace):
    ensemble = private_ensemble
    workers = start_workers(ensemble.hosts, namespace, 8, 200)
    for worker in workers:  # every worker has its session before the crash
        assert json.loads(worker.stdout.readline())["event"] == "connected"
    time.sleep(1.0)
    victim = ensemble.leader()
    ensemble.kill(victim)
    time.sleep(2.0)
    ensemble.restart(victim)
    lines = collect(workers)
    client = connect(ensemble.hosts)
    try:
        assert counter_value(client, namespace) == 1600
    finally:
        client.stop()
        client.close()
    held = [e for e in lines if e["event"] == "held"]
    assert_no_overlap([(e["acquired"], e["released"], e["worker"]) for e in held])


def test_the_unlocked_counter_does_lose_updates(zk, session_ensemble, namespace):
    # The control experiment: the same workers without a lock.
    collect(start_workers(session_ensemble.hosts, namespace, 4, 100, "--recipe", "none"))
    assert counter_value(zk, namespace) < 400


def test_lock_acquire_timeout_and_single_wakeup_per_release(zk, namespace):
    holder = DistributedLock(zk, "l", "holder", namespace=namespace)
    assert holder.acquire()
    began = time.monotonic()
    assert not DistributedLock(zk, "l", "impatient", namespace=namespace).acquire(timeout=0.3)
    assert 0.3 <= time.monotonic() - began < 2

    waiters = [DistributedLock(zk, "l", f"w{i}", namespace=namespace) for i in range(5)]
    order = []

    def wait_then_release(lock):
        lock.acquire()
        order.append(lock.identifier)
        lock.release()

    threads = []
    for lock in waiters:  # queue them up one after the other: arrival order is known
        threads.append(threading.Thread(target=wait_then_release, args=(lock,)))
        threads[-1].start()
        deadline = time.monotonic() + 5
        while len(holder.holders()) < len(threads) + 1 and time.monotonic() < deadline:
            time.sleep(0.01)
    assert holder.holders() == ["holder"] + [w.identifier for w in waiters]
    holder.release()
    for t in threads:
        t.join(10)
    assert order == [w.identifier for w in waiters]  # first come, first served
    assert [w.wakeups for w in waiters] == [1] * 5  # one wake-up per release, no herd


def test_read_write_lock_readers_share_writers_exclude_no_starvation(zk, namespace):
    intervals = []  # (kind, start, end)
    record = threading.Lock()

    def use(kind, hold):
        rw = DistributedReadWriteLock(zk, "rw", kind, namespace=namespace)
        side = rw.read_lock if kind == "read" else rw.write_lock
        side.acquire(timeout=30)
        start = time.monotonic()
        time.sleep(hold)
        end = time.monotonic()
        side.release()
        with record:
            intervals.append((kind, start, end))

    threads = []
    # A steady stream of overlapping readers, with a writer arriving in the middle.
    for i in range(12):
        kind = "write" if i in (4, 9) else "read"
        threads.append(threading.Thread(target=use, args=(kind, 0.15)))
        threads[-1].start()
        time.sleep(0.05)
    for t in threads:
        t.join(60)
    assert len(intervals) == 12
    reads = [(s, e) for k, s, e in intervals if k == "read"]
    writes = [(s, e) for k, s, e in intervals if k == "write"]
    assert any(s2 < e1 and s1 < e2 for i, (s1, e1) in enumerate(reads)
               for (s2, e2) in reads[i + 1:]), "readers should overlap"
    for ws, we in writes:
        for kind, s, e in intervals:
            if (s, e) != (ws, we):
                assert e <= ws or s >= we, f"a {kind} overlapped a writer"
    # No starvation: each writer got in before the readers that arrived after it.
    first_write = min(ws for ws, _ in writes)
    assert sum(1 for s, _ in reads if s < first_write) <= 5


def test_registry_many_instances_and_session_death(zk, session_ensemble, namespace):
    coordinator = ZKCoordinator(zk, namespace)
    seen = []
    coordinator.watch_services("api", lambda infos: seen.append(sorted(i["port"] for i in infos)))
    coordinator.register_service("api", {"port": 8000})
    # A second process registers an instance and is then killed: its session dies.
    process = subprocess.Popen([sys.executable, "-c", f"""
import time
from course_lib.zk import connect
from course_lib.coord import ZKCoordinator
client = connect({session_ensemble.hosts!r}, timeout=2.0)
ZKCoordinator(client, {namespace!r}).register_service("api", {{"port": 8001}})
print("registered", flush=True)
time.sleep(60)
"""], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout.readline().strip() == "registered"
        assert sorted(i["port"] for i in coordinator.get_services("api")) == [8000, 8001]
        process.kill()
        process.wait()
        deadline = time.monotonic() + 10
        while len(coordinator.get_services("api")) != 1 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert [i["port"] for i in coordinator.get_services("api")] == [8000]
    finally:
        process.kill()
    time.sleep(0.2)
    assert seen[-1] == [8000] and [8000, 8001] in seen  # the watcher saw it come and go


def test_fencing_refuses_a_paused_holder_whose_session_expired(session_ensemble, namespace):
    storage = FencedStorage().start()
    address = "%s:%d" % storage.address

    def fenced(worker, seconds):
        return subprocess.Popen(
            [sys.executable, "-m", "course_lib.coord.worker", "fenced", "--hosts",
             session_ensemble.hosts, "--namespace", namespace, "--name", "account", "--id", worker,
             "--storage", address, "--seconds", str(seconds), "--every", "0.1",
             "--session-timeout", "2"], stdout=subprocess.PIPE, text=True)

    first = fenced("A", 30)
    try:
        assert json.loads(first.stdout.readline())["event"] == "acquired"
        os.kill(first.pid, signal.SIGSTOP)  # a long GC pause: the session expires meanwhile
        second = fenced("B", 1.0)
        second_lines = [json.loads(line) for line in second.communicate(timeout=30)[0].splitlines()]
        os.kill(first.pid, signal.SIGCONT)  # A wakes up believing it holds the lock
        first_lines = [json.loads(line) for line in first.communicate(timeout=30)[0].splitlines()]
    finally:
        first.kill()
        storage.stop()
    b_token = second_lines[0]["token"]
    a_writes = [e for e in first_lines if e["event"] == "write"]
    assert any(e["accepted"] for e in second_lines if e["event"] == "write")
    assert a_writes[-1]["accepted"] is False and a_writes[-1]["token"] < b_token
    refused = [r for r in storage.log if not r.accepted]
    assert refused and all(r.writer == "A" for r in refused)
    assert storage.read("balance") == "written by B"
    with pytest.raises(StaleToken):
        storage.write("balance", "late", a_writes[-1]["token"], "A")


def test_leader_election_fails_over_when_the_leader_dies(session_ensemble, namespace):
    clients = [connect(session_ensemble.hosts, timeout=2.0) for _ in range(3)]
    elected = []
    elections = [LeaderElection(c, "primary", f"node{i}", namespace=namespace,
                                on_elected=lambda e: elected.append(e.identifier))
                 for i, c in enumerate(clients)]
    try:
        for e in elections:
            e.join()
        assert elections[0].wait_until_elected(5)
        assert elections[1].leader() == "node0"
        assert elections[2].candidates() == ["node0", "node1", "node2"]
        assert not elections[1].is_leader
        clients[0].stop()  # the leader's session ends
        assert elections[1].wait_until_elected(10)
        assert elections[2].leader() == "node1"
        elections[1].resign()
        assert elections[2].wait_until_elected(10)
        assert elected == ["node0", "node1", "node2"]
    finally:
        for c in clients:
            c.stop()
            c.close()


def test_config_compare_and_set_and_watch(zk, namespace):
    coordinator = ZKCoordinator(zk, namespace)
    changes = []
    coordinator.watch_config("limits", lambda value, version: changes.append((value, version)))
    assert coordinator.get_config("limits") == (None, -1)
    assert coordinator.set_config("limits", {"rps": 10}, expected_version=-1) == 0
    with pytest.raises(ConfigConflict):
        coordinator.set_config("limits", {"rps": 20}, expected_version=-1)
    value, version = coordinator.get_config("limits")
    coordinator.set_config("limits", {"rps": 30}, expected_version=version)
    with pytest.raises(ConfigConflict):  # a stale version is refused, nothing changes
        coordinator.set_config("limits", {"rps": 40}, expected_version=version)
    assert coordinator.get_config("limits") == ({"rps": 30}, 1)

    def bump():
        for _ in range(20):
            coordinator.update_config("hits", lambda n: (n or 0) + 1)

    threads = [threading.Thread(target=bump) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert coordinator.get_config("hits")[0] == 80
    time.sleep(0.2)
    assert changes[0] == (None, -1) and changes[-1] == ({"rps": 30}, 1)


def test_events_arrive_in_order_exactly_once(zk, namespace):
    coordinator = ZKCoordinator(zk, namespace)
    coordinator.publish("deploys", {"n": -1})  # before subscribing: not delivered
    received = []
    coordinator.subscribe("deploys", lambda seq, event: received.append(event["n"]))
    for n in range(30):
        coordinator.publish("deploys", {"n": n})
    deadline = time.monotonic() + 5
    while len(received) < 30 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert received == list(range(30))
    replay = []
    coordinator.subscribe("deploys", lambda seq, event: replay.append(event["n"]), from_start=True)
    time.sleep(0.3)
    assert replay == [-1] + list(range(30))
    assert coordinator.trim("deploys", keep=5) == 26


def test_operations_fail_clearly_when_no_server_answers(private_ensemble, namespace):
    client = connect(private_ensemble.hosts, timeout=10.0)
    coordinator = ZKCoordinator(client, namespace, op_timeout=2.0)
    try:
        coordinator.set_config("k", 1)
        private_ensemble.stop()
        began = time.monotonic()
        with pytest.raises(CoordinationTimeout, match="did not answer within 2 s"):
            coordinator.get_config("k")
        assert time.monotonic() - began < 6
    finally:
        client.stop()
        client.close()


def test_bad_input_raises_value_error(zk):
    coordinator = ZKCoordinator(zk, "badinput")
    with pytest.raises(ValueError, match="service name"):
        coordinator.register_service("a/b", {})
    with pytest.raises(ValueError, match="JSON"):
        coordinator.register_service("api", {"x": object()})
    with pytest.raises(ValueError, match="lock name"):
        DistributedLock(zk, "")
    with pytest.raises(ValueError, match="timeout"):
        DistributedLock(zk, "ok").acquire(timeout=-1)
    with pytest.raises(ValueError, match="namespace"):
        ZKCoordinator(zk, "has space")
    with pytest.raises(ValueError, match="expected_version"):
        coordinator.set_config("k", 1, expected_version=-5)
    with pytest.raises(ValueError, match="KazooClient"):
        DistributedLock("not a client", "ok")


def test_chapter_registry_cannot_hold_two_instances(zk, namespace):
    import asyncio

    coordinator = chapter.ZKCoordinator("", namespace, client=zk)
    from kazoo.exceptions import NoNodeError
    with pytest.raises(NoNodeError):  # ensure_path doubled the namespace: no parent
        asyncio.run(coordinator.register_service("api", {"port": 1}))
    assert zk.exists(f"/{namespace}/{namespace}/services") is not None
    zk.ensure_path(f"/{namespace}/services")
    assert asyncio.run(coordinator.register_service("api", {"port": 1})) is True
    assert asyncio.run(coordinator.register_service("api", {"port": 2})) is False
    assert asyncio.run(coordinator.get_services("api")) == [{"port": 1}]


def test_chapter_rwlock_lets_a_writer_in_beside_a_reader(zk, namespace):
    import asyncio

    coordinator = chapter.ZKCoordinator("", namespace, client=zk)
    reader = chapter.DistributedReadWriteLock(coordinator, "rw")
    writer = chapter.DistributedReadWriteLock(coordinator, "rw")
    assert asyncio.run(reader.acquire_read())
    assert asyncio.run(writer.acquire_write())  # should have been refused


def test_coordinator_from_a_hosts_string_owns_its_client_as_in_the_chapter(zk, session_ensemble, namespace):
    with ZKCoordinator(session_ensemble.hosts, namespace) as own:
        assert own.owns_client and own.client.connected
        own.register_service("api", {"port": 1})
        assert [i["port"] for i in ZKCoordinator(zk, namespace).get_services("api")] == [1]
    assert not own.client.connected
    # its session ended with close(): the instance is gone at once, not after a timeout
    assert ZKCoordinator(zk, namespace).get_services("api") == []
    shared = ZKCoordinator(zk, namespace)
    shared.close()
    assert not shared.owns_client and zk.connected, "a shared client is never closed"
    with pytest.raises(ValueError, match="at least one server"):
        ZKCoordinator("  ", namespace)
    with pytest.raises(ValueError, match="namespace"):
        ZKCoordinator(session_ensemble.hosts, "bad/namespace")
