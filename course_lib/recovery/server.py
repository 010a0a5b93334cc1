"""The real runtime: one replica per OS process, hot standby by ZooKeeper election.

    python -m course_lib.recovery.server --id a --data DIR --group G [--hosts H]
        [--namespace course] [--acks 1] [--session-timeout 2] [--port 0] [--restore FILE]
        [--no-self-fencing]

Hosts a :class:`~.core.Replica` on asyncio: TCP on 127.0.0.1 for clients and peers,
:class:`~.storage.DiskStorage` (fsync) for its log, and on ZooKeeper:

- ``LeaderElection`` ``recovery-G`` decides who is primary (one candidate per process;
  a dead process's candidacy ends with its session);
- the znode ``/NAMESPACE/recovery/G/primary`` holds the primary's ``{"id", "address"}``.
  A newly elected process claims it with a compare-and-set (``set`` with the version it
  read); the **version** after the claim is the new **epoch**, the fencing token carried
  by every replication message.  Backups and clients watch it to find the primary.

Durability: a client's ``put`` is answered ``ok`` only when the write is fsynced here
and on ``acks`` backups (``--acks`` must be >= 1: a deposed primary then cannot
acknowledge anything, because no backup of the new epoch will acknowledge it).

Fencing a primary that was replaced (it was paused, or cut off from ZooKeeper), in two
kinds:

- **by the others, with the epoch** (needs nothing from the old primary): a standby that
  is promoted keeps its connection to the primary it followed, sends it ``Refuse(new
  epoch)`` on it (:meth:`~.core.Replica.fence`) and refuses by the epoch anything it
  still sends there; the old primary, on reading it, is *deposed*: it answers every
  request ``Deposed`` (a ``NotPrimary``) and acknowledges nothing more;
- **by itself, if it notices** (*self-fencing*): it refuses requests while its ZooKeeper
  connection is suspended, and exits when its session is lost.  ``--no-self-fencing``
  turns that off — a fault-injection switch for the lesson, to watch epoch fencing
  alone: the process then behaves as one whose ZooKeeper client has not noticed yet
  (after its session is lost it also ignores the primary record: it learns of the new
  epoch only from the replica that refuses it).

Client requests, one JSON object per line, answered ``{"ok": true, ...}`` or ``{"ok":
false, "kind": ERROR_CLASS, "error": TEXT}``: ``{"op": "put", "key", "value"}`` ->
``seq``; ``{"op": "get", "key"}`` -> ``value`` (primary only); ``{"op": "dump"}`` ->
``node, role, epoch, commit_seq, last_seq, state, backups, session`` (the ZooKeeper
session's state: ``CONNECTED``, ``SUSPENDED`` or ``LOST``), ``self_fencing``;
``{"op": "backup"}`` -> ``snapshot, checksum`` (primary only).

Events on stdout, one JSON object per line with ``time`` (``time.time()``): ``ready``
(``port``), ``primary`` (``epoch``), ``following`` (``primary``, ``epoch``), ``refuse``
(``to``, ``epoch``: a Refuse sent to an older primary), ``deposed`` (``epoch``, ``led``:
the epoch it had led, ``by``: who, ``via``: ``replication`` for a Refuse on a replication
connection, ``zookeeper`` for a newer primary record), ``session`` (``state``), ``session_lost``
(with self-fencing the process then exits with status 3: crash-only, restart it).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import threading
import time
from typing import Optional

from kazoo.exceptions import BadVersionError, NodeExistsError
from kazoo.protocol.states import KazooState

from course_lib.coord import LeaderElection
from course_lib.coord.base import Recipe
from course_lib.zk import connect

from .backup import read_backup
from .codec import decode, encode
from .core import Replica
from .records import (CatchUp, Deposed, NotPrimary, Ready, Refuse, ReplicationError, Role,
                      check_count)
from .storage import DiskStorage


_emit_lock = threading.Lock()


def emit(**fields) -> None:
    """One event, one whole line (kazoo's threads emit too: lines must not interleave)."""
    line = json.dumps({"time": time.time(), **fields}) + "\n"
    with _emit_lock:
        sys.stdout.write(line)
        sys.stdout.flush()


def primary_path(namespace: str, group: str) -> str:
    return f"/{namespace}/recovery/{group}/primary"


def election_name(group: str) -> str:
    return f"recovery-{group}"


def die_with_parent(parent_pid: Optional[int]) -> None:
    """Ask Linux to SIGKILL us when the parent dies (no orphans after a notebook ends)."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):
            pass
    if parent_pid is not None and os.getppid() != parent_pid:
        sys.exit(0)


class ReplicaServer:
    def __init__(self, args) -> None:
        self.args = args
        self.node = args.id
        self.storage = DiskStorage(args.data)
        if args.restore:
            snapshot = read_backup(args.restore)
            epoch, _, _ = self.storage.load()
            self.storage.persist(Ready(epoch=max(epoch, snapshot.epoch), snapshot=snapshot))
        epoch, snapshot, entries = self.storage.load()
        self.replica = Replica(self.node, args.acks, epoch=epoch, snapshot=snapshot, entries=entries)
        self.peers: dict[str, asyncio.StreamWriter] = {}
        self.upstream: Optional[tuple[str, asyncio.StreamWriter]] = None
        self.follow_task: Optional[asyncio.Task] = None
        self.pending: dict[int, asyncio.Future] = {}
        self.suspended = False
        self.zk_blind = False        # --no-self-fencing, after the session was lost
        self.session = "CONNECTING"
        self.led_epoch: Optional[int] = None          # the epoch this process led last
        self.deposed_by: Optional[tuple[str, int]] = None
        self._from: Optional[str] = None              # sender of the message being stepped
        self.record_version = 0
        self.port = 0
        self.role = self.replica.role

    # -- start-up -------------------------------------------------------------------

    async def main(self) -> None:
        self.loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            self.loop.add_signal_handler(sig, stop.set)
        server = await asyncio.start_server(self.on_connection, "127.0.0.1", self.args.port)
        self.port = server.sockets[0].getsockname()[1]
        emit(event="ready", node=self.node, port=self.port, pid=os.getpid(),
             last_seq=self.replica.last_seq, epoch=self.replica.epoch)
        self.zk = connect(self.args.hosts, timeout=self.args.session_timeout)
        self.session = str(self.zk.state)
        self.zk.add_listener(self.on_session_state)
        self.recipe = Recipe(self.zk, self.args.namespace, op_timeout=10)
        self.path = primary_path(self.args.namespace, self.args.group)
        try:
            self.recipe.call("create", self.path, b"", makepath=True)
        except NodeExistsError:
            pass
        self.zk.DataWatch(self.path, self.on_record_changed)
        self.election = LeaderElection(
            self.zk, election_name(self.args.group), self.node, namespace=self.args.namespace,
            on_elected=lambda _: self.loop.call_soon_threadsafe(self.spawn_promote))
        await self.loop.run_in_executor(None, self.election.join)
        await stop.wait()
        server.close()
        self.zk.stop()
        self.zk.close()
        self.storage.close()

    # -- ZooKeeper (callbacks arrive on kazoo's threads) -------------------------------

    def on_session_state(self, state) -> None:
        self.session = str(state)
        emit(event="session", node=self.node, state=self.session)
        if state == KazooState.LOST:
            emit(event="session_lost", node=self.node, exiting=self.args.self_fencing)
            if self.args.self_fencing:
                os._exit(3)
            self.zk_blind = True
        elif self.args.self_fencing:
            self.suspended = state == KazooState.SUSPENDED

    def on_record_changed(self, data, stat) -> None:
        if data and stat is not None and not self.zk_blind:
            self.loop.call_soon_threadsafe(self.on_primary_record, json.loads(data), stat.version)

    def spawn_promote(self) -> None:
        self.loop.create_task(self.promote())

    def claim_primary(self) -> int:
        """Compare-and-set the primary record; the znode's new version is our epoch."""
        record = json.dumps({"id": self.node, "address": f"127.0.0.1:{self.port}"}).encode()
        while True:
            _, stat = self.recipe.call("get", self.path)
            try:
                version = self.recipe.call("set", self.path, record, version=stat.version).version
            except BadVersionError:
                continue
            if version > self.replica.epoch:
                return version

    async def promote(self) -> None:
        epoch = await self.loop.run_in_executor(None, self.claim_primary)
        self.record_version = max(self.record_version, epoch)
        former = self.upstream[0] if self.upstream is not None else None
        if former is None:
            self.stop_following()  # not connected: stop trying
        self.host(self.replica.become_primary(epoch))
        self.led_epoch = epoch
        emit(event="primary", node=self.node, epoch=epoch, last_seq=self.replica.last_seq)
        if former is not None:
            # Epoch fencing: tell the primary we followed that its epoch is over, on the
            # connection we have to it, and keep reading it — ``follow`` steps whatever it
            # still sends, and the core refuses its older epoch.  The connection ends
            # when it closes it (deposed, or dead).
            self.host(self.replica.fence(former))

    def on_primary_record(self, record: dict, version: int) -> None:
        if version < self.record_version or record.get("id") == self.node:
            return
        self.record_version = version
        if self.replica.role is Role.PRIMARY:
            self.step_peer(Refuse(record["id"], version), via="zookeeper")
        self.stop_following()
        self.follow_task = self.loop.create_task(self.follow(record["id"], record["address"], version))

    # -- backup side --------------------------------------------------------------------

    def stop_following(self) -> None:
        if self.follow_task is not None:
            self.follow_task.cancel()
            self.follow_task = None
        if self.upstream is not None:
            self.upstream[1].close()
            self.upstream = None

    async def follow(self, primary: str, address: str, epoch: int) -> None:
        host, port = address.rsplit(":", 1)
        while self.record_version == epoch and self.replica.role is not Role.PRIMARY:
            try:
                reader, writer = await asyncio.wait_for(asyncio.open_connection(host, int(port)), 1.0)
            except (OSError, asyncio.TimeoutError):
                await asyncio.sleep(0.1)
                continue
            self.upstream = (primary, writer)
            try:
                self.host(self.replica.follow(primary, epoch))
                emit(event="following", node=self.node, primary=primary, epoch=epoch)
                while line := await reader.readline():
                    self.step_peer(decode(line))
            except (OSError, ValueError):
                pass
            finally:
                writer.close()
                if self.upstream is not None and self.upstream[1] is writer:
                    self.upstream = None
            await asyncio.sleep(0.1)

    # -- connections ----------------------------------------------------------------------

    async def on_connection(self, reader, writer) -> None:
        try:
            first = await reader.readline()
            if not first:
                return
            message = decode(first)
            if isinstance(message, CatchUp):
                await self.serve_backup(message, reader, writer)
            else:
                await self.serve_client(message, reader, writer)
        except (OSError, ValueError):
            pass
        finally:
            writer.close()

    async def serve_backup(self, hello: CatchUp, reader, writer) -> None:
        if self.replica.role is not Role.PRIMARY:
            return
        node = hello.node
        old = self.peers.pop(node, None)
        if old is not None:
            old.close()
        self.peers[node] = writer
        try:
            self.step_peer(hello)
            while line := await reader.readline():
                self.step_peer(decode(line))
        finally:
            if self.peers.get(node) is writer:
                del self.peers[node]
                self.host(self.replica.detach(node))

    async def serve_client(self, request, reader, writer) -> None:
        while request is not None:
            writer.write(encode(await self.answer(request)))
            await writer.drain()
            line = await reader.readline()
            request = decode(line) if line else None

    async def answer(self, request: dict) -> dict:
        try:
            op = request.get("op")
            if op == "dump":
                r = self.replica
                return {"ok": True, "node": self.node, "role": r.role.value, "epoch": r.epoch,
                        "commit_seq": r.commit_seq, "last_seq": r.last_seq, "state": r.state,
                        "backups": sorted(r.match), "session": self.session,
                        "self_fencing": self.args.self_fencing}
            if op not in ("put", "get", "backup"):
                raise ValueError(f"unknown op {op!r}: use put, get, dump or backup")
            if self.replica.role is Role.DEPOSED:
                raise self.deposed_error()
            if self.suspended:
                raise NotPrimary(f"{self.node} is not serving as primary "
                                 f"(its ZooKeeper connection is suspended)")
            if self.replica.role is not Role.PRIMARY:
                raise NotPrimary(f"{self.node} is not serving as primary ({self.replica.role.value})")
            if op == "get":
                return {"ok": True, "value": self.replica.state.get(request["key"]),
                        "seq": self.replica.commit_seq}
            if op == "backup":
                snapshot = self.replica.snapshot()
                return {"ok": True, "snapshot": snapshot.to_json(), "checksum": snapshot.checksum()}
            seq, ready = self.replica.propose(request["key"], request["value"])
            future = self.pending[seq] = self.loop.create_future()
            self.host(ready)
            try:
                await asyncio.wait_for(asyncio.shield(future), self.args.write_timeout)
            except asyncio.TimeoutError:
                raise ReplicationError(f"write {seq} not acknowledged by {self.args.acks} backup(s) "
                                       f"within {self.args.write_timeout} s: outcome unknown") from None
            return {"ok": True, "seq": seq}
        except (ReplicationError, ValueError, KeyError) as error:
            return {"ok": False, "kind": type(error).__name__, "error": str(error)}

    def step_peer(self, msg, via: str = "replication") -> None:
        """Step one message from a peer through the core and host the result (``via``:
        where it came from, a replication connection or the primary record)."""
        self._from = (msg.node, via)
        try:
            self.host(self.replica.step(msg))
        finally:
            self._from = None

    def deposed_error(self) -> Deposed:
        by, via, epoch = self.deposed_by or ("?", "?", self.replica.epoch)
        how = (f"{by} refused its epoch {self.led_epoch}" if via == "replication" else
               f"the primary record names {by}")
        return Deposed(f"{self.node} was deposed: {how}, because epoch {epoch} has begun")

    # -- the Ready contract ------------------------------------------------------------------

    def host(self, ready: Ready) -> None:
        """Persist (fsync), then send, then acknowledge."""
        self.storage.persist(ready)
        for to, msg in ready.messages:
            writer = self.peers.get(to)
            if writer is None and self.upstream is not None and self.upstream[0] == to:
                writer = self.upstream[1]
            if writer is not None and not writer.is_closing():
                writer.write(encode(msg))
                if isinstance(msg, Refuse):
                    emit(event="refuse", node=self.node, to=to, epoch=msg.epoch)
        for seq in ready.committed:
            future = self.pending.pop(seq, None)
            if future is not None and not future.done():
                future.set_result(seq)
        was, self.role = self.role, self.replica.role
        if was is Role.PRIMARY and self.role is not Role.PRIMARY:
            self.deposed_by = (*(self._from or ("?", "?")), self.replica.epoch)
            error = self.deposed_error()
            for future in self.pending.values():
                if not future.done():
                    future.set_exception(error)
            self.pending.clear()
            for writer in self.peers.values():
                writer.close()
            self.peers.clear()
            emit(event="deposed", node=self.node, epoch=self.replica.epoch, led=self.led_epoch,
                 by=self.deposed_by[0], via=self.deposed_by[1])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course_lib.recovery.server")
    parser.add_argument("--id", required=True)
    parser.add_argument("--data", required=True, help="folder of this replica's storage")
    parser.add_argument("--group", required=True, help="name of the replica group")
    parser.add_argument("--hosts", default=None, help="ZooKeeper hosts (default: the course's)")
    parser.add_argument("--namespace", default="course")
    parser.add_argument("--acks", type=int, default=1)
    parser.add_argument("--session-timeout", type=float, default=2.0)
    parser.add_argument("--write-timeout", type=float, default=5.0)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--restore", default=None, help="backup file to start from")
    parser.add_argument("--parent-pid", type=int, default=None)
    parser.add_argument("--no-self-fencing", dest="self_fencing", action="store_false",
                        help="neither refuse while the ZooKeeper connection is suspended nor "
                             "exit when the session is lost (to watch epoch fencing alone)")
    args = parser.parse_args(argv)
    check_count("--acks", args.acks, minimum=1)
    die_with_parent(args.parent_pid)
    asyncio.run(ReplicaServer(args).main())
    return 0


if __name__ == "__main__":
    sys.exit(main())
