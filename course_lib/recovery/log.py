"""A replica's log: a snapshot, the entries after it, and the state applied so far.

Invariants (checked, a violation raises ``ValueError`` at once):

- entries are contiguous: ``entries[i].seq == snapshot.seq + 1 + i``;
- epochs never decrease along the log;
- ``snapshot.seq <= applied_seq <= last_seq``: the state is the snapshot with entries
  ``snapshot.seq+1 .. applied_seq`` applied, in order.
"""

from __future__ import annotations

from typing import Iterable, Optional

from .records import LogEntry, Snapshot


class ReplicaLog:
    def __init__(self, snapshot: Optional[Snapshot] = None, entries: Iterable[LogEntry] = ()):
        self.snapshot = snapshot or Snapshot()
        self.entries: list[LogEntry] = []
        self.state: dict = self.snapshot.state()
        self.applied_seq = self.snapshot.seq
        for entry in entries:
            self.append(entry)

    @property
    def last_seq(self) -> int:
        return self.entries[-1].seq if self.entries else self.snapshot.seq

    @property
    def last_epoch(self) -> int:
        return self.entries[-1].epoch if self.entries else self.snapshot.epoch

    def epoch_at(self, seq: int) -> Optional[int]:
        """The epoch of entry ``seq``, or None if this log does not hold it (beyond the
        end, or compacted into the snapshot — except the snapshot's own last entry)."""
        if seq == self.snapshot.seq:
            return self.snapshot.epoch
        index = seq - self.snapshot.seq - 1
        if 0 <= index < len(self.entries):
            return self.entries[index].epoch
        return None

    def entries_after(self, seq: int) -> Optional[list[LogEntry]]:
        """Entries ``seq+1 .. last_seq``, or None if some were compacted away."""
        if seq < self.snapshot.seq:
            return None
        return self.entries[seq - self.snapshot.seq:]

    def append(self, entry: LogEntry) -> None:
        if entry.seq != self.last_seq + 1:
            raise ValueError(f"entry {entry.seq} does not follow {self.last_seq}: the log has a gap")
        if entry.epoch < self.last_epoch:
            raise ValueError(f"entry {entry.seq} has epoch {entry.epoch} < {self.last_epoch}")
        self.entries.append(entry)

    def apply_through(self, seq: int) -> list[LogEntry]:
        """Apply entries up to ``min(seq, last_seq)``; returns the entries applied."""
        target = min(seq, self.last_seq)
        applied = []
        while self.applied_seq < target:
            entry = self.entries[self.applied_seq - self.snapshot.seq]
            self.state[entry.key] = entry.value
            self.applied_seq = entry.seq
            applied.append(entry)
        return applied

    def install(self, snapshot: Snapshot) -> None:
        """Replace everything by ``snapshot`` (a catch-up from far behind, or a restore)."""
        self.snapshot = snapshot
        self.entries = []
        self.state = snapshot.state()
        self.applied_seq = snapshot.seq

    def applied_snapshot(self) -> Snapshot:
        """A consistent snapshot of the applied state: the state and the sequence number
        it reflects are read together."""
        return Snapshot.of(self.applied_seq, self.epoch_at(self.applied_seq) or 0, self.state)

    def compact(self) -> None:
        """Fold the applied entries into the snapshot (the log keeps what follows)."""
        kept = self.entries[self.applied_seq - self.snapshot.seq:]
        self.snapshot = self.applied_snapshot()
        self.entries = kept
