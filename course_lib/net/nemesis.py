"""A nemesis for a :class:`~course_lib.net.ProcessCluster`: kill, pause and partition
its real processes on a seeded schedule, while a Jepsen-style run
(:func:`course_lib.check.runner.run_workload`) records the clients' history.

Each fault lasts a while, then is undone: a killed node is restarted from its data
directory, a paused one resumed (SIGCONT), a partition healed.  At most a minority of
the nodes is down or paused at any time (``max_faulty``), so the cluster can make
progress and the run measures something; a partition always cuts a minority off.

``start(t0)`` / ``stop() -> intervals`` is the protocol ``run_workload`` expects; the
intervals (:class:`~course_lib.check.nemesis.FaultInterval`, seconds since ``t0`` on the
run's clock) shade the run's plots.  ``stop()`` undoes whatever fault is still on.
"""

from __future__ import annotations

import random
import threading
import time
from typing import Callable, Optional

from ..check.nemesis import FaultInterval

KINDS = ("kill", "pause", "partition")


class ClusterNemesis:
    """Faults on ``cluster``'s nodes, one at a time, drawn from ``seed`` (the kinds and
    times are fixed by it; the victims depend on which node leads at the moment).

    ``kinds``: some of ``"kill"``, ``"pause"``, ``"partition"``.  ``gap`` and
    ``duration``: (low, high) seconds between faults and for how long each lasts.
    """

    def __init__(self, cluster, seed: int = 0, kinds=KINDS, gap=(0.3, 1.0),
                 duration=(0.5, 1.5), clock: Callable[[], float] = time.monotonic) -> None:
        kinds = tuple(kinds)
        unknown = [k for k in kinds if k not in KINDS]
        if not kinds or unknown:
            raise ValueError(f"kinds must be some of {KINDS}, not {kinds!r}")
        for name, (low, high) in (("gap", gap), ("duration", duration)):
            if not 0 <= low <= high:
                raise ValueError(f"{name} must be (low, high) seconds with 0 <= low <= high, "
                                 f"not {(low, high)!r}")
        self.cluster = cluster
        self.kinds = kinds
        self.gap, self.duration = gap, duration
        self.clock = clock
        self.random = random.Random(seed)
        self.intervals: list[FaultInterval] = []
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._t0 = 0.0

    @property
    def max_faulty(self) -> int:
        """Nodes that may be down or cut off at once: a minority."""
        return (len(self.cluster.members) - 1) // 2

    def start(self, t0: float) -> None:
        if self._thread is not None:
            raise RuntimeError("this nemesis has already run: make a new one")
        self._t0 = t0
        self._thread = threading.Thread(target=self._run, name="cluster-nemesis", daemon=True)
        self._thread.start()

    def stop(self) -> list[FaultInterval]:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30)
        return list(self.intervals)

    # -- the schedule ---------------------------------------------------------------------

    def _run(self) -> None:
        r = self.random
        while not self._stop.wait(r.uniform(*self.gap)):
            kind = r.choice(self.kinds)
            victims = self._victims(kind)
            began = self.clock() - self._t0
            undo = self._inflict(kind, victims)
            self._stop.wait(r.uniform(*self.duration))
            undo()
            target = victims[0] if kind != "partition" else (
                victims, tuple(sorted(set(self.cluster.members) - set(victims))))
            self.intervals.append(FaultInterval(kind, target, began, self.clock() - self._t0))

    def _victims(self, kind: str) -> tuple:
        members = sorted(self.cluster.members)
        count = self.random.randint(1, self.max_faulty) if kind == "partition" else 1
        # the same draws whatever the run does, so a seed fixes the kinds of fault
        coin, anyone = self.random.random(), self.random.choice(members)
        leader = self.cluster.leader()
        # the leader half the time: its loss is what a Raft run must survive
        first = leader if leader in members and coin < 0.5 else anyone
        rest = [m for m in members if m != first]
        self.random.shuffle(rest)
        return tuple([first] + rest[:count - 1])

    def _inflict(self, kind: str, victims: tuple) -> Callable[[], None]:
        c = self.cluster
        if kind == "kill":
            c.crash(victims[0])
            return lambda: c.restart(victims[0])
        if kind == "pause":
            c.pause(victims[0])
            return lambda: c.resume(victims[0])
        cut = set(victims)
        c.partition(cut, set(c.members) - cut)
        return c.heal
