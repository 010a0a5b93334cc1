"""Benchmark of the linearizability checker (course_lib.check.check).

Histories come from a seeded concurrent simulation of a correct store (random
overlapping intervals, the store acting at a point inside each interval), so they are
linearizable; the "not linearizable" variant replaces the output of one read in the
middle with a value no one wrote.  For each size / client count / model the script
prints the time to decide; the baseline is the same KV history checked without
partitioning by key (no P-compositionality).

    python benchmarks/bench_check.py            # both tables and the headline
    python benchmarks/bench_check.py --quick    # the 10k-op KV headline only
    python benchmarks/bench_check.py --shapes   # the issue-13 table only

Target (issue 7): under 1 s for a 10,000-operation linearizable KV history, 10 clients.

Target (issue 13): about 1 s or less, never undecided, for 50 clients / 2,000 operations
over tens of keys and for one register with 20 and 50 operations in flight, linearizable
or not.  Those rows come three ways: a correct store, the same history with one read
made impossible, and a known-bad store (a lost write for KV, stale reads for the
register); KV histories have long operations and 5 % unknown outcomes.  Their baseline
is the checker as it was before issue 13 (``BASELINE``, loaded from git history into
memory, never into the package), run on the same history in the same process.
"""

from __future__ import annotations

import argparse
import platform
import subprocess
import sys
import time
import types
from pathlib import Path

from course_lib.check import (
    LossyKV,
    MemoryKV,
    MemoryRegister,
    Operation,
    StaleRegister,
    check,
    kv,
    kv_workload,
    register,
    register_workload,
    simulate_history,
)

TIMEOUT = 10.0
KEYS = 10
BASELINE = "faddba8e8cafae3537f83f37f170e05c68126e6c"   # last commit of the old checker.py
BASELINE_TIMEOUT = 10.0


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
    """Mean number of operations in flight at once on one partition (key); unknown
    outcomes are left out (they stay in flight for ever)."""
    total = 0.0
    for _, part in model.partition(history):
        part = [op for op in part if op.ret is not None]
        busy = sum(op.ret - op.call for op in part)
        span = max(op.ret for op in part) - min(op.call for op in part)
        total += busy / span * len(part)
    return total / sum(op.ret is not None for op in history)


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


def load_baseline() -> types.ModuleType:
    """The checker module as of ``BASELINE``, imported from ``git show`` as a sibling of
    today's (its relative imports of history and models still resolve)."""
    root = Path(__file__).resolve().parent.parent
    source = subprocess.run(["git", "show", f"{BASELINE}:course_lib/check/checker.py"],
                            cwd=root, capture_output=True, text=True, check=True).stdout
    name = "course_lib.check._checker_before_issue13"
    module = types.ModuleType(name)
    module.__package__ = "course_lib.check"
    sys.modules[name] = module
    exec(compile(source, f"{BASELINE[:7]}:course_lib/check/checker.py", "exec"), module.__dict__)
    return module


def kv_shape(keys: int, variant: str, seed: int = 13) -> list[Operation]:
    """50 clients, 2,000 operations of 1-100 time units, 5 % unknown outcomes."""
    store = LossyKV(p=0.01, seed=seed) if variant == "lost write" else MemoryKV()
    history = simulate_history(store, kv_workload(keys=keys), clients=50, ops=2000, seed=seed,
                               unknown_rate=0.05, length=(1.0, 100.0), gap=(0.0, 2.0))
    return corrupt_one_read(history) if variant == "bad read" else history


def register_shape(clients: int, variant: str) -> list[Operation]:
    """One register, 2,000 operations, ``clients`` nearly always busy."""
    store = StaleRegister(p=0.01, seed=13) if variant == "stale reads" else MemoryRegister()
    history = simulate_history(store, register_workload(), clients=clients, ops=2000,
                               seed=13, gap=(0.0, 0.3))
    return corrupt_one_read(history) if variant == "bad read" else history


def shapes_table() -> None:
    before = load_baseline()
    print(f"\nissue 13 shapes: today's checker vs the checker at {BASELINE[:7]} "
          f"(timeout {BASELINE_TIMEOUT:.0f} s), same history, same run")
    print(f"{'history (s = seed)':<34} {'variant':<12} {'in flight':>9} {'seconds':>9} {'verdict':<17} "
          f"{'baseline':>12} {'ratio':>8}")
    shapes = [(f"kv, 50 clients, 2k ops, {k} keys, s{seed}", kv(),
               lambda v, k=k, seed=seed: kv_shape(k, v, seed), ("correct", "bad read", "lost write"))
              for k, seed in ((10, 1), (10, 2), (10, 13), (20, 13), (50, 13))]
    shapes += [(f"register, {c} clients", register(), lambda v, c=c: register_shape(c, v),
                ("correct", "bad read", "stale reads")) for c in (22, 62)]
    for name, model, make, variants in shapes:
        for variant in variants:
            history = make(variant)
            started = time.perf_counter()
            result = check(model, history, timeout=TIMEOUT)
            seconds = time.perf_counter() - started
            started = time.perf_counter()
            old = before.check(model, history, timeout=BASELINE_TIMEOUT)
            old_seconds = time.perf_counter() - started
            verdict = {True: "linearizable", False: "NOT linearizable", None: "timeout"}[result.ok]
            methods = "+".join(sorted({p.method for p in result.partitions} - {"not checked"}))
            if old.ok is None:
                base, ratio = f">{BASELINE_TIMEOUT:.0f} s", f">{BASELINE_TIMEOUT / seconds:.0f}x"
            else:
                base, ratio = f"{old_seconds:.3f} s", f"{old_seconds / seconds:.1f}x"
                if old.ok is not result.ok and result.ok is not None:
                    ratio += "  <-- VERDICTS DIFFER"
            print(f"{name:<34} {variant:<12} {in_flight(history, model):>9.1f} {seconds:>9.3f} "
                  f"{verdict:<17} {base:>12} {ratio:>8}   ({methods})", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="only the 10k KV headline")
    parser.add_argument("--shapes", action="store_true", help="only the issue-13 table")
    args = parser.parse_args()
    print(f"python {platform.python_version()} on {platform.machine()}, timeout {TIMEOUT:.0f} s per check")
    if args.shapes:
        shapes_table()
        return
    if not args.quick:
        print(f"\n{'model':<13} {'ops':>7} {'clients':>8} {'in flight':>10}   "
              f"{'linearizable':<13}{'seconds':>9}   verdict")
        for model_name in ("kv", "register"):
            for ops in (1_000, 10_000):
                for clients in (5, 10, 20, 50):
                    for linearizable in (True, False):
                        row(model_name, ops, clients, linearizable)
        shapes_table()
    headline()


if __name__ == "__main__":
    sys.exit(main())
