"""A monitored group of heartbeat senders: the model behind the phi widget.

``HeartbeatCluster`` is the interface shared by real sender processes
(:class:`~course_lib.detect.processes.ProcessCluster`) and seeded simulated ones
(:class:`~course_lib.detect.simulated.SimulatedCluster`): one
:class:`~course_lib.detect.phi.PhiAccrualDetector` fed by every node's heartbeats, and
the faults a learner can inject.

Node life cycle (anything else raises ``ValueError`` naming the node and its state)::

    ALIVE --pause--> PAUSED --resume--> ALIVE
    ALIVE/PAUSED --kill--> DEAD --restart--> ALIVE (a new incarnation: its
                                                     detector history starts afresh)

``set_jitter`` / ``set_delay`` apply to a live or paused node (a paused sender
applies them when it runs again).  ``advance(dt)`` lets ``dt`` seconds pass: the
simulation advances its virtual clock, real processes need nothing.  Read the
detector only while holding ``lock`` (real heartbeats arrive on another thread), or
use ``sample()``.
"""

from __future__ import annotations

import enum
import threading
from dataclasses import dataclass
from typing import Optional

from .heartbeat import check_node_id, check_seconds
from .phi import PhiAccrualDetector


class NodeStatus(enum.Enum):
    ALIVE = "alive"
    PAUSED = "paused"
    DEAD = "dead"


@dataclass(frozen=True)
class NodeInfo:
    status: NodeStatus
    jitter: float
    delay: float
    heartbeats: int


@dataclass(frozen=True)
class PhiSample:
    """Every node's phi at one instant ``time`` of the cluster's clock."""

    time: float
    phi: dict
    suspected: frozenset


def default_detector(interval: float) -> PhiAccrualDetector:
    """A detector tuned for senders every ``interval`` seconds on a shared machine:
    a short window (100 intervals) so changes show within seconds, and a std floor
    of interval/4 so scheduler hiccups of a few ms are not taken for failures."""
    return PhiAccrualDetector(
        threshold=8.0,
        window_size=100,
        min_std_dev=interval / 4.0,
        first_heartbeat_estimate=interval,
    )


class HeartbeatCluster:
    """Base of the real and simulated clusters: state, validation, sampling."""

    kind = "abstract"

    def __init__(
        self,
        nodes,
        interval: float,
        jitter: float,
        delay: float,
        detector: Optional[PhiAccrualDetector],
    ) -> None:
        self.nodes: tuple[str, ...] = tuple(check_node_id(n) for n in nodes)
        if not self.nodes:
            raise ValueError("nodes must name at least one node")
        if len(set(self.nodes)) != len(self.nodes):
            raise ValueError(f"nodes must be distinct, got {self.nodes!r}")
        self.interval = check_seconds("interval", interval, positive=True)
        jitter = check_seconds("jitter", jitter)
        delay = check_seconds("delay", delay)
        self.detector = detector if detector is not None else default_detector(self.interval)
        self.lock = threading.RLock()
        self._status = {n: NodeStatus.ALIVE for n in self.nodes}
        self._jitter = {n: jitter for n in self.nodes}
        self._delay = {n: delay for n in self.nodes}
        self._count = {n: 0 for n in self.nodes}
        self.closed = False

    def now(self) -> float:
        raise NotImplementedError

    def advance(self, dt: float) -> None:
        raise NotImplementedError

    def _check_node(self, node: str) -> None:
        if node not in self._status:
            raise ValueError(f"unknown node {node!r}; nodes are {', '.join(self.nodes)}")
        if self.closed:
            raise ValueError("the cluster is closed")

    def _require(self, node: str, action: str, *allowed: NodeStatus) -> None:
        self._check_node(node)
        status = self.status(node)
        if status not in allowed:
            raise ValueError(f"cannot {action} node {node!r}: it is {status.value}")

    def status(self, node: str) -> NodeStatus:
        if node not in self._status:
            raise ValueError(f"unknown node {node!r}; nodes are {', '.join(self.nodes)}")
        return self._status[node]

    def info(self, node: str) -> NodeInfo:
        status = self.status(node)
        with self.lock:
            return NodeInfo(status, self._jitter[node], self._delay[node], self._count[node])

    def sample(self) -> PhiSample:
        """Every node's phi at ``now()``, read consistently under the lock."""
        with self.lock:
            now = self.now()
            phi = {n: self.detector.phi(n, now) for n in self.nodes}
            threshold = self.detector.threshold
        return PhiSample(now, phi, frozenset(n for n, p in phi.items() if p >= threshold))

    def kill(self, node: str) -> None:
        """Crash ``node``'s sender (SIGKILL for a process): it sends nothing more."""
        self._require(node, "kill", NodeStatus.ALIVE, NodeStatus.PAUSED)
        self._kill(node)
        self._status[node] = NodeStatus.DEAD

    def pause(self, node: str) -> None:
        """Stop ``node``'s sender without killing it (SIGSTOP: a "GC pause")."""
        self._require(node, "pause", NodeStatus.ALIVE)
        self._pause(node)
        self._status[node] = NodeStatus.PAUSED

    def resume(self, node: str) -> None:
        """Let a paused sender run again (SIGCONT)."""
        self._require(node, "resume", NodeStatus.PAUSED)
        self._resume(node)
        self._status[node] = NodeStatus.ALIVE

    def restart(self, node: str) -> None:
        """Start a new incarnation of a dead node; the detector forgets the old one."""
        self._require(node, "restart", NodeStatus.DEAD)
        self._restart(node)
        with self.lock:
            self.detector.remove(node)
            self._count[node] = 0
        self._status[node] = NodeStatus.ALIVE

    def set_jitter(self, node: str, jitter: float) -> None:
        """Each heartbeat of ``node`` is held back an extra |N(0, jitter)| seconds."""
        jitter = check_seconds("jitter", jitter)
        self._require(node, "set the jitter of", NodeStatus.ALIVE, NodeStatus.PAUSED)
        self._set(node, jitter=jitter)
        self._jitter[node] = jitter

    def set_delay(self, node: str, delay: float) -> None:
        """Each heartbeat of ``node`` is held back ``delay`` seconds (a slow link)."""
        delay = check_seconds("delay", delay)
        self._require(node, "set the delay of", NodeStatus.ALIVE, NodeStatus.PAUSED)
        self._set(node, delay=delay)
        self._delay[node] = delay

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _kill(self, node: str) -> None:
        raise NotImplementedError

    def _pause(self, node: str) -> None:
        raise NotImplementedError

    def _resume(self, node: str) -> None:
        raise NotImplementedError

    def _restart(self, node: str) -> None:
        raise NotImplementedError

    def _set(self, node: str, jitter: Optional[float] = None, delay: Optional[float] = None) -> None:
        raise NotImplementedError
