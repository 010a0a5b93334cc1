"""One Raft server as an OS process: the same :class:`RaftNode` core, driven by asyncio.

    python -m course_lib.net.node --id n1 --peers n1=127.0.0.1:7001,n2=127.0.0.1:7002,...
        --data DIR [--tick-ms 10] [--election-ms 300,600] [--heartbeat-ms 50]
        [--snapshot-threshold 1000] [--no-fsync] [--cut n2,n3] [--parent-pid PID]

:class:`NetNode` is a :class:`~course_lib.raft.driver.RaftDriver` (the same client
sessions, KV state machine and Ready handling as the simulator's host) whose I/O is
real:

- **storage**: :class:`~.wal.WALStorage` in ``DIR``.  Each Ready is persisted by one
  WAL append + fsync, run in a worker thread; meanwhile the event loop keeps reading
  the network and stepping the core, so everything that arrived during the fsync
  lands in the *next* Ready: one fsync per batch (group commit).  The Ready's messages
  are sent, and its committed entries applied, only after its fsync returned; then the
  core is :meth:`~course_lib.raft.RaftNode.advance`\\ d.
- **network**: one TCP port (``--peers`` gives every node's ``host:port``, so nodes can
  run on different machines) for peers, clients and control, in frames of
  :mod:`.codec`.  A connection's first frame says what it is: ``("peer", id)``,
  ``("client",)`` or ``("control",)``.  Each peer has one outgoing connection fed by a
  bounded queue (a frame that does not fit is dropped: Raft retries).
- **time**: a tick every ``--tick-ms`` of the event loop's monotonic clock.
- **control** requests: ``("status",)`` -> dict (role, term, commit index, log
  length, ...); ``("cut", ids)`` sets the peers this node is cut off from — it drops
  frames to and from them, both ways; ``("stop",)`` exits.
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
import json
import os
import random
import signal
import sys
import time
from typing import Optional

from ..raft.client import ClientReply, ClientRequest
from ..raft.driver import RaftDriver
from ..raft.kv import validate_op
from ..raft.messages import RAFT_MESSAGES
from ..raft.node import RaftConfig
from . import codec
from .wal import CorruptDataDir, WALStorage

QUEUE_FRAMES = 1024          # per outgoing peer connection
_RAFT_TYPES = tuple(RAFT_MESSAGES)


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


class _Client:
    """A client connection: replies go back on it (the driver's client address)."""
    __slots__ = ("writer",)

    def __init__(self, writer) -> None:
        self.writer = writer


class NetNode(RaftDriver):
    def __init__(self, node_id: str, peers: dict, data_dir: str, config: RaftConfig, *,
                 tick_ms: float = 10, snapshot_threshold: Optional[int] = 1000,
                 fsync: bool = True, cut=(), seed: Optional[int] = None) -> None:
        if node_id not in peers:
            raise ValueError(f"node {node_id!r} is not in the peer list {sorted(peers)}")
        voters = tuple(sorted(peers))
        super().__init__(node_id, voters, config, snapshot_threshold=snapshot_threshold)
        self.peers = dict(peers)
        self.tick_s = tick_ms / 1000
        self.storage = WALStorage(data_dir, node_id, voters, fsync=fsync)
        self.boot(random.Random(seed if seed is not None else os.urandom(16)), self.storage)
        self.cut = set(cut)
        self.frames_dropped = 0
        self.readies = 0
        self._queues: dict[str, asyncio.Queue] = {}
        self._wake: Optional[asyncio.Event] = None
        self._io = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="wal")
        self._stop: Optional[asyncio.Event] = None

    # -- RaftDriver I/O ----------------------------------------------------------------------
    def persist(self, rd) -> None:
        self.storage.persist(rd)

    def send_message(self, msg) -> None:
        if msg.dst in self.cut:
            self.frames_dropped += 1
            return
        q = self._queues.get(msg.dst)
        if q is None:
            return
        try:
            q.put_nowait(codec.encode_frame(msg))
        except asyncio.QueueFull:
            self.frames_dropped += 1

    def reply(self, client, seq: int, ok: bool, result=None, hint=None) -> None:
        w = client.writer
        if w.is_closing():
            return
        w.write(codec.encode_frame(ClientReply(self.node_id, "client", seq, ok, result, hint)))

    def save_snapshot(self, snap) -> None:
        self.storage.save_snapshot(snap)

    # -- the Ready loop -------------------------------------------------------------------------
    def wake(self) -> None:
        self._wake.set()

    async def ready_loop(self) -> None:
        loop = asyncio.get_running_loop()
        core = self.core
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                while core.has_ready():
                    rd = core.ready()
                    if rd.must_sync:
                        # the loop keeps stepping the core meanwhile: group commit
                        await loop.run_in_executor(self._io, self.persist, rd)
                    self.finish_ready(rd)
                    self.readies += 1
            except Exception:
                fatal(f"{self.node_id}: handling a Ready")

    async def tick_loop(self) -> None:
        loop = asyncio.get_running_loop()
        next_at = loop.time() + self.tick_s
        while True:
            await asyncio.sleep(max(0.0, next_at - loop.time()))
            now = loop.time()
            next_at += self.tick_s
            if next_at < now:              # we were stopped (SIGSTOP) or starved: no burst
                next_at = now + self.tick_s
            try:
                self.core.tick()
            except Exception:
                fatal(f"{self.node_id}: tick")
            self.wake()

    async def watchdog(self, parent_pid: Optional[int]) -> None:
        while parent_pid is not None:
            await asyncio.sleep(0.5)
            if os.getppid() != parent_pid:
                os._exit(0)

    # -- network ----------------------------------------------------------------------------------
    async def peer_sender(self, peer: str) -> None:
        """Keep one connection to ``peer`` and write its queued frames."""
        q = self._queues[peer]
        host, port = self.peers[peer]
        backoff = 0.05
        while True:
            try:
                reader, writer = await asyncio.open_connection(host, port)
            except OSError:
                await asyncio.sleep(backoff)
                backoff = min(1.0, backoff * 2)
                while not q.empty():            # stale by the time the peer is back
                    q.get_nowait()
                continue
            backoff = 0.05
            try:
                writer.write(codec.encode_frame(("peer", self.node_id)))
                while True:
                    frame = await q.get()
                    if writer.is_closing() or reader.at_eof():
                        break                       # the peer went away: reconnect
                    writer.write(frame)
                    if writer.transport.get_write_buffer_size() > 1 << 20:
                        await writer.drain()        # a stopped peer: the queue overflows
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
        finally:
            writer.close()

    async def serve_peer(self, src: str, reader) -> None:
        core = self.core
        while True:
            msg = await codec.read_frame(reader)
            if src in self.cut:
                self.frames_dropped += 1
                continue
            if not isinstance(msg, _RAFT_TYPES) or msg.src != src or msg.dst != self.node_id:
                raise ValueError(f"unexpected frame from {src}: {msg!r:.200}")
            try:
                core.step(msg)
            except Exception:
                fatal(f"{self.node_id}: stepping {msg!r:.300}")
            self.wake()

    async def serve_client(self, reader, writer) -> None:
        me = _Client(writer)
        while True:
            req = await codec.read_frame(reader)
            if not isinstance(req, ClientRequest):
                raise ValueError(f"expected a ClientRequest, got {req!r:.200}")
            try:
                validate_op(req.op)
            except ValueError:
                self.reply(me, req.seq, False, None, None)
                continue
            try:
                self.handle_client_request(ClientRequest(me, self.node_id, req.session, req.seq, req.op))
            except Exception:
                fatal(f"{self.node_id}: client request {req!r:.300}")
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
            elif cmd == "stop":
                writer.write(codec.encode_frame({"ok": True}))
                await writer.drain()
                self._stop.set()
                return
            else:
                answer = {"ok": False, "error": f"unknown control request {req!r:.100}"}
            writer.write(codec.encode_frame(answer))
            await writer.drain()

    def status(self) -> dict:
        c = self.core
        return {
            "ok": True, "node": self.node_id, "pid": os.getpid(), "state": c.state.value,
            "term": c.current_term, "voted_for": c.voted_for, "leader_id": c.leader_id,
            "commit_index": c.commit_index, "last_applied": c.last_applied,
            "last_index": c.log.last_index, "snapshot_index": c.log.snapshot_index,
            "cut": tuple(sorted(self.cut)), "fsyncs": self.storage.fsyncs,
            "readies": self.readies, "frames_dropped": self.frames_dropped,
            "time": time.time(),
        }

    # -- main ---------------------------------------------------------------------------------------
    async def main(self, parent_pid: Optional[int]) -> None:
        loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._stop.set)
        host, port = self.peers[self.node_id]
        server = await asyncio.start_server(self.on_connection, host, port, reuse_address=True)
        tasks = [asyncio.create_task(self.ready_loop()), asyncio.create_task(self.tick_loop()),
                 asyncio.create_task(self.watchdog(parent_pid))]
        for p in self.peers:
            if p != self.node_id:
                self._queues[p] = asyncio.Queue(QUEUE_FRAMES)
                tasks.append(asyncio.create_task(self.peer_sender(p)))
        print(json.dumps({"event": "ready", "node": self.node_id, "port": port,
                          "pid": os.getpid(), "torn": self.storage.torn}), flush=True)
        self.wake()
        await self._stop.wait()
        server.close()
        for t in tasks:
            t.cancel()
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
    ap.add_argument("--no-fsync", action="store_true", help="UNSAFE: never fsync")
    ap.add_argument("--cut", default="", help="peers this node starts cut off from")
    ap.add_argument("--parent-pid", type=int, default=None)
    ap.add_argument("--seed", type=int, default=None)
    args = ap.parse_args(argv)
    die_with_parent(args.parent_pid)
    try:
        peers = parse_peers(args.peers)
        lo, hi = (float(x) for x in args.election_ms.split(","))
        tick = args.tick_ms
        if tick <= 0:
            raise ValueError("--tick-ms must be > 0")
        config = RaftConfig(election_ticks=(max(1, round(lo / tick)), max(1, round(hi / tick))),
                            heartbeat_ticks=max(1, round(args.heartbeat_ms / tick)))
        cut = [p for p in args.cut.split(",") if p]
        node = NetNode(args.id, peers, args.data, config, tick_ms=tick,
                       snapshot_threshold=args.snapshot_threshold or None,
                       fsync=not args.no_fsync, cut=cut, seed=args.seed)
    except CorruptDataDir as e:
        print(f"error: corrupt data dir: {e}", file=sys.stderr, flush=True)
        return 3
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr, flush=True)
        return 2
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
