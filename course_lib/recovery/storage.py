"""A replica's stable storage on disk: epoch, snapshot and log, each write fsynced.

Layout in the replica's folder:

- ``epoch``: the highest epoch seen (written to a temporary file, fsynced, renamed);
- ``snapshot.json``: the snapshot, in the backup format (:mod:`.backup`), checksummed;
- ``log.jsonl``: the entries after the snapshot, one JSON object per line with a CRC-32
  of its contents.  Appends are fsynced before ``persist`` returns, so an entry the
  replica acknowledged is on disk.  A crash in the middle of an append leaves a torn
  last line, which ``load`` drops (it was never acknowledged); a bad line anywhere else
  is corruption and raises ``ValueError``.

Installing a snapshot writes the snapshot first, then replaces the log: a crash between
the two leaves a log whose entries the snapshot already covers, which ``load`` skips.
"""

from __future__ import annotations

import json
import os
import zlib
from pathlib import Path

from .backup import fsync_dir, read_backup, write_backup
from .records import LogEntry, Ready, Snapshot


def _line(entry: LogEntry) -> bytes:
    body = json.dumps([entry.seq, entry.epoch, entry.key, entry.value], separators=(",", ":"))
    return json.dumps({"e": body, "crc": zlib.crc32(body.encode())}).encode() + b"\n"


class DiskStorage:
    def __init__(self, folder) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self._log = open(self.folder / "log.jsonl", "ab")

    def load(self) -> tuple[int, Snapshot, list[LogEntry]]:
        """(epoch, snapshot, entries after the snapshot) as last persisted."""
        epoch_file = self.folder / "epoch"
        epoch = int(epoch_file.read_text()) if epoch_file.exists() else 0
        snap_file = self.folder / "snapshot.json"
        snapshot = read_backup(snap_file) if snap_file.exists() else Snapshot()
        entries: list[LogEntry] = []
        lines = (self.folder / "log.jsonl").read_bytes().split(b"\n")
        for number, raw in enumerate(lines, 1):
            if not raw:
                continue
            try:
                record = json.loads(raw)
                if zlib.crc32(record["e"].encode()) != record["crc"]:
                    raise ValueError("CRC mismatch")
                entry = LogEntry(*json.loads(record["e"]))
            except (ValueError, KeyError, TypeError) as error:
                if number == len(lines):
                    break  # a torn final write: never acknowledged
                raise ValueError(f"{self.folder}/log.jsonl line {number} is corrupt: {error}") from None
            if entry.seq > snapshot.seq:
                entries.append(entry)
        return epoch, snapshot, entries

    def persist(self, ready: Ready) -> None:
        """Make ``ready``'s epoch, snapshot and entries durable (the Ready contract)."""
        if ready.epoch is not None:
            temporary = self.folder / "epoch.tmp"
            with open(temporary, "w") as f:
                f.write(str(ready.epoch))
                f.flush()
                os.fsync(f.fileno())
            os.replace(temporary, self.folder / "epoch")
            fsync_dir(self.folder)
        if ready.snapshot is not None:
            write_backup(self.folder / "snapshot.json", ready.snapshot)
            temporary = self.folder / "log.jsonl.tmp"
            with open(temporary, "wb") as f:
                f.write(b"".join(_line(e) for e in ready.entries))
                f.flush()
                os.fsync(f.fileno())
            self._log.close()
            os.replace(temporary, self.folder / "log.jsonl")
            fsync_dir(self.folder)
            self._log = open(self.folder / "log.jsonl", "ab")
        elif ready.entries:
            self._log.write(b"".join(_line(e) for e in ready.entries))
            self._log.flush()
            os.fsync(self._log.fileno())

    def close(self) -> None:
        self._log.close()
