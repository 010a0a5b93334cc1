"""course_lib.net without processes: the codec's frames and the WAL's durability rules."""

from __future__ import annotations

import os
import struct
import subprocess
import sys

import pytest

from course_lib.net import codec
from course_lib.net.wal import CorruptDataDir, WALStorage
from course_lib.raft import (
    AppendEntries, AppendEntriesResponse, ClientCommand, ClientReply, ClientRequest, ConfChange,
    Entry, EntryKind, HardState, InstallSnapshot, KVStateMachine, RequestVote, Snapshot,
)
from course_lib.raft.node import Ready

VOTERS = ("n1", "n2", "n3")


def ready(hs=None, entries=(), snapshot=None) -> Ready:
    return Ready(hs, snapshot, tuple(entries), (), (), (), None)


def cmd(i) -> ClientCommand:
    return ClientCommand("k1/ab", i, ("append", "a", f"{i};"))


# -- codec -------------------------------------------------------------------------------------
def test_every_message_round_trips_through_a_frame():
    kv = KVStateMachine()
    kv.apply(cmd(1))
    msgs = [
        RequestVote(3, "n1", "n2", 7, 2, True, False),
        AppendEntries(3, "n1", "n2", 4, 2, (Entry(3, 5, cmd(1)), Entry(3, 6, None, EntryKind.NOOP),
                                             Entry(3, 7, ConfChange("add", "n4", ("n1", "n4")), EntryKind.CONFIG)), 4, 9),
        AppendEntriesResponse(3, "n2", "n1", False, 0, 4, 3, None, 9),
        InstallSnapshot(3, "n1", "n2", Snapshot(10, 2, VOTERS, kv.snapshot())),
        ClientRequest("k1", "n1", "k1/ab", 4, ("put", "x", "1")),
        ClientReply("n1", "k1", 4, True, "v", None),
        ("status",), {"ok": True, "term": 3, "cut": ("n2",)},
    ]
    for m in msgs:
        frame = codec.encode_frame(m)
        (n,) = struct.unpack(">I", frame[:4])
        assert n == len(frame) - 4
        assert codec.loads(frame[4:]) == m


def test_codec_builds_only_whitelisted_types_and_rejects_garbage():
    for bad in (b'{"t": "Popen", "v": ["ls"]}', b'{"t": "Entry", "v": [1]}', b"\x80\x04K\x01.",
                b'{"e": "NodeState", "v": "king"}', b"[1, 2"):
        with pytest.raises(ValueError):
            codec.loads(bad)
    with pytest.raises(ValueError):
        codec.frame_length(struct.pack(">I", codec.MAX_FRAME + 1))
    with pytest.raises(ValueError):
        codec.dumps(object())


# -- WAL -----------------------------------------------------------------------------------------
def test_wal_recovers_hard_state_and_entries_with_overwrites(tmp_path):
    s = WALStorage(tmp_path, "n1", VOTERS)
    s.persist(ready(HardState(1, "n1"), [Entry(1, i, cmd(i)) for i in (1, 2, 3)]))
    s.persist(ready(HardState(2, None), [Entry(2, 3, cmd(30)), Entry(2, 4, cmd(40))]))  # overwrite 3
    s.close()
    t = WALStorage(tmp_path, "n1", VOTERS)
    hs, snap, entries = t.load()
    assert hs == HardState(2, None) and snap is None and t.torn is None
    assert [(e.index, e.term, e.command.seq) for e in entries] == [(1, 1, 1), (2, 1, 2), (3, 2, 30), (4, 2, 40)]


def test_group_commit_is_one_fsync_per_ready_and_fsync_false_makes_none(tmp_path):
    s = WALStorage(tmp_path / "a", "n1", VOTERS)
    s.persist(ready(HardState(1, "n1"), [Entry(1, i, cmd(i)) for i in range(1, 51)]))
    assert s.fsyncs == 1
    s.persist(ready(None, [Entry(1, 51, cmd(51))]))
    assert s.fsyncs == 2
    unsafe = WALStorage(tmp_path / "b", "n1", VOTERS, fsync=False)
    unsafe.persist(ready(HardState(1, "n1"), [Entry(1, 1, cmd(1))]))
    assert unsafe.fsyncs == 0


def test_torn_final_record_is_truncated_and_never_applied(tmp_path):
    s = WALStorage(tmp_path, "n1", VOTERS)
    s.persist(ready(HardState(1, "n1"), [Entry(1, 1, cmd(1)), Entry(1, 2, cmd(2))]))
    s.persist(ready(HardState(5, "n3"), [Entry(5, 3, cmd(3))]))
    s.close()
    wal = tmp_path / "wal"
    size = wal.stat().st_size
    (n,) = struct.unpack(">I", wal.read_bytes()[:4])
    first_end = 8 + n                                        # where the last record starts
    for cut in (size - 1, first_end + 3, first_end + 8 + 5):  # body / header cut short
        data = wal.read_bytes()
        with open(wal, "r+b") as f:
            f.truncate(cut)
        t = WALStorage(tmp_path, "n1", VOTERS)
        hs, _, entries = t.load()
        assert t.torn is not None                            # detected ...
        assert hs == HardState(1, "n1") and [e.index for e in entries] == [1, 2]   # ... not applied
        t.close()
        assert wal.stat().st_size < cut                      # ... and truncated away
        wal.write_bytes(data)                                # put the full record back
    # a final record of the right length whose checksum fails is torn too
    data = bytearray(wal.read_bytes())
    data[-2] ^= 0xFF
    wal.write_bytes(bytes(data))
    t = WALStorage(tmp_path, "n1", VOTERS)
    assert t.torn is not None and t.load()[0] == HardState(1, "n1")
    t.persist(ready(HardState(6, None), [Entry(6, 3, cmd(33))]))  # and appending goes on cleanly
    t.close()
    hs, _, entries = WALStorage(tmp_path, "n1", VOTERS).load()
    assert hs == HardState(6, None) and entries[-1].command.seq == 33


def test_a_bad_record_followed_by_data_is_corruption_and_nothing_is_deleted(tmp_path):
    s = WALStorage(tmp_path, "n1", VOTERS)
    for i in range(1, 4):
        s.persist(ready(HardState(1, "n1"), [Entry(1, i, cmd(i))]))
    s.close()
    wal = tmp_path / "wal"
    data = bytearray(wal.read_bytes())
    data[12] ^= 0xFF                                          # inside the first record's body
    wal.write_bytes(bytes(data))
    with pytest.raises(CorruptDataDir, match="corruption, not a torn write"):
        WALStorage(tmp_path, "n1", VOTERS)
    assert wal.read_bytes() == bytes(data)


def test_data_dir_of_another_node_or_not_a_data_dir_is_refused(tmp_path):
    WALStorage(tmp_path / "d", "n1", VOTERS).close()
    with pytest.raises(CorruptDataDir, match="belongs to node 'n1'"):
        WALStorage(tmp_path / "d", "n2", VOTERS)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "thesis.tex").write_text("precious")
    with pytest.raises(CorruptDataDir, match="not empty"):
        WALStorage(tmp_path / "other", "n1", VOTERS)
    assert (tmp_path / "other" / "thesis.tex").read_text() == "precious"


def test_snapshot_is_atomic_and_compacts_the_wal(tmp_path):
    s = WALStorage(tmp_path, "n1", VOTERS)
    s.persist(ready(HardState(2, "n1"), [Entry(2, i, cmd(i)) for i in range(1, 11)]))
    s.save_snapshot(Snapshot(8, 2, VOTERS, (("a", "x"),)))
    s.persist(ready(None, [Entry(2, 11, cmd(11))]))
    s.close()
    assert not list(tmp_path.glob("*.tmp"))
    hs, snap, entries = WALStorage(tmp_path, "n1", VOTERS).load()
    assert hs == HardState(2, "n1") and snap.index == 8 and snap.data == (("a", "x"),)
    assert [e.index for e in entries] == [9, 10, 11]
    # a snapshot file that fails its checksum is corruption (it was written atomically)
    p = tmp_path / "snapshot"
    data = bytearray(p.read_bytes())
    data[-3] ^= 0xFF
    p.write_bytes(bytes(data))
    with pytest.raises(CorruptDataDir, match="snapshot"):
        WALStorage(tmp_path, "n1", VOTERS)


def test_crash_between_snapshot_rename_and_wal_rewrite_drops_covered_entries(tmp_path):
    s = WALStorage(tmp_path, "n1", VOTERS)
    s.persist(ready(HardState(2, "n1"), [Entry(2, i, cmd(i)) for i in range(1, 8)]))
    s.close()
    old_wal = (tmp_path / "wal").read_bytes()
    s = WALStorage(tmp_path, "n1", VOTERS)
    s.save_snapshot(Snapshot(5, 2, VOTERS, ()))
    s.close()
    (tmp_path / "wal").write_bytes(old_wal)                  # the rewrite never happened
    _, snap, entries = WALStorage(tmp_path, "n1", VOTERS).load()
    assert snap.index == 5 and [e.index for e in entries] == [6, 7]


def test_net_and_raft_import_with_the_standard_library_only():
    # plotly, numpy, kazoo and ipywidgets made unimportable; course_lib.check's package
    # __init__ (which imports plotly until it is made pure, a concurrent change) is
    # skipped so that only what net and raft import themselves is tested
    code = (
        "import sys, types, pathlib\n"
        "for m in ('plotly', 'numpy', 'kazoo', 'ipywidgets'): sys.modules[m] = None\n"
        "import course_lib\n"
        "chk = types.ModuleType('course_lib.check')\n"
        "chk.__path__ = [str(pathlib.Path(course_lib.__file__).parent / 'check')]\n"
        "sys.modules['course_lib.check'] = chk\n"
        "import course_lib.net, course_lib.net.node, course_lib.net.__main__, course_lib.raft\n"
        "print('ok')\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr
