"""Records and messages of primary-backup replication (frozen dataclasses).

Vocabulary:

- a **write** is ``key = value``; the primary gives it a sequence number ``seq`` (1, 2,
  ...) and stamps it with its **epoch**, making a :class:`LogEntry`;
- a :class:`Snapshot` is the state after applying every entry up to ``seq`` (and the
  epoch of that last entry, so two replicas can tell whether their logs match there);
- the epoch is a fencing token: it grows with every change of primary, and a replica
  refuses messages from a primary whose epoch is lower than one it has seen.
"""

from __future__ import annotations

import enum
import hashlib
import json
import math
from dataclasses import dataclass
from typing import Any, Mapping, Optional, Union


class Role(enum.Enum):
    BACKUP = "backup"
    PRIMARY = "primary"
    DEPOSED = "deposed"  # was primary, learnt of a higher epoch: serves nothing more


class ReplicationError(RuntimeError):
    """Base class of the replication errors a client may see."""


class NotPrimary(ReplicationError):
    """The replica asked to take a write is not (or no longer) the primary."""


class Deposed(NotPrimary):
    """The replica was primary, and a replica of a newer epoch refused it (epoch fencing)."""


class NotEnoughReplicas(ReplicationError):
    """Fewer backups are attached than the writes need acknowledgements from."""


def check_key(key) -> str:
    if not isinstance(key, str) or not key:
        raise ValueError(f"key must be a non-empty string, not {key!r}")
    return key


def check_json_value(value, what: str = "value"):
    """Values travel as JSON: ``None``, bool, int, finite float, str, lists and
    string-keyed dicts of those."""
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be JSON-serialisable (no NaN), not {value!r}") from None
    return value


def check_count(name: str, value, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, not {value!r}")
    return value


@dataclass(frozen=True)
class LogEntry:
    seq: int
    epoch: int
    key: str
    value: Any


@dataclass(frozen=True)
class Snapshot:
    """The state after entries ``1..seq``; ``epoch`` is the epoch of entry ``seq`` (0 if
    ``seq`` is 0).  ``items`` are sorted ``(key, value)`` pairs, so equal states give
    equal snapshots and equal checksums."""

    seq: int = 0
    epoch: int = 0
    items: tuple = ()

    @classmethod
    def of(cls, seq: int, epoch: int, state: Mapping[str, Any]) -> "Snapshot":
        return cls(seq, epoch, tuple(sorted(state.items())))

    def state(self) -> dict:
        return dict(self.items)

    def to_json(self) -> dict:
        return {"seq": self.seq, "epoch": self.epoch, "state": self.state()}

    @classmethod
    def from_json(cls, data: Mapping) -> "Snapshot":
        return cls.of(int(data["seq"]), int(data["epoch"]), dict(data["state"]))

    def checksum(self) -> str:
        """SHA-256 of the canonical JSON form (sorted keys, no spaces)."""
        canonical = json.dumps(self.to_json(), sort_keys=True, separators=(",", ":"), allow_nan=False)
        return hashlib.sha256(canonical.encode()).hexdigest()


# Messages between primary and backups.

@dataclass(frozen=True)
class CatchUp:
    """Backup -> primary: "I hold entries through ``last_seq`` (epoch ``last_epoch``);
    send me what follows."  Sent on attaching, and whenever a Replicate does not fit."""

    node: str
    epoch: int
    last_seq: int
    last_epoch: int


@dataclass(frozen=True)
class Replicate:
    """Primary -> backup: ``entries`` follow entry ``prev_seq`` of epoch ``prev_epoch``
    (after installing ``snapshot`` first, when present); ``commit_seq`` is how far the
    primary has acknowledged."""

    node: str
    epoch: int
    prev_seq: int
    prev_epoch: int
    entries: tuple = ()
    commit_seq: int = 0
    snapshot: Optional[Snapshot] = None


@dataclass(frozen=True)
class Ack:
    """Backup -> primary: "I have persisted every entry through ``seq``"."""

    node: str
    epoch: int
    seq: int


@dataclass(frozen=True)
class Refuse:
    """Backup -> a primary with a stale epoch: "epoch ``epoch`` has begun; step down"."""

    node: str
    epoch: int


Message = Union[CatchUp, Replicate, Ack, Refuse]


@dataclass(frozen=True)
class Ready:
    """What the host must do after a call into the core, in this order (persist before
    send, send before acknowledging — as etcd raft's ``Ready``):

    1. persist: ``epoch`` (if not None), then ``snapshot`` (if not None: it replaces the
       stored snapshot *and log*), then append ``entries`` — all durable (fsync);
    2. send each ``(to, message)`` of ``messages``;
    3. acknowledge to clients the writes with sequence numbers in ``committed``.
    """

    epoch: Optional[int] = None
    snapshot: Optional[Snapshot] = None
    entries: tuple = ()
    messages: tuple = ()
    committed: tuple = ()

    def __bool__(self) -> bool:
        return bool(self.epoch is not None or self.snapshot is not None or self.entries
                    or self.messages or self.committed)


def finite_number(name: str, value, positive: bool = True) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or (positive and value <= 0) or value < 0:
        raise ValueError(f"{name} must be a {'positive' if positive else 'non-negative'} "
                         f"finite number of seconds, not {value!r}")
    return float(value)
