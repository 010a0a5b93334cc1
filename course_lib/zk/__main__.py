"""Command line: ``python -m course_lib.zk start|status|stop|kill ID|restart ID|hosts``."""

from __future__ import annotations

import argparse
import json
import sys

from .ensemble import Ensemble
from .errors import ZooKeeperError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course_lib.zk",
                                     description="The course's local Apache ZooKeeper ensemble.")
    parser.add_argument("--dir", help="the ensemble's folder (default: $COURSE_ZK_DIR or .zk/)")
    parser.add_argument("--port", type=int, help="first client port (default: $COURSE_ZK_PORT or 2181)")
    commands = parser.add_subparsers(dest="command", required=True)
    start = commands.add_parser("start", help="start the servers; return once a quorum serves")
    start.add_argument("--servers", type=int, help="number of servers (default 3, or as last started)")
    start.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for a quorum")
    status = commands.add_parser("status", help="each server's mode")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    commands.add_parser("stop", help="stop every server")
    commands.add_parser("hosts", help="print the connection string")
    for name, text in (("kill", "SIGKILL one server's process"), ("restart", "start one server again")):
        sub = commands.add_parser(name, help=text)
        sub.add_argument("id", type=int, help="server id (1..N)")
    args = parser.parse_args(argv)

    try:
        ensemble = _ensemble(args)
        if args.command == "start":
            ensemble.start(timeout=args.timeout)
            _print_status(ensemble)
        elif args.command == "status":
            if args.json:
                print(json.dumps([s.__dict__ for s in ensemble.status()]))
            else:
                _print_status(ensemble)
        elif args.command == "stop":
            ensemble.stop()
            print(f"stopped the ensemble in {ensemble.base_dir}")
        elif args.command == "hosts":
            print(ensemble.hosts)
        elif args.command == "kill":
            ensemble.kill(args.id)
            print(f"killed ZooKeeper server {args.id}")
        elif args.command == "restart":
            ensemble.restart(args.id)
            _print_status(ensemble)
    except (ZooKeeperError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


def _ensemble(args) -> Ensemble:
    default = Ensemble.default() if args.dir is None else None
    servers = getattr(args, "servers", None) or (default.servers if default else 3)
    port = args.port or (default.base_port if default else None)
    return Ensemble(servers, base_dir=args.dir or (default.base_dir if default else None), base_port=port)


def _print_status(ensemble: Ensemble) -> None:
    print(f"ZooKeeper ensemble in {ensemble.base_dir} — connect with {ensemble.hosts}")
    for s in ensemble.status():
        pid = f"pid {s.pid}" if s.pid else "no process"
        print(f"  server {s.id}  127.0.0.1:{s.client_port}  {s.mode:<11} {pid}")


if __name__ == "__main__":
    sys.exit(main())
