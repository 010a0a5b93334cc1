"""Committed writes per second of a :class:`~.cluster.ProcessCluster` (a benchmark, not a test).

    python -m course_lib.net bench --nodes 3 --writes 20000 --inflight 2000 [--no-fsync]

Starts ``--nodes`` node processes on loopback (their data in a temporary directory,
deleted afterwards; :func:`run` takes ``data_dir=`` to keep it; election timeouts
:data:`ELECTION_TIMEOUT_MS`), waits for a leader, and from this process keeps
``--inflight`` writes (``("put", "k<i>", value)``) outstanding on one client connection
to the leader until ``--writes`` have been acknowledged.  A write is acknowledged only
once it is committed *and applied* by the leader (the driver answers a client when it
applies the entry), and with fsync on (the default) every node's WAL record holding it
was fsynced before that node acknowledged it.  Prints the rate, the commit latency (send
to acknowledgement, p50 / p99), the CPU per write and, per node, the fsyncs and Readies
it needed and its longest event-loop stall; the last line is ``N committed writes/s``.
A leader change during the run is an error (``RuntimeError``): run it again.

The load is ``--inflight`` closed-loop sessions multiplexed on one connection: write
number ``k`` (from 1) belongs to session ``(k - 1) % inflight``, so each session has one
write outstanding at a time with increasing numbers, as a client session must, and a
reply's ``seq`` alone names its write.
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Optional

from ..raft.client import ClientReply
from . import codec
from .codec import HEADER
from .cluster import ProcessCluster

# PySyncObj's default is 0.4-1.4 s; ProcessCluster's 300-600 ms is tuned for lessons on
# an idle machine.  On a shared 2-core machine under full load a node's event loop can
# stall for a few hundred ms, which must not depose the leader mid-measurement.
ELECTION_TIMEOUT_MS = (1000, 2000)


def percentile(sorted_values: list, q: float) -> float:
    if not sorted_values:
        return float("nan")
    k = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[k]


class _LoadProtocol(asyncio.Protocol):
    """One client connection carrying ``inflight`` closed-loop sessions."""

    def __init__(self, target: str, writes: int, inflight: int, done: asyncio.Future) -> None:
        self.target = target
        self.writes = writes
        self.inflight = inflight
        self.done = done
        self.token = os.urandom(4).hex()
        self.buf = bytearray()
        self.sent = 0
        self.acked = 0
        self.sent_at: dict = {}
        self.latencies: list = []
        self.transport = None
        self.first_send = self.last_ack = 0.0
        self._head = (f'{{"t":"ClientRequest","v":["bench",{json.dumps(target)},'
                      f'"bench/{self.token}/')
        self._reply_head = f'{{"t":"ClientReply","v":[{json.dumps(target)},"client",'.encode()

    def _request(self, seq: int) -> bytes:
        # the text codec.encode_frame(ClientRequest(...)) writes (test_bench_client_frames),
        # from a template: the load generator should cost little next to the cluster
        slot = (seq - 1) % self.inflight
        i = seq - 1
        body = (f'{self._head}{slot}",{seq},["put","k{i}","value-{i:010d}"]]}}').encode()
        return HEADER.pack(len(body)) + body

    def connection_made(self, transport) -> None:
        self.transport = transport
        out = [codec.encode_frame(("client",))]
        now = time.perf_counter()
        self.first_send = now
        for _ in range(min(self.inflight, self.writes)):
            self.sent += 1
            self.sent_at[self.sent] = now
            out.append(self._request(self.sent))
        transport.write(b"".join(out))

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        pos, n = 0, len(buf)
        out = []
        now = time.perf_counter()
        while n - pos >= 4:
            (size,) = HEADER.unpack_from(buf, pos)
            if size > codec.MAX_FRAME:
                raise codec.FrameError(f"frame length {size} exceeds {codec.MAX_FRAME}")
            if n - pos - 4 < size:
                break
            body = buf[pos + 4:pos + 4 + size]
            pos += 4 + size
            if body.startswith(self._reply_head) and body.endswith(b",true,null,null]}"):
                seq = int(body[len(self._reply_head):-17])       # the usual answer: ok
                t0 = self.sent_at.pop(seq, None)
                if t0 is None:
                    continue
                self._acked(now, t0, out)
                continue
            reply = codec.loads(body)
            if not isinstance(reply, ClientReply) or not reply.ok:
                if not self.done.done():
                    self.done.set_exception(RuntimeError(f"write refused: {reply!r:.200} "
                                                         f"(leader lost during the run?)"))
                return
            t0 = self.sent_at.pop(reply.seq, None)
            if t0 is None:
                continue                          # a duplicate answer
            self._acked(now, t0, out)
        del buf[:pos]
        if out:
            self.transport.write(b"".join(out))
        if self.acked >= self.writes and not self.done.done():
            self.last_ack = now
            self.done.set_result(None)

    def _acked(self, now: float, t0: float, out: list) -> None:
        self.latencies.append(now - t0)
        self.acked += 1
        if self.sent < self.writes:
            self.sent += 1
            self.sent_at[self.sent] = now
            out.append(self._request(self.sent))

    def connection_lost(self, exc) -> None:
        if not self.done.done():
            self.done.set_exception(ConnectionError(f"the leader closed the connection ({exc})"))


async def drive(address: tuple, target: str, writes: int, inflight: int, timeout_s: float) -> dict:
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    transport, proto = await loop.create_connection(
        lambda: _LoadProtocol(target, writes, inflight, done), *address)
    try:
        await asyncio.wait_for(done, timeout_s)
    finally:
        transport.close()
    lat = sorted(proto.latencies)
    elapsed = proto.last_ack - proto.first_send
    return {"writes": proto.acked, "elapsed_s": elapsed, "writes_per_s": proto.acked / elapsed,
            "p50_ms": percentile(lat, 0.50) * 1000, "p99_ms": percentile(lat, 0.99) * 1000}


def run(nodes: int = 3, writes: int = 20000, inflight: int = 2000, *, fsync: bool = True,
        data_dir: Optional[str] = None, timeout_s: float = 300) -> dict:
    """Start a cluster, drive it, stop it; the figures as a dict."""
    for name, v in (("nodes", nodes), ("writes", writes), ("inflight", inflight)):
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise ValueError(f"{name} must be an int >= 1, got {v!r}")
    tmp = None
    if data_dir is None:
        tmp = tempfile.TemporaryDirectory(prefix="raft-bench-")
        data_dir = tmp.name
    try:
        with ProcessCluster(nodes, data_dir=Path(data_dir), fsync=fsync,
                            election_timeout_ms=ELECTION_TIMEOUT_MS) as c:
            c.start()
            leader = c.leader()
            if leader is None:
                raise RuntimeError("no leader")
            cpu0 = {n: _cpu(c.procs[n].pid) for n in c.members}
            mine = time.process_time()
            r = asyncio.run(drive(c.address(leader), leader, writes, inflight, timeout_s))
            r["client_cpu_s"] = time.process_time() - mine
            cpu1 = {n: _cpu(c.procs[n].pid) for n in c.members}
            per_node = {}
            for nid in c.members:
                s = c.status(nid) or {}
                per_node[nid] = {"state": s.get("state"), "fsyncs": s.get("fsyncs"),
                                 "fsync_ms": s.get("fsync_ms"),
                                 "readies": s.get("readies"), "cpu_s": cpu1[nid] - cpu0[nid],
                                 "dropped": s.get("frames_dropped"),
                                 "lag_ms": s.get("max_tick_lag_ms")}
            r.update(nodes=nodes, inflight=inflight, fsync=fsync, leader=leader, per_node=per_node)
            r["cpu_us_per_write"] = (sum(p["cpu_s"] for p in per_node.values())
                                     + r["client_cpu_s"]) / r["writes"] * 1e6
            return r
    finally:
        if tmp is not None:
            tmp.cleanup()


def _cpu(pid: int) -> float:
    """User + system CPU seconds of ``pid`` so far (Linux /proc; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def report(r: dict) -> str:
    lines = [f"{r['nodes']} nodes (processes) on loopback, fsync "
             f"{'ON' if r['fsync'] else 'OFF (UNSAFE: an OS crash may lose acknowledged writes)'}, "
             f"{r['writes']} writes, {r['inflight']} in flight, leader {r['leader']}",
             f"elapsed {r['elapsed_s']:.2f} s; commit latency p50 {r['p50_ms']:.1f} ms, "
             f"p99 {r['p99_ms']:.1f} ms; CPU {r['cpu_us_per_write']:.0f} us per write "
             f"(all nodes + this client, {r['client_cpu_s']:.2f} s)"]
    for nid, s in r["per_node"].items():
        lines.append(f"  {nid} {s['state']:9} fsyncs={s['fsyncs']} ({s['fsync_ms']} ms) "
                     f"readies={s['readies']} "
                     f"cpu={s['cpu_s']:.2f} s frames dropped={s['dropped']} "
                     f"longest loop stall={s['lag_ms']} ms")
    lines.append(f"{r['writes_per_s']:.0f} committed writes/s")
    return "\n".join(lines)
