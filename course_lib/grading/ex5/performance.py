"""Check 3, performance testing: latency percentiles and throughput of a recorded run,
compared with exact values."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Callable, Sequence

from ...check import Operation
from .. import expect


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
