"""The discrete-event simulator on its own: clock, network faults, node faults, trace."""

from __future__ import annotations

import pytest

from course_lib.sim import Process, RandomStreams, Scheduler, Simulation, TraceEvent


class Recorder(Process):
    """Records what it receives and how often it ticks; echoes 'ping' as 'pong'."""

    def __init__(self, node_id, ticking=True):
        super().__init__(node_id)
        self.ticking = ticking
        self.got = []
        self.ticks = 0
        self.crashes = 0
        self.volatile = "fresh"

    def on_tick(self):
        self.ticks += 1

    def on_message(self, src, msg):
        self.got.append((self.sim.now, src, msg))
        if msg == "ping":
            self.sim.send(self.node_id, src, "pong")

    def on_crash(self):
        self.crashes += 1
        self.volatile = None


def world(seed=1, n=3, **kw):
    sim = Simulation(seed, **kw)
    procs = [Recorder(f"p{i}") for i in range(1, n + 1)]
    for p in procs:
        sim.add(p)
    return sim, procs


# -- scheduler ---------------------------------------------------------------------------

def test_events_run_in_time_then_schedule_order():
    s = Scheduler()
    out = []
    s.schedule(5, out.append, "b")
    s.schedule(1, out.append, "a")
    s.schedule(5, out.append, "c")
    s.run_until(10)
    assert out == ["a", "b", "c"] and s.now == 10


def test_scheduler_rejects_negative_delay_and_going_back():
    s = Scheduler()
    with pytest.raises(ValueError, match="delay"):
        s.schedule(-1, print)
    s.run_until(5)
    with pytest.raises(ValueError, match="back"):
        s.run_until(4)


def test_random_streams_are_independent_and_reproducible():
    a, b = RandomStreams(3), RandomStreams(3)
    a.stream("extra").random()                  # drawing elsewhere does not perturb "net"
    assert a.stream("net").random() == b.stream("net").random()
    assert RandomStreams(3).stream("x").random() != RandomStreams(4).stream("x").random()
    with pytest.raises(ValueError):
        RandomStreams("seed")


# -- network -----------------------------------------------------------------------------

def test_message_delivered_after_delay_within_range():
    sim, (p1, p2, _) = world()
    sim.network.delay_ms = (10, 20)
    sim.send("p1", "p2", "hello")
    sim.run_for(100)
    (t, src, msg), = p2.got
    assert 10 <= t <= 20 and (src, msg) == ("p1", "hello")


def test_links_are_fifo_unless_reordering():
    sim, (p1, p2, _) = world()
    sim.network.delay_ms = (1, 50)
    for i in range(50):
        sim.send("p1", "p2", i)
    sim.run_for(200)
    assert [m for _, _, m in p2.got] == list(range(50))
    sim.network.reorder = True
    sim.network.reorder_rate = 0.5
    for i in range(50):
        sim.send("p1", "p2", 100 + i)
    sim.run_for(2000)
    got = [m for _, _, m in p2.got[50:]]
    assert sorted(got) == list(range(100, 150)) and got != sorted(got)


def test_long_reordering_delivers_stale_messages_late():
    sim, (p1, p2, _) = world()
    sim.network.delay_ms = 1
    sim.network.reorder = True
    sim.network.reorder_rate = 1.0
    sim.network.reorder_max_ms = 1000
    for i in range(20):
        sim.send("p1", "p2", i)
    sim.run_for(2000)
    assert max(t for t, _, _ in p2.got) > 300


def test_drop_rate_loses_about_that_fraction():
    sim, (p1, p2, _) = world()
    sim.network.drop_rate = 0.3
    for i in range(2000):
        sim.send("p1", "p2", i)
    sim.run_for(100)
    assert 0.25 < 1 - len(p2.got) / 2000 < 0.35


def test_duplication_delivers_some_messages_twice():
    sim, (p1, p2, _) = world()
    sim.network.duplicate_rate = 0.5
    for i in range(200):
        sim.send("p1", "p2", i)
    sim.run_for(100)
    assert 250 < len(p2.got) < 350 and sim.network.duplicated > 0


def test_per_link_settings_override_defaults():
    sim, (p1, p2, p3) = world()
    sim.network.set_link("p1", "p2", delay=100, drop_rate=0.0)
    sim.send("p1", "p2", "slow")
    sim.send("p1", "p3", "fast")
    sim.run_for(50)
    assert p3.got and not p2.got
    sim.run_for(100)
    assert p2.got[0][0] == 100


def test_partition_cuts_between_groups_and_in_flight_messages():
    sim, (p1, p2, p3) = world()
    sim.network.delay_ms = 10
    sim.send("p1", "p3", "in flight")
    sim.partition({"p1", "p2"}, {"p3"})
    sim.send("p1", "p2", "same side")
    sim.send("p3", "p1", "across")
    sim.run_for(50)
    assert [m for _, _, m in p2.got] == ["same side"]
    assert p3.got == [] and p1.got == []
    sim.heal()
    sim.send("p3", "p1", "healed")
    sim.run_for(50)
    assert [m for _, _, m in p1.got] == ["healed"]


def test_one_way_cut():
    sim, (p1, p2, _) = world()
    sim.cut_link("p1", "p2")
    sim.send("p1", "p2", "lost")
    sim.send("p2", "p1", "ok")
    sim.run_for(50)
    assert p2.got == [] and [m for _, _, m in p1.got] == ["ok"]


def test_isolate_cuts_all_links_of_a_node():
    sim, (p1, p2, p3) = world()
    sim.isolate("p2")
    for dst in ("p1", "p3"):
        sim.send("p2", dst, "x")
        sim.send(dst, "p2", "y")
    sim.send("p1", "p3", "z")
    sim.run_for(50)
    assert p2.got == [] and p1.got == [] and [m for _, _, m in p3.got] == ["z"]


def test_in_flight_lists_messages_with_src_and_dst():
    sim, _ = world()
    sim.network.delay_ms = 10
    sim.send("p1", "p2", "a")
    sim.send("p2", "p3", "b")
    inf = sim.in_flight()
    assert [(m.src, m.dst, m.msg) for m in inf] == [("p1", "p2", "a"), ("p2", "p3", "b")]
    assert [m.msg for m in sim.in_flight(dst="p3")] == ["b"]
    sim.run_for(20)
    assert sim.in_flight() == []


# -- node faults ------------------------------------------------------------------------

def test_crashed_node_loses_volatile_state_messages_and_ticks():
    sim, (p1, p2, _) = world()
    sim.run_for(50)
    sim.crash("p2")
    ticks = p2.ticks
    sim.send("p1", "p2", "lost")
    sim.run_for(100)
    assert p2.volatile is None and p2.got == [] and p2.ticks == ticks
    sim.restart("p2")
    sim.send("p1", "p2", "after")
    sim.run_for(100)
    assert [m for _, _, m in p2.got] == ["after"] and p2.ticks > ticks


def test_paused_node_queues_messages_until_resume():
    sim, (p1, p2, _) = world()
    sim.pause("p2")
    ticks = p2.ticks
    sim.send("p1", "p2", "a")
    sim.send("p1", "p2", "b")
    sim.run_for(100)
    assert p2.got == [] and p2.ticks == ticks
    sim.resume("p2")
    assert [m for _, _, m in p2.got] == ["a", "b"] and p2.got[0][0] == sim.now
    sim.run_for(50)
    assert p2.ticks > ticks


def test_clock_rate_skews_ticks():
    sim, (p1, p2, _) = world(tick_ms=10)
    sim.set_clock_rate("p2", 2.0)
    sim.run_for(1000)
    assert 190 <= p2.ticks <= 201 and 99 <= p1.ticks <= 101


def test_bad_arguments_raise_value_error_naming_the_problem():
    sim, _ = world()
    with pytest.raises(ValueError, match="unknown node 'zz'"):
        sim.crash("zz")
    sim.crash("p1")
    with pytest.raises(ValueError, match="already down"):
        sim.crash("p1")
    with pytest.raises(ValueError, match="is up"):
        sim.restart("p2")
    with pytest.raises(ValueError, match="non-negative"):
        sim.run_for(-5)
    with pytest.raises(ValueError, match="overlap"):
        sim.partition({"p1", "p2"}, {"p2", "p3"})
    with pytest.raises(ValueError, match="already exists"):
        sim.add(Recorder("p2"))
    with pytest.raises(ValueError, match="drop_rate"):
        sim.network.drop_rate = 1.5
    with pytest.raises(ValueError, match="delay"):
        sim.network.delay_ms = (5, 1)
    with pytest.raises(ValueError, match="not paused"):
        sim.resume("p2")


# -- trace -------------------------------------------------------------------------------

def _run(seed, level="messages"):
    sim, (p1, p2, p3) = world(seed, trace_level=level)
    sim.network.drop_rate = 0.1
    sim.network.duplicate_rate = 0.1
    sim.network.delay_ms = (1, 30)
    for i in range(30):
        sim.send("p1", "p2", "ping")
        sim.send("p3", "p2", i)
    sim.run_for(40)
    sim.crash("p3")
    sim.run_for(100)
    return sim


def test_trace_records_every_event_as_trace_events():
    sim = _run(1)
    kinds = {e.kind for e in sim.trace}
    assert {"send", "deliver", "drop", "duplicate", "crash", "add"} <= kinds
    e = sim.trace[0]
    assert isinstance(e, TraceEvent) and (e.time, e.kind, e.node) == (0.0, "add", "p1")


def test_same_seed_same_calls_same_trace_digest():
    assert _run(7).trace_digest() == _run(7).trace_digest()
    assert _run(7).trace_digest() != _run(8).trace_digest()


def test_summary_trace_keeps_a_meaningful_digest():
    a, b = _run(7, "summary"), _run(8, "summary")
    assert len(a.trace) < len(_run(7).trace)
    assert a.trace_digest() != b.trace_digest()
    assert a.trace_digest() == _run(7, "summary").trace_digest()


# -- nemesis -----------------------------------------------------------------------------

def test_nemesis_draws_every_kind_and_heals_everything():
    import random
    from course_lib.sim import Nemesis
    sim, procs = world(5, n=5)
    nem = Nemesis(sim, random.Random(5), nodes=lambda: [p.node_id for p in procs])
    for _ in range(300):
        nem.act()
        sim.run_for(10)
    assert {kind for _, kind, _ in nem.log} == set(Nemesis.KINDS)
    nem.heal_all()
    assert all(sim.is_alive(p.node_id) and not sim.is_paused(p.node_id) for p in procs)
    assert sim.network.cuts == set() and sim.network.drop_rate == 0
    with pytest.raises(ValueError, match="unknown fault kind"):
        nem.act("meteor")


def test_nemesis_is_reproducible():
    import random
    from course_lib.sim import Nemesis

    def run():
        sim, procs = world(9, n=4)
        nem = Nemesis(sim, random.Random(9), nodes=lambda: [p.node_id for p in procs])
        for _ in range(50):
            nem.act()
            for p in procs:
                if sim.is_alive(p.node_id):
                    sim.send(p.node_id, procs[0].node_id, "ping")
            sim.run_for(20)
        return nem.log, sim.trace_digest()
    assert run() == run()
