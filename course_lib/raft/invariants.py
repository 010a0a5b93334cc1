"""Raft's safety properties (Figure 3), checked after every event.

:class:`SafetyMonitor` watches every :class:`Ready` a host handles, so the check is
incremental and cheap enough to run on every event of a randomized campaign:

- **Election Safety**: at most one leader per term.
- **Log Matching**: an (index, term) pair always names the same command with the same
  predecessor term — by induction, two logs that share an (index, term) are identical
  up to it.
- **Leader Completeness**: a leader's log holds every entry committed in an earlier
  term (checked when a leader takes office and when an entry is first applied).  An
  entry is "committed in term T" by the leader of T; the monitor takes as T the term
  of the first server seen applying it — an upper bound, so the check never accuses a
  stale leader of an older term (which may rightly lack it).
- **State Machine Safety**: no two servers apply different entries at one index.

:func:`full_check` re-checks every live log pairwise from scratch.
"""

from __future__ import annotations

from .errors import SafetyViolation
from .messages import NodeState

LEADER = NodeState.LEADER


class SafetyMonitor:
    def __init__(self, raise_on_violation: bool = False) -> None:
        self.raise_on_violation = raise_on_violation
        self.violations: list[str] = []
        self.leaders: dict[int, str] = {}              # term -> leader
        self.entries: dict[tuple, tuple] = {}          # (index, term) -> (command, prev term)
        self.applied: dict[int, tuple] = {}            # index -> (term, command)
        self.commit_terms: dict[int, int] = {}         # index -> term it was (at latest) committed in
        self.max_applied = 0

    def violation(self, text: str) -> None:
        self.violations.append(text)
        if self.raise_on_violation:
            raise SafetyViolation(text)

    def observe(self, host, rd) -> None:
        core = host.core
        now = host.sim.now
        if rd.entries:
            log = core.log
            seen = self.entries
            for e in rd.entries:
                key = (e.index, e.term)
                rec = (e.command, log.term_at(e.index - 1))
                old = seen.get(key)
                if old is None:
                    seen[key] = rec
                elif old != rec:
                    self.violation(f"t={now} log matching: {host.node_id} has {key} = {rec}, "
                                   f"elsewhere {old}")
        if rd.soft_state is not None and rd.soft_state[0] is LEADER:
            term = core.current_term
            other = self.leaders.get(term)
            if other is None:
                self.leaders[term] = host.node_id
                self.check_leader_complete(host, now)
            elif other != host.node_id:
                self.violation(f"t={now} election safety: {other} and {host.node_id} lead term {term}")
        if rd.snapshot is not None:
            s = rd.snapshot
            rec = self.applied.get(s.index)
            if rec is not None and rec[0] != s.term:
                self.violation(f"t={now} state machine safety: {host.node_id} installed snapshot "
                               f"({s.index}, {s.term}) but entry {s.index} applied with term {rec[0]}")
        if rd.committed_entries:
            applied = self.applied
            for e in rd.committed_entries:
                rec = applied.get(e.index)
                if rec is None:
                    applied[e.index] = (e.term, e.command)
                    self.commit_terms[e.index] = core.current_term
                    if e.index > self.max_applied:
                        self.max_applied = e.index
                    self.check_entry_in_leaders(host, e, now)
                elif rec != (e.term, e.command):
                    self.violation(f"t={now} state machine safety: {host.node_id} applies "
                                   f"{(e.index, e.term, e.command)} where {rec} was applied")

    def check_leader_complete(self, host, now) -> None:
        log = host.core.log
        floor = log.snapshot_index
        leader_term = host.core.current_term
        commit_terms = self.commit_terms
        for index, (term, _cmd) in self.applied.items():
            if index > floor and commit_terms[index] < leader_term and log.term_at(index) != term:
                self.violation(f"t={now} leader completeness: leader {host.node_id} of term "
                               f"{host.core.current_term} lacks committed entry ({index}, {term})")
                return

    def check_entry_in_leaders(self, host, e, now) -> None:
        committed_in = self.commit_terms[e.index]
        for other in host.cluster.hosts.values():
            core = other.core
            if core.state is LEADER and core.current_term > committed_in and other.alive:
                log = core.log
                if e.index > log.snapshot_index and log.term_at(e.index) != e.term:
                    self.violation(f"t={now} leader completeness: leader {other.node_id} of term "
                                   f"{core.current_term} lacks committed entry ({e.index}, {e.term})")


def full_check(hosts) -> list[str]:
    """Check Log Matching and Election Safety over the current logs of ``hosts``."""
    out = []
    hosts = sorted(hosts, key=lambda h: h.node_id)
    leaders: dict[int, str] = {}
    for h in hosts:
        c = h.core
        if c.state is LEADER and h.alive:
            if c.current_term in leaders:
                out.append(f"election safety: {leaders[c.current_term]} and {h.node_id} lead term {c.current_term}")
            leaders[c.current_term] = h.node_id
    for i, a in enumerate(hosts):
        la = a.core.log
        for b in hosts[i + 1:]:
            lb = b.core.log
            lo = max(la.snapshot_index, lb.snapshot_index) + 1
            hi = min(la.last_index, lb.last_index)
            # find the highest common (index, term); everything before must be equal
            for idx in range(hi, lo - 1, -1):
                if la.term_at(idx) == lb.term_at(idx):
                    for k in range(lo, idx + 1):
                        if la[k] != lb[k]:
                            out.append(f"log matching: {a.node_id} and {b.node_id} agree at "
                                       f"{idx} but differ at {k}")
                            break
                    break
    return out
