"""Stale reads on a real ZooKeeper ensemble: plain reads are not linearizable, ``sync()`` + read is.

ZooKeeper's writes are linearizable: every write goes through the leader and is
committed by a quorum.  A read is not: it is answered by whichever server the client is
connected to, from that server's local copy of the tree, which may lag the leader.  A
client that reads from a follower can therefore miss a write that *completed* before
the read began — a stale read, which no sequential register allows.

:func:`stale_read_experiment` records a real history that shows it:

- one *writer* session, connected to the **leader** alone, writes ``1, 2, 3, ...`` (one
  write per round, each waiting for the previous one) to a fresh znode that holds ``0``;
- ``readers`` sessions, each connected to **one follower** alone (its single
  ``127.0.0.1:port`` as hosts, so kazoo cannot move them), read the znode back each time
  they see that a newer write has returned — the documentation's own example, "A
  writes, then tells B to read" — ``r1`` at once, the others after a short random delay;
  with ``sync_reads=True`` each read is ``sync(path)`` then ``get(path)``, recorded as
  *one* read operation from before the sync to after the get;
- meanwhile a :class:`~course_lib.check.nemesis.ProcessNemesis` pauses that follower's
  JVM (``SIGSTOP`` … ``SIGCONT``) for 20–50 ms, again and again: a garbage-collection
  pause, in effect.  Writes do not wait for it (the leader and the other follower are a
  quorum); when it wakes up, the reads queued on its socket race with the backlog of
  commits from the leader, and often win;
- every time comes from ``time.monotonic()`` (seconds since the run started) and the
  history is checked with ``check(register(0), history)``.

A call that gets no answer within ``op_timeout`` (or fails with a connection error) is an
*unknown outcome*: ``Operation(ret=None)``, and that client continues under a new id
(``w'``, ``r1'``), as Jepsen's crashed processes do.

What ``sync()`` buys, precisely.  ``sync(path)`` is forwarded by the follower to the
leader; the follower answers it only after applying everything the leader had committed
when it processed the sync, and ZooKeeper serves a session's requests in order, so the
read that follows sees at least that state.  Every write that completed before the sync
was issued had been committed by the leader before the sync reached it, so sync + read
never misses a completed write *while the leader stays the leader* — the situation this
experiment creates (follower pauses far below ``syncLimit`` and the session timeout, so
no election happens).  It is **not** linearizable in every corner case: the leader
answers a sync from its own state, without a quorum round (ZOOKEEPER-1675, "sync is not
a quorum operation", still open; see also the "Consistency Guarantees" section of
ZooKeeper's internals documentation).  A leader cut off from its followers keeps
believing it leads until its ``syncLimit`` expires; meanwhile a new leader may commit
writes, and a sync answered by the old one lets the following read miss them.  The
experiment never produces that situation, so its linearizable sync + read histories show
"linearizable in practice, without leader changes", not a guarantee.

What makes stale reads appear (measured on a 2-core loopback machine): reading the
moment a write has returned.  Readers that poll on their own clock almost never catch
the follower behind (0 stale in ~3,500 reads); reading right after the write returned
catches it now and then even without faults (the leader answers the writer as it sends
the commit to the followers), and the pauses make it frequent and deep — reads several
writes behind, milliseconds after the missed write returned.

``stale reads`` are counted directly from the history, independently of the checker: a
completed read that returned ``v`` although the write of some ``u > v`` had completed
before the read was invoked.  Values order like the writes because one session issues
them one at a time and ZooKeeper applies a session's writes in order.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Optional

import plotly.graph_objects as go

from .checker import CheckResult, check
from .history import Operation
from .models import register
from .nemesis import FaultInterval, ProcessNemesis, random_schedule
from .plot import plot_history

ROOT = "/course-zk-reads"
INITIAL = 0


@dataclass(frozen=True)
class StaleRead:
    """A completed read that missed a write completed before it began.

    ``read`` returned ``read.output``; ``missed`` is the latest write that had returned
    before ``read.call`` (its value is larger).
    """

    read: Operation
    missed: Operation

    @property
    def behind(self) -> int:
        """How many writes the read was behind."""
        return self.missed.input[1] - self.read.output

    @property
    def age(self) -> float:
        """Seconds between the missed write's return and the read's invocation."""
        return self.read.call - self.missed.ret

    def describe(self) -> str:
        return (f"client {self.read.client_id!r} read {self.read.output} during "
                f"[{self.read.call:.4f}, {self.read.ret:.4f}] s, but w {self.missed.input[1]} "
                f"had returned at {self.missed.ret:.4f} s ({self.behind} write(s) behind)")


@dataclass(frozen=True)
class ExperimentResult:
    """One run of :func:`stale_read_experiment`.  Times are seconds since the run began.

    ``result`` is the checker's verdict on ``history`` (``ok`` True / False / None when
    ``check_timeout`` ran out); ``stale_reads`` the reads that missed a completed write,
    found directly (see the module docstring); ``faults`` the follower's pauses.
    """

    sync_reads: bool
    leader: str
    follower: str
    path: str
    history: tuple[Operation, ...]
    result: CheckResult
    stale_reads: tuple[StaleRead, ...]
    faults: tuple[FaultInterval, ...]
    duration: float
    errors: tuple[str, ...] = field(default=())

    @property
    def ok(self) -> Optional[bool]:
        return self.result.ok

    @property
    def writes(self) -> tuple[Operation, ...]:
        return tuple(op for op in self.history if op.input[0] == "write")

    @property
    def reads(self) -> tuple[Operation, ...]:
        return tuple(op for op in self.history if op.input[0] == "read")

    def counts(self) -> dict[str, int]:
        unknown = sum(op.ret is None for op in self.history)
        return {"writes": len(self.writes), "reads": len(self.reads), "unknown": unknown,
                "stale": len(self.stale_reads), "pauses": len(self.faults)}

    def latencies(self, kind: str) -> list[float]:
        """Seconds from call to return of the completed ``"read"`` or ``"write"`` operations."""
        if kind not in ("read", "write"):
            raise ValueError(f"kind is 'read' or 'write', not {kind!r}")
        return [op.ret - op.call for op in self.history
                if op.input[0] == kind and op.ret is not None]

    def summary(self) -> str:
        c = self.counts()
        mode = "sync() + read" if self.sync_reads else "plain reads"
        verdict = {True: "linearizable", False: "NOT linearizable",
                   None: "undecided (checker timeout)"}[self.ok]
        lines = [f"{mode} from follower {self.follower}, writes via leader {self.leader}: "
                 f"{c['writes']} writes, {c['reads']} reads, {c['unknown']} unknown outcome(s), "
                 f"{c['pauses']} follower pause(s), {self.duration:.2f} s",
                 f"{c['stale']} stale read(s); history {verdict} "
                 f"(checked in {self.result.elapsed:.3f} s)"]
        for stale in self.stale_reads[:3]:
            lines.append("  " + stale.describe())
        if len(self.stale_reads) > 3:
            lines.append(f"  ... and {len(self.stale_reads) - 3} more")
        return "\n".join(lines)

    def plot(self, *, around_first_stale: bool = True, window: float = 0.25,
             title: Optional[str] = None) -> go.Figure:
        """The history timeline (:func:`~course_lib.check.plot.plot_history`): the read the
        checker could not place in red, the follower's pauses shaded, and every stale read
        marked with a red ✕ (hover: which write it missed).

        With ``around_first_stale`` the x axis is zoomed on ``window`` seconds around the
        first stale read (the whole run stays available by zooming out).
        """
        mode = "sync() + read" if self.sync_reads else "plain reads"
        fig = plot_history(self.history, self.result,
                           faults=[(f.start, f.end, "") for f in self.faults],
                           title=title or f"ZooKeeper register, {mode} from a paused follower",
                           labels=False)
        if self.stale_reads:
            reads = [s.read for s in self.stale_reads]
            fig.add_trace(go.Scatter(
                name="stale read", mode="markers",
                x=[(op.call + op.ret) / 2 for op in reads],
                y=[f"client {op.client_id}" for op in reads],
                marker=dict(symbol="x", size=9, color="#d62728", line=dict(width=1)),
                hovertext=[s.describe() for s in self.stale_reads], hoverinfo="text"))
            if around_first_stale:
                first = self.stale_reads[0]
                lo = max(min(first.missed.call, first.read.call) - window / 2, -0.01 * window)
                fig.update_xaxes(range=[lo, lo + window])
        return fig


def find_stale_reads(history: list[Operation] | tuple[Operation, ...]) -> tuple[StaleRead, ...]:
    """The completed reads that returned a value older than a write that had returned
    before the read was invoked (a write ``a`` with ``a.ret <= read.call`` precedes it,
    as in the checker).  Values are the writer's round numbers, so larger is newer."""
    writes = sorted((op for op in history if op.input[0] == "write" and op.ret is not None),
                    key=lambda op: op.ret)
    stale = []
    for op in sorted(history, key=lambda op: op.call):
        if op.input[0] != "read" or op.ret is None:
            continue
        latest: Optional[Operation] = None
        for w in writes:
            if w.ret > op.call:
                break
            if latest is None or w.input[1] > latest.input[1]:
                latest = w
        if latest is not None and latest.input[1] > op.output:
            stale.append(StaleRead(op, latest))
    return tuple(stale)


def stale_read_experiment(ensemble_or_hosts: Any, *, sync_reads: bool, rounds: int = 300,
                          seed: int = 0, readers: int = 3, follower: Optional[int] = None,
                          pause: Optional[tuple[float, float]] = (0.02, 0.05),
                          mean_gap: float = 0.03, write_gap: float = 0.002,
                          read_delay: float = 0.04, op_timeout: float = 2.0,
                          time_limit: float = 20.0, check_timeout: float = 30.0,
                          session_timeout: float = 10.0) -> ExperimentResult:
    """Write ``rounds`` values through the leader while ``readers`` clients read them back
    from one follower that is paused again and again; check the history (module docstring).

    ``ensemble_or_hosts`` is a :class:`course_lib.zk.Ensemble` (needed to pause the
    follower's process) or a ``"host:port,..."`` string of servers that answer ``srvr``
    (then ``pause`` must be None: their processes are out of reach).  ``follower``
    picks the follower's server id (Ensemble only; default: the lowest).

    ``pause=(lo, hi)``: pause lengths in seconds, uniform in that range, separated by
    exponential gaps of mean ``mean_gap``, drawn from ``seed``; ``None``: no nemesis.
    ``write_gap``: seconds the writer waits between writes.  Reader ``r1`` reads the
    moment it sees a newer write return; readers ``r2``, ``r3``... first wait a random
    ``[0, read_delay]`` seconds (seeded), so their reads also start late inside a pause,
    when the follower has missed several writes.

    Bounded in time: each call gets ``op_timeout`` seconds (then its outcome is unknown),
    the workload stops after ``time_limit`` seconds even if rounds remain, the checker
    after ``check_timeout``; the follower is always resumed (the nemesis is stopped in a
    ``finally``).  Real timing makes every run different: ``seed`` fixes the pause
    schedule and the readers' delays, not the outcome.
    """
    _validate(sync_reads=sync_reads, rounds=rounds, readers=readers, pause=pause,
              mean_gap=mean_gap, write_gap=write_gap, read_delay=read_delay,
              op_timeout=op_timeout, time_limit=time_limit, check_timeout=check_timeout)
    leader_addr, follower_addr, follower_name, pid = _locate(ensemble_or_hosts, follower, pause)
    run = _Run(sync_reads=sync_reads, rounds=rounds, path=f"{ROOT}/run-{uuid.uuid4().hex[:12]}",
               write_gap=write_gap, read_delay=read_delay, op_timeout=op_timeout,
               time_limit=time_limit)
    schedule = () if pause is None else random_schedule(
        [follower_name], seed=seed, duration=time_limit, kinds=("pause",),
        mean_gap=mean_gap, length=pause)
    nemesis = ProcessNemesis({follower_name: pid}, schedule) if pid is not None else None
    faults = run.play(leader_addr, follower_addr, readers=readers, seed=seed,
                      nemesis=nemesis, session_timeout=session_timeout)
    ops = sorted(run.history, key=lambda op: op.call)
    result = check(register(INITIAL), ops, timeout=check_timeout)
    return ExperimentResult(
        sync_reads=sync_reads, leader=leader_addr, follower=follower_addr, path=run.path,
        history=tuple(ops), result=result, stale_reads=find_stale_reads(ops),
        faults=tuple(f for f in faults if f.start <= run.elapsed), duration=run.elapsed,
        errors=tuple(run.errors))


def _validate(*, sync_reads, rounds, readers, pause, mean_gap, write_gap, read_delay,
              op_timeout, time_limit, check_timeout) -> None:
    if not isinstance(sync_reads, bool):
        raise ValueError(f"sync_reads must be True or False, not {sync_reads!r}")
    if isinstance(rounds, bool) or not isinstance(rounds, int) or rounds < 1:
        raise ValueError(f"rounds must be a positive integer, not {rounds!r}")
    if isinstance(readers, bool) or not isinstance(readers, int) or not 1 <= readers <= 8:
        raise ValueError(f"readers must be an integer from 1 to 8, not {readers!r}")
    if pause is not None and not (isinstance(pause, tuple) and len(pause) == 2
                                  and 0 < pause[0] <= pause[1] <= 0.5):
        raise ValueError(f"pause must be None or (lo, hi) seconds with 0 < lo <= hi <= 0.5 "
                         f"(far below ZooKeeper's 2 s sync limit), not {pause!r}")
    for name, value in (("mean_gap", mean_gap), ("op_timeout", op_timeout),
                        ("time_limit", time_limit), ("check_timeout", check_timeout)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            raise ValueError(f"{name} must be a positive number of seconds, not {value!r}")
    for name, value in (("write_gap", write_gap), ("read_delay", read_delay)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise ValueError(f"{name} must be >= 0 seconds, not {value!r}")


def _locate(ensemble_or_hosts: Any, follower: Optional[int],
            pause: Optional[tuple[float, float]]) -> tuple[str, str, str, Optional[int]]:
    """``(leader address, follower address, follower's name, follower's pid or None)``."""
    from course_lib.zk import Ensemble, parse_hosts, server_mode

    if isinstance(ensemble_or_hosts, Ensemble):
        ensemble = ensemble_or_hosts
        statuses = ensemble.status()
        leaders = [s.id for s in statuses if s.mode == "leader"]
        followers = [s.id for s in statuses if s.mode == "follower"]
        if len(leaders) != 1 or not followers:
            raise ValueError("the ensemble needs a leader and a follower serving, not "
                             + ", ".join(f"server {s.id}: {s.mode}" for s in statuses))
        if follower is None:
            follower = followers[0]
        elif follower not in followers:
            raise ValueError(f"server {follower!r} is not a follower; the followers are "
                             f"{followers}")
        pid = ensemble.pid(follower)
        if pid is None:
            raise ValueError(f"server {follower} has no running process")
        return (f"127.0.0.1:{ensemble.client_port(leaders[0])}",
                f"127.0.0.1:{ensemble.client_port(follower)}", f"server {follower}",
                pid if pause is not None else None)
    if isinstance(ensemble_or_hosts, str):
        if pause is not None:
            raise ValueError("pausing the follower needs its process: pass the Ensemble, "
                             "or pause=None with a hosts string")
        if follower is not None:
            raise ValueError("follower= is a server id of an Ensemble; with a hosts string "
                             "the first follower listed is used")
        modes = [(f"{h}:{p}", server_mode(h, p)) for h, p in parse_hosts(ensemble_or_hosts)]
        leaders = [a for a, m in modes if m == "leader"]
        followers = [a for a, m in modes if m == "follower"]
        if len(leaders) != 1 or not followers:
            raise ValueError(f"need a leader and a follower among {ensemble_or_hosts!r}, "
                             f"found {modes}")
        return leaders[0], followers[0], followers[0], None
    raise ValueError(f"pass an Ensemble or a hosts string, not {ensemble_or_hosts!r}")


class _Run:
    """One writer thread and the reader threads, recording operations on one clock."""

    def __init__(self, *, sync_reads: bool, rounds: int, path: str, write_gap: float,
                 read_delay: float, op_timeout: float, time_limit: float) -> None:
        from kazoo.exceptions import KazooException
        from kazoo.handlers.threading import KazooTimeoutError

        self.sync_reads = sync_reads
        self.rounds = rounds
        self.path = path
        self.write_gap = write_gap
        self.read_delay = read_delay
        self.op_timeout = op_timeout
        self.time_limit = time_limit
        self.history: list[Operation] = []
        self.errors: list[str] = []
        self.crashes: list[BaseException] = []
        self.elapsed = 0.0
        self._unknown = (KazooTimeoutError, KazooException, TimeoutError)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._written = INITIAL  # the last round whose write returned (or timed out)
        self._written_cv = threading.Condition()
        self._t0 = time.monotonic()

    def now(self) -> float:
        return time.monotonic() - self._t0

    def play(self, leader: str, follower: str, *, readers: int, seed: int,
             nemesis: Optional[ProcessNemesis], session_timeout: float
             ) -> tuple[FaultInterval, ...]:
        """Connect, run the threads under the nemesis, clean up; return the faults."""
        from course_lib.zk import connect

        clients: list = []
        faults: tuple[FaultInterval, ...] = ()
        try:
            writer = connect(leader, timeout=session_timeout, start=False)
            clients.append(writer)
            writer.ensure_path(ROOT)
            writer.create(self.path, str(INITIAL).encode())
            for _ in range(readers):
                reader = connect(follower, timeout=session_timeout, start=False)
                clients.append(reader)
                reader.sync(self.path)  # the znode is on the follower before the run
            threads = [threading.Thread(target=self._guard, args=(self.write_loop, writer),
                                        name="zk-reads-w", daemon=True)]
            threads += [threading.Thread(
                target=self._guard, name=f"zk-reads-r{k}", daemon=True,
                args=(self.read_loop, reader, f"r{k}",
                      None if k == 1 else random.Random(f"{seed}-r{k}")))
                for k, reader in enumerate(clients[1:], start=1)]
            self._t0 = time.monotonic()
            try:
                if nemesis is not None:
                    nemesis.start(self._t0)
                for thread in threads:
                    thread.start()
                threads[0].join(self.time_limit + self.op_timeout + 1.0)
                self._stop.set()
                with self._written_cv:
                    self._written_cv.notify_all()
                for thread in threads[1:]:
                    thread.join(self.op_timeout + 1.0)
                self.elapsed = self.now()
            finally:
                self._stop.set()
                if nemesis is not None:
                    faults = nemesis.stop()  # SIGCONT if the follower is paused
            try:
                writer.delete(self.path)
            except self._unknown:
                pass
        finally:
            for client in clients:
                try:
                    client.stop()
                    client.close()
                except Exception:  # noqa: BLE001 - closing a client that may be broken
                    pass
        if self.crashes:
            raise RuntimeError(f"a client thread crashed: {self.crashes[0]!r}") \
                from self.crashes[0]
        return faults

    def _guard(self, loop, *args) -> None:
        try:
            loop(*args)
        except BaseException as e:  # noqa: BLE001 - re-raised by play()
            self.crashes.append(e)
            self._stop.set()

    def _record(self, op: Operation, error: Optional[BaseException] = None) -> None:
        with self._lock:
            self.history.append(op)
            if error is not None:
                self.errors.append(f"{op.client_id}: {op.input[0]} "
                                   f"{'' if op.input[1] is None else op.input[1]}: {error!r}")

    def write_loop(self, client) -> None:
        client_id = "w"
        for value in range(1, self.rounds + 1):
            if self._stop.is_set() or self.now() > self.time_limit:
                break
            call = self.now()
            try:
                client.set_async(self.path, str(value).encode()).get(timeout=self.op_timeout)
            except self._unknown as e:
                self._record(Operation(client_id, ("write", value), call), e)
                client_id += "'"  # its write may still take effect: a new process goes on
            else:
                self._record(Operation(client_id, ("write", value), call, None, self.now()))
            with self._written_cv:
                self._written = value
                self._written_cv.notify_all()
            if self.write_gap:
                time.sleep(self.write_gap)

    def read_loop(self, client, name: str, delay: Optional[random.Random]) -> None:
        client_id, seen = name, INITIAL
        while not self._stop.is_set() and self.now() <= self.time_limit:
            with self._written_cv:  # "A wrote; now B reads": wait for a newer write's return
                self._written_cv.wait_for(
                    lambda: self._written > seen or self._stop.is_set(), timeout=0.5)
                if self._written == seen:
                    continue
                seen = self._written
            if delay is not None:
                time.sleep(delay.uniform(0.0, self.read_delay))
            call = self.now()
            try:
                if self.sync_reads:
                    client.sync_async(self.path).get(timeout=self.op_timeout)
                data, _ = client.get_async(self.path).get(
                    timeout=max(0.001, self.op_timeout - (self.now() - call)))
            except self._unknown as e:
                self._record(Operation(client_id, ("read", None), call), e)
                client_id += "'"
            else:
                self._record(Operation(client_id, ("read", None), call, int(data), self.now()))
