"""Backup and restore: a consistent snapshot to a file, with a checksum.

A backup is one JSON document ``{"format": 1, "checksum": SHA256, "snapshot": {"seq",
"epoch", "state"}}``.  It is *consistent* because the state and the sequence number it
reflects are taken together (``Replica.snapshot()``): restoring it and then replaying the
log from ``seq + 1`` gives exactly the primary's state — never a write twice, never one
skipped.  The file is written to a temporary name, fsynced and renamed, so a crash while
writing leaves the previous backup intact; reading it recomputes the checksum and refuses
a file that does not match (``BackupCorrupted``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from .records import Snapshot

FORMAT = 1


class BackupCorrupted(ValueError):
    """The backup file is unreadable or its checksum does not match its contents."""


def write_backup(path, snapshot: Snapshot) -> Path:
    """Write ``snapshot`` to ``path`` atomically and durably; returns the path."""
    if not isinstance(snapshot, Snapshot):
        raise ValueError(f"snapshot must be a Snapshot, not {type(snapshot).__name__}")
    path = Path(path)
    document = {"format": FORMAT, "checksum": snapshot.checksum(), "snapshot": snapshot.to_json()}
    temporary = path.with_name(path.name + ".tmp")
    with open(temporary, "w") as f:
        json.dump(document, f, sort_keys=True, allow_nan=False)
        f.flush()
        os.fsync(f.fileno())
    os.replace(temporary, path)
    fsync_dir(path.parent)
    return path


def read_backup(path) -> Snapshot:
    """The snapshot in ``path``; ``BackupCorrupted`` if it fails its checksum."""
    path = Path(path)
    try:
        document = json.loads(path.read_text())
        if document.get("format") != FORMAT:
            raise BackupCorrupted(f"{path}: unknown backup format {document.get('format')!r}")
        snapshot = Snapshot.from_json(document["snapshot"])
        expected = document["checksum"]
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, ValueError) as error:
        if isinstance(error, BackupCorrupted):
            raise
        raise BackupCorrupted(f"{path}: not a readable backup ({error})") from None
    if snapshot.checksum() != expected:
        raise BackupCorrupted(f"{path}: checksum mismatch — the file was altered or damaged; "
                              "refusing to restore it")
    return snapshot


def fsync_dir(folder) -> None:
    """Make a rename or a new file in ``folder`` durable (POSIX needs the directory synced)."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
