"""Monitoring (exercise 4, 創建監控系統): a simulated cluster to watch, and tools.

- :func:`simulate_cluster` -- a seeded run of ``course_lib.sim`` servers emitting
  heartbeats, request samples, resource gauges and log lines, with incidents (crash,
  slow node, error burst, disk filling) at known times; returns :class:`Telemetry`.
- ``records`` -- the emitted record types and the log line format; ``contracts`` -- the
  types the exercise's classes return (:class:`Health`, :class:`WindowStats`,
  :class:`AlertRule`, :class:`AlertEvent`).
- :func:`parse_exposition` -- a small Prometheus text-format parser;
  :class:`MetricsEndpoint` / :func:`scrape` -- serve and scrape metrics of a real process.
- :func:`telemetry_figure` -- a plotly overview of a run with its incidents.
- :class:`Dashboard` -- the same cluster run live, step by step, with faults injected
  as it runs: windowed percentiles, node health, alert rules (:class:`LiveRule`) and
  log analysis; the model behind ``course_lib.viz.monitor_widget``.
"""

from .cluster import GAUGE_NAMES, MONITOR, Telemetry, default_incidents, simulate_cluster
from .contracts import AlertEvent, AlertRule, AlertStatus, Health, WindowStats
from .dashboard import (DEFAULT_RULES, FAULT_DEFAULTS, METRICS, Action, AlertState, Dashboard,
                        LiveRule, LogSummary, NodeView, RuleState, message_template)
from .endpoint import MetricsEndpoint, scrape
from .exposition import Exposition, Sample, parse_exposition
from .records import (EPOCH, LEVELS, GaugeSample, Heartbeat, Incident, IncidentKind, LogRecord,
                      RequestSample)


def __getattr__(name):
    # plotly is imported on first use only
    if name == "telemetry_figure":
        from .plots import telemetry_figure

        return telemetry_figure
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "simulate_cluster", "default_incidents", "Telemetry", "GAUGE_NAMES", "MONITOR",
    "Heartbeat", "RequestSample", "GaugeSample", "LogRecord", "Incident", "IncidentKind",
    "EPOCH", "LEVELS", "Health", "WindowStats", "AlertRule", "AlertEvent", "AlertStatus",
    "parse_exposition", "Exposition", "Sample", "MetricsEndpoint", "scrape",
    "telemetry_figure", "Dashboard", "LiveRule", "AlertState", "RuleState", "NodeView",
    "LogSummary", "Action", "METRICS", "DEFAULT_RULES", "FAULT_DEFAULTS", "message_template",
]
