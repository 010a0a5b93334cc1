"""Stable storage for Raft: term, vote, log and snapshot (Figure 2, §7).

The core never writes storage itself: it hands the driver a :class:`Ready` and the
driver persists its ``snapshot``, ``entries`` and ``hard_state`` *before* sending its
messages.  On restart the core is rebuilt from :meth:`Storage.load`.

:class:`MemoryStorage` lives outside the node process in the simulator, so it survives
a simulated crash while everything else of the node is lost.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Optional

from .messages import Entry, HardState, Snapshot


class Storage(ABC):
    @abstractmethod
    def load(self) -> tuple[Optional[HardState], Optional[Snapshot], list[Entry]]:
        """The persisted hard state, latest snapshot and log entries after it."""

    @abstractmethod
    def save_hard_state(self, hs: HardState) -> None: ...

    @abstractmethod
    def append(self, entries) -> None:
        """Persist ``entries``, first deleting any stored entry at or after the first one."""

    @abstractmethod
    def save_snapshot(self, snap: Snapshot) -> None:
        """Persist ``snap`` and drop the entries it covers.

        Entries after it are kept if the stored log holds ``snap.index`` with
        ``snap.term`` (local compaction); otherwise the whole log is dropped (§7).
        """


class MemoryStorage(Storage):
    def __init__(self) -> None:
        self.hard_state: Optional[HardState] = None
        self.snapshot: Optional[Snapshot] = None
        self.entries: list[Entry] = []
        self.writes = 0

    def _offset(self) -> int:
        return self.snapshot.index if self.snapshot else 0

    def load(self):
        return self.hard_state, self.snapshot, list(self.entries)

    def save_hard_state(self, hs: HardState) -> None:
        self.writes += 1
        self.hard_state = hs

    def append(self, entries) -> None:
        if not entries:
            return
        self.writes += 1
        off = self._offset()
        first = entries[0].index
        if first <= off:
            raise ValueError(f"append at {first}: compacted up to {off}")
        if first > off + len(self.entries) + 1:
            raise ValueError(f"append at {first} leaves a gap after {off + len(self.entries)}")
        del self.entries[first - off - 1:]
        self.entries.extend(entries)

    def save_snapshot(self, snap: Snapshot) -> None:
        self.writes += 1
        off = self._offset()
        if snap.index <= off:
            return
        k = snap.index - off
        if k <= len(self.entries) and self.entries[k - 1].term == snap.term:
            del self.entries[:k]
        else:
            self.entries = []
        self.snapshot = snap
