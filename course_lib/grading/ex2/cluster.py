"""The lab's cluster: the learner's node in the course's simulator, with the rules of
Figure 2 checked after every event.

:class:`LabCluster` is a :class:`~course_lib.raft.SimCluster` hosting the learner's
node class (the ``core_class`` hook) and state machine.  On every Ready it runs the
course's :class:`~course_lib.raft.invariants.SafetyMonitor` (Election Safety, Log
Matching, Leader Completeness, State Machine Safety) and the rules a single server
must keep (:meth:`LabCluster.check_rules`), and fails at once — with
:class:`LabFailure` — when one breaks, so the report shows the state at that moment.
It records the faults it injects and the last messages sent, for the report.
"""

from __future__ import annotations

from collections import deque
from typing import Optional

from ...raft.cluster import SimCluster
from ...raft.kv import KVStateMachine
from ...raft.messages import HardState, NodeState, RequestVoteResponse
from .adapter import LearnerKV

LEADER = NodeState.LEADER


class LabFailure(AssertionError):
    """A lab test failed; the message says what, in the protocol's terms."""


class LabCluster(SimCluster):
    def __init__(self, node_class, n: int, seed: int, *, kv_class=None,
                 max_entries_per_message: int = 64, **kwargs) -> None:
        self.faults: list = []                  # (time, text)
        self.last_messages: deque = deque(maxlen=40)
        self.disconnected: set = set()
        self.raft_messages = 0                  # messages the servers sent
        self._votes: dict = {}                  # (voter, term) -> candidate
        self._commit_seen: dict = {}            # node -> commit index at its last Ready
        kv_factory = (lambda: LearnerKV(kv_class())) if kv_class is not None else KVStateMachine
        kwargs.setdefault("pre_vote", False)
        kwargs.setdefault("check_quorum", False)
        kwargs.setdefault("client_timeout_ms", 4000)
        super().__init__(n, seed, core_class=node_class, kv_factory=kv_factory, read_mode="log",
                         trace_level="summary", max_entries_per_message=max_entries_per_message,
                         **kwargs)

    # -- faults, recorded for the report ---------------------------------------------------
    def note(self, text: str) -> None:
        self.faults.append((self.now, text))

    def disconnect(self, nid: str) -> None:
        self.disconnected.add(nid)
        self.note(f"disconnect {nid}")
        self._apply_cuts()

    def connect(self, nid: str) -> None:
        self.disconnected.discard(nid)
        self.note(f"reconnect {nid}")
        self._apply_cuts()

    def _apply_cuts(self) -> None:
        self.sim.heal()
        for nid in sorted(self.disconnected):
            self.sim.isolate(nid)

    def crash(self, nid: str) -> None:
        self.note(f"crash {nid}")
        super().crash(nid)
        self.check_recovered(nid)

    def restart(self, nid: str) -> None:
        self.note(f"restart {nid}")
        super().restart(nid)

    def partition(self, *groups) -> None:
        self.note("partition " + " | ".join(",".join(sorted(g)) for g in groups))
        super().partition(*groups)

    def heal(self) -> None:
        self.disconnected.clear()
        self.note("heal")
        super().heal()

    def unreliable(self, drop: float = 0.1, duplicate: float = 0.05, reorder: bool = True) -> None:
        net = self.sim.network
        net.drop_rate, net.duplicate_rate, net.reorder = drop, duplicate, reorder
        self.note(f"unreliable network: drop {drop:.0%}, duplicate {duplicate:.0%}"
                  + (", reorder" if reorder else ""))

    def reliable(self) -> None:
        net = self.sim.network
        net.drop_rate, net.duplicate_rate, net.reorder = 0.0, 0.0, False
        self.note("reliable network")

    def restart_all(self) -> None:
        """Restart every crashed server."""
        for nid in self.members:
            if not self.hosts[nid].alive:
                self.restart(nid)

    def restore(self) -> None:
        """The end of a fault phase: a reliable network, no cut link, every server up."""
        self.reliable()
        self.heal()
        self.restart_all()

    # -- views -------------------------------------------------------------------------
    def live(self, nodes=None) -> list:
        nodes = self.members if nodes is None else nodes
        return [n for n in nodes if self.hosts[n].alive]

    def connected(self) -> list:
        return [n for n in self.live() if n not in self.disconnected]

    def leader_among(self, nodes) -> Optional[str]:
        """The leader of the highest term among live ``nodes``, if one leads."""
        best, term = None, -1
        for n in nodes:
            h = self.hosts[n]
            if h.alive and h.core.state is LEADER and h.core.current_term > term:
                best, term = n, h.core.current_term
        return best

    # -- the rules, after every Ready ---------------------------------------------------------
    def on_ready(self, host, rd) -> None:
        super().on_ready(host, rd)
        if self.monitor is not None and self.monitor.violations:
            raise LabFailure("a safety property broke: " + self.monitor.violations[0].split(" ", 1)[1])
        self.check_rules(host, rd)

    def check_rules(self, host, rd) -> None:
        core = host.core
        nid = host.node_id
        now = self.now
        if rd.messages:
            self.raft_messages += len(rd.messages)
            for m in rd.messages:
                self.last_messages.append((now, m))
            self.check_persisted(host, rd)
            for m in rd.messages:
                if type(m) is RequestVoteResponse and m.granted:
                    other = self._votes.setdefault((nid, m.term), m.dst)
                    if other != m.dst:
                        raise LabFailure(
                            f"{nid} voted for {other} and then for {m.dst} in term {m.term}: a "
                            f"server grants at most one vote per term (§5.2, Figure 2 RequestVote "
                            f"rule 2: votedFor is null or candidateId)")
        before = self._commit_seen.get(nid, 0)
        commit = core.commit_index
        if commit > before and core.state is LEADER:
            term = core.log.term_at(commit)
            if term != core.current_term:
                raise LabFailure(
                    f"{nid}, leader of term {core.current_term}, advanced its commit index to "
                    f"{commit}, an entry of term {term}: a leader commits by counting replicas only "
                    f"entries of its current term; earlier ones commit with them (§5.4.2, Figure 8)")
        self._commit_seen[nid] = commit

    def check_persisted(self, host, rd) -> None:
        """Figure 2: term, vote and log are on stable storage before any message leaves."""
        core = host.core
        st = host.storage
        hs = st.hard_state or HardState(0, None)
        what = []
        if hs.term != core.current_term:
            what.append(f"current_term {core.current_term} (storage has {hs.term})")
        if hs.voted_for != core.voted_for:
            what.append(f"voted_for {core.voted_for} (storage has {hs.voted_for})")
        log = core.log
        last = log.last_index
        stored = st.entries
        stored_last = (st.snapshot.index if st.snapshot is not None else 0) + len(stored)
        if stored_last != last or (stored and last > log.snapshot_index
                                   and stored[-1] != log[last]):
            what.append(f"its log up to index {last} (storage has up to {stored_last})")
        if what:
            from .report import describe_message
            raise LabFailure(
                f"{host.node_id} sent {describe_message(rd.messages[0])} while "
                f"{' and '.join(what)} was not on stable storage: call self.persist() after "
                f"changing current_term, voted_for or the log, before the step ends (Figure 2: "
                f"persistent state is updated on stable storage before responding to RPCs)")

    def check_recovered(self, nid: str) -> None:
        """After a crash the node is rebuilt from storage: it must start from what it holds."""
        host = self.hosts[nid]
        core = host.core
        st = host.storage
        hs = st.hard_state or HardState(0, None)
        log = core.log
        snap = st.snapshot.index if st.snapshot is not None else 0
        if (core.current_term, core.voted_for) != (hs.term, hs.voted_for) or \
                log.snapshot_index != snap or [e.term for e in log] != [e.term for e in st.entries]:
            raise LabFailure(
                f"after a crash {nid} did not recover its persistent state: storage holds term "
                f"{hs.term}, voted_for {hs.voted_for} and a log up to {snap + len(st.entries)}"
                + (f" (a snapshot up to {snap})" if snap else "")
                + f", but the restarted node has term {core.current_term}, voted_for "
                f"{core.voted_for} and a log up to {log.last_index}"
                + (f" (snapshot {log.snapshot_index})" if log.snapshot_index else "")
                + " (write restore(): a restarted server starts from what it persisted)")

    def shut_down(self, nid: str) -> None:
        """Stop a server for good (a removed member): no recovery check, it never returns."""
        self.note(f"shut down {nid}")
        SimCluster.crash(self, nid)
