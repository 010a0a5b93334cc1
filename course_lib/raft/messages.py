"""Raft's log entries and RPCs, as frozen dataclasses.

Every message carries ``term``, ``src`` and ``dst`` (Raft §5.1: "if one server's
current term is smaller than the other's, it updates its term").  Requests and their
responses are separate messages, as on a real network: a response may be lost,
duplicated or arrive late, and the core must cope.

Membership is kept as a sorted tuple of ids, never a set, so reprs (and the trace
digest) do not depend on hash seeds.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any, Optional


class NodeState(Enum):
    FOLLOWER = "follower"
    PRE_CANDIDATE = "pre-candidate"     # PreVote, Ongaro thesis §9.6
    CANDIDATE = "candidate"
    LEADER = "leader"


class EntryKind(Enum):
    NORMAL = "normal"
    NOOP = "noop"          # appended by a new leader (§8, thesis §6.4)
    CONFIG = "config"      # a single-server membership change (thesis §4.1)


@dataclass(frozen=True, slots=True)
class ConfChange:
    """Add or remove one server (thesis §4.2.1).

    In the log, the entry carries the whole resulting configuration (``voters``): a
    new server that never saw the initial configuration learns it from this entry.
    """
    op: str                # "add" | "remove"
    node: str
    voters: tuple = ()     # the configuration after the change (set by the leader)

    def __post_init__(self) -> None:
        if self.op not in ("add", "remove"):
            raise ValueError(f"ConfChange op must be 'add' or 'remove', got {self.op!r}")


@dataclass(frozen=True, slots=True)
class Entry:
    term: int
    index: int
    command: Any = None
    kind: EntryKind = EntryKind.NORMAL


@dataclass(frozen=True, slots=True)
class Snapshot:
    """State-machine state up to and including ``index`` (§7)."""
    index: int
    term: int
    voters: tuple          # the configuration as of ``index``
    data: Any = None


@dataclass(frozen=True, slots=True)
class HardState:
    """What must be on stable storage before a message is sent (Figure 2)."""
    term: int
    voted_for: Optional[str]


@dataclass(frozen=True, slots=True)
class RequestVote:
    term: int
    src: str
    dst: str
    last_log_index: int
    last_log_term: int
    pre_vote: bool = False
    transfer: bool = False           # sent after TimeoutNow: voters ignore their lease


@dataclass(frozen=True, slots=True)
class RequestVoteResponse:
    term: int
    src: str
    dst: str
    granted: bool
    pre_vote: bool = False


@dataclass(frozen=True, slots=True)
class AppendEntries:
    term: int
    src: str
    dst: str
    prev_log_index: int
    prev_log_term: int
    entries: tuple
    leader_commit: int
    read_ctx: int = 0                # ReadIndex round this message confirms (thesis §6.4)


@dataclass(frozen=True, slots=True)
class AppendEntriesResponse:
    term: int
    src: str
    dst: str
    success: bool
    match_index: int = 0             # on success: last index known to match the leader
    reject_index: int = 0            # on failure: the prev_log_index that failed
    conflict_index: int = 0          # fast backtracking hint (§5.3, "optimization")
    conflict_term: Optional[int] = None
    read_ctx: int = 0


@dataclass(frozen=True, slots=True)
class InstallSnapshot:
    term: int
    src: str
    dst: str
    snapshot: Snapshot


@dataclass(frozen=True, slots=True)
class InstallSnapshotResponse:
    term: int
    src: str
    dst: str
    match_index: int


@dataclass(frozen=True, slots=True)
class TimeoutNow:
    """Leadership transfer: start an election at once (thesis §3.10)."""
    term: int
    src: str
    dst: str


RAFT_MESSAGES = (
    RequestVote, RequestVoteResponse, AppendEntries, AppendEntriesResponse,
    InstallSnapshot, InstallSnapshotResponse, TimeoutNow,
)
