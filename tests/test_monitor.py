"""course_lib.monitor: the simulated cluster is deterministic, its incidents show up at
the stated times (and nowhere else), bad arguments raise ValueError; the exposition
parser and the HTTP endpoint."""

from __future__ import annotations

import statistics

import pytest

from course_lib.monitor import (Incident, IncidentKind, MetricsEndpoint, default_incidents,
                                parse_exposition, scrape, simulate_cluster)
from course_lib.monitor.logs import parse_line

SEED = 11


@pytest.fixture(scope="module")
def run():
    return simulate_cluster(SEED)


def test_same_seed_same_telemetry_and_another_seed_differs(run):
    assert simulate_cluster(SEED) == run
    other = simulate_cluster(SEED + 1)
    assert other.requests != run.requests
    assert other.incidents == run.incidents


def test_streams_are_in_time_order(run):
    for stream in (run.heartbeats, run.requests, run.gauges, run.log_records):
        times = [item.time for item in stream]
        assert times == sorted(times)
    assert all(0 <= item.time <= run.duration for item in run.requests + run.gauges)


def test_default_scenario_times():
    incidents = {i.kind: i for i in default_incidents(("n1", "n2", "n3", "n4", "n5"), 600.0)}
    assert (incidents[IncidentKind.ERROR_BURST].node, incidents[IncidentKind.ERROR_BURST].start) == ("n3", 120.0)
    assert (incidents[IncidentKind.CRASH].start, incidents[IncidentKind.CRASH].end) == (200.0, 270.0)
    assert incidents[IncidentKind.SLOW].node == "n4"
    assert incidents[IncidentKind.DISK_FILL].node == "n5"


def test_a_crashed_node_is_silent_until_it_restarts(run):
    crash = run.incident(IncidentKind.CRASH)
    beats = [h for h in run.heartbeats if h.node == crash.node]
    before = [h for h in beats if h.sent < crash.start]
    after = [h for h in beats if h.sent >= crash.start]
    assert crash.start - before[-1].sent <= run.heartbeat_interval
    assert after[0].sent >= crash.end and after[0].sent - crash.end <= run.heartbeat_interval
    assert after[0].time - after[0].sent <= 0.02                     # 1-20 ms network delay
    during = lambda t: crash.start <= t < crash.end
    assert not [r for r in run.requests if r.node == crash.node and during(r.time)]
    assert not [g for g in run.gauges if g.node == crash.node and during(g.time)]
    assert not [r for r in run.log_records if r.node == crash.node and during(r.time)]
    restarted = [r for r in run.log_records if r.node == crash.node and r.message.startswith("node started")]
    assert [r.time for r in restarted] == [crash.end]


def test_healthy_nodes_heartbeat_every_interval(run):
    crash = run.incident(IncidentKind.CRASH)
    for node in run.nodes:
        if node == crash.node:
            continue
        sent = [h.sent for h in run.heartbeats if h.node == node]
        gaps = [b - a for a, b in zip(sent, sent[1:])]
        assert max(gaps) == pytest.approx(run.heartbeat_interval)
        assert len(sent) >= run.duration / run.heartbeat_interval - 1


def test_errors_happen_only_in_the_burst_and_about_as_often_as_stated(run):
    burst = run.incident(IncidentKind.ERROR_BURST)
    failed = [r for r in run.requests if not r.ok]
    assert failed and all(burst.start <= r.time < burst.end + 1 for r in failed)
    on_node = [r for r in run.requests if r.node == burst.node and burst.start + 1 <= r.time < burst.end]
    rate = sum(not r.ok for r in on_node) / len(on_node)
    assert abs(rate - burst.magnitude) < 0.15
    errors = [r for r in run.log_records if r.level == "ERROR"]
    assert all(burst.start <= r.time < burst.end + 1 for r in errors)


def test_the_slow_node_is_slower_only_while_slow(run):
    slow = run.incident(IncidentKind.SLOW)
    mine = [r for r in run.requests if r.node == slow.node]
    median = lambda a, b: statistics.median(r.latency_ms for r in mine if a <= r.time < b)
    before, during, after = median(0, slow.start), median(slow.start + 5, slow.end), median(slow.end + 5, run.duration)
    assert during > 3 * before and after < 1.3 * before


def test_the_disk_fills_then_is_cleaned_up(run):
    fill = run.incident(IncidentKind.DISK_FILL)
    disk = run.gauge_series(fill.node, "disk_used_percent")
    full = [g.value for g in disk if (fill.start + fill.end) / 2 <= g.time < fill.end]
    assert full and min(full) > fill.magnitude - 2
    assert max(g.value for g in disk if g.time < fill.start or g.time >= fill.end) < 70
    warns = [r for r in run.log_records if r.level == "WARN"]
    assert warns and all(r.node == fill.node and fill.start <= r.time < fill.end for r in warns)


def test_log_records_are_the_parsed_record_lines(run):
    records = [parse_line(line) for line in run.log_lines]
    assert tuple(r for r in records if r is not None) == run.log_records
    assert all(line.startswith("    at ") for line, r in zip(run.log_lines, records) if r is None)
    assert all(r.line() in run.log_lines for r in run.log_records[:200])


def test_a_calm_run_has_no_failures_and_custom_incidents_apply():
    calm = simulate_cluster(3, nodes=3, duration=60.0, incidents=())
    assert calm.incidents == () and all(r.ok for r in calm.requests)
    crash = Incident(IncidentKind.CRASH, "n1", 10.0, 60.0)
    run = simulate_cluster(3, nodes=3, duration=60.0, incidents=[crash])
    assert max(h.sent for h in run.heartbeats if h.node == "n1") < 10.0
    with pytest.raises(ValueError, match="no slow incident"):
        run.incident(IncidentKind.SLOW)


@pytest.mark.parametrize("kwargs, problem", [
    (dict(seed="1"), "seed"),
    (dict(nodes=0), "nodes"),
    (dict(duration=-5), "duration"),
    (dict(duration=float("nan")), "duration"),
    (dict(heartbeat_interval=0), "heartbeat_interval"),
    (dict(request_rate=1000), "request_rate"),
    (dict(fanout=1.5), "fanout"),
    (dict(nodes=3), "at least 4 nodes"),
    (dict(incidents=[Incident(IncidentKind.CRASH, "n9", 1.0, 2.0)]), "unknown node 'n9'"),
    (dict(incidents=[Incident(IncidentKind.SLOW, "n1", 5.0, 2.0, 3.0)]), "start < end"),
    (dict(incidents=[Incident(IncidentKind.CRASH, "n1", 1.0, 5.0),
                     Incident(IncidentKind.CRASH, "n1", 4.0, 9.0)]), "overlap"),
    (dict(incidents=["crash"]), "Incident objects"),
])
def test_bad_arguments_raise_value_error(kwargs, problem):
    with pytest.raises(ValueError, match=problem):
        simulate_cluster(**{"duration": 60.0, **kwargs})


def test_gauge_series_names_bad_arguments(run):
    with pytest.raises(ValueError, match="unknown node"):
        run.gauge_series("n42", "cpu_percent")
    with pytest.raises(ValueError, match="unknown gauge"):
        run.gauge_series("n1", "temperature")


def test_exposition_parser_reads_the_format_and_names_bad_lines():
    text = ('# HELP up Is it up.\n# TYPE up gauge\nup{job="a\\"b\\\\c\\nd",i="1"} 1\n'
            '# TYPE lat histogram\nlat_bucket{le="+Inf"} 3 1700000000\nlat_sum 4.5\nlat_count 3\n')
    parsed = parse_exposition(text)
    assert parsed.types == {"up": "gauge", "lat": "histogram"} and parsed.helps["up"] == "Is it up."
    assert parsed.value("up", job='a"b\\c\nd', i="1") == 1.0
    assert parsed.value("lat_bucket", le="+Inf") == 3.0
    for bad, problem in (('x{a="1"', "without"), ("x 1 2 3", "expected 'value"), ("x{a=1} 2", "label"),
                         ("9x 1", "bad metric name"), ("# TYPE x nonsense", "unknown type"),
                         ('x{a="\\q"} 1', "bad escape"), ("x one", "not a sample value")):
        with pytest.raises(ValueError, match=problem):
            parse_exposition(bad)


def test_endpoint_serves_what_render_returns():
    with MetricsEndpoint(lambda: "# TYPE up gauge\nup 1\n") as endpoint:
        assert parse_exposition(scrape(endpoint.url)).value("up") == 1.0
    with pytest.raises(ValueError, match="render"):
        MetricsEndpoint("not callable")
    with pytest.raises(ValueError, match="url"):
        scrape("ftp://x")


def test_telemetry_figure_shades_every_incident(run):
    from course_lib.monitor import telemetry_figure

    figure = telemetry_figure(run)
    assert len(figure.data) == 3 * len(run.nodes)
    assert len(figure.layout.shapes) == 3 * len(run.incidents)
    with pytest.raises(ValueError, match="bin_s"):
        telemetry_figure(run, bin_s=0)
