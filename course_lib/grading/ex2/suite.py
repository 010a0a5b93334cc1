"""The named suite and its runner: each test runs the learner's node over seeds.

A test is a function ``test(lab)`` registered with :func:`lab_test` under a name and a
stage (1–5).  :func:`run_stage` runs the tests of a stage — each over its seeds — and
returns a summary line, or raises :class:`~course_lib.grading.CheckFailed` with the
report of the first failure (:mod:`.report`): the test's name, the seed, the one-line
replay command, the fault timeline, the servers' state and the last messages.

:class:`Lab` is what a test gets: the learner's classes, the seed, an ``rng`` for the
test's own choices, and helpers in the spirit of MIT 6.5840's ``config.go``
(``make_cluster``, ``check_one_leader``, ``one``, ``n_committed``, ``converged``...).
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from typing import Callable, Optional

from .. import CheckFailed, _where
from ...raft.campaign import check_appends
from ...raft.client import ClosedLoopClients
from ...raft.kv import ClientCommand
from ...raft.messages import EntryKind
from .cluster import LEADER, LabCluster, LabFailure
from .report import failure_report


@dataclass
class LabTest:
    name: str
    stage: int
    fn: Callable
    seeds: int          # how many seeds a check cell runs
    what: str           # one line: what the test runs


TESTS: dict[str, LabTest] = {}


def lab_test(name: str, stage: int, seeds: int, what: str):
    def register(fn):
        TESTS[name] = LabTest(name, stage, fn, seeds, what)
        return fn
    return register


def stage_tests(stage: int) -> list:
    return [t for t in TESTS.values() if t.stage == stage]


CHECKS = {1: "leader_election", 2: "log_replication", 3: "state_machine_replication",
          4: "membership_management", 5: "failure_recovery"}


def replay_command(test: str, seed: int, stage: int) -> str:
    classes = "MyRaftNode" if stage == 5 else {1: "ElectionNode", 2: "ReplicationNode",
                                               3: "ReplicationNode", 4: "MembershipNode"}[stage]
    kv = ", KVStateMachine" if stage >= 3 else ""
    return f"ex2.run_test({test!r}, {classes}{kv}, seed={seed})"


class Lab:
    """One run of one test on one seed."""

    def __init__(self, test: LabTest, node_class, kv_class, seed: int) -> None:
        self.test = test
        self.node_class = node_class
        self.kv_class = kv_class
        self.seed = seed
        self.rng = random.Random(f"{test.name}:{seed}")
        self.cluster: Optional[LabCluster] = None
        self._cmd = 0

    # -- building ----------------------------------------------------------------------
    def make_cluster(self, n: int, **kwargs) -> LabCluster:
        self.cluster = LabCluster(self.node_class, n, self.seed, kv_class=self.kv_class, **kwargs)
        return self.cluster

    def fail(self, reason: str) -> None:
        raise LabFailure(reason)

    # -- elections -----------------------------------------------------------------------
    def check_one_leader(self, within_ms: float = 2000, among=None) -> str:
        """Wait for a leader among the connected live servers (or ``among``)."""
        c = self.cluster
        group = (lambda: among) if among is not None else c.connected
        if not c.run_until(lambda: c.leader_among(group()) is not None, within_ms):
            terms = [c.hosts[n].core.current_term for n in group()]
            split = (f"; the terms reached {max(terms)} as elections kept failing — if several "
                     f"candidates time out together they split the vote every time: is each "
                     f"election timeout drawn at random?" if terms and max(terms) >= 4 else "")
            self.fail(f"no leader was elected among {', '.join(sorted(group()))} within "
                      f"{within_ms:.0f} ms (a follower that hears no leader must time out and "
                      f"campaign; a candidate with a majority of votes becomes leader: §5.2)"
                      f"{split}")
        return c.leader_among(group())

    def check_no_leader(self, nodes, for_ms: float = 1000) -> None:
        c = self.cluster
        end = c.now + for_ms
        while c.now < end:
            c.run_for(25)
            lead = c.leader_among(nodes)
            if lead is not None:
                self.fail(f"{lead} became leader of term {c.hosts[lead].core.current_term} though "
                          f"it can reach only {', '.join(sorted(nodes))}, not a majority of "
                          f"{len(c.members)} (a candidate needs votes from a majority: §5.2)")

    def terms(self, nodes=None) -> dict:
        c = self.cluster
        return {n: c.hosts[n].core.current_term for n in (nodes or c.live())}

    # -- agreement, as 6.5840's one() / nCommitted() ---------------------------------------
    def command(self) -> ClientCommand:
        self._cmd += 1
        return ClientCommand("lab", self._cmd, ("append", "x", f"{self._cmd};"))

    def n_committed(self, index: int):
        """(how many live servers committed ``index``, its command) — failing if two
        servers committed different commands there."""
        c = self.cluster
        count, cmd = 0, None
        for nid, host in c.hosts.items():
            core = host.core
            if host.alive and core.commit_index >= index and core.log.last_index >= index:
                e = core.log[index]
                if count and (e.command, e.term) != cmd:
                    self.fail(f"servers committed different entries at index {index}")
                count, cmd = count + 1, (e.command, e.term)
        return count, cmd[0] if cmd else None

    def start(self, nid: str, cmd) -> Optional[tuple]:
        """Propose ``cmd`` on ``nid`` as a client would (None if it is not the leader)."""
        host = self.cluster.hosts[nid]
        if not host.alive or host.core.state is not LEADER:
            return None
        try:
            placed = host.core.propose(cmd)
        except Exception as error:
            if type(error).__name__ == "NotLeader":
                return None
            raise
        host.poke()
        return placed

    def one(self, cmd=None, expected: int = None, within_ms: float = 4000,
            retry: bool = True) -> int:
        """Get ``cmd`` committed on at least ``expected`` servers; its index."""
        c = self.cluster
        cmd = cmd if cmd is not None else self.command()
        expected = expected if expected is not None else len(c.members)
        end = c.now + within_ms
        while c.now < end:
            placed = None
            for nid in c.connected():
                placed = self.start(nid, cmd)
                if placed is not None:
                    break
            if placed is None:
                c.run_for(20)
                continue
            index = placed[0]
            stop = min(end, c.now + 1000)
            while c.now < stop:
                c.run_for(10)
                n, got = self.n_committed(index)
                if n >= expected and got == cmd:
                    return index
            if not retry:
                break
        count = max(self.n_committed(i)[0] for i in [placed[0]]) if placed else 0
        self.fail(f"command {cmd.seq} was not committed on {expected} servers within "
                  f"{within_ms:.0f} ms (on {count}); "
                  + ("no server accepted it as leader" if placed is None else
                     f"the leader placed it at index {placed[0]}") + self._lag_hint())

    def _lag_hint(self) -> str:
        """Why followers do not catch up, when the messages say it: rejections that the
        leader answers by retrying at the same place (no nextIndex back-off)."""
        c = self.cluster
        rejects: dict = {}
        for _t, m in c.last_messages:
            if type(m).__name__ == "AppendEntriesResponse" and not m.success:
                rejects.setdefault((m.src, m.dst, m.term), []).append(m.reject_index)
        for (f, lead, term), where in rejects.items():
            if len(where) >= 3 and len(set(where)) == 1:
                return (f". {f} keeps rejecting {lead}'s AppendEntries at prev_log_index "
                        f"{where[0]} (term {term}): after a rejection the leader must decrement "
                        f"nextIndex and retry with an earlier entry (§5.3)")
        return ""

    # -- convergence and clients ------------------------------------------------------------
    def converged(self, within_ms: float = 5000) -> None:
        """Every live member ends with the same log, all of it committed."""
        c = self.cluster

        def same() -> bool:
            live = [c.hosts[n].core for n in c.live()]
            if not live:
                return True
            top = max(live, key=lambda k: (k.current_term, k.log.last_index))
            last = top.log.last_index
            if any(k.commit_index != last or k.log.last_index != last for k in live):
                return False
            lo = max(k.log.snapshot_index for k in live)      # compared where all still hold
            want = [top.log.term_at(i) for i in range(lo, last + 1)]
            return all([k.log.term_at(i) for i in range(lo, last + 1)] == want for k in live)
        if not c.run_until(same, within_ms):
            self.fail(f"the live servers did not converge to one fully committed log within "
                      f"{within_ms:.0f} ms after the faults healed" + self._lag_hint())

    def depose_leaders(self, rounds: int, before_ms, during_ms: float) -> None:
        """``rounds`` times: let ``before_ms`` pass (a number, or a tuple of numbers to
        draw from with the test's rng), disconnect whoever leads, let ``during_ms``
        pass, heal."""
        c = self.cluster
        for _ in range(rounds):
            c.run_for(self.rng.choice(before_ms) if isinstance(before_ms, tuple) else before_ms)
            lead = c.leader_among(c.live())
            if lead is not None:
                c.disconnect(lead)
            c.run_for(during_ms)
            c.heal()

    def clients(self, n: int = 3, **kwargs) -> ClosedLoopClients:
        return ClosedLoopClients(self.cluster, n, random.Random(self.rng.random()), **kwargs)

    def check_history(self, clients: ClosedLoopClients, min_ok: int = 1) -> int:
        """Stop the clients, let them finish; exactly-once appends and linearizability."""
        from ...check import check, kv
        c = self.cluster
        clients.running = False
        c.run_until(lambda: all(k.current is None or k.current.done for k in c.clients.values()),
                    6000)
        history = c.history
        ok = sum(1 for op in history if op.ret is not None)
        if ok < min_ok:
            self.fail(f"only {ok} of {len(history)} client operations completed (expected at "
                      f"least {min_ok}): commands must commit and be applied")
        lid = c.leader_among(c.live())
        if lid is not None:
            problems = check_appends(history, c.hosts[lid].kv.data)
            if problems:
                self.fail("the clients' history breaks exactly-once: " + problems[0]
                          + " (a retried command must be applied once: the state machine "
                            "remembers each client's last seq — client sessions)")
        verdict = check(kv(), history, timeout=20)
        if verdict.ok is False:
            self.fail("the clients' history is not linearizable: some read or write saw a state "
                      "no single order of the operations explains")
        return ok


def run_one(test: LabTest, node_class, kv_class, seed: int) -> Optional[str]:
    """None if ``test`` passes on ``seed``, else the failure report."""
    lab = Lab(test, node_class, kv_class, seed)
    replay = replay_command(test.name, seed, test.stage)
    try:
        test.fn(lab)
    except LabFailure as failure:
        return failure_report(test.name, seed, str(failure), lab.cluster, replay)
    except NotImplementedError:
        raise
    except CheckFailed:
        raise
    except Exception as error:
        return failure_report(test.name, seed, f"your code raised {type(error).__name__}: {error} "
                              f"({_where(error)})", lab.cluster, replay)
    return None


def run_tests(tests, node_class, kv_class=None, seeds=None) -> str:
    """Run ``tests`` (each over its seeds, or ``seeds``); CheckFailed at the first failure."""
    began = time.monotonic()
    runs = 0
    for test in tests:
        for seed in (seeds if seeds is not None else range(test.seeds)):
            report = run_one(test, node_class, kv_class, seed)
            runs += 1
            if report is not None:
                raise CheckFailed(report)
    names = ", ".join(t.name for t in tests)
    return f"{len(tests)} tests ({names}), {runs} seeded runs in {time.monotonic() - began:.1f} s"


def entry_commands(core) -> list:
    return [e.command for e in core.log if e.kind is EntryKind.NORMAL]
