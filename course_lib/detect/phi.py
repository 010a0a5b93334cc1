"""The phi accrual failure detector (Hayashibara, Defago, Yared, Katayama, SRDS 2004).

Instead of a yes/no verdict after a fixed timeout, the detector outputs a suspicion
level that keeps growing while a node is silent::

    phi(t) = -log10 P(the next heartbeat arrives later than t after the last one)

where the probability comes from a distribution fitted to the node's recent
inter-arrival times.  phi = 1 means "a 10% chance we are wrong if we suspect it now",
phi = 8 means 1e-8.  The application picks the threshold; the detector only reports.

The chapter's version took ``-log10`` of the *CDF* (the probability that the heartbeat
has arrived by now), which falls towards 0 as silence grows: a dead node was never
suspected.  This one uses the tail, in log space, so phi is finite for any silence.

Cost: each node's intervals live in a ring buffer with exact running sums (integer
nanoseconds, as Akka's ``HeartbeatHistory`` keeps ``intervalSum`` and
``squaredIntervalSum`` in integer milliseconds), so ``heartbeat`` and ``phi`` are O(1)
whatever the window, and the sums never drift.

Time: every method takes ``now`` in seconds (default ``time.monotonic()``) so a
simulation or a test can inject it; per node, heartbeat times must not go backwards.
The detector is not thread-safe: a receiver thread and a reader must share a lock.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Hashable, Optional

from .distributions import DISTRIBUTIONS

_NS_PER_S = 1_000_000_000


@dataclass(frozen=True)
class IntervalStats:
    """Statistics of the heartbeat intervals currently in a node's window (seconds).

    ``std_dev`` is the population standard deviation of the window, before the
    detector's ``min_std_dev`` floor is applied.
    """

    count: int
    mean: float
    std_dev: float


class _History:
    """One node's window: a ring of intervals in integer ns and their exact sums.

    ``mean`` and ``std`` cache the *effective* parameters phi uses: the window mean
    plus ``acceptable_pause``, and the window std floored at ``min_std_dev``.
    """

    __slots__ = ("last", "ring", "oldest", "total", "total_sq", "mean", "std")

    def __init__(self, last: float) -> None:
        self.last = last
        self.ring: list[int] = []
        self.oldest = 0
        self.total = 0
        self.total_sq = 0
        self.mean = 0.0
        self.std = 0.0


def _check_positive(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name} must be a number, got {value!r}")
    if not (value > 0 and math.isfinite(value)):
        raise ValueError(f"{name} must be positive and finite, got {value!r}")
    return float(value)


class PhiAccrualDetector:
    """Phi accrual failure detector over any number of nodes.

    Parameters (times in seconds):

    - ``threshold``: a node is suspected when ``phi >= threshold`` (Akka and
      Cassandra default to 8).
    - ``window_size``: how many recent intervals per node the distribution is fitted to.
    - ``min_std_dev``: floor on the fitted standard deviation, so a very regular
      sender does not make a tiny delay look like a failure (Akka's
      ``min-std-deviation``).
    - ``acceptable_pause``: added to the mean interval, so a silence of that length
      is tolerated on top of the usual interval (Akka's ``acceptable-heartbeat-pause``).
    - ``first_heartbeat_estimate``: expected interval before any is measured; the
      window starts with ``estimate -+ estimate/4``, as Akka bootstraps its history.
    - ``distribution``: ``"normal"`` (Hayashibara et al.), ``"logistic"`` (Akka's
      approximation of the normal) or ``"exponential"`` (Cassandra).

    A node is monitored from its first heartbeat; before that its phi is 0 and it is
    available (Akka's convention).
    """

    def __init__(
        self,
        threshold: float = 8.0,
        window_size: int = 1000,
        min_std_dev: float = 0.1,
        acceptable_pause: float = 0.0,
        first_heartbeat_estimate: float = 1.0,
        distribution: str = "normal",
    ) -> None:
        self.threshold = threshold
        if isinstance(window_size, bool) or not isinstance(window_size, int) or window_size < 1:
            raise ValueError(f"window_size must be an integer >= 1, got {window_size!r}")
        self._window_size = window_size
        self._min_std_dev = _check_positive("min_std_dev", min_std_dev)
        if isinstance(acceptable_pause, bool) or not isinstance(acceptable_pause, (int, float)) \
                or not (acceptable_pause >= 0 and math.isfinite(acceptable_pause)):
            raise ValueError(
                f"acceptable_pause must be a finite number >= 0, got {acceptable_pause!r}")
        self._acceptable_pause = float(acceptable_pause)
        self._first_heartbeat_estimate = _check_positive(
            "first_heartbeat_estimate", first_heartbeat_estimate)
        if distribution not in DISTRIBUTIONS:
            raise ValueError(
                f"distribution must be one of {sorted(DISTRIBUTIONS)}, got {distribution!r}")
        self._distribution = distribution
        self._dist = DISTRIBUTIONS[distribution]
        self._phi_of = self._dist.phi
        self._histories: dict[Hashable, _History] = {}

    # The window parameters are fixed at construction: each window caches its
    # effective mean and std, which depend on them.
    window_size = property(lambda self: self._window_size, doc="Intervals kept per node.")
    min_std_dev = property(lambda self: self._min_std_dev, doc="Floor on the fitted std (s).")
    acceptable_pause = property(lambda self: self._acceptable_pause,
                                doc="Seconds added to the mean interval.")
    first_heartbeat_estimate = property(lambda self: self._first_heartbeat_estimate,
                                        doc="Expected interval before any is measured (s).")
    distribution = property(lambda self: self._distribution,
                            doc='"normal", "logistic" or "exponential".')

    @property
    def threshold(self) -> float:
        """Suspicion threshold on phi; settable (e.g. from a slider)."""
        return self._threshold

    @threshold.setter
    def threshold(self, value: float) -> None:
        self._threshold = _check_positive("threshold", value)

    @property
    def nodes(self) -> tuple:
        """Monitored nodes (those that sent at least one heartbeat), in first-seen order."""
        return tuple(self._histories)

    def heartbeat(self, node: Hashable, now: Optional[float] = None) -> None:
        """Record a heartbeat from ``node`` arriving at ``now``. O(1).

        Raises ``ValueError`` if ``now`` is not finite or is earlier than this node's
        previous heartbeat.
        """
        if now is None:
            now = time.monotonic()
        h = self._histories.get(node)
        if h is None:
            self._start(node, now)
            return
        interval = now - h.last
        if not 0.0 <= interval < math.inf:
            raise ValueError(
                f"now={now!r} for node {node!r} is not a finite time at or after its "
                f"previous heartbeat at {h.last!r}")
        h.last = now
        x = int(interval * 1e9 + 0.5)  # nanoseconds, rounded (interval >= 0)
        ring = h.ring
        n = len(ring)
        if n < self._window_size:
            ring.append(x)
            n += 1
            total = h.total = h.total + x
            total_sq = h.total_sq = h.total_sq + x * x
        else:
            i = h.oldest
            old = ring[i]
            ring[i] = x
            total = h.total = h.total + (x - old)
            total_sq = h.total_sq = h.total_sq + (x - old) * (x + old)
            i += 1
            h.oldest = i if i < n else 0
        self._refresh(h, n, total, total_sq)

    def _start(self, node: Hashable, now: float) -> None:
        """Monitor ``node`` from ``now``: its window starts as Akka bootstraps it,
        with ``estimate - estimate/4`` and ``estimate + estimate/4``."""
        if not math.isfinite(now):
            raise ValueError(f"now must be a finite time in seconds, got {now!r}")
        h = self._histories[node] = _History(now)
        estimate = self._first_heartbeat_estimate
        bootstrap = [round((estimate - estimate / 4.0) * _NS_PER_S),
                     round((estimate + estimate / 4.0) * _NS_PER_S)]
        h.ring = bootstrap[-self._window_size:]
        h.total = sum(h.ring)
        h.total_sq = sum(x * x for x in h.ring)
        self._refresh(h, len(h.ring), h.total, h.total_sq)

    def _refresh(self, h: _History, n: int, total: int, total_sq: int) -> None:
        """Cache the effective mean (+ acceptable_pause) and std (floored) of a window
        of ``n`` intervals with exact sums ``total`` and ``total_sq`` (ns, ns^2)."""
        n_ns = n * 1e9
        h.mean = total / n_ns + self._acceptable_pause
        # n^2 * variance, exact in integers: n * sum(x^2) - (sum x)^2 >= 0.
        std = math.sqrt(n * total_sq - total * total) / n_ns
        h.std = std if std > self._min_std_dev else self._min_std_dev

    def phi(self, node: Hashable, now: Optional[float] = None) -> float:
        """Suspicion level of ``node`` at ``now``: -log10 of the probability that a
        heartbeat sent by a live node would still be missing. O(1), finite, and
        non-decreasing in ``now`` between heartbeats; 0.0 for an unmonitored node.
        """
        h = self._histories.get(node)
        if h is None:
            return 0.0
        if now is None:
            now = time.monotonic()
        elapsed = now - h.last
        if not 0.0 <= elapsed < math.inf:
            raise ValueError(
                f"now={now!r} for node {node!r} is not a finite time at or after its "
                f"last heartbeat at {h.last!r}")
        return self._phi_of(elapsed, h.mean, h.std)

    def is_available(self, node: Hashable, now: Optional[float] = None) -> bool:
        """True while ``phi(node, now) < threshold``."""
        return self.phi(node, now) < self._threshold

    def suspected(self, now: Optional[float] = None) -> frozenset:
        """Monitored nodes whose phi at ``now`` is at or above the threshold."""
        if now is None:
            now = time.monotonic()
        return frozenset(n for n in self._histories if self.phi(n, now) >= self._threshold)

    def last_heartbeat(self, node: Hashable) -> float:
        """Arrival time of ``node``'s last heartbeat; ``ValueError`` if unmonitored."""
        return self._history(node).last

    def time_to_suspicion(self, node: Hashable, threshold: Optional[float] = None) -> float:
        """Silence (seconds after the last heartbeat) at which phi reaches ``threshold``
        (default: the detector's), given the current window. O(1)."""
        h = self._history(node)
        level = self._threshold if threshold is None else _check_positive("threshold", threshold)
        return self._dist.elapsed_at(level, h.mean, h.std)

    def interval_stats(self, node: Hashable) -> IntervalStats:
        """Count, mean and standard deviation of ``node``'s window. O(1)."""
        h = self._history(node)
        n = len(h.ring)
        n_ns = n * _NS_PER_S
        return IntervalStats(
            n, h.total / n_ns, math.sqrt(n * h.total_sq - h.total * h.total) / n_ns)

    def intervals(self, node: Hashable) -> tuple[float, ...]:
        """The intervals in ``node``'s window, oldest first, in seconds.  O(window):
        for plots and inspection, not for the hot path."""
        h = self._history(node)
        ordered = h.ring[h.oldest:] + h.ring[:h.oldest]
        return tuple(x / _NS_PER_S for x in ordered)

    def remove(self, node: Hashable) -> None:
        """Forget ``node`` (e.g. a new incarnation after a restart); no-op if unknown."""
        self._histories.pop(node, None)

    def _history(self, node: Hashable) -> _History:
        h = self._histories.get(node)
        if h is None:
            raise ValueError(f"node {node!r} is not monitored: no heartbeat received yet")
        return h
