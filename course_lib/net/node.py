"""One Raft server as an OS process: the same :class:`RaftNode` core, driven by asyncio.

    python -m course_lib.net.node --id n1 --peers n1=127.0.0.1:7001,n2=127.0.0.1:7002,...
        --data DIR [--tick-ms 10] [--election-ms 300,600] [--heartbeat-ms 50]
        [--snapshot-threshold 1000] [--max-entries 4096] [--no-fsync] [--cut n2,n3]
        [--voters n1,n2,n3 | --join] [--parent-pid PID] [--core FILE] [--read-mode log]

:class:`NetNode` is a :class:`~course_lib.raft.driver.RaftDriver` (the same client
sessions, KV state machine and Ready handling as the simulator's host) whose I/O is
real:

- **storage**: :class:`~.wal.WALStorage` in ``DIR``.  Each Ready is persisted by one
  WAL append + fsync, run in a worker thread; meanwhile the event loop keeps reading
  the network and stepping the core, so everything that arrived during the fsync
  lands in the *next* Ready: one fsync per batch (group commit).  The Ready's messages
  are sent only after its fsync returned — except a leader's AppendEntries, sent
  while its own fsync runs, with ``leader_commit`` capped at what it has persisted
  (:meth:`NetNode.send_appends_early`, thesis §10.2.1) —
  and the committed entries that earlier Readies persisted are applied (their
  clients answered) meanwhile too (:meth:`RaftDriver.stable_committed`); then the
  core is :meth:`~course_lib.raft.RaftNode.advance`\\ d.  Snapshots of the state
  machine are written by the same thread, in order; they are taken once
  ``--snapshot-threshold`` entries *and* as many as the state's size were applied
  (:meth:`NetNode.compaction_due`).
- **network**: one TCP port (``--peers`` gives every node's ``host:port``, so nodes can
  run on different machines) for peers, clients and control, in frames of
  :mod:`.codec`.  A connection's first frame says what it is: ``("peer", id)``,
  ``("client",)`` or ``("control",)``.  Each peer has one outgoing connection; the
  frames for it wait in a bounded buffer (a frame that does not fit is dropped: Raft
  retries) and are written together, once per event-loop turn.  Every message one
  read brings is stepped before the Ready loop runs; every client request one read
  brings is handled as one batch (one batch of entries, one AppendEntries per
  follower); replies to a client are written together once per turn.
- **time**: a tick every ``--tick-ms`` of the event loop's monotonic clock.
- **control** requests: ``("status",)`` -> dict (role, term, commit index, log
  length, voters, fsyncs, the longest event-loop stall, ...); ``("cut", ids)`` sets
  the peers this node is cut off from — it drops frames to and from them, both ways;
  ``("peers", ((id, host, port), ...))`` teaches it servers added since it started;
  ``("conf_change", "add" | "remove", id)`` proposes a membership change (leader
  only, thesis §4.2.1); ``("stop",)`` exits.
- **membership**: ``--voters`` is the bootstrap configuration (default: every peer);
  ``--join`` starts a server with none, to be added to a running cluster: it learns
  the configuration from the leader's log or snapshot.  Role and membership changes
  are logged on stderr.
- **another core**: ``--core FILE`` loads ``{"core_class", "kv_factory", "sources"}`` from a
  pickle its :class:`~.cluster.ProcessCluster` wrote (cloudpickle: exercise 2's
  learner-written node, defined in a notebook, travels by value) and hosts that core
  and state machine instead of the course's; ``--read-mode log`` serves reads through
  the log (a core without ReadIndex).  A core that raises crashes the process with
  its traceback on stderr (:func:`fatal`).
- **lifetime**: it dies with its parent — ``prctl(PR_SET_PDEATHSIG, SIGKILL)`` on Linux
  plus a watchdog on ``--parent-pid`` twice a second — so no node outlives the notebook
  or test that started it.  SIGTERM exits cleanly; SIGKILL is a crash, after which the
  WAL is all that remains.

Startup prints one JSON line on stdout: ``{"event": "ready", "node", "port", "pid",
"torn"}`` once it listens; errors (port in use, corrupt data dir) go to stderr with
exit status 2 (bad arguments / port) or 3 (data dir).
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import gc
import json
import os
import random
import signal
import sys
import time
from typing import Optional

from ..raft.client import ClientRequest
from ..raft.driver import HostEvents, RaftDriver
from ..raft.kv import validate_op
from ..raft.errors import ConfChangeInProgress, NotLeader
from ..raft.messages import RAFT_MESSAGES, AppendEntries, ConfChange, NodeState
from ..raft.node import RaftConfig
from . import codec
from .wal import CorruptDataDir, WALStorage

OUT_LIMIT = 8 << 20          # bytes waiting per outgoing peer connection; more are dropped
READ_CHUNK = 1 << 18         # bytes asked of a socket per read
# Entries per AppendEntries: a batch of client writes (up to what one read brings) goes
# to each follower in one message (the simulator's default of 64 suits its lessons).
MAX_ENTRIES = 4096
_RAFT_TYPES = tuple(RAFT_MESSAGES)
LEADER = NodeState.LEADER


def die_with_parent(parent_pid: Optional[int]) -> None:
    """Ask Linux to SIGKILL us when the parent (thread) dies, then close the race
    where it died before the request."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            pr_set_pdeathsig = 1
            ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):
            pass
    if parent_pid is not None and os.getppid() != parent_pid:
        os._exit(0)


def fatal(what: str) -> None:
    """A bug in the core or the driver: crash at once, loudly (crash-only software:
    the WAL is all a restart needs)."""
    import traceback

    print(f"fatal: {what}\n{traceback.format_exc()}", file=sys.stderr, flush=True)
    os._exit(70)


def _fatal_on_error(what: str):
    def check(fut) -> None:
        if fut.cancelled():
            return
        exc = fut.exception()
        if exc is not None:
            try:
                raise exc
            except BaseException:
                fatal(what)
    return check


def load_core(path: str) -> tuple:
    """``(core_class, kv_factory)`` from the pickle ``--core`` names.

    Unpickling runs code named by the data, so this is only ever done with the file the
    :class:`~.cluster.ProcessCluster` starting this process wrote, for its own children,
    in its own data dir: it is as trusted as the command line.  Nothing from the network
    is ever unpickled (frames are JSON of whitelisted types, :mod:`.codec`)."""
    import pickle

    import cloudpickle  # noqa: F401  (by-value classes are rebuilt by cloudpickle's functions)

    with open(path, "rb") as f:
        payload = pickle.load(f)
    if not isinstance(payload, dict) or set(payload) != {"core_class", "kv_factory", "sources"}:
        raise ValueError(f"{path} does not hold a core written by ProcessCluster")
    # the notebook cells' lines, so that a traceback through them shows the code
    import linecache

    linecache.cache.update(payload["sources"])
    return payload["core_class"], payload["kv_factory"]


def parse_peers(text: str) -> dict:
    """``"n1=host:port,n2=host:port"`` -> ``{"n1": ("host", port), ...}``."""
    peers = {}
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        nid, sep, addr = item.partition("=")
        host, sep2, port = addr.rpartition(":")
        if not sep or not sep2 or not nid or not host or not port.isdigit():
            raise ValueError(f"bad peer {item!r}: expected id=host:port")
        if nid in peers:
            raise ValueError(f"peer {nid!r} listed twice")
        peers[nid] = (host, int(port))
    if not peers:
        raise ValueError("no peers given")
    return peers


STATUS_TAIL = 64        # entries at the log's end whose terms a status reports


def term_runs(log, tail: int = STATUS_TAIL) -> list:
    """The terms of the last ``tail`` entries still in ``log``, run-length encoded:
    ``[[first index, term], ...]``, each run until the next one starts (the widget's log
    grid colours entries by term)."""
    runs: list = []
    for i in range(max(log.first_index, log.last_index - tail + 1), log.last_index + 1):
        term = log.term_at(i)
        if not runs or runs[-1][1] != term:
            runs.append([i, term])
    return runs


class _LogEvents(HostEvents):
    """Role changes and membership changes, one line each on stderr (the node's log)."""

    def on_soft_state(self, host, soft) -> None:
        state, leader = soft
        print(f"{time.time():.3f} {host.node_id}: {state.value} in term {host.core.current_term}, "
              f"leader {leader}", file=sys.stderr, flush=True)

    def on_conf_applied(self, host, entry) -> None:
        print(f"{time.time():.3f} {host.node_id}: applied {entry.command.op} {entry.command.node} "
              f"at {entry.index}: voters {host.core.conf_at(entry.index)}", file=sys.stderr, flush=True)


class _Client:
    """A client connection: replies go back on it (the driver's client address).
    Replies are collected in ``out`` and written together once per event-loop turn."""
    __slots__ = ("writer", "out")

    def __init__(self, writer) -> None:
        self.writer = writer
        self.out: list = []


class NetNode(RaftDriver):
    def __init__(self, node_id: str, peers: dict, data_dir: str, config: RaftConfig, *,
                 tick_ms: float = 10, snapshot_threshold: Optional[int] = 1000,
                 fsync: bool = True, cut=(), seed: Optional[int] = None,
                 voters: Optional[tuple] = None, core_class=None, kv_factory=None,
                 read_mode: str = "read_index") -> None:
        if node_id not in peers:
            raise ValueError(f"node {node_id!r} is not in the peer list {sorted(peers)}")
        # the bootstrap configuration: every peer by default; () for a server that joins
        # a running cluster (it learns its configuration from the leader's log, §4.2.1)
        voters = tuple(sorted(peers)) if voters is None else tuple(sorted(voters))
        unknown = [v for v in voters if v not in peers]
        if unknown:
            raise ValueError(f"voters {unknown} are not in the peer list {sorted(peers)}")
        super().__init__(node_id, voters, config, snapshot_threshold=snapshot_threshold,
                         events=_LogEvents(), core_class=core_class, kv_factory=kv_factory,
                         read_mode=read_mode)
        self.peers = dict(peers)
        self.tick_s = tick_ms / 1000
        self.storage = WALStorage(data_dir, node_id, voters, fsync=fsync)
        self.boot(random.Random(seed if seed is not None else os.urandom(16)), self.storage)
        # the course's core replicates while its leader persists (send_appends_early);
        # another core may have no take_appends: its messages wait for the next Ready
        self._take_appends = getattr(self.core, "take_appends", None)
        self.cut = set(cut)
        self.frames_dropped = 0
        self.readies = 0
        self.max_tick_lag = 0.0
        # per peer: encoded frames waiting for its sender task, their size, its wake-up
        self._out: dict[str, list] = {}
        self._out_size: dict[str, int] = {}
        self._out_wake: dict[str, asyncio.Event] = {}
        self._dirty: list = []              # client connections with replies to write
        self._wake: Optional[asyncio.Event] = None
        # one thread does every disk write, in order: WAL appends and snapshots
        self._io = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="wal")
        self._stop: Optional[asyncio.Event] = None
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._tasks: list = []
        self._persisting = False            # a Ready's WAL write is running
        self._durable = self.core.log.last_index   # the last index on disk (all of it at boot)

    # -- RaftDriver I/O ----------------------------------------------------------------------
    def persist(self, rd) -> None:
        self.storage.persist(rd)

    def send_message(self, msg) -> None:
        dst = msg.dst
        if dst in self.cut:
            self.frames_dropped += 1
            return
        out = self._out.get(dst)
        if out is None:
            return
        frame = codec.encode_frame(msg)
        if self._out_size[dst] + len(frame) > OUT_LIMIT:
            self.frames_dropped += 1            # a stopped or slow peer: Raft retries
            return
        out.append(frame)
        self._out_size[dst] += len(frame)
        self._out_wake[dst].set()

    def reply(self, client, seq: int, ok: bool, result=None, hint=None) -> None:
        if client.writer.is_closing():
            return
        if not client.out:
            if not self._dirty:
                self._loop.call_soon(self.flush_replies)
            self._dirty.append(client)
        client.out.append(codec.encode_reply(self.node_id, "client", seq, ok, result, hint))

    def flush_replies(self) -> None:
        """Write each client connection's replies of this loop turn in one write."""
        dirty, self._dirty = self._dirty, []
        for client in dirty:
            out, client.out = client.out, []
            if not client.writer.is_closing():
                client.writer.write(b"".join(out))

    def compaction_due(self) -> bool:
        """``snapshot_threshold`` entries applied since the last snapshot, *and* at least
        as many as the state machine holds keys and sessions: a snapshot costs time in
        proportion to the state, so it is paid at most once per as many entries
        (amortized O(1) per entry; a fixed threshold would make a growing store spend
        O(n) per ``threshold`` writes).  The log kept in memory stays below the size of
        the state, or the threshold."""
        if self.snapshot_threshold is None:
            return False
        core = self.core
        since = core.last_applied - core.log.snapshot_index
        kv = self.kv
        return since >= self.snapshot_threshold and \
            since >= len(kv.data) + len(getattr(kv, "sessions", ()))

    def save_snapshot(self, snap) -> None:
        # after the WAL appends already queued, in the same thread: until it is written
        # the WAL still holds every entry the snapshot covers, so a crash loses nothing
        fut = self._io.submit(self.storage.save_snapshot, snap)
        fut.add_done_callback(_fatal_on_error(f"{self.node_id}: saving a snapshot"))

    # -- the Ready loop -------------------------------------------------------------------------
    def wake(self) -> None:
        self._wake.set()
        if self._persisting and self._take_appends is not None and self.core.state is LEADER:
            self.send_appends(self._take_appends())

    async def ready_loop(self) -> None:
        loop = asyncio.get_running_loop()
        core = self.core
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                while core.has_ready():
                    rd = core.ready()
                    rest, applied = None, 0
                    if rd.must_sync:
                        if rd.hard_state is None and rd.snapshot is None and core.state is LEADER:
                            rest = self.send_appends_early(rd)
                        applied = self.stable_committed(rd)
                        if applied:
                            self.apply_entries(rd.committed_entries[:applied])
                        # the loop keeps stepping the core meanwhile: group commit
                        self._persisting = True
                        try:
                            await loop.run_in_executor(self._io, self.persist, rd)
                        finally:
                            self._persisting = False
                        if rd.entries:
                            self._durable = rd.entries[-1].index
                        elif rd.snapshot is not None:
                            self._durable = rd.snapshot.index
                    self.finish_ready(rd, rest, applied)
                    self.readies += 1
            except Exception:
                fatal(f"{self.node_id}: handling a Ready")

    def send_appends_early(self, rd) -> list:
        """A leader sends its AppendEntries *while* its own WAL write runs (thesis
        §10.2.1; etcd's leader does the same), and so are those the core queues until
        that write returns (:meth:`wake`, :meth:`RaftNode.take_appends`): new entries
        reach the followers without waiting for the leader's disk.  Returns the other
        messages, which wait.

        Safe because the leader's own copy of an entry counts only once it is on its
        disk, for everything seen from outside: a follower's ack may let the core count
        an entry that is not, but followers learn a commit index only through
        ``leader_commit``, capped here at what this server has persisted
        (:meth:`send_appends`), and clients only through applying, which waits for the
        entry's own Ready to be persisted (:meth:`RaftDriver.stable_committed`).  Only
        when the Ready holds no hard state (a term or vote must be durable before any
        message, Figure 2) and no snapshot.
        """
        rest, appends = [], []
        for m in rd.messages:
            (appends if type(m) is AppendEntries else rest).append(m)
        self.send_appends(appends)
        return rest

    def send_appends(self, msgs) -> None:
        """Send a leader's AppendEntries before its WAL write returned, with
        ``leader_commit`` capped at what this server has persisted: a commit index
        counts the leader's own copy, which is only durable once persisted."""
        cap = self._durable
        for m in msgs:
            if m.leader_commit > cap:
                m = AppendEntries(m.term, m.src, m.dst, m.prev_log_index, m.prev_log_term,
                                  m.entries, cap, m.read_ctx)
            self.send_message(m)

    async def tick_loop(self) -> None:
        loop = asyncio.get_running_loop()
        next_at = loop.time() + self.tick_s
        while True:
            await asyncio.sleep(max(0.0, next_at - loop.time()))
            now = loop.time()
            lag = now - next_at
            if lag > self.max_tick_lag:
                self.max_tick_lag = lag           # a stalled loop is what causes spurious elections
            next_at += self.tick_s
            if next_at < now:              # we were stopped (SIGSTOP) or starved: no burst
                next_at = now + self.tick_s
            try:
                self.core.tick()
                self.wake()
            except Exception:
                fatal(f"{self.node_id}: tick")

    async def watchdog(self, parent_pid: Optional[int]) -> None:
        while parent_pid is not None:
            await asyncio.sleep(0.5)
            if os.getppid() != parent_pid:
                os._exit(0)

    # -- network ----------------------------------------------------------------------------------
    def _start_sender(self, peer: str) -> None:
        self._out[peer] = []
        self._out_size[peer] = 0
        self._out_wake[peer] = asyncio.Event()
        self._tasks.append(asyncio.create_task(self.peer_sender(peer)))

    async def peer_sender(self, peer: str) -> None:
        """Keep one connection to ``peer``; write all its waiting frames at once."""
        host, port = self.peers[peer]
        wake = self._out_wake[peer]
        backoff = 0.05
        while True:
            try:
                reader, writer = await asyncio.open_connection(host, port)
            except OSError:
                await asyncio.sleep(backoff)
                backoff = min(1.0, backoff * 2)
                self._out[peer] = []            # stale by the time the peer is back
                self._out_size[peer] = 0
                continue
            backoff = 0.05
            try:
                writer.write(codec.encode_frame(("peer", self.node_id)))
                while True:
                    await wake.wait()
                    wake.clear()
                    if writer.is_closing() or reader.at_eof():
                        break                       # the peer went away: reconnect
                    frames = self._out[peer]
                    if not frames:
                        continue
                    self._out[peer] = []
                    self._out_size[peer] = 0
                    writer.write(b"".join(frames))
                    if writer.transport.get_write_buffer_size() > 1 << 20:
                        await writer.drain()        # a stopped peer: the buffer fills, then drops
            except (OSError, ConnectionError):
                pass
            finally:
                writer.close()

    async def on_connection(self, reader, writer) -> None:
        try:
            hello = await codec.read_frame(reader)
            kind = hello[0] if isinstance(hello, tuple) and hello else None
            if kind == "peer" and len(hello) == 2 and hello[1] in self.peers:
                await self.serve_peer(hello[1], reader)
            elif kind == "client":
                await self.serve_client(reader, writer)
            elif kind == "control":
                await self.serve_control(reader, writer)
        except (asyncio.IncompleteReadError, ConnectionError, OSError, ValueError):
            pass
        except asyncio.CancelledError:
            pass                                    # shutting down
        finally:
            writer.close()

    async def serve_peer(self, src: str, reader) -> None:
        """Step every message one read brought, then wake the Ready loop once."""
        core = self.core
        frames = codec.FrameSplitter()
        me = self.node_id
        while True:
            data = await reader.read(READ_CHUNK)
            if not data:
                return
            msgs = frames.feed(data)
            if src in self.cut:
                self.frames_dropped += len(msgs)
                continue
            for msg in msgs:
                if not isinstance(msg, _RAFT_TYPES) or msg.src != src or msg.dst != me:
                    raise ValueError(f"unexpected frame from {src}: {msg!r:.200}")
                try:
                    core.step(msg)
                except Exception:
                    fatal(f"{self.node_id}: stepping {msg!r:.300}")
            self.wake()

    async def serve_client(self, reader, writer) -> None:
        """Every request one read brought is handled as one batch (its writes become
        one batch of entries: :meth:`RaftDriver.handle_client_requests`)."""
        me = _Client(writer)
        frames = codec.FrameSplitter()
        while True:
            data = await reader.read(READ_CHUNK)
            if not data:
                return
            batch = []
            for body in frames.feed_bodies(data):
                fields = codec.request_fields(body)
                if fields is None:
                    req = codec.loads(body)
                    if not isinstance(req, ClientRequest):
                        raise ValueError(f"expected a ClientRequest, got {req!r:.200}")
                    fields = (req.session, req.seq, req.op)
                session, seq, op = fields
                try:
                    validate_op(op)
                except ValueError:
                    self.reply(me, seq, False, None, None)
                    continue
                batch.append(ClientRequest(me, self.node_id, session, seq, op))
            try:
                self.handle_client_requests(batch)
            except Exception:
                fatal(f"{self.node_id}: client requests {batch[:3]!r:.300}")
            self.wake()

    async def serve_control(self, reader, writer) -> None:
        while True:
            req = await codec.read_frame(reader)
            cmd = req[0] if isinstance(req, tuple) and req else None
            if cmd == "status":
                answer = self.status()
            elif cmd == "cut" and len(req) == 2:
                unknown = [p for p in req[1] if p not in self.peers]
                if unknown:
                    answer = {"ok": False, "error": f"unknown peers {unknown}"}
                else:
                    self.cut = set(req[1]) - {self.node_id}
                    answer = {"ok": True, "cut": tuple(sorted(self.cut))}
            elif cmd == "peers" and len(req) == 2:
                answer = self.learn_peers(req[1])
            elif cmd == "conf_change" and len(req) == 3:
                answer = self.conf_change(req[1], req[2])
            elif cmd == "timeout_now":
                answer = self.timeout_now()
            elif cmd == "stop":
                writer.write(codec.encode_frame({"ok": True}))
                await writer.drain()
                self._stop.set()
                return
            else:
                answer = {"ok": False, "error": f"unknown control request {req!r:.100}"}
            writer.write(codec.encode_frame(answer))
            await writer.drain()

    def timeout_now(self) -> dict:
        """Campaign now, as on a TimeoutNow (thesis §3.10): the widget's "Trigger election"."""
        c = self.core
        if not callable(getattr(c, "timeout_now", None)):
            return {"ok": False, "error": f"this node's core ({type(c).__name__}) has no timeout_now()"}
        if c.state.value == "leader":
            return {"ok": False, "error": f"{self.node_id} is already the leader"}
        c.timeout_now()
        self.wake()
        return {"ok": True, "term": c.current_term}

    def learn_peers(self, book) -> dict:
        """``book``: ``((id, host, port), ...)``; start talking to the ids not known yet
        (a server added to the cluster).  Idempotent."""
        added = []
        try:
            for nid, host, port in book:
                if not isinstance(nid, str) or not isinstance(host, str) or type(port) is not int:
                    raise ValueError
                if nid not in self.peers:
                    self.peers[nid] = (host, port)
                    if self._loop is not None:
                        self._start_sender(nid)
                    added.append(nid)
        except (TypeError, ValueError):
            return {"ok": False, "error": f"bad peer list {book!r:.200}"}
        return {"ok": True, "added": tuple(added)}

    def conf_change(self, op, nid) -> dict:
        """Propose a single-server change (thesis §4.2.1) if this node leads."""
        try:
            cc = ConfChange(op, nid)
            if not isinstance(nid, str) or not nid:
                raise ValueError(f"server id must be a non-empty str, got {nid!r}")
            if op == "add" and nid not in self.peers:
                raise ValueError(f"no address for {nid!r}: send its peers entry first")
            index, term = self.core.propose_conf_change(cc)
        except NotLeader as e:
            return {"ok": False, "retry": True, "error": f"not the leader (hint {e.leader_hint})"}
        except ConfChangeInProgress as e:
            return {"ok": False, "retry": True, "error": str(e)}
        except ValueError as e:
            return {"ok": False, "error": str(e)}
        self.wake()
        return {"ok": True, "index": index, "term": term}

    def status(self) -> dict:
        c = self.core
        return {
            "ok": True, "node": self.node_id, "pid": os.getpid(), "state": c.state.value,
            "term": c.current_term, "voted_for": c.voted_for, "leader_id": c.leader_id,
            "commit_index": c.commit_index, "last_applied": c.last_applied,
            "voters": c.voters, "committed_voters": c.conf_at(c.commit_index),
            "last_index": c.log.last_index, "snapshot_index": c.log.snapshot_index,
            "term_runs": term_runs(c.log), "cut": tuple(sorted(self.cut)), "fsyncs": self.storage.fsyncs,
            "fsync_ms": round(self.storage.fsync_seconds * 1000, 1),
            "readies": self.readies, "frames_dropped": self.frames_dropped,
            "max_tick_lag_ms": round(self.max_tick_lag * 1000, 1),
            "time": time.time(),
        }

    # -- main ---------------------------------------------------------------------------------------
    async def main(self, parent_pid: Optional[int]) -> None:
        loop = self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._stop.set)
        host, port = self.peers[self.node_id]
        server = await asyncio.start_server(self.on_connection, host, port, reuse_address=True)
        tasks = [asyncio.create_task(self.ready_loop()), asyncio.create_task(self.tick_loop()),
                 asyncio.create_task(self.watchdog(parent_pid))]
        for t, what in zip(tasks, ("the Ready loop", "the tick loop", "the watchdog")):
            t.add_done_callback(_fatal_on_error(f"{self.node_id}: {what} raised"))
        self._tasks = tasks
        for p in self.peers:
            if p != self.node_id:
                self._start_sender(p)
        print(json.dumps({"event": "ready", "node": self.node_id, "port": port,
                          "pid": os.getpid(), "torn": self.storage.torn}), flush=True)
        self.wake()
        await self._stop.wait()
        server.close()
        for t in self._tasks:
            t.cancel()
        self._io.shutdown(wait=True)            # a snapshot being written is finished
        self.storage.close()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m course_lib.net.node", description=__doc__.split("\n")[0])
    ap.add_argument("--id", required=True)
    ap.add_argument("--peers", required=True, help="n1=host:port,n2=host:port,...")
    ap.add_argument("--data", required=True, help="this node's data directory")
    ap.add_argument("--tick-ms", type=float, default=10)
    ap.add_argument("--election-ms", default="300,600", help="lo,hi election timeout (ms)")
    ap.add_argument("--heartbeat-ms", type=float, default=50)
    ap.add_argument("--snapshot-threshold", type=int, default=1000)
    ap.add_argument("--max-entries", type=int, default=MAX_ENTRIES,
                    help="entries per AppendEntries at most")
    ap.add_argument("--no-fsync", action="store_true", help="UNSAFE: never fsync")
    ap.add_argument("--cut", default="", help="peers this node starts cut off from")
    ap.add_argument("--voters", default=None,
                    help="the bootstrap configuration (default: every peer)")
    ap.add_argument("--join", action="store_true",
                    help="start with no configuration: a server being added to a running "
                         "cluster (it learns the configuration from the leader)")
    ap.add_argument("--parent-pid", type=int, default=None)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--core", default=None,
                    help="a pickle of {'core_class', 'kv_factory', 'sources'} written by the ProcessCluster "
                         "that starts this node: host that core instead of the course's")
    ap.add_argument("--read-mode", choices=("read_index", "log"), default="read_index",
                    help="serve reads by ReadIndex (default) or through the log")
    args = ap.parse_args(argv)
    die_with_parent(args.parent_pid)
    core_class = kv_factory = None
    if args.core is not None:
        try:
            core_class, kv_factory = load_core(args.core)
        except Exception as e:
            import traceback

            print(f"error: cannot load the core from {args.core}: {type(e).__name__}: {e}\n"
                  f"{traceback.format_exc()}", file=sys.stderr, flush=True)
            return 2
    # Every message allocates a few dozen short-lived objects: collect the young
    # generation every 50,000 allocations instead of 700 (a measured ~5 % of the CPU);
    # what exists at start-up is frozen out of the collector's scans.
    gc.freeze()
    gc.set_threshold(50_000, 20, 10)
    try:
        peers = parse_peers(args.peers)
        lo, hi = (float(x) for x in args.election_ms.split(","))
        tick = args.tick_ms
        if tick <= 0:
            raise ValueError("--tick-ms must be > 0")
        config = RaftConfig(election_ticks=(max(1, round(lo / tick)), max(1, round(hi / tick))),
                            heartbeat_ticks=max(1, round(args.heartbeat_ms / tick)),
                            max_entries_per_message=args.max_entries)
        cut = [p for p in args.cut.split(",") if p]
        if args.join and args.voters is not None:
            raise ValueError("--join and --voters exclude each other")
        voters = () if args.join else (
            None if args.voters is None else tuple(v for v in args.voters.split(",") if v))
        node = NetNode(args.id, peers, args.data, config, tick_ms=tick,
                       snapshot_threshold=args.snapshot_threshold or None,
                       fsync=not args.no_fsync, cut=cut, seed=args.seed, voters=voters,
                       core_class=core_class, kv_factory=kv_factory, read_mode=args.read_mode)
    except CorruptDataDir as e:
        print(f"error: corrupt data dir: {e}", file=sys.stderr, flush=True)
        return 3
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr, flush=True)
        if core_class is not None or kv_factory is not None:
            import traceback

            traceback.print_exc()               # maybe raised by that core: show where
        return 2
    except Exception:
        if core_class is None and kv_factory is None:
            raise
        fatal(f"{args.id}: building the core {getattr(core_class, '__qualname__', 'RaftNode')} "
              f"and its state machine")
    try:
        asyncio.run(node.main(args.parent_pid))
    except OSError as e:
        host, port = peers[args.id]
        print(f"error: cannot listen on {host}:{port}: {e.strerror or e} "
              f"(port already in use?)", file=sys.stderr, flush=True)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
