"""Exceptions of the Raft core (invalid requests fail loudly)."""

from __future__ import annotations

from typing import Optional


class RaftError(RuntimeError):
    pass


class NotLeader(RaftError):
    """The request needs the leader; ``leader_hint`` is who this node thinks leads."""

    def __init__(self, node: str, leader_hint: Optional[str]) -> None:
        super().__init__(f"{node} is not the leader (leader hint: {leader_hint})")
        self.leader_hint = leader_hint


class ConfChangeInProgress(RaftError):
    """Only one membership change may be uncommitted at a time (thesis §4.1)."""


class SafetyViolation(AssertionError):
    """A Raft safety property (Figure 3) was broken."""
