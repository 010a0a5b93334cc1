"""Check 3, performance testing: latency measured honestly.

(a) ``performance_summary(history, duration)``: exact percentiles (linear interpolation),
max and throughput of a recorded run.

(b) ``open_loop(service, rate_per_s, duration_ms, seed)``: an open-loop load generator
against a :class:`~.stalling.StallingService` that freezes once.  A closed loop (or any
generator that waits for a response before it sends) stops sending while the service is
frozen, so only a handful of its samples see the freeze and its percentiles look fine:
*coordinated omission* (Gil Tene; wrk vs wrk2).  The learner's generator must send on a
schedule drawn from the rate and the seed alone and measure each latency from the
scheduled time.  The check judges outcomes, not one implementation: on each graded
service it runs the generator on the service and on its *calm twin* (the same service
without the freeze) — an honest schedule is the same on both — and compares every
latency with the exact response the service gives a request sent at its scheduled time.
A generator that keeps a fixed pool of connections and measures from the scheduled time
(wrk2's correction) passes too, as long as the pool is no smaller than the service's
worker count: then the service sees no difference.
"""

from __future__ import annotations

import math
import random
import statistics
from dataclasses import dataclass
from typing import Callable, Sequence

from ...check import Operation
from .. import expect
from .stalling import Connection, Request, StallingService, closed_loop

__all__ = ["CASES", "Connection", "LoadCase", "PerfSummary", "Request", "StallingService",
           "closed_loop", "latency_figure", "performance_testing"]


@dataclass(frozen=True)
class PerfSummary:
    """Latencies (ret - call) of the completed operations, in the history's time unit;
    ``throughput`` = completed operations per unit of time over ``duration``."""
    p50: float
    p90: float
    p99: float
    max: float
    throughput: float
    completed: int
    unknown: int


def _reference_percentile(data: list, p: float) -> float:
    pos = (len(data) - 1) * p / 100
    lo = math.floor(pos)
    hi = min(lo + 1, len(data) - 1)
    return data[lo] + (data[hi] - data[lo]) * (pos - lo)


@dataclass(frozen=True)
class LoadCase:
    """One graded run: a stalling service (its parameters; each run gets a fresh one)
    and the generator's arguments."""
    workers: int
    service_ms: float
    stall_at_ms: float
    stall_ms: float
    service_seed: int
    rate_per_s: float
    duration_ms: float
    seed: int

    def service(self, stalled: bool = True) -> StallingService:
        return StallingService(self.workers, self.service_ms, self.stall_at_ms,
                               self.stall_ms if stalled else 0.0, seed=self.service_seed)

    def replay(self, stalled: bool = True, seed: int | None = None) -> str:
        return (f"open_loop({self.service(stalled)!r}, rate_per_s={self.rate_per_s:g}, "
                f"duration_ms={self.duration_ms:g}, seed={self.seed if seed is None else seed})")

    def closed_loop_contrast(self) -> list:
        """The closed loop at the same offered load: one client per worker, each
        thinking so that, while the service is healthy, they send ``rate_per_s``."""
        think = max(0.0, self.workers * 1000 / self.rate_per_s - self.service_ms)
        return closed_loop(self.service(), self.workers, self.duration_ms, think_ms=think)


CASES = (
    LoadCase(2, 5.0, 4000.0, 1000.0, 1, rate_per_s=50, duration_ms=10_000, seed=11),
    # the freeze outlasts the run: a generator that stops at duration_ms drops it whole
    LoadCase(3, 8.0, 7000.0, 1500.0, 3, rate_per_s=80, duration_ms=8_000, seed=13),
    # a busier service (half its capacity), a shorter freeze
    LoadCase(4, 20.0, 2500.0, 400.0, 2, rate_per_s=100, duration_ms=6_000, seed=12),
)


def performance_testing(performance_summary: Callable, open_loop: Callable,
                        seeds: Sequence[int] = range(20),
                        cases: Sequence[LoadCase] = CASES) -> str:
    """(a) ``performance_summary`` exact on a hand-made run and on the recorded runs of
    ``seeds``; (b) ``open_loop`` on every case of ``cases`` (see the module docstring).
    The summary line gives, per case, the p99 of a closed loop at the same load and the
    p99 of the learner's open loop."""
    _check_summary(performance_summary, seeds)
    contrasts = [_check_open_loop(open_loop, case) for case in cases]
    return (f"exact percentiles, max and throughput on a hand-made run and {len(seeds)} seeded "
            f"recorded runs; open loop exact on {len(cases)} stalling services — p99 of a "
            f"closed loop at the same load vs yours: "
            + "; ".join(f"{case.stall_ms:g} ms freeze at {case.stall_at_ms / 1000:g} s: "
                        f"{closed:.1f} ms vs {honest:.0f} ms"
                        for case, closed, honest in contrasts))


# -- (a) percentiles of a recorded run ------------------------------------------------------

def _recorded_run(seed: int) -> tuple:
    rng = random.Random(seed)
    n = rng.randint(50, 400)
    duration = rng.uniform(5.0, 20.0)
    history = []
    for i in range(n):
        call = rng.uniform(0, duration - 0.5)
        if rng.random() < 0.05:
            history.append(Operation(i % 7, ("read", None), call))
        else:
            latency = rng.lognormvariate(-4.5, 0.8)
            history.append(Operation(i % 7, ("read", None), call, 1, call + latency))
    return history, duration


def _check_summary(performance_summary: Callable, seeds: Sequence[int]) -> None:
    small = [Operation(0, ("read", None), 0.0, 1, 1.0), Operation(1, ("read", None), 0.5, 1, 3.5),
             Operation(2, ("read", None), 1.0, 1, 3.0), Operation(3, ("read", None), 2.0)]
    s = performance_summary(small, 4.0)
    expect(isinstance(s, PerfSummary), f"performance_summary must return a PerfSummary, got {s!r}")
    want = PerfSummary(2.0, 2.8, 2.98, 3.0, 0.75, 3, 1)
    for field in ("completed", "unknown", "max", "p50", "p90", "p99", "throughput"):
        expect(math.isclose(getattr(s, field), getattr(want, field), rel_tol=1e-9),
               f"latencies 1.0, 3.0, 2.0 (and one unknown outcome) over 4.0 s: {field} should be "
               f"{getattr(want, field)}, got {getattr(s, field)} — percentiles interpolate linearly "
               f"between sorted latencies at position (n - 1) * p / 100; throughput = completed / "
               f"duration; unknown outcomes have no latency")
    for seed in seeds:
        history, duration = _recorded_run(seed)
        lat = sorted(op.ret - op.call for op in history if op.ret is not None)
        want = PerfSummary(*(_reference_percentile(lat, p) for p in (50, 90, 99)), lat[-1],
                           len(lat) / duration, len(lat), len(history) - len(lat))
        got = performance_summary(list(history), duration)
        for field in ("completed", "unknown", "max", "p50", "p90", "p99", "throughput"):
            expect(math.isclose(getattr(got, field), getattr(want, field), rel_tol=1e-9),
                   f"recorded run of seed {seed} ({len(history)} operations over {duration:.3f} s): "
                   f"{field} should be {getattr(want, field)!r}, got {getattr(got, field)!r}")


# -- (b) the open loop -------------------------------------------------------------------------

def _run(open_loop: Callable, case: LoadCase, stalled: bool = True, seed: int | None = None):
    """The learner's history (sorted by call) and the service it ran against."""
    service = case.service(stalled)
    seed = case.seed if seed is None else seed
    got = open_loop(service, case.rate_per_s, case.duration_ms, seed)
    expect(isinstance(got, (list, tuple)) and all(isinstance(op, Operation) for op in got),
           f"open_loop must return a list of Operation(connection id, input, scheduled time, "
           f"output, response time), got {_short(got)} — replay: {case.replay(stalled, seed)}")
    return sorted(got, key=lambda op: (op.call, math.inf if op.ret is None else op.ret)), service


def _check_open_loop(open_loop: Callable, case: LoadCase) -> tuple:
    calm, calm_service = _run(open_loop, case, stalled=False)
    again, _ = _run(open_loop, case, stalled=False)
    if _pairs(calm) != _pairs(again):
        expect(False, f"two runs of {case.replay(False)} gave different histories "
                      f"({_first_difference(calm, again)}): not repeatable — draw the schedule "
                      f"from random.Random(seed), not from the global random module or the clock")
    stalled, service = _run(open_loop, case)
    for history, svc, is_stalled in ((stalled, service, True), (calm, calm_service, False)):
        _check_complete(history, svc, case, is_stalled)
    _check_rate(calm, case)
    _check_same_schedule(calm, stalled, case)
    _check_exact(stalled, service, case)
    _check_arrivals(open_loop, calm, case)
    closed = sorted(op.ret - op.call for op in case.closed_loop_contrast())
    honest = sorted(op.ret - op.call for op in stalled)
    return case, _reference_percentile(closed, 99), _reference_percentile(honest, 99)


def _check_complete(history: list, service: StallingService, case: LoadCase, stalled: bool) -> None:
    replay, end = case.replay(stalled), case.duration_ms
    unknown = [op for op in history if op.ret is None]
    if unknown:
        expect(False, f"{len(unknown)} of your operations have no response (ret=None; the first "
                      f"scheduled at {unknown[0].call:.1f} ms): wait for every response "
                      f"(service.wait_all()) before you return — a run ends when its last response "
                      f"is in, not at duration_ms, and the requests still waiting are the slow "
                      f"ones — replay: {replay}")
    missing = len(service.sent) - len(history)
    if missing > 0:
        late = [r for r in service.sent if r._done > end]
        s, e = service.stall
        inside = sum(s <= r.sent_at < e for r in late)
        expect(False, f"you sent {len(service.sent)} requests to {service!r} but your history has "
                      f"{len(history)}: {missing} are missing, and {len(late)} responses came after "
                      f"the run's end at {end:g} ms"
                      + (f", {inside} of them for requests sent during the freeze" if inside else "")
                      + f" — wait for every response (service.wait_all()) and record them all: "
                        f"dropping the outstanding requests drops the slowest — replay: {replay}")
    if missing < 0:
        expect(False, f"your history has {len(history)} operations but you sent only "
                      f"{len(service.sent)} requests to {service!r}: one operation per request "
                      f"sent — replay: {replay}")
    outside = [op for op in history if not 0 <= op.call < end]
    if outside:
        expect(False, f"an operation scheduled at {outside[0].call:.1f} ms, outside the run "
                      f"[0, {end:g}) ms: schedule sends from time 0 up to (not including) "
                      f"duration_ms — replay: {replay}")


def _check_rate(calm: list, case: LoadCase) -> None:
    n = len(calm)
    want = case.rate_per_s * case.duration_ms / 1000
    tol = 5 * math.sqrt(want) + 2
    about = (f"on {case.service(False)!r} (no freeze) you sent {n} requests in "
             f"{case.duration_ms / 1000:g} s at {case.rate_per_s:g}/s: expected about {want:.0f}")
    expect(n <= want + tol, f"{about} — too many: a closed loop sends as fast as the responses "
                            f"come back; an open-loop generator sends at the rate asked, on a "
                            f"schedule drawn in advance — replay: {case.replay(False)}")
    expect(n >= want - tol, f"{about} — too few: check the units (rate_per_s is per second, the "
                            f"clock is in ms: a mean gap of 1000 / rate_per_s ms), and never wait "
                            f"for a response before a send — replay: {case.replay(False)}")


def _check_same_schedule(calm: list, stalled: list, case: LoadCase) -> None:
    c = [op.call for op in calm]
    s = [op.call for op in stalled]
    if len(c) == len(s) and all(math.isclose(x, y, rel_tol=0, abs_tol=1e-6) for x, y in zip(c, s)):
        return
    start, end = case.stall_at_ms, case.stall_at_ms + case.stall_ms
    inside_c = sum(start <= t < end for t in c)
    inside_s = sum(start <= t < end for t in s)
    lat = sorted(op.ret - op.call for op in stalled)
    froze = (f"{case.service()!r} froze for {case.stall_ms:g} ms at t={start / 1000:g} s; with seed "
             f"{case.seed} your generator scheduled {inside_c} requests inside that interval on its "
             f"calm twin (no freeze), but your history of the frozen service has {inside_s} there, "
             f"and reports p99 {_reference_percentile(lat, 99):.1f} ms (max {lat[-1]:.0f} ms)")
    if len(s) < len(c):
        expect(False, f"you sent {len(s)} requests to the frozen service but {len(c)} to its calm "
                      f"twin with the same seed and rate: {froze} — during the "
                      f"freeze your generator stopped sending (it waited for responses) or skipped the "
                      f"requests it had no free connection for: coordinated omission, the slow "
                      f"requests are the ones missing. Send every scheduled request at its time, "
                      f"whatever the service does: when every connection is busy, open another — "
                      f"replay: {case.replay()}")
    if len(s) == len(c):
        i = next(k for k, (x, y) in enumerate(zip(c, s)) if not math.isclose(x, y, rel_tol=0, abs_tol=1e-6))
        expect(False, f"request {i} is scheduled at {c[i]:.1f} ms on the calm twin but your history "
                      f"of the frozen service has it at {s[i]:.1f} ms ({s[i] - c[i]:+.1f} ms): your "
                      f"latencies are measured from when each request was actually sent — after "
                      f"it waited for a free connection — not from when it was scheduled. "
                      f"{froze[0].upper() + froze[1:]}: coordinated omission. Measure "
                      f"from the scheduled time (and send on time: open another connection when "
                      f"all are busy) — replay: {case.replay()}")
    expect(False, f"your generator sent {len(s)} requests to the frozen service but {len(c)} to its "
                  f"calm twin with the same seed: your schedule depends on the service's responses; "
                  f"draw it from the rate and the seed alone — replay: {case.replay()}")


def _check_exact(stalled: list, service: StallingService, case: LoadCase) -> None:
    truth = _true_responses(case, [op.call for op in stalled])
    sends = sorted(r.sent_at for r in service.sent)
    for k, (op, done) in enumerate(zip(stalled, truth)):
        if math.isclose(op.ret, done, rel_tol=1e-9, abs_tol=1e-6):
            continue
        sent = sends[k]
        why = (f"; your generator sent it at {sent:.3f} ms, {sent - op.call:.1f} ms late — every "
               f"connection was busy, so it waited in your generator while a worker of the service "
               f"sat idle: keep at least as many connections as the service has workers "
               f"({case.workers}), or open a new one when all are busy"
               if sent > op.call + 1e-6 else
               " — the response time is the request's done_at once it has arrived")
        expect(False, f"request scheduled at {op.call:.3f} ms on {service!r}: your history says "
                      f"its response came at {op.ret:.3f} ms (latency {op.ret - op.call:.2f} ms), "
                      f"but a request sent at {op.call:.3f} ms gets its response at {done:.3f} ms "
                      f"(latency {done - op.call:.2f} ms){why} — replay: {case.replay()}")


def _true_responses(case: LoadCase, calls: list) -> list:
    """The response time of a request sent at each of ``calls`` (sorted) on a fresh service:
    what an open loop that never waits measures."""
    service = case.service()
    requests = []
    for t in calls:
        service.advance_to(t)
        requests.append(service.connect().send())
    service.wait_all()
    return [r.done_at for r in requests]


def _check_arrivals(open_loop: Callable, calm: list, case: LoadCase) -> None:
    calls = [op.call for op in calm]
    gaps = [b - a for a, b in zip([0.0] + calls, calls)]
    mean = statistics.fmean(gaps)
    cv = statistics.pstdev(gaps) / mean if mean > 0 else 0.0
    expect(cv > 0.6, f"the gaps between your scheduled sends vary too little (their standard "
                     f"deviation is {cv:.2f} × their mean, {mean:.1f} ms): users do not arrive on a "
                     f"metronome — draw exponential gaps with mean 1000 / rate_per_s ms (Poisson "
                     f"arrivals) from random.Random(seed) — replay: {case.replay(False)}")
    expect(cv < 1.4, f"the gaps between your scheduled sends vary too much (standard deviation "
                     f"{cv:.2f} × the mean, {mean:.1f} ms; exponential gaps give 1.0): bursts — "
                     f"draw each gap independently, exponential with mean 1000 / rate_per_s ms — "
                     f"replay: {case.replay(False)}")
    other, _ = _run(open_loop, case, stalled=False, seed=case.seed + 1)
    expect(_pairs(other) != _pairs(calm),
           f"seeds {case.seed} and {case.seed + 1} gave the same schedule: draw it from "
           f"random.Random(seed) — replay: {case.replay(False)} and "
           f"{case.replay(False, case.seed + 1)}")


def _pairs(history: list) -> list:
    return [(op.call, op.ret) for op in history]


def _first_difference(a: list, b: list) -> str:
    if len(a) != len(b):
        return f"{len(a)} and {len(b)} operations"
    k = next(i for i, (x, y) in enumerate(zip(_pairs(a), _pairs(b))) if x != y)
    return f"operation {k} scheduled at {a[k].call:.3f} ms, then at {b[k].call:.3f} ms"


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 120 else text[:117] + "..."


# -- the picture -------------------------------------------------------------------------------

def latency_figure(service: StallingService, runs: dict, title: str = ""):
    """One row per run (label -> history): each request's latency at the time it was
    scheduled (or sent), the freeze shaded, the run's p99 dashed; every row on the same
    linear scale, so that the rows compare at a glance.  A run with no operations gets an
    empty row that says so."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    if not runs:
        raise ValueError("latency_figure needs at least one run (label -> list of Operation)")
    start, end = service.stall
    titles = []
    for label, history in runs.items():
        lat = sorted(op.ret - op.call for op in history if op.ret is not None)
        if lat:
            inside = sum(start <= op.call < end for op in history if op.ret is not None)
            titles.append(f"{label}: {len(lat)} requests, {inside} sent during the freeze — "
                          f"p50 {_reference_percentile(lat, 50):.1f} ms, "
                          f"p99 {_reference_percentile(lat, 99):.1f} ms, max {lat[-1]:.0f} ms")
        else:
            titles.append(f"{label}: no requests (not written yet?)")
    fig = make_subplots(rows=len(runs), cols=1, shared_xaxes=True, vertical_spacing=0.12,
                        subplot_titles=titles)
    colours = ("#e67e22", "#2471a3", "#27ae60", "#8e44ad")
    for row, (label, history) in enumerate(runs.items(), 1):
        done = [op for op in history if op.ret is not None]
        fig.add_trace(go.Scatter(
            x=[op.call / 1000 for op in done], y=[op.ret - op.call for op in done],
            mode="markers", name=label, uid=f"latency-{row}",
            marker=dict(size=4, color=colours[(row - 1) % len(colours)]),
            hovertemplate="at %{x:.3f} s: latency %{y:.1f} ms<extra>" + label + "</extra>"),
            row=row, col=1)
        if end > start:
            fig.add_vrect(x0=start / 1000, x1=end / 1000, fillcolor="#c0392b", opacity=0.12,
                          line_width=0, row=row, col=1)
        if done:
            p99 = _reference_percentile(sorted(op.ret - op.call for op in done), 99)
            fig.add_hline(y=p99, line=dict(dash="dash", width=1, color="#555"), row=row, col=1)
            fig.add_annotation(x=1, xref="x domain", y=p99, text=f"p99 {p99:.1f} ms",
                               showarrow=False, xanchor="right", yanchor="bottom",
                               font=dict(size=11, color="#555"), row=row, col=1)
        fig.update_yaxes(title_text="latency (ms)", rangemode="tozero", row=row, col=1)
    fig.update_yaxes(matches="y")
    fig.update_xaxes(title_text="time the request was scheduled or sent (s)", row=len(runs), col=1)
    fig.update_layout(title=title or f"{service!r} — the freeze shaded",
                      height=260 * len(runs) + 90, showlegend=False,
                      margin=dict(l=60, r=20, t=90, b=50))
    return fig
