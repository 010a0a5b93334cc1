"""Check 5, fault injection: a seeded ``FaultInjector`` against
:class:`course_lib.raft.SimCluster` — crashes, partitions and pauses, replayable from the
seed, really causing leader changes."""

from __future__ import annotations

from typing import Sequence

from ...check import SimFault
from ...raft import SimCluster
from .. import expect


def _injected_run(injector_cls: type, seed: int, duration_ms: float):
    c = SimCluster(5, seed=seed)
    c.run_until(lambda: c.leader() is not None, 3000)
    before = len(c.leader_changes)
    injector = injector_cls(c, seed)
    plan = injector.plan(duration_ms)
    applied = injector.run(duration_ms)
    c.run_until(lambda: c.leader() is not None, 3000)
    c.run_for(200)
    return c, plan, applied, len(c.leader_changes) - before


def fault_injection(injector_cls: type, seeds: Sequence[int] = (1, 2, 3, 4), duration_ms: float = 4000) -> str:
    kinds_seen: set = set()
    changes = []
    for seed in seeds:
        c, plan, applied, led = _injected_run(injector_cls, seed, duration_ms)
        expect(isinstance(plan, list) and plan and all(isinstance(f, SimFault) for f in plan),
               f"seed {seed}: plan() must return a non-empty list of SimFault, got {plan!r:.200}")
        expect(all(0 <= f.at and f.at + f.duration <= duration_ms for f in plan),
               f"seed {seed}: every fault must start and end within [0, {duration_ms:g}] ms; got "
               f"{[f for f in plan if not (0 <= f.at and f.at + f.duration <= duration_ms)][:1]}")
        again = injector_cls(c, seed).plan(duration_ms)
        expect(again == plan, f"seed {seed}: plan() gave a different schedule the second time — "
                              f"draw from random.Random(seed), never the global random")
        kinds_seen |= {f.kind for f in plan}
        expect(isinstance(applied, list) and len(applied) >= len(plan) // 2,
               f"seed {seed}: run() must return the faults it applied; got {applied!r:.200}")
        down = [n for n in c.hosts if not c.sim.is_alive(n) or c.sim.is_paused(n)]
        expect(not down, f"seed {seed}: after run(), {down} are still crashed or paused — heal "
                         f"everything at the end")
        expect(c.leader() is not None, f"seed {seed}: no leader after the faults healed")
        expect(c.safety_violations() == [], f"seed {seed}: Raft safety broken: {c.safety_violations()[:1]}")
        changes.append(led)
        twin, _, _, _ = _injected_run(injector_cls, seed, duration_ms)
        expect(twin.trace_digest() == c.trace_digest(),
               f"seed {seed}: two runs with the same seed gave different traces — a fault run "
               f"must be replayable from its seed")
    hit = sum(1 for n in changes if n)
    expect(hit * 2 >= len(changes) and sum(changes) >= len(changes),
           f"your faults caused {changes} leader changes on seeds {list(seeds)} — they must force "
           f"new elections (at least one on half of the seeds): crash, pause or isolate the "
           f"leader, for longer than an election timeout (150-300 ms)")
    expect({"crash", "partition", "pause"} <= kinds_seen,
           f"your schedules used only {sorted(kinds_seen)}; use crashes, partitions and pauses")
    other = _injected_run(injector_cls, seeds[0] + 1000, duration_ms)[1]
    first = _injected_run(injector_cls, seeds[0], duration_ms)[1]
    expect(other != first, "two different seeds gave the same schedule — draw it from the seed")
    return (f"{len(seeds)} seeded schedules with {sorted(kinds_seen)}: {changes} leader changes, "
            f"no safety violation, same seed → same trace digest")
