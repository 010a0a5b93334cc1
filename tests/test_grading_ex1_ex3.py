"""The checks of exercises 1 and 3 catch wrong implementations, with the right message.

Each wrong implementation is the worked solution (taken from the solution notebook, so
the two cannot drift) with one mistake a learner makes: one znode per service, no
compare-and-set, a herd of waiters, a polling lock, the chapter's CDF instead of the
tail, a level-triggered recovery manager, a backup written in place, modulo hashing...
"""

from __future__ import annotations

import json
import math
import os
import re
import threading
import time
from pathlib import Path

import pytest
from kazoo.exceptions import NoNodeError
from kazoo.recipe.watchers import ChildrenWatch

from course_lib.grading import ex1, ex3, load_solution, run_check



@pytest.fixture(scope="module")
def s1() -> dict:
    return load_solution("ex1_coordination_system")


@pytest.fixture(scope="module")
def s3() -> dict:
    return load_solution("ex3_fault_tolerance")


def rejected(check, *args) -> str:
    """The learner's message for a wrong implementation (the check must fail)."""
    result = run_check("check", check, *args)
    assert not result.passed, f"the check accepted a wrong implementation: {result.message}"
    return result.message


# -- exercise 1 (real ZooKeeper: the test session's ensemble) ----------------------------

def test_registry_with_one_node_per_service_is_rejected(s1):
    class OneNodePerService(s1["ServiceRegistry"]):  # the chapter's layout
        def register(self, service, info):
            path = f"{self.root}/{service}"
            self.client.ensure_path(path)
            self.client.set(path, json.dumps(info).encode())
            return path

        def discover(self, service):
            try:
                data, _ = self.client.get(f"{self.root}/{service}")
            except NoNodeError:
                return []
            return [json.loads(data)] if data else []

    assert "needs a znode of its own" in rejected(ex1.service_discovery, OneNodePerService)


def test_registry_with_persistent_instances_is_rejected(s1):
    class Persistent(s1["ServiceRegistry"]):
        def register(self, service, info):
            return self.client.create(f"{self.root}/{service}/instance-", json.dumps(info).encode(),
                                      sequence=True, makepath=True)

    message = rejected(ex1.service_discovery, Persistent)
    assert "closed its session" in message and "ephemeral=True" in message


def test_config_without_compare_and_set_is_rejected(s1):
    class Blind(s1["ConfigStore"]):
        def set(self, key, value, expected_version=None):
            return super().set(key, value)

    assert "must raise ConfigConflict" in rejected(ex1.configuration, Blind, s1["ConfigConflict"])


def test_config_update_without_compare_and_set_loses_updates_and_is_rejected(s1):
    class LastWriterWins(s1["ConfigStore"]):
        def update(self, key, change):
            value, _ = self.get(key)
            new = change(value)
            return new, self.set(key, new)

    assert "updates were lost" in rejected(ex1.configuration, LastWriterWins, s1["ConfigConflict"])


def test_config_watch_that_fires_once_is_rejected(s1):
    class OneShot(s1["ConfigStore"]):
        def watch(self, key, callback):
            path = f"{self.root}/{key}"
            self.client.ensure_path(path)

            def fired(event):
                data, stat = self.client.get(path)
                callback(json.loads(data) if data else None, stat.version)

            data, stat = self.client.get(path, watch=fired)
            callback(json.loads(data) if data else None, stat.version)

    assert "a ZooKeeper watch fires once" in rejected(ex1.configuration, OneShot, s1["ConfigConflict"])


def test_election_with_persistent_candidates_is_rejected(s1):
    class Persistent(s1["LeaderElection"]):
        def join(self):
            created = self.client.create(f"{self.path}/candidate-", self.identifier.encode(),
                                         sequence=True, makepath=True)
            self.node = created.rsplit("/", 1)[1]

    assert "candidates must be ephemeral" in rejected(ex1.leader_election, Persistent)


def test_election_where_the_newest_candidate_leads_is_rejected(s1):
    class Newest(s1["LeaderElection"]):
        def _candidates(self):
            return super()._candidates()[::-1]

    assert "expected carol (the first to join) to lead" in rejected(ex1.leader_election, Newest)


def test_election_ordered_by_name_instead_of_joining_is_rejected(s1):
    class ByName(s1["LeaderElection"]):
        def join(self):
            self.client.create(f"{self.path}/candidate-{self.identifier}", self.identifier.encode(),
                               ephemeral=True, makepath=True)
            self.node = f"candidate-{self.identifier}"

    assert "not the names" in rejected(ex1.leader_election, ByName)


def test_election_whose_resign_keeps_the_node_is_rejected(s1):
    class Forgetful(s1["LeaderElection"]):
        def resign(self):
            self.node = None

    assert "must remove the candidate's node" in rejected(ex1.leader_election, Forgetful)


def test_lock_whose_waiters_all_watch_the_children_is_rejected_as_a_herd(s1):
    class Herd(s1["DistributedLock"]):
        def acquire(self, timeout=None):
            deadline = time.monotonic() + (20.0 if timeout is None else timeout)
            created = self.client.create(f"{self.path}/lock-", b"", ephemeral=True,
                                         sequence=True, makepath=True)
            mine = created.rsplit("/", 1)[1]
            while True:
                changed = threading.Event()
                children = sorted(self.client.get_children(self.path, watch=lambda e: changed.set()))
                if children[0] == mine:
                    self.node = mine
                    return True
                if not changed.wait(max(0.0, deadline - time.monotonic())):
                    self.client.delete(created)
                    return False

    message = rejected(ex1.distributed_lock, Herd)
    assert "herd effect" in message, message


def test_polling_lock_is_rejected(s1):
    class Polling(s1["DistributedLock"]):
        def acquire(self, timeout=None):
            deadline = time.monotonic() + (20.0 if timeout is None else timeout)
            created = self.client.create(f"{self.path}/lock-", b"", ephemeral=True,
                                         sequence=True, makepath=True)
            mine = created.rsplit("/", 1)[1]
            while sorted(self.client.get_children(self.path))[0] != mine:
                if time.monotonic() >= deadline:
                    self.client.delete(created)
                    return False
                time.sleep(0.05)
            self.node = mine
            return True

    message = rejected(ex1.distributed_lock, Polling)
    assert "not poll" in message and "0 watches" in message, message


def test_lock_that_takes_a_vanished_predecessor_for_a_release_is_rejected(s1):
    class Trusting(s1["DistributedLock"]):  # the classic bug when a waiter ahead gives up
        def acquire(self, timeout=None):
            deadline = time.monotonic() + (20.0 if timeout is None else timeout)
            created = self.client.create(f"{self.path}/lock-", b"", ephemeral=True,
                                         sequence=True, makepath=True)
            mine = created.rsplit("/", 1)[1]
            ahead = [n for n in sorted(self.client.get_children(self.path)) if n < mine]
            if ahead:
                gone = threading.Event()
                if self.client.exists(f"{self.path}/{ahead[-1]}", watch=lambda e: gone.set()):
                    if not gone.wait(max(0.0, deadline - time.monotonic())):
                        self.client.delete(created)
                        return False
            self.node = mine  # no second look at the children
            return True

    message = rejected(ex1.distributed_lock, Trusting)
    assert "A vanished predecessor is not a released lock" in message, message


def test_unimplemented_lock_fails_at_once(s1):
    class Empty(s1["DistributedLock"]):
        def acquire(self, timeout=None):
            raise NotImplementedError("create your node")

    began = time.monotonic()
    assert "not written yet (create your node)" in rejected(ex1.distributed_lock, Empty)
    assert time.monotonic() - began < 3.0


def test_events_replayed_to_a_late_subscriber_are_rejected(s1):
    class AlwaysFromStart(s1["EventBus"]):
        def subscribe(self, topic, callback, from_start=False):
            return super().subscribe(topic, callback, from_start=True)

    assert "received the old event" in rejected(ex1.event_notification, AlwaysFromStart)


def test_events_delivered_twice_are_rejected(s1):
    class Redelivers(s1["EventBus"]):  # delivers every child at every notification
        def subscribe(self, topic, callback, from_start=False):
            parent = f"{self.root}/{topic}"
            self.client.ensure_path(parent)
            existing = set(self.client.get_children(parent))

            def on_children(children):
                for name in sorted(children):
                    if name not in existing:
                        callback(int(name[-10:]), json.loads(self.client.get(f"{parent}/{name}")[0]))

            ChildrenWatch(self.client, parent, on_children)

    assert "more than once" in rejected(ex1.event_notification, Redelivers)


# -- exercise 3 ------------------------------------------------------------------------------

def test_phi_from_the_cdf_is_rejected(s3):
    class ChapterPhi(s3["PhiAccrual"]):  # -log10(CDF): falls as the silence grows
        def phi(self, now):
            if not self.intervals:
                return 0.0
            n = len(self.intervals)
            mean = self.total / n
            std = max(math.sqrt(max(0.0, self.total_sq / n - mean * mean)), self.min_std)
            cdf = 1 - 0.5 * math.erfc((now - self.last - mean) / std / math.sqrt(2))
            return -math.log10(max(cdf, 1e-300))

    assert "-log10(0.5 * erfc" in rejected(ex3.failure_detection, ChapterPhi)


def test_phi_that_overflows_on_long_silences_is_rejected(s3):
    class Naive(s3["PhiAccrual"]):
        def phi(self, now):
            if not self.intervals:
                return 0.0
            n = len(self.intervals)
            mean = self.total / n
            std = max(math.sqrt(max(0.0, self.total_sq / n - mean * mean)), self.min_std)
            return -math.log10(0.5 * math.erfc((now - self.last - mean) / std / math.sqrt(2)))

    assert "must stay finite" in rejected(ex3.failure_detection, Naive)


def test_phi_ignoring_the_window_is_rejected(s3):
    class Unbounded(s3["PhiAccrual"]):
        def heartbeat(self, now):
            if self.last is not None:
                interval = now - self.last
                self.intervals.append(interval)
                self.total += interval
                self.total_sq += interval * interval
            self.last = now

    assert "only the last 10 count" in rejected(ex3.failure_detection, Unbounded)


def test_level_triggered_recovery_manager_is_rejected(s3):
    class EveryPoll(s3["RecoveryManager"]):  # handles a suspected node at every poll
        def poll(self, now):
            suspected = sorted(set(self.detector.suspected(now)) - {self.node_id})
            self.failed = set(suspected)
            for node in suspected:
                self._handle(now, node, s3["NODE_CRASHED"])
            return [(s3["NODE_CRASHED"], n) for n in suspected]

    assert "one event per change of suspicion" in rejected(ex3.automatic_recovery, EveryPoll)


def test_recovery_from_the_highest_seq_only_is_rejected(s3):
    class SeqOnly(s3["RecoveryManager"]):
        def recover_state(self):
            answers = [(n, self.fetch_state(n)) for n in self.nodes
                       if n != self.node_id and n not in self.failed]
            answers = [(n, a) for n, a in answers if a is not None]
            if not answers:
                return None
            node, best = max(answers, key=lambda item: item[1][1])
            self.state = dict(best[2])
            return node

    assert "epoch first" in rejected(ex3.automatic_recovery, SeqOnly)


def test_backup_written_in_place_is_rejected(s3):
    checksum = s3["checksum"]

    def write_in_place(path, state, seq):
        with open(path, "w") as f:
            json.dump({"seq": seq, "state": state, "checksum": checksum(seq, state)}, f)
            f.flush()
            os.fsync(f.fileno())

    message = rejected(ex3.data_backup, write_in_place, s3["read_backup"], s3["BackupCorrupted"])
    assert "os.replace" in message


def test_restore_without_checksum_is_rejected(s3):
    def trusting_read(path):
        document = json.loads(Path(path).read_text())
        return document["seq"], document["state"]

    message = rejected(ex3.data_backup, s3["write_backup"], trusting_read, s3["BackupCorrupted"])
    assert "accepted a balance edited" in message


def test_modulo_hashing_is_rejected(s3):
    class Modulo(s3["ConsistentHashRing"]):
        def __init__(self, nodes=(), vnodes=100):
            self.members, self.down = sorted(nodes), set()

        def add(self, node):
            self.members = sorted(self.members + [node])

        def remove(self, node):
            self.members.remove(node)

        def node_for(self, key):
            healthy = [n for n in self.members if n not in self.down]
            if not healthy:
                raise LookupError("none")
            return healthy[self.position(key) % len(healthy)]

    assert "only keys that node-6 now owns may move" in rejected(ex3.load_balancing, Modulo)


def test_a_ring_hashed_with_pythons_hash_is_rejected(s3):
    class Builtin(s3["ConsistentHashRing"]):
        @staticmethod
        def position(text):
            return hash(text) & 0xFFFFFFFFFFFFFFFF     # differs per process (PYTHONHASHSEED)

    assert "Python's hash() of a str changes" in rejected(ex3.load_balancing, Builtin)


def test_a_ring_without_virtual_nodes_is_rejected(s3):
    class OnePoint(s3["ConsistentHashRing"]):
        def __init__(self, nodes=(), vnodes=100):
            super().__init__(nodes, vnodes=1)

    assert "virtual nodes" in rejected(ex3.load_balancing, OnePoint)


def test_standby_with_a_constant_token_is_rejected(s3):
    class ConstantToken(s3["HotStandby"]):
        def start(self):
            super().start()
            self.token = 1

    assert "should be larger than the old one's" in rejected(ex3.hot_standby, ConstantToken,
                                                             s3["NotActive"])


def test_solutions_pass(s1, s3):
    for check, args in [(ex1.leader_election, (s1["LeaderElection"],)),
                        (ex3.failure_detection, (s3["PhiAccrual"],)),
                        (ex3.load_balancing, (s3["ConsistentHashRing"],))]:
        result = run_check("solution", check, *args)
        assert result.passed and result.message.startswith("✔ solution"), result.message


def test_standby_whose_start_blocks_until_active_is_rejected(s3):
    class Blocking(s3["HotStandby"]):
        def start(self):
            super().start()
            deadline = time.monotonic() + 8.0
            while not self.active and time.monotonic() < deadline:
                time.sleep(0.05)

    began = time.monotonic()
    assert "must return at once" in rejected(ex3.hot_standby, Blocking, s3["NotActive"])
    assert time.monotonic() - began < 15


def test_polling_standby_is_rejected(s3):
    class Polling(s3["HotStandby"]):  # asks every 50 ms instead of watching the node ahead
        def start(self):
            created = self.client.create(f"{self.path}/standby-", self.identifier.encode(),
                                         ephemeral=True, sequence=True, makepath=True)
            self.node = created.rsplit("/", 1)[1]
            self.token = int(self.node[-10:])
            self.client.add_listener(self._on_state)
            threading.Thread(target=self._poll, daemon=True).start()

        def _poll(self):
            try:
                while self.node is not None and not self.active:
                    if sorted(self.client.get_children(self.path))[0] == self.node:
                        self.active = True
                        self.on_active()
                    time.sleep(0.05)
            except Exception:  # the check closed the session
                pass

    message = rejected(ex3.hot_standby, Polling, s3["NotActive"])
    assert "not poll" in message, message


def test_standby_that_calls_on_active_twice_is_rejected(s3):
    class Twice(s3["HotStandby"]):
        def _check(self, event=None):
            was = self.active
            super()._check(event)
            if self.active and not was and self.on_active is not None:
                self.on_active()

    message = rejected(ex3.hot_standby, Twice, s3["NotActive"])
    assert "call it once" in message and "{'node-0': 2}" in message, message


def test_the_standby_check_freezes_the_primary_and_its_late_write_is_refused(s3):
    result = run_check("standby", ex3.hot_standby, s3["HotStandby"], s3["NotActive"])
    assert result.passed, result.message
    assert "after the primary froze" in result.message
    assert re.search(r"woken primary's write was refused by (NotActive|the storage)", result.message)
