"""Raft used as consensus on one value: the first entry for a key wins.

A replicated log is a sequence of consensus decisions.  To agree on one value for a
key, every proposer appends ``value;`` to the key, and the decided value is the first
token in the committed log — the same on every server by Raft's State Machine Safety
(§5.4.3).  :func:`raft_decide` runs this on ``course_lib.raft.SimCluster`` with a
partition in the middle, then heals and reads every server's state machine.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from ..raft import SimCluster


@dataclass
class RaftDecision:
    seed: int
    proposed: dict = field(default_factory=dict)      # client -> value
    decided: dict = field(default_factory=dict)       # server -> first value in its log for the key
    violations: list = field(default_factory=list)    # Raft's safety monitor

    @property
    def decided_values(self) -> set:
        return {v for v in self.decided.values() if v is not None}


def raft_decide(seed: int, values, *, n: int = 5, key: str = "x") -> RaftDecision:
    """Each value is appended by its own client, while a random minority is cut off."""
    values = list(values)
    if not values or not all(isinstance(v, str) and v and ";" not in v for v in values):
        raise ValueError(f"values must be non-empty str without ';', got {values!r}")
    rng = random.Random(seed)
    c = SimCluster(n, seed=seed, trace_level="summary")
    c.run_until(lambda: c.leader() is not None, 2000)
    servers = sorted(c.hosts)
    minority = rng.sample(servers, (n - 1) // 2)
    c.partition(set(minority), set(servers) - set(minority))
    result = RaftDecision(seed)
    ops = []
    for i, v in enumerate(values):
        k = c.client(f"proposer{i + 1}")
        result.proposed[k.node_id] = v
        ops.append(k.submit(("append", key, f"{v};")))
    c.run_for(rng.uniform(50, 300))
    c.heal()
    c.run_until(lambda: all(op.done for op in ops), 5000)
    c.run_for(300)                                   # followers learn the last commit index
    for nid, h in c.hosts.items():
        tokens = [t for t in h.kv.read(key).split(";") if t]
        result.decided[nid] = tokens[0] if tokens else None
    result.violations = c.safety_violations()
    return result
