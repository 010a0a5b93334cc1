"""Checks of exercise 5, "Testing framework" (開發測試框架).

The learner writes the five parts of a small Jepsen-style framework; each check runs them
on seeded inputs whose right answer is known, and every failure names the seed.

1. :func:`consistency_testing` — ``is_linearizable(history)`` for a read/write register,
   by search: hand-made cases, then cross-checked against the course's checker
   (:func:`course_lib.check.check`) on hundreds of random small histories.
2. :func:`fault_tolerance_testing` — ``fault_tolerance_test(store, workload, seed)``: a
   workload under a nemesis (clients crash: unknown outcomes), checked; it must pass the
   correct stores and catch the known-bad ``StaleRegister`` and ``LossyKV``.
3. :func:`performance_testing` — ``performance_summary(history, duration)``: latency
   percentiles and throughput, compared with exact values on seeded recorded runs.
4. :func:`stress_testing` — ``find_knee(service, slo_p99_ms)`` on :class:`SimulatedService`
   (a closed-loop queue with a known capacity): the highest concurrency meeting the SLO,
   within a tolerance of the true knee, found by a ramp rather than a full scan.
5. :func:`fault_injection` — a seeded ``FaultInjector`` against
   :class:`course_lib.raft.SimCluster`: crashes, partitions and pauses; the same seed
   replays the same trace digest, and the faults really cause leader changes.
"""

from __future__ import annotations

import heapq
import math
import random
from dataclasses import dataclass
from typing import Callable, Sequence

from ..check import (
    LossyKV, MemoryKV, MemoryRegister, Operation, SimFault, StaleRegister, check,
    kv_workload, register, register_workload, simulate_history,
)
from ..raft import SimCluster
from . import expect

__all__ = [
    "PerfSummary", "SimulatedService", "consistency_testing", "fault_injection",
    "fault_tolerance_testing", "performance_testing", "stress_testing",
]


def _failed(message: str) -> None:
    expect(False, message)


# =====================================================================================
# 1. Consistency testing: a linearizability checker for a register
# =====================================================================================

def _show(history: Sequence[Operation]) -> str:
    parts = []
    for op in history:
        kind, arg = op.input
        what = f"write({arg!r})" if kind == "write" else "read()"
        out = "" if kind == "write" else (f" -> {op.output!r}" if op.ret is not None else " -> ?")
        end = "?" if op.ret is None else f"{op.ret:g}"
        parts.append(f"client {op.client_id}: {what}{out} [{op.call:g}, {end}]")
    return "; ".join(parts)


def _op(client, input, call, output=None, ret=None) -> Operation:
    return Operation(client, input, call, output, ret)


W = lambda v: ("write", v)          # noqa: E731
R = ("read", None)

_LIN_TABLE = [
    ([_op(0, W(1), 0, None, 2), _op(1, R, 3, 1, 4)], True, "a read after a write sees it"),
    ([_op(0, W(1), 0, None, 2), _op(1, R, 3, None, 4)], False,
     "a read that starts after write(1) returned cannot see the initial None"),
    ([_op(0, W(1), 0, None, 5), _op(1, R, 1, None, 2), _op(2, R, 3, 1, 4)], True,
     "reads concurrent with a write may see the old value, then the new one"),
    ([_op(0, W(1), 0, None, 5), _op(1, R, 1, 1, 2), _op(2, R, 3, None, 4)], False,
     "once a read saw 1, a later read cannot go back to None"),
    ([_op(0, W(1), 0, None, 1), _op(0, W(2), 2, None, 3), _op(1, R, 4, 1, 5)], False,
     "a stale read: write(2) completed before the read began"),
    ([_op(0, W(1), 0), _op(1, R, 3, 1, 4)], True,
     "a write with unknown outcome (ret=None) may have taken effect"),
    ([_op(0, W(1), 0), _op(1, R, 3, None, 4)], True,
     "a write with unknown outcome may also never take effect"),
    ([_op(0, W(1), 0, None, 2), _op(1, R, 2, 1, 3)], True,
     "a return at time t comes before a call at the same time t"),
    ([_op(0, W(1), 0, None, 2), _op(1, W(2), 2, None, 3), _op(2, R, 3, 1, 4)], False,
     "write(1) returned at 2 and write(2) began at 2: write(2) is later, so read() -> 1 after it is stale"),
    ([_op(0, W(1), 0, None, 4), _op(1, W(2), 1, None, 3), _op(2, R, 5, 1, 6), _op(3, R, 7, 2, 8)],
     False, "two concurrent writes are ordered once; the register cannot flip back from 1 to 2"),
    ([], True, "the empty history is linearizable"),
]


def consistency_testing(is_linearizable: Callable, seeds: Sequence[int] = range(300)) -> str:
    for history, want, why in _LIN_TABLE:
        got = is_linearizable(list(history))
        expect(got is want, f"is_linearizable returned {got!r}, expected {want} for "
                            f"[{_show(history)}] — {why}")
    model = register()
    verdicts = {True: 0, False: 0}
    for seed in seeds:
        rng = random.Random(seed)
        store = StaleRegister(p=rng.choice((0.0, 0.3, 0.6)), seed=seed)
        history = simulate_history(store, register_workload(), clients=rng.choice((2, 3)),
                                   ops=rng.randint(2, 7), seed=seed,
                                   unknown_rate=rng.choice((0.0, 0.2)),
                                   integer_times=rng.random() < 0.5)
        want = check(model, history).ok
        got = is_linearizable(list(history))
        expect(got is want, f"seed {seed}: is_linearizable returned {got!r}, the course's checker "
                            f"says {want} for [{_show(history)}] — replay with "
                            f"consistency_testing(is_linearizable, seeds=[{seed}])")
        verdicts[want] += 1
    return (f"{len(_LIN_TABLE)} hand-made cases; agreed with course_lib.check.check on "
            f"{len(seeds)} random histories ({verdicts[True]} linearizable, "
            f"{verdicts[False]} not)")


# =====================================================================================
# 2. Fault-tolerance testing: catch the known-bad stores
# =====================================================================================

def fault_tolerance_testing(fault_tolerance_test: Callable, seeds: Sequence[int] = range(5)) -> str:
    cases = [
        ("MemoryKV", lambda s: MemoryKV(), kv_workload, True),
        ("MemoryRegister", lambda s: MemoryRegister(), register_workload, True),
        ("StaleRegister(p=0.2)", lambda s: StaleRegister(p=0.2, seed=s), register_workload, False),
        ("LossyKV(p=0.05)", lambda s: LossyKV(p=0.05, seed=s), kv_workload, False),
    ]
    for name, make, workload, correct in cases:
        for seed in seeds:
            result = fault_tolerance_test(make(seed), workload(), seed)
            expect(isinstance(result, tuple) and len(result) == 2 and isinstance(result[0], bool)
                   and isinstance(result[1], list),
                   f"fault_tolerance_test must return (passed: bool, history: list); got {result!r:.200}")
            passed, history = result
            expect(all(isinstance(op, Operation) for op in history),
                   f"the history must be a list of Operation; got {history[:3]!r:.200}")
            expect(len(history) >= 100, f"{name}, seed {seed}: only {len(history)} operations — "
                                        f"run at least 100 to give faults a chance to show")
            unknown = sum(op.ret is None for op in history)
            expect(unknown > 0, f"{name}, seed {seed}: no operation has an unknown outcome — the "
                                f"nemesis must crash clients (unknown_rate > 0)")
            where = (f"{name}, seed {seed} (replay: fault_tolerance_test({name.split('(')[0]}(...), "
                     f"..., {seed}))")
            if correct:
                expect(passed, f"{where}: a correct store failed your test — a false alarm")
            else:
                expect(not passed, f"{where}: your test passed a known-bad store — it must catch it")
            again = fault_tolerance_test(make(seed), workload(), seed)
            expect(again[1] == history and again[0] == passed,
                   f"{where}: two runs with the same seed gave different histories or verdicts — "
                   f"draw everything from the seed")
    return (f"passed MemoryKV and MemoryRegister, caught StaleRegister and LossyKV on all "
            f"{len(seeds)} seeds each, with crashed clients, replayable from the seed")


# =====================================================================================
# 3. Performance testing: latency percentiles and throughput
# =====================================================================================

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


def performance_testing(performance_summary: Callable, seeds: Sequence[int] = range(20)) -> str:
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
    return f"exact percentiles, max and throughput on a hand-made run and {len(seeds)} seeded recorded runs"


# =====================================================================================
# 4. Stress testing: find the knee
# =====================================================================================

class SimulatedService:
    """A service with ``workers`` parallel workers and a FIFO queue, under a closed loop
    of ``concurrency`` clients that each send the next request as soon as the previous
    one returns.  Each request takes ``service_ms`` × uniform(0.5, 1.5) of a worker.

    Its capacity is ``workers / service_ms`` requests per ms: beyond ``workers``
    clients, requests queue and latency grows with the load.  ``measure(concurrency)``
    runs one load level (seeded by the service's seed and the level, so it is
    repeatable) and returns the latencies in ms of its requests after a warm-up.
    """

    def __init__(self, workers: int, service_ms: float, seed: int = 0) -> None:
        if not isinstance(workers, int) or workers < 1 or service_ms <= 0:
            raise ValueError(f"need workers >= 1 and service_ms > 0, got {workers}, {service_ms}")
        self.workers, self.service_ms, self.seed = workers, float(service_ms), seed
        self.measurements: list = []          # the concurrency levels measured, in order

    @property
    def capacity_rps(self) -> float:
        return self.workers / self.service_ms * 1000

    def measure(self, concurrency: int) -> list:
        if not isinstance(concurrency, int) or isinstance(concurrency, bool) or not 1 <= concurrency <= 1024:
            raise ValueError(f"concurrency must be an int in [1, 1024], got {concurrency!r}")
        self.measurements.append(concurrency)
        return self._latencies(concurrency)

    def _latencies(self, c: int) -> list:
        rng = random.Random(self.seed * 100003 + c)
        total = max(500, 25 * c)
        issues = [(0.0, k) for k in range(c)]
        free = [0.0] * self.workers
        out = []
        for i in range(total):
            t, k = heapq.heappop(issues)
            w = heapq.heappop(free)
            end = max(t, w) + self.service_ms * rng.uniform(0.5, 1.5)
            heapq.heappush(free, end)
            heapq.heappush(issues, (end, k))
            if i >= 2 * c:
                out.append(end - t)
        return out

    def p99(self, c: int) -> float:
        return _reference_percentile(sorted(self._latencies(c)), 99)

    def true_knee(self, slo_p99_ms: float, max_concurrency: int) -> int:
        """The last concurrency before p99 first exceeds the SLO (0 if 1 already does)."""
        for c in range(1, max_concurrency + 1):
            if self.p99(c) > slo_p99_ms:
                return c - 1
        return max_concurrency

    def __repr__(self) -> str:
        return f"SimulatedService(workers={self.workers}, service_ms={self.service_ms}, seed={self.seed})"


def stress_testing(find_knee: Callable, max_levels: int = 30) -> str:
    cases = [(SimulatedService(2, 10.0, seed=1), 40.0), (SimulatedService(5, 4.0, seed=2), 20.0),
             (SimulatedService(12, 20.0, seed=3), 50.0), (SimulatedService(1, 5.0, seed=4), 30.0)]
    found = []
    for service, slo in cases:
        truth = service.true_knee(slo, 256)
        got = find_knee(service, slo, 256)
        expect(isinstance(got, int) and not isinstance(got, bool),
               f"find_knee must return an int concurrency, got {got!r}")
        levels = len(service.measurements)
        expect(levels > 0, f"{service}: find_knee never called service.measure()")
        expect(levels <= max_levels, f"{service}: you measured {levels} load levels; ramp up "
                                     f"(e.g. doubling) then narrow down — at most {max_levels}")
        tol = max(1, round(0.15 * truth))
        expect(abs(got - truth) <= tol,
               f"{service} with a p99 SLO of {slo:g} ms: you found a knee at concurrency {got}, "
               f"but p99 first exceeds the SLO at {truth + 1} (knee {truth}, tolerance ±{tol}); "
               f"p99 at {got} is {service.p99(got) if got >= 1 else float('nan'):.1f} ms")
        found.append(f"{got} (true {truth}, {levels} levels)")
    return "knees found within 15%: " + ", ".join(found)


# =====================================================================================
# 5. Fault injection: a seeded schedule against SimCluster
# =====================================================================================

def _injected_run(injector_cls: type, seed: int, duration_ms: float):
    c = SimCluster(5, seed=seed)
    c.run_until(lambda: c.leader() is not None, 3000)
    before = len(c.leader_changes)
    injector = injector_cls(c, seed)
    plan = injector.plan(duration_ms)
    applied = injector.run(duration_ms)
    c.run_until(lambda: c.leader() is not None, 3000)
    c.run_for(200)
    return c, plan, applied, len(c.leader_changes) - before


def fault_injection(injector_cls: type, seeds: Sequence[int] = (1, 2, 3, 4), duration_ms: float = 4000) -> str:
    kinds_seen: set = set()
    changes = []
    for seed in seeds:
        c, plan, applied, led = _injected_run(injector_cls, seed, duration_ms)
        expect(isinstance(plan, list) and plan and all(isinstance(f, SimFault) for f in plan),
               f"seed {seed}: plan() must return a non-empty list of SimFault, got {plan!r:.200}")
        expect(all(0 <= f.at and f.at + f.duration <= duration_ms for f in plan),
               f"seed {seed}: every fault must start and end within [0, {duration_ms:g}] ms; got "
               f"{[f for f in plan if not (0 <= f.at and f.at + f.duration <= duration_ms)][:1]}")
        again = injector_cls(c, seed).plan(duration_ms)
        expect(again == plan, f"seed {seed}: plan() gave a different schedule the second time — "
                              f"draw from random.Random(seed), never the global random")
        kinds_seen |= {f.kind for f in plan}
        expect(isinstance(applied, list) and len(applied) >= len(plan) // 2,
               f"seed {seed}: run() must return the faults it applied; got {applied!r:.200}")
        down = [n for n in c.hosts if not c.sim.is_alive(n) or c.sim.is_paused(n)]
        expect(not down, f"seed {seed}: after run(), {down} are still crashed or paused — heal "
                         f"everything at the end")
        expect(c.leader() is not None, f"seed {seed}: no leader after the faults healed")
        expect(c.safety_violations() == [], f"seed {seed}: Raft safety broken: {c.safety_violations()[:1]}")
        changes.append(led)
        twin, _, _, _ = _injected_run(injector_cls, seed, duration_ms)
        expect(twin.trace_digest() == c.trace_digest(),
               f"seed {seed}: two runs with the same seed gave different traces — a fault run "
               f"must be replayable from its seed")
    hit = sum(1 for n in changes if n)
    expect(hit * 2 >= len(changes) and sum(changes) >= len(changes),
           f"your faults caused {changes} leader changes on seeds {list(seeds)} — they must force "
           f"new elections (at least one on half of the seeds): crash, pause or isolate the "
           f"leader, for longer than an election timeout (150-300 ms)")
    expect({"crash", "partition", "pause"} <= kinds_seen,
           f"your schedules used only {sorted(kinds_seen)}; use crashes, partitions and pauses")
    other = _injected_run(injector_cls, seeds[0] + 1000, duration_ms)[1]
    first = _injected_run(injector_cls, seeds[0], duration_ms)[1]
    expect(other != first, "two different seeds gave the same schedule — draw it from the seed")
    return (f"{len(seeds)} seeded schedules with {sorted(kinds_seen)}: {changes} leader changes, "
            f"no safety violation, same seed → same trace digest")
