"""A nemesis for real OS processes: ``kill -9`` and ``SIGSTOP``/``SIGCONT`` on a schedule.

A *schedule* is a tuple of :class:`Fault` s (what, on whom, when, for how long), drawn
from a seed by :func:`random_schedule` or written by hand.  :class:`ProcessNemesis`
plays it against processes given as pids or ``subprocess.Popen`` objects, in a
background thread, and records each fault as a :class:`FaultInterval` on the same clock
as the run's history (seconds since the run's ``t0``) so plots can shade it.

- ``pause``: ``SIGSTOP`` for ``duration`` seconds then ``SIGCONT`` — a process frozen
  mid-flight (a long GC pause, a VM migration), that wakes up believing no time passed;
- ``kill``: ``SIGKILL`` (nothing flushed, no handlers run); after ``duration`` seconds the
  ``restart`` callable, if given, starts the process again.

Linux/POSIX only.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Optional, Union

FAULT_KINDS = ("pause", "kill")

ProcessRef = Union[int, subprocess.Popen]


@dataclass(frozen=True)
class Fault:
    """``kind`` applied to ``target`` at ``at`` seconds after the start, for ``duration`` s."""

    at: float
    kind: str
    target: Hashable
    duration: float

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; expected one of {FAULT_KINDS}")
        if self.at < 0 or self.duration < 0:
            raise ValueError(f"fault times must be >= 0, got at={self.at}, duration={self.duration}")


@dataclass(frozen=True)
class FaultInterval:
    """A fault as it happened: from ``start`` to ``end`` (``None``: never healed)."""

    kind: str
    target: Hashable
    start: float
    end: Optional[float]

    @property
    def label(self) -> str:
        """``kill n1``, ``partition n1 | n2 n3``, ``skew n2 2.0``."""
        target = self.target
        if isinstance(target, tuple):
            target = " | ".join(" ".join(map(str, t)) if isinstance(t, tuple) else str(t)
                                for t in target) if all(isinstance(t, tuple) for t in target) \
                else " ".join(map(str, target))
        return f"{self.kind} {target}"


def random_schedule(targets: Sequence[Hashable], *, seed: int, duration: float,
                    kinds: Sequence[str] = FAULT_KINDS, mean_gap: float = 1.0,
                    length: tuple[float, float] = (0.2, 1.0)) -> tuple[Fault, ...]:
    """Faults one at a time within ``[0, duration]``: exponential gaps of mean ``mean_gap``,
    uniformly random kind, target and length.  Same arguments, same schedule."""
    if not targets:
        raise ValueError("random_schedule needs at least one target")
    for kind in kinds:
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; expected one of {FAULT_KINDS}")
    if mean_gap <= 0 or not 0 <= length[0] <= length[1]:
        raise ValueError(f"need mean_gap > 0 and 0 <= length[0] <= length[1], "
                         f"got {mean_gap}, {length}")
    rng = random.Random(seed)
    faults = []
    t = rng.expovariate(1 / mean_gap)
    while True:
        span = rng.uniform(*length)
        if t + span > duration:
            break
        faults.append(Fault(round(t, 6), rng.choice(list(kinds)), rng.choice(list(targets)),
                            round(span, 6)))
        t += span + rng.expovariate(1 / mean_gap)
    return tuple(faults)


class ProcessNemesis:
    """Plays a fault schedule on real processes and records what it did.

    ``processes`` maps names to pids or ``Popen`` objects (a sequence is named by index).
    ``restart(name)`` returns the new pid/``Popen`` of a restarted process.  The manual
    actions :meth:`pause`, :meth:`resume`, :meth:`kill`, :meth:`restart` raise
    ``ValueError`` for an unknown name or an action that makes no sense (pausing a dead
    process); scheduled faults whose target is already faulted or dead are skipped and
    listed in :attr:`skipped`.  :meth:`stop` ends the run and heals: paused processes get
    ``SIGCONT``, killed ones are restarted if ``restart`` was given.
    """

    def __init__(self, processes: Union[Mapping[Hashable, ProcessRef], Sequence[ProcessRef]],
                 schedule: Iterable[Fault] = (), *,
                 restart: Optional[Callable[[Hashable], ProcessRef]] = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if not isinstance(processes, Mapping):
            processes = dict(enumerate(processes))
        for name, proc in processes.items():
            if not isinstance(proc, (int, subprocess.Popen)) or isinstance(proc, bool):
                raise ValueError(f"process {name!r} must be a pid or a subprocess.Popen, got {proc!r}")
        self._procs: dict[Hashable, ProcessRef] = dict(processes)
        self.schedule = tuple(sorted(schedule, key=lambda f: f.at))
        for fault in self.schedule:
            self._known(fault.target)
        self._restart = restart
        self._clock = clock
        self._t0: Optional[float] = None
        self._lock = threading.RLock()
        self._paused: dict[Hashable, int] = {}
        self._killed: dict[Hashable, int] = {}
        self._intervals: list[list] = []
        self.skipped: list[Fault] = []
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._error: Optional[BaseException] = None

    # -- state -----------------------------------------------------------------------

    @property
    def names(self) -> tuple[Hashable, ...]:
        return tuple(self._procs)

    @property
    def intervals(self) -> tuple[FaultInterval, ...]:
        """The faults applied so far, in start order."""
        with self._lock:
            return tuple(FaultInterval(k, t, s, e) for k, t, s, e in self._intervals)

    def pid(self, name: Hashable) -> int:
        proc = self._procs[self._known(name)]
        return proc.pid if isinstance(proc, subprocess.Popen) else proc

    def alive(self, name: Hashable) -> bool:
        """True while the process exists and is not a zombie (paused counts as alive)."""
        proc = self._procs[self._known(name)]
        if isinstance(proc, subprocess.Popen):
            return proc.poll() is None
        try:
            with open(f"/proc/{proc}/stat") as f:
                return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
        except (FileNotFoundError, ProcessLookupError):
            return False

    def paused(self, name: Hashable) -> bool:
        return self._known(name) in self._paused

    def now(self) -> float:
        """Seconds since ``t0`` (set by :meth:`start` or the first manual action)."""
        if self._t0 is None:
            self._t0 = self._clock()
        return self._clock() - self._t0

    # -- manual actions --------------------------------------------------------------

    def pause(self, name: Hashable) -> None:
        """``SIGSTOP`` the process; returns once the kernel shows it stopped (≤ 1 s)."""
        with self._lock:
            self._require_alive(name, "pause")
            if name in self._paused:
                raise ValueError(f"process {name!r} is already paused")
            os.kill(self.pid(name), signal.SIGSTOP)
            _await_state(self.pid(name), stopped=True)
            self._paused[name] = self._open("pause", name)

    def resume(self, name: Hashable) -> None:
        """``SIGCONT`` a paused process."""
        with self._lock:
            if self._known(name) not in self._paused:
                raise ValueError(f"process {name!r} is not paused")
            os.kill(self.pid(name), signal.SIGCONT)
            _await_state(self.pid(name), stopped=False)
            self._close(self._paused.pop(name))

    def kill(self, name: Hashable) -> None:
        """``SIGKILL`` the process and reap it if it is our child."""
        with self._lock:
            self._require_alive(name, "kill")
            proc = self._procs[name]
            os.kill(self.pid(name), signal.SIGKILL)
            if isinstance(proc, subprocess.Popen):
                proc.wait()
            else:
                try:
                    os.waitpid(proc, 0)
                except ChildProcessError:
                    deadline = time.monotonic() + 2.0
                    while self.alive(name) and time.monotonic() < deadline:
                        time.sleep(0.005)
            if name in self._paused:
                self._close(self._paused.pop(name))
            self._killed[name] = self._open("kill", name)

    def restart(self, name: Hashable) -> None:
        """Start a killed process again with the ``restart`` callable."""
        with self._lock:
            if self._restart is None:
                raise ValueError("this nemesis was given no restart callable")
            if self.alive(name):
                raise ValueError(f"process {name!r} is running; kill it before restarting")
            proc = self._restart(name)
            if not isinstance(proc, (int, subprocess.Popen)) or isinstance(proc, bool):
                raise ValueError(f"restart({name!r}) must return a pid or a Popen, got {proc!r}")
            self._procs[name] = proc
            if name in self._killed:
                self._close(self._killed.pop(name))

    # -- the schedule ----------------------------------------------------------------

    def start(self, t0: Optional[float] = None) -> None:
        """Play the schedule in a background thread, times counted from ``t0`` (now)."""
        if self._thread is not None:
            raise ValueError("this nemesis has already been started")
        self._t0 = self._clock() if t0 is None else t0
        self._thread = threading.Thread(target=self._play, name="nemesis", daemon=True)
        self._thread.start()

    def stop(self) -> tuple[FaultInterval, ...]:
        """Stop the schedule, heal every open fault, and return the intervals.

        Re-raises an error that stopped the schedule thread.
        """
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        with self._lock:
            for name in list(self._paused):
                self.resume(name)
            if self._restart is not None:
                for name in list(self._killed):
                    self.restart(name)
        if self._error is not None:
            error, self._error = self._error, None
            raise RuntimeError(f"the nemesis schedule failed: {error!r}") from error
        return self.intervals

    def __enter__(self) -> "ProcessNemesis":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def _play(self) -> None:
        actions = []
        for n, fault in enumerate(self.schedule):
            actions.append((fault.at, 0, n, fault))
            actions.append((fault.at + fault.duration, 1, n, fault))
        actions.sort(key=lambda a: (a[0], a[1], a[2]))
        applied: set[int] = set()
        try:
            for at, is_end, n, fault in actions:
                if self._stop.wait(max(0.0, at - self.now())):
                    return
                with self._lock:
                    if not is_end:
                        if self._applicable(fault):
                            self._begin(fault)
                            applied.add(n)
                        else:
                            self.skipped.append(fault)
                    elif n in applied:
                        self._end(fault)
        except BaseException as e:  # noqa: BLE001 - reported by stop()
            self._error = e

    def _applicable(self, fault: Fault) -> bool:
        name = fault.target
        return self.alive(name) and name not in self._paused and name not in self._killed

    def _begin(self, fault: Fault) -> None:
        if fault.kind == "pause":
            self.pause(fault.target)
        else:
            self.kill(fault.target)

    def _end(self, fault: Fault) -> None:
        if fault.kind == "pause":
            if fault.target in self._paused:
                self.resume(fault.target)
        elif fault.target in self._killed and self._restart is not None:
            self.restart(fault.target)

    # -- helpers -----------------------------------------------------------------------

    def _known(self, name: Hashable) -> Hashable:
        if name not in self._procs:
            raise ValueError(f"unknown process {name!r}; known: {list(self._procs)}")
        return name

    def _require_alive(self, name: Hashable, action: str) -> None:
        if not self.alive(name):
            raise ValueError(f"cannot {action} process {name!r}: it is not running")

    def _open(self, kind: str, name: Hashable) -> int:
        self._intervals.append([kind, name, self.now(), None])
        return len(self._intervals) - 1

    def _close(self, index: int) -> None:
        self._intervals[index][3] = self.now()


def _await_state(pid: int, stopped: bool, timeout: float = 1.0) -> None:
    """Wait until ``/proc`` shows ``pid`` stopped (state T) or not; signals land asynchronously."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            return
        if (state in ("T", "t")) == stopped or state in ("Z", "X"):
            return
        time.sleep(0.001)
