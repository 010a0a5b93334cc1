"""Seeded heartbeat traces: when one node's heartbeats reach the monitor.

The sender ticks every ``interval`` seconds.  Each heartbeat then spends a random
network delay in flight: gamma-distributed with shape ``delay_shape`` (1 is an
exponential, long-tailed delay; larger shapes are closer to normal), with a mean that
cycles through the ``jitter`` levels (calm and congested network periods, each
lasting an exponential time with mean ``regime_mean``).  The sender sometimes stops for a while (a "GC
pause": Poisson arrivals, ``pauses_per_hour``, exponential lengths with mean
``pause_mean``) and skips the ticks it missed; a heartbeat may be lost with
probability ``loss``; after ``crash_at`` it sends nothing.

Same seed and arguments, same trace.  The shape follows the wide-area traces that
phi accrual was evaluated on (Hayashibara et al. 2004): delays with a long tail and
periods of different variability, which a fixed timeout cannot adapt to.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Optional, Sequence


@dataclass(frozen=True)
class HeartbeatTrace:
    """Arrival times (seconds, sorted) of one node's heartbeats at the monitor.

    The node is alive on ``[0, alive_until)``; ``pauses`` are ``(start, length)``
    of the sender's stops; ``jitter_regimes`` are ``(start, mean_delay)``.
    """

    arrivals: tuple[float, ...]
    interval: float
    duration: float
    pauses: tuple[tuple[float, float], ...]
    jitter_regimes: tuple[tuple[float, float], ...]
    crash_at: Optional[float]
    seed: int

    @property
    def alive_until(self) -> float:
        return self.duration if self.crash_at is None else min(self.crash_at, self.duration)

    def intervals(self) -> list[float]:
        """Consecutive inter-arrival times."""
        a = self.arrivals
        return [a[i + 1] - a[i] for i in range(len(a) - 1)]


def _positive(name: str, value: float) -> None:
    if not (isinstance(value, (int, float)) and not isinstance(value, bool)
            and value > 0 and math.isfinite(value)):
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")


def _non_negative(name: str, value: float) -> None:
    if not (isinstance(value, (int, float)) and not isinstance(value, bool)
            and value >= 0 and math.isfinite(value)):
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")


def generate_trace(
    seed: int,
    *,
    duration: float = 3600.0,
    interval: float = 0.1,
    jitter: Sequence[float] = (0.001, 0.03),
    regime_mean: float = 600.0,
    delay_shape: float = 4.0,
    pauses_per_hour: float = 2.0,
    pause_mean: float = 0.5,
    loss: float = 0.0,
    crash_at: Optional[float] = None,
) -> HeartbeatTrace:
    """A seeded trace of one node's heartbeat arrivals over ``[0, duration)``."""
    _positive("duration", duration)
    _positive("interval", interval)
    _positive("regime_mean", regime_mean)
    _positive("delay_shape", delay_shape)
    _non_negative("pauses_per_hour", pauses_per_hour)
    _positive("pause_mean", pause_mean)
    if not (isinstance(loss, (int, float)) and 0 <= loss < 1):
        raise ValueError(f"loss must be a probability in [0, 1), got {loss!r}")
    levels = tuple(jitter)
    if not levels:
        raise ValueError("jitter must name at least one mean delay level")
    for level in levels:
        _non_negative("jitter level", level)
    if crash_at is not None:
        _non_negative("crash_at", crash_at)
    rng = random.Random(seed)

    regimes = []
    t = 0.0
    level = rng.randrange(len(levels))
    while t < duration:
        regimes.append((t, levels[level]))
        level = (level + 1) % len(levels)
        t += rng.expovariate(1.0 / regime_mean)

    pauses = []
    if pauses_per_hour > 0:
        t = rng.expovariate(pauses_per_hour / 3600.0)
        while t < duration:
            length = rng.expovariate(1.0 / pause_mean)
            pauses.append((t, length))
            t += length + rng.expovariate(pauses_per_hour / 3600.0)

    end = duration if crash_at is None else min(crash_at, duration)
    arrivals = []
    regime = 0
    pause = 0
    tick = 0.0
    while tick < end:
        while pause < len(pauses) and sum(pauses[pause]) <= tick:
            pause += 1
        if pause < len(pauses) and pauses[pause][0] <= tick:
            tick = sum(pauses[pause])
            pause += 1
            continue
        while regime + 1 < len(regimes) and regimes[regime + 1][0] <= tick:
            regime += 1
        mean_delay = regimes[regime][1]
        delay = rng.gammavariate(delay_shape, mean_delay / delay_shape) if mean_delay > 0 else 0.0
        if loss == 0 or rng.random() >= loss:
            arrivals.append(tick + delay)
        tick += interval
    arrivals.sort()
    return HeartbeatTrace(
        arrivals=tuple(arrivals),
        interval=float(interval),
        duration=float(duration),
        pauses=tuple(pauses),
        jitter_regimes=tuple(regimes),
        crash_at=None if crash_at is None else float(crash_at),
        seed=seed,
    )
