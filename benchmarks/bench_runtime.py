"""Benchmark: committed writes/s of the real runtime (course_lib.net) against PySyncObj.

Both in the same run, with the same shape: 3 nodes as 3 OS processes on loopback, one
submitter keeping ``--inflight`` writes outstanding until ``--writes`` are acknowledged,
a write acknowledged only once committed and applied by the leader.

- ours: ``course_lib.net.bench.run`` (what ``python -m course_lib.net bench`` runs), the
  submitter a fourth process talking to the leader over TCP; fsync ON (every node fsyncs
  its WAL record before it acknowledges), then fsync OFF (unsafe, for reference);
- PySyncObj 0.3.17 (a benchmark-only requirement: ``benchmarks/requirements.txt``):
  ``ReplDict.set(key, value, callback=...)`` called in the leader's own process (the
  submitter there; PySyncObj has no client protocol), ``journalFile`` set on every node.
  **PySyncObj's file journal does not fsync** (it writes into an mmap and never calls
  ``fsync``/``msync`` per record), so it is compared against ours with fsync both on
  and off.

    python benchmarks/bench_runtime.py [--writes 20000] [--inflight 2000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from course_lib.net import bench as ours  # noqa: E402


# -- PySyncObj -----------------------------------------------------------------------------
def pysyncobj_node(self_addr: str, partners: list, journal: str) -> None:
    """One PySyncObj node; commands on stdin: ``leader?``, ``run W I``, ``quit``."""
    from pysyncobj import FAIL_REASON, SyncObj, SyncObjConf
    from pysyncobj.batteries import ReplDict

    d = ReplDict()
    obj = SyncObj(self_addr, partners, conf=SyncObjConf(journalFile=journal), consumers=[d])
    while obj._getLeader() is None or not obj.isReady():
        time.sleep(0.05)
    print("ready", flush=True)
    for line in sys.stdin:
        cmd = line.split()
        if cmd == ["leader?"]:
            leader = obj._getLeader()
            print("yes" if leader is not None and leader == obj.selfNode else "no", flush=True)
        elif cmd and cmd[0] == "run":
            writes, inflight = int(cmd[1]), int(cmd[2])
            slots = threading.Semaphore(inflight)
            lat, errors = [], []
            finished = threading.Event()

            def done(res, err, t0):
                if err == FAIL_REASON.SUCCESS:
                    lat.append(time.perf_counter() - t0)
                else:
                    errors.append(err)
                slots.release()
                if len(lat) + len(errors) == writes:
                    finished.set()

            start = time.perf_counter()
            for i in range(writes):
                slots.acquire()
                t0 = time.perf_counter()
                d.set(f"k{i}", f"value-{i:010d}",
                      callback=lambda res, err, t0=t0: done(res, err, t0))
            finished.wait(120)
            elapsed = time.perf_counter() - start
            lat.sort()
            print(json.dumps({"writes": len(lat), "errors": len(errors), "elapsed_s": elapsed,
                              "writes_per_s": len(lat) / elapsed,
                              "p50_ms": ours.percentile(lat, 0.5) * 1000,
                              "p99_ms": ours.percentile(lat, 0.99) * 1000}), flush=True)
        elif cmd == ["quit"]:
            break
    obj.destroy()
    os._exit(0)


def free_ports(n: int) -> list:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def run_pysyncobj(writes: int, inflight: int, timeout_s: float = 120) -> dict:
    addrs = [f"127.0.0.1:{p}" for p in free_ports(3)]
    with tempfile.TemporaryDirectory(prefix="pysyncobj-bench-") as tmp:
        procs = []
        try:
            for k, a in enumerate(addrs):
                others = [x for x in addrs if x != a]
                procs.append(subprocess.Popen(
                    [sys.executable, __file__, "--pysyncobj-node", a, ",".join(others),
                     str(Path(tmp, f"journal{k}"))],
                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True))
            for p in procs:
                if p.stdout.readline().strip() != "ready":
                    raise RuntimeError("a PySyncObj node did not start")
            leader = None
            for _ in range(100):
                for p in procs:
                    p.stdin.write("leader?\n")
                    p.stdin.flush()
                answers = [p.stdout.readline().strip() for p in procs]
                if answers.count("yes") == 1:
                    leader = procs[answers.index("yes")]
                    break
                time.sleep(0.1)
            if leader is None:
                raise RuntimeError("PySyncObj elected no leader")
            cpu0 = [ours._cpu(p.pid) for p in procs]
            leader.stdin.write(f"run {writes} {inflight}\n")
            leader.stdin.flush()
            r = json.loads(leader.stdout.readline())
            cpu = sum(ours._cpu(p.pid) for p in procs) - sum(cpu0)
            r["cpu_us_per_write"] = cpu / max(1, r["writes"]) * 1e6
            for p in procs:
                p.stdin.write("quit\n")
                p.stdin.flush()
        finally:
            for p in procs:
                try:
                    p.wait(5)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
    return r


# -- main ---------------------------------------------------------------------------------------
def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--writes", type=int, default=20000)
    ap.add_argument("--inflight", type=int, default=2000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--pysyncobj-node", nargs=3, metavar=("SELF", "PARTNERS", "JOURNAL"),
                    help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.pysyncobj_node:
        a, partners, journal = args.pysyncobj_node
        pysyncobj_node(a, partners.split(","), journal)
        return
    try:
        import pysyncobj
    except ImportError:
        sys.exit("PySyncObj is a benchmark-only requirement: "
                 "pip install -r benchmarks/requirements.txt")
    load = os.getloadavg()[0]
    print(f"python {platform.python_version()}, {os.cpu_count()} cores, load average {load:.1f}; "
          f"3 nodes = 3 processes on loopback, {args.writes} writes, {args.inflight} in flight, "
          f"{args.repeat} rounds (ours fsync on, ours fsync off, PySyncObj {pysyncobj.__version__ if hasattr(pysyncobj, '__version__') else '0.3.17'})")
    print("PySyncObj's journalFile is written through mmap and never fsynced; ours fsyncs "
          "every WAL record before a node acknowledges (unless fsync off: UNSAFE)")
    rows = {"on": [], "pso": [], "off": []}
    ratios = []
    for k in range(args.repeat):
        # adjacent runs, so that one round's three figures see about the same load
        on = retry(lambda: ours.run(3, args.writes, args.inflight, fsync=True))
        pso = retry(lambda: run_pysyncobj(args.writes, args.inflight))
        off = retry(lambda: ours.run(3, args.writes, args.inflight, fsync=False))
        for key, r in (("on", on), ("pso", pso), ("off", off)):
            rows[key].append(r)
        ratios.append(on["writes_per_s"] / pso["writes_per_s"])
        print(f"round {k + 1} (load {os.getloadavg()[0]:.1f}): "
              f"ours fsync on {fmt(on)} | PySyncObj (no fsync) {fmt(pso)}, {pso['errors']} errors | "
              f"ours fsync off (UNSAFE) {fmt(off)} | ratio fsync on / PySyncObj {ratios[-1]:.2f}x",
              flush=True)

    def median(xs):
        xs = sorted(xs)
        return xs[len(xs) // 2] if len(xs) % 2 else (xs[len(xs) // 2 - 1] + xs[len(xs) // 2]) / 2

    med = {key: median([r["writes_per_s"] for r in v]) for key, v in rows.items()}
    cpu = {key: median([r["cpu_us_per_write"] for r in v]) for key, v in rows.items()}
    print(f"medians of {args.repeat} rounds: ours fsync on {med['on']:,.0f} committed writes/s "
          f"({cpu['on']:.0f} us CPU per write), PySyncObj {med['pso']:,.0f} ({cpu['pso']:.0f} us), "
          f"ours fsync off (UNSAFE) {med['off']:,.0f} ({cpu['off']:.0f} us)")
    print(f"ratio ours fsync on / PySyncObj: median {median(ratios):.2f}x, range "
          f"{min(ratios):.2f}x-{max(ratios):.2f}x (goal >= 2x); CPU per write "
          f"{cpu['pso'] / cpu['on']:.2f}x less; load average now {os.getloadavg()[0]:.1f}")


def fmt(r: dict) -> str:
    return (f"{r['writes_per_s']:7,.0f} writes/s (p50 {r['p50_ms']:4.0f} ms, p99 {r['p99_ms']:5.0f} ms, "
            f"{r['cpu_us_per_write']:3.0f} us CPU/write)")


def retry(run, attempts: int = 3) -> dict:
    """A run that lost its leader midway (the machine stalled a node past its election
    timeout) says nothing about throughput: run it again, and say so."""
    for k in range(attempts):
        try:
            r = run()
        except RuntimeError as e:
            print(f"  (run abandoned and repeated: {e})", flush=True)
            if k == attempts - 1:
                raise
            continue
        if r.get("errors") and k < attempts - 1:
            print(f"  (PySyncObj run repeated: {r['errors']} writes failed, a leader change)",
                  flush=True)
            continue
        return r

if __name__ == "__main__":
    main()
