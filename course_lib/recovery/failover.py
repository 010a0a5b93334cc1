"""``FailoverModel``: what a hot-standby group of real processes does, sampled over time.

The model behind :class:`~course_lib.viz.recovery_widget.RecoveryWidget`, usable (and
tested) without ipywidgets.  Over a :class:`~.processes.ReplicaGroup` it

- carries out the faults — ``act("kill" | "pause" | "resume" | "restart", node)``, where
  ``node`` may also be ``"primary"`` or ``"standby"`` (resolved from the last sample) —
  and refuses with ``ValueError`` (a clear message) those that make no sense: pause a
  paused process, resume one that is not paused, restart one that runs;
- ``poll()`` asks every running, unpaused server for its ``dump`` (role, epoch, log
  position, attached backups, ZooKeeper session state) and returns a :class:`Sample`:
  one :class:`ServerView` per server, with status ``primary`` / ``standby`` /
  ``deposed`` / ``paused`` / ``down`` / ``no answer``, and the standby's lag (entries it
  lacks that the primary holds);
- turns what happened into :class:`Moment` s, stamped when they happened: the faults it
  carried out, and the servers' own events (``primary``: a promotion, with its epoch;
  ``deposed``; ``session_lost``; a process that exited by itself);
- optionally writes as a client (``start_writes`` / ``stop_writes``: a thread putting
  ``w0, w1, ...`` through a :class:`~.client.RecoveryClient`), recording each outcome as a
  :class:`WriteOutcome` — acknowledged with its sequence number, or refused with why.

Times are seconds since the model was made (``time.monotonic()`` based).  ``poll`` and
``act`` block on sockets and processes for up to a second or so: a widget calls them off
the event loop.  ``close()`` stops the writer and kills every process of the group.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Optional

from .records import NotEnoughReplicas, ReplicationError

ACTIONS = ("kill", "pause", "resume", "restart")
# A process's exit status -> what it means (the server exits 3 when its session is lost).
EXIT_MEANINGS = {3: "its ZooKeeper session was lost: it exited (crash-only)", -9: "SIGKILL"}


@dataclass(frozen=True)
class ServerView:
    """One server as seen by one poll."""

    node: str
    status: str                      # primary, standby, deposed, paused, down, no answer
    epoch: Optional[int] = None
    last_seq: Optional[int] = None   # the end of its log
    commit_seq: Optional[int] = None
    lag: Optional[int] = None        # a standby: entries the primary holds that it lacks
    session: str = "-"               # its ZooKeeper session, as it reports it
    pid: Optional[int] = None
    detail: str = ""


@dataclass(frozen=True)
class Sample:
    time: float
    servers: tuple                   # ServerView per node, in the group's order
    acked: int                       # writes acknowledged so far (this model's writer)
    refused: int

    def server(self, node: str) -> ServerView:
        for view in self.servers:
            if view.node == node:
                return view
        raise ValueError(f"unknown node {node!r}")

    @property
    def primary(self) -> Optional[ServerView]:
        """The server that answers as primary (None during a fail-over)."""
        return next((v for v in self.servers if v.status == "primary"), None)


@dataclass(frozen=True)
class Moment:
    """Something that happened: ``kind`` is an action (kill, pause, resume, restart) or a
    server's event (primary, deposed, session_lost, exited)."""

    time: float
    node: str
    kind: str
    text: str
    epoch: Optional[int] = None


@dataclass(frozen=True)
class WriteOutcome:
    time: float
    ok: bool
    seq: Optional[int] = None        # acknowledged: its sequence number
    error: str = ""                  # refused: the error's class name
    message: str = ""


class FailoverModel:
    """Faults, polling and client writes over ``group`` (see the module docstring)."""

    def __init__(self, group, *, history: int = 600, write_interval: float = 0.05,
                 client_timeout: float = 3.0, request_timeout: float = 0.5) -> None:
        if not isinstance(write_interval, (int, float)) or not 0.0 <= write_interval <= 5.0:
            raise ValueError(f"write_interval must be 0 to 5 seconds, not {write_interval!r}")
        self.group = group
        self.nodes = tuple(group.nodes)
        self.write_interval = float(write_interval)
        self.client_timeout = client_timeout
        self.request_timeout = request_timeout
        self.origin = time.monotonic()
        self.samples: deque[Sample] = deque(maxlen=history)
        self.moments: list[Moment] = []
        self.writes: deque[WriteOutcome] = deque(maxlen=20_000)
        self.acked = 0
        self.refused = 0
        self.last_acked_seq: Optional[int] = None
        self.paused: dict[str, float] = {}          # node -> when we paused it
        self._killed: set[str] = set()              # killed by us: no "exited" moment
        self._seen_exit: set[int] = set()           # pids whose exit was recorded
        self._event_index = len(group.events)
        self._lock = threading.Lock()
        self._writer: Optional[threading.Thread] = None
        self._stop_writes = threading.Event()
        self._client = None
        self._closed = False

    # -- time -------------------------------------------------------------------------

    def now(self) -> float:
        return time.monotonic() - self.origin

    def _at(self, monotonic: float) -> float:
        return monotonic - self.origin

    # -- faults -----------------------------------------------------------------------

    def resolve(self, which: str) -> str:
        """``which`` as a node: a node's name, or ``"primary"`` / ``"standby"`` (from the
        last sample)."""
        if which in self.nodes:
            return which
        if which not in ("primary", "standby"):
            raise ValueError(f"unknown server {which!r}: use {', '.join(self.nodes)}, "
                             f"'primary' or 'standby'")
        last = self.samples[-1] if self.samples else self.poll()
        for view in last.servers:
            if view.status == which:
                return view.node
        raise ValueError(f"no server is {which} right now "
                         f"({', '.join(f'{v.node}: {v.status}' for v in last.servers)})")

    def act(self, action: str, which: str) -> Moment:
        """Carry out ``action`` on ``which``; the :class:`Moment` recorded.  ``ValueError``
        if it makes no sense (the message says why)."""
        if self._closed:
            raise ValueError("this model is closed: its processes are gone")
        if action not in ACTIONS:
            raise ValueError(f"unknown action {action!r}: use {', '.join(ACTIONS)}")
        node = self.resolve(which)
        running = self.group.is_running(node)
        if action == "pause":
            if node in self.paused:
                raise ValueError(f"{node} is already paused: resume it first")
            self.group.pause(node)
            self.paused[node] = time.monotonic()
            text = f"you paused {node} (SIGSTOP)"
        elif action == "resume":
            if node not in self.paused:
                raise ValueError(f"{node} is not paused" + ("" if running else " (it is down)"))
            self.paused.pop(node)
            if running:
                self.group.resume(node)
            text = f"you resumed {node} (SIGCONT)"
        elif action == "kill":
            self.group.kill(node)         # ValueError if it is not running
            self.paused.pop(node, None)
            self._killed.add(node)
            text = f"you killed {node} (SIGKILL)"
        else:
            if running:
                state = "paused: resume or kill it first" if node in self.paused else "running"
                raise ValueError(f"cannot restart {node}: it is {state}")
            self.group.start(node)
            self._killed.discard(node)
            text = f"you restarted {node}"
        moment = Moment(self.now(), node, action, text)
        with self._lock:
            self.moments.append(moment)
        return moment

    # -- observing ----------------------------------------------------------------------

    def poll(self) -> Sample:
        """Ask every server how it stands; record new moments; the :class:`Sample`."""
        self._collect_events()
        raw = {}
        for node in self.nodes:
            raw[node] = self._observe(node)
        primary_seq = next((d["last_seq"] for d in raw.values()
                            if isinstance(d, dict) and d.get("role") == "primary"), None)
        views = []
        for node in self.nodes:
            views.append(self._view(node, raw[node], primary_seq))
        with self._lock:
            sample = Sample(self.now(), tuple(views), self.acked, self.refused)
            self.samples.append(sample)
        return sample

    def _observe(self, node: str):
        proc = self.group.procs.get(node)
        if proc is None:
            return "never started"
        code = proc.poll()
        if code is not None:
            if proc.pid not in self._seen_exit:
                self._seen_exit.add(proc.pid)
                if node not in self._killed:
                    meaning = EXIT_MEANINGS.get(code, f"exit status {code}")
                    with self._lock:
                        self.moments.append(Moment(self.now(), node, "exited",
                                                   f"{node} exited: {meaning}"))
            return f"exit:{code}"
        if node in self.paused:
            return "paused"
        try:
            reply = self.group.request(node, {"op": "dump"}, timeout=self.request_timeout)
        except (OSError, ValueError) as error:
            return f"no answer: {error}"
        reply["pid"] = proc.pid
        return reply

    def _view(self, node: str, raw, primary_seq: Optional[int]) -> ServerView:
        pid = self.group.procs[node].pid if node in self.group.procs else None
        if raw == "paused":
            frozen = time.monotonic() - self.paused[node]
            return ServerView(node, "paused", session="frozen", pid=pid,
                              detail=f"frozen for {frozen:.1f} s (session timeout "
                                     f"{self.group.session_timeout:g} s)")
        if isinstance(raw, str):
            if raw.startswith("exit:"):
                code = int(raw[5:])
                detail = EXIT_MEANINGS.get(code, f"exit status {code}")
                return ServerView(node, "down", detail=detail)
            if raw == "never started":
                return ServerView(node, "down", detail="not started")
            return ServerView(node, "no answer", pid=pid, detail=raw[len("no answer: "):])
        role = raw["role"]
        status = {"primary": "primary", "backup": "standby", "deposed": "deposed"}[role]
        lag = None
        if status == "standby" and primary_seq is not None:
            lag = max(0, primary_seq - raw["last_seq"])
        detail = ""
        if status == "primary":
            detail = f"backups attached: {', '.join(raw['backups']) or 'none (writes refused)'}"
        return ServerView(node, status, raw["epoch"], raw["last_seq"], raw["commit_seq"], lag,
                          raw.get("session", "?"), pid, detail)

    def _collect_events(self) -> None:
        with self.group._cond:
            fresh = self.group.events[self._event_index:]
            self._event_index = len(self.group.events)
        found = []
        for e in fresh:
            kind, node = e.get("event"), e.get("node", "?")
            at = self._at(e.get("received", time.monotonic()))
            if kind == "primary":
                found.append(Moment(at, node, "primary",
                                    f"{node} became primary (epoch {e.get('epoch')})", e.get("epoch")))
            elif kind == "deposed":
                found.append(Moment(at, node, "deposed",
                                    f"{node} was deposed: {e.get('by')} refused its epoch "
                                    f"{e.get('led')} (epoch {e.get('epoch')} began)", e.get("epoch")))
            elif kind == "session_lost":
                found.append(Moment(at, node, "session_lost",
                                    f"{node}'s ZooKeeper session expired"))
            elif kind == "following":
                found.append(Moment(at, node, "following",
                                    f"{node} follows {e.get('primary')} (epoch {e.get('epoch')})",
                                    e.get("epoch")))
        with self._lock:
            self.moments.extend(found)
            self.moments.sort(key=lambda m: m.time)

    # -- what happened ----------------------------------------------------------------

    def failovers(self) -> list[Moment]:
        """The promotions: one ``primary`` moment per epoch begun."""
        with self._lock:
            return [m for m in self.moments if m.kind == "primary"]

    def moments_since(self, t: float) -> list[Moment]:
        with self._lock:
            return [m for m in self.moments if m.time >= t]

    # -- client writes ------------------------------------------------------------------

    @property
    def writing(self) -> bool:
        return (self._writer is not None and self._writer.is_alive()
                and not self._stop_writes.is_set())

    def start_writes(self) -> None:
        """Start the writer thread (no-op if it runs)."""
        if self._closed:
            raise ValueError("this model is closed: its processes are gone")
        if self.writing:
            return
        if self._writer is not None:
            self._writer.join()       # a stopped writer finishing its last write
        if self._client is None:
            self._client = self.group.client(timeout=self.client_timeout)
        self._stop_writes.clear()
        self._writer = threading.Thread(target=self._write_loop, daemon=True,
                                        name="failover-writer")
        self._writer.start()

    def stop_writes(self, wait: float = 10.0) -> None:
        """Stop the writer; wait up to ``wait`` s for its last write to finish (0: do not
        wait — the thread ends after that write)."""
        self._stop_writes.set()
        if self._writer is not None:
            self._writer.join(wait)
            if not self._writer.is_alive():
                self._writer = None

    def write_once(self, key: str, value) -> WriteOutcome:
        """One write through the model's client (blocking); its outcome, recorded."""
        if self._client is None:
            self._client = self.group.client(timeout=self.client_timeout)
        try:
            seq = self._client.put(key, value)
        except NotEnoughReplicas as error:
            outcome = WriteOutcome(self.now(), False, error="NotEnoughReplicas", message=str(error))
        except (ReplicationError, TimeoutError, OSError, ValueError) as error:
            outcome = WriteOutcome(self.now(), False, error=type(error).__name__, message=str(error))
        else:
            outcome = WriteOutcome(self.now(), True, seq=seq)
        with self._lock:
            self.writes.append(outcome)
            if outcome.ok:
                self.acked += 1
                self.last_acked_seq = outcome.seq
            else:
                self.refused += 1
        return outcome

    def _write_loop(self) -> None:
        i = 0
        while not self._stop_writes.is_set():
            outcome = self.write_once(f"w{i}", i)
            i += 1
            # after a refusal, do not hammer: the fail-over takes seconds anyway
            self._stop_writes.wait(self.write_interval if outcome.ok else 0.25)

    # -- tear-down ------------------------------------------------------------------------

    def close(self) -> None:
        """Stop writing, close the client, kill every process of the group."""
        self._closed = True
        self.stop_writes()
        if self._client is not None:
            self._client.close()
            self._client = None
        for node in list(self.paused):
            self.paused.pop(node)
        self.group.close()
