"""The replicated log, 1-based, with a compacted prefix (§5.3, §7).

``log[i]`` is the entry at index ``i``; ``len(log)`` is the last index.  Indexes at or
below ``snapshot_index`` have been compacted away: their term is only known for
``snapshot_index`` itself.  Iterating yields the entries still present.
"""

from __future__ import annotations

from typing import Iterator, Optional

from .messages import Entry


class RaftLog:
    __slots__ = ("_entries", "snapshot_index", "snapshot_term")

    def __init__(self, entries=(), snapshot_index: int = 0, snapshot_term: int = 0) -> None:
        self._entries: list[Entry] = list(entries)
        self.snapshot_index = snapshot_index
        self.snapshot_term = snapshot_term
        for k, e in enumerate(self._entries):
            if e.index != snapshot_index + 1 + k:
                raise ValueError(f"log entries are not contiguous: {e.index} at slot {k}")

    # -- reading ---------------------------------------------------------------
    @property
    def last_index(self) -> int:
        return self.snapshot_index + len(self._entries)

    @property
    def last_term(self) -> int:
        return self._entries[-1].term if self._entries else self.snapshot_term

    @property
    def first_index(self) -> int:
        """The first index still held as an entry."""
        return self.snapshot_index + 1

    def term_at(self, index: int) -> Optional[int]:
        """The term of the entry at ``index``; 0 for index 0; None if unknown."""
        off = index - self.snapshot_index
        if off > 0:
            if off <= len(self._entries):
                return self._entries[off - 1].term
            return None
        if off == 0:
            return self.snapshot_term
        return None

    def match_term(self, index: int, term: int) -> bool:
        return self.term_at(index) == term

    def slice(self, lo: int, hi: int) -> list[Entry]:
        """Entries with ``lo <= index <= hi`` (all must be present)."""
        s = self.snapshot_index
        if lo <= s:
            raise IndexError(f"entry {lo} is compacted (snapshot at {s})")
        return self._entries[lo - s - 1:hi - s]

    def first_index_of_term(self, index: int) -> int:
        """The first index of the run of entries with the term at ``index``."""
        term = self.term_at(index)
        i = index
        while i - 1 > self.snapshot_index and self.term_at(i - 1) == term:
            i -= 1
        return i

    def last_index_of_term(self, term: int) -> Optional[int]:
        """The last index holding ``term``, or None (fast backtracking, leader side)."""
        for e in reversed(self._entries):
            if e.term == term:
                return e.index
            if e.term < term:
                return None
        if self.snapshot_term == term and self.snapshot_index > 0:
            return self.snapshot_index
        return None

    def __len__(self) -> int:
        return self.last_index

    def __getitem__(self, index: int) -> Entry:
        if not isinstance(index, int):
            raise TypeError("log indexes are ints (1-based); slices are not supported")
        off = index - self.snapshot_index
        if index < 1 or off > len(self._entries):
            raise IndexError(f"log index {index} out of range 1..{self.last_index}")
        if off <= 0:
            raise IndexError(f"log index {index} is compacted into the snapshot at {self.snapshot_index}")
        return self._entries[off - 1]

    def __iter__(self) -> Iterator[Entry]:
        return iter(self._entries)

    def entries(self) -> list[Entry]:
        return list(self._entries)

    def __repr__(self) -> str:
        return f"RaftLog(snapshot=({self.snapshot_index}, {self.snapshot_term}), last={self.last_index})"

    # -- writing ---------------------------------------------------------------
    def append(self, entry: Entry) -> None:
        if entry.index != self.last_index + 1:
            raise ValueError(f"append at {entry.index} but last index is {self.last_index}")
        self._entries.append(entry)

    def truncate_from(self, index: int) -> None:
        """Delete the entry at ``index`` and all that follow (§5.3)."""
        if index <= self.snapshot_index:
            raise ValueError(f"cannot truncate at {index}: compacted up to {self.snapshot_index}")
        del self._entries[index - self.snapshot_index - 1:]

    def compact(self, index: int, term: int) -> None:
        """Drop entries up to ``index`` (now covered by a snapshot)."""
        if index <= self.snapshot_index:
            return
        if index > self.last_index:
            self._entries = []
        else:
            if self.term_at(index) != term:
                raise ValueError(f"compact at {index}: term {term} != log term {self.term_at(index)}")
            del self._entries[:index - self.snapshot_index]
        self.snapshot_index = index
        self.snapshot_term = term

    def reset(self, index: int, term: int) -> None:
        """Discard everything: the log now starts after a snapshot at ``index``."""
        self._entries = []
        self.snapshot_index = index
        self.snapshot_term = term
