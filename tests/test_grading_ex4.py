"""Exercise 4's checks: the solution passes, and a deliberately wrong implementation of
each sub-task is rejected with a message that names the mistake."""

from __future__ import annotations

import time

import pytest

from course_lib.grading import ex4, load_solution, run_check
from course_lib.monitor import AlertEvent, AlertStatus, Health, IncidentKind

@pytest.fixture(scope="module")
def sol():
    """The solution notebook's definitions (its check, data and figure cells skipped)."""
    return load_solution("ex4_monitoring_system",
                         skip=("simulate_cluster(seed", "telemetry_figure(run"))


def rejected(check, *args) -> str:
    """The learner's message for a wrong implementation (the check must fail)."""
    result = run_check("t", check, *args)
    assert not result.passed, f"the check accepted a wrong implementation: {result.message}"
    return result.message


@pytest.mark.parametrize("name, args", [
    ("node_monitoring", ("NodeMonitor",)),
    ("performance_monitoring", ("percentile", "LatencyWindow")),
    ("failure_alerts", ("AlertManager",)),
    ("log_analysis", ("parse_log_line", "LogAnalyzer")),
    ("metrics_collection", ("Metrics",)),
])
def test_the_solution_passes_each_check_in_bounded_time(sol, name, args):
    began = time.monotonic()
    result = run_check(name, getattr(ex4, name), *(sol[a] for a in args))
    assert result.passed and result.message.startswith("✔"), result.message
    assert time.monotonic() - began < 15


def test_the_reference_alerts_fire_once_per_incident_for_several_seeds():
    for seed in (ex4.SEED, 1, 7):
        run = ex4.telemetry(seed)
        events = ex4._feed(ex4._Alerts([ex4.DISK_RULE, ex4.LATENCY_RULE]), ex4.alert_series(run))
        for rule, kind in ((ex4.DISK_RULE, IncidentKind.DISK_FILL), (ex4.LATENCY_RULE, IncidentKind.SLOW)):
            incident = run.incident(kind)
            mine = [e for e in events if e.rule == rule.name]
            assert [(e.node, e.status) for e in mine] == [(incident.node, AlertStatus.FIRING),
                                                          (incident.node, AlertStatus.RESOLVED)], seed
            assert incident.start < mine[0].time < incident.end < mine[1].time <= incident.end + 65


# -- 1. node monitoring --------------------------------------------------------------------

def test_a_monitor_that_never_marks_down_is_rejected(sol):
    class NeverDown(sol["NodeMonitor"]):
        def status(self, node, now):
            return Health.UP if super().status(node, now) is Health.UP else Health.SUSPECTED

    assert "must be DOWN at now=15.0" in rejected(ex4.node_monitoring, NeverDown)


def test_an_off_by_one_boundary_is_rejected(sol):
    class Inclusive(sol["NodeMonitor"]):
        def status(self, node, now):
            return super().status(node, now - 1e-9)

    assert "must be SUSPECTED at now=12.0" in rejected(ex4.node_monitoring, Inclusive)


def test_a_monitor_with_false_suspicions_is_rejected_on_the_run(sol):
    class Jumpy(sol["NodeMonitor"]):
        def status(self, node, now):
            if self.suspect_after == ex4.SUSPECT_AFTER:
                self.suspect_after = 0.9
            return super().status(node, now)

    message = rejected(ex4.node_monitoring, Jumpy)
    assert "should be UP" in message and "never failed" in message and f"seed {ex4.SEED}" in message


# -- 2. performance monitoring ----------------------------------------------------------

def test_a_percentile_off_by_one_is_rejected(sol):
    def off_by_one(values, q):
        ordered = sorted(values)
        return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]

    assert "percentile(1..10 shuffled, 50) should be 5" in rejected(
        ex4.performance_monitoring, off_by_one, sol["LatencyWindow"])


def test_a_window_that_keeps_its_oldest_edge_is_rejected(sol):
    WindowStats, percentile = sol["WindowStats"], sol["percentile"]

    class Closed(sol["LatencyWindow"]):
        def stats(self, node, now):
            kept = [lat for t, lat in self.samples[node] if now - self.window_s <= t <= now]
            if not kept:
                return WindowStats(0, 0.0, None, None, None)
            return WindowStats(len(kept), len(kept) / self.window_s, percentile(kept, 50),
                               percentile(kept, 95), percentile(kept, 99))

    assert "counts samples with time in (1, 11]: 2 of them; got count=3" in rejected(
        ex4.performance_monitoring, percentile, Closed)


def test_a_percentile_interpolating_like_numpy_is_rejected_on_the_run(sol):
    import numpy as np

    WindowStats = sol["WindowStats"]

    class Interpolating(sol["LatencyWindow"]):
        def stats(self, node, now):
            exact = super().stats(node, now)
            if exact.count < 2:
                return exact
            kept = [lat for t, lat in self.samples[node]]
            p50, p95, p99 = (float(np.percentile(kept, q)) for q in (50, 95, 99))
            return WindowStats(exact.count, exact.throughput, p50, p95, p99)

    message = rejected(ex4.performance_monitoring, sol["percentile"], Interpolating)
    assert "window 60 s: p95 should be" in message and f"seed {ex4.SEED}" in message


# -- 3. failure alerts ---------------------------------------------------------------------

def test_an_alert_that_fires_on_every_sample_is_rejected(sol):
    class Spammy:
        def __init__(self, rules):
            self.rules = rules

        def observe(self, metric, node, value, now):
            return [AlertEvent(r.name, node, AlertStatus.FIRING, now)
                    for r in self.rules if r.metric == metric and value > r.threshold]

        def firing(self):
            return set()

    message = rejected(ex4.failure_alerts, Spammy)
    assert "expected FIRING at 35 s" in message and "in all" in message


def test_an_alert_without_hysteresis_is_rejected(sol):
    class NoHysteresis(sol["AlertManager"]):
        def __init__(self, rules):
            super().__init__([type(r)(r.name, r.metric, r.threshold, r.for_s, r.threshold) for r in rules])

    assert "RESOLVED Hot/a at 45 s" in rejected(ex4.failure_alerts, NoHysteresis)


def test_an_alert_that_ignores_for_duration_is_rejected(sol):
    class Hasty(sol["AlertManager"]):
        def __init__(self, rules):
            super().__init__([type(r)(r.name, r.metric, r.threshold, 0.0, r.clear_below) for r in rules])

    assert "FIRING Hot/a at 5 s" in rejected(ex4.failure_alerts, Hasty)


# -- 4. log analysis -------------------------------------------------------------------------

def test_a_parser_that_ignores_milliseconds_is_rejected(sol):
    def no_ms(line):
        record = sol["parse_log_line"](line)
        if record is None:
            return None
        return type(record)(float(int(record.time)), record.level, record.node, record.request_id, record.message)

    assert "parse_log_line('2025-01-01T00:02:03.456Z" in rejected(ex4.log_analysis, no_ms, sol["LogAnalyzer"])


def test_an_origin_blaming_the_entry_node_is_rejected(sol):
    class Latest(sol["LogAnalyzer"]):
        def origin(self, request_id):
            errors = [r for r in self.request_trail(request_id) if r.level == "ERROR"]
            return errors[-1].node if errors else None

    message = rejected(ex4.log_analysis, sol["parse_log_line"], Latest)
    assert "origin(" in message and "earliest ERROR" in message


def test_minutes_rounded_instead_of_floored_are_rejected(sol):
    class Rounded(sol["LogAnalyzer"]):
        def errors_per_minute(self):
            from collections import Counter
            return dict(Counter((r.node, round(r.time / 60)) for r in self.records() if r.level == "ERROR"))

    assert "errors_per_minute()[" in rejected(ex4.log_analysis, sol["parse_log_line"], Rounded)


# -- 5. metrics collection -------------------------------------------------------------------

def test_non_cumulative_buckets_are_rejected(sol):
    class PerBucket(sol["Metrics"]):
        def expose(self):
            out, last = [], {}
            for line in super().expose().split("\n"):
                if "_bucket{" in line:
                    series = line.split(",le=")[0] if ",le=" in line else line.split("{le=")[0]
                    value = float(line.rsplit(" ", 1)[1])
                    line = f"{line.rsplit(' ', 1)[0]} {value - last.get(series, 0.0)}"
                    last[series] = value
                out.append(line)
            return "\n".join(out)

    assert "buckets must be cumulative" in rejected(ex4.metrics_collection, PerBucket)


def test_unescaped_label_values_are_rejected(sol):
    class Raw(sol["Metrics"]):
        def expose(self):
            text = super().expose()
            return text.replace('\\"', '"').replace("\\n", "\n")

    message = rejected(ex4.metrics_collection, Raw)
    assert "label escaping: expose() is not valid Prometheus text format" in message


def test_a_counter_that_can_go_down_is_rejected(sol):
    class Lax(sol["Metrics"]):
        def inc(self, name, amount=1.0, **labels):
            key = self._series(name, "counter", labels)
            self.values[name][key] = self.values[name].get(key, 0.0) + amount

    assert "negative amount must raise ValueError" in rejected(ex4.metrics_collection, Lax)
