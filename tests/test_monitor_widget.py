"""course_lib.monitor.Dashboard (the live monitoring model) and its view,
course_lib.viz.monitor_widget.MonitorWidget, headless."""

from __future__ import annotations

import asyncio
import math

import pytest

from course_lib.monitor import (AlertStatus, Dashboard, Health, LiveRule,
                                message_template)
from course_lib.monitor.cluster import _Run
from course_lib.monitor.dashboard import HORIZON_S, AlertState

SEED = 2


def run_scenario(seed: int = SEED) -> Dashboard:
    d = Dashboard(seed)
    d.run_for(60)
    d.inject("slow", "n4")
    d.run_for(40)
    d.inject("crash", "n2")
    d.run_for(20)
    d.set_rule("HighLatencyP95", for_s=10.0)
    d.inject("error_burst", "n3")
    d.heal("n4")
    d.run_for(40)
    return d


# -- the model ---------------------------------------------------------------------------

def test_same_seed_and_actions_give_the_same_run_and_replay_rebuilds_it():
    a, b = run_scenario(), run_scenario()
    assert a.events == b.events and a.events
    assert a.log_summary() == b.log_summary()
    for node in a.nodes:
        assert a.history("p95_ms", node) == b.history("p95_ms", node)
    again = a.replay()
    assert again.time == a.time and again.events == a.events
    assert again.history("disk_used_percent", "n5") == a.history("disk_used_percent", "n5")
    other = run_scenario(SEED + 1)
    assert other.history("p95_ms", "n1") != a.history("p95_ms", "n1")


def test_the_live_cluster_is_simulate_clusters_cluster_and_percentiles_are_nearest_rank():
    d = Dashboard(SEED)
    run = _Run(SEED, d.nodes, HORIZON_S, (), 1.0, 5.0, 5.0, 0.3)
    run.sim.run_for(200_000)
    requests = run.sink.requests
    for stop in (60, 130, 200):
        d.run_until(stop)
        for node in d.nodes:
            window = sorted(r.latency_ms for r in requests
                            if r.node == node and stop - 60 < r.time <= stop)
            for q in (50, 95, 99):
                want = window[math.ceil(q / 100 * len(window)) - 1]
                assert d.value(f"p{q}_ms", node) == want
            assert d.value("throughput_rps", node) == len(window) / 60
            assert d.value("p50_ms", node) <= d.value("p95_ms", node) <= d.value("p99_ms", node)


def test_a_calm_cluster_is_healthy_and_raises_no_alert():
    d = Dashboard(SEED)
    d.run_for(300)
    assert d.events == []
    assert all(d.health(n) is Health.UP for n in d.nodes)
    assert d.alerts(AlertState.PENDING, AlertState.FIRING) == []
    assert sum(d.log_summary().errors_by_node.values()) == 0


def test_an_alert_is_pending_for_exactly_for_s_before_it_fires():
    d = Dashboard(SEED)
    d.run_for(60)
    d.inject("slow", "n4", duration_s=120)
    pending_since = fired = None
    while fired is None and d.time < 180:
        events = d.step()
        state = d.alert("HighLatencyP95", "n4")
        if pending_since is None and state.state == AlertState.PENDING:
            pending_since = d.time
        if events:
            fired = events
    assert pending_since is not None and pending_since > 60
    assert [(e.rule, e.node, e.status) for e in fired] == [("HighLatencyP95", "n4", AlertStatus.FIRING)]
    assert fired[0].time - pending_since == d.rules["HighLatencyP95"].for_s
    assert d.value("p95_ms", "n4") > 130


def test_hysteresis_holds_a_firing_alert_until_the_clear_level_and_keep_firing_for_delays_it():
    d = Dashboard(SEED)
    d.inject("disk_fill", "n5", duration_s=200)      # full (98 %) from 100 s to 200 s
    d.run_for(120)
    assert ("DiskAlmostFull", "n5") in d.firing()
    disk = d.value("disk_used_percent", "n5")
    assert 96 < disk < 99
    # above the clear level but below the threshold: still firing
    d.set_rule("DiskAlmostFull", threshold=99.5, clear_below=95.0)
    d.run_for(10)
    assert ("DiskAlmostFull", "n5") in d.firing()
    # the clear level above the value, but keep_firing_for 10 s: resolves 10 s later
    d.set_rule("DiskAlmostFull", clear_below=99.4, keep_firing_for_s=10.0)
    began = d.time
    resolved = []
    while not resolved:
        resolved = [e for e in d.step() if e.rule == "DiskAlmostFull"]
    assert resolved[0].status is AlertStatus.RESOLVED
    assert resolved[0].time - began == pytest.approx(11.0)      # first false at began + 1


def test_a_flapping_value_never_fires_a_rule_with_a_for_duration():
    rule = LiveRule("Hot", "cpu_percent", threshold=50.0, for_s=10.0, clear_below=40.0)
    d = Dashboard(SEED, rules=[rule])
    for k in range(40):
        state = d._step_alert(rule, "n1", 51.0 if k % 5 else 49.0, float(k))
        assert state is None
    assert d.firing() == set()


def test_a_crash_is_suspected_then_down_then_up_after_heal_and_node_down_follows():
    d = Dashboard(SEED)
    d.run_for(30)
    d.inject("crash", "n2", duration_s=100)
    assert not d.is_up("n2")
    seen = []
    for _ in range(10):
        d.step()
        seen.append(d.health("n2"))
    assert seen[0] is Health.UP and Health.SUSPECTED in seen and seen[-1] is Health.DOWN
    assert ("NodeDown", "n2") in d.firing()
    d.run_for(60)                     # the window empties: no data, not "fast"
    assert d.value("throughput_rps", "n2") == 0 and d.value("p95_ms", "n2") is None
    assert d.alert("HighLatencyP95", "n2").state == AlertState.INACTIVE
    d.heal("n2")
    d.run_for(5)
    assert d.is_up("n2") and d.health("n2") is Health.UP
    assert [e.status for e in d.events if e.rule == "NodeDown"] == [AlertStatus.FIRING, AlertStatus.RESOLVED]


def test_a_crash_restarts_by_itself_when_its_time_is_up():
    d = Dashboard(SEED)
    d.inject("crash", "n1", duration_s=8)
    d.run_for(7)
    assert not d.is_up("n1")
    d.run_for(3)
    assert d.is_up("n1") and d.active_incidents("n1") == []


def test_an_error_burst_shows_in_the_logs_at_its_origin_and_fires_the_error_ratio_rule():
    d = Dashboard(SEED)
    d.run_for(30)
    d.inject("error_burst", "n3", duration_s=40)
    d.run_for(30)
    logs = d.log_summary()
    assert max(logs.errors_by_node, key=logs.errors_by_node.get) == "n3"
    assert all(c < logs.errors_by_node["n3"] / 3 for n, c in logs.errors_by_node.items() if n != "n3")
    assert "database connection refused" in logs.top[0][1]
    assert ("HighErrorRatio", "n3") in d.firing()
    assert d.value("error_logs", "n3") == logs.errors_by_node["n3"]


def test_message_templates_hide_measured_values_but_keep_names():
    assert message_template("GET /cart/17 500 45.2ms: upstream n3 failed") == "GET /* 500 #ms: upstream n3 failed"
    assert message_template("disk usage 97.3% on /var/lib/data") == "disk usage #% on /var/lib/data"


def test_a_silent_nodes_gauges_go_stale():
    d = Dashboard(SEED)
    d.run_for(20)
    assert d.value("disk_used_percent", "n1") is not None
    d.inject("crash", "n1", duration_s=60)
    d.run_for(25)
    assert d.value("disk_used_percent", "n1") is None


@pytest.mark.parametrize("call, match", [
    (lambda d: d.inject("melt", "n1"), "unknown fault"),
    (lambda d: d.inject("slow", "n9"), "unknown node"),
    (lambda d: d.inject("slow", "n1", duration_s=-1), "duration_s"),
    (lambda d: d.inject("error_burst", "n1", magnitude=2.0), "probability"),
    (lambda d: d.heal("n1"), "no active fault"),
    (lambda d: d.set_rule("Nope", threshold=1), "unknown rule"),
    (lambda d: d.set_rule("NodeDown", colour="red"), "set_rule changes"),
    (lambda d: d.set_rule("DiskAlmostFull", clear_below=95), "clear_below"),
    (lambda d: d.set_rule("DiskAlmostFull", for_s=-5), "for_s"),
    (lambda d: d.step(-1), "ticks"),
    (lambda d: d.value("latency", "n1"), "unknown metric"),
])
def test_bad_calls_raise_value_error(call, match):
    with pytest.raises(ValueError, match=match):
        call(Dashboard(SEED))


def test_nonsense_fault_sequences_are_refused():
    d = Dashboard(SEED)
    d.inject("slow", "n1")
    with pytest.raises(ValueError, match="already has an active slow fault"):
        d.inject("slow", "n1")
    d.inject("crash", "n2")
    with pytest.raises(ValueError, match="n2 is down"):
        d.inject("crash", "n2")
    d.run_for(5)
    with pytest.raises(ValueError, match="run back"):
        d.run_until(1)
    with pytest.raises(ValueError, match="metric"):
        LiveRule("X", "nope", 1, 0, 0)
    with pytest.raises(ValueError, match="distinct"):
        Dashboard(SEED, rules=[LiveRule("X", "p95_ms", 1, 0, 0)] * 2)


# -- the widget --------------------------------------------------------------------------

@pytest.fixture
def widget():
    from course_lib.viz.monitor_widget import MonitorWidget

    w = MonitorWidget(seed=SEED)
    yield w
    w.close()


def test_traces_cover_every_row_node_and_rule_line(widget):
    names = [t.name for t in widget.figure.data]
    assert names == (["n1", "n2", "n3", "n4", "n5", "threshold", "clear"] * 3)
    assert widget.figure.data[5].y == (130.0, 130.0) and widget.figure.data[6].y == (90.0, 90.0)
    assert widget.figure.data[12].y == () and widget.figure.data[19].y == (90.0, 90.0)


def test_step_inject_and_heal_buttons_drive_the_model(widget):
    for _ in range(3):
        widget.step10_button.click()
    widget.step_button.click()
    assert widget.dashboard.time == 31 and widget.message_text == "t = 31 s"
    widget.node_select.value = "n4"
    widget.fault_select.value = "slow"
    widget.inject_button.click()
    assert widget.message_text == "slow on n4 from 31 s to 121 s"
    for _ in range(7):
        widget.step10_button.click()
    assert ("HighLatencyP95", "n4") in widget.dashboard.firing()
    assert "FIRING" in widget.events_html.value and "n4" in widget.alerts_html.value
    assert max(y for y in widget.figure.data[3].y if y is not None) > 130
    widget.heal_button.click()
    assert widget.message_text == "healed n4: ended slow"
    assert widget.dashboard.active_incidents() == []


def test_nonsense_actions_show_a_red_message_instead_of_raising(widget):
    widget.node_select.value = "n2"
    widget.fault_select.value = "crash"
    assert widget.duration_box.value == 30.0
    widget.inject_button.click()
    widget.inject_button.click()
    assert widget.message_text == "n2 is down: restart it (Heal) before injecting crash"
    assert "#c0392b" in widget.message.value
    widget.heal_button.click()
    widget.heal_button.click()
    assert widget.message_text == "n2 has no active fault to heal"
    widget.rule_select.value = "DiskAlmostFull"
    widget.clear_box.value = 95.0
    widget.apply_rule_button.click()
    assert "clear_below (95) must be <= threshold (90)" in widget.message_text
    assert widget.clear_box.value == 85.0 and widget.dashboard.rules["DiskAlmostFull"].clear_below == 85.0
    widget.duration_box.value = -3
    widget.inject_button.click()
    assert "duration_s must be > 0" in widget.message_text
    assert widget.pause() is False and widget.message_text == "not playing"


def test_apply_rule_changes_the_model_and_moves_the_lines(widget):
    widget.rule_select.value = "HighLatencyP95"
    assert widget.threshold_box.value == 130.0
    widget.threshold_box.value = 150.0
    widget.clear_box.value = 100.0
    widget.for_box.value = 5.0
    widget.apply_rule_button.click()
    rule = widget.dashboard.rules["HighLatencyP95"]
    assert (rule.threshold, rule.clear_below, rule.for_s) == (150.0, 100.0, 5.0)
    assert widget.figure.data[5].y == (150.0, 150.0) and widget.figure.data[6].y == (100.0, 100.0)
    assert widget.message_text == "HighLatencyP95: p95_ms > 150 for 5 s, clear below 100"


def test_reset_starts_again_from_the_seed_box(widget):
    widget.step10_button.click()
    widget.inject(kind="disk_fill", node="n5")
    widget.seed_box.value = SEED + 1
    widget.reset_button.click()
    assert widget.dashboard.time == 0 and widget.dashboard.seed == SEED + 1
    assert widget.dashboard.incidents == () and widget.message_text == f"reset: seed {SEED + 1}, t = 0 s"


def test_play_advances_on_the_event_loop_and_pause_stops_it(widget):
    async def scenario():
        assert widget.play() is True
        await asyncio.sleep(0.6)
        assert widget.running
        widget.step_button.click()
        refused = widget.message_text
        widget.pause_button.click()
        return refused

    widget.speed_slider.value = 20
    refused = asyncio.run(scenario())
    assert refused.startswith("pause first")
    assert not widget.running and widget.dashboard.time >= 5
    assert widget.message_text == f"paused at t = {widget.dashboard.time:g} s"
    assert widget.play() is False          # no running loop outside a kernel: a message
    assert "running event loop" in widget.message_text


def test_a_closed_widget_refuses_actions(widget):
    widget.close()
    assert widget.step(1) is False and widget.message_text == "this widget is closed"
    assert widget.inject("slow", "n1") is False
