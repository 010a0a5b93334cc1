"""Simulated heartbeat senders on a virtual clock, seeded.

Same model as the real processes (``heartbeat.run_sender``): each node ticks every
``interval`` seconds (phases staggered at random), each heartbeat arrives
``delay + |N(0, jitter)|`` after its tick, a paused node skips its ticks and sends
at once when resumed, a killed node sends nothing, a restarted node is a new
incarnation.  Heartbeats already in flight when a node is paused or killed still
arrive (they left the process); those of an old incarnation are dropped at restart.

Deterministic: the same seed and the same calls give the same arrivals, however
``advance`` is chopped up (events are processed in (time, order) sequence and each
random draw belongs to one tick).
"""

from __future__ import annotations

import heapq
import random
from typing import Optional

from .cluster import HeartbeatCluster
from .heartbeat import check_seconds
from .phi import PhiAccrualDetector


class SimulatedCluster(HeartbeatCluster):
    """Heartbeat senders ``nodes`` simulated on a virtual clock starting at ``start``."""

    kind = "simulated"

    def __init__(
        self,
        nodes=("a", "b", "c"),
        interval: float = 0.1,
        jitter: float = 0.0,
        delay: float = 0.0,
        seed: int = 0,
        detector: Optional[PhiAccrualDetector] = None,
        start: float = 0.0,
    ) -> None:
        super().__init__(nodes, interval, jitter, delay, detector)
        self._rng = random.Random(seed)
        self._now = float(start)
        self._next_tick: dict[str, Optional[float]] = {
            n: self._now + self._rng.uniform(0.0, self.interval) for n in self.nodes}
        self._incarnation = {n: 0 for n in self.nodes}
        self._in_flight: list[tuple[float, int, str, int]] = []
        self._order = 0

    def now(self) -> float:
        return self._now

    def advance(self, dt: float) -> None:
        """Run the senders and the network for ``dt`` virtual seconds."""
        dt = check_seconds("dt", dt)
        if self.closed:
            raise ValueError("the cluster is closed")
        target = self._now + dt
        with self.lock:
            while True:
                node, tick = None, target
                for n in self.nodes:
                    t = self._next_tick[n]
                    if t is not None and t <= tick and (node is None or t < tick):
                        node, tick = n, t
                flight = self._in_flight[0][0] if self._in_flight else None
                if flight is not None and flight <= tick:
                    arrival, _, n, incarnation = heapq.heappop(self._in_flight)
                    self._now = arrival
                    if incarnation == self._incarnation[n]:
                        self.detector.heartbeat(n, arrival)
                        self._count[n] += 1
                    continue
                if node is None:
                    break
                self._now = tick
                arrival = tick + self._delay[node] + abs(self._rng.gauss(0.0, self._jitter[node]))
                heapq.heappush(self._in_flight, (arrival, self._order, node, self._incarnation[node]))
                self._order += 1
                self._next_tick[node] = tick + self.interval
            self._now = target

    def _kill(self, node: str) -> None:
        self._next_tick[node] = None

    def _pause(self, node: str) -> None:
        self._next_tick[node] = None

    def _resume(self, node: str) -> None:
        self._next_tick[node] = self._now

    def _restart(self, node: str) -> None:
        self._incarnation[node] += 1
        self._next_tick[node] = self._now

    def _set(self, node: str, jitter: Optional[float] = None, delay: Optional[float] = None) -> None:
        pass

    def close(self) -> None:
        self.closed = True

