"""Benchmark of the linearizability checker (course_lib.check.check).

Histories come from a seeded concurrent simulation of a correct store (random
overlapping intervals, the store acting at a point inside each interval), so they are
linearizable; the "not linearizable" variant replaces the output of one read in the
middle with a value no one wrote.  For each size / client count / model the script
prints the time to decide; the baseline is the same KV history checked without
partitioning by key (no P-compositionality).

    python benchmarks/bench_check.py            # full table
    python benchmarks/bench_check.py --quick    # the 10k-op KV headline only

Target (issue 7): under 1 s for a 10,000-operation linearizable KV history, 10 clients.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time

from course_lib.check import (
    MemoryKV, MemoryRegister, Operation, check, kv, kv_workload, register,
    register_workload, simulate_history,
)

TIMEOUT = 10.0
KEYS = 10


def history_for(model_name: str, ops: int, clients: int, seed: int = 7) -> list[Operation]:
    if model_name == "kv":
        return simulate_history(MemoryKV(), kv_workload(keys=KEYS), clients=clients,
                                ops=ops, seed=seed)
    return simulate_history(MemoryRegister(), register_workload(), clients=clients,
                            ops=ops, seed=seed)


def corrupt_one_read(history: list[Operation]) -> list[Operation]:
    """Replace the output of the read nearest the middle by a value nobody wrote."""
    middle = len(history) // 2
    reads = [i for i, op in enumerate(history)
             if op.completed and op.input[0] in ("read", "get")]
    i = min(reads, key=lambda j: abs(j - middle))
    op = history[i]
    bad = "never-written" if op.input[0] == "get" else -1
    return history[:i] + [Operation(op.client_id, op.input, op.call, bad, op.ret)] + history[i + 1:]


def in_flight(history: list[Operation], model) -> float:
    """Mean number of operations in flight at once on one partition (key)."""
    total = 0.0
    for _, part in model.partition(history):
        busy = sum(op.ret - op.call for op in part)
        span = max(op.ret for op in part) - min(op.call for op in part)
        total += busy / span * len(part)
    return total / len(history)


def timed(model, history) -> tuple[float, object]:
    started = time.perf_counter()
    result = check(model, history, timeout=TIMEOUT)
    return time.perf_counter() - started, result.ok


def row(model_name: str, ops: int, clients: int, linearizable: bool) -> float:
    history = history_for(model_name, ops, clients)
    if not linearizable:
        history = corrupt_one_read(history)
    model = kv() if model_name == "kv" else register()
    seconds, ok = timed(model, history)
    expected = linearizable
    verdict = {True: "linearizable", False: "not linearizable", None: f"timeout ({TIMEOUT:.0f} s)"}[ok]
    flag = "" if ok is expected or ok is None else "   <-- WRONG VERDICT"
    name = f"kv/{KEYS} keys" if model_name == "kv" else "register"
    print(f"{name:<13} {ops:>7} {clients:>8} {in_flight(history, model):>10.1f}   "
          f"{'yes' if linearizable else 'no':<13}{seconds:>9.3f}   {verdict}{flag}", flush=True)
    return seconds


def headline() -> None:
    history = history_for("kv", 10_000, 10)
    runs = [timed(kv(), history)[0] for _ in range(3)]
    best = min(runs)
    base_seconds, base_ok = timed(kv(partitioned=False), history)
    print(f"\nheadline: 10,000-op linearizable KV history ({KEYS} keys), 10 clients: "
          f"best of 3 = {best:.3f} s (target < 1 s: {'met' if best < 1.0 else 'MISSED'})")
    base = "timeout" if base_ok is None else f"{base_seconds:.3f} s"
    ratio = "" if base_ok is None else f" -> partitioning is {base_seconds / best:.1f}x faster"
    print(f"baseline: same history checked as one object (kv(partitioned=False)): {base}{ratio}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="only the 10k KV headline")
    args = parser.parse_args()
    print(f"python {platform.python_version()} on {platform.machine()}, timeout {TIMEOUT:.0f} s per check")
    if not args.quick:
        print(f"\n{'model':<13} {'ops':>7} {'clients':>8} {'in flight':>10}   "
              f"{'linearizable':<13}{'seconds':>9}   verdict")
        for model_name in ("kv", "register"):
            for ops in (1_000, 10_000):
                for clients in (5, 10, 20, 50):
                    for linearizable in (True, False):
                        row(model_name, ops, clients, linearizable)
    headline()


if __name__ == "__main__":
    sys.exit(main())
