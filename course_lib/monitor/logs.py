"""Reading the log format of :mod:`course_lib.monitor.records` (used to build the ground
truth; exercise 4 asks the learner to write its own parser)."""

from __future__ import annotations

from datetime import datetime
from typing import Optional

from .records import EPOCH, LEVELS, NO_REQUEST, LogRecord


def parse_line(line: str) -> Optional[LogRecord]:
    """The record on ``line``, or None if the line is not a record."""
    parts = line.rstrip("\n").split(" ", 4)
    if len(parts) != 5 or parts[1] not in LEVELS or not parts[2]:
        return None
    try:
        stamp = datetime.fromisoformat(parts[0])
    except ValueError:
        return None
    if stamp.tzinfo is None:
        return None
    time = round((stamp - EPOCH).total_seconds(), 3)
    rid = None if parts[3] == NO_REQUEST else parts[3]
    return LogRecord(time, parts[1], parts[2], rid, parts[4])
