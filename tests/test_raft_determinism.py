"""Same seed, same calls -> the same trace (and digest); a failure replays from its seed."""

from __future__ import annotations

from course_lib.raft import SimCluster
from course_lib.raft.campaign import ClosedLoopClients, RaftNemesis, run_seed
import random


def faulty_run(seed: int, level: str = "messages") -> SimCluster:
    c = SimCluster(5, seed=seed, snapshot_threshold=10, trace_level=level)
    c.network.drop_rate = 0.05
    c.network.duplicate_rate = 0.05
    c.network.reorder = True
    c.run_until(lambda: c.leader() is not None, 2000)
    ClosedLoopClients(c, 3, random.Random(seed))
    nemesis = RaftNemesis(c, random.Random(seed), spares=("n6",))
    for _ in range(15):
        c.run_for(100)
        nemesis.act()
    nemesis.heal_all()
    c.run_for(500)
    return c


def test_same_seed_gives_same_trace_digest():
    a, b = faulty_run(3), faulty_run(3)
    assert len(a.trace) == len(b.trace) and len(a.trace) > 1000
    assert a.trace.events == b.trace.events
    assert a.trace_digest() == b.trace_digest()
    assert a.history == b.history


def test_different_seeds_give_different_traces():
    assert faulty_run(3).trace_digest() != faulty_run(4).trace_digest()


def test_summary_trace_digest_is_reproducible_and_discriminating():
    a, b, d = faulty_run(5, "summary"), faulty_run(5, "summary"), faulty_run(6, "summary")
    assert a.trace_digest() == b.trace_digest() != d.trace_digest()


def test_campaign_seed_replays_identically():
    r1, r2 = run_seed(17), run_seed(17)
    assert r1.faults == r2.faults and r1.operations == r2.operations and r1.ok == r2.ok
