"""Exercise 2 — a Raft lab in five stages, graded by a named suite on the simulator.

The learner builds one sans-I/O Raft node (a subclass of :class:`RaftBase`, which has
the host interface of :class:`course_lib.raft.RaftNode`), stage by stage as in MIT
6.5840's labs 3A–3C, plus a key-value state machine with client sessions and
single-server membership changes.  Each check cell runs the tests of its stage::

    grade("1. Leader election", ex2.leader_election, ElectionNode)
    grade("2. Log replication", ex2.log_replication, ReplicationNode)
    grade("3. State machine replication", ex2.state_machine_replication, ReplicationNode, KVStateMachine)
    grade("4. Membership management", ex2.membership_management, MembershipNode, KVStateMachine)
    grade("5. Failure recovery", ex2.failure_recovery, MyRaftNode, KVStateMachine)

Every test runs the learner's node in :class:`~course_lib.raft.SimCluster` (through its
``core_class`` hook) over several seeds, with Raft's safety properties and the server
rules checked after every event (:mod:`.cluster`) and the clients' history checked for
linearizability; rule tests drive one node by hand (:mod:`.solo`).  A failure names the
test and the seed and gives the replay, ``ex2.run_test("Figure8", MyRaftNode,
KVStateMachine, seed=2)``, with a report (:mod:`.report`).

The worked solution (``solutions/ex2_consensus_protocol.ipynb``) passes the whole suite —
35 tests — on seeds 3000–3099 (3,500 runs) in about 250 s on two busy cores; the five
check cells on the simulator (their default seeds, about 400 runs) take about 20 s together, and
the sixth, :func:`on_real_processes`, about 6 s.

Modules: :mod:`.base` (the learner's base class), :mod:`.suite` (registry and runner),
:mod:`.cluster` (the graded cluster), :mod:`.report`, :mod:`.solo`, and the tests of each
stage: :mod:`.election`, :mod:`.replication`, :mod:`.state_machine`,
:mod:`.membership`, :mod:`.recovery`.
"""

from __future__ import annotations

from typing import Iterable, Optional

from ...raft.errors import ConfChangeInProgress, NotLeader
from ...raft.kv import ClientCommand
from ...raft.log import RaftLog
from ...raft.messages import (AppendEntries, AppendEntriesResponse, ConfChange, Entry,
                              EntryKind, HardState, InstallSnapshot, InstallSnapshotResponse,
                              NodeState, RequestVote, RequestVoteResponse, Snapshot)
from ...raft.node import RaftConfig
from .base import CANDIDATE, FOLLOWER, LEADER, RaftBase
from .cluster import LabCluster, LabFailure
from .suite import TESTS, run_one, run_tests, stage_tests
from . import election, replication, state_machine, membership, recovery  # noqa: E402,F401  (register the tests)
from .real_runtime import on_real_processes

__all__ = [
    "RaftBase", "RaftLog", "RaftConfig", "FOLLOWER", "CANDIDATE", "LEADER", "NodeState",
    "Entry", "EntryKind", "ConfChange", "HardState", "ClientCommand",
    "RequestVote", "RequestVoteResponse", "AppendEntries", "AppendEntriesResponse",
    "InstallSnapshot", "InstallSnapshotResponse", "Snapshot", "NotLeader", "ConfChangeInProgress",
    "leader_election", "log_replication", "state_machine_replication",
    "membership_management", "failure_recovery", "run_test", "suite", "TESTS",
    "LabCluster", "LabFailure", "on_real_processes",
]


def _check(stage: int, node_class, kv_class=None, seeds: Optional[Iterable[int]] = None,
           tests: Optional[Iterable[str]] = None) -> str:
    chosen = stage_tests(stage)
    if tests is not None:
        wanted = set(tests)
        unknown = wanted - {t.name for t in chosen}
        if unknown:
            raise ValueError(f"no such test in stage {stage}: {sorted(unknown)}; "
                             f"tests: {[t.name for t in chosen]}")
        chosen = [t for t in chosen if t.name in wanted]
    return run_tests(chosen, node_class, kv_class, None if seeds is None else list(seeds))


def leader_election(node_class, seeds=None, tests=None) -> str:
    """Stage 1: VoteOncePerTerm, TermsInReplies, InitialElection, ReElection, ManyElections."""
    return _check(1, node_class, None, seeds, tests)


def log_replication(node_class, seeds=None, tests=None) -> str:
    """Stage 2: the follower's and the leader's rules, BasicAgree … Backup, Count."""
    return _check(2, node_class, None, seeds, tests)


def state_machine_replication(node_class, kv_class, seeds=None, tests=None) -> str:
    """Stage 3: SessionRules, ClientRetries, UnreliableAgree, ClientsReElection."""
    return _check(3, node_class, kv_class, seeds, tests)


def membership_management(node_class, kv_class, seeds=None, tests=None) -> str:
    """Stage 4: OneChangeAtATime, AddServers, RemoveServers, MembershipChurn."""
    return _check(4, node_class, kv_class, seeds, tests)


def failure_recovery(node_class, kv_class, seeds=None, tests=None) -> str:
    """Stage 5: PersistRules, Persist1–3, Figure8, Figure8Unreliable, UnreliableChurn,
    SnapshotRules, SnapshotBasic, SnapshotInstall, SnapshotInstallCrash."""
    return _check(5, node_class, kv_class, seeds, tests)


def suite(node_class, kv_class, seeds=None) -> str:
    """The whole named suite, every stage, with one node class (the finished one)."""
    return _check_all(node_class, kv_class, seeds)


def _check_all(node_class, kv_class, seeds) -> str:
    tests = [t for s in range(1, 6) for t in stage_tests(s)]
    return run_tests(tests, node_class, kv_class, None if seeds is None else list(seeds))


def run_test(name: str, node_class, kv_class=None, seed: int = 0) -> None:
    """Replay one test on one seed; print ``passed`` or its failure report."""
    test = TESTS.get(name)
    if test is None:
        raise ValueError(f"no test {name!r}; tests: {sorted(TESTS)}")
    if test.stage >= 3 and kv_class is None:
        raise ValueError(f"{name} needs your KVStateMachine class too: "
                         f"ex2.run_test({name!r}, MyRaftNode, KVStateMachine, seed={seed})")
    report = run_one(test, node_class, kv_class, seed)
    print(report if report is not None else f"{name} passed on seed {seed}")
