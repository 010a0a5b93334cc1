"""The chapter's ``ConsensusProtocol`` (``course_lib.chapter.consensus``) in the simulator.

:class:`ChapterCluster` hosts one unmodified-in-spirit chapter core per node, turns its
outbox into simulated messages, and records what the chapter's code concludes: each
node's ``decided`` value and each ``propose`` call's boolean ("consensus reached").
:func:`run_chapter` is one seeded scenario — a few nodes propose different values for
one key at random moments over a network with random delays, no faults at all — and
:func:`find_disagreement` searches seeds for a run in which two nodes decide different
values (or two proposers are both told "consensus" for different values), so the
lesson can replay it from its seed.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Iterable, Optional

from ..chapter.consensus import ConsensusProtocol, Proposal, ProposalResponse
from ..sim import Process, SimulatedSystem, Simulation


class ChapterHost(Process):
    """One node running the chapter's core.  It persists nothing (neither does the
    chapter): a crash loses every value seen and every decision."""

    ticking = False

    def __init__(self, node_id: str, nodes: tuple, cluster) -> None:
        super().__init__(node_id)
        self.nodes = list(nodes)
        self.cluster = cluster
        self.core = ConsensusProtocol(node_id, list(nodes))

    def on_crash(self) -> None:
        self.core = ConsensusProtocol(self.node_id, list(self.nodes))

    def on_message(self, src: str, msg) -> None:
        core = self.core
        if type(msg) is Proposal:
            before = msg.key in core.decided
            core.handle_proposal(src, msg)
            if not before and msg.key in core.decided:
                self.cluster._on_decided(self, msg.key, core.decided[msg.key])
        elif type(msg) is ProposalResponse:
            result = core.handle_response(src, msg)
            if result is not None:
                self.cluster._on_outcome(self, msg.pid, result)
        self.flush()

    def flush(self) -> None:
        send = self.sim.network.send
        for dst, m in self.core.take_outbox():
            send(self.node_id, dst, m)


class ChapterCluster(SimulatedSystem):
    """``n`` nodes ``n1..nn`` running the chapter's protocol over one simulated network."""

    def __init__(self, n: int = 3, seed: int = 0, *, latency_ms=(1, 20),
                 trace_level: str = "messages") -> None:
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise ValueError(f"n must be an int >= 1, got {n!r}")
        if not isinstance(seed, int) or isinstance(seed, bool):
            raise ValueError(f"seed must be an int, got {seed!r}")
        self.seed = seed
        self.sim = Simulation(seed, trace_level=trace_level)
        self.sim.network.delay_ms = latency_ms
        self.node_ids = tuple(f"n{i}" for i in range(1, n + 1))
        self.hosts = {nid: ChapterHost(nid, self.node_ids, self) for nid in self.node_ids}
        for h in self.hosts.values():
            self.sim.add(h)
        self.proposals: list = []        # (time, node, pid, key, value)
        self.decisions: list = []        # (time, node, key, value) as receive_proposal decides
        self.outcomes: list = []         # (time, node, key, value, result) as propose returns

    def _check(self, nid: str) -> ChapterHost:
        host = self.hosts.get(nid) if isinstance(nid, str) else None
        if host is None:
            raise ValueError(f"unknown node {nid!r}; nodes: {list(self.node_ids)}")
        return host

    def propose(self, nid: str, key: str, value: str) -> int:
        """Call the chapter's ``propose(key, value)`` on ``nid`` now; returns its id."""
        host = self._check(nid)
        if not isinstance(key, str) or not isinstance(value, str):
            raise ValueError(f"key and value must be str, got {key!r}, {value!r}")
        if not self.sim.is_alive(nid):
            raise ValueError(f"cannot propose at {nid!r}: it is down")
        pid = host.core.propose(key, value)
        self.proposals.append((self.now, nid, pid, key, value))
        self.sim.trace.record(self.now, "propose", nid, (key, value))
        if pid in host.core.outcomes:
            self._on_outcome(host, pid, host.core.outcomes[pid])
        host.flush()
        return pid

    def propose_at(self, time_ms: float, nid: str, key: str, value: str) -> None:
        self._check(nid)
        self.sim.scheduler.schedule_at(time_ms, self.propose, nid, key, value)

    def _on_decided(self, host: ChapterHost, key: str, value: str) -> None:
        self.decisions.append((self.now, host.node_id, key, value))
        self.sim.trace.record(self.now, "decide", host.node_id, (key, value))

    def _on_outcome(self, host: ChapterHost, pid: int, result: bool) -> None:
        key, value = host.core.proposal(pid)
        self.outcomes.append((self.now, host.node_id, key, value, result))
        self.sim.trace.record(self.now, "outcome", host.node_id, (key, value, result))

    def decided(self, key: str) -> dict:
        """Each node's ``decided[key]`` now (None where it decided nothing)."""
        return {nid: h.core.decided.get(key) for nid, h in self.hosts.items()}

    def consensus_claims(self, key: str) -> dict:
        """Proposer -> value, for every ``propose`` that returned True for ``key``."""
        return {nid: v for _t, nid, k, v, ok in self.outcomes if ok and k == key}


@dataclass
class ChapterRun:
    """One seeded run of the chapter's protocol."""
    seed: int
    n: int
    key: str
    proposals: list = field(default_factory=list)     # (time, node, value)
    decided: dict = field(default_factory=dict)        # node -> value or None
    claims: dict = field(default_factory=dict)         # proposer -> value it was told is agreed
    digest: str = ""
    cluster: Optional[ChapterCluster] = None

    @property
    def decided_values(self) -> set:
        return {v for v in self.decided.values() if v is not None}

    @property
    def disagreement(self) -> bool:
        """Two nodes decided different values, or two proposers both "won" different values."""
        return len(self.decided_values) > 1 or len(set(self.claims.values())) > 1

    def summary(self) -> str:
        return (f"seed {self.seed}: n={self.n}; proposals {[(round(t, 1), n, v) for t, n, v in self.proposals]}; "
                f"decided {self.decided}; 'consensus' claimed for {self.claims}")


def run_chapter(seed: int, *, n: int = 3, proposers: int = 2, key: str = "x",
                window_ms: float = 60.0, latency_ms=(1, 30), run_ms: float = 500.0) -> ChapterRun:
    """``proposers`` distinct nodes each propose their own value for ``key`` at a random
    moment in ``[0, window_ms]`` over a network with random delays; no faults.  Seeded."""
    if not isinstance(n, int) or isinstance(n, bool) or n < 2:
        raise ValueError(f"n must be an int >= 2, got {n!r}")
    if not isinstance(proposers, int) or isinstance(proposers, bool) or not 1 <= proposers <= n:
        raise ValueError(f"proposers must be an int in [1, n={n}], got {proposers!r}")
    if not isinstance(window_ms, (int, float)) or isinstance(window_ms, bool) or window_ms < 0:
        raise ValueError(f"window_ms must be a non-negative number, got {window_ms!r}")
    rng = random.Random(seed)
    c = ChapterCluster(n, seed, latency_ms=latency_ms)
    chosen = sorted(rng.sample(c.node_ids, proposers))
    plan = sorted((rng.uniform(0, window_ms), nid, f"{nid}-value") for nid in chosen)
    for t, nid, value in plan:
        c.propose_at(t, nid, key, value)
    c.run_for(run_ms)
    return ChapterRun(seed, n, key, [(t, nid, v) for t, nid, v in plan], c.decided(key),
                      c.consensus_claims(key), c.trace_digest(), c)


def find_disagreement(seeds: Iterable[int] = range(1000), **kwargs) -> Optional[ChapterRun]:
    """The first seed whose :func:`run_chapter` ends in disagreement, or None."""
    for s in seeds:
        run = run_chapter(s, **kwargs)
        if run.disagreement:
            return run
    return None
