"""``RecoveryManager``: the chapter's class, working — failure handlers driven by a detector.

The chapter's manager keeps a table of handlers per failure type, but nothing ever calls
it, an event without a handler vanishes silently, and ``recover_state`` adopts the first
state any node returns.  This one:

- is **driven by a failure detector** (any object with ``suspected(now)``, e.g.
  :class:`~course_lib.detect.FailureDetector` or
  :class:`~course_lib.detect.PhiAccrualDetector`): ``poll(now)`` turns a node's change
  from trusted to suspected into one ``NODE_CRASHED`` event, and back into one
  ``NODE_RECOVERED`` event (edge-triggered: a node suspected for ten polls is handled
  once); ``run(interval, stop)`` polls on the asyncio loop;
- records every event in ``history`` as a :class:`RecoveryRecord` — handled, unhandled
  (no handler registered) or failed (the handler raised; the error is kept and the
  manager goes on with the next event);
- ``recover_state`` asks every reachable peer and keeps the **newest** snapshot (highest
  ``(epoch, seq)``), not the first to answer.

Handlers may be plain functions or coroutine functions; they get the failed node's id.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from dataclasses import dataclass
from typing import Awaitable, Callable, Iterable, Optional

from .records import Snapshot, finite_number

NODE_CRASHED = "node_crashed"
NODE_RECOVERED = "node_recovered"


@dataclass(frozen=True)
class RecoveryRecord:
    time: float
    node: str
    event_type: str
    handled: bool
    error: Optional[str] = None


class RecoveryManager:
    """Recovery run by ``node_id`` for the members ``nodes`` (see the module docstring).

    ``fetch_state(node)`` (optional, may be async) returns a peer's :class:`Snapshot`
    or None; ``recover_state`` uses it.
    """

    def __init__(self, node_id: str, nodes: Iterable[str], detector=None,
                 fetch_state: Optional[Callable[[str], Awaitable[Optional[Snapshot]]]] = None):
        self.nodes = tuple(nodes)
        if len(set(self.nodes)) != len(self.nodes) or not all(isinstance(n, str) and n for n in self.nodes):
            raise ValueError(f"nodes must be distinct non-empty strings, not {self.nodes!r}")
        if node_id not in self.nodes:
            raise ValueError(f"node_id {node_id!r} is not one of the nodes {self.nodes!r}")
        if detector is not None and not callable(getattr(detector, "suspected", None)):
            raise ValueError(f"detector must have a suspected(now) method, not {detector!r}")
        self.node_id = node_id
        self.detector = detector
        self.fetch_state = fetch_state
        self.handlers: dict[str, Callable] = {}
        self.failed: set[str] = set()
        self.history: list[RecoveryRecord] = []
        self.state: dict = {}
        self.recovered_from: Optional[Snapshot] = None

    def register_handler(self, event_type: str, handler: Callable) -> None:
        """Call ``handler(node)`` for every ``event_type`` event (replacing any earlier one)."""
        if not isinstance(event_type, str) or not event_type:
            raise ValueError(f"event_type must be a non-empty string, not {event_type!r}")
        if not callable(handler):
            raise ValueError(f"handler for {event_type!r} must be callable, not {handler!r}")
        self.handlers[event_type] = handler

    async def handle_failure(self, failed_node: str, event_type: str,
                             now: Optional[float] = None) -> RecoveryRecord:
        """Run the handler for ``event_type`` on ``failed_node``; the record of it."""
        if failed_node not in self.nodes or failed_node == self.node_id:
            raise ValueError(f"failed_node must be another member of {self.nodes!r}, not {failed_node!r}")
        now = time.monotonic() if now is None else now
        handler = self.handlers.get(event_type)
        if handler is None:
            record = RecoveryRecord(now, failed_node, event_type, False,
                                    f"no handler registered for {event_type!r}")
        else:
            try:
                result = handler(failed_node)
                if inspect.isawaitable(result):
                    await result
                record = RecoveryRecord(now, failed_node, event_type, True)
            except Exception as error:  # recorded: one failing handler must not stop recovery
                record = RecoveryRecord(now, failed_node, event_type, False, repr(error))
        self.history.append(record)
        return record

    async def poll(self, now: Optional[float] = None) -> list[RecoveryRecord]:
        """Compare the detector's suspicions with the nodes handled as failed; handle
        each change once.  Returns the records of this poll."""
        if self.detector is None:
            raise ValueError("poll needs a detector: RecoveryManager(..., detector=...)")
        now = time.monotonic() if now is None else now
        suspected = set(self.detector.suspected(now)) - {self.node_id}
        records = []
        for node in sorted(suspected - self.failed):
            self.failed.add(node)
            records.append(await self.handle_failure(node, NODE_CRASHED, now))
        for node in sorted(self.failed - suspected):
            self.failed.discard(node)
            records.append(await self.handle_failure(node, NODE_RECOVERED, now))
        return records

    async def run(self, interval: float, stop: asyncio.Event) -> None:
        """Poll every ``interval`` seconds until ``stop`` is set (a task on the loop)."""
        interval = finite_number("interval", interval)
        while not stop.is_set():
            await self.poll()
            try:
                await asyncio.wait_for(stop.wait(), interval)
            except asyncio.TimeoutError:
                pass

    async def recover_state(self) -> bool:
        """Adopt the newest snapshot among the peers not known to be failed."""
        if self.fetch_state is None:
            raise ValueError("recover_state needs fetch_state: RecoveryManager(..., fetch_state=...)")
        best: Optional[Snapshot] = None
        for node in self.nodes:
            if node == self.node_id or node in self.failed:
                continue
            snapshot = self.fetch_state(node)
            if inspect.isawaitable(snapshot):
                snapshot = await snapshot
            if snapshot is not None and (best is None or (snapshot.epoch, snapshot.seq) > (best.epoch, best.seq)):
                best = snapshot
        if best is None:
            return False
        self.recovered_from = best
        self.state = best.state()
        return True
