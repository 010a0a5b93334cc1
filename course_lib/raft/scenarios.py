"""Scripted scenarios from the Raft paper, for lessons and tests.

:func:`figure8` replays Figure 8 of the Raft paper step by step on a 5-server
:class:`SimCluster`.  With the correct commit rule (§5.4.2: a leader counts replicas
only for entries of its own term) nothing bad happens.  With
``SimCluster(..., unsafe_commit_old_terms=True)`` the leader of (c) commits an entry of
an older term because it sits on a majority; (d)'s leader then overwrites it, and two
servers apply different commands at the same index: a State Machine Safety violation.
"""

from __future__ import annotations

from .cluster import SimCluster
from .kv import ClientCommand
from .messages import NodeState


def _propose(c: SimCluster, nid: str, value: str) -> int:
    host = c.node(nid)
    index, _term = host.core.propose(ClientCommand("figure8", 1, ("put", "fig8", value)))
    host.poke()
    return index


def _make_leader(c: SimCluster, nid: str, timeout_ms: float = 3000) -> None:
    """Force elections at ``nid`` until it leads (its term climbs past the others')."""
    deadline = c.now + timeout_ms
    while c.now < deadline:
        if c.node(nid).state is NodeState.LEADER:
            return
        if c.node(nid).state is NodeState.FOLLOWER:
            c.timeout_now(nid)
        c.run_until(lambda: c.node(nid).state is not NodeState.CANDIDATE, 100)
    raise AssertionError(f"{nid} did not become leader")


def figure8(c: SimCluster, on_step=None) -> dict:
    """Play Figure 8 (a)-(d) on ``c`` (5 servers, PreVote and CheckQuorum off, one entry
    per AppendEntries).  Returns what happened at the contested index.

    ``on_step(label, c)``, if given, is called at the end of each of the figure's
    stages, with ``label`` one of "a", "b", "c", "d" (e.g. to draw the logs)."""
    step = on_step if on_step is not None else (lambda label, cluster: None)
    if sorted(c.members) != ["n1", "n2", "n3", "n4", "n5"]:
        raise ValueError("figure8 needs a fresh 5-server cluster n1..n5")
    if c.config.pre_vote or c.config.check_quorum or c.config.max_entries_per_message != 1:
        raise ValueError("figure8 needs SimCluster(5, pre_vote=False, check_quorum=False, "
                         "max_entries_per_message=1)")
    c.run_until(lambda: c.leader() is not None, 2000)
    c.run_for(100)
    if not c.transfer_leadership("n1"):
        raise AssertionError("n1 did not take over the leadership")
    c.run_for(200)
    # (a) n1 leads; its entry X reaches n2 only; then n1 crashes
    c.partition({"n1", "n2"}, {"n3", "n4", "n5"})
    index = _propose(c, "n1", "X")
    c.run_for(50)
    step("a", c)
    c.crash("n1")
    # (b) n5 is elected by n3, n4, n5; its new entry at the same index (its no-op, of
    # the newer term) never leaves it: n5 is cut off at once and crashes
    c.heal()
    c.isolate("n2")
    _make_leader(c, "n5")
    step("b", c)
    c.isolate("n5")
    c.crash("n5")
    c.run_for(50)                      # what n5 had on the wire is lost
    # (c) n1 restarts and is elected by n1, n2, n3; X reaches n3 — on a majority now
    c.heal()
    c.isolate("n4")
    c.restart("n1")
    _make_leader(c, "n1")
    n1 = c.node("n1")

    def n3_has_x() -> bool:
        pr = n1.core.progress.get("n3")
        return pr is not None and pr.match >= index
    if not c.run_until(n3_has_x, 1000):
        raise AssertionError("X did not reach n3")
    committed_x = n1.commit_index >= index      # on a majority (n1, n2, n3): committed?
    step("c", c)
    # n1 crashes before its current-term entry reaches n3
    c.isolate("n1")
    c.crash("n1")
    c.run_for(50)
    # (d) n5 restarts, is elected by n3, n4 (and itself) — its last term is the highest
    # — and replicates its entry over X
    c.heal()
    c.isolate("n2")
    c.restart("n5")
    _make_leader(c, "n5")
    n5 = c.node("n5")
    c.run_until(lambda: n5.commit_index >= index, 1000)
    c.run_for(200)
    step("d", c)
    winner = n5.log[index] if n5.log.last_index >= index else None
    return {
        "index": index,
        "x_committed_in_c": committed_x,            # True only under the unsafe rule
        "final_entry": winner,                      # n5's entry of term (b): X is gone
        "violations": c.safety_violations(),
    }
