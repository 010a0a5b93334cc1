"""The simulation: processes, their clocks and faults, over one network.

Node lifecycle: ``up`` -> ``crash`` -> ``down`` -> ``restart`` -> ``up``; and ``up`` ->
``pause`` -> ``paused`` -> ``resume`` -> ``up``.  A crashed process loses its volatile
state (its ``on_crash`` drops it) and everything sent to it.  A paused process does not
tick and receives nothing: messages for it wait and are delivered in arrival order on
resume (a GC pause, a SIGSTOP).  Each process ticks every ``tick_ms / rate`` ms of
virtual time, so ``set_clock_rate`` models clock skew.

Bad arguments (unknown node, crash of a node already down, negative time, overlapping
partition groups) raise ``ValueError`` naming the problem.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable

from .network import Network
from .rand import RandomStreams
from .scheduler import Scheduler
from .trace import Trace


class Simulation:
    """A seeded discrete-event world: scheduler + network + processes + trace."""

    def __init__(self, seed: int = 0, *, tick_ms: float = 5.0, trace_level: str = "messages") -> None:
        if not isinstance(tick_ms, (int, float)) or tick_ms <= 0:
            raise ValueError(f"tick_ms must be > 0, got {tick_ms!r}")
        self.random = RandomStreams(seed)
        self.seed = seed
        self.scheduler = Scheduler()
        self.trace = Trace(trace_level)
        self.network = Network(self.scheduler, self.random.stream("net"), self.trace, self._deliver)
        self.tick_ms = float(tick_ms)
        self.processes: dict[str, Any] = {}
        self._alive: dict[str, bool] = {}
        self._paused: dict[str, list] = {}        # node -> queued (src, msg) while paused
        self._rate: dict[str, float] = {}
        self._tick_gen: dict[str, int] = {}
        self._phase_rng = self.random.stream("tick-phase")
        # a cheap running fingerprint of delivery times: keeps the digest meaningful
        # when the trace does not record messages
        self._fingerprint = 0

    # -- time --------------------------------------------------------------------------
    @property
    def now(self) -> float:
        return self.scheduler.now

    def run_for(self, ms: float) -> None:
        if not isinstance(ms, (int, float)) or isinstance(ms, bool) or ms < 0:
            raise ValueError(f"time must be a non-negative number of ms, got {ms!r}")
        self.scheduler.run_until(self.scheduler.now + ms)

    def run_until(self, predicate: Callable[[], bool], timeout_ms: float) -> bool:
        """Run until ``predicate()`` holds (checked after every event) or ``timeout_ms``."""
        if not isinstance(timeout_ms, (int, float)) or isinstance(timeout_ms, bool) or timeout_ms < 0:
            raise ValueError(f"timeout_ms must be a non-negative number, got {timeout_ms!r}")
        if predicate():
            return True
        return self.scheduler.run_until(self.scheduler.now + timeout_ms, predicate)

    # -- processes -----------------------------------------------------------------------
    def add(self, process: Any) -> None:
        """Add and start a process (its ``node_id`` must be new)."""
        nid = process.node_id
        if not isinstance(nid, str) or not nid:
            raise ValueError(f"node id must be a non-empty str, got {nid!r}")
        if nid in self.processes:
            raise ValueError(f"node {nid!r} already exists")
        process.sim = self
        self.processes[nid] = process
        self._alive[nid] = True
        self._rate[nid] = 1.0
        self._tick_gen[nid] = 0
        self.trace.record(self.now, "add", nid, ())
        process.on_start()
        self._start_ticks(nid)

    def check_node(self, nid: str) -> None:
        if nid not in self.processes:
            raise ValueError(f"unknown node {nid!r}; known: {sorted(self.processes)}")

    def is_alive(self, nid: str) -> bool:
        self.check_node(nid)
        return self._alive[nid]

    def is_paused(self, nid: str) -> bool:
        self.check_node(nid)
        return nid in self._paused

    def _start_ticks(self, nid: str) -> None:
        if not getattr(self.processes[nid], "ticking", True):
            return
        self._tick_gen[nid] += 1
        interval = self.tick_ms / self._rate[nid]
        # a random phase, so that nodes do not tick in lock-step
        self.scheduler.schedule(interval * self._phase_rng.random(), self._tick, nid, self._tick_gen[nid])

    def _tick(self, nid: str, gen: int) -> None:
        if gen != self._tick_gen[nid]:
            return                                  # a chain from before a crash / pause
        if self.trace.ticks:
            self.trace.record(self.scheduler.now, "tick", nid, ())
        self.scheduler.schedule(self.tick_ms / self._rate[nid], self._tick, nid, gen)
        self.processes[nid].on_tick()

    def set_clock_rate(self, nid: str, rate: float) -> None:
        """Clock skew: ``nid`` ticks ``rate`` times as fast as real (virtual) time."""
        self.check_node(nid)
        if not isinstance(rate, (int, float)) or isinstance(rate, bool) or not 0.1 <= rate <= 10:
            raise ValueError(f"clock rate must be in [0.1, 10], got {rate!r}")
        self._rate[nid] = float(rate)
        self.trace.record(self.now, "clock_rate", nid, (float(rate),))
        if self._alive[nid] and nid not in self._paused:
            self._start_ticks(nid)

    # -- messages ------------------------------------------------------------------------
    def send(self, src: str, dst: str, msg: Any) -> None:
        if dst not in self.processes:
            raise ValueError(f"{src!r} sends to unknown node {dst!r}")
        self.network.send(src, dst, msg)

    def _deliver(self, src: str, dst: str, msg: Any, sent_at: float = None) -> None:
        """A message arrives (scheduled by the network at its arrival time)."""
        net = self.network
        now = self.scheduler.now
        trace = self.trace
        if net.cuts and (src, dst) in net.cuts:
            net.dropped += 1              # the link was cut while the message was on it
            if trace.messages:
                trace.record(now, "drop", dst, (src, "cut", msg))
            return
        if not self._alive[dst]:
            net.dropped += 1
            if trace.messages:
                trace.record(now, "drop", dst, (src, "down", msg))
            return
        if self._paused:
            queue = self._paused.get(dst)
            if queue is not None:
                queue.append((src, msg))
                return
        net.delivered += 1
        if trace.messages:
            trace._raw.append((now, "deliver", dst, src, msg))
        else:
            self._fingerprint = (self._fingerprint * 1000003 + int(now * 1024)) & 0xFFFFFFFFFFFF
        self.processes[dst].on_message(src, msg)

    def _deliver_queued(self, src: str, dst: str, msg: Any) -> None:
        net = self.network
        net.delivered += 1
        now = self.scheduler.now
        if self.trace.messages:
            self.trace.record(now, "deliver", dst, (src, msg))
        else:
            self._fingerprint = (self._fingerprint * 1000003 + int(now * 1024)) & 0xFFFFFFFFFFFF
        self.processes[dst].on_message(src, msg)

    # -- manual delivery ("you are the network"; see ``Network.hold``) ---------------------
    def set_manual_delivery(self, on: bool) -> None:
        """``True``: nothing is delivered until :meth:`deliver_held`; ``False``: the held
        messages go back on the wire and the clock delivers again."""
        if not isinstance(on, bool):
            raise ValueError(f"manual delivery is True or False, got {on!r}")
        if on:
            self.network.hold()
        else:
            self.network.release()
        self.trace.record(self.now, "manual_delivery", None, (on,))

    def held_messages(self) -> list:
        """The messages waiting for manual delivery (``InFlight`` with an ``id``)."""
        return self.network.held()

    def deliver_held(self, mid: int) -> None:
        """Deliver held message ``mid`` now (a cut link or a down receiver still loses it;
        a paused receiver queues it)."""
        f = self.network.take(mid)
        self._deliver(f.src, f.dst, f.msg, f.sent_at)

    def drop_held(self, mid: int) -> None:
        """Lose held message ``mid``."""
        f = self.network.take(mid)
        self.network.dropped += 1
        if self.trace.messages:
            self.trace.record(self.now, "drop", f.dst, (f.src, "manual", f.msg))

    def duplicate_held(self, mid: int) -> int:
        """Put a second copy of held message ``mid`` on the wire; returns the copy's id."""
        f = self.network.duplicate(mid)
        if self.trace.messages:
            self.trace.record(self.now, "duplicate", f.src, (f.dst, f.msg))
        return f.id

    # -- faults --------------------------------------------------------------------------
    def crash(self, nid: str) -> None:
        self.check_node(nid)
        if not self._alive[nid]:
            raise ValueError(f"cannot crash {nid!r}: it is already down")
        self._alive[nid] = False
        self._paused.pop(nid, None)
        self._tick_gen[nid] += 1
        self.trace.record(self.now, "crash", nid, ())
        self.processes[nid].on_crash()

    def restart(self, nid: str) -> None:
        self.check_node(nid)
        if self._alive[nid]:
            raise ValueError(f"cannot restart {nid!r}: it is up")
        self._alive[nid] = True
        self.trace.record(self.now, "restart", nid, ())
        self.processes[nid].on_restart()
        self._start_ticks(nid)

    def pause(self, nid: str) -> None:
        self.check_node(nid)
        if not self._alive[nid]:
            raise ValueError(f"cannot pause {nid!r}: it is down")
        if nid in self._paused:
            raise ValueError(f"cannot pause {nid!r}: it is already paused")
        self._paused[nid] = []
        self._tick_gen[nid] += 1
        self.trace.record(self.now, "pause", nid, ())

    def resume(self, nid: str) -> None:
        self.check_node(nid)
        if nid not in self._paused:
            raise ValueError(f"cannot resume {nid!r}: it is not paused")
        queued = self._paused.pop(nid)
        self.trace.record(self.now, "resume", nid, (len(queued),))
        self._start_ticks(nid)
        for src, msg in queued:
            if not self._alive[nid] or nid in self._paused:
                break
            self._deliver_queued(src, nid, msg)

    def _check_nodes(self, nodes: Iterable[str], what: str) -> list[str]:
        out = []
        for n in nodes:
            if n not in self.processes:
                raise ValueError(f"{what}: unknown node {n!r}; known: {sorted(self.processes)}")
            out.append(n)
        return out

    def partition(self, *groups: Iterable[str]) -> None:
        """Cut every link between nodes of different groups (both ways).

        Nodes named in no group keep all their links.  Groups must not overlap.
        """
        if len(groups) < 2:
            raise ValueError("partition needs at least two groups")
        seen: dict[str, int] = {}
        clean = []
        for i, g in enumerate(groups):
            if isinstance(g, str):
                raise ValueError(f"partition group {g!r} must be a set of node ids, not a str")
            g = self._check_nodes(g, "partition")
            if not g:
                raise ValueError("partition groups must not be empty")
            for n in g:
                if n in seen and seen[n] != i:
                    raise ValueError(f"partition groups overlap: {n!r} is in groups {seen[n]} and {i}")
                seen[n] = i
            clean.append(sorted(set(g)))
        self.network.partition_cuts(clean)
        self.trace.record(self.now, "partition", None, tuple(tuple(g) for g in clean))

    def isolate(self, nid: str) -> None:
        """Cut ``nid`` from every other node, both ways."""
        self.check_node(nid)
        for other in sorted(self.processes):
            if other != nid:
                self.network.cut(nid, other)
                self.network.cut(other, nid)
        self.trace.record(self.now, "isolate", nid, ())

    def cut_link(self, src: str, dst: str) -> None:
        """Cut the one-way link ``src -> dst`` (``dst -> src`` still works)."""
        self._check_nodes((src, dst), "cut_link")
        if src == dst:
            raise ValueError(f"cut_link: {src!r} -> itself is not a link")
        self.network.cut(src, dst)
        self.trace.record(self.now, "cut", src, (dst,))

    def heal(self) -> None:
        """Restore every link (delay, loss and duplication settings stay)."""
        self.network.heal()
        self.trace.record(self.now, "heal", None, ())

    def in_flight(self, src: str = None, dst: str = None):
        return self.network.in_flight(src, dst)

    def trace_digest(self) -> str:
        s = self.scheduler
        n = self.network
        return self.trace.digest(
            f"events={s.events_run};seq={s.seq};now={s.now!r};sent={n.sent};delivered={n.delivered};"
            f"dropped={n.dropped};duplicated={n.duplicated};fingerprint={self._fingerprint}")
