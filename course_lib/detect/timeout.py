"""The chapter's heartbeat-timeout failure detector, made to work.

A node is suspected when no heartbeat from it arrived in the last ``timeout``
seconds.  Differences from the chapter's ``FailureDetector``:

- time is injected (``now``, default ``time.monotonic()``) instead of read from the
  wall clock, which can jump (NTP) and fake or hide a failure;
- a node never heard from is given ``timeout`` from the start of monitoring, instead
  of being "last heard at time 0" and so suspected at once;
- suspicion is a function of time (no stored set that is stale between checks);
- heartbeats from nodes outside the membership and clocks going backwards raise
  ``ValueError``.
"""

from __future__ import annotations

import math
import time
from typing import Hashable, Iterable, Optional


class FailureDetector:
    """Fixed-timeout failure detector run by ``node_id`` over the members ``nodes``.

    ``suspected(now)`` holds every other member whose last heartbeat (or, if none
    arrived yet, the start of monitoring) is more than ``timeout`` seconds before
    ``now``.  The node never suspects itself.
    """

    def __init__(
        self,
        node_id: Hashable,
        nodes: Iterable[Hashable],
        timeout: float = 1.0,
        start: Optional[float] = None,
    ) -> None:
        self.node_id = node_id
        self.nodes = tuple(nodes)
        if len(set(self.nodes)) != len(self.nodes):
            raise ValueError(f"nodes must be distinct, got {self.nodes!r}")
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) \
                or not (timeout > 0 and math.isfinite(timeout)):
            raise ValueError(f"timeout must be a positive finite number of seconds, got {timeout!r}")
        self.timeout = float(timeout)
        self.start = time.monotonic() if start is None else self._check_time(start)
        self._last: dict[Hashable, float] = {}

    @staticmethod
    def _check_time(now: float) -> float:
        if isinstance(now, bool) or not isinstance(now, (int, float)) or not math.isfinite(now):
            raise ValueError(f"now must be a finite time in seconds, got {now!r}")
        return float(now)

    def heartbeat(self, node: Hashable, now: Optional[float] = None) -> None:
        """Record a heartbeat from member ``node`` at ``now``."""
        now = time.monotonic() if now is None else self._check_time(now)
        if node not in self.nodes:
            raise ValueError(f"heartbeat from {node!r}, which is not one of the nodes {self.nodes!r}")
        previous = self._last.get(node, self.start)
        if now < previous:
            raise ValueError(f"now={now!r} is before {node!r}'s previous heartbeat at {previous!r}")
        self._last[node] = now

    def silence(self, node: Hashable, now: Optional[float] = None) -> float:
        """Seconds since ``node``'s last heartbeat (or since the start, if none)."""
        now = time.monotonic() if now is None else self._check_time(now)
        if node not in self.nodes:
            raise ValueError(f"{node!r} is not one of the nodes {self.nodes!r}")
        return now - self._last.get(node, self.start)

    def is_available(self, node: Hashable, now: Optional[float] = None) -> bool:
        """True unless ``node`` is silent for more than ``timeout``."""
        return node == self.node_id or self.silence(node, now) <= self.timeout

    def suspected(self, now: Optional[float] = None) -> frozenset:
        """The members suspected at ``now``."""
        now = time.monotonic() if now is None else self._check_time(now)
        return frozenset(n for n in self.nodes if not self.is_available(n, now))

    def check_nodes(self, now: Optional[float] = None) -> set:
        """The chapter's name for :meth:`suspected` (returns a fresh ``set``)."""
        return set(self.suspected(now))
