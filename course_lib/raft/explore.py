"""Raft (``SimCluster``) as a model for the model checker.

::

    from course_lib.check.explore import explore, replay
    from course_lib.raft.explore import RaftModel

    bad = lambda: RaftModel(unsafe_commit_old_terms=True)
    r = explore(bad, depth=19)           # Figure 8 on three servers
    r.length, r.steps_in_words()
    replay(bad, r.trace).violations      # the same violation in the ordinary simulator

The steps: the simulator's (deliver / drop / duplicate a message, crash / restart a
server: :class:`~course_lib.sim.explore.SimModel`), plus

- ``timer``: a server's election timer fires (``SimCluster.expire_timer``: its clock
  ticks until the timeout, as it would by itself) — only below ``max_term``, which
  bounds the terms and so the state space;
- ``heartbeat``: a leader's heartbeat timer fires (its clock ticks until it sends);
- ``propose``: a client's command reaches the leader (each of ``values`` once).

Timers are choices, so the fingerprint leaves out elapsed ticks and random streams.
The cluster is built for a small state space: no PreVote and no CheckQuorum (each would
add steps to every election), one entry per AppendEntries (as the paper's Figure 8
needs: a new leader then sends an earlier term's entry on its own first).  A response
carrying an older term than its receiver's can never change anything (§5.1: it is
ignored, and terms only grow), so it is left out of the steps and of the fingerprint.

The invariant is the cluster's own safety monitor (Election Safety, Log Matching,
Leader Completeness, State Machine Safety: ``SimCluster.safety_violations``); what it
remembers of the run (leaders per term, entries applied) is part of the fingerprint.
"""

from __future__ import annotations

from typing import Any

from ..check.explore import Step
from ..sim.explore import SimModel
from .cluster import SimCluster
from .kv import ClientCommand
from .messages import (
    AppendEntries, AppendEntriesResponse, InstallSnapshotResponse, NodeState, RequestVote,
    RequestVoteResponse,
)

LEADER = NodeState.LEADER
NETWORKS = ("rpc", "rpc+loss", "messages")
_RESPONSES = (RequestVoteResponse, AppendEntriesResponse, InstallSnapshotResponse)


def _entries(entries) -> str:
    return "[" + ", ".join(f"{e.index}@t{e.term}" for e in entries) + "]"


class RaftModel(SimModel):
    """``n`` Raft servers; see the module docstring for the steps."""

    def __init__(self, n: int = 3, *, unsafe_commit_old_terms: bool = False, max_term: int = 4,
                 values=(), heartbeats: bool = False, network: str = "rpc",
                 max_entries_per_message: int = 1, pre_vote: bool = False,
                 check_quorum: bool = False, start: str = "initial", seed: int = 0) -> None:
        if not isinstance(max_term, int) or max_term < 1:
            raise ValueError(f"max_term must be an int >= 1, got {max_term!r}")
        if network not in NETWORKS:
            raise ValueError(f"network must be one of {NETWORKS}, got {network!r}")
        self.network = network
        self.values = tuple(values)
        if len(set(self.values)) != len(self.values):
            raise ValueError(f"values must be distinct, got {values!r}")
        self.max_term = max_term
        self.heartbeats = heartbeats
        c = SimCluster(n, seed=seed, pre_vote=pre_vote, check_quorum=check_quorum,
                       max_entries_per_message=max_entries_per_message,
                       unsafe_commit_old_terms=unsafe_commit_old_terms)
        super().__init__(c, c.members)
        self.proposed: tuple = ()
        if start not in STARTS:
            raise ValueError(f"start must be one of {sorted(STARTS)}, got {start!r}")
        self.start = start
        self.prefix: list = []               # what the start scenario did, in words
        STARTS[start](self)

    # -- start states ------------------------------------------------------------------------
    def _do(self, step: Step) -> None:
        self.prefix.append(str(step))
        self.apply(step)

    def _rpc(self, src: str, dst: str, kind) -> None:
        """``src``'s request of type ``kind`` reaches ``dst`` and the reply comes back."""
        (f,) = [f for f in self.sim.network.held() if f.src == src and f.dst == dst and type(f.msg) is kind]
        if self.network != "messages":
            self._do(Step("call", dst, src, f.msg, label=self.label(f.msg)))
            return
        self._do(Step("deliver", dst, src, f.msg, label=self.label(f.msg)))
        (r,) = [r for r in self.sim.network.held() if r.src == dst and r.dst == src and type(r.msg) in _RESPONSES]
        self._do(Step("deliver", src, dst, r.msg, label=self.label(r.msg)))

    def _lose(self, src: str, kind) -> None:
        for f in self.sim.network.held():
            if f.src == src and type(f.msg) is kind:
                self._do(Step("drop", f.dst, f.src, f.msg, label=self.label(f.msg)))

    def _start_figure8(self) -> None:
        """Figure 8 (a)-(b) on three servers: n1 leads term 1 and appends its no-op
        (1@t1), which reaches nobody; n2 leads term 2 (n3's vote) and appends its own
        (1@t2), which reaches nobody either.  n2's RequestVote to n1 and n1's to n3
        are still in flight."""
        for nid, voter in (("n1", "n2"), ("n2", "n3")):
            self._do(Step("timer", nid))
            self._rpc(nid, voter, RequestVote)
            self._lose(nid, AppendEntries)

    # -- steps -------------------------------------------------------------------------------
    def protocol_steps(self) -> list:
        alive = self.sim._alive
        hosts = self.system.hosts
        out = []
        for n in self.node_ids:
            if not alive[n]:
                continue
            core = hosts[n].core
            if core.state is LEADER:
                if self.heartbeats:
                    out.append(Step("heartbeat", n))
                out += [Step("propose", n, value=v) for v in self.values if v not in self.proposed]
            elif core.promotable and core.current_term < self.max_term:
                out.append(Step("timer", n))
        return out

    # -- the RPC network: a request's reply arrives at once, or is lost ----------------------
    def message_steps(self) -> tuple:
        deliver, others = super().message_steps()
        if self.network == "messages":
            return deliver, others
        calls = [Step("call", s.node, s.src, s.msg, label=s.label) for s in deliver]
        return (calls + deliver if self.network == "rpc+loss" else calls), others

    def apply(self, step: Step) -> None:
        if self.network == "messages":
            super().apply(step)
            return
        sim = self.sim
        if step.kind == "call":
            mid = self._find(step)
            before = {f.id for f in sim.network.held()}
            sim.deliver_held(mid)
            for f in sim.network.held():
                if f.id not in before and f.src == step.node and f.dst == step.src and type(f.msg) in _RESPONSES:
                    sim.deliver_held(f.id)
        else:
            super().apply(step)
        # no reply waits on the wire: the one a call did not deliver at once is lost
        for f in sim.network.held():
            if type(f.msg) in _RESPONSES:
                sim.drop_held(f.id)

    def apply_protocol(self, step: Step) -> None:
        c = self.system
        if step.kind == "timer":
            c.expire_timer(step.node)
        elif step.kind == "heartbeat":
            host = c.hosts[step.node]
            core = host.core
            if core.state is not LEADER:
                raise ValueError(f"{step.node} is not the leader")
            self.sim.trace.record(self.sim.now, "heartbeat_timer", step.node, ())
            for _ in range(max(1, core.config.heartbeat_ticks - core.heartbeat_elapsed)):
                host.on_tick()
        elif step.kind == "propose":
            host = c.hosts[step.node]
            seq = self.values.index(step.value) + 1
            self.proposed = self.proposed + (step.value,)
            self.sim.trace.record(self.sim.now, "propose", step.node, (step.value,))
            host.core.propose(ClientCommand("explorer", seq, ("put", "x", step.value)))
            host.poke()
        else:
            raise ValueError(f"unknown step kind {step.kind!r}")

    def live(self, src: str, dst: str, msg) -> bool:
        # §5.1: a response from an older term is ignored; terms never go back (persisted)
        return not (type(msg) in _RESPONSES and msg.term < self.system.hosts[dst].core.current_term)

    def label(self, msg) -> str:
        kind = type(msg)
        if kind is RequestVote:
            return f"RequestVote(t{msg.term}, last {msg.last_log_index}@t{msg.last_log_term})"
        if kind is RequestVoteResponse:
            return f"vote(t{msg.term}, {'granted' if msg.granted else 'refused'})"
        if kind is AppendEntries:
            return (f"AppendEntries(t{msg.term}, prev {msg.prev_log_index}@t{msg.prev_log_term}, "
                    f"{_entries(msg.entries)}, commit {msg.leader_commit})")
        if kind is AppendEntriesResponse:
            if msg.success:
                return f"AppendEntriesResponse(t{msg.term}, ok, match {msg.match_index})"
            return f"AppendEntriesResponse(t{msg.term}, reject {msg.reject_index})"
        return kind.__name__

    # -- state -------------------------------------------------------------------------------
    def shared(self, memo: dict) -> None:
        for h in self.system.hosts.values():
            for e in h.core.log:
                memo[id(e)] = e
            for e in h.storage.entries:
                memo[id(e)] = e
        memo[id(self.system.config)] = self.system.config

    def node_key(self, nid: str) -> Any:
        c = self.system.hosts[nid].core
        prog = ()
        if c.state is LEADER:
            prog = tuple((p, pr.match, pr.next, pr.state, pr.probe_sent, pr.pending_snapshot)
                         for p, pr in sorted(c.progress.items()))
        return (c.state.value, c.current_term, c.voted_for, c.leader_id, c.commit_index,
                c.last_applied, c.log.snapshot_index,
                tuple((e.term, e.kind.value, e.command) for e in c.log),
                tuple(sorted(c.votes.items())), prog, c.lead_transferee)

    def ghost_key(self) -> Any:
        m = self.system.monitor
        if m is None:
            return self.proposed
        return (self.proposed, tuple(sorted(m.leaders.items())), tuple(sorted(m.applied.items())),
                tuple(sorted(m.commit_terms.items())), frozenset(m.entries.items()))

    def violations(self) -> list:
        return self.system.safety_violations()

    def logs(self) -> dict:
        """Each server's log as ``index@tterm`` strings, with its commit index (for a lesson)."""
        out = {}
        for n, h in sorted(self.system.hosts.items()):
            c = h.core
            out[n] = {"log": [f"{e.index}@t{e.term}" for e in c.log], "commit": c.commit_index,
                      "term": c.current_term, "state": c.state.value, "alive": h.alive}
        return out


STARTS = {"initial": lambda model: None, "figure8": RaftModel._start_figure8}
