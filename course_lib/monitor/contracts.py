"""Types that the exercise-4 classes return: the vocabulary of the monitoring system."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Optional


class Health(enum.Enum):
    """A node as the monitor sees it."""

    UP = "up"
    SUSPECTED = "suspected"
    DOWN = "down"


@dataclass(frozen=True)
class WindowStats:
    """Latency statistics of one node over a sliding window.  Percentiles in ms (None
    when ``count == 0``); ``throughput`` in requests per second of window."""

    count: int
    throughput: float
    p50: Optional[float]
    p95: Optional[float]
    p99: Optional[float]


@dataclass(frozen=True)
class AlertRule:
    """Fire ``name`` for a node when metric ``metric`` stays above ``threshold`` for at
    least ``for_s`` seconds; resolve when it falls below ``clear_below`` (hysteresis:
    ``clear_below <= threshold``)."""

    name: str
    metric: str
    threshold: float
    for_s: float
    clear_below: float

    def __post_init__(self) -> None:
        if self.for_s < 0:
            raise ValueError(f"AlertRule {self.name!r}: for_s must be >= 0, got {self.for_s!r}")
        if self.clear_below > self.threshold:
            raise ValueError(f"AlertRule {self.name!r}: clear_below ({self.clear_below}) must be "
                             f"<= threshold ({self.threshold})")


class AlertStatus(enum.Enum):
    FIRING = "firing"
    RESOLVED = "resolved"


@dataclass(frozen=True)
class AlertEvent:
    """A notification: alert ``rule`` for ``node`` became ``status`` at ``time``."""

    rule: str
    node: str
    status: AlertStatus
    time: float
