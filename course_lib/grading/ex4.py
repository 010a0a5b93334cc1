"""Checks for exercise 4, 創建監控系統 (a monitoring system).

Each check takes the learner's class or function, runs it on a seeded simulated cluster
(``course_lib.monitor.simulate_cluster``) and on small hand-made cases, compares with
the contract stated in the notebook, and raises ``CheckFailed`` naming the first
difference (with the seed, so it can be replayed).  Each runs in a few seconds.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections import Counter, defaultdict
from functools import lru_cache
from typing import Callable

from course_lib.grading import CheckFailed, expect
from course_lib.monitor import (AlertEvent, AlertRule, AlertStatus, Health, IncidentKind,
                                LogRecord, Telemetry, WindowStats, parse_exposition,
                                simulate_cluster)
from course_lib.monitor.logs import parse_line

SEED = 2024
SUSPECT_AFTER, DOWN_AFTER, STEP = 2.5, 5.0, 0.25
WINDOW, EVERY = 60.0, 5.0
BUCKETS = (10.0, 25.0, 50.0, 100.0, 250.0, 500.0)


@lru_cache(maxsize=4)
def telemetry(seed: int = SEED) -> Telemetry:
    """The seeded run every check uses (default incidents, 600 s, 5 nodes)."""
    return simulate_cluster(seed)


def _raises(fn: Callable, *args, **kwargs) -> bool:
    try:
        fn(*args, **kwargs)
    except ValueError:
        return True
    except NotImplementedError:
        raise
    except Exception:
        return False
    return False


# -- 1. node monitoring -----------------------------------------------------------------

def _expected_health(silence: float) -> Health:
    if silence < SUSPECT_AFTER:
        return Health.UP
    return Health.SUSPECTED if silence < DOWN_AFTER else Health.DOWN


def node_monitoring(NodeMonitor, seed: int = SEED) -> str:
    """Boundaries of the timeout contract, bad arguments, then the seeded run sampled
    every 0.25 s: every status must match the contract (which gives: the crash detected
    within ``down_after`` + one heartbeat interval, no false suspicion while calm)."""
    m = NodeMonitor(["a", "b"], suspect_after=2.0, down_after=5.0, start=10.0)
    for now, want in ((11.999, Health.UP), (12.0, Health.SUSPECTED), (14.999, Health.SUSPECTED),
                      (15.0, Health.DOWN)):
        got = m.status("a", now)
        expect(got is want, f"a node last heard from at start=10.0 s, with suspect_after=2.0 "
                            f"and down_after=5.0, must be {want.name} at now={now}; yours says {got!r}")
    m.heartbeat("a", 15.5)
    expect(m.status("a", 16.0) is Health.UP,
           f"after a heartbeat a DOWN node is UP again; yours says {m.status('a', 16.0)!r}")
    statuses = m.statuses(16.0)
    expect(statuses == {"a": Health.UP, "b": Health.DOWN},
           f"statuses(16.0) should be {{'a': Health.UP, 'b': Health.DOWN}}, got {statuses!r}")
    expect(_raises(m.heartbeat, "zz", 16.0), "heartbeat() from an unknown node must raise ValueError")
    expect(_raises(m.status, "zz", 16.0), "status() of an unknown node must raise ValueError")
    expect(_raises(NodeMonitor, ["a"], suspect_after=5.0, down_after=2.0),
           "NodeMonitor(..., suspect_after=5.0, down_after=2.0) must raise ValueError "
           "(down_after < suspect_after)")

    run = telemetry(seed)
    crash = run.incident(IncidentKind.CRASH)
    monitor = NodeMonitor(list(run.nodes), suspect_after=SUSPECT_AFTER, down_after=DOWN_AFTER)
    last = {n: 0.0 for n in run.nodes}
    beats, i = run.heartbeats, 0
    detected = None
    for k in range(1, int(run.duration / STEP) + 1):
        now = k * STEP
        while i < len(beats) and beats[i].time <= now:
            monitor.heartbeat(beats[i].node, beats[i].time)
            last[beats[i].node] = beats[i].time
            i += 1
        for node in run.nodes:
            got = monitor.status(node, now)
            want = _expected_health(now - last[node])
            if got is not want:
                story = (f"{node} crashed at {crash.start:.1f} s and restarted at {crash.end:.1f} s"
                         if node == crash.node else f"{node} never failed")
                raise CheckFailed(
                    f"at t={now:.2f} s {node} should be {want.name} (last heartbeat at "
                    f"{last[node]:.2f} s, suspect_after={SUSPECT_AFTER}, down_after={DOWN_AFTER}); "
                    f"your monitor says {got!r}. {story} (seed {seed})")
        if detected is None and now > crash.start and monitor.status(crash.node, now) is Health.DOWN:
            detected = now
    return (f"{crash.node}'s crash at {crash.start:.0f} s seen as DOWN at {detected:.2f} s; "
            f"no false suspicion in {run.duration:.0f} s of {len(run.nodes)} nodes (seed {seed})")


# -- 2. performance monitoring ------------------------------------------------------------

def _percentile(values, q: float) -> float:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q / 100 * len(ordered))) - 1]


def _window_stats(latencies: list, window: float) -> WindowStats:
    if not latencies:
        return WindowStats(0, 0.0, None, None, None)
    return WindowStats(len(latencies), len(latencies) / window, _percentile(latencies, 50),
                       _percentile(latencies, 95), _percentile(latencies, 99))


def reference_p95_series(run: Telemetry, window: float = WINDOW, every: float = EVERY):
    """``{node: [(t, p95 or None), ...]}`` every ``every`` s over a ``window``-s window."""
    out = {}
    for node in run.nodes:
        mine = [r for r in run.requests if r.node == node]
        times = [r.time for r in mine]
        points = []
        for k in range(1, int(run.duration / every) + 1):
            now = k * every
            lat = [r.latency_ms for r in mine[bisect_right(times, now - window):bisect_right(times, now)]]
            points.append((now, _percentile(lat, 95) if lat else None))
        out[node] = points
    return out


def performance_monitoring(percentile, LatencyWindow, seed: int = SEED) -> str:
    """Nearest-rank percentiles on small cases; then window stats of every node every
    5 s of the seeded run against exact values; then the slow node's p95 regression."""
    ten = [7, 3, 9, 1, 5, 10, 2, 8, 4, 6]
    for q, want in ((50, 5), (95, 10), (99, 10), (10, 1), (100, 10), (90, 9), (91, 10)):
        got = percentile(ten, q)
        expect(got == want, f"percentile(1..10 shuffled, {q}) should be {want} (nearest rank: "
                            f"the {max(1, math.ceil(q / 10))}th smallest), got {got!r}")
    hundred = list(range(100, 0, -1))
    for q in (50, 95, 99):
        got = percentile(hundred, q)
        expect(got == q, f"percentile(1..100, {q}) should be {q}, got {got!r}")
    expect(ten == [7, 3, 9, 1, 5, 10, 2, 8, 4, 6], "percentile() must not reorder its argument")
    expect(_raises(percentile, [], 50), "percentile([], 50) must raise ValueError")
    expect(_raises(percentile, [1, 2], 0), "percentile(values, 0) must raise ValueError (q in (0, 100])")
    expect(_raises(percentile, [1, 2], 101), "percentile(values, 101) must raise ValueError")

    w = LatencyWindow(10.0)
    for t, lat in ((1.0, 5.0), (2.0, 7.0), (11.0, 9.0)):
        w.record("a", t, lat)
    got = w.stats("a", 11.0)
    expect(got.count == 2, f"stats('a', 11.0) over a 10-s window counts samples with time in "
                           f"(1, 11]: 2 of them; got count={got.count}")
    got = w.stats("a", 12.0)
    expect(got == WindowStats(1, 0.1, 9.0, 9.0, 9.0),
           f"window 10 s, samples at 1, 2 and 11 s: stats('a', 12.0) must count only (2, 12] "
           f"-> WindowStats(count=1, throughput=0.1, p50=9.0, p95=9.0, p99=9.0); got {got!r}")
    got = w.stats("nobody", 12.0)
    expect(got == WindowStats(0, 0.0, None, None, None),
           f"stats of a node with no samples should be WindowStats(0, 0.0, None, None, None), got {got!r}")
    expect(_raises(LatencyWindow, 0), "LatencyWindow(0) must raise ValueError")

    run = telemetry(seed)
    window = LatencyWindow(WINDOW)
    kept = {n: [] for n in run.nodes}
    reqs, i = run.requests, 0
    p95 = {n: [] for n in run.nodes}
    for k in range(1, int(run.duration / EVERY) + 1):
        now = k * EVERY
        while i < len(reqs) and reqs[i].time <= now:
            window.record(reqs[i].node, reqs[i].time, reqs[i].latency_ms)
            kept[reqs[i].node].append(reqs[i])
            i += 1
        for node in run.nodes:
            lat = [r.latency_ms for r in kept[node] if now - WINDOW < r.time <= now]
            want, got = _window_stats(lat, WINDOW), window.stats(node, now)
            if got != want:
                wrong = [f for f in ("count", "throughput", "p50", "p95", "p99")
                         if getattr(got, f) != getattr(want, f)]
                raise CheckFailed(
                    f"at t={now:.0f} s, {node}, window {WINDOW:.0f} s: {wrong[0]} should be "
                    f"{getattr(want, wrong[0])!r} over {want.count} requests, yours is "
                    f"{getattr(got, wrong[0])!r} (seed {seed})")
            p95[node].append((now, got.p95))
    slow = run.incident(IncidentKind.SLOW)
    calm = [v for t, v in p95[slow.node] if WINDOW <= t < slow.start and v is not None]
    baseline = sorted(calm)[len(calm) // 2]
    seen = next((t for t, v in p95[slow.node] if t >= slow.start and v and v > 2 * baseline), None)
    expect(seen is not None and seen <= slow.start + WINDOW,
           f"{slow.node} became {slow.magnitude:g}x slower at {slow.start:.0f} s but its p95 never "
           f"doubled within a window (seed {seed})")
    return (f"exact p50/p95/p99 and throughput for {len(run.nodes)} nodes every {EVERY:g} s; "
            f"{slow.node}'s p95 doubled (from {baseline:.0f} ms) {seen - slow.start:.0f} s after "
            f"it slowed down (seed {seed})")


# -- 3. failure alerts -------------------------------------------------------------------

class _Alerts:
    """The reference alerting state machine (inactive -> pending -> firing -> inactive)."""

    def __init__(self, rules):
        self.rules = list(rules)
        self.pending: dict = {}
        self.active: set = set()

    def observe(self, metric, node, value, now):
        events = []
        for rule in self.rules:
            if rule.metric != metric:
                continue
            key = (rule.name, node)
            if key in self.active:
                if value < rule.clear_below:
                    self.active.discard(key)
                    events.append(AlertEvent(rule.name, node, AlertStatus.RESOLVED, now))
            elif value > rule.threshold:
                since = self.pending.setdefault(key, now)
                if now - since >= rule.for_s:
                    del self.pending[key]
                    self.active.add(key)
                    events.append(AlertEvent(rule.name, node, AlertStatus.FIRING, now))
            else:
                self.pending.pop(key, None)
        return events


DISK_RULE = AlertRule("DiskAlmostFull", "disk_used_percent", threshold=90.0, for_s=30.0, clear_below=85.0)
LATENCY_RULE = AlertRule("HighLatencyP95", "latency_p95_ms", threshold=130.0, for_s=30.0, clear_below=90.0)


def _feed(manager, series) -> list:
    events = []
    for metric, node, value, now in series:
        got = manager.observe(metric, node, value, now)
        expect(isinstance(got, list), f"observe() must return a list of AlertEvent, got {got!r}")
        events.extend(got)
    return events


def _show(events) -> str:
    return ", ".join(f"{e.status.name} {e.rule}/{e.node} at {e.time:g} s" for e in events[:4]) + \
        (f" … ({len(events)} in all)" if len(events) > 4 else "") if events else "no events"


def alert_series(run: Telemetry) -> list:
    """What the alert check feeds: disk gauges and each node's p95 every 5 s, in time order."""
    series = [(g.name, g.node, g.value, g.time) for g in run.gauges if g.name == DISK_RULE.metric]
    for node, points in reference_p95_series(run).items():
        series += [(LATENCY_RULE.metric, node, v, t) for t, v in points if v is not None]
    return sorted(series, key=lambda s: (s[3], s[1], s[0]))


def failure_alerts(AlertManager, seed: int = SEED) -> str:
    """A hand-made series (pending, firing once, hysteresis, resolution), a flapping
    series that must stay silent, then disk and p95 alerts on the seeded run: exactly
    one alert per incident, at the expected time, resolved after recovery."""
    rule = AlertRule("Hot", "temp", threshold=90.0, for_s=30.0, clear_below=85.0)
    values = [80, 95, 95, 95, 95, 95, 95, 95, 95, 88, 91, 88, 84, 80]
    series = [("temp", "a", v, 5.0 * k) for k, v in enumerate(values)]
    got = _feed(AlertManager([rule]), series)
    want = [AlertEvent("Hot", "a", AlertStatus.FIRING, 35.0), AlertEvent("Hot", "a", AlertStatus.RESOLVED, 60.0)]
    expect(got == want,
           f"rule Hot: temp > 90 for 30 s, clear below 85; values {values} every 5 s from t=0: "
           f"expected FIRING at 35 s (above 90 since 5 s) and RESOLVED at 60 s (84 < 85; 88 and 91 "
           f"in between keep it firing), got: {_show(got)}")
    manager = AlertManager([rule])
    _feed(manager, series[:8])
    firing = manager.firing()
    expect(firing == {("Hot", "a")}, f"firing() at 35 s should be {{('Hot', 'a')}}, got {firing!r}")
    flapping = [("temp", node, 91.0 if k % 2 else 89.0, 5.0 * k) for k in range(120) for node in "ab"]
    got = _feed(AlertManager([rule]), flapping)
    expect(not got, f"a value flapping 89/91 every 5 s never stays above 90 for 30 s: expected no "
                    f"alert, got: {_show(got)}")
    noisy = [("temp", "a", 95.0 if k < 20 or k % 3 else 87.0, 5.0 * k) for k in range(60)]
    got = _feed(AlertManager([rule]), noisy)
    expect(len(got) == 1 and got[0].status is AlertStatus.FIRING,
           f"once firing, dips to 87 (above clear_below=85) must not resolve or re-fire the alert: "
           f"expected one FIRING event, got: {_show(got)}")
    got = _feed(AlertManager([rule]), [("other", "a", 99.0, 100.0 * k) for k in range(3)])
    expect(not got, f"a rule only watches its own metric; got {_show(got)}")

    run = telemetry(seed)
    series = alert_series(run)
    manager = AlertManager([DISK_RULE, LATENCY_RULE])
    got = _feed(manager, series)
    want = _feed(_Alerts([DISK_RULE, LATENCY_RULE]), series)
    for rule, kind in ((DISK_RULE, IncidentKind.DISK_FILL), (LATENCY_RULE, IncidentKind.SLOW)):
        incident = run.incident(kind)
        mine = [e for e in got if e.rule == rule.name]
        truth = [e for e in want if e.rule == rule.name]
        expect(mine == truth,
               f"{rule.name} ({rule.metric} > {rule.threshold:g} for {rule.for_s:g} s, clear below "
               f"{rule.clear_below:g}) during the {kind.value} of {incident.node} "
               f"[{incident.start:.0f}, {incident.end:.0f}) s: expected {_show(truth)}; "
               f"got {_show(mine)} (seed {seed})")
    return (f"fires once after {DISK_RULE.for_s:g} s, holds through dips (hysteresis), resolves; "
            f"flapping stays silent; on the run: {_show(want)} (seed {seed})")


# -- 4. log analysis ---------------------------------------------------------------------

def _bursts(counts: dict, threshold: int) -> list:
    out = []
    for node in sorted({n for n, _ in counts}):
        minutes = sorted(m for (n, m), c in counts.items() if n == node and c >= threshold)
        for m in minutes:
            if out and out[-1][0] == node and out[-1][2] == m - 1:
                out[-1] = (node, out[-1][1], m)
            else:
                out.append((node, m, m))
    return sorted(out, key=lambda b: (b[1], b[0]))


def log_analysis(parse_log_line, LogAnalyzer, seed: int = SEED) -> str:
    """Parsing (record lines and non-records), errors per node and minute, bursts,
    request trails and the origin of failed requests, against the run's ground truth."""
    example = "2025-01-01T00:02:03.456Z ERROR n3 r000123 call from n1 failed: db down"
    got = parse_log_line(example)
    want = LogRecord(123.456, "ERROR", "n3", "r000123", "call from n1 failed: db down")
    expect(got == want, f"parse_log_line({example!r}) should be {want!r}, got {got!r}")
    got = parse_log_line("2025-01-01T01:00:00.000Z INFO n1 - node started")
    expect(got == LogRecord(3600.0, "INFO", "n1", None, "node started"),
           f"a '-' request id parses as request_id=None (and 01:00:00 is time 3600.0); got {got!r}")
    for junk in ("", "    at app.handler (server.py:42)", "hello world",
                 "2025-01-01T00:00:01.000Z FATAL n1 - boom", "yesterday INFO n1 - hi",
                 "2025-01-01T00:00:01.000Z INFO n1"):
        got = parse_log_line(junk)
        expect(got is None, f"parse_log_line({junk!r}) should be None (not a record), got {got!r}")

    run = telemetry(seed)
    for line, truth in ((ln, parse_line(ln)) for ln in run.log_lines):
        got = parse_log_line(line)
        expect(got == truth, f"parse_log_line({line!r}) should be {truth!r}, got {got!r} (seed {seed})")
    analyzer = LogAnalyzer(run.log_lines)
    records = analyzer.records()
    expect(list(records) == list(run.log_records),
           f"records() should hold the {len(run.log_records)} parsed records in log order, got "
           f"{len(records)} (seed {seed})")
    counts = Counter((r.node, int(r.time // 60)) for r in run.log_records if r.level == "ERROR")
    got = analyzer.errors_per_minute()
    for key in sorted(set(counts) | set(got)):
        expect(got.get(key, 0) == counts.get(key, 0),
               f"errors_per_minute()[{key!r}] should be {counts.get(key, 0)} ERROR lines of {key[0]} in "
               f"minute {key[1]} ([{60 * key[1]}, {60 * key[1] + 60}) s), got {got.get(key, 0)} (seed {seed})")
    expect(all(v > 0 for v in got.values()), "errors_per_minute() lists only (node, minute) with errors")
    burst = run.incident(IncidentKind.ERROR_BURST)
    want_bursts = _bursts(counts, 60)
    got = analyzer.bursts(60)
    expect(got == want_bursts, f"bursts(60) should be {want_bursts} (the error burst on {burst.node} "
                               f"during [{burst.start:.0f}, {burst.end:.0f}) s), got {got!r} (seed {seed})")
    trails = defaultdict(list)
    for r in run.log_records:
        if r.request_id:
            trails[r.request_id].append(r)
    failed = [r for r in run.requests if not r.ok]
    for request in failed[:: max(1, len(failed) // 50)] + list(run.requests[:: max(1, len(run.requests) // 50)]):
        rid = request.request_id
        got = analyzer.request_trail(rid)
        expect(list(got) == trails[rid], f"request_trail({rid!r}) should be its {len(trails[rid])} "
                                         f"records in log order, got {len(got)} (seed {seed})")
    expect(list(analyzer.request_trail("r999999x")) == [], "request_trail of an unknown id is []")
    origins = Counter()
    for request in failed:
        rid = request.request_id
        errors = [r for r in trails[rid] if r.level == "ERROR"]
        want = min(errors, key=lambda r: r.time).node if errors else None
        got = analyzer.origin(rid)
        expect(got == want, f"origin({rid!r}) should be {want!r}, the node of its earliest ERROR "
                            f"(trail: {[(r.time, r.node, r.level) for r in trails[rid]]}), got {got!r} (seed {seed})")
        if request.node != burst.node:
            origins[got] += 1
    ok = next(r.request_id for r in run.requests if r.ok)
    expect(analyzer.origin(ok) is None, f"origin({ok!r}) of a request without errors should be None")
    blamed = origins.most_common(1)[0] if origins else (None, 0)
    return (f"{len(records)} records parsed; bursts {want_bursts}; {blamed[1]} of "
            f"{sum(origins.values())} failures entering at other nodes trace back to {blamed[0]} (seed {seed})")


# -- 5. metrics collection ----------------------------------------------------------------

def _scrape(metrics, where: str):
    text = metrics.expose()
    expect(isinstance(text, str), f"expose() must return a str, got {type(text).__name__}")
    try:
        return parse_exposition(text)
    except ValueError as error:
        raise CheckFailed(f"{where}: expose() is not valid Prometheus text format: {error}") from None


def _check_histogram(scrape, name: str, labels: dict, want: list, where: str) -> None:
    key = tuple(sorted(labels.items()))
    buckets = sorted(((float(s.label("le")), s.value) for s in scrape.samples
                      if s.name == f"{name}_bucket" and tuple(p for p in s.labels if p[0] != "le") == key))
    expect([b for b, _ in buckets] == list(BUCKETS) + [math.inf],
           f"{where}: {name}{labels} needs one _bucket line per bound {list(BUCKETS)} plus le=\"+Inf\"; "
           f"got bounds {[b for b, _ in buckets]}")
    counts = [c for _, c in buckets]
    expect(all(a <= b for a, b in zip(counts, counts[1:])),
           f"{where}: {name}{labels} buckets must be cumulative (count of values <= le), got {counts}")
    truth = [sum(1 for v in want if v <= b) for b in BUCKETS] + [len(want)]
    expect(counts == truth, f"{where}: {name}{labels} bucket counts should be {truth}, got {counts}")
    for suffix, value in (("_count", len(want)), ("_sum", sum(want))):
        try:
            got = scrape.value(name + suffix, **labels)
        except KeyError:
            raise CheckFailed(f"{where}: missing {name}{suffix}{labels}") from None
        expect(math.isclose(got, value, rel_tol=1e-9, abs_tol=1e-6),
               f"{where}: {name}{suffix}{labels} should be {value:g}, got {got:g}")


def metrics_collection(Metrics, seed: int = SEED) -> str:
    """Label escaping, bad calls, then the seeded run's requests, latencies and disk
    gauges scraped every 60 s: types, monotonic counters, cumulative buckets, exact values."""
    m = Metrics(buckets=BUCKETS)
    tricky = 'say "hi"\\ and\nbye'
    m.inc("jobs_total", path=tricky)
    m.inc("jobs_total", 2.5, path=tricky)
    scrape = _scrape(m, "label escaping")
    try:
        got = scrape.value("jobs_total", path=tricky)
    except KeyError:
        raise CheckFailed(f"jobs_total with label path={tricky!r} is missing or its label value is not "
                          "escaped (\\\\, \\\" and \\n)") from None
    expect(got == 3.5, f"jobs_total after inc() and inc(2.5) should be 3.5, got {got}")
    expect(scrape.types.get("jobs_total") == "counter",
           f"expose() needs '# TYPE jobs_total counter', got type {scrape.types.get('jobs_total')!r}")
    expect(_raises(m.inc, "jobs_total", -1), "inc() with a negative amount must raise ValueError "
                                             "(a counter only goes up)")
    expect(_raises(m.set, "jobs_total", 1.0), "set() on a counter's name must raise ValueError "
                                              "(one name, one type)")
    expect(_raises(Metrics, buckets=(5.0, 1.0)), "Metrics(buckets=(5.0, 1.0)) must raise ValueError "
                                                 "(bounds must increase)")

    run = telemetry(seed)
    metrics = Metrics(buckets=BUCKETS)
    counts, latencies, disk, previous = Counter(), defaultdict(list), {}, {}
    events = sorted([(r.time, 0, r) for r in run.requests] +
                    [(g.time, 1, g) for g in run.gauges if g.name == "disk_used_percent"],
                    key=lambda e: (e[0], e[1]))
    i, scrapes = 0, 0
    for minute in range(1, int(run.duration // 60) + 1):
        now = 60.0 * minute
        while i < len(events) and events[i][0] <= now:
            _, kind, item = events[i]
            if kind == 0:
                outcome = "ok" if item.ok else "error"
                metrics.inc("requests_total", node=item.node, outcome=outcome)
                metrics.observe("request_latency_ms", item.latency_ms, node=item.node)
                counts[(item.node, outcome)] += 1
                latencies[item.node].append(item.latency_ms)
            else:
                metrics.set("disk_used_percent", item.value, node=item.node)
                disk[item.node] = item.value
            i += 1
        where = f"scrape at t={now:.0f} s (seed {seed})"
        scrape = _scrape(metrics, where)
        scrapes += 1
        for name, kind in (("requests_total", "counter"), ("request_latency_ms", "histogram"),
                           ("disk_used_percent", "gauge")):
            expect(scrape.types.get(name) == kind,
                   f"{where}: expected '# TYPE {name} {kind}', got type {scrape.types.get(name)!r}")
        for (node, outcome), want in counts.items():
            try:
                got = scrape.value("requests_total", node=node, outcome=outcome)
            except KeyError:
                raise CheckFailed(f"{where}: missing requests_total{{node=\"{node}\",outcome=\"{outcome}\"}}") from None
            before = previous.get((node, outcome), 0)
            expect(got >= before, f"{where}: requests_total{{node={node!r},outcome={outcome!r}}} went down "
                                  f"from {before:g} to {got:g}: a counter never decreases")
            expect(got == want, f"{where}: requests_total{{node={node!r},outcome={outcome!r}}} should be "
                                f"{want}, got {got:g}")
            previous[(node, outcome)] = got
        for node, values in latencies.items():
            _check_histogram(scrape, "request_latency_ms", {"node": node}, values, where)
        for node, value in disk.items():
            got = scrape.value("disk_used_percent", node=node)
            expect(got == value, f"{where}: disk_used_percent{{node={node!r}}} should be the last value set, "
                                 f"{value}, got {got}")
    total = sum(counts.values())
    return (f"{scrapes} scrapes parse; {total} requests counted exactly, monotonic; "
            f"cumulative buckets, _sum and _count match (seed {seed})")
