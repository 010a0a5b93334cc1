"""Exercise 5, task 3 (performance testing): the stalling service behaves as documented,
the closed loop really hides its freeze, the solution passes the check, and a library of
classic wrong load generators is rejected, each with a message naming its problem.

The correct pieces come from the solution notebook itself (its code cells, check cells
left out); each wrong generator is one deliberate, classic bug.
"""

from __future__ import annotations

import random

import pytest

from course_lib.check import Operation
from course_lib.grading import CheckFailed, load_solution, run_check
from course_lib.grading.ex5 import PerfSummary, performance_testing
from course_lib.grading.ex5.performance import CASES, StallingService, closed_loop, latency_figure


@pytest.fixture(scope="module")
def s5() -> dict:
    return load_solution("ex5_testing_framework")


def fails(s5, generator, match: str, summary=None) -> str:
    result = run_check("3", performance_testing, summary or s5["performance_summary"], generator,
                       seeds=range(3))
    with pytest.raises(CheckFailed, match=match) as info:
        result.raise_for_failure()
    assert "Traceback" not in str(info.value)
    return str(info.value)


def schedule(rate_per_s: float, duration_ms: float, rng: random.Random) -> list:
    """Poisson arrivals, as the task asks: the honest part every wrong generator keeps."""
    times, t = [], rng.expovariate(rate_per_s / 1000)
    while t < duration_ms:
        times.append(t)
        t += rng.expovariate(rate_per_s / 1000)
    return times


def op(request, call: float) -> Operation:
    return Operation(request.connection.id, ("get", None), call, None, request.done_at)


def pool_generator(size: int, measure_from_send: bool = False, skip_when_busy: bool = False):
    """A fixed pool of ``size`` connections (one per "user", as wrk keeps): when all are
    busy, wait for the next response (or skip the request)."""
    def generator(service, rate_per_s, duration_ms, seed):
        pool = [service.connect() for _ in range(size)]
        recorded = []
        for t in schedule(rate_per_s, duration_ms, random.Random(seed)):
            service.advance_to(t)
            conn = next((c for c in pool if not c.busy), None)
            if conn is None:
                if skip_when_busy:
                    continue
                conn = service.next_response().connection
            request = conn.send()
            recorded.append((request.sent_at if measure_from_send else t, request))
        service.wait_all()
        return [op(r, t) for t, r in recorded]
    return generator


def new_connection_per_request(rng_for_seed, stop_at_end: bool = False, keep_unknown: bool = False,
                               gaps=None):
    def generator(service, rate_per_s, duration_ms, seed):
        rng = rng_for_seed(seed)
        times = gaps(rate_per_s, duration_ms) if gaps else schedule(rate_per_s, duration_ms, rng)
        sent = []
        for t in times:
            service.advance_to(t)
            sent.append((t, service.connect().send()))
        if stop_at_end:
            service.advance_to(duration_ms)
        else:
            service.wait_all()
        return [op(r, t) for t, r in sent if keep_unknown or r.done_at is not None]
    return generator


# -- the service ---------------------------------------------------------------------------

def test_fifo_service_times_and_a_freeze_are_exact():
    """One worker, seed 7: the service times are the seed's draws in send order; work in
    progress when the freeze begins is paused for all of it, work due to start during it
    starts when it ends, and the queue is FIFO."""
    draws = random.Random(7)
    w = [10 * draws.uniform(0.5, 1.5) for _ in range(4)]
    service = StallingService(1, 10, stall_at_ms=100, stall_ms=50, seed=7)
    conns = [service.connect() for _ in range(4)]
    sent = []
    for conn, t in zip(conns, (0.0, 96.0, 120.0, 121.0)):
        service.advance_to(t)
        sent.append(conn.send())
    assert service.wait_all() == pytest.approx(150 + (96 + w[1] - 100) + w[2] + w[3])
    assert sent[0].done_at == pytest.approx(w[0])                   # before the freeze
    assert sent[1].done_at == pytest.approx(96 + w[1] + 50)         # paused by it
    assert sent[2].done_at == pytest.approx(sent[1].done_at + w[2])  # sent during it: queued
    assert sent[3].done_at == pytest.approx(sent[2].done_at + w[3])  # FIFO
    assert [r.sent_at for r in service.sent] == [0.0, 96.0, 120.0, 121.0]


def test_responses_arrive_only_as_time_passes():
    service = StallingService(2, 5, stall_at_ms=0, stall_ms=0, seed=1)
    conn = service.connect()
    request = conn.send()
    assert request.done_at is None and conn.busy and service.in_flight == 1
    with pytest.raises(ValueError, match="one request at a time"):
        conn.send()
    assert service.next_response(until=1.0) is None and service.now == 1.0   # select timed out
    assert service.next_response() is request and not conn.busy
    assert request.done_at == service.now and 2.5 <= request.done_at <= 7.5
    assert service.advance_to(0.5) == service.now                           # a past time: at once
    assert service.next_response() is None                                  # nothing in flight


@pytest.mark.parametrize("args, problem", [
    ((0, 5, 0, 0), "workers"), ((1, 0, 0, 0), "service_ms"), ((1, 5, -1, 0), "stall_at_ms"),
    ((1, 5, 0, float("nan")), "stall_ms"),
])
def test_bad_service_parameters_are_refused(args, problem):
    with pytest.raises(ValueError, match=problem):
        StallingService(*args)


def test_a_runaway_generator_is_stopped_with_a_hint_about_units():
    service = StallingService(2, 5, 0, 0)
    with pytest.raises(ValueError, match="rate_per_s is per second"):
        for _ in range(100_001):                      # a rate a thousand times too high
            service.connect().send()
    assert len(service.sent) == 100_000
    with pytest.raises(ValueError, match="finite"):
        service.advance_to(float("inf"))


def test_the_same_sends_give_the_same_responses():
    def run():
        service = CASES[0].service()
        for t in schedule(50, 10_000, random.Random(3)):
            service.advance_to(t)
            service.connect().send()
        service.wait_all()
        return [(r.sent_at, r.done_at) for r in service.sent]
    assert run() == run()


def test_a_closed_loop_sends_at_most_one_request_per_client_into_the_freeze():
    """The mechanism of coordinated omission: each client waits out the freeze on its one
    request, so the freeze is sampled `clients` times however long it lasts."""
    service = StallingService(2, 5, stall_at_ms=4000, stall_ms=1000, seed=1)
    history = closed_loop(service, clients=2, duration_ms=10_000, think_ms=35)
    inside = [o for o in history if 4000 <= o.call < 5000]
    assert 1 <= len(inside) <= 2 and 400 <= len(history) <= 500
    lat = sorted(o.ret - o.call for o in history)
    assert lat[-1] > 900 and lat[int(0.99 * len(lat))] < 20    # max is the freeze, p99 is not
    assert all(o.ret is not None for o in history)              # it waits for its last responses
    with pytest.raises(ValueError, match="clients"):
        closed_loop(service, 0, 100)


# -- the check: the solution, and what it must accept ----------------------------------------

def test_the_solution_passes_and_shows_closed_vs_open_loop(s5):
    result = run_check("3", performance_testing, s5["performance_summary"], s5["open_loop"])
    result.raise_for_failure()
    assert "vs" in result.message and "1000 ms freeze at 4 s" in result.message
    assert result.seconds < 15


def test_the_solutions_open_loop_reports_the_freeze(s5):
    history = s5["open_loop"](CASES[0].service(), 50, 10_000, 11)
    summary = s5["performance_summary"](history, 10_000)
    assert summary.unknown == 0 and 400 <= summary.completed <= 600
    assert summary.p50 < 10 and summary.p99 > 500               # the tenth of the run in the freeze


def test_a_pool_as_large_as_the_workers_measured_from_the_schedule_passes(s5):
    """wrk2's correction: a fixed pool that queues requests by their scheduled time and
    measures from it sees exactly what an open loop sees, if no worker ever waits for a
    connection (the pool is at least as large as the service's worker count)."""
    run_check("3", performance_testing, s5["performance_summary"], pool_generator(4),
              seeds=range(3)).raise_for_failure()


def test_a_connection_per_request_passes(s5):
    run_check("3", performance_testing, s5["performance_summary"],
              new_connection_per_request(random.Random), seeds=range(3)).raise_for_failure()


# -- the library of wrong generators ---------------------------------------------------------

def test_a_closed_loop_is_rejected(s5):
    def closed(service, rate_per_s, duration_ms, seed):
        return closed_loop(service, 2, duration_ms)
    message = fails(s5, closed, "too many: a closed loop sends as fast as the responses come back")
    assert "expected about 500" in message and "replay: open_loop(StallingService(" in message


def test_a_closed_loop_paced_to_the_rate_stops_sending_during_the_freeze(s5):
    def paced(service, rate_per_s, duration_ms, seed):
        return closed_loop(service, 2, duration_ms, think_ms=2000 / rate_per_s - service.service_ms)
    message = fails(s5, paced, "stopped sending .it waited for responses.")
    assert "coordinated omission" in message and "froze for 1000 ms at t=4 s" in message


def test_a_bounded_pool_measuring_from_the_actual_send_is_rejected(s5):
    message = fails(s5, pool_generator(8, measure_from_send=True),
                    "measured from when each request was actually sent")
    assert "coordinated omission" in message and "Measure from the scheduled time" in message


def test_a_blocking_client_that_sends_late_is_rejected(s5):
    def blocking(service, rate_per_s, duration_ms, seed):
        conn, sent = service.connect(), []
        for t in schedule(rate_per_s, duration_ms, random.Random(seed)):
            service.advance_to(t)
            if conn.busy:
                service.next_response()
            sent.append(conn.send())
        service.wait_all()
        return [op(r, r.sent_at) for r in sent]
    fails(s5, blocking, "actually sent")


def test_skipping_requests_while_every_connection_is_busy_is_rejected(s5):
    message = fails(s5, pool_generator(8, skip_when_busy=True), "skipped the requests")
    assert "scheduled 49 requests inside that interval" in message


def test_a_pool_smaller_than_the_workers_is_rejected_even_measured_from_the_schedule(s5):
    fails(s5, pool_generator(1), "late — every connection was busy.*as many connections as "
                                 "the service has workers")


def test_the_global_random_is_rejected(s5):
    fails(s5, new_connection_per_request(lambda seed: random), "not repeatable")


def test_ignoring_the_seed_is_rejected(s5):
    fails(s5, new_connection_per_request(lambda seed: random.Random(0)),
          "seeds 11 and 12 gave the same schedule")


def test_a_metronome_is_rejected(s5):
    def every(rate_per_s, duration_ms):
        gap = 1000 / rate_per_s
        return [gap * (k + 0.5) for k in range(int(duration_ms / gap))]
    fails(s5, new_connection_per_request(random.Random, gaps=every), "metronome")


def test_dropping_the_outstanding_requests_is_rejected(s5):
    message = fails(s5, new_connection_per_request(random.Random, stop_at_end=True),
                    "dropping the outstanding requests drops the slowest")
    assert "sent during the freeze" in message                  # the freeze that outlasts the run


def test_unanswered_requests_left_as_unknown_outcomes_are_rejected(s5):
    fails(s5, new_connection_per_request(random.Random, stop_at_end=True, keep_unknown=True),
          "have no response .ret=None")


def test_response_times_read_from_the_clock_at_the_end_are_rejected(s5):
    def clock(service, rate_per_s, duration_ms, seed):
        history = s5["open_loop"](service, rate_per_s, duration_ms, seed)
        return [Operation(o.client_id, o.input, o.call, None, service.now) for o in history]
    fails(s5, clock, "your history says its response came at .* the response time is the "
                     "request's done_at")


def test_a_rate_taken_per_millisecond_is_rejected(s5):
    def per_ms(service, rate_per_s, duration_ms, seed):
        return s5["open_loop"](service, rate_per_s / 1000, duration_ms, seed)
    fails(s5, per_ms, "too few: check the units")


def test_sends_past_the_end_of_the_run_are_rejected(s5):
    def fixed_count(rate_per_s, duration_ms):
        rng, t, out = random.Random(5), 0.0, []
        for _ in range(int(rate_per_s * duration_ms / 1000)):
            t += rng.expovariate(rate_per_s / 1000)
            out.append(t)
        return out if out[-1] >= duration_ms else out + [duration_ms + 1]
    fails(s5, new_connection_per_request(random.Random, gaps=fixed_count), "outside the run")


def test_not_returning_operations_is_rejected(s5):
    def latencies(service, rate_per_s, duration_ms, seed):
        return [o.ret - o.call for o in s5["open_loop"](service, rate_per_s, duration_ms, seed)]
    fails(s5, latencies, "open_loop must return a list of Operation")


def test_nearest_rank_percentiles_are_rejected(s5):
    def nearest(history, duration):
        s = s5["performance_summary"](history, duration)
        xs = sorted(o.ret - o.call for o in history if o.ret is not None)
        return PerfSummary(xs[len(xs) // 2], s.p90, s.p99, s.max, s.throughput, s.completed, s.unknown)
    fails(s5, s5["open_loop"], "p50 should be", summary=nearest)


def test_counting_unknown_outcomes_as_throughput_is_rejected(s5):
    def generous(history, duration):
        s = s5["performance_summary"](history, duration)
        return PerfSummary(s.p50, s.p90, s.p99, s.max, len(history) / duration, s.completed, s.unknown)
    fails(s5, s5["open_loop"], "throughput should be", summary=generous)


# -- the picture -----------------------------------------------------------------------------

def test_the_figure_shows_each_run_with_the_freeze_shaded(s5):
    service = CASES[0].service()
    closed = CASES[0].closed_loop_contrast()
    honest = s5["open_loop"](CASES[0].service(), 50, 10_000, 11)
    fig = latency_figure(service, {"closed": closed, "open": honest, "empty": []})
    assert [t.uid for t in fig.data] == ["latency-1", "latency-2", "latency-3"]
    assert len(fig.data[1].x) == len(honest) and len(fig.data[2].x) == 0
    titles = [a.text for a in fig.layout.annotations if a.text.startswith(("closed", "open", "empty"))]
    assert "p99 7.4 ms" in titles[0] and "p99 833.5 ms" in titles[1] and "no requests" in titles[2]
    freezes = [s for s in fig.layout.shapes if s.type == "rect"]
    assert len(freezes) == 3 and {(s.x0, s.x1) for s in freezes} == {(4.0, 5.0)}
    with pytest.raises(ValueError, match="at least one run"):
        latency_figure(service, {})
