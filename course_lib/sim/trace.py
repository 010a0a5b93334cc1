"""The trace: every event of a simulated run, in order.

Recording must be cheap (a run delivers >100k messages per second), so the trace
stores plain tuples ``(time, kind, node, details)`` — or, for the two hottest kinds,
``(time, kind, node, peer, msg)`` standing for details ``(peer, msg)`` — and builds
:class:`TraceEvent` objects only when read.  ``details`` must be immutable (tuples, frozen dataclasses),
so the record cannot change after the fact.

Detail levels: ``"full"`` records ticks too; ``"messages"`` (the default) every
send / deliver / drop / fault / role change / client call; ``"summary"`` only faults,
role changes and client calls.  The digest also covers the scheduler's event count and
clock, so a run at a low level is still pinned down.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Iterator, Optional

LEVELS = ("summary", "messages", "full")


@dataclass(frozen=True, slots=True)
class TraceEvent:
    time: float
    kind: str
    node: Optional[str]
    details: Any = ()


def _event(r: tuple) -> TraceEvent:
    if len(r) == 5:
        return TraceEvent(r[0], r[1], r[2], (r[3], r[4]))
    return TraceEvent(*r)


class Trace:
    """An append-only list of events with a canonical digest."""

    __slots__ = ("_raw", "level", "messages", "ticks", "_events_cache")

    def __init__(self, level: str = "messages") -> None:
        self._raw: list[tuple] = []
        self._events_cache: list[TraceEvent] = []
        self.set_level(level)

    def set_level(self, level: str) -> None:
        if level not in LEVELS:
            raise ValueError(f"unknown trace level {level!r}; use one of {LEVELS}")
        self.level = level
        #: record message events (send / deliver / drop / duplicate)
        self.messages = level != "summary"
        #: record ticks
        self.ticks = level == "full"

    def record(self, time: float, kind: str, node: Optional[str], details: Any = ()) -> None:
        self._raw.append((time, kind, node, details))

    @property
    def raw(self) -> list:
        """The underlying tuples (no copy): for fast scans."""
        return self._raw

    @property
    def events(self) -> list[TraceEvent]:
        cache = self._events_cache
        raw = self._raw
        if len(cache) < len(raw):
            cache.extend(_event(r) for r in raw[len(cache):])
        return cache

    def __len__(self) -> int:
        return len(self._raw)

    def __iter__(self) -> Iterator[TraceEvent]:
        return iter(self.events)

    def __getitem__(self, i):
        return self.events[i]

    def of_kind(self, *kinds: str) -> list[TraceEvent]:
        return [_event(r) for r in self._raw if r[1] in kinds]

    def digest(self, extra: str = "") -> str:
        """sha256 over the canonical repr of every event (and ``extra``)."""
        h = hashlib.sha256()
        for r in self._raw:
            if len(r) == 5:
                r = (r[0], r[1], r[2], (r[3], r[4]))
            h.update(repr(r).encode())
            h.update(b"\n")
        h.update(extra.encode())
        return h.hexdigest()
