"""Recovery without processes: the replication core, the in-process replicator, backup
and restore, the recovery manager, and the chapter's replicator losing data."""

from __future__ import annotations

import asyncio
import json
import random

import pytest

from course_lib.chapter import recovery as chapter
from course_lib.detect import FailureDetector
from course_lib.recovery import (NODE_CRASHED, NODE_RECOVERED, Ack, BackupCorrupted, CatchUp,
                                 NotEnoughReplicas, NotPrimary, PrimaryCrashed, RecoveryManager,
                                 Refuse, Replica, Role, Snapshot, StateReplicator, read_backup,
                                 write_backup)
from course_lib.recovery.codec import decode, encode
from course_lib.recovery.records import LogEntry, Ready, Replicate
from course_lib.recovery.storage import DiskStorage


def run(coro):
    return asyncio.run(coro)


def pair():
    """A primary 'p' (epoch 1) with backup 'b' attached and caught up."""
    p, b = Replica("p", acks=1), Replica("b", acks=1)
    p.become_primary(1)
    deliver(b, p, b.follow("p", 1))
    return p, b


def deliver(src, dst, ready):
    """Deliver ``src``'s ``ready`` messages to ``dst``, and the replies back and forth."""
    committed = list(ready.committed)
    queue = [(dst, m) for _, m in ready.messages]
    while queue:
        target, msg = queue.pop(0)
        out = target.step(msg)
        committed += out.committed
        other = src if target is dst else dst
        queue += [(other, m) for _, m in out.messages]
    return committed


# -- the core, one rule per test ------------------------------------------------------

def test_a_write_is_committed_only_once_acks_backups_hold_it():
    p, b = pair()
    seq, ready = p.propose("x", 1)
    assert seq == 1 and ready.committed == () and p.state == {}
    assert ready.entries == (LogEntry(1, 1, "x", 1),)  # persist before send
    ack = b.step(ready.messages[0][1])
    assert ack.entries == (LogEntry(1, 1, "x", 1),)
    assert p.step(ack.messages[0][1]).committed == (1,)
    assert p.state == {"x": 1}


def test_the_primary_refuses_writes_without_enough_backups():
    p = Replica("p", acks=1)
    p.become_primary(1)
    with pytest.raises(NotEnoughReplicas):
        p.propose("x", 1)
    with pytest.raises(NotPrimary):
        Replica("b").propose("x", 1)


def test_a_backup_refuses_a_primary_with_an_older_epoch_which_is_deposed():
    old, b = pair()
    seq, ready = old.propose("x", 1)
    b.follow("new", 2)  # the election moved on: epoch 2
    reply = b.step(ready.messages[0][1])
    assert reply.messages == (("p", Refuse("b", 2)),)
    out = old.step(reply.messages[0][1])
    assert out.epoch == 2 and old.role is Role.DEPOSED
    with pytest.raises(NotPrimary):
        old.propose("y", 2)
    assert old.step(Ack("b", 1, seq)).committed == ()  # a late ack cannot commit it now


def test_catch_up_sends_the_log_suffix_when_the_logs_match():
    p, b = pair()
    for i in range(5):
        deliver(p, b, p.propose(f"k{i}", i)[1])
    c = Replica("c", acks=1, epoch=1, entries=list(b.log.entries[:2]))
    out = c.follow("p", 1)
    reply = p.step(out.messages[0][1]).messages[0][1]
    assert reply.snapshot is None and [e.seq for e in reply.entries] == [3, 4, 5]


def test_catch_up_sends_a_snapshot_when_the_log_was_compacted():
    p, b = pair()
    for i in range(5):
        deliver(p, b, p.propose(f"k{i}", i)[1])
    p.compact()
    c = Replica("c", acks=1)
    reply = p.step(c.follow("p", 1).messages[0][1]).messages[0][1]
    assert reply.snapshot == Snapshot.of(5, 1, {f"k{i}": i for i in range(5)})
    c.step(reply)
    assert c.log.last_seq == 5


def test_uncommitted_entries_of_a_deposed_primary_are_replaced():
    p, b = pair()
    deliver(p, b, p.propose("x", 1)[1])
    p.propose("lost", 2)  # persisted on p, never sent: p crashes
    b.become_primary(2)
    restarted = Replica("p", acks=1, epoch=1, entries=list(p.log.entries))
    c2 = Replica("c", acks=1)
    deliver(c2, b, c2.follow("b", 2))
    deliver(b, c2, b.propose("y", 3)[1])
    deliver(restarted, b, restarted.follow("b", 2))
    holding = dict(restarted.log.snapshot.state())
    holding.update({e.key: e.value for e in restarted.log.entries})
    assert holding == {"x": 1, "y": 3}
    assert [(e.seq, e.epoch) for e in restarted.log.entries] == [(2, 2)] or restarted.log.last_seq == 2


def test_become_primary_needs_a_new_epoch_and_bad_arguments_raise_value_error():
    r = Replica("a")
    r.become_primary(3)
    with pytest.raises(ValueError, match="epoch"):
        Replica("b", epoch=3).become_primary(3)
    for bad in (lambda: Replica(""), lambda: Replica("a", acks=-1), lambda: Replica("a", acks=True),
                lambda: r.propose("", 1), lambda: r.propose("k", float("nan")),
                lambda: r.propose("k", object()), lambda: Replica("a").follow("a", 1),
                lambda: StateReplicator("z", ["a", "b"]), lambda: StateReplicator("a", ["a", "a"]),
                lambda: StateReplicator("a", ["a", "b"], acks=2),
                lambda: RecoveryManager("a", ["b"]), lambda: RecoveryManager("a", ["a"], detector=1),
                lambda: write_backup("/tmp/x", {"x": 1})):
        with pytest.raises(ValueError):
            bad()


def test_messages_survive_the_codec():
    snap = Snapshot.of(3, 2, {"a": [1, 2], "b": None})
    for msg in (Replicate("p", 2, 3, 2, (LogEntry(4, 2, "k", {"v": 1}),), 3, snap),
                CatchUp("b", 2, 0, -1), Ack("b", 2, 4), Refuse("b", 3)):
        assert decode(encode(msg)) == msg
    assert decode(b'{"op": "dump"}') == {"op": "dump"}
    with pytest.raises(ValueError):
        decode(b'{"type": "Nope"}')


# -- the in-process replicator ------------------------------------------------------------

def test_replicator_crash_mid_update_leaves_no_divergence_after_failover():
    r = StateReplicator("a", ["a", "b", "c"], seed=7)
    acked = {}
    for i in range(10):
        run(r.update_state(f"k{i}", i))
        acked[f"k{i}"] = i
    r.crash_after("a", 1)  # the write reaches one backup, then the primary dies
    with pytest.raises(PrimaryCrashed):
        run(r.update_state("x", "maybe"))
    assert r.replica_state("b") != r.replica_state("c")
    r.fail_over("b")
    assert r.replica_state("b") == r.replica_state("c")  # catch-up closes the gap
    r.restart("a")
    run(r.update_state("after", 1))
    states = [r.replica_state(n) for n in r.nodes]
    assert states[0] == states[1] == states[2]
    assert acked.items() <= states[0].items()


def test_replicator_randomized_crashes_never_lose_an_acknowledged_write():
    crashes = acknowledged = 0
    for seed in range(20):
        rng = random.Random(seed)
        r = StateReplicator("a", ["a", "b", "c"], seed=seed)
        acked = {}
        for step in range(60):
            down = [n for n in r.nodes if not r.is_up(n)]
            if down and rng.random() < 0.5:
                r.restart(rng.choice(down))
            if not r.serving:
                r.fail_over(rng.choice([n for n in r.nodes if r.is_up(n)]))
            if rng.random() < 0.1:
                r.crash_after(r.primary, rng.randrange(3))
            key = f"k{rng.randrange(8)}"
            try:
                run(r.update_state(key, step))
                acked[key] = step
                acknowledged += 1
            except PrimaryCrashed:
                crashes += 1
                acked.pop(key, None)
            except (NotEnoughReplicas, NotPrimary):
                acked.pop(key, None)  # not acknowledged: either value may stand
            if r.serving:
                assert acked.items() <= r.state.items(), f"seed {seed} step {step}"
        assert r.delivered > 100
    assert crashes > 20 and acknowledged > 500


def test_restore_from_a_backup_then_catch_up_from_the_log(tmp_path):
    r = StateReplicator("a", ["a", "b"], seed=1)
    for i in range(5):
        run(r.update_state(f"k{i}", i))
    path = write_backup(tmp_path / "b.json", r.replicas["a"].snapshot())
    for i in range(5, 8):
        run(r.update_state(f"k{i}", i))
    r.crash("b")
    r.disks["b"] = type(r.disks["b"])()  # its disk is lost too
    r.restore("b", read_backup(path))
    r.restart("b")
    assert r.replica_state("b") == r.state == {f"k{i}": i for i in range(8)}


def test_backup_round_trip_and_a_corrupted_file_is_refused(tmp_path):
    snap = Snapshot.of(42, 3, {"balance": 100, "owner": "ada"})
    path = write_backup(tmp_path / "backup.json", snap)
    assert read_backup(path) == snap
    document = json.loads(path.read_text())
    document["snapshot"]["state"]["balance"] = 1_000_000
    path.write_text(json.dumps(document))
    with pytest.raises(BackupCorrupted, match="checksum"):
        read_backup(path)
    path.write_text('{"format": 1, "snapsh')
    with pytest.raises(BackupCorrupted):
        read_backup(path)


def test_disk_storage_survives_reopening_and_drops_a_torn_last_line(tmp_path):
    disk = DiskStorage(tmp_path)
    disk.persist(Ready(epoch=2, entries=(LogEntry(1, 2, "a", 1), LogEntry(2, 2, "b", 2))))
    disk.close()
    with open(tmp_path / "log.jsonl", "ab") as f:
        f.write(b'{"e": "[3, 2, \\"c\\"')  # a crash in the middle of an append
    assert DiskStorage(tmp_path).load() == (2, Snapshot(), [LogEntry(1, 2, "a", 1), LogEntry(2, 2, "b", 2)])
    disk = DiskStorage(tmp_path)
    disk.persist(Ready(snapshot=Snapshot.of(2, 2, {"a": 1, "b": 2}), entries=(LogEntry(3, 2, "c", 3),)))
    assert disk.load() == (2, Snapshot.of(2, 2, {"a": 1, "b": 2}), [LogEntry(3, 2, "c", 3)])


# -- the recovery manager ---------------------------------------------------------------------

def test_recovery_manager_is_driven_by_the_detector_once_per_change():
    detector = FailureDetector("a", ["a", "b", "c"], timeout=1.0, start=0.0)
    calls = []

    async def on_crash(node):
        calls.append(("crash", node))

    manager = RecoveryManager("a", ["a", "b", "c"], detector=detector)
    manager.register_handler(NODE_CRASHED, on_crash)
    manager.register_handler(NODE_RECOVERED, lambda node: calls.append(("back", node)))
    for t in (0.5, 1.0):
        detector.heartbeat("b", t)
        detector.heartbeat("c", t)
    for t in (1.5, 2.2, 2.6, 3.0):
        detector.heartbeat("c", t)
        run(manager.poll(t))
    detector.heartbeat("b", 3.1)
    run(manager.poll(3.2))
    assert calls == [("crash", "b"), ("back", "b")]
    assert [r.event_type for r in manager.history] == [NODE_CRASHED, NODE_RECOVERED]


def test_recovery_manager_records_unhandled_and_failing_handlers():
    manager = RecoveryManager("a", ["a", "b"])
    record = run(manager.handle_failure("b", "disk_full"))
    assert not record.handled and "no handler" in record.error
    manager.register_handler("disk_full", lambda node: 1 / 0)
    assert "ZeroDivisionError" in run(manager.handle_failure("b", "disk_full")).error
    with pytest.raises(ValueError):
        run(manager.handle_failure("a", "disk_full"))


def test_recovery_manager_recovers_the_newest_state_not_the_first():
    snapshots = {"b": Snapshot.of(3, 1, {"x": "old"}), "c": Snapshot.of(5, 2, {"x": "new"})}

    async def fetch(node):
        return snapshots[node]

    manager = RecoveryManager("a", ["a", "b", "c"], fetch_state=fetch)
    assert run(manager.recover_state()) and manager.state == {"x": "new"}


# -- the chapter's flaws ---------------------------------------------------------------------

def chapter_group(seed):
    net = chapter.SimulatedTransport(seed)
    return net, {n: chapter.StateReplicator(n, ["a", "b", "c"], net) for n in "abc"}


def test_chapter_update_state_returns_false_yet_keeps_the_change():
    net, nodes = chapter_group(0)
    run(nodes["a"].update_state("x", 1))
    net.down.add("c")
    assert run(nodes["a"].update_state("x", 2)) is False
    net.down.discard("c")
    assert [nodes[n].state["x"] for n in "abc"] == [2, 2, 1]  # "failed", yet visible on two


def test_chapter_crash_mid_update_leaves_replicas_different_for_good():
    net, nodes = chapter_group(0)
    run(nodes["a"].update_state("x", 1))
    net.crash_after("a", 1)
    with pytest.raises(chapter.NodeCrashed):
        run(nodes["a"].update_state("x", 2))
    assert nodes["b"].state != nodes["c"].state
    assert nodes["b"].version == nodes["c"].version + 1  # nothing ever notices the gap


def test_chapter_concurrent_updates_diverge():
    net, nodes = chapter_group(3)

    async def both():
        return await asyncio.gather(nodes["a"].update_state("x", "from a"),
                                    nodes["b"].update_state("x", "from b"))

    assert run(both()) == [True, True]  # both report success
    assert len({nodes[n].state["x"] for n in "abc"}) == 2  # and the replicas disagree


def test_chapter_recover_state_adopts_the_first_answer_even_if_stale():
    net, nodes = chapter_group(0)
    run(nodes["a"].update_state("x", 1))
    net.down.add("b")
    run(nodes["a"].update_state("x", 2))  # b misses it
    net.down.discard("b")
    manager = chapter.RecoveryManager("c", ["c", "b", "a"], net)
    assert run(manager.recover_state()) and manager.state == {"x": 1}


def test_a_promoted_standby_fences_the_primary_it_followed_which_is_deposed():
    old, new = Replica("p", acks=1), Replica("b", acks=1)
    old.become_primary(1)
    new.follow("p", 1)
    new.become_primary(2)
    ((to, refusal),) = new.fence("p").messages
    assert (to, refusal) == ("p", Refuse("b", 2))
    assert old.step(refusal).epoch == 2 and old.role is Role.DEPOSED
    with pytest.raises(ValueError, match="only a primary fences"):
        old.fence("b")
