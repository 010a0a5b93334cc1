"""What a leader knows about each follower's log (Figure 2 nextIndex / matchIndex).

States, as in etcd raft:

- ``PROBE``: we do not know where the follower's log matches ours; send one
  AppendEntries at a time and wait for its answer (or the next heartbeat).
- ``REPLICATE``: the logs match up to ``match``; pipeline entries and advance ``next``
  optimistically.
- ``SNAPSHOT``: the entries the follower needs are compacted; an InstallSnapshot is on
  its way (§7).  Resent if unanswered for a few heartbeats.
"""

from __future__ import annotations

PROBE = "probe"
REPLICATE = "replicate"
SNAPSHOT = "snapshot"


class Progress:
    __slots__ = ("match", "next", "state", "probe_sent", "recent_active",
                 "pending_snapshot", "snapshot_heartbeats")

    def __init__(self, next_index: int) -> None:
        self.match = 0
        self.next = next_index
        self.state = PROBE
        self.probe_sent = False
        self.recent_active = False
        self.pending_snapshot = 0
        self.snapshot_heartbeats = 0

    def become_probe(self) -> None:
        self.state = PROBE
        self.probe_sent = False

    def become_replicate(self) -> None:
        self.state = REPLICATE
        self.next = max(self.next, self.match + 1)

    def become_snapshot(self, index: int) -> None:
        self.state = SNAPSHOT
        self.pending_snapshot = index
        self.snapshot_heartbeats = 0

    def __repr__(self) -> str:
        return f"Progress(match={self.match}, next={self.next}, {self.state})"
