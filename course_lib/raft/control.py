"""What a cluster view needs from a Raft cluster, for a simulated one and a real one.

A widget (``course_lib.viz.raft_widget.RaftClusterWidget``) draws servers, messages,
logs and a timeline and offers buttons; it talks to a cluster only through a
*control*, which has the same methods for both kinds of cluster:

- :class:`SimControl` over a :class:`~course_lib.raft.SimCluster`: simulated time
  that moves only when asked (:meth:`SimControl.advance`), the trace read into a
  :class:`~course_lib.raft.timeline.ClusterTimeline`, messages on the wire, every
  log's terms, the network's settings, manual delivery ("you are the network");
- :class:`ProcessControl` over a :class:`~course_lib.net.ProcessCluster`: wall-clock
  time, the timeline fed by polling the nodes' ``states()`` (role, term, vote, commit
  index, log length), kill = SIGKILL, pause = SIGSTOP, client writes and load on
  worker threads (a node's reply never blocks the caller).

The common surface: ``ids``, ``now`` (ms), ``timeline``, ``cluster``, ``kind``,
``poll(fetched=None) -> states``, ``fetch()``, ``leader(states)``, ``in_flight()``,
``cuts(states)``, ``log_window(width)``, ``status_parts(states)``, ``last_write``,
``load_size``; the actions ``crash``, ``restart``, ``pause``, ``resume``,
``partition(*groups)``, ``heal``, ``client_write(key, value)``, ``set_load(n)`` and,
where they make sense, ``trigger_election``, ``expire_timer``, ``set_loss``,
``set_delay``, ``set_duplication``, ``set_manual``, ``deliver``, ``drop``.  An action
that makes no sense raises ``ValueError`` with a sentence a learner can read (the
widget shows it); :attr:`features` says which optional ones a control has.  What both
kinds of cluster do the same way (the fault actions, which both clusters name alike)
is written once, in :class:`ClusterControl`.
"""

from __future__ import annotations

import concurrent.futures
import random
import threading
import time
from typing import Any, Callable, Optional

from .client import ClientReply, ClientRequest, ClientTimeout, ClosedLoopClients, writes_workload
from .messages import (
    AppendEntries, AppendEntriesResponse, InstallSnapshot, InstallSnapshotResponse,
    RequestVote, RequestVoteResponse, TimeoutNow,
)
from .timeline import ClusterTimeline

MAX_LOAD = 16
MAX_WRITES = 8          # client writes in flight at once (clients w1..w8 in the simulator)


def describe_message(msg: Any) -> tuple:
    """``(type, term, index)`` of a message, as a learner reads it (index: the log index
    it is about, or None)."""
    t = type(msg)
    if t is RequestVote:
        return ("PreVote" if msg.pre_vote else "RequestVote", msg.term, msg.last_log_index)
    if t is RequestVoteResponse:
        what = ("pre-vote" if msg.pre_vote else "vote") + (" granted" if msg.granted else " refused")
        return (what, msg.term, None)
    if t is AppendEntries:
        kind = f"AppendEntries ×{len(msg.entries)}" if msg.entries else "heartbeat"
        return (kind, msg.term, msg.prev_log_index)
    if t is AppendEntriesResponse:
        return (("append ok" if msg.success else "append rejected"), msg.term,
                msg.match_index if msg.success else msg.reject_index)
    if t is InstallSnapshot:
        return ("InstallSnapshot", msg.term, msg.snapshot.index)
    if t is InstallSnapshotResponse:
        return ("snapshot reply", msg.term, msg.match_index)
    if t is TimeoutNow:
        return ("TimeoutNow", msg.term, None)
    if t is ClientRequest:
        return ("client " + " ".join(map(str, msg.op)), None, None)
    if t is ClientReply:
        return ("client reply" + ("" if msg.ok else " (not leader)"), None, None)
    return (type(msg).__name__, getattr(msg, "term", None), None)


def _check_load(n) -> int:
    if not isinstance(n, int) or isinstance(n, bool) or not 0 <= n <= MAX_LOAD:
        raise ValueError(f"client load must be an int in [0, {MAX_LOAD}], got {n!r}")
    return n


class ClusterControl:
    """What :class:`SimControl` and :class:`ProcessControl` share: the cluster, its
    node ids, the :class:`ClusterTimeline`, and the actions that are the cluster's own
    methods under the same names (``SimCluster`` and ``ProcessCluster`` both have
    ``crash``, ``restart``, ``pause``, ``resume``, ``partition`` and ``heal``).
    A subclass gives ``kind``, ``clock``, ``features``, and ``fetch()`` and
    ``cuts(states)``, used to refuse a heal with nothing to heal."""

    def __init__(self, cluster, ids: list) -> None:
        self.cluster = cluster
        self.ids = ids
        self.timeline = ClusterTimeline(self.ids)
        self.last_write = None

    def fetch(self):
        raise NotImplementedError

    def cuts(self, states: Optional[dict] = None) -> set:
        raise NotImplementedError

    # -- actions -------------------------------------------------------------------------
    def crash(self, nid: str) -> None:
        self.cluster.crash(nid)

    def restart(self, nid: str) -> None:
        self.cluster.restart(nid)

    def pause(self, nid: str) -> None:
        self.cluster.pause(nid)

    def resume(self, nid: str) -> None:
        self.cluster.resume(nid)

    def partition(self, *groups) -> None:
        self.cluster.partition(*[set(g) for g in groups])

    def heal(self) -> None:
        if not self.cuts(self.fetch()):
            raise ValueError("the network has no cut links to heal")
        self.cluster.heal()


class SimControl(ClusterControl):
    """A :class:`SimCluster` seen through the control surface (module docstring)."""

    kind = "sim"
    clock = "simulated time (s)"
    features = frozenset({"step", "replay", "elect", "network", "manual"})

    def __init__(self, cluster) -> None:
        super().__init__(cluster, sorted(cluster.hosts))
        self.load = ClosedLoopClients(cluster, 0, cluster.sim.random.stream("widget-load"),
                                      prefix="load", workload=writes_workload, think_ms=(10,))
        self.writes = 0

    # -- reading -----------------------------------------------------------------------
    @property
    def now(self) -> float:
        return self.cluster.now

    def fetch(self) -> None:
        return None                  # nothing to fetch: the model is in this process

    def poll(self, fetched=None) -> dict:
        """Read the trace since the last poll into :attr:`timeline`; the states now."""
        c = self.cluster
        tl = self.timeline
        tl.read_trace(c.trace.raw)
        tl.note_network(c.now, self.network_is_bad())
        states = c.states()
        tl.note_commits(c.now, states, c.leader())
        return states

    def leader(self, states: Optional[dict] = None) -> Optional[str]:
        return self.cluster.leader()

    def in_flight(self) -> list:
        return self.cluster.in_flight()

    def held(self) -> list:
        return self.cluster.held_messages()

    @property
    def manual(self) -> bool:
        return self.cluster.manual_delivery

    def cuts(self, states: Optional[dict] = None) -> set:
        """The cut links now (``states`` are not needed: the network is in this process)."""
        return self.cluster.network.cuts

    def log_window(self, width: int) -> tuple:
        """The newest ``width`` log indexes ``lo .. lo + width - 1`` (``lo >= 1``) and
        ``{node: (terms, commit index, snapshot index)}``: each entry's term there
        (None past the log's end or inside the snapshot)."""
        last = max((h.core.log.last_index for h in self.cluster.hosts.values()), default=0)
        lo = max(1, last - width + 1)
        out = {}
        for nid in self.ids:
            core = self.cluster.hosts[nid].core
            log = core.log
            snap, end = log.snapshot_index, log.last_index
            out[nid] = ([log.term_at(i) if snap < i <= end else None for i in range(lo, lo + width)],
                        core.commit_index, snap)
        return lo, out

    def network_settings(self) -> tuple:
        """``(loss, (delay lo, hi) ms, duplication)`` (a delay function shows as 1-5)."""
        net = self.cluster.network
        d = net.delay_ms
        return net.drop_rate, (d if isinstance(d, tuple) else (1, 5)), net.duplicate_rate

    def network_is_bad(self) -> bool:
        net = self.cluster.network
        d = net.delay_ms
        return net.drop_rate > 0 or net.duplicate_rate > 0 or (isinstance(d, tuple) and d[1] > 20)

    @property
    def load_size(self) -> int:
        return self.load.size

    def status_parts(self, states: dict) -> list:
        c = self.cluster
        net = c.network
        violations = c.monitor.violations if c.monitor is not None else []
        safety = ("<span style='color:#2a7a2a'>safety holds</span>" if not violations else
                  f"<span style='color:#c0392b'><b>{len(violations)} safety violation(s)</b></span>")
        wire = f"{len(c.in_flight())} message(s) in flight"
        if c.manual_delivery:
            wire += " <b>waiting for you</b>"
        return [wire, f"sent {net.sent}, delivered {net.delivered}, dropped {net.dropped}, "
                      f"duplicated {net.duplicated}", safety]

    # -- time ----------------------------------------------------------------------------
    def advance(self, ms: float) -> None:
        self.cluster.run_for(ms)

    # -- actions (and those of ClusterControl) --------------------------------------------
    def trigger_election(self, nid: str) -> None:
        c = self.cluster
        if c.node(nid).alive and c.node(nid).state.value == "leader":
            raise ValueError(f"{nid} is already the leader")
        c.timeout_now(nid)

    def expire_timer(self, nid: str) -> None:
        self.cluster.expire_timer(nid)

    def client_write(self, key: str, value: str):
        c = self.cluster
        for i in range(1, MAX_WRITES + 1):
            k = c.client(f"w{i}")
            if k.current is None or k.current.done:
                self.writes += 1
                self.last_write = k.submit(("put", key, value))
                return self.last_write
        raise ValueError(f"{MAX_WRITES} writes are already in flight: let time run first")

    def set_load(self, n: int) -> None:
        self.load.resize(_check_load(n))

    def set_loss(self, p: float) -> None:
        self.cluster.network.drop_rate = p

    def set_delay(self, lo: float, hi: float) -> None:
        self.cluster.network.delay_ms = (lo, hi)

    def set_duplication(self, p: float) -> None:
        self.cluster.network.duplicate_rate = p

    def set_manual(self, on: bool) -> None:
        if on == self.cluster.manual_delivery:
            raise ValueError("you are already the network" if on else "the network already delivers by itself")
        self.cluster.set_manual_delivery(on)

    def deliver(self, mid: int) -> None:
        self._held_check()
        self.cluster.deliver(mid)

    def drop(self, mid: int) -> None:
        self._held_check()
        self.cluster.drop_message(mid)

    def _held_check(self) -> None:
        if not self.cluster.manual_delivery:
            raise ValueError("the network delivers by itself: switch on 'you are the network' first")
        if not self.cluster.held_messages():
            raise ValueError("no message is waiting: let time run, or make a timer expire")

    def close(self) -> None:
        self.load.running = False


class ProcessWrite:
    """A client write to a real cluster, done on a worker thread: poll ``done``."""

    __slots__ = ("client_id", "input", "done", "result", "timed_out", "error", "reported")

    def __init__(self, client_id: str, op: tuple) -> None:
        self.client_id = client_id
        self.input = op
        self.done = False
        self.result = None
        self.timed_out = False
        self.error: Optional[str] = None
        self.reported = False

    def __repr__(self) -> str:
        return (f"ProcessWrite({self.client_id!r}, {self.input!r}, done={self.done}, "
                f"timed_out={self.timed_out}, error={self.error!r})")


class ProcessControl(ClusterControl):
    """A :class:`~course_lib.net.ProcessCluster` seen through the control surface.

    ``now`` is wall-clock ms since the control was made.  Kills and restarts run on the
    caller's thread (the cluster forks its nodes on a thread of its own); polls may run
    on another thread (:meth:`fetch`), client writes and load run on worker threads.
    """

    kind = "processes"
    clock = "wall-clock time (s)"
    features = frozenset()

    def __init__(self, cluster, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(cluster, list(cluster.members))
        self._clock = clock
        self._t0 = clock()
        self._states: dict = {}
        self._writer = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="widget-write")
        self._writes: list = []
        self.last_write: Optional[ProcessWrite] = None
        self._load: list = []             # (thread, stop event) per load client
        self._closed = False

    # -- reading -----------------------------------------------------------------------
    @property
    def now(self) -> float:
        return (self._clock() - self._t0) * 1000.0

    def fetch(self) -> dict:
        """Poll every node (blocking, up to ~1 s for a node that does not answer): may
        run on a worker thread; hand the result to :meth:`poll`."""
        return self.cluster.states()

    def poll(self, fetched: Optional[dict] = None) -> dict:
        states = self.fetch() if fetched is None else fetched
        t = self.now
        self._states = states
        self.timeline.observe(t, states)
        for w in self._writes:
            if w.done and not w.reported:
                w.reported = True
                what = " ".join(w.input)
                if w.timed_out:
                    self.timeline.event(t, "client", f"client {w.client_id}: {what} timed out (outcome unknown)")
                elif w.error:
                    self.timeline.event(t, "client", f"client {w.client_id}: {what} failed: {w.error}")
                else:
                    self.timeline.event(t, "client", f"client {w.client_id}: {what} done")
        self._writes = [w for w in self._writes if not w.reported]
        self.timeline.note_commits(t, states, self.leader(states))
        return states

    def leader(self, states: Optional[dict] = None) -> Optional[str]:
        """The responding leader with the highest term in ``states`` (default: the last poll)."""
        states = self._states if states is None else states
        best, term = None, -1
        for nid, s in states.items():
            if s.get("responding") and s["state"] == "leader" and s["term"] > term:
                best, term = nid, s["term"]
        return best

    def in_flight(self) -> list:
        return []                    # frames on real sockets are not observed

    def held(self) -> list:
        return []

    manual = False

    def cuts(self, states: Optional[dict] = None) -> set:
        states = self._states if states is None else states
        return {(a, b) for a, s in states.items() for b in (s.get("cut") or ())}

    def log_window(self, width: int) -> tuple:
        """As :meth:`SimControl.log_window`, from the last poll: each node reports the
        terms of its log's last entries (``term_runs``: :func:`course_lib.net.node.term_runs`);
        an entry older than those is ``"?"``."""
        rows = {nid: self._states.get(nid) or {} for nid in self.ids}
        last = max((s.get("last_index") or 0 for s in rows.values()), default=0)
        lo = max(1, last - width + 1)
        out = {}
        for nid, s in rows.items():
            end, snap = s.get("last_index") or 0, s.get("snapshot_index") or 0
            runs = s.get("term_runs") or []
            terms = []
            for i in range(lo, lo + width):
                if not snap < i <= end:
                    terms.append(None)
                    continue
                known = [term for start, term in runs if start <= i]
                terms.append(known[-1] if known else "?")
            out[nid] = (terms, s.get("commit_index") or 0, snap)
        return lo, out

    @property
    def load_size(self) -> int:
        return len(self._load)

    def status_parts(self, states: dict) -> list:
        up = [n for n, s in states.items() if s["alive"]]
        paused = [n for n, s in states.items() if s["alive"] and s.get("paused")]
        pids = ", ".join(f"{n}:{states[n]['pid']}" for n in up)
        parts = [f"{len(up)}/{len(states)} processes up" + (f" ({len(paused)} paused)" if paused else ""),
                 f"pids {pids or '-'}"]
        if self._load:
            parts.append(f"{len(self._load)} load client(s)")
        return parts

    # -- time ----------------------------------------------------------------------------
    def advance(self, ms: float) -> None:
        raise ValueError("a real cluster runs on its own clock: there is no simulated time to step")

    # -- actions (and those of ClusterControl) --------------------------------------------
    def _nothing(self, what: str, instead: str):
        raise ValueError(f"{what} is for the simulator; on real processes {instead}")

    def trigger_election(self, nid: str) -> None:
        self.cluster.timeout_now(nid)

    def expire_timer(self, nid: str) -> None:
        self._nothing("expiring a timer by hand", "pause or kill the leader instead")

    def set_loss(self, p: float) -> None:
        self._nothing("message loss", "partition the network instead")

    def set_delay(self, lo: float, hi: float) -> None:
        self._nothing("message delay", "partition the network instead")

    def set_duplication(self, p: float) -> None:
        self._nothing("message duplication", "partition the network instead")

    def set_manual(self, on: bool) -> None:
        self._nothing("'you are the network'", "the kernel's TCP delivers")

    def deliver(self, mid: int) -> None:
        self.set_manual(True)

    def drop(self, mid: int) -> None:
        self.set_manual(True)

    def client_write(self, key: str, value: str) -> ProcessWrite:
        if self._closed:
            raise ValueError("this control is closed")
        if sum(not w.done for w in self._writes) >= MAX_WRITES:
            raise ValueError(f"{MAX_WRITES} writes are already waiting for the cluster")
        w = ProcessWrite("w1", ("put", key, value))
        self._writes.append(w)
        self.last_write = w
        self.timeline.event(self.now, "client", f"client w1 sends put {key} {value}")
        self._writer.submit(self._put, w)
        return w

    def _put(self, w: ProcessWrite) -> None:
        try:
            w.result = self.cluster.client(w.client_id).put(*w.input[1:])
        except ClientTimeout:
            w.timed_out = True
        except Exception as error:  # noqa: BLE001 — shown in the event log
            w.error = f"{type(error).__name__}: {error}"
        finally:
            w.done = True

    def set_load(self, n: int) -> None:
        n = _check_load(n)
        if self._closed and n:
            raise ValueError("this control is closed")
        while len(self._load) > n:
            _thread, stop = self._load.pop()
            stop.set()                # it ends after the operation it has in flight
        while len(self._load) < n:
            cid = f"load{len(self._load)}"
            stop = threading.Event()
            thread = threading.Thread(target=self._load_loop, args=(cid, stop), daemon=True,
                                      name=f"widget-{cid}")
            self._load.append((thread, stop))
            thread.start()

    def _load_loop(self, cid: str, stop: threading.Event) -> None:
        rng = random.Random(cid)
        k = self.cluster.client(cid)
        n = 0
        while not stop.is_set():
            n += 1
            try:
                k.put(*writes_workload(rng, cid, n)[1:])
            except (ClientTimeout, ValueError, OSError):
                stop.wait(0.1)
            stop.wait(0.01)

    def close(self) -> None:
        """Stop the load threads and the writer (the cluster itself keeps running)."""
        self._closed = True
        threads = [t for t, _stop in self._load]
        self.set_load(0)
        for t in threads:
            t.join(timeout=6)
        self._writer.shutdown(wait=False, cancel_futures=True)


def control_for(cluster) -> Any:
    """The control for ``cluster``: a :class:`SimControl` for anything with a simulator
    (``.sim``), a :class:`ProcessControl` for a cluster of processes (``.procs``)."""
    if hasattr(cluster, "sim") and hasattr(cluster, "hosts"):
        return SimControl(cluster)
    if hasattr(cluster, "procs") and hasattr(cluster, "states"):
        return ProcessControl(cluster)
    raise ValueError(f"expected a SimCluster or a ProcessCluster, got {cluster!r}")
