"""The wire format of course_lib.net, pinned: every whitelisted type round-trips through
both the reference and the fast path, and the bytes of a few frames are fixed (a WAL
written before a change must still be read after it, and nodes of two versions talk)."""

from __future__ import annotations

import json
import struct

import pytest

from course_lib.net import codec
from course_lib.raft import (
    AppendEntries, AppendEntriesResponse, ClientCommand, ClientReply, ClientRequest, ConfChange,
    Entry, EntryKind, HardState, InstallSnapshot, KVStateMachine, RequestVote, Snapshot,
)
from course_lib.raft.messages import InstallSnapshotResponse, NodeState, RequestVoteResponse, TimeoutNow


def snapshot() -> Snapshot:
    kv = KVStateMachine()
    kv.apply(ClientCommand("k1/ab", 1, ("put", "x", "1")))
    return Snapshot(10, 2, ("n1", "n2", "n3"), kv.snapshot())


COMMAND = ClientCommand("k1/ab", 9, ("put", "x", 'caf\u00e9 "1"'))
ENTRIES = (Entry(7, 42, COMMAND), Entry(7, 43, None, EntryKind.NOOP),
           Entry(7, 44, ConfChange("add", "n4", ("n1", "n2", "n3", "n4")), EntryKind.CONFIG))
SAMPLES = {
    RequestVote: RequestVote(3, "n1", "n2", 7, 2, True, False),
    RequestVoteResponse: RequestVoteResponse(3, "n2", "n1", True, True),
    AppendEntries: AppendEntries(7, "n1", "n3", 41, 6, ENTRIES, 42, 3),
    AppendEntriesResponse: AppendEntriesResponse(3, "n2", "n1", False, 0, 4, 3, None, 9),
    InstallSnapshot: InstallSnapshot(3, "n1", "n2", snapshot()),
    InstallSnapshotResponse: InstallSnapshotResponse(3, "n2", "n1", 10),
    TimeoutNow: TimeoutNow(4, "n1", "n2"),
    Entry: ENTRIES[0],
    Snapshot: snapshot(),
    HardState: HardState(7, "n1"),
    ConfChange: ConfChange("remove", "n3", ("n1", "n2")),
    ClientCommand: COMMAND,
    ClientRequest: ClientRequest("k1", "n1", "k1/ab", 9, ("put", "x", "1")),
    ClientReply: ClientReply("n1", "k1", 9, False, None, "n2"),
}


def reference(value) -> bytes:
    return json.dumps(codec.to_plain(value), separators=(",", ":")).encode()


def test_every_whitelisted_type_and_enum_round_trips_through_both_paths():
    assert set(SAMPLES) == set(codec.TYPES.values()), "a whitelisted type without a sample here"
    members = [m for cls in codec.ENUMS.values() for m in cls]
    for value in [*SAMPLES.values(), *members, tuple(SAMPLES.values())]:
        frame = codec.encode_frame(value)
        (n,) = struct.unpack(">I", frame[:4])
        assert n == len(frame) - 4
        assert frame[4:] == reference(value), f"the fast path writes other bytes for {value!r:.80}"
        for decoded in (codec.loads(frame[4:]), codec.from_plain(json.loads(frame[4:]))):
            assert decoded == value and type(decoded) is type(value)


PINNED_APPEND = (
    b'\x00\x00\x01\x5c{"t":"AppendEntries","v":[7,"n1","n3",41,6,['
    b'{"t":"Entry","v":[7,42,{"t":"ClientCommand","v":["k1/ab",9,["put","x","caf\\u00e9 \\"1\\""]]},'
    b'{"e":"EntryKind","v":"normal"}]},'
    b'{"t":"Entry","v":[7,43,null,{"e":"EntryKind","v":"noop"}]},'
    b'{"t":"Entry","v":[7,44,{"t":"ConfChange","v":["add","n4",["n1","n2","n3","n4"]]},'
    b'{"e":"EntryKind","v":"config"}]}],42,3]}')
PINNED = [
    (SAMPLES[AppendEntries], PINNED_APPEND),
    (SAMPLES[ClientRequest],
     b'\x00\x00\x00?{"t":"ClientRequest","v":["k1","n1","k1/ab",9,["put","x","1"]]}'),
    ({"ok": True, "state": NodeState.LEADER, "cut": ("n2",)},
     b'\x00\x00\x00K{"d":[["ok",true],["state",{"e":"NodeState","v":"leader"}],["cut",["n2"]]]}'),
]


@pytest.mark.parametrize("value, frame", PINNED, ids=["append", "request", "status"])
def test_the_bytes_of_a_frame_are_pinned(value, frame):
    for _ in range(2):                              # the second time from the entry cache
        assert codec.encode_frame(value) == frame
    received = codec.loads(frame[4:])               # a follower keeps the leader's entry text
    assert received == value and codec.encode_frame(received) == frame


def test_the_templates_write_the_pinned_bytes():
    assert codec.encode_reply("n1", "k1", 9, True) == \
        b'\x00\x00\x004{"t":"ClientReply","v":["n1","k1",9,true,null,null]}'
    assert codec.dumps_record(HardState(7, "n1"), 42, ENTRIES[:1]) == (
        b'[{"t":"HardState","v":[7,"n1"]},42,[{"t":"Entry","v":[7,42,{"t":"ClientCommand","v":'
        b'["k1/ab",9,["put","x","caf\\u00e9 \\"1\\""]]},{"e":"EntryKind","v":"normal"}]}]]')
    assert codec.request_fields(PINNED[1][1][4:]) == ("k1/ab", 9, ("put", "x", "1"))


@pytest.mark.parametrize("bad", [
    '{"t":"Popen","v":["ls"]}', '{"t":"Entry","v":[1]}', '{"t":"Entry","v":7}',
    '{"t":"HardState","v":[1,null],"x":0}', '{"e":"NodeState","v":"king"}',
    '{"e":"Color","v":"red"}', '{"e":"NodeState","v":["leader"]}', '{"d":[["a"]]}',
    '{"d":[["a",1]],"x":2}', '{"x":1}', '[1,{"t":"TimeoutNow","v":[1,"n1"]}]',
])
def test_both_decoders_refuse_the_same_malformed_objects(bad):
    with pytest.raises(codec.FrameError):
        codec.loads(bad.encode())
    with pytest.raises(codec.FrameError):
        codec.from_plain(json.loads(bad))
