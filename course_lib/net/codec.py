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
- a ``dict`` (status replies only, at the top level) as ``{"d": [[key, value], ...]}``.

:func:`to_plain` / :func:`from_plain` are the reference; :func:`dumps` / :func:`loads`
write and read the same text faster (the runtime's hot path): the C JSON encoder walks
tuples and scalars and calls back only for a dataclass or an enum; the C decoder calls
back only for a JSON object; an entry's text is made once and reused in the WAL and
in each AppendEntries (:func:`entries_text`); a follower keeps the text of the entries
it receives for its own WAL; a write's reply comes from a template
(:func:`encode_reply`).  Tests check that both paths give identical bytes, and pin the
bytes of a few frames.

The tagged objects are described once: :func:`_tagged` (a dataclass or an enum as its
``{"t": ...}`` / ``{"e": ...}`` object) is both the C encoder's callback and the
reference encoder's, and :func:`_untagged` (a JSON object as its value) both the C
decoder's hook and the reference decoder's; the templates are spliced from the head
the encoder itself writes for a record (:func:`_record_head`), and the AppendEntries
templates split its fields where the dataclass has its ``entries``.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import operator
import socket
import struct
from typing import Any, Optional

from ..raft.client import ClientReply, ClientRequest
from ..raft.kv import ClientCommand
from ..raft.messages import (
    RAFT_MESSAGES, AppendEntries, ConfChange, Entry, EntryKind, HardState, NodeState, Snapshot,
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


# -- the tagged objects, both ways ------------------------------------------------------------
def _getter(names: list):
    """``obj -> (obj.<name>, ...)``, a tuple however many names (attrgetter of one
    name returns the bare value)."""
    if len(names) == 1:
        name = names[0]
        return lambda obj: (getattr(obj, name),)
    return operator.attrgetter(*names)


def _field_names(cls) -> list:
    return [f.name for f in dataclasses.fields(cls)]


_RECORDS = {cls: (name, _getter(_field_names(cls))) for name, cls in TYPES.items()}
_ENUM_NAMES = {cls: name for name, cls in ENUMS.items()}
_ENUM_MEMBERS = {name: {m.value: m for m in cls} for name, cls in ENUMS.items()}


def _tagged(obj: Any) -> dict:
    """A whitelisted dataclass as ``{"t": name, "v": (field values in order)}``, an enum
    as ``{"e": name, "v": value}``; anything else cannot be encoded.  The C encoder's
    ``default`` (it writes the tuple as an array) and the reference's."""
    t = type(obj)
    record = _RECORDS.get(t)
    if record is not None:
        return {"t": record[0], "v": record[1](obj)}
    name = _ENUM_NAMES.get(t)
    if name is not None:
        return {"e": name, "v": obj.value}
    raise FrameError(f"cannot encode {obj!r:.200} (type {t.__name__})")


def _tuples(x: list) -> tuple:
    return tuple([_tuples(y) if type(y) is list else y for y in x])


def _untagged(data: dict) -> Any:
    """The value of a JSON object whose own values are decoded already (lists still
    lists): a record, an enum member or a dict, else :class:`FrameError`.  The C
    decoder's ``object_hook`` (called innermost first) and the reference's."""
    if "t" in data:
        cls = TYPES.get(data["t"])
        fields = data.get("v")
        if cls is None or type(fields) is not list or len(data) != 2:
            raise FrameError(f"unknown or malformed record {data!r:.200}")
        try:
            return cls(*[_tuples(x) if type(x) is list else x for x in fields])
        except TypeError as e:
            raise FrameError(f"bad fields for {data['t']}: {e}") from None
    if "e" in data:
        members = _ENUM_MEMBERS.get(data["e"])
        if members is None or len(data) != 2:
            raise FrameError(f"unknown enum {data!r:.200}")
        try:
            return members[data.get("v")]
        except (KeyError, TypeError):
            raise FrameError(f"{data.get('v')!r:.100} is not a valid {data['e']}") from None
    if "d" in data and len(data) == 1 and type(data["d"]) is list:
        out = {}
        for pair in data["d"]:
            if type(pair) is not list or len(pair) != 2:
                raise FrameError(f"malformed dict item {pair!r:.200}")
            k, v = pair
            out[_tuples(k) if type(k) is list else k] = _tuples(v) if type(v) is list else v
        return out
    raise FrameError(f"cannot decode {data!r:.200}")


# -- values -------------------------------------------------------------------------------------
def to_plain(obj: Any) -> Any:
    """``obj`` as plain JSON values (the reference encoding, walked in Python;
    :func:`dumps` is faster)."""
    t = type(obj)
    if obj is None or t is str or t is int or t is bool or t is float:
        return obj
    if t is tuple or t is list:
        return [to_plain(x) for x in obj]
    if t is dict:
        return {"d": [[to_plain(k), to_plain(v)] for k, v in obj.items()]}
    return {key: to_plain(value) for key, value in _tagged(obj).items()}


def from_plain(data: Any) -> Any:
    """The inverse of :func:`to_plain` (the reference decoding, walked in Python, each
    object innermost first as the C decoder does; :func:`loads` is faster)."""
    value = _objects(data)
    return _tuples(value) if type(value) is list else value


def _objects(data: Any) -> Any:
    """``data`` with every JSON object in it turned into its value, innermost first,
    lists left lists: what the C decoder hands back with ``object_hook=_untagged``."""
    t = type(data)
    if data is None or t is str or t is int or t is bool or t is float:
        return data
    if t is list:
        return [_objects(x) for x in data]
    if t is dict:
        return _untagged({key: _objects(value) for key, value in data.items()})
    raise FrameError(f"cannot decode {data!r:.200}")


# The fast path: the same JSON text as to_plain + json.dumps, but the C encoder walks
# tuples, lists, strings and numbers itself and calls back into Python only for a
# whitelisted dataclass or enum; decoding lets the C decoder build lists and call
# ``_untagged`` for each JSON object (innermost first), then turns lists into tuples.
# check_circular off: frozen dataclasses of tuples cannot hold a cycle
_ENCODER = json.JSONEncoder(separators=(",", ":"), allow_nan=False, check_circular=False,
                            default=_tagged)
_DECODER = json.JSONDecoder(object_hook=_untagged)


def _record_head(name: str) -> str:
    """The text a record of type ``name`` starts with, up to its first field (what the
    encoder writes: the templates below are spliced from it, so they cannot drift)."""
    return _ENCODER.encode({"t": name, "v": ()})[:-2]       # less the "]}" closing it


_ENTRY_HEAD, _COMMAND_HEAD = _record_head("Entry"), _record_head("ClientCommand")
_APPEND_HEAD, _REPLY_HEAD = _record_head("AppendEntries"), _record_head("ClientReply")
_REQUEST_HEAD = _record_head("ClientRequest").encode()
_NORMAL_TEXT = _ENCODER.encode(EntryKind.NORMAL)
# an AppendEntries's fields before and after its entries, written and read around them
_APPEND_FIELDS = _field_names(AppendEntries)
_BEFORE_ENTRIES = _APPEND_FIELDS[:_APPEND_FIELDS.index("entries")]
_AFTER_ENTRIES = _APPEND_FIELDS[_APPEND_FIELDS.index("entries") + 1:]
_APPEND_BEFORE, _APPEND_AFTER = _getter(_BEFORE_ENTRIES), _getter(_AFTER_ENTRIES)


# A leader writes each entry three times: in its WAL record and in the AppendEntries to
# each of two followers.  The JSON text of an entry is kept here, keyed by the entry
# object (``id``, checked with ``is``: the cache holds the entry, so its id cannot be
# reused while cached), so it is made once and spliced into each.  Shared by the event
# loop and the WAL thread: OrderedDict's get / set / popitem are atomic under the GIL.
_ENTRY_TEXT: "collections.OrderedDict[int, tuple]" = collections.OrderedDict()
ENTRY_CACHE_SIZE = 16384


def _entry_text(e: Entry) -> str:
    """``_ENCODER.encode(e)``; a client command's entry (nearly all of them) from a
    template, the C encoder doing its strings and its operation."""
    c = e.command
    if (e.kind is _NORMAL and type(c) is ClientCommand and type(c.seq) is int
            and type(e.term) is int and type(e.index) is int):
        enc = _ENCODER.encode
        return (f'{_ENTRY_HEAD}{e.term},{e.index},{_COMMAND_HEAD}'
                f'{enc(c.client_id)},{c.seq},{enc(c.op)}]}},{_NORMAL_TEXT}]}}')
    return _ENCODER.encode(e)


_NORMAL = EntryKind.NORMAL


def entries_text(entries) -> str:
    """``entries`` (a sequence of :class:`Entry`) as the JSON text of an array."""
    cache = _ENTRY_TEXT
    parts = []
    for e in entries:
        hit = cache.get(id(e))
        if hit is not None and hit[0] is e:
            parts.append(hit[1])
            continue
        text = _entry_text(e)
        cache[id(e)] = (e, text)
        if len(cache) > ENTRY_CACHE_SIZE:
            try:
                cache.popitem(last=False)
            except KeyError:
                pass
        parts.append(text)
    return "[" + ",".join(parts) + "]"


def _dumps_append(m: AppendEntries) -> str:
    # the text _ENCODER would write, with the entries spliced in from the cache
    before = _ENCODER.encode(_APPEND_BEFORE(m))
    after = _ENCODER.encode(_APPEND_AFTER(m))
    return f'{_APPEND_HEAD}{before[1:-1]},{entries_text(m.entries)},{after[1:]}}}'


def dumps(obj: Any) -> bytes:
    """``obj`` as compact JSON bytes (no NaN: it is not JSON).  A ``dict`` is encoded
    only at the top level (status and control answers); inside a message, every value
    is a tuple, a scalar or a whitelisted dataclass or enum."""
    t = type(obj)
    if t is AppendEntries and obj.entries:
        return _dumps_append(obj).encode()
    if t is dict:
        return json.dumps(to_plain(obj), separators=(",", ":"), allow_nan=False).encode()
    return _ENCODER.encode(obj).encode()


def dumps_record(hard_state, first: int, entries) -> bytes:
    """``dumps((hard_state, first, entries))``, the WAL's record body, with the
    entries' text from the cache."""
    return f"[{_ENCODER.encode(hard_state)},{int(first)},{entries_text(entries)}]".encode()


_APPEND_PREFIX = _APPEND_HEAD.encode()
_raw_decode = _DECODER.raw_decode


def _loads_append(text: str) -> AppendEntries:
    """An AppendEntries decoded element by element, so that each entry's JSON text is
    known: it goes into the entry cache, and a follower's WAL record then holds the
    leader's text for it instead of encoding the entry again.  Strict: anything but
    the compact layout :func:`dumps` writes raises, and :func:`loads` falls back."""
    pos = len(_APPEND_HEAD)
    before = []
    for _ in _BEFORE_ENTRIES:
        value, pos = _raw_decode(text, pos)
        if text[pos] != ",":
            raise FrameError("not compact")
        before.append(value)
        pos += 1
    if text[pos] != "[":
        raise FrameError("not compact")
    pos += 1
    entries = []
    cache = _ENTRY_TEXT
    if text[pos] == "]":
        pos += 1
    else:
        while True:
            start = pos
            e, pos = _raw_decode(text, pos)
            if type(e) is not Entry:
                raise FrameError("not an entry")
            entries.append(e)
            cache[id(e)] = (e, text[start:pos])
            c = text[pos]
            pos += 1
            if c == "]":
                break
            if c != ",":
                raise FrameError("not compact")
        while len(cache) > ENTRY_CACHE_SIZE:
            cache.popitem(last=False)
    after = []
    for _ in _AFTER_ENTRIES:
        if text[pos] != ",":
            raise FrameError("not compact")
        value, pos = _raw_decode(text, pos + 1)
        after.append(value)
    # a list (or a dict) would need the general path's conversion: let it decode this
    if text[pos:] != "]}" or any(type(x) in (list, dict) for x in before + after):
        raise FrameError("not compact")
    return AppendEntries(*before, tuple(entries), *after)


def loads(body) -> Any:
    """The value of one frame's body (``bytes`` or ``bytearray``)."""
    if body.startswith(_APPEND_PREFIX):
        try:
            return _loads_append(body.decode())
        except (ValueError, IndexError, TypeError, KeyError):
            pass                           # not the compact layout: decode it the general way
    try:
        data = _DECODER.decode(body.decode())
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise FrameError(f"not JSON: {e}") from None
    except RecursionError:
        raise FrameError("nested too deeply") from None
    return _tuples(data) if type(data) is list else data


# -- frames -----------------------------------------------------------------------------------------
_PLAIN = json.JSONDecoder()


def request_fields(body) -> Optional[tuple]:
    """``(session, seq, op)`` of a :class:`ClientRequest` frame body in the compact
    layout :func:`dumps` writes, read without building the request (a server replaces
    its ``src``/``dst`` anyway); None when it is not that layout: use :func:`loads`."""
    if not body.startswith(_REQUEST_HEAD) or not body.endswith(b"]}"):
        return None
    try:
        v = _PLAIN.decode(body[len(_REQUEST_HEAD) - 1:-1].decode())
    except (ValueError, UnicodeDecodeError):
        return None
    if type(v) is not list or len(v) != 5:
        return None
    src, dst, session, seq, op = v
    if (type(src) is not str or type(dst) is not str or type(session) is not str
            or type(seq) is not int or type(op) is not list
            or not all(type(x) is str for x in op)):
        return None
    return session, seq, tuple(op)


_REPLY_HEADS: dict = {}              # (src, dst) -> the reply's text up to its seq


def encode_reply(src: str, dst: str, seq: int, ok: bool, result=None, hint=None) -> bytes:
    """``encode_frame(ClientReply(src, dst, seq, ok, result, hint))``; the frequent
    answer to a write (ok, no result, no hint) from a template."""
    if ok is True and result is None and hint is None and type(seq) is int:
        head = _REPLY_HEADS.get((src, dst))
        if head is None:
            head = _REPLY_HEADS[(src, dst)] = \
                f"{_REPLY_HEAD}{_ENCODER.encode(src)},{_ENCODER.encode(dst)},"
        body = f"{head}{seq},true,null,null]}}".encode()
        return HEADER.pack(len(body)) + body
    return encode_frame(ClientReply(src, dst, seq, ok, result, hint))


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


class FrameSplitter:
    """Frames from a byte stream that arrives in arbitrary chunks: :meth:`feed` a chunk,
    get every frame it completes (a read of many frames costs one call, not one
    ``await`` per frame)."""
    __slots__ = ("buf",)

    def __init__(self, initial: bytes = b"") -> None:
        self.buf = bytearray(initial)

    def feed(self, data: bytes) -> list:
        return [loads(body) for body in self.feed_bodies(data)]

    def feed_bodies(self, data: bytes) -> list:
        """The bodies (undecoded) of the frames ``data`` completes."""
        buf = self.buf
        buf += data
        out = []
        pos, n = 0, len(buf)
        unpack = HEADER.unpack_from
        while n - pos >= 4:
            (size,) = unpack(buf, pos)
            if size > MAX_FRAME:
                raise FrameError(f"frame length {size} exceeds {MAX_FRAME}: not this protocol")
            end = pos + 4 + size
            if end > n:
                break
            out.append(buf[pos + 4:end])
            pos = end
        if pos:
            del buf[:pos]
        return out


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
