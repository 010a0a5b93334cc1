"""``Dashboard``: what a monitoring dashboard computes, over a live seeded cluster.

The model behind :class:`course_lib.viz.monitor_widget.MonitorWidget`, usable (and
tested) without ipywidgets.  It runs the servers of :mod:`course_lib.monitor.cluster`
on the course's simulator *incrementally*: :meth:`Dashboard.step` advances virtual time
by one evaluation interval (``eval_s``, 1 s by default) and then, like a Prometheus
server at each evaluation, turns what the cluster emitted into metrics and evaluates
the alert rules.  Faults are injected at the current time (:meth:`Dashboard.inject`)
and ended early with :meth:`Dashboard.heal`.

Per node and evaluation it computes (``METRICS``):

- ``heartbeat_age_s`` -- seconds since the monitor last heard a heartbeat, and from it
  the node's :class:`~course_lib.monitor.contracts.Health` (UP below ``suspect_after``,
  SUSPECTED below ``down_after``, DOWN after);
- over the sliding window of the last ``window_s`` seconds of completed requests:
  ``p50_ms`` / ``p95_ms`` / ``p99_ms`` (nearest rank), ``mean_ms``, ``throughput_rps``
  and ``error_ratio`` (None when the window holds no request);
- the latest ``cpu_percent`` / ``memory_percent`` / ``disk_used_percent`` gauges (None
  once a gauge is older than ``STALE_AFTER`` gauge intervals: a silent node's last value
  is not its present one);
- ``error_logs`` -- ERROR log lines the node wrote within the window (log analysis:
  the node that *logs* the error is where it happened, not where the request entered).

Alert rules (:class:`LiveRule`) follow Prometheus's alert life cycle, evaluated per
(rule, node) at every step::

    inactive --value > threshold--> pending --held for for_s--> firing (FIRING event)
    pending  --value <= threshold or no data--> inactive (silently)
    firing   --value >= clear_below--> firing (hysteresis: a level below the threshold)
    firing   --value < clear_below (or no data) for keep_firing_for_s--> inactive (RESOLVED)

Prometheus itself has ``for:`` and ``keep_firing_for:`` but no clear level (write it in
PromQL with the ``ALERTS`` series); announcing an alert once, grouping and silencing are
Alertmanager's job -- here :attr:`Dashboard.events` is the list of notifications.

Every change a caller makes is kept as an :class:`Action` with its virtual time, so
:meth:`Dashboard.replay` rebuilds the same run from the seed: same seed and same
actions at the same times -> the same metrics, alerts and events.  Bad arguments and
actions that make no sense (crash a node that is down) raise ``ValueError``.
"""

from __future__ import annotations

import enum
import heapq
import math
import re
from collections import Counter, deque
from dataclasses import dataclass, replace
from typing import Optional

from .cluster import GAUGE_NAMES, _check_number, _Run
from .contracts import AlertEvent, AlertStatus, Health
from .logs import parse_line
from .records import Incident, IncidentKind, LogRecord

METRICS = ("heartbeat_age_s", "p50_ms", "p95_ms", "p99_ms", "mean_ms", "throughput_rps",
           "error_ratio", "cpu_percent", "memory_percent", "disk_used_percent", "error_logs")
STALE_AFTER = 3            # gauge intervals after which a gauge counts as missing
HORIZON_S = 3600.0         # the slow drift of memory and disk is scaled to this run length

# What each fault does by default: (duration in s, magnitude; see IncidentKind)
FAULT_DEFAULTS = {
    IncidentKind.SLOW: (90.0, 4.0),
    IncidentKind.DISK_FILL: (120.0, 98.0),
    IncidentKind.ERROR_BURST: (40.0, 0.5),
    IncidentKind.CRASH: (30.0, 0.0),
}


class AlertState(str, enum.Enum):
    """Where a (rule, node) alert is in Prometheus's life cycle (equal to its value)."""

    INACTIVE = "inactive"
    PENDING = "pending"
    FIRING = "firing"


@dataclass(frozen=True)
class LiveRule:
    """Alert ``name`` for a node while ``metric > threshold`` has held for ``for_s``
    seconds; once firing it holds while ``metric >= clear_below`` (hysteresis) and for
    ``keep_firing_for_s`` seconds after that stops."""

    name: str
    metric: str
    threshold: float
    for_s: float
    clear_below: float
    keep_firing_for_s: float = 0.0

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", self.name):
            raise ValueError(f"a rule name must be an identifier, got {self.name!r}")
        if self.metric not in METRICS:
            raise ValueError(f"rule {self.name}: unknown metric {self.metric!r}; known: {list(METRICS)}")
        for field in ("threshold", "for_s", "clear_below", "keep_firing_for_s"):
            value = getattr(self, field)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
                raise ValueError(f"rule {self.name}: {field} must be a finite number, got {value!r}")
        if self.for_s < 0 or self.keep_firing_for_s < 0:
            raise ValueError(f"rule {self.name}: for_s and keep_firing_for_s must be >= 0, got "
                             f"{self.for_s!r} and {self.keep_firing_for_s!r}")
        if self.clear_below > self.threshold:
            raise ValueError(f"rule {self.name}: clear_below ({self.clear_below:g}) must be <= "
                             f"threshold ({self.threshold:g}), or it would resolve while still "
                             f"above the threshold")

    def describe(self) -> str:
        keep = f", keep firing {self.keep_firing_for_s:g} s" if self.keep_firing_for_s else ""
        return (f"{self.metric} > {self.threshold:g} for {self.for_s:g} s, "
                f"clear below {self.clear_below:g}{keep}")


DEFAULT_RULES = (
    LiveRule("NodeDown", "heartbeat_age_s", threshold=2.5, for_s=2.0, clear_below=2.5),
    LiveRule("HighLatencyP95", "p95_ms", threshold=130.0, for_s=30.0, clear_below=90.0),
    LiveRule("HighErrorRatio", "error_ratio", threshold=0.10, for_s=10.0, clear_below=0.05),
    LiveRule("DiskAlmostFull", "disk_used_percent", threshold=90.0, for_s=30.0, clear_below=85.0),
)


@dataclass(frozen=True)
class RuleState:
    """One (rule, node) alert: ``state`` is an :class:`AlertState`; ``since`` is
    when it became pending (or firing); ``value`` the metric at the last evaluation."""

    rule: str
    node: str
    state: AlertState
    since: Optional[float]
    value: Optional[float]


@dataclass(frozen=True)
class NodeView:
    """A node at one evaluation: its health, incidents and metrics (``METRICS``)."""

    node: str
    health: Health
    faults: tuple[str, ...]
    metrics: dict

    def __getitem__(self, metric: str):
        return self.metrics[metric]


@dataclass(frozen=True)
class LogSummary:
    """Log analysis over the window: ERROR lines per node, and the most frequent WARN
    and ERROR messages as templates (numbers replaced by ``#``) with their counts."""

    errors_by_node: dict
    warnings_by_node: dict
    top: tuple[tuple[str, str, int], ...]          # (level, template, count)


@dataclass(frozen=True)
class Action:
    """A change made to the run at virtual ``time``: ``method(*args)`` of the Dashboard."""

    time: float
    method: str
    args: tuple


_DECIMAL = re.compile(r"\d+\.\d+")
_REQUEST_LINE = re.compile(r"\b(GET|POST|PUT|DELETE) /\S*")


def message_template(message: str) -> str:
    """``message`` as a template to count: measured values (numbers with a decimal
    point) become ``#`` and a request line's path ``/*``, so the lines one kind of event
    writes collapse into one template; names (``n3``) and status codes stay."""
    return _REQUEST_LINE.sub(r"\1 /*", _DECIMAL.sub("#", message))


def _nearest_rank(ordered: list, q: float):
    return ordered[max(1, math.ceil(q / 100 * len(ordered))) - 1]


class _LiveRun(_Run):
    """The cluster of ``simulate_cluster``, with incidents added while it runs."""

    def __init__(self, seed, nodes, heartbeat_interval, gauge_interval, request_rate, fanout):
        super().__init__(seed, nodes, HORIZON_S, (), heartbeat_interval, gauge_interval,
                         request_rate, fanout)
        self.incidents = []

    def add(self, incident: Incident) -> None:
        self.incidents.append(incident)
        if incident.kind is IncidentKind.CRASH:
            self.sim.crash(incident.node)
            self.sim.scheduler.schedule_at(incident.end * 1000, self._end_crash, incident)

    def _end_crash(self, incident: Incident) -> None:
        if incident in self.incidents and not self.sim.is_alive(incident.node):
            self.sim.restart(incident.node)

    def end(self, incident: Incident, now: float) -> Incident:
        ended = replace(incident, end=now)
        self.incidents[self.incidents.index(incident)] = ended
        if incident.kind is IncidentKind.CRASH and not self.sim.is_alive(incident.node):
            self.sim.restart(incident.node)
        return ended


class Dashboard:
    """A live, seeded monitored cluster and what its dashboard shows (module docstring)."""

    def __init__(self, seed: int = 0, *, nodes: int = 5, window_s: float = 60.0,
                 eval_s: float = 1.0, suspect_after: float = 2.5, down_after: float = 5.0,
                 history_s: float = 180.0, rules=DEFAULT_RULES, request_rate: float = 5.0,
                 fanout: float = 0.3, heartbeat_interval: float = 1.0,
                 gauge_interval: float = 5.0) -> None:
        if not isinstance(seed, int) or isinstance(seed, bool):
            raise ValueError(f"seed must be an int, got {seed!r}")
        if not isinstance(nodes, int) or isinstance(nodes, bool) or not 1 <= nodes <= 12:
            raise ValueError(f"nodes must be an int in [1, 12], got {nodes!r}")
        window_s = _check_number("window_s", window_s)
        eval_s = _check_number("eval_s", eval_s)
        if not 0.1 <= eval_s <= 60:
            raise ValueError(f"eval_s must be 0.1 to 60 s, got {eval_s!r}")
        suspect_after = _check_number("suspect_after", suspect_after)
        down_after = _check_number("down_after", down_after)
        if suspect_after > down_after:
            raise ValueError(f"need suspect_after <= down_after, got {suspect_after} > {down_after}")
        history_s = _check_number("history_s", history_s)
        request_rate = _check_number("request_rate", request_rate)
        if request_rate > 50:
            raise ValueError(f"request_rate must be at most 50 per second, got {request_rate!r}")
        rules = tuple(rules)
        if any(not isinstance(r, LiveRule) for r in rules):
            raise ValueError("rules must be LiveRule objects")
        if len({r.name for r in rules}) != len(rules):
            raise ValueError(f"rule names must be distinct, got {[r.name for r in rules]}")
        self.config = dict(seed=seed, nodes=nodes, window_s=window_s, eval_s=eval_s,
                           suspect_after=suspect_after, down_after=down_after,
                           history_s=history_s, rules=rules, request_rate=request_rate,
                           fanout=fanout, heartbeat_interval=heartbeat_interval,
                           gauge_interval=gauge_interval)
        self.seed = seed
        self.nodes = tuple(f"n{i}" for i in range(1, nodes + 1))
        self.window_s, self.eval_s = window_s, eval_s
        self.suspect_after, self.down_after = suspect_after, down_after
        self.gauge_interval = float(gauge_interval)
        self._run = _LiveRun(seed, self.nodes, heartbeat_interval, gauge_interval,
                             request_rate, fanout)
        self.rules: dict[str, LiveRule] = {r.name: r for r in rules}
        self.actions: list[Action] = []
        self.events: list[AlertEvent] = []
        self.ticks = 0
        self._read = {"heartbeats": 0, "requests": 0, "gauges": 0, "logs": 0}
        self._due: list = []                               # (time, seq, kind, item) not yet visible
        self._seq = 0
        self._last_heard = {n: 0.0 for n in self.nodes}
        self._requests = {n: deque() for n in self.nodes}  # (time, latency_ms, ok)
        self._gauges: dict = {}                            # (node, name) -> (time, value)
        self._logs: deque = deque()                        # (time, node, level, template)
        self._alerts = {(r, n): [AlertState.INACTIVE, None, None] for r in self.rules for n in self.nodes}
        self._values: dict = {}
        n_hist = max(2, int(round(history_s / eval_s)))
        self._history = {"time": deque(maxlen=n_hist)}
        for metric in METRICS:
            for node in self.nodes:
                self._history[(metric, node)] = deque(maxlen=n_hist)
        self._evaluate()

    # -- time ---------------------------------------------------------------------------

    @property
    def time(self) -> float:
        """Virtual seconds since the run began (a multiple of ``eval_s``)."""
        return round(self.ticks * self.eval_s, 9)

    def step(self, ticks: int = 1) -> list[AlertEvent]:
        """Advance ``ticks`` evaluation intervals; the alert events they caused."""
        if not isinstance(ticks, int) or isinstance(ticks, bool) or not 0 <= ticks <= 100_000:
            raise ValueError(f"ticks must be an int in [0, 100000], got {ticks!r}")
        new = []
        for _ in range(ticks):
            self.ticks += 1
            self._run.sim.scheduler.run_until(self.time * 1000)
            self._collect()
            new += self._evaluate()
        return new

    def run_for(self, seconds: float) -> list[AlertEvent]:
        """Advance ``seconds`` (rounded to whole evaluation intervals)."""
        seconds = _check_number("seconds", seconds, positive=False)
        if seconds < 0:
            raise ValueError(f"seconds must be >= 0, got {seconds!r}")
        return self.step(int(round(seconds / self.eval_s)))

    def run_until(self, time: float) -> list[AlertEvent]:
        """Advance to virtual ``time`` (not before now)."""
        if time < self.time - 1e-9:
            raise ValueError(f"cannot run back to {time:g} s: it is {self.time:g} s already")
        return self.run_for(time - self.time)

    # -- faults ----------------------------------------------------------------------------

    def _check_node(self, node: str) -> None:
        if node not in self.nodes:
            raise ValueError(f"unknown node {node!r}; nodes are {', '.join(self.nodes)}")

    def active_incidents(self, node: Optional[str] = None) -> list[Incident]:
        """The incidents active now (on ``node``, if given)."""
        t = self.time
        return [i for i in self._run.incidents if i.active(t) and (node is None or i.node == node)]

    @property
    def incidents(self) -> tuple[Incident, ...]:
        """Every incident of the run so far (healed ones end when they were healed)."""
        return tuple(self._run.incidents)

    def is_up(self, node: str) -> bool:
        """Whether ``node``'s process runs (the truth, which the monitor must infer)."""
        self._check_node(node)
        return self._run.sim.is_alive(node)

    def inject(self, kind, node: str, duration_s: Optional[float] = None,
               magnitude: Optional[float] = None) -> Incident:
        """Start fault ``kind`` (an :class:`IncidentKind` or its value: ``slow``,
        ``disk_fill``, ``error_burst``, ``crash``) on ``node`` now, for ``duration_s``
        seconds (defaults in ``FAULT_DEFAULTS``)."""
        try:
            kind = IncidentKind(kind)
        except ValueError:
            raise ValueError(f"unknown fault {kind!r}; use one of "
                             f"{', '.join(k.value for k in IncidentKind)}") from None
        self._check_node(node)
        default_duration, default_magnitude = FAULT_DEFAULTS[kind]
        duration_s = default_duration if duration_s is None else _check_number("duration_s", duration_s)
        magnitude = default_magnitude if magnitude is None else _check_number(
            "magnitude", magnitude, positive=kind is not IncidentKind.CRASH)
        if kind is IncidentKind.SLOW and magnitude < 1:
            raise ValueError(f"a slow node's latency multiplier must be >= 1, got {magnitude:g}")
        if kind is IncidentKind.ERROR_BURST and not 0 < magnitude <= 1:
            raise ValueError(f"an error burst's failure probability must be in (0, 1], got {magnitude:g}")
        if kind is IncidentKind.DISK_FILL and not magnitude <= 100:
            raise ValueError(f"a disk fills to at most 100 %, got {magnitude:g}")
        if not self.is_up(node):
            raise ValueError(f"{node} is down: restart it (Heal) before injecting {kind.value}")
        for other in self.active_incidents(node):
            if other.kind is kind:
                raise ValueError(f"{node} already has an active {kind.value} fault until "
                                 f"{other.end:g} s; heal it first")
        now = self.time
        incident = Incident(kind, node, now, now + duration_s, magnitude)
        self._run.add(incident)
        self.actions.append(Action(now, "inject", (kind.value, node, duration_s, magnitude)))
        return incident

    def heal(self, node: str) -> list[Incident]:
        """End every fault active on ``node`` now (a crashed node restarts)."""
        self._check_node(node)
        active = self.active_incidents(node)
        if not active:
            raise ValueError(f"{node} has no active fault to heal")
        now = self.time
        ended = [self._run.end(i, now) for i in active]
        self.actions.append(Action(now, "heal", (node,)))
        return ended

    # -- rules ------------------------------------------------------------------------------

    def set_rule(self, name: str, **changes) -> LiveRule:
        """Change fields of rule ``name`` (``threshold``, ``for_s``, ``clear_below``,
        ``keep_firing_for_s``); its alerts keep their state and meet the new rule at the
        next evaluation."""
        if name not in self.rules:
            raise ValueError(f"unknown rule {name!r}; rules are {', '.join(self.rules)}")
        allowed = {"threshold", "for_s", "clear_below", "keep_firing_for_s"}
        if not changes or set(changes) - allowed:
            raise ValueError(f"set_rule changes {', '.join(sorted(allowed))}; got {sorted(changes)}")
        rule = replace(self.rules[name], **changes)       # validated by LiveRule
        self.rules[name] = rule
        self.actions.append(Action(self.time, "set_rule", (name, tuple(sorted(changes.items())))))
        return rule

    def _apply(self, action: Action) -> None:
        if action.method == "set_rule":
            name, changes = action.args
            self.set_rule(name, **dict(changes))
        else:
            getattr(self, action.method)(*action.args)

    def replay(self) -> "Dashboard":
        """A fresh dashboard from the same seed and configuration, with :attr:`actions`
        re-applied at their times, run to the current time: the same run again."""
        fresh = Dashboard(**self.config)
        for action in self.actions:
            fresh.run_until(action.time)
            fresh._apply(action)
        fresh.run_until(self.time)
        return fresh

    # -- collection -------------------------------------------------------------------------

    def _collect(self) -> None:
        """Move what the cluster emitted up to now into the windows (a request counts
        when it completes; records of a node while it was down are dropped: a crash
        loses the requests it was serving)."""
        sink, read, due = self._run.sink, self._read, self._due
        for kind, stream in (("heartbeats", sink.heartbeats), ("requests", sink.requests),
                             ("gauges", sink.gauges), ("logs", sink.logs)):
            for item in stream[read[kind]:]:
                t = item[0] if kind == "logs" else item.time
                self._seq += 1
                heapq.heappush(due, (t, self._seq, kind, item))
            read[kind] = len(stream)
        now = self.time
        while due and due[0][0] <= now + 1e-9:
            t, _seq, kind, item = heapq.heappop(due)
            if kind == "heartbeats":
                self._last_heard[item.node] = max(self._last_heard[item.node], t)
            elif kind == "requests":
                if not self._was_down(item.node, t):
                    self._requests[item.node].append((t, item.latency_ms, item.ok))
            elif kind == "gauges":
                self._gauges[(item.node, item.name)] = (t, item.value)
            else:
                record: Optional[LogRecord] = parse_line(item[2])
                if record is not None and record.level in ("WARN", "ERROR") \
                        and not self._was_down(record.node, t):
                    self._logs.append((t, record.node, record.level, message_template(record.message)))
        horizon = now - self.window_s
        for samples in self._requests.values():
            while samples and samples[0][0] <= horizon:
                samples.popleft()
        while self._logs and self._logs[0][0] <= horizon:
            self._logs.popleft()

    def _was_down(self, node: str, t: float) -> bool:
        return any(i.kind is IncidentKind.CRASH and i.node == node and i.start <= t < i.end
                   for i in self._run.incidents)

    # -- evaluation ---------------------------------------------------------------------------

    def _metrics(self, node: str) -> dict:
        now = self.time
        samples = self._requests[node]
        latencies = sorted(s[1] for s in samples)
        values = dict.fromkeys(METRICS)
        values["heartbeat_age_s"] = round(now - self._last_heard[node], 6)
        if latencies:
            values["p50_ms"] = _nearest_rank(latencies, 50)
            values["p95_ms"] = _nearest_rank(latencies, 95)
            values["p99_ms"] = _nearest_rank(latencies, 99)
            values["mean_ms"] = sum(latencies) / len(latencies)
            values["error_ratio"] = sum(not s[2] for s in samples) / len(samples)
        values["throughput_rps"] = len(samples) / self.window_s
        for name in GAUGE_NAMES:
            seen = self._gauges.get((node, name))
            if seen is not None and now - seen[0] <= STALE_AFTER * self.gauge_interval:
                values[name] = seen[1]
        values["error_logs"] = sum(1 for e in self._logs if e[1] == node and e[2] == "ERROR")
        return values

    def _evaluate(self) -> list[AlertEvent]:
        now = self.time
        self._values = {node: self._metrics(node) for node in self.nodes}
        self._history["time"].append(now)
        for node, values in self._values.items():
            for metric, value in values.items():
                self._history[(metric, node)].append(value)
        events = []
        for name, rule in self.rules.items():
            for node in self.nodes:
                value = self._values[node][rule.metric]
                event = self._step_alert(rule, node, value, now)
                if event is not None:
                    events.append(event)
        self.events.extend(events)
        return events

    def _step_alert(self, rule: LiveRule, node: str, value, now: float) -> Optional[AlertEvent]:
        slot = self._alerts.setdefault((rule.name, node), [AlertState.INACTIVE, None, None])
        state, since, falling = slot
        above = value is not None and value > rule.threshold
        if state == AlertState.INACTIVE and above:
            state, since = AlertState.PENDING, now
        if state == AlertState.PENDING:
            if not above:
                slot[:] = [AlertState.INACTIVE, None, None]
                return None
            if now - since >= rule.for_s - 1e-9:
                slot[:] = [AlertState.FIRING, now, None]
                return AlertEvent(rule.name, node, AlertStatus.FIRING, now)
            slot[:] = [state, since, None]
            return None
        if state == AlertState.FIRING:
            if value is not None and value >= rule.clear_below:
                slot[2] = None                                # holds (hysteresis)
                return None
            falling = now if falling is None else falling
            if now - falling >= rule.keep_firing_for_s - 1e-9:
                slot[:] = [AlertState.INACTIVE, None, None]
                return AlertEvent(rule.name, node, AlertStatus.RESOLVED, now)
            slot[2] = falling                                 # keep_firing_for
        return None

    # -- reading ----------------------------------------------------------------------------

    def health(self, node: str) -> Health:
        self._check_node(node)
        age = self._values[node]["heartbeat_age_s"]
        if age < self.suspect_after:
            return Health.UP
        return Health.SUSPECTED if age < self.down_after else Health.DOWN

    def value(self, metric: str, node: str):
        """The metric's value for ``node`` at the last evaluation (None: no data)."""
        if metric not in METRICS:
            raise ValueError(f"unknown metric {metric!r}; known: {list(METRICS)}")
        self._check_node(node)
        return self._values[node][metric]

    def node_view(self, node: str) -> NodeView:
        self._check_node(node)
        return NodeView(node, self.health(node),
                        tuple(i.kind.value for i in self.active_incidents(node)),
                        dict(self._values[node]))

    def nodes_view(self) -> list[NodeView]:
        return [self.node_view(n) for n in self.nodes]

    def alert(self, rule: str, node: str) -> RuleState:
        if rule not in self.rules:
            raise ValueError(f"unknown rule {rule!r}; rules are {', '.join(self.rules)}")
        self._check_node(node)
        state, since, _ = self._alerts[(rule, node)]
        return RuleState(rule, node, state, since, self._values[node][self.rules[rule].metric])

    def alerts(self, *states: AlertState) -> list[RuleState]:
        """Every (rule, node) alert, or those in ``states`` (e.g. ``"pending", "firing"``)."""
        out = [self.alert(r, n) for r in self.rules for n in self.nodes]
        return [a for a in out if not states or a.state in states]

    def firing(self) -> set[tuple[str, str]]:
        return {(a.rule, a.node) for a in self.alerts(AlertState.FIRING)}

    def log_summary(self, top: int = 5) -> LogSummary:
        errors, warnings, templates = Counter(), Counter(), Counter()
        for _t, node, level, template in self._logs:
            (errors if level == "ERROR" else warnings)[node] += 1
            templates[(level, template)] += 1
        ranked = sorted(templates.items(), key=lambda kv: (-kv[1], kv[0]))[:top]
        return LogSummary({n: errors[n] for n in self.nodes}, {n: warnings[n] for n in self.nodes},
                          tuple((level, text, count) for (level, text), count in ranked))

    def history(self, metric: str, node: str) -> tuple[tuple, tuple]:
        """``(times, values)`` of the metric over the last ``history_s`` seconds."""
        if metric not in METRICS:
            raise ValueError(f"unknown metric {metric!r}; known: {list(METRICS)}")
        self._check_node(node)
        return tuple(self._history["time"]), tuple(self._history[(metric, node)])

    def __repr__(self) -> str:
        return (f"Dashboard(seed={self.seed}, t={self.time:g} s, nodes={len(self.nodes)}, "
                f"firing={sorted(self.firing())})")
