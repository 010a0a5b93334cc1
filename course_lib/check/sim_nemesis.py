"""A scheduled nemesis for the simulator (``course_lib.sim.Simulation`` or
``course_lib.raft.SimCluster``): the same faults at the same virtual times for a seed.

``course_lib.sim.Nemesis`` draws one random fault per call; this one plays a *schedule*
of :class:`SimFault` s, each with a start and a length, on the simulation's own event
heap, and records every fault as a :class:`~course_lib.check.nemesis.FaultInterval` in
virtual milliseconds — ready to shade a history plot of the same run.

Kinds and their ``target``:

- ``crash``: a node; restarted after ``duration`` (only persisted state survives);
- ``pause``: a node; resumed after ``duration`` (messages to it wait);
- ``partition``: a tuple of node groups, e.g. ``(("n1",), ("n2", "n3"))``; healed after;
- ``isolate``: a node cut from all others; healed after;
- ``loss``: a message drop probability for the whole network; restored after;
- ``delay``: a ``(lo, hi)`` ms delay range for the whole network; restored after;
- ``skew``: ``(node, rate)``, the node's clock runs ``rate`` times as fast; 1.0 after.

Link faults (partition, isolate) end with the simulator's ``heal()``, which restores
every link, so at most one is active at a time; a fault that cannot start (its node is
down or already faulted, another link fault is active) is skipped and listed in
:attr:`SimNemesis.skipped`.
"""

from __future__ import annotations

import random
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Optional

from .nemesis import FaultInterval

SIM_FAULT_KINDS = ("crash", "pause", "partition", "isolate", "loss", "delay", "skew")


@dataclass(frozen=True)
class SimFault:
    """``kind`` on ``target`` at ``at`` ms after :meth:`SimNemesis.start`, for ``duration`` ms."""

    at: float
    kind: str
    target: Hashable
    duration: float

    def __post_init__(self) -> None:
        if self.kind not in SIM_FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; expected one of {SIM_FAULT_KINDS}")
        if self.at < 0 or self.duration < 0:
            raise ValueError(f"fault times must be >= 0 ms, got at={self.at}, duration={self.duration}")


def random_sim_schedule(nodes: Sequence[str], *, seed: int, duration_ms: float,
                        kinds: Sequence[str] = SIM_FAULT_KINDS, mean_gap_ms: float = 300.0,
                        length_ms: tuple[float, float] = (100.0, 800.0)) -> tuple[SimFault, ...]:
    """Faults one at a time within ``[0, duration_ms]``, drawn from ``seed`` alone."""
    nodes = sorted(nodes)
    if not nodes:
        raise ValueError("random_sim_schedule needs at least one node")
    for kind in kinds:
        if kind not in SIM_FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; expected one of {SIM_FAULT_KINDS}")
    if "partition" in kinds and len(nodes) < 2:
        raise ValueError("a partition needs at least two nodes")
    if mean_gap_ms <= 0 or not 0 <= length_ms[0] <= length_ms[1]:
        raise ValueError(f"need mean_gap_ms > 0 and 0 <= lo <= hi, got {mean_gap_ms}, {length_ms}")
    rng = random.Random(seed)
    faults = []
    t = rng.expovariate(1 / mean_gap_ms)
    while True:
        span = rng.uniform(*length_ms)
        if t + span > duration_ms:
            break
        kind = rng.choice(list(kinds))
        faults.append(SimFault(round(t, 3), kind, _draw_target(rng, kind, nodes), round(span, 3)))
        t += span + rng.expovariate(1 / mean_gap_ms)
    return tuple(faults)


def _draw_target(rng: random.Random, kind: str, nodes: list[str]) -> Hashable:
    if kind == "partition":
        shuffled = rng.sample(nodes, len(nodes))
        k = rng.randint(1, len(nodes) - 1)
        return tuple(sorted((tuple(sorted(shuffled[:k])), tuple(sorted(shuffled[k:])))))
    if kind == "loss":
        return rng.choice((0.05, 0.2, 0.5))
    if kind == "delay":
        return rng.choice(((5.0, 50.0), (20.0, 200.0)))
    if kind == "skew":
        return (rng.choice(nodes), rng.choice((0.5, 2.0)))
    return rng.choice(nodes)


class SimNemesis:
    """Plays a :class:`SimFault` schedule on a simulation, on its virtual clock.

    ``target`` is a ``Simulation`` or anything wrapping one as ``.sim`` (``SimCluster``)
    with the fault methods ``crash/restart/pause/resume/partition/isolate/heal/
    set_clock_rate``; actions go through ``target`` so its own checks apply.
    """

    def __init__(self, target: Any, schedule: Iterable[SimFault]) -> None:
        self.target = target
        self.sim = getattr(target, "sim", target)
        for name in ("scheduler", "network", "is_alive", "is_paused"):
            if not hasattr(self.sim, name):
                raise ValueError(f"{target!r} is not a simulation: it has no {name!r}")
        self.schedule = tuple(sorted(schedule, key=lambda f: f.at))
        self.skipped: list[SimFault] = []
        self._intervals: list[list] = []
        self._active: dict[int, tuple[int, Any]] = {}
        self._started = False

    @property
    def intervals(self) -> tuple[FaultInterval, ...]:
        """The faults applied so far (virtual ms), in start order."""
        return tuple(FaultInterval(k, t, s, e) for k, t, s, e in self._intervals)

    def start(self) -> None:
        """Schedule every fault relative to the simulation's current time."""
        if self._started:
            raise ValueError("this nemesis has already been started")
        self._started = True
        base = self.sim.now
        for n, fault in enumerate(self.schedule):
            self.sim.scheduler.schedule_at(base + fault.at, self._begin, n)

    def heal_all(self) -> None:
        """End every fault that is still active, now."""
        for n in sorted(self._active):
            self._end(n)

    def _busy(self, fault: SimFault) -> bool:
        for n, _ in self._active.items():
            other = self.schedule[n]
            if fault.kind in ("partition", "isolate") and other.kind in ("partition", "isolate"):
                return True
            if fault.kind in ("loss", "delay") and other.kind == fault.kind:
                return True
            if _node(other) is not None and _node(other) == _node(fault):
                return True
        node = _node(fault)
        if fault.kind in ("crash", "pause", "skew"):
            return not self.sim.is_alive(node) or self.sim.is_paused(node)
        return False

    def _begin(self, n: int) -> None:
        fault = self.schedule[n]
        if self._busy(fault):
            self.skipped.append(fault)
            return
        undo: Any = None
        t, kind = self.target, fault.kind
        if kind == "crash":
            t.crash(fault.target)
        elif kind == "pause":
            t.pause(fault.target)
        elif kind == "partition":
            t.partition(*fault.target)
        elif kind == "isolate":
            t.isolate(fault.target)
        elif kind == "loss":
            undo = self.sim.network.drop_rate
            self.sim.network.drop_rate = fault.target
        elif kind == "delay":
            undo = self.sim.network.delay_ms
            self.sim.network.delay_ms = fault.target
        elif kind == "skew":
            t.set_clock_rate(*fault.target)
        self._intervals.append([kind, fault.target, self.sim.now, None])
        self._active[n] = (len(self._intervals) - 1, undo)
        self.sim.scheduler.schedule(fault.duration, self._end, n)

    def _end(self, n: int) -> None:
        if n not in self._active:
            return
        index, undo = self._active.pop(n)
        fault = self.schedule[n]
        t, kind = self.target, fault.kind
        if kind == "crash":
            if not self.sim.is_alive(fault.target):
                t.restart(fault.target)
        elif kind == "pause":
            if self.sim.is_paused(fault.target):
                t.resume(fault.target)
        elif kind in ("partition", "isolate"):
            t.heal()
        elif kind == "loss":
            self.sim.network.drop_rate = undo
        elif kind == "delay":
            self.sim.network.delay_ms = undo
        elif kind == "skew":
            t.set_clock_rate(fault.target[0], 1.0)
        self._intervals[index][3] = self.sim.now


def _node(fault: SimFault) -> Optional[str]:
    if fault.kind in ("crash", "pause", "isolate"):
        return fault.target
    if fault.kind == "skew":
        return fault.target[0]
    return None
