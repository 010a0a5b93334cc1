"""Membership changes on real processes (thesis §4.2.1, one server at a time):
ProcessCluster.add_server / remove_server (the CLI's add / remove are tested with the
rest of the CLI in test_net_cluster.py), and the CLI's bench subcommand.

No mocks: every node is an OS process with a TCP port and a WAL in ``tmp_path``.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from course_lib.net import ProcessCluster
from course_lib.raft.client import ClientTimeout
from tests.test_net_cluster import wait_gone, wait_until

ROOT = Path(__file__).resolve().parents[1]


def caught_up(c: ProcessCluster, nid: str) -> bool:
    s = c.states()
    lid = c.leader()
    return lid is not None and s[nid]["last_applied"] == s[lid]["commit_index"] == s[lid]["last_applied"]


def test_an_added_server_catches_up_counts_in_the_quorum_and_survives_a_restart(tmp_path):
    # snapshots after >= 10 entries (and >= the state's size): the leader's log no longer
    # starts at 1 when n4 joins, so n4 catches up from an InstallSnapshot, then the log
    with ProcessCluster(3, data_dir=tmp_path / "d", client_timeout_ms=5000,
                        snapshot_threshold=10) as c:
        with pytest.raises(ValueError, match="not started"):
            c.add_server("n4")
        c.start()
        k = c.client("alice")
        for i in range(45):
            k.put(f"k{i}", str(i))
        assert wait_until(lambda: c.status(c.leader())["snapshot_index"] > 0, 5)
        c.add_server("n4")
        assert c.members == ("n1", "n2", "n3", "n4")
        assert wait_until(lambda: caught_up(c, "n4"), 5)
        s4 = c.status("n4")
        assert s4["state"] == "follower" and s4["committed_voters"] == ("n1", "n2", "n3", "n4")
        assert s4["snapshot_index"] > 0                        # it was sent the snapshot
        assert k.get("k7") == "7"
        # 4 voters: a quorum is 3.  With one original follower down, every write needs n4 ...
        lid = c.leader()
        down = next(n for n in ("n1", "n2", "n3") if n != lid)
        c.crash(down)
        k.put("with-n4", "yes")
        assert k.get("with-n4") == "yes"
        # ... and with n4 paused too, 2 of 4 are up: nothing commits (it would with 3 voters)
        c.pause("n4")
        with pytest.raises(ClientTimeout):
            c.client("bob").put("without-n4", "no", timeout_ms=1500)
        c.resume("n4")
        c.restart(down)
        assert c.wait_for_leader(10) is not None
        k.put("after", "1")
        # n4 restarts from its own WAL (it joined: no bootstrap configuration of its own)
        c.crash("n4")
        c.restart("n4")
        assert wait_until(lambda: caught_up(c, "n4"), 5)
        assert c.status("n4")["voters"] == ("n1", "n2", "n3", "n4")
        assert k.get("after") == "1"
        # bad input
        with pytest.raises(ValueError, match="'n4' is already a member"):
            c.add_server("n4")
        with pytest.raises(ValueError, match="server id"):
            c.add_server("no spaces")
        with pytest.raises(ValueError, match="is a client id"):
            c.add_server("alice")
        pids = [p.pid for p in c.procs.values() if p is not None and p.poll() is None]
        assert len(pids) == 4
    assert wait_gone(pids, 3) == []


def test_removed_servers_stop_and_the_rest_keep_serving_down_to_the_last(tmp_path):
    with ProcessCluster(3, data_dir=tmp_path / "d") as c:
        c.start()
        k = c.client("alice")
        k.put("x", "1")
        with pytest.raises(ValueError, match="unknown node 'n9'"):
            c.remove_server("n9")
        # a follower first
        lid = c.leader()
        victim = next(n for n in c.members if n != lid)
        pid = c.procs[victim].pid
        c.remove_server(victim)
        assert victim not in c.members and len(c.members) == 2
        assert wait_gone([pid], 3) == []
        assert (c.data_dir / victim / "wal").exists()            # its data is kept
        k.put("x", "2")
        assert k.get("x") == "2"
        assert c.status(c.leader())["committed_voters"] == c.members
        with pytest.raises(ValueError, match=f"{victim} was removed"):
            c.remove_server(victim)
        with pytest.raises(ValueError, match=f"{victim} was removed"):
            c.crash(victim)
        with pytest.raises(ValueError, match="was removed from this cluster"):
            c.add_server(victim)
        # then the leader itself: it steps down once the change commits, the other leads
        lid = c.leader()
        pid = c.procs[lid].pid
        c.remove_server(lid)
        assert c.members == tuple(n for n in ("n1", "n2", "n3") if n not in (victim, lid))
        assert wait_gone([pid], 3) == []
        last = c.members[0]
        assert c.wait_for_leader(10) == last
        k.put("x", "3")
        assert k.get("x") == "3"
        with pytest.raises(ValueError, match="last member"):
            c.remove_server(last)


def test_cli_bench_prints_the_figures_and_committed_writes_per_second_last(tmp_path):
    cli = [sys.executable, "-m", "course_lib.net"]
    r = subprocess.run(cli + ["bench", "--writes", "300", "--inflight", "40"], capture_output=True,
                       text=True, cwd=tmp_path, timeout=120)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert re.fullmatch(r"\d+ committed writes/s", lines[-1]), lines
    assert "fsync ON" in lines[0] and "300 writes, 40 in flight" in lines[0]
    assert re.search(r"p50 [\d.]+ ms, p99 [\d.]+ ms", r.stdout)
    leader_line = next(x for x in lines if x.startswith("  ") and " leader " in x)
    assert int(re.search(r"fsyncs=(\d+)", leader_line).group(1)) > 0     # fsync really on
    bad = subprocess.run(cli + ["bench", "--writes", "0"], capture_output=True, text=True,
                         cwd=tmp_path, timeout=30)
    assert bad.returncode == 1 and "writes must be an int >= 1" in bad.stderr
