"""PaxosCluster: single-decree Paxos on ``n`` nodes in the deterministic simulator.

The public model behind the lesson and the tests::

    c = PaxosCluster(5, seed=1)             # nodes n1..n5
    c.propose("n1", "red"); c.propose("n4", "blue")
    c.run_until(c.all_decided, 2000)
    assert c.agreement() and c.validity()

It watches the run as it goes: every value a node learns (:attr:`decisions`, across
crashes) and every value a quorum of acceptors accepted in one ballot (:attr:`chosen`,
Paxos's own definition of "chosen").  Times are simulated milliseconds; everything
random comes from ``seed``, so the same seed and the same calls give the same trace.
"""

from __future__ import annotations

from typing import Any, Iterable, Optional

from ..sim import SimulatedSystem, Simulation
from .host import PaxosHost
from .messages import ZERO, HardState
from .paxos import PaxosConfig, majority


class PaxosCluster(SimulatedSystem):
    """``n`` Paxos nodes ``n1..nn``, each proposer, acceptor and learner."""

    def __init__(self, n: int = 5, seed: int = 0, *, config: Optional[PaxosConfig] = None,
                 latency_ms: tuple = (1, 10), tick_ms: float = 5.0,
                 trace_level: str = "messages") -> None:
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise ValueError(f"n must be an int >= 1, got {n!r}")
        if not isinstance(seed, int) or isinstance(seed, bool):
            raise ValueError(f"seed must be an int, got {seed!r}")
        config = config or PaxosConfig()
        if not isinstance(config, PaxosConfig):
            raise ValueError(f"config must be a PaxosConfig, got {config!r}")
        self.seed = seed
        self.config = config
        self.sim = Simulation(seed, tick_ms=tick_ms, trace_level=trace_level)
        self.sim.network.delay_ms = latency_ms
        self.node_ids: tuple = tuple(f"n{i}" for i in range(1, n + 1))
        self.quorum = majority(n) if config.quorum is None else config.quorum
        self.proposed: dict = {}                  # node -> value it was asked to propose
        self.decisions: list = []                 # (time, node, value): every value learned
        self.acceptances: dict = {}               # ballot -> {acceptor: value}
        self.chosen: dict = {}                    # ballot -> value accepted by a quorum
        self._accepted: dict = {}                 # acceptor -> last accepted ballot seen
        self.hosts: dict = {}
        for nid in self.node_ids:
            host = PaxosHost(nid, self.node_ids, self, config)
            self.hosts[nid] = host
            self.sim.add(host)

    # -- clients ----------------------------------------------------------------------------
    def _check(self, nid: str) -> PaxosHost:
        host = self.hosts.get(nid) if isinstance(nid, str) else None
        if host is None:
            raise ValueError(f"unknown node {nid!r}; nodes: {list(self.node_ids)}")
        return host

    def propose(self, nid: str, value: Any) -> None:
        """Node ``nid`` proposes ``value`` (now; it must be up)."""
        host = self._check(nid)
        if value is None:
            raise ValueError("value must not be None")
        if not self.sim.is_alive(nid):
            raise ValueError(f"cannot propose at {nid!r}: it is down")
        if self.sim.is_paused(nid):
            raise ValueError(f"cannot propose at {nid!r}: it is paused")
        self.proposed[nid] = value
        self.sim.trace.record(self.now, "propose", nid, (value,))
        host.core.propose(value)
        host.poke()

    def propose_at(self, time_ms: float, nid: str, value: Any) -> None:
        """Schedule ``propose(nid, value)`` at virtual time ``time_ms`` (skipped if it is down)."""
        self._check(nid)
        if value is None:
            raise ValueError("value must not be None")

        def fire() -> None:
            if self.sim.is_alive(nid) and not self.sim.is_paused(nid):
                self.propose(nid, value)
        self.sim.scheduler.schedule_at(time_ms, fire)

    # -- faults (passed to the simulator, which validates) ----------------------------------
    def crash(self, nid: str) -> None:
        self._check(nid)
        self.sim.crash(nid)

    def restart(self, nid: str) -> None:
        self._check(nid)
        self.sim.restart(nid)

    def partition(self, *groups: Iterable[str]) -> None:
        self.sim.partition(*groups)

    def isolate(self, nid: str) -> None:
        self._check(nid)
        self.sim.isolate(nid)

    def heal(self) -> None:
        self.sim.heal()

    # -- what the run did -------------------------------------------------------------------
    def _on_persist(self, host: PaxosHost, hs: HardState) -> None:
        nid = host.node_id
        if hs.accepted_ballot != ZERO and hs.accepted_ballot != self._accepted.get(nid):
            self._accepted[nid] = hs.accepted_ballot
            votes = self.acceptances.setdefault(hs.accepted_ballot, {})
            votes[nid] = hs.accepted_value
            if len(votes) >= self.quorum and hs.accepted_ballot not in self.chosen:
                self.chosen[hs.accepted_ballot] = hs.accepted_value
                self.sim.trace.record(self.now, "chosen", None, (str(hs.accepted_ballot), hs.accepted_value))

    def _on_decided(self, host: PaxosHost, value: Any) -> None:
        self.decisions.append((self.now, host.node_id, value))
        self.sim.trace.record(self.now, "decide", host.node_id, (value,))

    def decided(self) -> dict:
        """Each node's learned value (None if it has learned nothing)."""
        return {nid: h.core.decided for nid, h in self.hosts.items()}

    def decided_values(self) -> set:
        """Every value any node ever learned (the run's decisions, across crashes)."""
        return {v for _t, _n, v in self.decisions}

    def all_decided(self) -> bool:
        """Every node (up or down: its storage counts) has learned a value."""
        return all(h.core.decided is not None for h in self.hosts.values())

    def agreement(self) -> bool:
        """No two nodes learned different values, and no two ballots chose different values."""
        return len(self.decided_values()) <= 1 and len(set(self.chosen.values())) <= 1

    def validity(self) -> bool:
        """Every value learned or chosen was proposed by some node."""
        proposed = set(self.proposed.values())
        return self.decided_values() <= proposed and set(self.chosen.values()) <= proposed

    def states(self) -> dict:
        out = {}
        for nid, h in self.hosts.items():
            c = h.core
            out[nid] = {"alive": h.alive, "phase": c.phase.value, "ballot": str(c.ballot),
                        "promised": str(c.promised), "accepted": (str(c.accepted_ballot), c.accepted_value),
                        "decided": c.decided}
        return out

    def __repr__(self) -> str:
        return f"<PaxosCluster {len(self.hosts)} nodes t={self.now}ms decided={self.decided()}>"
