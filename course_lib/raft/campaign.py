"""Randomized fault campaigns against the simulated Raft cluster (Jepsen-style).

One seed = one run: a cluster of 3 or 5 servers, 2–3 closed-loop clients, and a
nemesis (:class:`RaftNemesis`, on top of ``course_lib.sim.Nemesis``) that draws faults
of every kind the simulator offers — crash / restart, partitions (random groups),
isolation, one-way link cuts, pauses, clock skew, message loss, duplication, long
reordering, delay changes — plus Raft's forced elections (TimeoutNow), leadership
transfer and membership changes, with snapshots on in most runs.  The
safety monitor checks Raft's invariants after every event (it raises at once); at the
end the faults are healed and the run is checked for liveness, exactly-once appends,
and (with ``course_lib.check``) linearizability of the client history.

Everything is drawn from the seed, so a failing seed replays exactly::

    python -m course_lib.raft.campaign --seed 123 [--verbose]
"""

from __future__ import annotations

import argparse
import random
import sys
import traceback
from dataclasses import dataclass, field
from typing import Optional

from .client import APPEND_KEYS, PUT_KEY, ClientTimeout, ClosedLoopClients  # noqa: F401 (re-exported)
from .cluster import SimCluster
from .errors import ConfChangeInProgress, NotLeader, SafetyViolation
from .messages import ConfChange
from ..sim import Nemesis

@dataclass
class CampaignResult:
    seed: int
    ok: bool
    problems: list = field(default_factory=list)
    faults: list = field(default_factory=list)
    operations: int = 0
    completed: int = 0
    linearizable: Optional[bool] = None
    sim_ms: float = 0.0
    traceback: str = ""

    def summary(self) -> str:
        return (f"seed {self.seed}: {'ok' if self.ok else 'FAILED'}; {self.completed}/{self.operations} ops "
                f"completed; linearizable={self.linearizable}; {len(self.faults)} faults; "
                + "; ".join(self.problems))


class RaftNemesis(Nemesis):
    """The simulator's faults plus Raft's own: forced elections (TimeoutNow),
    leadership transfer and single-server membership changes."""

    KINDS = Nemesis.KINDS + ("timeout_now", "transfer", "membership")

    def __init__(self, c: SimCluster, rng: random.Random, spares: tuple = ()) -> None:
        super().__init__(c.sim, rng, nodes=lambda: list(c.hosts), can_crash=self._majority_stays)
        self.c = c
        self.spares = list(spares)          # ids that may be added later

    def _majority_stays(self) -> bool:
        """Crash only while a majority of the members would stay up (else the run
        would mostly measure unavailability)."""
        members = self.c.members
        alive = sum(1 for n in members if self.c.hosts[n].alive)
        return alive - 1 > len(members) // 2

    def do_timeout_now(self):
        c = self.c
        cands = [x for x in self.up() if x in c.hosts[x].voters]
        if cands:
            n = self.rng.choice(cands)
            c.timeout_now(n)
            return n

    def do_transfer(self):
        c = self.c
        lid = c.leader()
        if lid is None or len(c.members) < 2:
            return None
        n = self.rng.choice([m for m in c.members if m != lid])
        lh = c.hosts[lid]
        try:
            lh.core.transfer_leadership(n)
        except (NotLeader, ValueError):
            return None
        lh.poke()
        return n

    def do_membership(self):
        c, rng = self.c, self.rng
        lid = c.leader()
        if lid is None:
            return None
        lh = c.hosts[lid]
        voters = lh.core.voters
        if len(voters) > 3 and rng.random() < 0.5:
            cc = ConfChange("remove", rng.choice(voters))
        else:
            outside = [x for x in self.nodes() if x not in voters] + self.spares[:1]
            if outside:
                cc = ConfChange("add", rng.choice(outside))
            elif len(voters) > 3:
                cc = ConfChange("remove", rng.choice(voters))
            else:
                return None
        if cc.op == "add" and cc.node not in c.hosts:
            self.spares.remove(cc.node)
            c._spawn(cc.node, ())
        try:
            lh.core.propose_conf_change(cc)
        except (NotLeader, ConfChangeInProgress, ValueError):
            return None
        lh.poke()
        return (cc.op, cc.node)


def check_appends(history, final: dict) -> list:
    """Exactly-once and prefix checks for append-only keys.

    Every token appended appears at most once in the final value; every acknowledged
    append appears exactly once; every read returns a prefix of the final value, and a
    read that starts after another returned sees at least as much.
    """
    problems = []
    for key in APPEND_KEYS:
        value = final.get(key, "")
        tokens = [t for t in value.split(";") if t]
        if len(tokens) != len(set(tokens)):
            dup = sorted({t for t in tokens if tokens.count(t) > 1})
            problems.append(f"key {key!r}: appended more than once: {dup[:5]}")
        present = set(tokens)
        reads = []
        for op in history:
            if op.input[1] != key or op.ret is None:
                continue
            if op.input[0] == "append" and op.input[2][:-1] not in present:
                problems.append(f"key {key!r}: acknowledged append {op.input[2]!r} is lost")
            elif op.input[0] == "get":
                if not value.startswith(op.output):
                    problems.append(f"key {key!r}: read {op.output!r} at {op.ret} is not a prefix "
                                    f"of the final value")
                reads.append(op)
        reads.sort(key=lambda o: o.call)
        for i, a in enumerate(reads):
            for b in reads[i + 1:]:
                if a.ret < b.call and len(b.output) < len(a.output):
                    problems.append(f"key {key!r}: stale read {b.output!r} at {b.call} after "
                                    f"{a.output!r} returned at {a.ret}")
                    break
    return problems


_NO_CHECKER = "no checker"


def _linearizable(history):
    """``check(kv(), history).ok`` (True / False / None on timeout) when
    ``course_lib.check`` offers it, else the marker ``_NO_CHECKER``."""
    try:
        from ..check import check, kv
    except ImportError:
        return _NO_CHECKER
    return check(kv(), history, timeout=20).ok


def run_seed(seed: int, *, fault_ms: float = 3500, recover_ms: float = 1500,
             check_linearizability: bool = True, verbose: bool = False) -> CampaignResult:
    """One randomized run; never raises for a protocol failure (see ``.ok``)."""
    rng = random.Random(seed)
    n = rng.choice((3, 3, 5))
    n_clients = rng.choice((2, 3))
    snap = rng.choice((None, 8, 25))
    pre_vote = rng.random() < 0.85
    read_mode = "log" if rng.random() < 0.2 else "read_index"
    batch = rng.choice((4, 64))
    c = SimCluster(n, seed=seed, snapshot_threshold=snap, trace_level="summary",
                   raise_on_violation=True, client_timeout_ms=1500, client_retry_ms=60,
                   pre_vote=pre_vote, check_quorum=pre_vote, read_mode=read_mode,
                   max_entries_per_message=batch)
    nemesis = RaftNemesis(c, random.Random(rng.getrandbits(64)), spares=(f"n{n + 1}",))
    result = CampaignResult(seed, True)
    try:
        c.run_until(lambda: c.leader() is not None, 1000)
        work = ClosedLoopClients(c, n_clients, random.Random(rng.getrandbits(64)))
        end = c.now + fault_ms
        while c.now < end:
            c.run_for(rng.choice((20, 50, 100, 200)))
            nemesis.act()
        nemesis.heal_all()
        c.run_for(recover_ms)
        work.running = False
        # liveness once healed: a leader, and one more operation completes
        if not c.run_until(lambda: c.leader() is not None, 2000):
            result.problems.append("no leader 2 s after healing")
        else:
            try:
                c.client("final").put("z", "done", timeout_ms=3000)
            except ClientTimeout:
                result.problems.append("no progress 3 s after healing")
        c.run_until(lambda: all(k.current is None or k.current.done for k in c.clients.values()), 2000)
        c.run_for(300)        # let followers learn the last commit index
    except SafetyViolation as e:
        result.problems.append(f"safety violation: {e}")
    except Exception as e:                      # a bug in the core or the driver
        result.problems.append(f"{type(e).__name__}: {e}")
        result.traceback = traceback.format_exc()
        if verbose:
            print(result.traceback)
    result.faults = nemesis.log
    result.sim_ms = c.now
    result.problems.extend(c.safety_violations())
    history = c.history
    result.operations = len(history)
    result.completed = sum(1 for op in history if op.ret is not None)
    lid = c.leader()
    if lid is not None:
        result.problems.extend(check_appends(history, c.hosts[lid].kv.data))
    if check_linearizability:
        verdict = _linearizable(history)
        if verdict is not _NO_CHECKER:
            result.linearizable = verdict
            if verdict is False:
                result.problems.append("history is not linearizable")
            elif verdict is None:
                result.problems.append("linearizability check timed out (counts as a failure)")
    result.ok = not result.problems
    if verbose:
        print(f"seed {seed}: {n} servers, {n_clients} clients, snapshots every {snap}, "
              f"pre_vote={pre_vote}, reads via {read_mode}, {batch} entries per message")
        for f in nemesis.log:
            print("  fault", f)
        print("  final states:", c.states())
    return result


def replay_command(seed: int) -> str:
    return f"python -m course_lib.raft.campaign --seed {seed} --verbose"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="Randomized Raft fault campaign")
    ap.add_argument("--seed", type=int, help="run only this seed")
    ap.add_argument("--seeds", type=int, default=100, help="run seeds 0..N-1")
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args(argv)
    seeds = [args.seed] if args.seed is not None else range(args.seeds)
    failed = 0
    for s in seeds:
        r = run_seed(s, verbose=args.verbose)
        if not r.ok or args.verbose:
            print(r.summary())
        failed += not r.ok
    print(f"{len(seeds) - failed}/{len(seeds)} seeds ok")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
