"""A seeded, simulated cluster to monitor, with incidents at known times.

``simulate_cluster(seed)`` runs ``course_lib.sim.Simulation``: every node is a
:class:`ServerNode` process that sends heartbeats over the simulated network to a
``monitor`` process, serves requests (Poisson arrivals; some call a second node),
reads its resource gauges and writes log lines.  Incidents are scheduled faults: a
crash is ``Simulation.crash`` (the node falls silent: no heartbeats, requests, gauges
or logs) and ``restart`` at its end.  The same seed and arguments give the same
:class:`Telemetry`, record for record.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Optional

from course_lib.sim import Process, Simulation

from .logs import parse_line
from .records import (GaugeSample, Heartbeat, Incident, IncidentKind, LogRecord, RequestSample)

MONITOR = "monitor"
GAUGE_NAMES = ("cpu_percent", "memory_percent", "disk_used_percent")
ROUTES = ("/items", "/cart", "/search", "/users")


def default_incidents(nodes: tuple[str, ...], duration: float) -> tuple[Incident, ...]:
    """The standard scenario (needs >= 4 nodes): an error burst on the 3rd node during
    [20 %, 30 %) of the run, a crash of the 2nd during [1/3, 45 %), the 4th node 4x
    slower during [50 %, 70 %), and the last node's disk filling to 98 % during
    [60 %, 80 %) (it is full from 70 %)."""
    if len(nodes) < 4:
        raise ValueError(f"the default incidents need at least 4 nodes, got {len(nodes)}")
    d = duration
    return (
        Incident(IncidentKind.ERROR_BURST, nodes[2], 0.2 * d, 0.3 * d, 0.5),
        Incident(IncidentKind.CRASH, nodes[1], d / 3, 0.45 * d),
        Incident(IncidentKind.SLOW, nodes[3], 0.5 * d, 0.7 * d, 4.0),
        Incident(IncidentKind.DISK_FILL, nodes[-1], 0.6 * d, 0.8 * d, 98.0),
    )


@dataclass(frozen=True)
class Telemetry:
    """Everything a run emitted, each stream in time order, plus the ground truth.

    ``log_lines`` is the merged log of all nodes as text (what a log shipper collects);
    ``log_records`` is what parsing its record lines must give, in the same order.
    """

    seed: int
    nodes: tuple[str, ...]
    duration: float
    heartbeat_interval: float
    gauge_interval: float
    incidents: tuple[Incident, ...]
    heartbeats: tuple[Heartbeat, ...]
    requests: tuple[RequestSample, ...]
    gauges: tuple[GaugeSample, ...]
    log_lines: tuple[str, ...]
    log_records: tuple[LogRecord, ...]

    def incident(self, kind: IncidentKind) -> Incident:
        """The (first) incident of ``kind``; ValueError if the run has none."""
        for incident in self.incidents:
            if incident.kind is kind:
                return incident
        raise ValueError(f"this run has no {kind.value} incident")

    def gauge_series(self, node: str, name: str) -> tuple[GaugeSample, ...]:
        """The samples of gauge ``name`` on ``node``, in time order."""
        if node not in self.nodes:
            raise ValueError(f"unknown node {node!r}; known: {list(self.nodes)}")
        if name not in GAUGE_NAMES:
            raise ValueError(f"unknown gauge {name!r}; known: {list(GAUGE_NAMES)}")
        return tuple(g for g in self.gauges if g.node == node and g.name == name)


class _Sink:
    """Collects what the nodes emit (shared by all processes of one run)."""

    def __init__(self) -> None:
        self.heartbeats: list[Heartbeat] = []
        self.requests: list[RequestSample] = []
        self.gauges: list[GaugeSample] = []
        self.logs: list[tuple[float, int, str]] = []      # (time, seq, line)
        self.request_seq = 0

    def log(self, t: float, level: str, node: str, request_id: Optional[str], message: str,
            continuation: Optional[str] = None) -> None:
        record = LogRecord(round(t, 3), level, node, request_id, message)
        self.logs.append((record.time, len(self.logs), record.line()))
        if continuation is not None:
            self.logs.append((record.time, len(self.logs), continuation))


class MonitorProcess(Process):
    """The monitor's end of the heartbeat links: records each arrival."""

    ticking = False

    def __init__(self, sink: _Sink) -> None:
        super().__init__(MONITOR)
        self.sink = sink

    def on_message(self, src: str, msg: Heartbeat) -> None:
        self.sink.heartbeats.append(Heartbeat(self.sim.now / 1000, msg.node, msg.seq, msg.sent))


class ServerNode(Process):
    """A server: heartbeats, requests, gauges and logs, shaped by the active incidents.

    Its periodic activities are scheduler chains tagged with an incarnation number, so
    a crash (``on_crash``) silences them and ``on_restart`` starts new ones.
    """

    ticking = False

    def __init__(self, node_id: str, cluster: "_Run") -> None:
        super().__init__(node_id)
        self.run = cluster
        self.incarnation = 0
        self.heartbeat_seq = 0
        rng = cluster.sim.random.stream(f"profile:{node_id}")
        self.base_latency_ms = rng.uniform(12.0, 25.0)
        self.base_disk = rng.uniform(40.0, 60.0)
        self.base_memory = rng.uniform(35.0, 55.0)

    @property
    def rng(self):
        return self.sim.random.stream(f"node:{self.node_id}")

    def now_s(self) -> float:
        return self.sim.now / 1000

    def on_start(self) -> None:
        self._begin()

    def on_restart(self) -> None:
        self._begin()
        self.run.sink.log(self.now_s(), "INFO", self.node_id, None,
                          f"node started (incarnation {self.incarnation})")

    def on_crash(self) -> None:
        self.incarnation += 1

    def _begin(self) -> None:
        inc = self.incarnation
        sched = self.sim.scheduler
        sched.schedule(self.run.heartbeat_interval * 1000 * self.rng.random(), self._heartbeat, inc)
        sched.schedule(self._next_arrival_ms(), self._arrival, inc)
        sched.schedule(self.run.gauge_interval * 1000 * self.rng.random(), self._gauges, inc)

    def _heartbeat(self, inc: int) -> None:
        if inc != self.incarnation:
            return
        self.heartbeat_seq += 1
        self.sim.send(self.node_id, MONITOR, Heartbeat(0.0, self.node_id, self.heartbeat_seq, self.now_s()))
        self.sim.scheduler.schedule(self.run.heartbeat_interval * 1000, self._heartbeat, inc)

    def _next_arrival_ms(self) -> float:
        return self.rng.expovariate(self.run.request_rate) * 1000

    def latency_ms(self, t: float) -> float:
        slow = self.run.active(IncidentKind.SLOW, self.node_id, t)
        factor = slow.magnitude if slow else 1.0
        return self.rng.lognormvariate(math.log(self.base_latency_ms), 0.45) * factor

    def fails(self, t: float) -> bool:
        burst = self.run.active(IncidentKind.ERROR_BURST, self.node_id, t)
        return burst is not None and self.rng.random() < burst.magnitude

    def _arrival(self, inc: int) -> None:
        if inc != self.incarnation:
            return
        self.sim.scheduler.schedule(self._next_arrival_ms(), self._arrival, inc)
        self.run.serve(self, self.now_s())

    def _gauges(self, inc: int) -> None:
        if inc != self.incarnation:
            return
        t = self.now_s()
        rng = self.rng
        sink, node = self.run.sink, self.node_id
        cpu = min(100.0, max(0.0, 25 + 4 * self.run.request_rate * rng.random() + rng.gauss(0, 3)))
        memory = min(100.0, max(0.0, self.base_memory + 5 * t / self.run.duration + rng.gauss(0, 1)))
        disk = self.run.disk_level(self, t) + rng.gauss(0, 0.3)
        for name, value in zip(GAUGE_NAMES, (cpu, memory, disk)):
            sink.gauges.append(GaugeSample(t, node, name, round(value, 2)))
        if disk > 90:
            sink.log(t, "WARN", node, None, f"disk usage {disk:.1f}% on /var/lib/data")
        self.sim.scheduler.schedule(self.run.gauge_interval * 1000, self._gauges, inc)


class _Run:
    """One simulated run: validates the arguments, wires processes, serves requests."""

    def __init__(self, seed, nodes, duration, incidents, heartbeat_interval, gauge_interval,
                 request_rate, fanout):
        self.sim = Simulation(seed, trace_level="summary")
        self.sim.network.delay_ms = (1.0, 20.0)
        self.nodes = nodes
        self.duration = duration
        self.incidents = incidents
        self.heartbeat_interval = heartbeat_interval
        self.gauge_interval = gauge_interval
        self.request_rate = request_rate
        self.fanout = fanout
        self.sink = _Sink()
        self.sim.add(MonitorProcess(self.sink))
        self.servers = {n: ServerNode(n, self) for n in nodes}
        for server in self.servers.values():
            self.sim.add(server)
        for incident in incidents:
            if incident.kind is IncidentKind.CRASH:
                self.sim.scheduler.schedule_at(incident.start * 1000, self.sim.crash, incident.node)
                if incident.end < duration:
                    self.sim.scheduler.schedule_at(incident.end * 1000, self.sim.restart, incident.node)

    def active(self, kind: IncidentKind, node: str, t: float) -> Optional[Incident]:
        for incident in self.incidents:
            if incident.kind is kind and incident.node == node and incident.active(t):
                return incident
        return None

    def disk_level(self, server: ServerNode, t: float) -> float:
        base = server.base_disk + 2.0 * t / self.duration
        fill = self.active(IncidentKind.DISK_FILL, server.node_id, t)
        if fill is None:
            return base
        filled = min(1.0, 2 * (t - fill.start) / (fill.end - fill.start))
        return base + (fill.magnitude - base) * filled

    def serve(self, entry: ServerNode, t: float) -> None:
        sink = self.sink
        sink.request_seq += 1
        rid = f"r{sink.request_seq:06d}"
        rng = entry.rng
        route = f"GET {ROUTES[rng.randrange(len(ROUTES))]}/{rng.randrange(1000)}"
        latency = entry.latency_ms(t)
        reason = "database connection refused" if entry.fails(t) else None
        if reason is None and rng.random() < self.fanout:
            peers = [n for n in self.nodes if n != entry.node_id and self.sim.is_alive(n)]
            if peers:
                callee = self.servers[peers[rng.randrange(len(peers))]]
                call_ms = callee.latency_ms(t)
                latency += call_ms
                call_done = t + (latency - call_ms / 2) / 1000
                if callee.fails(t):
                    sink.log(call_done, "ERROR", callee.node_id, rid,
                             f"call from {entry.node_id} failed: database connection refused",
                             "    at db.pool.connect (pool.py:88)")
                    reason = f"upstream {callee.node_id} failed"
                else:
                    sink.log(call_done, "DEBUG", callee.node_id, rid,
                             f"call from {entry.node_id} served in {call_ms:.1f}ms")
        done = t + latency / 1000
        crash = self.next_crash(entry.node_id, t)
        if crash is not None and done >= crash:
            return
        sink.requests.append(RequestSample(done, entry.node_id, rid, latency, reason is None))
        if reason is None:
            sink.log(done, "INFO", entry.node_id, rid, f"{route} 200 {latency:.1f}ms")
        else:
            sink.log(done, "ERROR", entry.node_id, rid, f"{route} 500 {latency:.1f}ms: {reason}",
                     "    at app.handler (server.py:42)")

    def next_crash(self, node: str, t: float) -> Optional[float]:
        starts = [i.start for i in self.incidents
                  if i.kind is IncidentKind.CRASH and i.node == node and i.start > t]
        return min(starts) if starts else None

    def telemetry(self) -> Telemetry:
        self.sim.run_for(self.duration * 1000)
        sink = self.sink
        logs = sorted(sink.logs)
        records = tuple(parse_line(line) for _, _, line in logs if not line.startswith(" "))
        end = self.duration
        return Telemetry(
            seed=self.sim.seed, nodes=self.nodes, duration=self.duration,
            heartbeat_interval=self.heartbeat_interval, gauge_interval=self.gauge_interval,
            incidents=self.incidents,
            heartbeats=tuple(h for h in sink.heartbeats if h.time <= end),
            requests=tuple(sorted((r for r in sink.requests if r.time <= end),
                                  key=lambda r: (r.time, r.request_id))),
            gauges=tuple(sink.gauges),
            log_lines=tuple(line for time, _, line in logs if time <= end),
            log_records=tuple(r for r in records if r.time <= end),
        )


def _check_number(name: str, value, *, positive: bool = True) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    if positive and value <= 0:
        raise ValueError(f"{name} must be > 0, got {value!r}")
    return float(value)


def _check_incidents(incidents: Iterable[Incident], nodes: tuple[str, ...], duration: float):
    out = tuple(incidents)
    for incident in out:
        if not isinstance(incident, Incident):
            raise ValueError(f"incidents must be Incident objects, got {incident!r}")
        if incident.node not in nodes:
            raise ValueError(f"incident {incident.kind.value} names unknown node {incident.node!r}; "
                             f"known: {list(nodes)}")
        if not 0 <= incident.start < incident.end <= duration:
            raise ValueError(f"incident {incident.kind.value} on {incident.node}: need "
                             f"0 <= start < end <= duration ({duration}), got "
                             f"[{incident.start}, {incident.end})")
    crashes = sorted((i.node, i.start, i.end) for i in out if i.kind is IncidentKind.CRASH)
    for (n1, _s1, e1), (n2, s2, _e2) in zip(crashes, crashes[1:]):
        if n1 == n2 and s2 <= e1:
            raise ValueError(f"crash incidents on {n1} overlap (one starts at {s2} before the "
                             f"previous restart at {e1})")
    return out


def simulate_cluster(seed: int = 0, *, nodes: int = 5, duration: float = 600.0,
                     incidents: Optional[Iterable[Incident]] = None,
                     heartbeat_interval: float = 1.0, gauge_interval: float = 5.0,
                     request_rate: float = 5.0, fanout: float = 0.3) -> Telemetry:
    """Run a cluster of ``nodes`` servers (``n1``..) for ``duration`` seconds.

    ``incidents`` defaults to :func:`default_incidents`; pass ``()`` for a calm run.
    ``request_rate`` is per node per second; ``fanout`` the probability that a request
    also calls one other live node (both log the request id).  Heartbeats cross the
    simulated network (1--20 ms delay).  Bad arguments raise ``ValueError``.
    """
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise ValueError(f"seed must be an int, got {seed!r}")
    if not isinstance(nodes, int) or isinstance(nodes, bool) or not 1 <= nodes <= 50:
        raise ValueError(f"nodes must be an int in [1, 50], got {nodes!r}")
    duration = _check_number("duration", duration)
    if duration > 7200:
        raise ValueError(f"duration must be at most 7200 s, got {duration!r}")
    heartbeat_interval = _check_number("heartbeat_interval", heartbeat_interval)
    gauge_interval = _check_number("gauge_interval", gauge_interval)
    request_rate = _check_number("request_rate", request_rate)
    if request_rate > 200:
        raise ValueError(f"request_rate must be at most 200 per second, got {request_rate!r}")
    fanout = _check_number("fanout", fanout, positive=False)
    if not 0 <= fanout <= 1:
        raise ValueError(f"fanout must be a probability in [0, 1], got {fanout!r}")
    names = tuple(f"n{i}" for i in range(1, nodes + 1))
    chosen = default_incidents(names, duration) if incidents is None else incidents
    return _Run(seed, names, duration, _check_incidents(chosen, names, duration),
                heartbeat_interval, gauge_interval, request_rate, fanout).telemetry()
