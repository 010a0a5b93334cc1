"""The wire format of ``course_lib.net``: length-prefixed frames of JSON.

A **frame** is a 4-byte big-endian length (``struct`` ``">I"``) followed by that many
bytes of UTF-8 JSON.  Frames carry Raft messages between nodes, client requests and
replies, and control requests, all over the same TCP port.

Why JSON and not ``marshal`` or ``pickle``: ``pickle`` runs code named by the data, so
unpickling bytes from a socket hands the sender the process; ``marshal`` is documented
as not secure against malformed data either (it may crash the interpreter) and changes
between Python versions, so two machines on different Pythons could not talk.  JSON
only ever builds strings, numbers, lists and dicts; on top of it this module builds
*only* the frozen dataclasses listed in :data:`TYPES` (a whitelist), by calling their
constructors, so a malformed frame raises :class:`ValueError` and nothing else.  It is
compact enough (``separators=(",", ":")``, positional fields, no field names) and
readable in a packet capture.  The same encoding is used for the WAL's records.

Value encoding (:func:`to_plain` / :func:`from_plain`):

- ``str``, ``int``, ``float``, ``bool``, ``None`` as themselves;
- ``tuple`` (and ``list``) as a JSON array, decoded as a ``tuple`` (every sequence in a
  message, an entry or a snapshot is a tuple, so decoded values are hashable and equal
  to the originals);
- a dataclass of :data:`TYPES` as ``{"t": name, "v": [field values in order]}``;
- an enum of :data:`ENUMS` as ``{"e": name, "v": value}``;
- a ``dict`` (status replies only) as ``{"d": [[key, value], ...]}``.
"""

from __future__ import annotations

import dataclasses
import json
import socket
import struct
from enum import Enum
from typing import Any

from ..raft.client import ClientReply, ClientRequest
from ..raft.kv import ClientCommand
from ..raft.messages import (
    RAFT_MESSAGES, ConfChange, Entry, EntryKind, HardState, NodeState, Snapshot,
)

HEADER = struct.Struct(">I")
MAX_FRAME = 64 * 1024 * 1024          # a larger length is garbage, not a message

TYPES = {cls.__name__: cls for cls in (
    *RAFT_MESSAGES, Entry, Snapshot, HardState, ConfChange, ClientCommand,
    ClientRequest, ClientReply,
)}
ENUMS = {cls.__name__: cls for cls in (EntryKind, NodeState)}


class FrameError(ValueError):
    """A frame that is not one this codec writes."""


# -- values -------------------------------------------------------------------------------------
def to_plain(obj: Any) -> Any:
    t = type(obj)
    if obj is None or t is str or t is int or t is bool or t is float:
        return obj
    if t is tuple or t is list:
        return [to_plain(x) for x in obj]
    name = t.__name__
    if name in TYPES and TYPES[name] is t:
        return {"t": name, "v": [to_plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)]}
    if isinstance(obj, Enum) and ENUMS.get(name) is t:
        return {"e": name, "v": obj.value}
    if t is dict:
        return {"d": [[to_plain(k), to_plain(v)] for k, v in obj.items()]}
    raise FrameError(f"cannot encode {obj!r:.200} (type {name})")


def from_plain(data: Any) -> Any:
    t = type(data)
    if data is None or t is str or t is int or t is bool or t is float:
        return data
    if t is list:
        return tuple(from_plain(x) for x in data)
    if t is dict:
        if "t" in data:
            cls = TYPES.get(data["t"])
            fields = data.get("v")
            if cls is None or type(fields) is not list or len(data) != 2:
                raise FrameError(f"unknown or malformed record {data!r:.200}")
            try:
                return cls(*(from_plain(x) for x in fields))
            except TypeError as e:
                raise FrameError(f"bad fields for {data['t']}: {e}") from None
        if "e" in data:
            cls = ENUMS.get(data["e"])
            if cls is None or len(data) != 2:
                raise FrameError(f"unknown enum {data!r:.200}")
            try:
                return cls(data.get("v"))
            except ValueError as e:
                raise FrameError(str(e)) from None
        if "d" in data and len(data) == 1 and type(data["d"]) is list:
            out = {}
            for pair in data["d"]:
                if type(pair) is not list or len(pair) != 2:
                    raise FrameError(f"malformed dict item {pair!r:.200}")
                out[from_plain(pair[0])] = from_plain(pair[1])
            return out
    raise FrameError(f"cannot decode {data!r:.200}")


def dumps(obj: Any) -> bytes:
    """``obj`` as compact JSON bytes (no NaN: it is not JSON)."""
    return json.dumps(to_plain(obj), separators=(",", ":"), allow_nan=False).encode()


def loads(body: bytes) -> Any:
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise FrameError(f"not JSON: {e}") from None
    return from_plain(data)


# -- frames -----------------------------------------------------------------------------------------
def encode_frame(obj: Any) -> bytes:
    body = dumps(obj)
    if len(body) > MAX_FRAME:
        raise FrameError(f"frame of {len(body)} bytes exceeds {MAX_FRAME}")
    return HEADER.pack(len(body)) + body


def frame_length(header: bytes) -> int:
    (n,) = HEADER.unpack(header)
    if n > MAX_FRAME:
        raise FrameError(f"frame length {n} exceeds {MAX_FRAME}: not this protocol")
    return n


async def read_frame(reader) -> Any:
    """The next frame from an ``asyncio.StreamReader`` (``IncompleteReadError`` at EOF)."""
    n = frame_length(await reader.readexactly(HEADER.size))
    return loads(await reader.readexactly(n))


def _recv_exactly(sock: socket.socket, n: int) -> bytes:
    chunks = []
    while n:
        chunk = sock.recv(n)
        if not chunk:
            raise ConnectionError("connection closed")
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def send_frame(sock: socket.socket, obj: Any) -> None:
    sock.sendall(encode_frame(obj))


def recv_frame(sock: socket.socket) -> Any:
    """The next frame from a blocking socket (its timeout applies)."""
    n = frame_length(_recv_exactly(sock, HEADER.size))
    return loads(_recv_exactly(sock, n))


def request(address: tuple, obj: Any, timeout: float) -> Any:
    """Open a connection to ``address``, send ``obj``, return the one frame answered."""
    with socket.create_connection(address, timeout=timeout) as sock:
        sock.settimeout(timeout)
        send_frame(sock, obj)
        return recv_frame(sock)
