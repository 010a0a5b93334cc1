"""The virtual clock and its event heap.

Events are ordered by ``(time, seq)``: ``seq`` is a global counter, so two events at the
same virtual time run in the order they were scheduled and a run never depends on
comparing callbacks.  Time is in milliseconds (floats allowed) and only moves forward.
"""

from __future__ import annotations

import gc
import heapq
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Optional

# While events run, the young generation of CPython's collector fills with short-lived
# messages and each collection also walks the growing trace: about 40 % of a run's time
# at the default trace level.  Collecting less often while the clock runs (and normally
# again afterwards) keeps memory bounded and removes most of that cost.
_RUN_GC_THRESHOLD = 20_000


@contextmanager
def _fewer_collections() -> Iterator[None]:
    saved = gc.get_threshold()
    if saved[0] >= _RUN_GC_THRESHOLD or saved[0] == 0:  # already raised (nested), or disabled
        yield
        return
    gc.set_threshold(_RUN_GC_THRESHOLD, *saved[1:])
    try:
        yield
    finally:
        gc.set_threshold(*saved)


class Scheduler:
    """A discrete-event scheduler: ``schedule`` callbacks, ``run_until`` a time."""

    __slots__ = ("now", "seq", "_heap", "events_run")

    def __init__(self) -> None:
        self.now: float = 0.0
        self.seq: int = 0
        self._heap: list = []
        self.events_run: int = 0

    def schedule(self, delay: float, fn: Callable, *args: Any) -> None:
        """Run ``fn(*args)`` ``delay`` ms from now (``delay >= 0``)."""
        if delay < 0:
            raise ValueError(f"delay must be >= 0 ms, got {delay!r}")
        self.seq += 1
        heapq.heappush(self._heap, (self.now + delay, self.seq, fn, args))

    def schedule_at(self, time: float, fn: Callable, *args: Any) -> None:
        """Run ``fn(*args)`` at absolute virtual time ``time`` (not in the past)."""
        if time < self.now:
            raise ValueError(f"cannot schedule at {time} ms: the clock is at {self.now} ms")
        self.seq += 1
        heapq.heappush(self._heap, (time, self.seq, fn, args))

    def next_time(self) -> Optional[float]:
        return self._heap[0][0] if self._heap else None

    def pending(self) -> int:
        return len(self._heap)

    def step(self) -> bool:
        """Run the next event; False when none is left."""
        if not self._heap:
            return False
        time, _seq, fn, args = heapq.heappop(self._heap)
        self.now = time
        self.events_run += 1
        fn(*args)
        return True

    def run_until(self, time: float, stop: Optional[Callable[[], bool]] = None) -> bool:
        """Run every event up to and including ``time``; then set the clock to ``time``.

        With ``stop``, check it after each event and return True as soon as it holds
        (the clock then stays at that event's time).  Returns False otherwise.
        """
        if time < self.now:
            raise ValueError(f"cannot run back to {time} ms: the clock is at {self.now} ms")
        with _fewer_collections():
            return self._run_until(time, stop)

    def _run_until(self, time: float, stop: Optional[Callable[[], bool]]) -> bool:
        heap = self._heap
        pop = heapq.heappop
        if stop is None:
            while heap and heap[0][0] <= time:
                t, _seq, fn, args = pop(heap)
                self.now = t
                self.events_run += 1
                fn(*args)
            self.now = time
            return False
        while heap and heap[0][0] <= time:
            t, _seq, fn, args = pop(heap)
            self.now = t
            self.events_run += 1
            fn(*args)
            if stop():
                return True
        self.now = time
        return False
