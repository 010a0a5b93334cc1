"""Checks of exercise 2, "Consensus protocol" (開發一致性協議).

The learner writes five sans-I/O pieces; each check below runs them with real tests —
table tests of the paper's rules first (clear messages), then seeded randomized runs in
the course's simulator (:mod:`course_lib.sim`) or over random logs, with a safety
property checked throughout.  Every randomized failure names its seed, so the learner
can replay it with ``check(..., seeds=[SEED])``.

1. :func:`consensus_algorithm` — a single-decree Paxos ``PaxosAcceptor`` and the
   proposer's rule ``choose_value`` (P2c), hosted by :class:`PaxosHarness` under crashes,
   partitions, loss, duplication and reordering: **agreement** (at most one value is ever
   chosen) and termination once the faults heal.
2. :func:`log_replication` — ``append_entries(log, prev_index, prev_term, entries)`` (Raft
   §5.3): table tests, then random runs of leaders, stale and duplicated messages:
   **Log Matching**, **Leader Completeness** and convergence.
3. :func:`state_machine_replication` — a deterministic ``KVStateMachine`` with client
   sessions: committed logs with retried commands replayed against the course's
   reference; every command applies **exactly once**.
4. :func:`membership_management` — ``Membership``: single-server changes, one pending at
   a time, quorum on the latest configuration: any two quorums of consecutive
   configurations intersect.
5. :func:`failure_recovery` — ``RaftVoter``: persist term / vote before replying and
   recover from storage after a crash: no node ever **votes twice in a term**, no two
   leaders in a term, over crash/restart campaigns.

The harness is deliberately small: the learner's objects plug into it as they are.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence

from ..consensus.messages import ZERO, Accept, Accepted, Ballot, Prepare
from ..consensus.messages import Promise as PromiseMsg
from ..raft.errors import ConfChangeInProgress
from ..raft.kv import ClientCommand
from ..raft.kv import KVStateMachine as ReferenceKV
from ..sim import Nemesis, Process, Simulation
from . import expect

__all__ = [
    "Ballot", "ClientCommand", "ConfChangeInProgress", "ElectionHarness", "LogEntry", "PaxosHarness",
    "PersistentState", "Promise", "Storage", "ZERO", "consensus_algorithm",
    "failure_recovery", "log_replication", "membership_management",
    "state_machine_replication",
]


# =====================================================================================
# 1. Consensus algorithm: single-decree Paxos
# =====================================================================================

@dataclass(frozen=True)
class Promise:
    """An acceptor's phase-1b answer: "I promise ``ballot``; the highest-ballot proposal
    I accepted is ``(accepted_ballot, accepted_value)``" (``ZERO, None`` if none)."""
    ballot: Ballot
    accepted_ballot: Ballot = ZERO
    accepted_value: Any = None


def _b(round_: int, node: str) -> Ballot:
    return Ballot(round_, node)


def _check_acceptor_rules(acceptor_cls: type) -> int:
    """Paxos Made Simple, P1a and phase 1b/2b, one rule per case."""
    cases = 0

    a = acceptor_cls()
    p = a.on_prepare(_b(1, "n1"))
    expect(isinstance(p, Promise), f"on_prepare(1.n1) on a fresh acceptor must return a Promise, got {p!r}")
    expect(p == Promise(_b(1, "n1"), ZERO, None),
           f"a fresh acceptor promises ballot 1.n1 with nothing accepted: expected "
           f"Promise(ballot=1.n1, accepted_ballot=ZERO, accepted_value=None), got {p!r}")
    cases += 1

    a = acceptor_cls()
    a.on_prepare(_b(2, "n2"))
    p = a.on_prepare(_b(1, "n1"))
    expect(p is None, f"after promising 2.n2, on_prepare(1.n1) must refuse (return None): "
                      f"a promise is never given to a lower ballot; got {p!r}")
    ok = a.on_accept(_b(1, "n1"), "x")
    expect(ok is False, f"after promising 2.n2, on_accept(1.n1, 'x') must return False "
                        f"(P1a: accept only if no higher prepare was answered); got {ok!r}")
    cases += 2

    p = a.on_prepare(_b(2, "n2"))
    expect(p == Promise(_b(2, "n2"), ZERO, None),
           f"a duplicated prepare for the ballot already promised (2.n2) gets the same promise "
           f"again; got {p!r}")
    ok = a.on_accept(_b(2, "n2"), "y")
    expect(ok is True, f"after promising 2.n2, on_accept(2.n2, 'y') must return True; got {ok!r}")
    p = a.on_prepare(_b(3, "n3"))
    expect(p == Promise(_b(3, "n3"), _b(2, "n2"), "y"),
           f"after accepting 'y' in 2.n2, on_prepare(3.n3) must report it: expected "
           f"Promise(ballot=3.n3, accepted_ballot=2.n2, accepted_value='y'), got {p!r}")
    ok = a.on_accept(_b(2, "n2"), "y")
    expect(ok is False, f"after promising 3.n3, on_accept(2.n2, 'y') must return False; got {ok!r}")
    cases += 4

    a = acceptor_cls()
    a.on_prepare(_b(1, "n1"))
    ok = a.on_accept(_b(5, "n2"), "z")
    expect(ok is True, f"on_accept(5.n2) with only 1.n1 promised must succeed (5.n2 >= 1.n1); got {ok!r}")
    p = a.on_prepare(_b(4, "n3"))
    expect(p is None, f"after accepting in ballot 5.n2, on_prepare(4.n3) must refuse: accepting "
                      f"ballot 5 is also a promise not to answer lower ballots; got {p!r}")
    ok = a.on_accept(_b(4, "n3"), "w")
    expect(ok is False, f"after accepting in ballot 5.n2, on_accept(4.n3, 'w') must return False; got {ok!r}")
    cases += 3
    return cases


def _check_choose_value(choose_value: Callable) -> int:
    cases = [
        ([Promise(_b(3, "n1")), Promise(_b(3, "n1"))], "mine", "mine",
         "no acceptor in the quorum accepted anything, so you are free to propose your own value"),
        ([Promise(_b(3, "n1")), Promise(_b(3, "n1"), _b(1, "n2"), "red")], "mine", "red",
         "one acceptor accepted 'red' in 1.n2: you must propose 'red' (P2c)"),
        ([Promise(_b(9, "n1"), _b(2, "n3"), "blue"), Promise(_b(9, "n1"), _b(4, "n2"), "red"),
          Promise(_b(9, "n1"), _b(1, "n1"), "green")], "mine", "red",
         "the highest accepted ballot among the promises is 4.n2 (value 'red')"),
        ([Promise(_b(7, "n2"), _b(5, "n1"), "a"), Promise(_b(7, "n2"), _b(5, "n3"), "b")], "mine", "b",
         "ballots order by round, then node: 5.n3 > 5.n1, so 'b'"),
    ]
    for promises, mine, want, why in cases:
        got = choose_value(list(promises), mine)
        expect(got == want, f"choose_value({promises!r}, {mine!r}) returned {got!r}, expected "
                            f"{want!r}: {why}")
    return len(cases)


class _PaxosProcess(Process):
    """One node: the learner's acceptor (its state is on stable storage — it survives a
    crash) plus the harness's proposer and learner (volatile)."""

    def __init__(self, node_id: str, nodes: tuple, harness: "PaxosHarness") -> None:
        super().__init__(node_id)
        self.nodes = nodes
        self.h = harness
        self.acceptor = harness.acceptor_cls()
        self.round = 0                       # persisted: a ballot is never reused
        self.proposal = None                 # persisted: the value this node was asked for
        self._reset()

    def _reset(self) -> None:
        self.ballot = ZERO
        self.highest_seen = ZERO
        self.promises: dict = {}
        self.phase = "idle"
        self.attempt = 0
        self.timer = 1
        self.accepts: dict = {}
        self.learned = None

    def on_crash(self) -> None:
        self._reset()

    def on_tick(self) -> None:
        if self.proposal is None or self.learned is not None:
            return                           # keeps proposing until it learns a value
        self.timer -= 1
        if self.timer <= 0:
            self.start_prepare()

    def start_prepare(self) -> None:
        self.attempt += 1
        self.round = max(self.round, self.highest_seen.round) + 1
        self.ballot = Ballot(self.round, self.node_id)
        self.promises, self.phase = {}, "preparing"
        self.timer = self.h.rng_for(self.node_id).randint(4, 10 * 2 ** min(self.attempt, 3))
        for n in self.nodes:
            self.sim.send(self.node_id, n, Prepare(self.node_id, n, self.ballot))

    def on_message(self, src: str, m) -> None:
        kind = type(m)
        if kind is Prepare:
            self.highest_seen = max(self.highest_seen, m.ballot)
            p = self.acceptor.on_prepare(m.ballot)
            expect(p is None or isinstance(p, Promise),
                   f"on_prepare must return a Promise or None, got {p!r} (seed {self.h.seed})")
            if p is not None:
                self.h.note_promise(self.node_id, m.ballot)
                self.sim.send(self.node_id, src, PromiseMsg(self.node_id, src, m.ballot,
                                                            p.accepted_ballot, p.accepted_value))
        elif kind is PromiseMsg:
            if self.phase != "preparing" or m.ballot != self.ballot or src in self.promises:
                return
            self.promises[src] = Promise(m.ballot, m.accepted_ballot, m.accepted_value)
            if len(self.promises) >= self.h.quorum:
                value = self.h.choose_value(list(self.promises.values()), self.proposal)
                self.phase = "accepting"
                for n in self.nodes:
                    self.sim.send(self.node_id, n, Accept(self.node_id, n, self.ballot, value))
        elif kind is Accept:
            self.highest_seen = max(self.highest_seen, m.ballot)
            ok = self.acceptor.on_accept(m.ballot, m.value)
            expect(ok in (True, False), f"on_accept must return True or False, got {ok!r} "
                                        f"(seed {self.h.seed})")
            if ok:
                self.h.note_accept(self.node_id, m.ballot, m.value)
                for n in self.nodes:
                    self.sim.send(self.node_id, n, Accepted(self.node_id, n, m.ballot, m.value))
        elif kind is Accepted:
            votes = self.accepts.setdefault(m.ballot, {})
            votes[src] = m.value
            if len(votes) >= self.h.quorum and self.learned is None:
                self.learned = m.value
                self.h.learned.append((self.sim.now, self.node_id, m.value))


class PaxosHarness:
    """Single-decree Paxos in the simulator, with the learner's acceptor and P2c rule.

    ``run()`` plays one seeded run: ``n`` nodes (3 or 5), two or more of them proposing
    different values at random times, under :class:`course_lib.sim.Nemesis` faults for
    ``fault_ms``; then everything heals and a value must be chosen.  The harness watches
    every acceptance: a value is *chosen* when a majority accepted it in one ballot.
    """

    def __init__(self, acceptor_cls: type, choose_value: Callable, seed: int) -> None:
        self.acceptor_cls, self.choose_value, self.seed = acceptor_cls, choose_value, seed
        self.rng = random.Random(seed)
        self.n = self.rng.choice((3, 5))
        self.quorum = self.n // 2 + 1
        self.sim = Simulation(seed, trace_level="summary")
        self.sim.network.delay_ms = self.rng.choice(((1, 5), (1, 20), (5, 40)))
        self.nodes = tuple(f"n{i}" for i in range(1, self.n + 1))
        self.procs = {nid: _PaxosProcess(nid, self.nodes, self) for nid in self.nodes}
        for p in self.procs.values():
            self.sim.add(p)
        self.proposed: dict = {}
        self.acceptances: dict = {}          # ballot -> {node: value}
        self.chosen: dict = {}               # ballot -> value accepted by a majority
        self.learned: list = []
        self.max_promised: dict = {}         # node -> the highest ballot it promised / accepted
        self.problems: list = []

    @property
    def chosen_value(self):
        return next(iter(self.chosen.values()), None)

    def rng_for(self, nid: str) -> random.Random:
        return self.sim.random.stream(f"proposer:{nid}")

    def note_promise(self, nid: str, ballot: Ballot) -> None:
        self.max_promised[nid] = max(self.max_promised.get(nid, ZERO), ballot)

    def note_accept(self, nid: str, ballot: Ballot, value) -> None:
        if ballot < self.max_promised.get(nid, ZERO):
            self.problems.append(f"acceptor {nid} accepted ballot {ballot} after promising "
                                 f"{self.max_promised[nid]}")
        self.note_promise(nid, ballot)
        votes = self.acceptances.setdefault(ballot, {})
        votes[nid] = value
        if len(votes) >= self.quorum and ballot not in self.chosen:
            self.chosen[ballot] = value

    def run(self, fault_ms: float = 800, settle_ms: float = 4000) -> list:
        rng, sim = self.rng, self.sim
        nemesis = Nemesis(sim, random.Random(rng.getrandbits(64)), nodes=lambda: list(self.nodes))
        for i, nid in enumerate(rng.sample(self.nodes, rng.randint(2, self.n))):
            self._propose_at(rng.uniform(0, 0.2 * fault_ms), nid, f"v{i + 1}")
        if rng.random() < 0.5:
            nemesis.act("lossy")
        while sim.now < fault_ms:
            sim.run_for(rng.choice((5, 10, 20, 50)))
            nemesis.act()
        nemesis.heal_all()
        sim.run_until(lambda: self.chosen_value is not None, settle_ms)
        sim.run_for(300)                     # later ballots must keep the chosen value
        values = set(self.chosen.values())
        if len(values) > 1:
            first = sorted(self.chosen.items())
            self.problems.append("agreement broken: different values were chosen — "
                                 + ", ".join(f"{v!r} in ballot {bal}" for bal, v in first))
        learned = {v for _t, _n, v in self.learned}
        if len(learned) > 1:
            self.problems.append(f"agreement broken: nodes learned {sorted(learned)}")
        if not values <= set(self.proposed.values()):
            self.problems.append(f"validity broken: chosen {sorted(values)} but only "
                                 f"{sorted(set(self.proposed.values()))} were proposed")
        if not values and not self.problems:
            self.problems.append(f"no value was chosen {settle_ms:g} ms after every fault healed "
                                 f"(do your acceptors promise and accept higher ballots?)")
        return self.problems

    def _propose_at(self, at: float, nid: str, value: str) -> None:
        def fire() -> None:
            if self.sim.is_alive(nid) and not self.sim.is_paused(nid):
                self.procs[nid].proposal = value
                self.proposed[nid] = value
            else:
                self.sim.scheduler.schedule(10.0, fire)
        self.sim.scheduler.schedule_at(at, fire)


def consensus_algorithm(acceptor_cls: type, choose_value: Callable,
                        seeds: Sequence[int] = range(300)) -> str:
    """Acceptor rules and P2c by table, then agreement over seeded fault runs."""
    cases = _check_acceptor_rules(acceptor_cls) + _check_choose_value(choose_value)
    chosen_runs = 0
    for seed in seeds:
        h = PaxosHarness(acceptor_cls, choose_value, seed)
        problems = h.run()
        if problems:
            raise_failed(f"seed {seed} ({h.n} nodes, proposed {sorted(h.proposed.values())}): "
                             f"{problems[0]} — replay with consensus_algorithm(PaxosAcceptor, "
                             f"choose_value, seeds=[{seed}])")
        chosen_runs += 1
    return (f"{cases} rule cases; agreement and validity held in {chosen_runs} seeded runs "
            f"with crashes, partitions, pauses, loss, duplication and reordering, and a value "
            f"was chosen in every one")


# =====================================================================================
# 2. Log replication: AppendEntries on the follower
# =====================================================================================

@dataclass(frozen=True)
class LogEntry:
    """One log entry; its index is its position (``log[0]`` is index 1)."""
    term: int
    command: Any = None


def _terms(log) -> str:
    return "[" + ", ".join(str(e.term) for e in log) + "]"


def _log(*terms: int) -> list:
    return [LogEntry(t, f"t{t}.{i}") for i, t in enumerate(terms, 1)]


def _call_append(append_entries: Callable, log: list, prev_index: int, prev_term: int,
                 entries: list, where: str):
    before = list(log)
    result = append_entries(log, prev_index, prev_term, list(entries))
    expect(isinstance(result, tuple) and len(result) == 2 and isinstance(result[0], bool)
           and isinstance(result[1], list),
           f"append_entries must return (success: bool, new_log: list); got {result!r} ({where})")
    expect(log == before, f"append_entries must not modify the log it is given — return a new "
                          f"list ({where})")
    ok, new = result
    expect(all(isinstance(e, LogEntry) for e in new),
           f"the new log must hold LogEntry objects; got {new!r} ({where})")
    return ok, new


_AE_TABLE = [
    # (log terms, prev_index, prev_term, entry terms, success, result terms, rule)
    ((), 0, 0, (1, 1), True, (1, 1), "prev_index 0 always matches: append to the empty log"),
    ((1, 1), 2, 1, (), True, (1, 1), "a heartbeat (no entries) whose prev matches changes nothing"),
    ((1,), 2, 1, (2,), False, (1,), "§5.3: reply false if the log has no entry at prev_index"),
    ((1, 1), 2, 2, (2,), False, (1, 1), "§5.3: reply false if the entry at prev_index has another term"),
    ((1, 1, 1), 1, 1, (2,), True, (1, 2),
     "§5.3: an existing entry conflicting with a new one (same index, different term) is "
     "deleted with all that follow"),
    ((1, 1, 2), 1, 1, (1,), True, (1, 1, 2),
     "a stale or duplicated AppendEntries whose entries are already in the log must not "
     "truncate the entries after them"),
    ((1, 2, 2), 1, 1, (2, 3), True, (1, 2, 3),
     "skip the entries already present, truncate at the first conflict, append the rest"),
    ((1, 1), 0, 0, (1, 1, 3), True, (1, 1, 3), "append only the entries not already in the log"),
    ((1, 1, 1, 4, 4), 3, 1, (4, 5), True, (1, 1, 1, 4, 5), "the conflict is at index 5 only"),
]


def _check_append_table(append_entries: Callable) -> int:
    for log_terms, pi, pt, e_terms, ok_want, res_terms, rule in _AE_TABLE:
        log = _log(*log_terms)
        entries = [LogEntry(t, f"t{t}.{pi + k}") for k, t in enumerate(e_terms, 1)]
        where = (f"log {_terms(log)}, prev_index={pi}, prev_term={pt}, entries {_terms(entries)}")
        ok, new = _call_append(append_entries, log, pi, pt, entries, where)
        expect(ok == ok_want, f"{where}: expected success={ok_want}, got {ok} — {rule}")
        expect([e.term for e in new] == list(res_terms),
               f"{where}: expected the log {list(res_terms)}, got {_terms(new)} — {rule}")
    return len(_AE_TABLE)


def _up_to_date(a: list, b: list) -> bool:
    """§5.4.1: log ``a`` is at least as up-to-date as ``b``."""
    ta, tb = (a[-1].term if a else 0), (b[-1].term if b else 0)
    return ta > tb or (ta == tb and len(a) >= len(b))


def _log_matching(logs: dict) -> Optional[str]:
    names = sorted(logs)
    for x, y in itertools.combinations(names, 2):
        lx, ly = logs[x], logs[y]
        top = 0
        for i in range(min(len(lx), len(ly)), 0, -1):
            if lx[i - 1].term == ly[i - 1].term:
                top = i
                break
        if top and lx[:top] != ly[:top]:
            k = next(i for i in range(top) if lx[i] != ly[i]) + 1
            return (f"Log Matching broken: {x} and {y} both have an entry of term "
                    f"{lx[top - 1].term} at index {top} but differ at index {k} "
                    f"({x}: {_terms(lx)}, {y}: {_terms(ly)})")
    return None


def _replication_run(append_entries: Callable, seed: int, steps: int = 260) -> Optional[str]:
    """Leaders come and go (elected by §5.4.1's vote rule from a majority); each appends
    entries and sends AppendEntries (with nextIndex back-off) over a network that loses,
    duplicates and reorders; stale messages from old leaders still arrive."""
    rng = random.Random(seed)
    nodes = [f"n{i}" for i in range(1, 6)]
    logs = {n: [] for n in nodes}
    term_of = {n: 0 for n in nodes}
    committed: list = []                               # the committed prefix (entries)
    bag: list = []                                     # (term, leader, follower, pi, pt, entries)
    term, leader, nxt, match = 0, None, {}, {}
    counter = itertools.count(1)

    def elect() -> None:
        nonlocal term, leader, nxt, match
        term += 1
        alive = rng.sample(nodes, rng.choice((3, 4, 5)))
        candidates = [c for c in alive
                      if sum(_up_to_date(logs[c], logs[v]) for v in alive) >= 3]
        if not candidates:
            leader = None
            return
        leader = rng.choice(candidates)
        for v in alive:
            term_of[v] = max(term_of[v], term)
        missing = [i for i, e in enumerate(committed, 1)
                   if len(logs[leader]) < i or logs[leader][i - 1] != e]
        if missing:
            raise _Broken(f"Leader Completeness broken: entry {missing[0]} was committed "
                          f"(term {committed[missing[0] - 1].term}) but the new leader {leader} "
                          f"of term {term} does not have it (log {_terms(logs[leader])}) — "
                          f"a follower lost an entry it had acknowledged")
        nxt = {f: len(logs[leader]) + 1 for f in nodes}
        match = {f: 0 for f in nodes}
        match[leader] = len(logs[leader])

    def send(f: str) -> None:
        ni = nxt[f]
        pt = logs[leader][ni - 2].term if ni > 1 else 0
        bag.append((term, leader, f, ni - 1, pt, list(logs[leader][ni - 1:ni - 1 + 3])))

    try:
        elect()
        for step in range(steps):
            x = rng.random()
            if leader is None or x < 0.04:
                elect()
                continue
            if x < 0.25:
                for _ in range(rng.randint(1, 2)):
                    logs[leader].append(LogEntry(term, f"c{next(counter)}"))
                match[leader] = len(logs[leader])
            elif x < 0.55:
                for f in rng.sample(nodes, 2):
                    if f != leader:
                        send(f)
            elif bag:
                msg = bag.pop(rng.randrange(len(bag)))
                if rng.random() < 0.2:
                    bag.insert(rng.randrange(len(bag) + 1), msg)      # duplicated
                if rng.random() < 0.1:
                    continue                                          # lost
                mterm, mleader, f, pi, pt, entries = msg
                if mterm < term_of[f]:
                    continue                           # §5.1: a stale term is refused
                term_of[f] = mterm
                where = (f"seed {seed}, step {step}: {f} with log {_terms(logs[f])} gets "
                         f"AppendEntries(prev_index={pi}, prev_term={pt}, entries "
                         f"{_terms(entries)}) from {mleader} of term {mterm}")
                ok, new = _call_append(append_entries, logs[f], pi, pt, entries, where)
                logs[f] = new
                if ok and not all(pi + k <= len(new) and new[pi + k - 1] == e
                                  for k, e in enumerate(entries, 1)):
                    raise _Broken(f"{where}: you replied success but the log {_terms(new)} does "
                                  f"not end up holding those entries after index {pi}")
                if mterm == term and mleader == leader:
                    if ok:
                        match[f] = max(match[f], pi + len(entries))
                        nxt[f] = match[f] + 1
                    else:
                        nxt[f] = max(1, min(nxt[f], pi))
                    # §5.4.2: commit entries of the current term stored on a majority
                    for i in range(len(logs[leader]), len(committed), -1):
                        if (logs[leader][i - 1].term == term
                                and sum(match[n] >= i for n in nodes) >= 3):
                            committed[:] = logs[leader][:i]
                            break
            problem = _log_matching(logs)
            if problem:
                raise _Broken(f"seed {seed}, step {step}: {problem}")
        # a final stable leader with a reliable network: every follower must catch up
        while leader is None:
            elect()
        logs[leader].append(LogEntry(term, "no-op"))      # §8: a leader's first entry
        for _round in range(200):
            behind = [f for f in nodes if logs[f] != logs[leader]]
            if not behind:
                break
            for f in behind:
                ni = nxt[f]
                pt = logs[leader][ni - 2].term if ni > 1 else 0
                entries = list(logs[leader][ni - 1:])
                term_of[f] = term
                ok, new = _call_append(append_entries, logs[f], ni - 1, pt, entries,
                                       f"seed {seed}, catching up {f}")
                logs[f] = new
                nxt[f] = len(logs[leader]) + 1 if ok else max(1, ni - 1)
        behind = [f for f in nodes if logs[f] != logs[leader]]
        if behind:
            f = behind[0]
            return (f"seed {seed}: follower {f} never caught up with leader {leader}: its log is "
                    f"{_terms(logs[f])}, the leader's {_terms(logs[leader])}")
    except _Broken as broken:
        return f"seed {seed}: {broken}" if not str(broken).startswith("seed") else str(broken)
    return None


class _Broken(Exception):
    pass


def log_replication(append_entries: Callable, seeds: Sequence[int] = range(150)) -> str:
    """§5.3 by table, then Log Matching, Leader Completeness and convergence at random."""
    cases = _check_append_table(append_entries)
    for seed in seeds:
        problem = _replication_run(append_entries, seed)
        expect(problem is None, f"{problem} — replay with log_replication(append_entries, "
                                f"seeds=[{seed}])")
    return (f"{cases} rule cases; Log Matching and Leader Completeness held and every follower "
            f"caught up in {len(seeds)} random runs with stale, lost and duplicated messages")


# =====================================================================================
# 3. State machine replication: a KV store with client sessions
# =====================================================================================

def _committed_log(rng: random.Random) -> list:
    """Commands of three clients, each numbering its own, with retries: a command may be
    committed again later (re-sent to a new leader), even after the client moved on."""
    log: list = []
    pending: list = []
    seqs = {c: 0 for c in ("alice", "bob", "carol")}
    for _ in range(rng.randint(20, 60)):
        if pending and rng.random() < 0.3:
            log.append(pending.pop(rng.randrange(len(pending))))
            continue
        c = rng.choice(sorted(seqs))
        seqs[c] += 1
        key = rng.choice(("x", "y"))
        r = rng.random()
        op = (("get", key) if r < 0.25 else ("put", key, f"{c[0]}{seqs[c]}") if r < 0.5
              else ("append", key, f"{c[0]}{seqs[c]};"))
        cmd = ClientCommand(c, seqs[c], op)
        log.append(cmd)
        for _ in range(rng.choice((0, 0, 1, 2))):
            pending.append(cmd)
    return log + pending


def state_machine_replication(kv_cls: type, seeds: Sequence[int] = range(200)) -> str:
    """Semantics by table; then committed logs with retries replayed against the course's
    reference: same results, same state, and each (client, seq) applied exactly once."""
    kv = kv_cls()
    C = ClientCommand
    table = [
        (C("a", 1, ("get", "k")), "", "get of a missing key returns ''"),
        (C("a", 2, ("put", "k", "v")), None, "put returns None"),
        (C("a", 3, ("get", "k")), "v", "get returns the value put"),
        (C("b", 1, ("append", "k", "w")), None, "append returns None"),
        (C("b", 2, ("get", "k")), "vw", "append adds to the end of the value"),
        (C("b", 1, ("append", "k", "w")), None,
         "a retried command (same client and seq) is answered from the session, not applied again"),
        (C("b", 3, ("get", "k")), "vw", "the retried append must not have been applied twice"),
        (C("a", 3, ("get", "k")), "v",
         "a retried command returns the result remembered for it (here the first get's 'v'), "
         "even though the value changed since"),
    ]
    for cmd, want, rule in table:
        got = kv.apply(cmd)
        expect(got == want, f"apply({cmd}) returned {got!r}, expected {want!r}: {rule}")
    expect(kv.read("k") == "vw", f"read('k') returned {kv.read('k')!r}, expected 'vw'")

    replays = 0
    for seed in seeds:
        rng = random.Random(seed)
        log = _committed_log(rng)
        ref, mine, twin = ReferenceKV(), kv_cls(), kv_cls()
        applied: set = set()
        for index, cmd in enumerate(log, 1):
            want, got, again = ref.apply(cmd), mine.apply(cmd), twin.apply(cmd)
            dup = (cmd.client_id, cmd.seq) in applied
            applied.add((cmd.client_id, cmd.seq))
            where = f"seed {seed}, log index {index}: {cmd}"
            expect(got == again, f"{where}: two replicas applying the same log got {got!r} and "
                                 f"{again!r} — apply must be deterministic")
            latest = ref.sessions[cmd.client_id][0] == cmd.seq
            if not dup or latest:
                expect(got == want, f"{where}{' (a retry)' if dup else ''}: returned {got!r}, "
                                    f"expected {want!r}")
            for key in ("x", "y"):
                expect(mine.read(key) == ref.read(key),
                       f"{where}{' (a retry, already applied)' if dup else ''}: afterwards "
                       f"read({key!r}) is {mine.read(key)!r}, expected {ref.read(key)!r}"
                       + (" — the retried command was applied twice" if dup else ""))
        replays += len(log)
    return (f"{len(table)} session cases; {len(seeds)} committed logs ({replays} entries, with "
            f"retries) replayed: same results and state as the reference, every command once")


# =====================================================================================
# 4. Membership management: single-server changes
# =====================================================================================

def _subsets(nodes) -> list:
    nodes = sorted(nodes)
    return [frozenset(c) for r in range(len(nodes) + 1) for c in itertools.combinations(nodes, r)]


def _quorums(m, universe) -> set:
    return {s for s in _subsets(universe) if m.is_quorum(set(s))}


def membership_management(membership_cls: type, seeds: Sequence[int] = range(60)) -> str:
    m = membership_cls({"n1", "n2", "n3"})
    expect(set(m.voters) == {"n1", "n2", "n3"}, f"voters must be the initial configuration, got {m.voters!r}")
    expect(m.pending is False, f"a new configuration has no pending change; pending is {m.pending!r}")
    expect(m.is_quorum({"n1", "n2"}) is True, "is_quorum({'n1','n2'}) of {n1,n2,n3} must be True")
    expect(m.is_quorum({"n1"}) is False, "is_quorum({'n1'}) of {n1,n2,n3} must be False")
    expect(m.is_quorum({"n1", "n9"}) is False,
           "is_quorum({'n1','n9'}) of {n1,n2,n3} must be False: n9 is not a member and does not count")
    new = m.propose("add", "n4")
    expect(set(new) == {"n1", "n2", "n3", "n4"} and set(m.voters) == set(new),
           f"propose('add', 'n4') must return and use the new configuration {{n1,n2,n3,n4}} "
           f"at once (thesis §4.1: a server uses the latest configuration in its log, "
           f"committed or not); got {new!r}, voters {m.voters!r}")
    expect(m.pending is True, "after propose(), pending must be True until commit()")
    expect(m.is_quorum({"n1", "n2"}) is False,
           "with voters {n1,n2,n3,n4}, is_quorum({'n1','n2'}) must be False: 2 of 4 is not a majority")
    expect(m.is_quorum({"n1", "n2", "n4"}) is True,
           "with voters {n1,n2,n3,n4}, is_quorum({'n1','n2','n4'}) must be True")
    try:
        m.propose("remove", "n1")
    except ConfChangeInProgress:
        pass
    else:
        raise_failed("propose('remove', 'n1') while 'add n4' is still pending must raise "
                     "ConfChangeInProgress: only one change may be uncommitted at a time "
                     "(otherwise {n1,n2,n3} → {n2,n3,n4} differ by two servers, and majorities "
                     "{n1,n2} of the first and {n3,n4} of the second do not intersect)")
    expect(set(m.voters) == {"n1", "n2", "n3", "n4"}, f"a refused change must not alter the "
                                                       f"configuration; voters are {m.voters!r}")
    m.commit()
    expect(m.pending is False, "after commit(), pending must be False")
    for op, node, why in (("add", "n2", "n2 is already a member"),
                          ("remove", "n9", "n9 is not a member"),
                          ("swap", "n5", "op must be 'add' or 'remove'")):
        try:
            m.propose(op, node)
        except ValueError:
            continue
        except ConfChangeInProgress:
            raise_failed(f"propose({op!r}, {node!r}) raised ConfChangeInProgress, but no change "
                         f"is pending after commit()")
        raise_failed(f"propose({op!r}, {node!r}) must raise ValueError: {why}")
    try:
        m.commit()
    except ValueError:
        pass
    else:
        raise_failed("commit() with no pending change must raise ValueError")

    changes = 0
    for seed in seeds:
        rng = random.Random(seed)
        pool = [f"n{i}" for i in range(1, 8)]
        start = set(rng.sample(pool, rng.randint(1, 4)))
        m = membership_cls(set(start))
        for step in range(8):
            old = set(m.voters)
            q_old = _quorums(m, pool)
            if len(old) > 1 and (len(old) == len(pool) or rng.random() < 0.5):
                op, node = "remove", rng.choice(sorted(old))
            else:
                op, node = "add", rng.choice(sorted(set(pool) - old))
            where = f"seed {seed}, step {step}: {sorted(old)} then propose({op!r}, {node!r})"
            m.propose(op, node)
            now = set(m.voters)
            want = old | {node} if op == "add" else old - {node}
            expect(now == want, f"{where}: voters became {sorted(now)}, expected {sorted(want)}")
            q_new = _quorums(m, pool)
            for conf, qs in ((old, q_old), (now, q_new)):
                majority = {s for s in _subsets(pool) if len(s & conf) > len(conf) / 2}
                wrong = sorted(qs ^ majority, key=lambda s: (len(s), sorted(s)))
                expect(not wrong, f"{where}: is_quorum({set(sorted(wrong[0])) if wrong else ''}) "
                                  f"must be {wrong[0] in majority if wrong else ''} for voters "
                                  f"{sorted(conf)} — a quorum is a majority of the voters")
            disjoint = next(((a, c) for a in q_old for c in q_new if not a & c), None)
            expect(disjoint is None, f"{where}: quorums {sorted(disjoint[0]) if disjoint else ''} "
                                     f"and {sorted(disjoint[1]) if disjoint else ''} do not intersect")
            try:
                m.propose("add" if op == "remove" else "remove", node)
            except ConfChangeInProgress:
                pass
            else:
                raise_failed(f"{where}: a second propose() before commit() was accepted — it "
                             f"must raise ConfChangeInProgress")
            m.commit()
            changes += 1
    return (f"rules checked; {changes} random single-server changes: quorums are majorities of "
            f"the latest configuration, consecutive ones always intersect, a second pending "
            f"change is refused")


def raise_failed(message: str) -> None:
    expect(False, message)


# =====================================================================================
# 5. Failure recovery: persist before replying, recover after a crash
# =====================================================================================

@dataclass(frozen=True)
class PersistentState:
    """What a Raft server keeps on stable storage (Figure 2): its term, its vote in that
    term, and its log (here only the terms of its entries)."""
    term: int = 0
    voted_for: Optional[str] = None
    log_terms: tuple = ()


class Storage:
    """Stable storage: survives a crash.  ``save`` replaces the stored state."""

    def __init__(self, state: Optional[PersistentState] = None) -> None:
        self._state = state or PersistentState()
        self.writes = 0

    def save(self, state: PersistentState) -> None:
        if not isinstance(state, PersistentState):
            raise ValueError(f"save() takes a PersistentState, got {state!r}")
        self._state = state
        self.writes += 1

    def load(self) -> PersistentState:
        return self._state

    def __repr__(self) -> str:
        return f"Storage({self._state})"


def _vote(voter, term, cand, lli, llt, where: str):
    result = voter.handle_request_vote(term, cand, lli, llt)
    expect(isinstance(result, tuple) and len(result) == 2 and isinstance(result[1], bool),
           f"handle_request_vote must return (term, granted); got {result!r} ({where})")
    return result


def _check_voter_rules(voter_cls: type) -> int:
    cases = [
        # (stored, request (term, cand, last_index, last_term), expect (term, granted), rule)
        (PersistentState(2, None, (1, 2)), (3, "n2", 2, 2), (3, True),
         "a higher term with an equally up-to-date log gets the vote"),
        (PersistentState(3, None, (1,)), (2, "n2", 5, 2), (3, False),
         "§5.1: a request from an older term is refused; the reply carries the current term 3"),
        (PersistentState(3, "n3", ()), (3, "n2", 0, 0), (3, False),
         "§5.2: at most one vote per term — already voted for n3 in term 3"),
        (PersistentState(3, "n2", ()), (3, "n2", 0, 0), (3, True),
         "a retried request from the candidate already voted for gets the vote again"),
        (PersistentState(3, "n3", ()), (4, "n2", 0, 0), (4, True),
         "a higher term starts afresh: the old vote was for term 3"),
        (PersistentState(1, None, (1, 3)), (4, "n2", 5, 2), (4, False),
         "§5.4.1: the candidate's last log term 2 is older than ours (3)"),
        (PersistentState(1, None, (1, 3, 3)), (4, "n2", 2, 3), (4, False),
         "§5.4.1: same last term 3 but the candidate's log is shorter (2 < 3)"),
        (PersistentState(1, None, (1, 3, 3)), (4, "n2", 3, 3), (4, True),
         "§5.4.1: same last term and same length is up to date"),
    ]
    for stored, (term, cand, lli, llt), (want_term, want_granted), rule in cases:
        storage = Storage(stored)
        voter = voter_cls("n1", storage)
        where = f"stored {stored}, RequestVote(term={term}, candidate={cand!r}, last_log_index={lli}, last_log_term={llt})"
        got = _vote(voter, term, cand, lli, llt, where)
        expect(got == (want_term, want_granted),
               f"{where}: returned {got!r}, expected {(want_term, want_granted)!r} — {rule}")
        saved = storage.load()
        expect(saved.term == want_term,
               f"{where}: you replied with term {got[0]} but storage holds term {saved.term} — "
               f"persist the new term before you reply")
        if want_granted:
            expect(saved.voted_for == cand,
                   f"{where}: you granted the vote to {cand} but storage holds voted_for="
                   f"{saved.voted_for!r} — persist the vote before you reply, or a crash makes "
                   f"you forget it")
        expect(saved.log_terms == stored.log_terms,
               f"{where}: storage's log became {saved.log_terms}, expected it unchanged "
               f"{stored.log_terms} — keep the log when you save term and vote")
    # crash / restart scenarios
    storage = Storage(PersistentState(4, None, (1,)))
    v = voter_cls("n1", storage)
    _vote(v, 5, "n2", 1, 1, "crash scenario")
    v = voter_cls("n1", storage)                     # crash: only storage survives
    got = _vote(v, 5, "n3", 1, 1, "crash scenario")
    expect(got == (5, False), f"n1 voted for n2 in term 5, crashed and restarted; then n3 asked "
                              f"for its vote in term 5 and got {got!r} — a restarted node must "
                              f"recover its vote from storage, or it votes twice in one term")
    storage = Storage(PersistentState(1, None, ()))
    v = voter_cls("n1", storage)
    _vote(v, 7, "n2", 0, 0, "crash scenario")
    v = voter_cls("n1", storage)
    got = _vote(v, 6, "n3", 0, 0, "crash scenario")
    expect(got == (7, False), f"n1 saw term 7, crashed and restarted; a request for term 6 got "
                              f"{got!r}, expected (7, False) — recover current_term from storage")
    return len(cases) + 2


class _VoterProcess(Process):
    """A Raft server reduced to elections: the learner's voter (rebuilt from storage on
    every restart) plus a candidate driven by the harness."""

    def __init__(self, nid: str, nodes: tuple, harness: "ElectionHarness", log_terms: tuple) -> None:
        super().__init__(nid)
        self.nodes, self.h = nodes, harness
        self.storage = Storage(PersistentState(max(log_terms, default=0), None, log_terms))
        self.voter = None
        self.log_terms = log_terms

    def _boot(self) -> None:
        self.voter = self.h.voter_cls(self.node_id, self.storage)
        self.votes: set = set()
        self.my_term = 0
        self.timer = self.h.rng.randint(10, 40)

    def on_start(self) -> None:
        self._boot()

    def on_crash(self) -> None:
        self.voter = None

    def on_restart(self) -> None:
        self._boot()

    def on_tick(self) -> None:
        self.timer -= 1
        if self.timer > 0:
            return
        self.timer = self.h.rng.randint(10, 40)
        term = self.storage.load().term + 1           # a candidate starts a new term
        self.my_term, self.votes = term, set()
        self.h.deliver_vote_request(self, self.node_id, term)
        for n in self.nodes:
            if n != self.node_id:
                self.sim.send(self.node_id, n, ("vote?", term, len(self.log_terms),
                                                self.log_terms[-1] if self.log_terms else 0))

    def on_message(self, src: str, msg) -> None:
        if msg[0] == "vote?":
            _, term, lli, llt = msg
            granted = self.h.deliver_vote_request(self, src, term, lli, llt)
            self.sim.send(self.node_id, src, ("vote", term, granted))
        elif msg[0] == "vote" and msg[1] == self.my_term and msg[2]:
            self.votes.add(src)
            self.h.check_leader(self)

    def count_own(self, term: int, granted: bool) -> None:
        if granted and term == self.my_term:
            self.votes.add(self.node_id)
            self.h.check_leader(self)


class ElectionHarness:
    """Elections only, under crash/restart, partitions and message faults; watching for a
    node that votes twice in a term and for two leaders in a term."""

    def __init__(self, voter_cls: type, seed: int) -> None:
        self.voter_cls, self.seed = voter_cls, seed
        self.rng = random.Random(seed)
        self.n = self.rng.choice((3, 5))
        self.sim = Simulation(seed, trace_level="summary")
        self.sim.network.delay_ms = (1, 10)
        self.nodes = tuple(f"n{i}" for i in range(1, self.n + 1))
        self.votes: dict = {}            # (voter, term) -> candidate
        self.leaders: dict = {}          # term -> leader
        self.problems: list = []
        self.elections = 0
        logs = {}
        for nid in self.nodes:
            logs[nid] = tuple(sorted(self.rng.choice((1, 2, 3)) for _ in range(self.rng.randint(0, 3))))
        self.procs = {nid: _VoterProcess(nid, self.nodes, self, logs[nid]) for nid in self.nodes}
        for p in self.procs.values():
            self.sim.add(p)

    def deliver_vote_request(self, proc: _VoterProcess, cand: str, term: int,
                             lli: int = None, llt: int = None):
        if lli is None:
            lt = proc.log_terms
            lli, llt = len(lt), (lt[-1] if lt else 0)
        where = (f"seed {self.seed}, t={self.sim.now:.0f} ms: {proc.node_id} asked by {cand} "
                 f"for term {term}")
        reply_term, granted = _vote(proc.voter, term, cand, lli, llt, where)
        stored = proc.storage.load()
        if granted:
            if stored.term != term or stored.voted_for != cand:
                self.problems.append(f"{where}: granted the vote but storage holds {stored} — "
                                     f"persist before replying")
            mine = proc.log_terms
            my_llt = mine[-1] if mine else 0
            if llt < my_llt or (llt == my_llt and lli < len(mine)):
                self.problems.append(f"{where}: granted a vote to a candidate whose log "
                                     f"(last term {llt}, length {lli}) is behind its own {mine}")
            before = self.votes.setdefault((proc.node_id, term), cand)
            if before != cand:
                self.problems.append(f"{where}: voted for {cand} in term {term} but it had "
                                     f"already voted for {before} in that term (before a "
                                     f"crash?) — a node voted twice")
        if cand == proc.node_id:
            proc.count_own(term, granted)
            self.elections += 1
        return granted

    def check_leader(self, proc: _VoterProcess) -> None:
        if len(proc.votes) * 2 > self.n:
            other = self.leaders.setdefault(proc.my_term, proc.node_id)
            if other != proc.node_id:
                self.problems.append(f"seed {self.seed}: two leaders in term {proc.my_term}: "
                                     f"{other} and {proc.node_id}")

    def run(self, fault_ms: float = 1500) -> list:
        nem = Nemesis(self.sim, random.Random(self.rng.getrandbits(64)), nodes=lambda: list(self.nodes))
        nem.act("lossy")
        while self.sim.now < fault_ms and not self.problems:
            self.sim.run_for(self.rng.choice((10, 20, 40)))
            nem.act(self.rng.choice(("crash", "restart", "restart", "crash", "partition", "heal",
                                     "lossy", "pause", "resume")))
        nem.heal_all()
        self.sim.run_for(300)
        return self.problems


def failure_recovery(voter_cls: type, seeds: Sequence[int] = range(200)) -> str:
    cases = _check_voter_rules(voter_cls)
    elections = 0
    for seed in seeds:
        h = ElectionHarness(voter_cls, seed)
        problems = h.run()
        if problems:
            raise_failed(f"{problems[0]} — replay with failure_recovery(RaftVoter, seeds=[{seed}])")
        elections += h.elections
        expect(h.leaders, f"seed {seed}: no leader was ever elected in {h.elections} elections "
                          f"(does your voter grant votes in new terms?)")
    return (f"{cases} rule and crash cases; {elections} elections in {len(seeds)} seeded runs with "
            f"crashes and restarts: nobody voted twice in a term, never two leaders in a term")
