"""The command line of the real runtime.

    python -m course_lib.net start --nodes 3 [--data DIR] [--base-port P] [--no-fsync]
    python -m course_lib.net status            [--data DIR]
    python -m course_lib.net kill n1 | pause n1 | resume n1 | restart n1
    python -m course_lib.net add n4 | remove n2        # membership, one server at a time
    python -m course_lib.net partition "n1 n2 | n3"
    python -m course_lib.net heal
    python -m course_lib.net stop
    python -m course_lib.net bench --nodes 3 --writes 20000 --inflight 2000 [--no-fsync]

``start`` runs in the foreground as the cluster's supervisor: it owns a
:class:`~.cluster.ProcessCluster` (the nodes are its children and die with it, so
Ctrl-C or closing the terminal leaves no process behind), writes ``DIR/cluster.json``
(its pid and a control port on 127.0.0.1) and serves the other commands, which are
thin clients of it.  Run it in its own terminal, or in the background (``&``).
``DIR`` defaults to ``./raft-cluster``; it holds each node's WAL and log and is never
deleted.  ``bench`` starts its own cluster in a temporary directory (see :mod:`.bench`),
measures committed writes per second and stops it.  Errors (unknown node, node already down, no cluster running) print a message
and exit with status 1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import sys
from pathlib import Path

from . import codec
from .cluster import ProcessCluster

STATE_FILE = "cluster.json"


def parse_groups(text: str) -> list:
    """``"n1 n2 | n3"`` -> ``[["n1", "n2"], ["n3"]]``."""
    groups = [g.replace(",", " ").split() for g in text.split("|")]
    if len(groups) < 2 or any(not g for g in groups):
        raise ValueError(f"partition takes groups separated by '|', e.g. \"n1 n2 | n3\"; got {text!r}")
    return groups


class Supervisor:
    def __init__(self, cluster: ProcessCluster) -> None:
        self.c = cluster

    def handle(self, req) -> dict:
        c = self.c
        cmd = req[0]
        if cmd == "status":
            return {"ok": True, "leader": c.leader(), "states": c.states()}
        if cmd in ("kill", "pause", "resume", "restart"):
            getattr(c, {"kill": "crash"}.get(cmd, cmd))(req[1])
            return {"ok": True}
        if cmd in ("add", "remove"):
            (c.add_server if cmd == "add" else c.remove_server)(req[1])
            return {"ok": True, "members": c.members}
        if cmd == "partition":
            c.partition(*[set(g) for g in req[1]])
            return {"ok": True}
        if cmd == "heal":
            c.heal()
            return {"ok": True}
        raise ValueError(f"unknown command {cmd!r}")

    async def serve(self, reader, writer) -> None:
        try:
            req = await codec.read_frame(reader)
            if req == ("stop",):
                self.stop.set()
                answer = {"ok": True}
            else:
                try:
                    answer = self.handle(req)
                except (ValueError, RuntimeError, TimeoutError) as e:
                    answer = {"ok": False, "error": str(e)}
            writer.write(codec.encode_frame(answer))
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, ValueError):
            pass
        finally:
            writer.close()

    async def main(self, state_path: Path) -> None:
        self.stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.add_signal_handler(sig, self.stop.set)
        server = await asyncio.start_server(self.serve, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        tmp = state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"pid": os.getpid(), "control_port": port,
                                   "nodes": self.c.ports}))
        os.replace(tmp, state_path)
        print(f"cluster up, leader {self.c.leader()}; data in {self.c.data_dir}; "
              f"control: python -m course_lib.net status --data {self.c.data_dir}", flush=True)
        await self.stop.wait()
        server.close()


def _send(data: Path, req) -> dict:
    path = data / STATE_FILE
    try:
        info = json.loads(path.read_text())
    except (OSError, ValueError):
        raise SystemExit(f"error: no cluster running with data dir {data} (no {path})")
    try:
        with socket.create_connection(("127.0.0.1", info["control_port"]), timeout=30) as s:
            s.settimeout(30)
            codec.send_frame(s, req)
            return codec.recv_frame(s)
    except OSError as e:
        raise SystemExit(f"error: the cluster supervisor (pid {info.get('pid')}) does not answer: {e}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m course_lib.net", description="Raft on real processes")
    ap.add_argument("--data", default="raft-cluster", help="cluster data dir (default ./raft-cluster)")
    sub = ap.add_subparsers(dest="cmd", required=True)
    st = sub.add_parser("start", help="start a cluster and supervise it (foreground)")
    st.add_argument("--nodes", type=int, default=3)
    st.add_argument("--base-port", type=int, default=None)
    st.add_argument("--no-fsync", action="store_true", help="UNSAFE: never fsync the WAL")
    sub.add_parser("status")
    for name in ("kill", "pause", "resume", "restart"):
        sub.add_parser(name).add_argument("id")
    sub.add_parser("add", help="add a server to the cluster (starts its process)").add_argument("id")
    sub.add_parser("remove", help="remove a server from the cluster (stops it)").add_argument("id")
    sub.add_parser("partition").add_argument("groups", help='e.g. "n1 n2 | n3"')
    sub.add_parser("heal")
    sub.add_parser("stop")
    bn = sub.add_parser("bench", help="measure committed writes/s of a fresh cluster")
    bn.add_argument("--nodes", type=int, default=3)
    bn.add_argument("--writes", type=int, default=20000)
    bn.add_argument("--inflight", type=int, default=2000)
    bn.add_argument("--no-fsync", action="store_true", help="UNSAFE: never fsync the WAL")
    for p in sub.choices.values():
        p.add_argument("--data", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    data = Path(args.data)
    if args.cmd == "bench":
        from . import bench
        try:
            r = bench.run(args.nodes, args.writes, args.inflight, fsync=not args.no_fsync)
        except (ValueError, TimeoutError, RuntimeError, ConnectionError) as e:
            print(f"error: {e}", file=sys.stderr)
            return 1
        print(bench.report(r))
        return 0
    if args.cmd == "start":
        try:
            c = ProcessCluster(args.nodes, data_dir=data, base_port=args.base_port,
                               fsync=not args.no_fsync)
            if (data / STATE_FILE).exists():
                try:
                    _send(data, ("status",))
                    print(f"error: a cluster is already running with data dir {data}", file=sys.stderr)
                    return 1
                except SystemExit:
                    pass                          # a stale file from a supervisor that died
            c.start()
        except (ValueError, TimeoutError, RuntimeError) as e:
            print(f"error: {e}", file=sys.stderr)
            return 1
        try:
            asyncio.run(Supervisor(c).main(data / STATE_FILE))
        finally:
            c.stop()
            (data / STATE_FILE).unlink(missing_ok=True)
        return 0
    if args.cmd == "status":
        r = _send(data, ("status",))
        print(f"leader: {r['leader']}")
        for nid, s in r["states"].items():
            up = "paused" if s["paused"] else ("up" if s["alive"] else "down")
            print(f"  {nid} {up:6} {s['state'] or '-':14} term={s['term']} commit={s['commit_index']} "
                  f"log={s['last_index']} cut={','.join(s['cut']) or '-'} pid={s['pid'] or '-'}")
        return 0
    if args.cmd in ("kill", "pause", "resume", "restart", "add", "remove"):
        req = (args.cmd, args.id)
    elif args.cmd == "partition":
        try:
            req = ("partition", tuple(tuple(g) for g in parse_groups(args.groups)))
        except ValueError as e:
            print(f"error: {e}", file=sys.stderr)
            return 1
    else:
        req = (args.cmd,)
    r = _send(data, req)
    if not r.get("ok"):
        print(f"error: {r.get('error')}", file=sys.stderr)
        return 1
    print("ok" if "members" not in r else f"ok; members: {' '.join(r['members'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
