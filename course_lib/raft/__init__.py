"""Raft: a sans-I/O core (:class:`RaftNode`) and a simulated cluster (:class:`SimCluster`).

Modules, one job each:

- ``messages``   log entries, snapshots and RPCs (frozen dataclasses), ``NodeState``
- ``log``        the 1-based log with a compacted prefix
- ``progress``   the leader's view of each follower (nextIndex / matchIndex)
- ``read_index`` linearizable reads (thesis §6.4)
- ``node``       the protocol core: tick / step / propose -> Ready
- ``storage``    the storage interface and an in-memory store that survives crashes
- ``kv``         key-value state machine with client sessions (exactly once)
- ``driver``     what every driver does: Ready in order (persist, send, apply, advance),
                 clients with sessions, the KV; ``HostEvents`` callbacks
- ``host``       drives one core in the simulator (``RaftHost``, a ``RaftDriver``)
- ``client``     a retrying client with a session
- ``invariants`` Figure 3's safety properties, checked after every event
- ``cluster``    ``SimCluster``: the public model for lessons, widgets and tests
- ``campaign``   randomized fault campaigns (``python -m course_lib.raft.campaign --seed N``)
"""

from .client import ClientOp, ClientReply, ClientRequest, ClientTimeout, RaftClient
from .cluster import SimCluster
from .driver import HostEvents, RaftDriver
from .errors import ConfChangeInProgress, NotLeader, RaftError, SafetyViolation
from .host import RaftHost
from .kv import ClientCommand, KVStateMachine
from .log import RaftLog
from .messages import (
    AppendEntries, AppendEntriesResponse, ConfChange, Entry, EntryKind, HardState,
    InstallSnapshot, InstallSnapshotResponse, NodeState, RequestVote,
    RequestVoteResponse, Snapshot, TimeoutNow,
)
from .node import RaftConfig, RaftNode, Ready
from .storage import MemoryStorage, Storage

__all__ = [
    "AppendEntries", "AppendEntriesResponse", "ClientCommand", "ClientOp", "ClientReply",
    "ClientRequest", "ClientTimeout", "ConfChange", "ConfChangeInProgress", "Entry",
    "EntryKind", "HardState", "HostEvents", "InstallSnapshot", "InstallSnapshotResponse",
    "KVStateMachine", "MemoryStorage", "NodeState", "NotLeader", "RaftClient", "RaftConfig",
    "RaftDriver", "RaftError", "RaftHost", "RaftLog", "RaftNode", "Ready", "RequestVote",
    "RequestVoteResponse", "SafetyViolation", "SimCluster", "Snapshot", "Storage",
    "TimeoutNow",
]
