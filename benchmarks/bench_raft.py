"""Benchmark: how fast does the simulator run Raft? (a script, not a test)

A 5-node cluster under closed-loop client load (each client submits its next operation
as soon as the previous one returns), on one core.  Prints delivered messages per
wall-clock second and simulated seconds per wall-clock second, for several trace levels
and with / without the per-event safety monitor.  Baseline in the same run: the bare
simulator delivering ping-pong messages between two processes (no Raft).

    python benchmarks/bench_raft.py [--sim-seconds 20] [--clients 8] [--seed 1]
"""

from __future__ import annotations

import argparse
import gc
import platform
import sys
import time

from course_lib.raft import SimCluster
from course_lib.sim import Process, Simulation


def closed_loop(c: SimCluster, n_clients: int) -> None:
    keys = ["a", "b", "c", "d"]
    for i in range(n_clients):
        k = c.client(f"c{i}")
        rng = c.sim.random.stream(f"load:{i}")

        def next_op(_op=None, k=k, rng=rng):
            key = keys[rng.randrange(len(keys))]
            r = rng.random()
            op = ("get", key) if r < 0.4 else ("put", key, str(rng.randrange(100))) if r < 0.7 \
                else ("append", key, str(rng.randrange(10)))
            c.sim.scheduler.schedule(0, k.submit, op)

        k.on_complete = next_op
        next_op()


def bench_raft(sim_seconds: float, clients: int, seed: int, trace_level: str, monitor: bool) -> dict:
    c = SimCluster(5, seed=seed, trace_level=trace_level, check_invariants=monitor,
                   snapshot_threshold=1000)
    c.run_until(lambda: c.leader() is not None, 5000)
    closed_loop(c, clients)
    net = c.network
    d0, t0, ops0 = net.delivered, c.now, len(c._ops)
    gc.collect()          # start from a clean heap: earlier runs' garbage is not this run's cost
    w0, p0 = time.perf_counter(), time.process_time()
    c.run_for(sim_seconds * 1000)
    wall = time.perf_counter() - w0
    cpu = time.process_time() - p0
    delivered = net.delivered - d0
    ops = sum(1 for op in c._ops[ops0:] if op.done and not op.timed_out)
    assert c.safety_violations() == []
    return {
        "trace": trace_level, "monitor": monitor, "wall_s": wall, "cpu_s": cpu,
        "msgs_per_s": delivered / wall, "sim_s_per_s": (c.now - t0) / 1000 / wall,
        "msgs_per_cpu_s": delivered / cpu, "delivered": delivered,
        "ops_per_wall_s": ops / wall, "ops_per_sim_s": ops / sim_seconds,
        "events": c.sim.scheduler.events_run,
    }


class _Pinger(Process):
    ticking = False

    def on_message(self, src, msg):
        self.sim.network.send(self.node_id, src, msg)


def bench_baseline(messages: int, seed: int) -> dict:
    sim = Simulation(seed, trace_level="messages")
    a, b = _Pinger("a"), _Pinger("b")
    sim.add(a)
    sim.add(b)
    for i in range(8):
        sim.send("a", "b", ("ping", i))
    gc.collect()
    w0 = time.perf_counter()
    sim.run_until(lambda: sim.network.delivered >= messages, 1e12)
    wall = time.perf_counter() - w0
    return {"msgs_per_s": sim.network.delivered / wall}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sim-seconds", type=float, default=20.0)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)
    print(f"python {platform.python_version()} on {platform.machine()}; 5 servers, "
          f"{args.clients} closed-loop clients, {args.sim_seconds:g} simulated s per run")
    print(f"best of {args.repeat} runs each (wall clock; the machine may be shared)")
    base = max((bench_baseline(200_000, args.seed) for _ in range(args.repeat)),
               key=lambda r: r["msgs_per_s"])
    print(f"baseline: bare simulator ping-pong             {base['msgs_per_s']:>10,.0f} msgs/s")
    rows = [("messages", True), ("messages", False), ("summary", True), ("summary", False)]
    for level, mon in rows:
        r = max((bench_raft(args.sim_seconds, args.clients, args.seed, level, mon)
                 for _ in range(args.repeat)), key=lambda r: r["msgs_per_s"])
        print(f"raft: trace={level:<8} monitor={'on ' if mon else 'off'}  "
              f"{r['msgs_per_s']:>10,.0f} msgs/s  {r['sim_s_per_s']:6.2f} sim s/s  "
              f"{r['ops_per_sim_s']:5.0f} client ops/sim s  "
              f"({r['msgs_per_s'] / base['msgs_per_s']:.2f}x baseline; "
              f"{r['delivered']:,} msgs in {r['wall_s']:.2f} s wall, {r['cpu_s']:.2f} s cpu)")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
