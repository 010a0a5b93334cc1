"""course_lib.detect: seeded traces, the trade-off replay, and the simulated cluster."""

import math

import pytest

from course_lib.detect import (
    NodeStatus, PhiAccrualDetector, SimulatedCluster, generate_trace, phi_tradeoff,
    timeout_tradeoff,
)


# -- traces ---------------------------------------------------------------------------

def test_same_seed_same_trace_and_another_seed_another():
    a, b = generate_trace(5, duration=120.0), generate_trace(5, duration=120.0)
    assert a == b
    assert generate_trace(6, duration=120.0).arrivals != a.arrivals


def test_without_delay_heartbeats_arrive_on_the_ticks_and_pauses_skip_them():
    trace = generate_trace(2, duration=3600.0, jitter=(0.0,), pauses_per_hour=30.0, pause_mean=1.0)
    assert trace.pauses
    arrivals = trace.arrivals
    for start, length in trace.pauses:
        if start + length >= trace.duration:
            continue
        assert not any(start < t < start + length for t in arrivals)
        assert start + length in arrivals
    gaps = trace.intervals()
    assert min(gaps) > 0.0 and max(gaps) >= max(length for _, length in trace.pauses) - 0.1


def test_a_crashed_node_sends_nothing_after_the_crash():
    trace = generate_trace(3, duration=100.0, jitter=(0.0,), crash_at=40.0)
    assert max(trace.arrivals) < 40.0 and trace.alive_until == 40.0


def test_lost_heartbeats_are_missing():
    full = generate_trace(4, duration=600.0, pauses_per_hour=0.0)
    lossy = generate_trace(4, duration=600.0, pauses_per_hour=0.0, loss=0.2)
    assert 0.7 < len(lossy.arrivals) / len(full.arrivals) < 0.9


@pytest.mark.parametrize("kwargs, name", [
    (dict(duration=0), "duration"), (dict(interval=-1.0), "interval"),
    (dict(jitter=()), "jitter"), (dict(jitter=(-0.1,)), "jitter"),
    (dict(loss=1.0), "loss"), (dict(pause_mean=0.0), "pause_mean"),
    (dict(crash_at=-1.0), "crash_at"), (dict(regime_mean=math.nan), "regime_mean"),
])
def test_trace_bad_arguments(kwargs, name):
    with pytest.raises(ValueError, match=name):
        generate_trace(0, **kwargs)


# -- trade-off ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def trace():
    return generate_trace(7, duration=900.0)


def test_timeout_curve_mistakes_fall_as_the_timeout_grows(trace):
    points = timeout_tradeoff(trace, [0.12, 0.15, 0.2, 0.3, 0.5, 1.0, 3.0])
    mistakes = [p.wrong_suspicions_per_hour for p in points]
    assert mistakes == sorted(mistakes, reverse=True)
    assert mistakes[0] > 100 and mistakes[-1] == 0.0
    assert [p.mean_detection_time for p in points] == [0.12, 0.15, 0.2, 0.3, 0.5, 1.0, 3.0]


@pytest.mark.parametrize("distribution", ["normal", "logistic", "exponential"])
def test_phi_curve_trades_detection_time_for_mistakes(trace, distribution):
    points = phi_tradeoff(trace, [1, 2, 4, 8, 16, 32], window_size=500, min_std_dev=0.002,
                          distribution=distribution)
    times = [p.mean_detection_time for p in points]
    mistakes = [p.wrong_suspicions_per_hour for p in points]
    assert times == sorted(times) and len(set(times)) == len(times)
    assert mistakes == sorted(mistakes, reverse=True)


def test_replayed_time_to_suspicion_is_where_phi_actually_crosses(trace):
    """The replay's shortcut (time_to_suspicion) agrees with evaluating phi itself."""
    d = PhiAccrualDetector(threshold=8.0, window_size=500, min_std_dev=0.002)
    mistakes = 0
    arrivals = trace.arrivals
    for i, t in enumerate(arrivals[:-1]):
        d.heartbeat("node", t)
        wait = d.time_to_suspicion("node")
        if i % 97 == 0:
            assert d.phi("node", t + wait * (1 - 1e-9)) < 8.0 <= d.phi("node", t + wait * (1 + 1e-9))
        if t >= 60.0 and arrivals[i + 1] > t + wait:
            assert d.phi("node", arrivals[i + 1]) > 8.0
            mistakes += 1
    point = phi_tradeoff(trace, [8.0], window_size=500, min_std_dev=0.002)[0]
    scored_hours = (arrivals[-1] - min(t for t in arrivals if t >= 60.0)) / 3600.0
    assert point.wrong_suspicions_per_hour == pytest.approx(mistakes / scored_hours)


def test_nothing_to_score_is_an_error():
    short = generate_trace(1, duration=30.0)
    with pytest.raises(ValueError, match="warmup"):
        timeout_tradeoff(short, [0.5], warmup=60.0)


# -- simulated cluster ----------------------------------------------------------------

def test_simulation_is_the_same_however_time_is_chopped():
    one = SimulatedCluster(("a", "b"), jitter=0.01, seed=9)
    many = SimulatedCluster(("a", "b"), jitter=0.01, seed=9)
    one.advance(10.0)
    for _ in range(100):
        many.advance(0.1)
    for node in ("a", "b"):
        assert one.detector.intervals(node) == many.detector.intervals(node)
    assert one.sample().phi == pytest.approx(many.sample().phi)


def test_simulated_kill_is_suspected_and_the_others_are_not():
    c = SimulatedCluster(("a", "b", "c"), jitter=0.005, seed=1)
    c.advance(20.0)
    assert c.sample().suspected == frozenset()
    c.kill("b")
    c.advance(2.0)
    sample = c.sample()
    assert sample.suspected == {"b"} and math.isfinite(sample.phi["b"])
    assert c.status("b") is NodeStatus.DEAD


def test_simulated_pause_is_suspected_then_forgiven():
    c = SimulatedCluster(("a", "b"), seed=2)
    c.advance(10.0)
    c.pause("a")
    c.advance(1.5)
    assert "a" in c.sample().suspected
    c.resume("a")
    c.advance(0.05)
    assert c.sample().suspected == frozenset()


def test_simulated_restart_is_a_new_incarnation():
    c = SimulatedCluster(("a",), seed=3)
    c.advance(5.0)
    c.kill("a")
    c.advance(5.0)
    c.restart("a")
    c.advance(0.01)
    assert c.detector.interval_stats("a").count == 2
    assert c.info("a").heartbeats == 1


def test_simulated_delay_and_jitter_change_the_intervals():
    c = SimulatedCluster(("a",), seed=4)
    c.advance(10.0)
    calm = c.detector.interval_stats("a").std_dev
    c.set_jitter("a", 0.03)
    c.advance(10.0)
    assert c.detector.interval_stats("a").std_dev > 5 * max(calm, 1e-3)
    c.set_delay("a", 0.5)
    c.advance(0.45)
    assert "a" in c.sample().suspected


@pytest.mark.parametrize("action, setup, message", [
    ("pause", "kill", "cannot pause node 'a': it is dead"),
    ("resume", None, "cannot resume node 'a': it is alive"),
    ("restart", None, "cannot restart node 'a': it is alive"),
    ("kill", "kill", "cannot kill node 'a': it is dead"),
])
def test_simulated_nonsense_actions_raise_value_error(action, setup, message):
    c = SimulatedCluster(("a",), seed=5)
    if setup:
        getattr(c, setup)("a")
    with pytest.raises(ValueError, match=message):
        getattr(c, action)("a")


def test_simulated_bad_arguments():
    with pytest.raises(ValueError, match="node_id"):
        SimulatedCluster(("a b",))
    with pytest.raises(ValueError, match="distinct"):
        SimulatedCluster(("a", "a"))
    c = SimulatedCluster(("a",))
    with pytest.raises(ValueError, match="unknown node 'z'"):
        c.kill("z")
    with pytest.raises(ValueError, match="jitter"):
        c.set_jitter("a", -1.0)
    with pytest.raises(ValueError, match="dt"):
        c.advance(-1.0)
