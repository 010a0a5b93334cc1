"""The chapter's "more than half" consensus and Paxos as models for the model checker.

::

    from course_lib.check.explore import explore, replay
    from course_lib.consensus.explore import ChapterModel, PaxosModel

    r = explore(lambda: ChapterModel(values=("a", "b")), depth=4)
    r.violated, r.length, r.steps_in_words()      # True, 4: two nodes decide a and b
    explore(lambda: PaxosModel(values=("a", "b")), depth=12)   # no violation

A step is one of the simulator's choices (deliver / drop / duplicate a message, crash /
restart a node: :class:`~course_lib.sim.explore.SimModel`) or the protocol's own: a node
*proposes* a value (each value once, by any live node that has not proposed yet), and
for Paxos a proposer's *retry timer* fires (a new, higher ballot — bounded by
``max_round``).  Paxos's inquiry timer (a learner asking whether anything was chosen)
helps liveness only and is left out.

The invariant is agreement (and, for Paxos, validity) over the whole run: the ghost
part of the fingerprint holds every value ever decided, so a node that decided and then
crashed still counts.
"""

from __future__ import annotations

from typing import Any, Optional

from ..chapter.consensus import Proposal, ProposalResponse
from ..check.explore import Step
from ..sim.explore import SimModel
from .chapter_sim import ChapterCluster
from .cluster import PaxosCluster
from .messages import Accept, Accepted, Decided, Inquire, Nack, Prepare, Promise
from .paxos import PaxosConfig


def _check_values(values) -> tuple:
    values = tuple(values)
    if not values or len(set(values)) != len(values) or any(v is None for v in values):
        raise ValueError(f"values must be distinct and not None, got {values!r}")
    return values


class ChapterModel(SimModel):
    """``n`` nodes running the chapter's ``ConsensusProtocol`` on one key, ``values``
    proposed (each once, by any node).  Violation: two different values decided, or
    two proposers told "consensus" for different values."""

    def __init__(self, n: int = 3, values=("a", "b"), *, key: str = "x", seed: int = 0) -> None:
        self.values = _check_values(values)
        self.key = key
        c = ChapterCluster(n, seed)
        super().__init__(c, c.node_ids)
        self.proposed: dict = {}                 # value -> node

    def protocol_steps(self) -> list:
        alive = self.sim._alive
        proposers = set(self.proposed.values())
        return [Step("propose", n, value=v) for v in self.values if v not in self.proposed
                for n in self.node_ids if alive[n] and n not in proposers]

    def apply_protocol(self, step: Step) -> None:
        if step.kind != "propose":
            raise ValueError(f"unknown step kind {step.kind!r}")
        self.proposed[step.value] = step.node
        self.system.propose(step.node, self.key, step.value)

    def label(self, msg) -> str:
        if type(msg) is Proposal:
            return f"Proposal({msg.value!r})"
        if type(msg) is ProposalResponse:
            return f"ProposalResponse({msg.value!r}, {'accepted' if msg.accepted else 'refused'})"
        return type(msg).__name__

    def node_key(self, nid: str) -> Any:
        core = self.system.hosts[nid].core
        return (tuple(sorted((k, tuple(sorted(v))) for k, v in core.values.items())),
                tuple(sorted(core.decided.items())),
                tuple(sorted((pid, tuple(sorted(a.items()))) for pid, a in core._pending.items())),
                tuple(sorted(core._proposals.items())), tuple(sorted(core.outcomes.items())),
                core._next_pid)

    def ghost_key(self) -> Any:
        c = self.system
        return (tuple(sorted(self.proposed.items())),
                frozenset((n, v) for _t, n, _k, v in c.decisions),
                frozenset((n, v, ok) for _t, n, _k, v, ok in c.outcomes))

    def violations(self) -> list:
        c = self.system
        out = []
        decided = {}
        for _t, n, k, v in c.decisions:
            if k == self.key:
                decided.setdefault(v, n)
        if len(decided) > 1:
            out.append("agreement: " + ", ".join(f"{n} decided {v!r}" for v, n in decided.items()))
        claims = c.consensus_claims(self.key)
        if len(set(claims.values())) > 1:
            out.append("agreement: " + ", ".join(f"{n} was told {v!r} is agreed" for n, v in claims.items()))
        return out


class PaxosModel(SimModel):
    """``n`` nodes of single-decree Paxos (``PaxosCluster``), ``values`` proposed (each
    once, by a node that has not proposed).  A proposer's retry timer fires as a step
    while its round is below ``max_round``.  Violation: agreement or validity fails
    (``PaxosCluster.agreement`` / ``.validity``: every value learned, and every value
    a quorum accepted in one ballot)."""

    def __init__(self, n: int = 3, values=("a", "b"), *, max_round: int = 2,
                 config: Optional[PaxosConfig] = None, seed: int = 0) -> None:
        self.values = _check_values(values)
        if not isinstance(max_round, int) or max_round < 1:
            raise ValueError(f"max_round must be an int >= 1, got {max_round!r}")
        self.max_round = max_round
        c = PaxosCluster(n, seed, config=config)
        super().__init__(c, c.node_ids)

    def protocol_steps(self) -> list:
        alive = self.sim._alive
        hosts = self.system.hosts
        proposed = self.system.proposed
        out = []
        for v in self.values:
            if v in proposed.values():
                continue
            out += [Step("propose", n, value=v) for n in self.node_ids
                    if alive[n] and n not in proposed and hosts[n].core.proposal is None]
        for n in self.node_ids:
            core = hosts[n].core
            if (alive[n] and core.proposal is not None and core.decided is None
                    and max(core.round, core.highest_seen.round) < self.max_round):
                out.append(Step("timer", n, label="retry timer fires: a higher ballot"))
        return out

    def apply_protocol(self, step: Step) -> None:
        if step.kind == "propose":
            self.system.propose(step.node, step.value)
        elif step.kind == "timer":
            host = self.system.hosts[step.node]
            self.sim.trace.record(self.sim.now, "expire_timer", step.node, ())
            host.core.start_prepare()
            host.poke()
        else:
            raise ValueError(f"unknown step kind {step.kind!r}")

    def live(self, src: str, dst: str, msg) -> bool:
        core = self.system.hosts[dst].core
        kind = type(msg)
        # a learner that decided ignores these forever; a stale proposer ignores promises
        if kind is Accepted or kind is Decided:
            return core.decided is None
        if kind is Promise:
            return core.decided is None and msg.ballot == core.ballot
        return True

    def label(self, msg) -> str:
        kind = type(msg)
        if kind is Prepare:
            return f"Prepare({msg.ballot})"
        if kind is Promise:
            acc = f", accepted {msg.accepted_value!r}@{msg.accepted_ballot}" if msg.accepted_value is not None else ""
            return f"Promise({msg.ballot}{acc})"
        if kind is Accept:
            return f"Accept({msg.ballot}, {msg.value!r})"
        if kind is Accepted:
            return f"Accepted({msg.ballot}, {msg.value!r})"
        if kind is Nack:
            return f"Nack({msg.ballot} < {msg.promised})"
        if kind is Decided:
            return f"Decided({msg.value!r})"
        if kind is Inquire:
            return "Inquire"
        return kind.__name__

    def node_key(self, nid: str) -> Any:
        c = self.system.hosts[nid].core
        return (c.promised, c.accepted_ballot, c.accepted_value, c.round, c.proposal, c.phase.value,
                c.ballot, c.value, frozenset((s, p.accepted_ballot, p.accepted_value) for s, p in c.promises.items()),
                c.highest_seen, c.decided,
                frozenset((b, frozenset(v.items())) for b, v in c.accepts.items()))

    def ghost_key(self) -> Any:
        c = self.system
        return (tuple(sorted(c.proposed.items())), frozenset((n, v) for _t, n, v in c.decisions),
                frozenset(c.chosen.items()),
                frozenset((b, frozenset(v.items())) for b, v in c.acceptances.items()))

    def violations(self) -> list:
        c = self.system
        out = []
        if not c.agreement():
            out.append(f"agreement: values learned {sorted(map(repr, c.decided_values()))}, "
                       f"chosen {sorted(map(repr, set(c.chosen.values())))}")
        if not c.validity():
            out.append("validity: a value nobody proposed was learned or chosen")
        return out
