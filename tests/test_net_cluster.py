"""course_lib.net on real processes: ProcessCluster, crashes, pauses, partitions, the WAL
after SIGKILL, bad input, a Jepsen-style run checked for linearizability, no orphans.

No mocks: every node is an OS process with a TCP port and a WAL in ``tmp_path``.
"""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from course_lib.check.checker import check
from course_lib.check.models import kv
from course_lib.net import ProcessCluster
from course_lib.net.nemesis import ClusterNemesis
from course_lib.raft.campaign import check_appends
from course_lib.raft.client import ClientTimeout

ROOT = Path(__file__).resolve().parents[1]


def gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return True
    return state in ("Z", "X")          # a zombie has exited; only its parent may reap it


def wait_gone(pids, timeout=5.0) -> list:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        left = [p for p in pids if not gone(p)]
        if not left:
            return []
        time.sleep(0.05)
    return [p for p in pids if not gone(p)]


def pids_of(c: ProcessCluster) -> list:
    return [p.pid for p in c.procs.values() if p is not None and p.poll() is None]


def wait_until(pred, timeout: float, step: float = 0.05) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(step)
    return pred()


@pytest.fixture
def cluster(tmp_path):
    c = ProcessCluster(3, data_dir=tmp_path / "data")
    yield c
    c.stop()


def test_cluster_starts_elects_serves_and_stop_leaves_no_process(cluster):
    c = cluster
    t = time.monotonic()
    c.start()
    assert time.monotonic() - t < 15
    lid = c.leader()
    assert lid in c.members
    states = c.states()
    assert [s["state"] for s in states.values()].count("leader") == 1
    assert all(s["alive"] and s["responding"] for s in states.values())
    k = c.client("alice")
    assert k.put("x", "1") is None
    assert k.append("x", "2") is None
    assert k.get("x") == "12" and k.get("missing") == ""
    h = c.history
    assert [op.input[0] for op in h] == ["put", "append", "get", "get"]
    assert all(op.call <= op.ret for op in h) and h[2].output == "12"
    assert wait_until(lambda: all(s["last_applied"] == c.states()[lid]["commit_index"]
                                  for s in c.states().values()), 3)
    pids = pids_of(c)
    assert len(pids) == 3
    c.stop()
    assert wait_gone(pids, 1) == []


def test_killing_the_leader_elects_a_new_one_and_the_old_one_rejoins(cluster):
    c = cluster.start()
    k = c.client("alice")
    k.put("x", "before")
    old = c.leader()
    term = c.states()[old]["term"]
    c.crash(old)
    assert not c.states()[old]["alive"]
    new = c.wait_for_leader(5, other_than=old)
    assert new is not None and c.states()[new]["term"] > term
    assert k.get("x") == "before"                       # an acknowledged write survives
    k.put("x", "after")
    c.restart(old)
    assert wait_until(lambda: c.states()[old]["state"] == "follower"
                      and c.states()[old]["last_applied"] == c.states()[new]["commit_index"], 5)


def test_a_paused_leader_is_deposed_and_resumes_as_follower(cluster):
    c = cluster.start()
    old = c.leader()
    term = c.states()[old]["term"]
    c.pause(old)
    assert c.states()[old]["paused"] and not c.states()[old]["responding"]
    new = c.wait_for_leader(5, other_than=old)
    assert new is not None
    c.client("bob").put("y", "1")                        # the majority goes on
    c.resume(old)
    assert wait_until(lambda: c.states()[old]["state"] == "follower"
                      and c.states()[old]["term"] > term, 5)
    assert c.leader() == new


def test_partition_isolates_the_leader_and_heal_reunites(cluster):
    c = cluster.start()
    old = c.leader()
    rest = set(c.members) - {old}
    c.partition({old}, rest)
    new = c.wait_for_leader(5, other_than=old)
    assert new in rest
    c.client("carol").put("z", "majority")
    # the old leader cannot reach a quorum: it steps down (check quorum) and learns nothing
    assert wait_until(lambda: c.states()[old]["state"] != "leader", 3)
    assert c.states()[old]["commit_index"] < c.states()[new]["commit_index"]
    c.heal()
    assert wait_until(lambda: c.states()[old]["last_applied"] == c.states()[c.leader() or new]["commit_index"]
                      and c.states()[old]["state"] == "follower", 5)
    assert len({s["term"] for s in c.states().values()}) == 1


def test_every_acknowledged_write_survives_sigkill_of_every_node_at_once(cluster):
    c = cluster
    c.client_timeout_ms = 1500
    c.start()
    stop = threading.Event()
    errors = []

    def writer(i):
        k = c.client(f"w{i}")
        n = 0
        while not stop.is_set():
            n += 1
            try:
                k.append(f"key{i % 2}", f"w{i}.{n};", timeout_ms=1500)
            except ClientTimeout:
                pass
            except Exception as e:          # pragma: no cover - a failure to report
                errors.append(e)
                return

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    time.sleep(1.5)
    pids = pids_of(c)
    for pid in pids:                                     # all at once, mid-load
        os.kill(pid, signal.SIGKILL)
    assert wait_gone(pids, 2) == []
    stop.set()
    for t in threads:
        t.join(5)
    assert not errors
    for nid in c.members:
        c.restart(nid)
    assert c.wait_for_leader(10) is not None
    reader = c.client("reader")
    final = {key: reader.get(key, timeout_ms=5000) for key in ("key0", "key1")}
    acked = [op for op in c.history if op.input[0] == "append" and op.ret is not None]
    assert len(acked) >= 10, "the load did not run"
    # reuse the campaign's check: acknowledged appends present, none applied twice
    hist = [op for op in c.history if op.input[1] in ("key0", "key1")]
    renamed = [type(op)(op.client_id, (op.input[0], {"key0": "a", "key1": "b"}[op.input[1]], *op.input[2:]),
                        op.call, op.output, op.ret) for op in hist]
    assert check_appends(renamed, {"a": final["key0"], "b": final["key1"]}) == []


def test_torn_final_wal_record_is_truncated_on_restart_and_never_applied(cluster):
    c = cluster.start()
    c.client("alice").put("x", "1")
    victim = next(n for n in c.members if n != c.leader())
    assert wait_until(lambda: c.states()[victim]["last_applied"] >= 2, 3)
    nxt = c.states()[victim]["last_index"] + 1
    c.crash(victim)
    before = (c.data_dir / victim / "wal").read_bytes()
    # a Ready cut off mid-write: a vote in term 99 and an entry, half on disk
    from course_lib.net.wal import _record
    from course_lib.raft import ClientCommand, Entry, HardState
    torn = _record((HardState(99, victim), nxt, (Entry(99, nxt, ClientCommand("evil", 1, ("put", "x", "torn"))),)))
    (c.data_dir / victim / "wal").write_bytes(before + torn[:len(torn) // 2])
    c.restart(victim)
    assert victim in c.torn and "offset" in c.torn[victim]
    assert (c.data_dir / victim / "wal").read_bytes() == before       # truncated back
    assert wait_until(lambda: c.states()[victim]["state"] == "follower", 3)
    s = c.states()[victim]
    assert s["term"] < 99
    assert c.client("bob").get("x") == "1"


def test_bad_input_gives_clear_errors_and_deletes_nothing(tmp_path):
    with pytest.raises(ValueError, match="data_dir is required"):
        ProcessCluster(3)
    with pytest.raises(ValueError, match="cluster size"):
        ProcessCluster(0, data_dir=tmp_path)
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    port = busy.getsockname()[1]
    try:
        c = ProcessCluster(3, data_dir=tmp_path / "p", base_port=port)
        with pytest.raises(ValueError, match=f"port {port} .*already in use"):
            c.start()
        assert c.procs == {"n1": None, "n2": None, "n3": None}
    finally:
        busy.close()
    with ProcessCluster(3, data_dir=tmp_path / "d") as c:
        c.start()
        for bad in (lambda: c.crash("n9"), lambda: c.pause("x"), lambda: c.partition({"n1"}, {"n9"})):
            with pytest.raises(ValueError, match="unknown node"):
                bad()
        with pytest.raises(ValueError, match="str"):
            c.partition("n1", "n2")
        with pytest.raises(ValueError, match="two partition groups"):
            c.partition({"n1", "n2"}, {"n2", "n3"})
        with pytest.raises(ValueError, match="is running"):
            c.restart("n1")
        c.crash("n1")
        with pytest.raises(ValueError, match="already down"):
            c.crash("n1")
        with pytest.raises(ValueError, match="down"):
            c.pause("n1")
        with pytest.raises(ValueError, match="not paused"):
            c.resume("n2")
        with pytest.raises(ValueError):
            c.client("n2")
        # corrupt n1's WAL in the middle: the restart refuses, and the bytes stay
        wal = c.data_dir / "n1" / "wal"
        data = bytearray(wal.read_bytes())
        assert len(data) > 40
        data[10] ^= 0xFF
        wal.write_bytes(bytes(data))
        with pytest.raises(ValueError, match="n1 failed to start.*corrupt data dir"):
            c.restart("n1")
        assert wal.read_bytes() == bytes(data)
        assert c.wait_for_leader(5) is not None          # the other two go on


def test_jepsen_style_run_is_linearizable(tmp_path):
    seed = 11
    c = ProcessCluster(5, data_dir=tmp_path / "data", client_retry_ms=300, client_timeout_ms=2000)
    with c:
        c.start()
        stop = threading.Event()
        errors = []

        def worker(i):
            k = c.client(f"c{i}")
            r = random.Random(seed * 100 + i)
            n = 0
            while not stop.is_set():
                n += 1
                x = r.random()
                key = r.choice(("a", "b"))
                try:
                    if x < 0.35:
                        k.append(key, f"c{i}.{n};")
                    elif x < 0.55:
                        k.put(key + "p", str(r.randrange(100)))
                    elif x < 0.75:
                        k.get(key + "p")
                    else:
                        k.get(key)
                except ClientTimeout:
                    pass
                except Exception as e:     # pragma: no cover - a failure to report
                    errors.append(repr(e))
                    return

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        nemesis = ClusterNemesis(c, seed=seed)           # kill, pause, partition; a majority up
        nemesis.start(time.monotonic())
        time.sleep(20)
        faults = nemesis.stop()                          # every fault undone
        assert c.wait_for_leader(10) is not None
        time.sleep(1.0)
        stop.set()
        for t in threads:
            t.join(5)
        assert not errors, errors
        final = c.client("final")
        values = {key: final.get(key, timeout_ms=5000) for key in ("a", "b")}
    history = c.history
    done = [op for op in history if op.ret is not None]
    kinds = {f.kind for f in faults}
    assert len(done) >= 100, f"only {len(done)} operations completed"
    assert {"kill", "pause", "partition"} <= kinds, faults
    assert check_appends([op for op in history if op.input[1] in ("a", "b")], values) == []
    result = check(kv(), history, timeout=30)
    print(f"jepsen seed {seed}: {len(history)} ops, {len(done)} completed, faults {faults}, "
          f"checked in {result.elapsed:.2f} s")
    assert result.ok is True, result


PARENT = """
import sys, time
sys.path.insert(0, {root!r})
from course_lib.net import ProcessCluster
c = ProcessCluster(3, data_dir={data!r})
c.start()
print(" ".join(str(p.pid) for p in c.procs.values()), flush=True)
time.sleep(60)
"""


def test_nodes_die_with_their_parent(tmp_path):
    p = subprocess.Popen([sys.executable, "-c", PARENT.format(root=str(ROOT), data=str(tmp_path / "d"))],
                         stdout=subprocess.PIPE, text=True)
    try:
        line = p.stdout.readline()
        pids = [int(x) for x in line.split()]
        assert len(pids) == 3 and not any(gone(x) for x in pids)
        p.send_signal(signal.SIGKILL)                   # no atexit, no cleanup: only the kernel
        p.wait()
        assert wait_gone(pids, 3) == []
    finally:
        if p.poll() is None:
            p.kill()
        p.stdout.close()


def test_cli_start_status_faults_and_stop(tmp_path):
    data = str(tmp_path / "cli")
    cli = [sys.executable, "-m", "course_lib.net", "--data", "cli"]   # relative to the cwd
    sup = subprocess.Popen(cli + ["start", "--nodes", "3"], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    try:
        assert "cluster up" in sup.stdout.readline()
        assert all(Path(data, nid, "node.json").is_file() for nid in ("n1", "n2", "n3"))

        def run(*args):
            r = subprocess.run(cli + list(args), capture_output=True, text=True, cwd=tmp_path, timeout=30)
            return r.returncode, r.stdout + r.stderr

        code, out = run("status")
        assert code == 0 and out.count("leader") >= 2 and "n3" in out
        assert run("kill", "n1") == (0, "ok\n")
        code, out = run("kill", "n1")
        assert code == 1 and "already down" in out
        code, out = run("pause", "n9")
        assert code == 1 and "unknown node 'n9'" in out
        assert run("pause", "n2")[0] == 0
        code, out = run("status")
        assert "n1 down" in out and "n2 paused" in out
        assert run("resume", "n2")[0] == 0 and run("restart", "n1")[0] == 0
        assert run("partition", "n1 n2 | n3")[0] == 0
        code, out = run("status")
        assert "cut=n1,n2" in out
        code, out = run("partition", "n1 n2")
        assert code == 1 and "groups separated by '|'" in out
        assert run("heal")[0] == 0
        code, out = run("status")
        assert "cut=n" not in out and out.count(" up ") == 3
        # membership, one server at a time: the new one is started, the removed one stopped
        assert run("add", "n4") == (0, "ok; members: n1 n2 n3 n4\n")
        code, out = run("add", "n4")
        assert code == 1 and "already a member" in out
        code, out = run("remove", "n7")
        assert code == 1 and "unknown node 'n7'" in out
        assert run("remove", "n2") == (0, "ok; members: n1 n3 n4\n")
        code, out = run("status")
        assert "n4 up" in out and " n2 " not in out and out.count(" up ") == 3
        pids = [int(w[4:]) for w in out.split() if w.startswith("pid=")]
        assert len(pids) == 3
        assert run("stop") == (0, "ok\n")
        assert sup.wait(10) == 0
        assert wait_gone(pids, 2) == []
        assert not Path(data, "cluster.json").exists()
        code, out = run("status")
        assert code == 1 and "no cluster running" in out
    finally:
        if sup.poll() is None:
            sup.kill()
        sup.stdout.close()
        sup.stderr.close()


def test_a_node_restarted_from_a_short_lived_thread_outlives_that_thread(tmp_path):
    # Linux kills a child when the *thread* that forked it ends (PR_SET_PDEATHSIG): the
    # cluster forks on a thread of its own, so a nemesis's or a widget's thread may restart
    with ProcessCluster(3, data_dir=tmp_path / "d") as c:
        c.start()
        victim = next(n for n in c.members if n != c.leader())
        c.crash(victim)
        helper = threading.Thread(target=c.restart, args=(victim,))
        helper.start()
        helper.join()
        time.sleep(1.0)
        assert c.procs[victim].poll() is None, "the node died with the thread that restarted it"
        assert c.states()[victim]["term"] is not None
