"""The course's ZooKeeper ensemble: real JVMs, real kazoo clients, real failures."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from kazoo.protocol.states import KazooState

from course_lib.zk import (Ensemble, ZooKeeperNotInstalled, ZooKeeperUnavailable, connect,
                           four_letter_word, free_base_port, parse_hosts, parse_mntr)


def process_running(pid: int) -> bool:
    """True while ``pid`` runs (a zombie, killed but not yet reaped, does not run)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def run_cli(*args, env_dir, port):
    result = subprocess.run(
        [sys.executable, "-m", "course_lib.zk", "--dir", str(env_dir), "--port", str(port), *args],
        capture_output=True, text=True, timeout=90)
    return result


def test_cli_start_status_kill_restart_stop(tmp_path):
    port = free_base_port(3, start=31181)
    started = run_cli("start", "--servers", "3", env_dir=tmp_path, port=port)
    assert started.returncode == 0, started.stderr
    try:
        status = run_cli("status", "--json", env_dir=tmp_path, port=port)
        servers = json.loads(status.stdout)
        modes = sorted(s["mode"] for s in servers)
        assert modes == ["follower", "follower", "leader"], modes
        assert all(s["pid"] for s in servers)
        assert "leader" in run_cli("status", env_dir=tmp_path, port=port).stdout

        leader = next(s["id"] for s in servers if s["mode"] == "leader")
        pid = next(s["pid"] for s in servers if s["id"] == leader)
        assert run_cli("kill", str(leader), env_dir=tmp_path, port=port).returncode == 0
        assert not process_running(pid)  # killing a server is killing its real process
        again = run_cli("kill", str(leader), env_dir=tmp_path, port=port)
        assert again.returncode == 1 and "already down" in again.stderr

        restarted = run_cli("restart", str(leader), env_dir=tmp_path, port=port)
        assert restarted.returncode == 0, restarted.stderr
        servers = json.loads(run_cli("status", "--json", env_dir=tmp_path, port=port).stdout)
        assert sum(s["mode"] == "leader" for s in servers) == 1
        assert next(s["mode"] for s in servers if s["id"] == leader) == "follower"
    finally:
        stopped = run_cli("stop", env_dir=tmp_path, port=port)
    assert stopped.returncode == 0
    servers = json.loads(run_cli("status", "--json", env_dir=tmp_path, port=port).stdout)
    assert [s["mode"] for s in servers] == ["down"] * 3


def test_leader_crash_keeps_client_session_and_ephemeral_node(private_ensemble):
    ensemble = private_ensemble
    client = connect(ensemble.hosts, timeout=4.0)
    states = []
    client.add_listener(states.append)
    try:
        client.create("/alive", b"me", ephemeral=True)
        session = client.client_id
        old_leader = ensemble.leader()
        ensemble.kill(old_leader)
        statuses = ensemble.wait_until(
            lambda st: any(s.mode == "leader" for s in st), timeout=20, what="a new leader")
        new_leader = next(s.id for s in statuses if s.mode == "leader")
        assert new_leader != old_leader
        assert [s.mode for s in statuses if s.id == old_leader] == ["down"]

        assert client.retry(client.get, "/alive")[0] == b"me"  # retried through reconnection
        assert client.client_id == session
        assert KazooState.LOST not in states

        ensemble.restart(old_leader)
        modes = {s.id: s.mode for s in ensemble.status()}
        assert modes[old_leader] == "follower"
        assert list(modes.values()).count("leader") == 1
    finally:
        client.stop()
        client.close()


def test_connect_to_nothing_fails_fast_with_what_to_run():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, never listening: connections are refused
        began = time.monotonic()
        with pytest.raises(ZooKeeperUnavailable) as error:
            connect(f"127.0.0.1:{port}")
        assert time.monotonic() - began < 10
    assert "nothing is listening" in str(error.value)
    assert "python -m course_lib.zk start" in str(error.value)


def test_connect_to_a_silent_listener_gives_up_in_under_10_s():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(5)
        accepted = []
        stop = threading.Event()

        def accept_and_say_nothing():
            server.settimeout(0.2)
            while not stop.is_set():
                try:
                    accepted.append(server.accept()[0])
                except OSError:
                    pass

        thread = threading.Thread(target=accept_and_say_nothing, daemon=True)
        thread.start()
        began = time.monotonic()
        try:
            with pytest.raises(ZooKeeperUnavailable) as error:
                connect(f"127.0.0.1:{server.getsockname()[1]}", connect_timeout=5)
            assert time.monotonic() - began < 10
        finally:
            stop.set()
            thread.join()
            for conn in accepted:
                conn.close()
    assert "course_lib.zk status" in str(error.value)


def test_zk_hosts_environment_variable_wins(session_ensemble, monkeypatch):
    monkeypatch.setenv("ZK_HOSTS", "127.0.0.1:1")
    with pytest.raises(ZooKeeperUnavailable, match="127.0.0.1:1"):
        connect()
    monkeypatch.setenv("ZK_HOSTS", session_ensemble.hosts)
    client = connect()
    try:
        assert client.connected
    finally:
        client.stop()
        client.close()


def test_connect_without_arguments_uses_the_course_ensemble(session_ensemble):
    client = connect()
    try:
        client.ensure_path("/course/check")
        assert client.exists("/course/check") is not None
        ports = {p for _, p in parse_hosts(session_ensemble.hosts)}
        assert client._connection._socket.getpeername()[1] in ports
    finally:
        client.stop()
        client.close()


def test_missing_java_is_reported_with_the_install_command(tmp_path, monkeypatch):
    monkeypatch.setenv("JAVA", str(tmp_path / "no-java-here"))
    began = time.monotonic()
    with pytest.raises(ZooKeeperNotInstalled, match="apt-get install"):
        Ensemble(1, base_dir=tmp_path, base_port=free_base_port(1, start=33181)).start()
    assert time.monotonic() - began < 10


def test_session_ensemble_reports_modes_and_whitelisted_words(session_ensemble):
    # A lesson running beside this test may be restarting a server: wait for all three.
    statuses = session_ensemble.wait_until(lambda st: all(s.serving for s in st), timeout=30)
    assert sorted(s.mode for s in statuses) == ["follower", "follower", "leader"]
    port = statuses[0].client_port
    assert four_letter_word("127.0.0.1", port, "ruok") == "imok"
    stats = parse_mntr(four_letter_word("127.0.0.1", port, "mntr"))
    assert stats["zk_server_state"] in ("leader", "follower")
    assert stats["zk_znode_count"] >= 1


def test_bad_arguments_raise_value_error(session_ensemble):
    with pytest.raises(ValueError, match="no ZooKeeper server 7"):
        session_ensemble.kill(7)
    running = session_ensemble.ids[0]
    with pytest.raises(ValueError, match="already running"):
        session_ensemble.restart(running)
    with pytest.raises(ValueError, match="servers must be"):
        Ensemble(0)
    with pytest.raises(ValueError, match="bad ZooKeeper address"):
        connect("localhost:notaport")
    with pytest.raises(ValueError, match="timeout"):
        connect(timeout=0)
    with pytest.raises(ValueError, match="unknown four-letter word"):
        four_letter_word("127.0.0.1", 1, "kill")


def test_single_server_runs_standalone(tmp_path):
    ensemble = Ensemble(1, base_dir=tmp_path, base_port=free_base_port(1, start=34181))
    ensemble.start()
    try:
        assert [s.mode for s in ensemble.status()] == ["standalone"]
        assert ensemble.leader() == 1
    finally:
        ensemble.stop()
    assert not ensemble.is_running()


def test_two_starts_at_once_spawn_each_server_once(tmp_path):
    """Binder's start script and a lesson's first cell may start the ensemble together:
    each server is spawned once, and the pid files name the servers that run."""
    port = free_base_port(3, start=36181)
    at = time.time() + 3.0   # both call start() at this instant, imports done
    script = ("import sys, time; from course_lib.zk import Ensemble; "
              "e = Ensemble(3, base_dir=sys.argv[1], base_port=int(sys.argv[2])); "
              "time.sleep(max(0.0, float(sys.argv[3]) - time.time())); e.start()")
    starts = [subprocess.Popen([sys.executable, "-c", script, str(tmp_path), str(port), str(at)],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
              for _ in range(2)]
    try:
        outputs = [p.communicate(timeout=90)[0] for p in starts]
        assert [p.returncode for p in starts] == [0, 0], outputs
        ensemble = Ensemble(3, base_dir=tmp_path, base_port=port)
        servers = _servers_under(tmp_path)
        assert sorted(servers) == sorted(ensemble.pid(i) for i in ensemble.ids), servers
        assert all(s.serving for s in ensemble.status())
    finally:
        Ensemble(3, base_dir=tmp_path, base_port=port).stop()
        for pid in _servers_under(tmp_path):   # a duplicate no pid file names (the bug)
            os.kill(pid, signal.SIGKILL)


def _servers_under(folder) -> list[int]:
    return [pid for pid in map(int, filter(str.isdigit, (p.name for p in Path("/proc").iterdir())))
            if str(folder) in _cmdline(pid) and "QuorumPeerMain" in _cmdline(pid)]


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""
