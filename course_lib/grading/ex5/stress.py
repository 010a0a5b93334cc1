"""Check 4, stress testing: ``find_knee(service, slo_p99_ms)`` on :class:`SimulatedService`,
a closed-loop queue with a known capacity, by a ramp rather than a full scan."""

from __future__ import annotations

import heapq
import random
from typing import Callable

from .. import expect
from .performance import _reference_percentile


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
