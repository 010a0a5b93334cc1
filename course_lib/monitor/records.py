"""What a monitored cluster emits, and the incidents injected into it.

Times are seconds since the start of the run (virtual time).  Log lines carry wall-clock
timestamps: ``EPOCH`` plus the run time, in UTC with millisecond precision.

Log line format (one record per line; other lines, such as indented traceback
continuations, are not records)::

    2025-01-01T00:02:03.456Z ERROR n3 r000123 call from n1 failed: database connection refused
    <timestamp>              <level> <node> <request id, or -> <message>
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Optional

EPOCH = datetime(2025, 1, 1, tzinfo=timezone.utc)
LEVELS = ("DEBUG", "INFO", "WARN", "ERROR")
NO_REQUEST = "-"


class IncidentKind(enum.Enum):
    """What goes wrong.  ``Incident.magnitude`` means, per kind: CRASH -- unused (0);
    SLOW -- the latency multiplier; ERROR_BURST -- the probability that a request
    served by the node fails; DISK_FILL -- the disk usage (percent) reached half-way
    through the incident and kept until ``end``."""

    CRASH = "crash"
    SLOW = "slow"
    ERROR_BURST = "error_burst"
    DISK_FILL = "disk_fill"


@dataclass(frozen=True)
class Incident:
    """``kind`` on ``node`` during ``[start, end)`` seconds.  A crashed node restarts at
    ``end``; a filling disk is cleaned up at ``end`` (back to its usual level)."""

    kind: IncidentKind
    node: str
    start: float
    end: float
    magnitude: float = 0.0

    def active(self, t: float) -> bool:
        return self.start <= t < self.end


@dataclass(frozen=True)
class Heartbeat:
    """A heartbeat from ``node`` (its ``seq``-th), sent at ``sent`` and received by the
    monitor at ``time`` (seconds)."""

    time: float
    node: str
    seq: int
    sent: float


@dataclass(frozen=True)
class RequestSample:
    """A request that entered the cluster at ``node`` and completed at ``time`` after
    ``latency_ms``; ``ok`` is False when it failed (status 5xx)."""

    time: float
    node: str
    request_id: str
    latency_ms: float
    ok: bool


@dataclass(frozen=True)
class GaugeSample:
    """A resource gauge read on ``node`` at ``time``: ``name`` is one of
    ``cpu_percent``, ``memory_percent``, ``disk_used_percent``."""

    time: float
    node: str
    name: str
    value: float


@dataclass(frozen=True)
class LogRecord:
    """One parsed log line.  ``time`` is seconds since ``EPOCH`` (millisecond
    precision); ``request_id`` is None when the line names no request (``-``)."""

    time: float
    level: str
    node: str
    request_id: Optional[str]
    message: str

    def line(self) -> str:
        """The record as a log line (the inverse of parsing)."""
        stamp = (EPOCH + timedelta(milliseconds=round(self.time * 1000))).strftime("%Y-%m-%dT%H:%M:%S.%f")
        return f"{stamp[:-3]}Z {self.level} {self.node} {self.request_id or NO_REQUEST} {self.message}"
