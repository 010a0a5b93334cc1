"""Single-decree Paxos: ballots and the five messages, as frozen dataclasses.

Names follow Lamport, "Paxos Made Simple" (2001): phase 1 is *prepare* / *promise*
(1a / 1b), phase 2 is *accept* / *accepted* (2a / 2b).  :class:`Nack` tells a proposer
that its ballot is stale so it can abandon it (the paper's optimisation of §2.2, which
does not affect correctness), and :class:`Decided` / :class:`Inquire` let a learner
that missed the ``Accepted`` messages catch up from one that learned (§2.3).

Every message carries ``src`` and ``dst``, as on a real network: a reply may be lost,
duplicated or arrive late, and the core must cope.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any, Optional


@dataclass(frozen=True, slots=True, order=True)
class Ballot:
    """A proposal number: ``(round, node)``, totally ordered and unique per proposer.

    Two proposers never use the same ballot (the node id breaks ties), which is what
    "Paxos Made Simple" requires of proposal numbers ("different proposers choose their
    numbers from disjoint sets").
    """
    round: int
    node: str

    def __str__(self) -> str:
        return f"{self.round}.{self.node}" if self.node else "0"


ZERO = Ballot(0, "")     # lower than every real ballot (rounds start at 1)


class Phase(Enum):
    """Where this node's proposer is."""
    IDLE = "idle"              # nothing to propose, or waiting out a backoff
    PREPARING = "preparing"    # phase 1: Prepare sent, collecting promises
    ACCEPTING = "accepting"    # phase 2: Accept sent, waiting for a majority
    LEARNED = "learned"        # the value is chosen and known here: stop


@dataclass(frozen=True, slots=True)
class Prepare:
    """Phase 1a: "promise me not to accept any ballot below ``ballot``"."""
    src: str
    dst: str
    ballot: Ballot


@dataclass(frozen=True, slots=True)
class Promise:
    """Phase 1b: the promise, with the highest-ballot proposal the acceptor accepted."""
    src: str
    dst: str
    ballot: Ballot
    accepted_ballot: Ballot = ZERO
    accepted_value: Any = None


@dataclass(frozen=True, slots=True)
class Accept:
    """Phase 2a: "accept ``value`` in ``ballot``"."""
    src: str
    dst: str
    ballot: Ballot
    value: Any


@dataclass(frozen=True, slots=True)
class Accepted:
    """Phase 2b: the acceptor accepted ``value`` in ``ballot`` (sent to every learner)."""
    src: str
    dst: str
    ballot: Ballot
    value: Any


@dataclass(frozen=True, slots=True)
class Nack:
    """The acceptor refused ``ballot`` because it promised ``promised`` (higher)."""
    src: str
    dst: str
    ballot: Ballot
    promised: Ballot


@dataclass(frozen=True, slots=True)
class Decided:
    """The sender has learned that ``value`` is chosen."""
    src: str
    dst: str
    value: Any


@dataclass(frozen=True, slots=True)
class Inquire:
    """A learner that has not learned asks whether anything is chosen."""
    src: str
    dst: str


@dataclass(frozen=True, slots=True)
class HardState:
    """What a node persists before it sends: the acceptor's promise and acceptance,
    the proposer's last round and value, and what it learned."""
    promised: Ballot = ZERO
    accepted_ballot: Ballot = ZERO
    accepted_value: Any = None
    round: int = 0
    proposal: Optional[Any] = None
    decided: Optional[Any] = None
