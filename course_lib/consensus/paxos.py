"""Single-decree Paxos as a sans-I/O core: proposer, acceptor and learner in one node.

:class:`PaxosNode` never reads a clock, never draws from the global ``random`` and never
sends: inputs are :meth:`tick`, :meth:`step` and :meth:`propose`; the output is a
:class:`Ready` — **persist** its ``hard_state``, then **send** its ``messages``, then
report ``decided``.  The rules, from Lamport's "Paxos Made Simple" (2001):

* P1a — an acceptor accepts a proposal numbered *n* iff it has not responded to a
  prepare request numbered greater than *n* (:meth:`handle_prepare`,
  :meth:`handle_accept`);
* phase 1b — it promises only ballots higher than any it promised, and reports the
  highest-numbered proposal it accepted;
* P2c — a proposer that gathered promises from a majority proposes the value of the
  highest-numbered accepted proposal among them, or its own value if there is none
  (:meth:`handle_promise`);
* a value is *chosen* when a majority accepted it in one ballot; a learner learns it by
  counting ``Accepted`` per ballot (:meth:`handle_accepted`).

Progress (§2.4: "a distinguished proposer" is needed for liveness) is obtained here by
randomized backoff: a proposer that is refused or hears nothing retries with a higher
ballot after a random wait that grows with each failed attempt, so duelling proposers
drift apart.  Any two majorities intersect, so ``quorum`` must be a majority; a smaller
one is accepted only with ``unsafe_quorum=True``, for the lesson that shows why.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, Optional

from .messages import (
    ZERO, Accept, Accepted, Ballot, Decided, HardState, Inquire, Nack, Phase, Prepare,
    Promise,
)


@dataclass(frozen=True)
class PaxosConfig:
    """Timers in ticks of the driver's clock.

    ``retry_ticks``: a proposer that has not succeeded waits a random number of ticks in
    this range, times ``2 ** min(attempt, max_backoff_exp)``, before trying a higher
    ballot.  ``inquire_ticks``: how often a node that has learned nothing asks.
    ``unsafe_ignore_accepted`` drops rule P2c (a proposer always proposes its own value);
    ``quorum`` overrides the majority.  Both exist only to show what breaks.
    """
    retry_ticks: tuple = (8, 16)
    max_backoff_exp: int = 3
    inquire_ticks: int = 20
    quorum: Optional[int] = None
    unsafe_quorum: bool = False
    unsafe_ignore_accepted: bool = False

    def __post_init__(self) -> None:
        lo_hi = self.retry_ticks
        if (not isinstance(lo_hi, tuple) or len(lo_hi) != 2
                or not all(isinstance(x, int) and not isinstance(x, bool) for x in lo_hi)
                or not 1 <= lo_hi[0] <= lo_hi[1]):
            raise ValueError(f"retry_ticks must be (lo, hi) ints with 1 <= lo <= hi, got {lo_hi!r}")
        if not isinstance(self.max_backoff_exp, int) or not 0 <= self.max_backoff_exp <= 16:
            raise ValueError(f"max_backoff_exp must be an int in [0, 16], got {self.max_backoff_exp!r}")
        if not isinstance(self.inquire_ticks, int) or isinstance(self.inquire_ticks, bool) or self.inquire_ticks < 1:
            raise ValueError(f"inquire_ticks must be an int >= 1, got {self.inquire_ticks!r}")
        if self.quorum is not None and (not isinstance(self.quorum, int) or isinstance(self.quorum, bool)
                                        or self.quorum < 1):
            raise ValueError(f"quorum must be None or an int >= 1, got {self.quorum!r}")


class Ready:
    """One batch of work for the driver: persist, then send, then report."""
    __slots__ = ("hard_state", "messages", "decided")

    def __init__(self, hard_state: Optional[HardState], messages: tuple, decided: Any) -> None:
        self.hard_state = hard_state      # persist if not None, before sending
        self.messages = messages          # send, only after persisting
        self.decided = decided            # the value learned in this batch, or None

    def __repr__(self) -> str:
        return f"Ready(hard_state={self.hard_state}, messages={len(self.messages)}, decided={self.decided!r})"


def majority(n: int) -> int:
    """The smallest quorum any two of which intersect: ``n // 2 + 1``."""
    return n // 2 + 1


class PaxosNode:
    """One node of single-decree Paxos (proposer + acceptor + learner), driven from outside."""

    def __init__(self, node_id: str, nodes, *, rng: random.Random,
                 config: Optional[PaxosConfig] = None, hard_state: Optional[HardState] = None) -> None:
        if not isinstance(node_id, str) or not node_id:
            raise ValueError(f"node_id must be a non-empty str, got {node_id!r}")
        given = nodes
        nodes = () if isinstance(nodes, str) else tuple(nodes)
        if not nodes or not all(isinstance(n, str) and n for n in nodes) or len(set(nodes)) != len(nodes):
            raise ValueError(f"nodes must be distinct non-empty str ids, got {given!r}")
        if node_id not in nodes:
            raise ValueError(f"node_id {node_id!r} is not in nodes {nodes!r}")
        if not isinstance(rng, random.Random):
            raise ValueError(f"rng must be a random.Random, got {rng!r}")
        config = config or PaxosConfig()
        if not isinstance(config, PaxosConfig):
            raise ValueError(f"config must be a PaxosConfig, got {config!r}")
        quorum = majority(len(nodes)) if config.quorum is None else config.quorum
        if quorum > len(nodes):
            raise ValueError(f"quorum {quorum} is larger than the {len(nodes)} nodes")
        if quorum < majority(len(nodes)) and not config.unsafe_quorum:
            raise ValueError(f"quorum {quorum} of {len(nodes)} is not a majority: two quorums "
                             f"could be disjoint (pass unsafe_quorum=True to see it fail)")
        self.node_id = node_id
        self.nodes = tuple(sorted(nodes))
        self.rng = rng
        self.config = config
        self.quorum = quorum
        hs = hard_state or HardState()
        # acceptor (persistent)
        self.promised: Ballot = hs.promised
        self.accepted_ballot: Ballot = hs.accepted_ballot
        self.accepted_value: Any = hs.accepted_value
        # proposer (round and value persistent, the rest volatile)
        self.round: int = hs.round
        self.proposal: Any = hs.proposal
        self.phase: Phase = Phase.LEARNED if hs.decided is not None else Phase.IDLE
        self.ballot: Ballot = ZERO
        self.value: Any = None                   # the value of the current ballot (phase 2)
        self.promises: dict = {}                 # node -> Promise, for self.ballot
        self.highest_seen: Ballot = hs.promised  # the highest ballot heard of
        self.attempt = 0
        self.timer = 0                           # ticks left before the next try
        # learner
        self.decided: Any = hs.decided
        self.accepts: dict = {}                  # ballot -> {acceptor: value}
        self.inquire_timer = self.rng.randint(1, config.inquire_ticks)
        # output
        self._msgs: list = []
        self._dirty = False
        self._learned: Any = None
        if self.proposal is not None and self.decided is None:
            self._backoff()                      # a restarted proposer tries again

    # -- inputs ----------------------------------------------------------------------------
    def propose(self, value: Any) -> None:
        """Ask for ``value`` to be chosen (once; a node proposes one value)."""
        if value is None:
            raise ValueError("value must not be None")
        if self.proposal is not None and self.proposal != value:
            raise ValueError(f"{self.node_id} already proposes {self.proposal!r}, not {value!r}")
        if self.proposal is not None:
            return
        self.proposal = value
        self._dirty = True
        if self.decided is None and self.phase is Phase.IDLE:
            self.start_prepare()

    def tick(self) -> None:
        if self.decided is None:
            self.inquire_timer -= 1
            if self.inquire_timer <= 0:
                self.inquire_timer = self.config.inquire_ticks
                self.broadcast_inquire()
        if self.proposal is None or self.decided is not None:
            return
        self.timer -= 1
        if self.timer <= 0:
            self.start_prepare()              # no majority in time: a higher ballot

    def step(self, msg) -> None:
        kind = type(msg)
        if kind is Prepare:
            self.handle_prepare(msg)
        elif kind is Promise:
            self.handle_promise(msg)
        elif kind is Accept:
            self.handle_accept(msg)
        elif kind is Accepted:
            self.handle_accepted(msg)
        elif kind is Nack:
            self.handle_nack(msg)
        elif kind is Decided:
            self.handle_decided(msg)
        elif kind is Inquire:
            self.handle_inquire(msg)
        else:
            raise ValueError(f"not a Paxos message: {msg!r}")

    # -- output ----------------------------------------------------------------------------
    def has_ready(self) -> bool:
        return bool(self._msgs) or self._dirty or self._learned is not None

    def ready(self) -> Ready:
        hs = self.hard_state() if self._dirty else None
        rd = Ready(hs, tuple(self._msgs), self._learned)
        self._msgs = []
        self._dirty = False
        self._learned = None
        return rd

    def hard_state(self) -> HardState:
        return HardState(self.promised, self.accepted_ballot, self.accepted_value,
                         self.round, self.proposal, self.decided)

    def _send(self, msg) -> None:
        self._msgs.append(msg)

    def _broadcast(self, make) -> None:
        for n in self.nodes:
            self._send(make(n))

    # -- proposer ----------------------------------------------------------------------------
    def start_prepare(self) -> None:
        """Phase 1a: a ballot higher than any this node has seen, sent to every acceptor."""
        self.attempt += 1
        self.round = max(self.round, self.highest_seen.round) + 1
        self._dirty = True                     # persist the round: a ballot is never reused
        self.ballot = Ballot(self.round, self.node_id)
        self.value = None
        self.promises = {}
        self.phase = Phase.PREPARING
        self._backoff()
        ballot, me = self.ballot, self.node_id
        self._broadcast(lambda n: Prepare(me, n, ballot))

    def _backoff(self) -> None:
        lo, hi = self.config.retry_ticks
        factor = 2 ** min(self.attempt, self.config.max_backoff_exp)
        self.timer = self.rng.randint(lo, hi * factor)

    def handle_promise(self, m: Promise) -> None:
        if self.phase is not Phase.PREPARING or m.ballot != self.ballot or m.src in self.promises:
            return                               # stale or duplicated
        self.promises[m.src] = m
        if len(self.promises) < self.quorum:
            return
        # P2c: the value of the highest-numbered proposal accepted by the quorum, if any
        best = max(self.promises.values(), key=lambda p: p.accepted_ballot)
        if best.accepted_ballot != ZERO and not self.config.unsafe_ignore_accepted:
            self.value = best.accepted_value
        else:
            self.value = self.proposal
        self.phase = Phase.ACCEPTING
        ballot, value, me = self.ballot, self.value, self.node_id
        self._broadcast(lambda n: Accept(me, n, ballot, value))

    def handle_nack(self, m: Nack) -> None:
        if m.promised > self.highest_seen:
            self.highest_seen = m.promised
        if m.ballot == self.ballot and self.phase in (Phase.PREPARING, Phase.ACCEPTING):
            self.phase = Phase.IDLE              # this ballot cannot win: back off, then retry
            self._backoff()

    # -- acceptor ----------------------------------------------------------------------------
    def handle_prepare(self, m: Prepare) -> None:
        if self.decided is not None and m.src != self.node_id:
            self._send(Decided(self.node_id, m.src, self.decided))
        if m.ballot > self.highest_seen:
            self.highest_seen = m.ballot
        if m.ballot > self.promised:
            self.promised = m.ballot             # phase 1b: persisted before the Promise leaves
            self._dirty = True
        elif m.ballot < self.promised:
            self._send(Nack(self.node_id, m.src, m.ballot, self.promised))
            return
        # (an equal ballot is a duplicate of the Prepare we promised: the same promise again)
        self._send(Promise(self.node_id, m.src, m.ballot, self.accepted_ballot, self.accepted_value))

    def handle_accept(self, m: Accept) -> None:
        if self.decided is not None and m.src != self.node_id:
            self._send(Decided(self.node_id, m.src, self.decided))
        if m.ballot > self.highest_seen:
            self.highest_seen = m.ballot
        if m.ballot < self.promised:             # P1a: promised a higher ballot
            self._send(Nack(self.node_id, m.src, m.ballot, self.promised))
            return
        self.promised = m.ballot
        self.accepted_ballot = m.ballot
        self.accepted_value = m.value
        self._dirty = True                       # persisted before Accepted leaves
        ballot, value, me = m.ballot, m.value, self.node_id
        self._broadcast(lambda n: Accepted(me, n, ballot, value))

    # -- learner -----------------------------------------------------------------------------
    def handle_accepted(self, m: Accepted) -> None:
        if self.decided is not None:
            return
        votes = self.accepts.setdefault(m.ballot, {})
        votes[m.src] = m.value
        if len(votes) >= self.quorum:
            self.learn(m.value)                  # chosen: a quorum accepted it in one ballot

    def handle_decided(self, m: Decided) -> None:
        if self.decided is None:
            self.learn(m.value)

    def handle_inquire(self, m: Inquire) -> None:
        if self.decided is not None:
            self._send(Decided(self.node_id, m.src, self.decided))

    def broadcast_inquire(self) -> None:
        me = self.node_id
        for n in self.nodes:
            if n != me:
                self._send(Inquire(me, n))

    def learn(self, value: Any) -> None:
        if self.decided is not None:
            return                               # learned once; a value is chosen once
        self.decided = value
        self._learned = value
        self._dirty = True
        self.phase = Phase.LEARNED
        self.accepts = {}

    def __repr__(self) -> str:
        return (f"<PaxosNode {self.node_id} {self.phase.value} ballot={self.ballot} "
                f"promised={self.promised} accepted=({self.accepted_ballot}, {self.accepted_value!r}) "
                f"decided={self.decided!r}>")
