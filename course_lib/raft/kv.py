"""A key-value state machine with client sessions (Ongaro thesis §6.3).

Commands reach the state machine as :class:`ClientCommand` ``(client_id, seq, op)``.
Each client numbers its operations; the state machine remembers, per client, the last
sequence number it applied and that operation's result.  A retried command (same
``seq``) is answered from the session and **not applied again**, so a client that
retries across leaders gets exactly-once semantics.  Sessions are part of the
snapshot, so deduplication survives compaction.

Operations: ``("put", k, v)`` -> None; ``("append", k, v)`` -> None;
``("get", k)`` -> the value, or ``""`` when absent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Hashable

OPS = {"put": 3, "append": 3, "get": 2}


def validate_op(op: Any) -> tuple:
    if not isinstance(op, tuple) or not op or op[0] not in OPS:
        raise ValueError(f"operation must be ('put', k, v), ('append', k, v) or ('get', k); got {op!r}")
    if len(op) != OPS[op[0]]:
        raise ValueError(f"{op[0]!r} takes {OPS[op[0]] - 1} argument(s); got {op!r}")
    for x in op[1:]:
        if not isinstance(x, str):
            raise ValueError(f"keys and values must be str; got {x!r} in {op!r}")
    return op


@dataclass(frozen=True, slots=True)
class ClientCommand:
    client_id: Hashable
    seq: int
    op: tuple


class KVStateMachine:
    def __init__(self) -> None:
        self.data: dict[str, str] = {}
        self.sessions: dict[Hashable, tuple[int, Any]] = {}   # client -> (last seq, result)
        self.applied_commands = 0

    def apply(self, cmd: ClientCommand) -> Any:
        """Apply once per (client, seq); a duplicate returns the remembered result."""
        last = self.sessions.get(cmd.client_id)
        if last is not None and cmd.seq <= last[0]:
            return last[1] if cmd.seq == last[0] else None
        result = self.execute(cmd.op)
        self.sessions[cmd.client_id] = (cmd.seq, result)
        self.applied_commands += 1
        return result

    def execute(self, op: tuple) -> Any:
        kind = op[0]
        if kind == "put":
            self.data[op[1]] = op[2]
            return None
        if kind == "append":
            self.data[op[1]] = self.data.get(op[1], "") + op[2]
            return None
        if kind == "get":
            return self.data.get(op[1], "")
        raise ValueError(f"unknown operation {op!r}")

    def read(self, key: str) -> str:
        return self.data.get(key, "")

    def session_result(self, client_id: Hashable, seq: int):
        """(True, result) if ``seq`` of ``client_id`` was applied, else (False, None)."""
        last = self.sessions.get(client_id)
        if last is not None and last[0] == seq:
            return True, last[1]
        if last is not None and last[0] > seq:
            return True, None
        return False, None

    def snapshot(self) -> tuple:
        """An immutable, canonical copy of the state (for Snapshot.data)."""
        return (tuple(sorted(self.data.items())),
                tuple(sorted(self.sessions.items(), key=lambda kv: repr(kv[0]))))

    def restore(self, data) -> None:
        if data is None:
            self.data, self.sessions = {}, {}
            return
        items, sessions = data
        self.data = dict(items)
        self.sessions = dict(sessions)
