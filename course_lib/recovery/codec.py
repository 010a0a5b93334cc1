"""Wire format of the real runtime: one JSON object per line.

Peer messages (:mod:`.records`) travel as ``{"type": "Replicate", ...}`` with log entries
as ``[seq, epoch, key, value]`` and snapshots as ``{"seq", "epoch", "state"}``.  Client
requests are plain ``{"op": ...}`` objects, documented in :mod:`.server`.
"""

from __future__ import annotations

import json

from .records import Ack, CatchUp, LogEntry, Refuse, Replicate, Snapshot

_TYPES = {cls.__name__: cls for cls in (Ack, CatchUp, Refuse, Replicate)}


def encode(obj) -> bytes:
    """A peer message (frozen dataclass) or a plain dict, as one line."""
    if isinstance(obj, dict):
        data = obj
    elif type(obj).__name__ in _TYPES:
        data = {"type": type(obj).__name__, **{k: getattr(obj, k) for k in obj.__dataclass_fields__}}
        if isinstance(obj, Replicate):
            data["entries"] = [[e.seq, e.epoch, e.key, e.value] for e in obj.entries]
            data["snapshot"] = None if obj.snapshot is None else obj.snapshot.to_json()
    else:
        raise ValueError(f"cannot encode {obj!r}")
    return json.dumps(data, separators=(",", ":"), allow_nan=False).encode() + b"\n"


def decode(line: bytes):
    """The message or request in ``line``; ``ValueError`` if it is malformed."""
    try:
        data = json.loads(line)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"not a JSON line: {error}") from None
    if not isinstance(data, dict):
        raise ValueError(f"expected a JSON object, got {type(data).__name__}")
    kind = data.pop("type", None)
    if kind is None:
        return data
    if kind not in _TYPES:
        raise ValueError(f"unknown message type {kind!r}")
    try:
        if kind == "Replicate":
            data["entries"] = tuple(LogEntry(*e) for e in data["entries"])
            if data.get("snapshot") is not None:
                data["snapshot"] = Snapshot.from_json(data["snapshot"])
        return _TYPES[kind](**data)
    except (KeyError, TypeError) as error:
        raise ValueError(f"malformed {kind}: {error}") from None
