"""Randomized fault campaigns against single-decree Paxos (Jepsen-style).

One seed = one run: 3 or 5 nodes, two or more of them proposing different values at
random times, while ``course_lib.sim.Nemesis`` draws faults of every kind the simulator
offers — crashes (the acceptor's promise and acceptance are persisted, everything else
is lost), restarts, partitions, isolation, one-way cuts, pauses, clock skew, message
loss, duplication, long reordering.  Then every fault is healed and the run must
finish.  Checked:

* **agreement** — no two nodes ever learn different values, and no two ballots are
  chosen (accepted by a quorum) with different values;
* **validity** — every value learned was proposed;
* **termination** — once healed, every node learns a value within ``settle_ms``.

Everything is drawn from the seed, so a failing seed replays exactly::

    python -m course_lib.consensus.campaign --seed 123 --verbose
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
from dataclasses import dataclass, field
from typing import Optional

from ..sim import Nemesis
from .cluster import PaxosCluster
from .paxos import PaxosConfig


@dataclass
class PaxosRun:
    """The outcome of one seeded run (``ok`` when every check passed)."""
    seed: int
    n: int
    ok: bool = True
    problems: list = field(default_factory=list)
    proposed: dict = field(default_factory=dict)
    decided: dict = field(default_factory=dict)
    decided_values: set = field(default_factory=set)
    chosen_values: set = field(default_factory=set)
    faults: list = field(default_factory=list)
    heal_at: float = 0.0
    termination_ms: Optional[float] = None
    messages: int = 0
    digest: str = ""

    def summary(self) -> str:
        return (f"seed {self.seed}: {'ok' if self.ok else 'FAILED'}; n={self.n}; "
                f"proposed {sorted(set(self.proposed.values()))}; learned {sorted(self.decided_values)}; "
                f"{len(self.faults)} faults; decided {self.termination_ms} ms after heal; "
                + "; ".join(self.problems))


def _check_ms(name: str, v) -> float:
    if not isinstance(v, (int, float)) or isinstance(v, bool) or v <= 0:
        raise ValueError(f"{name} must be a positive number of ms, got {v!r}")
    return float(v)


def run_seed(seed: int, *, config: Optional[PaxosConfig] = None, n: Optional[int] = None,
             fault_ms: float = 1000, settle_ms: float = 3000, trace_level: str = "summary",
             verbose: bool = False) -> PaxosRun:
    """One randomized run; never raises for a protocol failure (see ``.ok``)."""
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise ValueError(f"seed must be an int, got {seed!r}")
    if n is not None and (not isinstance(n, int) or isinstance(n, bool) or n < 2):
        raise ValueError(f"n must be None or an int >= 2, got {n!r}")
    fault_ms = _check_ms("fault_ms", fault_ms)
    settle_ms = _check_ms("settle_ms", settle_ms)
    rng = random.Random(seed)
    n = n or rng.choice((3, 5))
    c = PaxosCluster(n, seed, config=config, trace_level=trace_level,
                     latency_ms=rng.choice(((1, 5), (1, 20), (5, 40))))
    nemesis = Nemesis(c.sim, random.Random(rng.getrandbits(64)), nodes=lambda: list(c.node_ids))
    run = PaxosRun(seed, n)
    proposers = rng.sample(c.node_ids, rng.randint(2, n))
    for i, nid in enumerate(proposers):
        _client(c, nid, f"v{i + 1}", rng.uniform(0, 0.3 * fault_ms))
    if rng.random() < 0.5:
        nemesis.act("lossy")
    while c.now < fault_ms:
        c.run_for(rng.choice((5, 10, 20, 50, 100)))
        nemesis.act()
    nemesis.heal_all()
    run.heal_at = c.now
    if c.run_until(c.all_decided, settle_ms):
        run.termination_ms = c.now - run.heal_at
    else:
        undecided = sorted(nid for nid, v in c.decided().items() if v is None)
        run.problems.append(f"termination: {undecided} learned nothing {settle_ms:g} ms after healing")
    run.proposed = dict(c.proposed)
    run.decided = c.decided()
    run.decided_values = c.decided_values()
    run.chosen_values = set(c.chosen.values())
    if len(run.decided_values) > 1:
        run.problems.append(f"agreement: nodes learned {sorted(run.decided_values)}")
    if len(run.chosen_values) > 1:
        run.problems.append(f"agreement: ballots chose {sorted(run.chosen_values)}")
    if not c.validity():
        run.problems.append(f"validity: learned {sorted(run.decided_values)}, "
                            f"proposed {sorted(set(c.proposed.values()))}")
    run.ok = not run.problems
    run.faults = list(nemesis.log)
    run.messages = c.network.sent
    run.digest = c.trace_digest()
    if verbose:
        for f in nemesis.log:
            print("  fault", f)
        print("  decisions", c.decisions)
        print("  final", c.states())
    return run


def _client(c: PaxosCluster, nid: str, value: str, at: float) -> None:
    """A client that asks ``nid`` to propose ``value`` at ``at`` and retries every
    10 ms while ``nid`` is down or paused."""
    sim = c.sim

    def fire() -> None:
        if sim.is_alive(nid) and not sim.is_paused(nid):
            c.propose(nid, value)
        else:
            sim.scheduler.schedule(10.0, fire)
    sim.scheduler.schedule_at(at, fire)


@dataclass
class CampaignSummary:
    runs: list

    @property
    def failures(self) -> list:
        return [r for r in self.runs if not r.ok]

    @property
    def termination_ms(self) -> list:
        return [r.termination_ms for r in self.runs if r.termination_ms is not None]

    def report(self) -> str:
        t = self.termination_ms
        faults = sum(len(r.faults) for r in self.runs)
        crashes = sum(1 for r in self.runs for f in r.faults if f[1] == "crash")
        msgs = sum(r.messages for r in self.runs)
        line = (f"{len(self.runs) - len(self.failures)}/{len(self.runs)} runs ok; {faults} faults "
                f"({crashes} crashes); {msgs} messages")
        if t:
            line += (f"; decided after heal: median {statistics.median(t):.0f} ms, "
                     f"max {max(t):.0f} ms")
        return line


def run_campaign(seeds, **kwargs) -> CampaignSummary:
    """``run_seed`` for every seed in ``seeds`` (keyword arguments passed on)."""
    return CampaignSummary([run_seed(s, **kwargs) for s in seeds])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="Randomized single-decree Paxos fault campaign")
    ap.add_argument("--seed", type=int, help="run only this seed")
    ap.add_argument("--seeds", type=int, default=500, help="run seeds 0..N-1")
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args(argv)
    seeds = [args.seed] if args.seed is not None else range(args.seeds)
    summary = CampaignSummary([])
    for s in seeds:
        r = run_seed(s, verbose=args.verbose)
        summary.runs.append(r)
        if not r.ok or args.verbose:
            print(r.summary())
    print(summary.report())
    return 1 if summary.failures else 0


if __name__ == "__main__":
    sys.exit(main())
