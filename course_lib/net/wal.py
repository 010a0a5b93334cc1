"""Raft's stable storage on disk: an append-only WAL plus an atomic snapshot file.

Layout of a node's data directory::

    node.json    {"node": "n1", "voters": [...]}: whose directory this is
    wal          records, appended; one record per Ready (group commit)
    snapshot     the latest snapshot (absent until the first one)

**WAL record** = header ``struct ">II"`` (body length, ``zlib.crc32`` of the body) +
body, the JSON (:mod:`.codec`) of ``(hard_state or None, first_index, entries)``: the
hard state of the Ready, and its entries, which replace any stored entry at or after
``first_index`` (a conflicting suffix is overwritten, §5.3).  One record holds a whole
Ready, so it is all there after a crash, or not at all.  (The body is built by
:func:`.codec.dumps_record`, reusing each entry's text from the codec's cache.)

**Durability** (Figure 2; etcd's Ready contract): :meth:`WALStorage.persist` writes the
Ready's record (and its snapshot) and calls ``fsync`` **once** for the batch (group
commit) before returning; the driver sends the Ready's messages only after that.
``fsync=False`` skips every fsync: **unsafe** — an OS crash or power loss may then lose
votes and acknowledged entries (a process kill does not, the page cache survives it).

**Recovery** (:meth:`WALStorage.load`): records are read in order.  A record that is
cut short, or whose checksum fails, *at the end of the file* is a torn write — the
crash came mid-append, before the fsync, so nothing that depends on it was sent: it is
truncated away and never applied.  A bad record followed by more data is corruption:
:class:`CorruptDataDir` is raised, naming the file and offset, and nothing is deleted.

**Snapshots** are written atomically: a temporary file (header ``">II"`` + JSON of the
Snapshot), fsync, rename over ``snapshot``, fsync of the directory.  Then the WAL is
rewritten the same way (temp, fsync, rename, fsync dir) to hold only the hard state and
the entries after the snapshot.  A crash between the two leaves an old WAL next to a
new snapshot: loading drops the entries the snapshot covers, as
:meth:`MemoryStorage.save_snapshot` does.
"""

from __future__ import annotations

import json
import os
import struct
import time
import zlib
from pathlib import Path
from typing import Optional

from ..raft.messages import HardState, Snapshot
from ..raft.node import Ready
from ..raft.storage import MemoryStorage
from . import codec

RECORD = struct.Struct(">II")
WAL, SNAPSHOT, META = "wal", "snapshot", "node.json"


class CorruptDataDir(ValueError):
    """A data directory that cannot be recovered safely (it is left untouched)."""


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _record(obj) -> bytes:
    body = codec.dumps(obj)
    return RECORD.pack(len(body), zlib.crc32(body)) + body


def write_atomically(path: Path, data: bytes, fsync: bool = True) -> None:
    """Write temp, fsync, rename over ``path``, fsync the directory."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        if fsync:
            os.fsync(f.fileno())
    os.replace(tmp, path)
    if fsync:
        fsync_dir(path.parent)


def read_records(path: Path) -> tuple[list, int, Optional[str]]:
    """``(records, good_length, torn)``: the decoded records, the byte length they
    span, and a description of a torn tail (None if the file ends cleanly).
    Raises :class:`CorruptDataDir` for a bad record that is not at the end."""
    data = path.read_bytes()
    out, pos, size = [], 0, len(data)
    while pos < size:
        if size - pos < RECORD.size:
            return out, pos, f"{size - pos} byte(s) of a record header at offset {pos}"
        n, crc = RECORD.unpack_from(data, pos)
        end = pos + RECORD.size + n
        if end > size:
            return out, pos, f"record at offset {pos} claims {n} bytes, {size - pos - RECORD.size} present"
        body = data[pos + RECORD.size:end]
        if zlib.crc32(body) != crc:
            if end == size:
                return out, pos, f"record at offset {pos}: checksum mismatch (last record)"
            raise CorruptDataDir(f"{path}: record at offset {pos} fails its checksum and "
                                 f"{size - end} byte(s) follow it: corruption, not a torn write "
                                 f"(nothing was deleted)")
        try:
            out.append(codec.loads(body))
        except ValueError as e:
            raise CorruptDataDir(f"{path}: record at offset {pos} passes its checksum but "
                                 f"does not decode: {e}") from None
        pos = end
    return out, pos, None


class WALStorage(MemoryStorage):
    """:class:`~course_lib.raft.storage.Storage` on disk; the in-memory copy (the
    inherited :class:`MemoryStorage` state) mirrors what the files hold."""

    def __init__(self, folder, node_id: str, voters: tuple, *, fsync: bool = True) -> None:
        super().__init__()
        self.folder = Path(folder)
        self.fsync = fsync
        self.fsyncs = 0
        self.fsync_seconds = 0.0               # time spent in the WAL's fsyncs
        self.torn: Optional[str] = None         # what recovery truncated, if anything
        if self.folder.exists() and not self.folder.is_dir():
            raise CorruptDataDir(f"data dir {self.folder} exists and is not a directory")
        self.folder.mkdir(parents=True, exist_ok=True)
        self._check_meta(node_id, tuple(voters))
        self._recover()
        self._wal = open(self.folder / WAL, "ab")

    # -- identity ------------------------------------------------------------------------------
    def _check_meta(self, node_id: str, voters: tuple) -> None:
        meta = self.folder / META
        if meta.exists():
            try:
                info = json.loads(meta.read_text())
                owner = info["node"]
            except (ValueError, KeyError, TypeError) as e:
                raise CorruptDataDir(f"{meta}: unreadable ({e}); nothing was deleted") from None
            if owner != node_id:
                raise CorruptDataDir(f"data dir {self.folder} belongs to node {owner!r}, "
                                     f"not {node_id!r}; nothing was deleted")
            return
        if any(self.folder.iterdir()):
            raise CorruptDataDir(f"data dir {self.folder} is not empty and has no {META}: "
                                 f"not a node's data dir; nothing was deleted")
        write_atomically(meta, json.dumps({"node": node_id, "voters": list(voters)}).encode(),
                         self.fsync)

    # -- recovery ------------------------------------------------------------------------------
    def _recover(self) -> None:
        snap_path = self.folder / SNAPSHOT
        snap = None
        if snap_path.exists():
            recs, _, torn = read_records(snap_path)
            if torn is not None or len(recs) != 1 or not isinstance(recs[0], Snapshot):
                # written atomically: a bad snapshot file is never a torn write
                raise CorruptDataDir(f"{snap_path}: not one checksummed snapshot "
                                     f"({torn or f'{len(recs)} record(s)'}); nothing was deleted")
            snap = recs[0]
        wal_path = self.folder / WAL
        if not wal_path.exists():
            wal_path.touch()
        recs, good, torn = read_records(wal_path)
        if torn is not None:
            self.torn = torn
            with open(wal_path, "r+b") as f:   # drop the torn tail: it was never acknowledged
                f.truncate(good)
                f.flush()
                os.fsync(f.fileno())
        hs, start, entries = None, None, []
        for k, rec in enumerate(recs):
            try:
                rec_hs, first, es = rec
            except (TypeError, ValueError):
                raise CorruptDataDir(f"{wal_path}: record {k} is not (hard_state, first, entries)") from None
            if rec_hs is not None:
                hs = rec_hs
            if start is None:
                start = first
            if not start <= first <= start + len(entries):
                raise CorruptDataDir(f"{wal_path}: record {k} writes at {first}, leaving a gap "
                                     f"after {start + len(entries) - 1}")
            del entries[first - start:]
            entries.extend(es)
        if start is not None:
            for k, e in enumerate(entries):
                if e.index != start + k:
                    raise CorruptDataDir(f"{wal_path}: entry {e.index} stored at position {start + k}")
        # rebuild the in-memory mirror, with MemoryStorage's snapshot rule (§7)
        if snap is None:
            if start is not None and start != 1:
                raise CorruptDataDir(f"{wal_path}: entries start at {start} but there is no snapshot")
        elif start is not None:
            if start > snap.index + 1:
                raise CorruptDataDir(f"{wal_path}: entries start at {start}, after the "
                                     f"snapshot at {snap.index}: a gap")
            k = snap.index - start + 1          # entries the snapshot covers (0: WAL rewritten)
            if k > 0:
                # a crash between the snapshot's rename and the WAL's rewrite
                if k <= len(entries) and entries[k - 1].term == snap.term:
                    del entries[:k]
                else:
                    entries = []
        self.hard_state = hs
        self.snapshot = snap
        self.entries = entries

    # -- writing -------------------------------------------------------------------------------
    def persist(self, rd: Ready) -> None:
        """Make ``rd``'s snapshot, entries and hard state durable: one fsync for the
        WAL record (group commit), after the snapshot file if there is one."""
        if rd.snapshot is not None:
            self.save_snapshot(rd.snapshot)
        if not rd.entries and rd.hard_state is None:
            return
        first = rd.entries[0].index if rd.entries else self._offset() + len(self.entries) + 1
        if rd.entries:
            MemoryStorage.append(self, rd.entries)
        if rd.hard_state is not None:
            self.hard_state = rd.hard_state
        body = codec.dumps_record(rd.hard_state, first, rd.entries)
        self._wal.write(RECORD.pack(len(body), zlib.crc32(body)) + body)
        self._wal.flush()
        if self.fsync:
            t0 = time.perf_counter()
            os.fsync(self._wal.fileno())
            self.fsync_seconds += time.perf_counter() - t0
            self.fsyncs += 1

    def save_hard_state(self, hs: HardState) -> None:
        self.persist(Ready(hs, None, (), (), (), (), None))

    def append(self, entries) -> None:
        self.persist(Ready(None, None, tuple(entries), (), (), (), None))

    def save_snapshot(self, snap: Snapshot) -> None:
        """Snapshot file first (atomic), then the WAL rewritten without what it covers."""
        if snap.index <= self._offset():
            return
        write_atomically(self.folder / SNAPSHOT, _record(snap), self.fsync)
        MemoryStorage.save_snapshot(self, snap)
        self._wal.close()
        first = snap.index + 1
        write_atomically(self.folder / WAL, _record((self.hard_state, first, tuple(self.entries))),
                         self.fsync)
        self._wal = open(self.folder / WAL, "ab")
        if self.fsync:
            self.fsyncs += 1

    def close(self) -> None:
        self._wal.close()
