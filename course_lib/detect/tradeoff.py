"""Detection time vs wrong suspicions, by replaying a heartbeat trace.

The two quality-of-service metrics of a failure detector (Chen, Toueg & Aguilera
2002; used by Hayashibara et al. 2004 to compare phi accrual with timeouts):

- **detection time**: how long after a crash the node is suspected for good.  Here,
  for every heartbeat of the trace we ask "had the node crashed right after sending
  this one, when would it be suspected?"; that is the detector's time to suspicion
  at that moment, measured from the last heartbeat's arrival.  The mean over all
  heartbeats is the mean detection time.
- **wrong suspicions**: the node in the trace never crashes (before ``alive_until``);
  every gap between consecutive arrivals longer than the detector's time to
  suspicion at its start is one mistake (suspected, then cleared by the next
  heartbeat).  Reported per hour of trace.

Heartbeats in the first ``warmup`` seconds are replayed but not scored, so the phi
detector's window has filled before it is judged.  A fixed timeout's time to
suspicion is the timeout itself; phi's is where ``phi`` reaches the threshold, which
follows the window's mean and variance (``PhiAccrualDetector.time_to_suspicion``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

from .phi import PhiAccrualDetector
from .trace import HeartbeatTrace


@dataclass(frozen=True)
class TradeoffPoint:
    """One detector setting's score on a trace (seconds, and mistakes per hour)."""

    detector: str
    parameter: float
    mean_detection_time: float
    wrong_suspicions_per_hour: float


def _scored_gaps(trace: HeartbeatTrace, warmup: float) -> tuple[list[int], float]:
    """Indices i of arrivals whose following gap is scored, and the scored hours."""
    a = trace.arrivals
    end = trace.alive_until
    scored = [i for i in range(len(a) - 1) if a[i] >= warmup and a[i + 1] <= end]
    if not scored:
        raise ValueError(f"trace has no heartbeats to score after warmup={warmup!r}")
    hours = (a[scored[-1] + 1] - a[scored[0]]) / 3600.0
    return scored, hours


def timeout_tradeoff(
    trace: HeartbeatTrace, timeouts: Iterable[float], warmup: float = 60.0
) -> list[TradeoffPoint]:
    """Score fixed timeouts (seconds) on ``trace``."""
    scored, hours = _scored_gaps(trace, warmup)
    a = trace.arrivals
    gaps = [a[i + 1] - a[i] for i in scored]
    points = []
    for timeout in timeouts:
        if not timeout > 0:
            raise ValueError(f"timeouts must be positive, got {timeout!r}")
        mistakes = sum(1 for g in gaps if g > timeout)
        points.append(TradeoffPoint("timeout", float(timeout), float(timeout), mistakes / hours))
    return points


def phi_tradeoff(
    trace: HeartbeatTrace,
    thresholds: Sequence[float],
    warmup: float = 60.0,
    **detector_options,
) -> list[TradeoffPoint]:
    """Score phi accrual thresholds on ``trace``; ``detector_options`` go to
    :class:`PhiAccrualDetector` (window_size, min_std_dev, distribution, ...).
    ``first_heartbeat_estimate`` defaults to the trace's interval."""
    thresholds = [float(t) for t in thresholds]
    detector_options.setdefault("first_heartbeat_estimate", trace.interval)
    detector = PhiAccrualDetector(threshold=max(thresholds), **detector_options)
    scored, hours = _scored_gaps(trace, warmup)
    a = trace.arrivals
    is_scored = bytearray(len(a))
    for i in scored:
        is_scored[i] = 1
    total_wait = [0.0] * len(thresholds)
    mistakes = [0] * len(thresholds)
    for i, arrival in enumerate(a):
        detector.heartbeat("node", arrival)
        if not is_scored[i]:
            continue
        gap = a[i + 1] - arrival
        for k, threshold in enumerate(thresholds):
            wait = detector.time_to_suspicion("node", threshold)
            total_wait[k] += wait
            if gap > wait:
                mistakes[k] += 1
    return [
        TradeoffPoint("phi", t, total_wait[k] / len(scored), mistakes[k] / hours)
        for k, t in enumerate(thresholds)
    ]
