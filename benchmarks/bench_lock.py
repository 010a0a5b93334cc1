"""Acquire+release throughput of DistributedLock vs kazoo's Lock, and wake-ups per release.

    python benchmarks/bench_lock.py [--quick] [--rounds 16] [--ops 100] [--contenders 4]

Starts its own 3-server ZooKeeper ensemble on free loopback ports in a temporary folder
(stopped and removed at the end), so it never touches a learner's or the tests' ensemble.

1. Throughput, same ensemble, same run, rounds alternating between the two locks:
   - uncontended: one client, ``--ops`` acquire+release pairs in a row;
   - contended: ``--contenders`` threads, each with its own client (its own ZooKeeper
     session, as separate processes would have), each doing ``--ops / contenders``
     pairs on the same lock.
   Reported: median pairs per second over ``--rounds`` batches each, and the median of
   the ratios ours/kazoo of adjacent batches (robust to load that drifts during the
   run); and the ZooKeeper requests each lock sends per acquire+release, uncontended
   and contended (counted by wrapping each client's request queue).
2. Wake-ups per release with N waiters queued behind a holder (N = 2, 4, 8, 16), for the
   chapter's polling lock, the naive single-node watch (``HerdLock``) and
   ``DistributedLock`` (``course_lib.coord.herd.count_wakeups``).

Targets (BENCHMARKS.md, issue 14): ratio >= 1.5, uncontended and contended; exactly one
wake-up per release for ours.  Ours pipelines (see ``course_lib.coord.lock``): an
uncontended acquire+release is 2 requests in 1 round trip, kazoo's 4 in 4.
"""

from __future__ import annotations

import argparse
import contextlib
import platform
import shutil
import statistics
import sys
import tempfile
import threading
import time
import uuid

from kazoo.recipe.lock import Lock as KazooLock

from course_lib.coord import DistributedLock
from course_lib.coord.herd import count_wakeups
from course_lib.zk import Ensemble, connect, free_base_port


def make_lock(kind: str, client, name: str, namespace: str, ident: str):
    if kind == "ours":
        return DistributedLock(client, name, ident, namespace=namespace)
    return KazooLock(client, f"/{namespace}/kazoo/{name}", ident)


def uncontended(kind: str, client, ops: int, namespace: str) -> float:
    lock = make_lock(kind, client, f"u-{uuid.uuid4().hex[:6]}", namespace, "solo")
    lock.acquire()  # first use creates the parent znodes: not timed
    lock.release()
    began = time.perf_counter()
    for _ in range(ops):
        lock.acquire()
        lock.release()
    return ops / (time.perf_counter() - began)


def contended(kind: str, clients, ops: int, namespace: str, counted=None) -> float:
    """``ops`` pairs shared by one thread per client; ``counted(clients)``, if given, is
    a context manager entered for the timed part only (after the first use)."""
    name = f"c-{uuid.uuid4().hex[:6]}"
    locks = [make_lock(kind, c, name, namespace, f"t{i}") for i, c in enumerate(clients)]
    for lock in locks:  # first use of each object and of the lock's znodes: not timed
        lock.acquire()
        lock.release()
    per_thread = max(1, ops // len(clients))
    start = threading.Barrier(len(clients) + 1)

    def work(lock):
        start.wait()
        for _ in range(per_thread):
            lock.acquire()
            lock.release()

    threads = [threading.Thread(target=work, args=(lock,)) for lock in locks]
    with counted(clients) if counted is not None else contextlib.nullcontext():
        for t in threads:
            t.start()
        start.wait()
        began = time.perf_counter()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - began
    return per_thread * len(clients) / elapsed


def throughput(clients, rounds: int, ops: int, contenders: int, namespace: str) -> dict:
    """Per workload and lock: the median rate over ``rounds`` batches, and the median of
    the paired ratios ours/kazoo of adjacent batches (robust to a machine whose load
    drifts during the run: each pair of batches sees about the same load)."""
    result = {}
    for mode in ("uncontended", "contended"):
        rates = {"ours": [], "kazoo": []}
        ratios = []
        for r in range(rounds):
            order = ("ours", "kazoo") if r % 2 == 0 else ("kazoo", "ours")  # alternate who goes first
            pair = {}
            for kind in order:
                pair[kind] = (uncontended(kind, clients[0], ops, namespace) if mode == "uncontended"
                              else contended(kind, clients[:contenders], ops, namespace))
                rates[kind].append(pair[kind])
            ratios.append(pair["ours"] / pair["kazoo"])
        result[mode] = {"ours": statistics.median(rates["ours"]),
                        "kazoo": statistics.median(rates["kazoo"]),
                        "ratio": statistics.median(ratios),
                        "ratio_range": (min(ratios), max(ratios))}
    return result


@contextlib.contextmanager
def counting_requests(clients):
    """Count the ZooKeeper requests ``clients`` send inside the block (each client's
    request queue is wrapped)."""
    sent = [0]
    guard = threading.Lock()

    def wrap(client):
        original = client._call

        def counting(request, async_object):
            with guard:
                sent[0] += 1
            return original(request, async_object)
        client._call = counting

    for client in clients:
        wrap(client)
    try:
        yield sent
    finally:
        for client in clients:
            del client._call  # back to the class's method


def requests_per_pair(kind: str, clients, namespace: str, pairs: int = 40) -> dict:
    """ZooKeeper requests sent per acquire+release: uncontended (one client, the same
    lock object reused) and contended (``clients`` contending, requests of all of them
    over all their pairs)."""
    lock = make_lock(kind, clients[0], f"r-{uuid.uuid4().hex[:6]}", namespace, "solo")
    lock.acquire()
    lock.release()
    with counting_requests(clients[:1]) as sent:
        for _ in range(pairs):
            lock.acquire()
            lock.release()
    solo = sent[0] / pairs
    counts = []

    @contextlib.contextmanager
    def counted(contenders):
        with counting_requests(contenders) as sent:
            yield
        counts.append(sent[0])

    contended(kind, clients, pairs, namespace, counted)
    return {"uncontended": solo, "contended": counts[0] / (pairs // len(clients) * len(clients))}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds and waiters")
    parser.add_argument("--rounds", type=int, default=16, help="alternating batches per lock and workload")
    parser.add_argument("--ops", type=int, default=100, help="acquire+release pairs per batch")
    parser.add_argument("--contenders", type=int, default=4)
    args = parser.parse_args(argv)
    rounds, ops = (4, 60) if args.quick else (args.rounds, args.ops)
    waiter_counts = (2, 4, 8) if args.quick else (2, 4, 8, 16)

    folder = tempfile.mkdtemp(prefix="bench-lock-zk-")
    ensemble = Ensemble(3, base_dir=folder, base_port=free_base_port(3, start=33181))
    print(f"# bench_lock — Python {platform.python_version()}, {platform.machine()}, "
          f"ZooKeeper ensemble of 3 on {ensemble.hosts}")
    clients = []
    try:
        ensemble.start()
        namespace = f"bench-{uuid.uuid4().hex[:8]}"
        clients = [connect(ensemble.hosts, start=False) for _ in range(max(waiter_counts) + 1)]

        for kind in ("ours", "kazoo"):  # warm the servers' JVMs up before timing anything
            uncontended(kind, clients[0], 2 * ops, namespace)
            contended(kind, clients[:args.contenders], 2 * ops, namespace)
        figures = throughput(clients, rounds, ops, args.contenders, namespace)
        requests = {kind: requests_per_pair(kind, clients[:args.contenders], namespace)
                    for kind in ("ours", "kazoo")}
        print(f"\n## Acquire+release per second ({rounds} alternating batches per workload, "
              f"{ops} pairs per batch)\n")
        print("| workload | DistributedLock | kazoo Lock | ratio ours/kazoo (median of paired batches) "
              "| paired ratios, min–max |")
        print("|---|---:|---:|---:|---|")
        for mode, label in (("uncontended", "uncontended, 1 client"),
                            ("contended", f"contended, {args.contenders} threads × own session")):
            f = figures[mode]
            print(f"| {label} | {f['ours']:.0f} | {f['kazoo']:.0f} | {f['ratio']:.2f} | "
                  f"{f['ratio_range'][0]:.2f}–{f['ratio_range'][1]:.2f} |")
        solo = {kind: requests[kind]["uncontended"] for kind in requests}
        crowd = {kind: requests[kind]["contended"] for kind in requests}
        print(f"\nZooKeeper requests per acquire+release: uncontended (lock object reused) "
              f"ours {solo['ours']:.1f}, kazoo {solo['kazoo']:.1f}; contended "
              f"({args.contenders} sessions) ours {crowd['ours']:.1f}, kazoo {crowd['kazoo']:.1f}")
        print("\n## Wake-ups per release, N waiters queued behind a holder "
              "(each holds 20 ms; chapter polls every 0.1 s)\n")
        print("| N | chapter: wake-ups / creates per release | herd: wake-ups / creates per release "
              "| ours: wake-ups / creates per release | hand-over ms chapter / herd / ours |")
        print("|---:|---:|---:|---:|---:|")
        exact = True
        for n in waiter_counts:
            row = {d: count_wakeups(clients, d, n, namespace=namespace, name=f"w-{d}-{n}",
                                    hold=0.02, retry_delay=0.1) for d in ("chapter", "herd", "ours")}
            exact &= row["ours"].wakeups_per_release == 1.0
            cells = " | ".join(f"{row[d].wakeups_per_release:.2f} / {row[d].attempts_per_release:.2f}"
                               for d in ("chapter", "herd", "ours"))
            gaps = " / ".join(f"{row[d].handover_ms:.1f}" for d in ("chapter", "herd", "ours"))
            print(f"| {n} | {cells} | {gaps} |")
        ratio, ratio_c = figures["uncontended"]["ratio"], figures["contended"]["ratio"]
        print(f"\nratio ours/kazoo: uncontended {ratio:.2f}, contended {ratio_c:.2f} "
              f"(target >= 1.5); exactly one wake-up per release for ours: {exact}")
    finally:
        for c in clients:
            c.stop()
            c.close()
        ensemble.stop()
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
