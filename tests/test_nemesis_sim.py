"""The scheduled simulator nemesis, on the simulated Raft cluster, and the checker on its history."""

import random

import pytest

from course_lib.check import (
    SIM_FAULT_KINDS, FaultInterval, SimFault, SimNemesis, check, kv, plot_history,
    random_sim_schedule,
)
from course_lib.raft import SimCluster
from course_lib.raft.campaign import ClosedLoopClients


def _cluster(seed=0):
    c = SimCluster(3, seed=seed, trace_level="summary", client_timeout_ms=800,
                   client_retry_ms=60)
    assert c.run_until(lambda: c.leader() is not None, 1000)
    return c


def test_random_sim_schedule_is_seeded_and_well_formed():
    nodes = ["n1", "n2", "n3"]
    a = random_sim_schedule(nodes, seed=5, duration_ms=20_000)
    assert a == random_sim_schedule(nodes, seed=5, duration_ms=20_000)
    assert a != random_sim_schedule(nodes, seed=6, duration_ms=20_000)
    assert {f.kind for f in a} == set(SIM_FAULT_KINDS)
    for f, g in zip(a, a[1:]):
        assert f.at + f.duration <= g.at
    for f in a:
        if f.kind == "partition":
            left, right = f.target
            assert left and right and sorted(left + right) == nodes
        elif f.kind in ("crash", "pause", "isolate"):
            assert f.target in nodes
    with pytest.raises(ValueError, match="unknown fault kind"):
        random_sim_schedule(nodes, seed=0, duration_ms=10, kinds=["kill"])
    with pytest.raises(ValueError, match="two nodes"):
        random_sim_schedule(["n1"], seed=0, duration_ms=10)
    with pytest.raises(ValueError, match="unknown fault kind"):
        SimFault(0, "meteor", "n1", 10)


def test_each_fault_starts_and_ends_on_the_virtual_clock():
    c = _cluster()
    schedule = [
        SimFault(100, "crash", "n1", 200), SimFault(400, "pause", "n2", 100),
        SimFault(600, "partition", (("n1",), ("n2", "n3")), 100),
        SimFault(800, "loss", 0.5, 100), SimFault(1000, "delay", (20.0, 40.0), 100),
        SimFault(1200, "skew", ("n3", 2.0), 100), SimFault(1400, "isolate", "n3", 100),
    ]
    nemesis = SimNemesis(c, schedule)
    base = c.now
    nemesis.start()
    c.run_for(150)
    assert not c.sim.is_alive("n1")
    c.run_for(300)
    assert c.sim.is_alive("n1") and c.sim.is_paused("n2")
    c.run_for(200)
    assert c.network.is_cut("n1", "n2") and not c.network.is_cut("n2", "n3")
    c.run_for(200)
    assert not c.network.cuts and c.network.drop_rate == 0.5
    c.run_for(200)
    assert c.network.drop_rate == 0.0 and c.network.delay_ms == (20.0, 40.0)
    c.run_for(400)
    assert c.network.is_cut("n3", "n1")
    c.run_for(200)
    assert not c.network.cuts and c.network.delay_ms == (1.0, 5.0)
    got = [(i.kind, i.start - base, i.end - base) for i in nemesis.intervals]
    assert got == [(f.kind, f.at, f.at + f.duration) for f in schedule]
    assert nemesis.intervals[2].label == "partition n1 | n2 n3"
    assert not nemesis.skipped


def test_faults_that_cannot_start_are_skipped():
    c = _cluster()
    schedule = [SimFault(0, "crash", "n1", 300), SimFault(100, "pause", "n1", 50),
                SimFault(100, "isolate", "n2", 300), SimFault(200, "partition",
                                                             (("n2",), ("n1", "n3")), 50)]
    nemesis = SimNemesis(c, schedule)
    nemesis.start()
    c.run_for(250)
    nemesis.heal_all()
    assert nemesis.skipped == [schedule[1], schedule[3]]
    assert c.sim.is_alive("n1") and not c.network.cuts
    assert all(i.end is not None for i in nemesis.intervals)
    with pytest.raises(ValueError, match="already been started"):
        nemesis.start()
    with pytest.raises(ValueError, match="not a simulation"):
        SimNemesis(object(), [])


def _campaign(seed):
    c = _cluster(seed)
    nemesis = SimNemesis(c, random_sim_schedule(c.members, seed=seed, duration_ms=3000))
    nemesis.start()
    work = ClosedLoopClients(c, 3, random.Random(seed))
    c.run_for(3000)
    nemesis.heal_all()
    c.run_for(1500)
    work.running = False
    c.run_for(1000)
    return c.history, nemesis.intervals


def test_a_raft_run_under_a_scheduled_nemesis_is_reproducible_and_linearizable():
    history, intervals = _campaign(3)
    assert (history, intervals) == _campaign(3)
    assert intervals and all(isinstance(i, FaultInterval) for i in intervals)
    result = check(kv(), history, timeout=10)
    assert result.ok is True, result.explain()
    fig = plot_history(history, result, faults=intervals)
    assert len(fig.layout.shapes) == len(intervals)
