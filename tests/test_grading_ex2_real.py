"""Exercise 2's node on the real runtime: ``ProcessCluster(core_class=..., kv_factory=...)``
and the check ``ex2.on_real_processes``.

No mocks: every node is an OS process (``python -m course_lib.net.node``) with a TCP port
and an fsynced WAL under ``tmp_path``; the learner's classes reach it by value
(cloudpickle).  The worked solution is loaded from the solution notebook, so the check
and the solution cannot drift apart; the wrong nodes are the solution with one bug.
"""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from course_lib.grading import CheckFailed, load_solution, run_check
from course_lib.grading import ex2
from course_lib.grading.ex2.adapter import LearnerKV
from course_lib.grading.ex2.real_runtime import LearnerKVFactory
from course_lib.net import ProcessCluster
from course_lib.net.client import NodeCrashed
from course_lib.raft import RaftNode
from course_lib.raft.kv import KVStateMachine

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def s2() -> dict:
    return load_solution("ex2_consensus_protocol")


def node_processes(under: Path) -> list:
    """Pids of live ``course_lib.net.node`` processes whose data dir is under ``under``."""
    out = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmd = (proc / "cmdline").read_bytes().split(b"\0")
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if b"course_lib.net.node" in cmd and any(str(under).encode() in c for c in cmd) \
                and state not in ("Z", "X"):
            out.append(int(proc.name))
    return out


def fails(*args, match: str, **kwargs) -> str:
    with pytest.raises(CheckFailed, match=match) as info:
        run_check("Real processes", ex2.on_real_processes, *args, **kwargs).raise_for_failure()
    return str(info.value)


# -- the check ----------------------------------------------------------------------------------
def test_the_worked_solution_runs_on_real_processes_through_a_leader_kill(s2, tmp_path):
    result = run_check("Real processes", ex2.on_real_processes, s2["MyRaftNode"],
                       s2["KVStateMachine"], data_dir=tmp_path / "run")
    print(result.message)
    assert result.passed, result.message
    assert "killed (SIGKILL)" in result.detail and "is linearizable" in result.detail
    assert "every acknowledged write survived" in result.detail
    ops = int(result.detail.split(" client operations completed")[0].rsplit(" ", 1)[1])
    assert ops >= 20
    assert result.seconds < 20, result.message
    assert node_processes(tmp_path) == []
    # the nodes ran the learner's classes, sent to them by value
    logs = "".join((tmp_path / "run" / f"n{i}.log").read_text() for i in (1, 2, 3))
    assert (tmp_path / "run" / "core.pickle").exists() and "leader" in logs


def test_a_node_that_forgets_its_state_across_sigkill_is_rejected(s2, tmp_path):
    class NoRestore(s2["MyRaftNode"]):
        def restore(self, hard_state, snapshot, entries):
            pass                                        # starts from nothing after a crash

    text = fails(NoRestore, s2["KVStateMachine"], data_dir=tmp_path / "run",
                 match=r"killed \(SIGKILL\) as leader of term \d+ .* came back from its data dir "
                       r"with term \d+ and a log up to index 0: restore\(\) must rebuild")
    assert f"kept in {tmp_path / 'run'}" in text
    assert node_processes(tmp_path) == []


def test_a_core_that_raises_in_a_node_process_is_reported_with_its_traceback_at_once(s2, tmp_path):
    class Boom(s2["MyRaftNode"]):
        def propose(self, command):
            raise RuntimeError("boom in propose")

    began = time.monotonic()
    text = fails(Boom, s2["KVStateMachine"], data_dir=tmp_path / "run",
                 match=r"on real processes, node n\d crashed \(exit status 70\)")
    assert time.monotonic() - began < 15, "a crashed node must not wait for timeouts"
    assert "Traceback (most recent call last)" in text and "RuntimeError: boom in propose" in text
    assert 'raise RuntimeError("boom in propose")' in text      # the learner's line
    assert str(tmp_path / "run") in text and ".log" in text
    assert node_processes(tmp_path) == []


def test_the_untouched_node_is_not_written_yet_and_starts_no_process(tmp_path):
    class Untouched(ex2.RaftBase):
        pass

    class KV:
        def apply(self, cmd):
            raise NotImplementedError("check the client's session first")

    began = time.monotonic()
    result = run_check("Real processes", ex2.on_real_processes, Untouched, KV,
                       data_dir=tmp_path / "run")
    assert not result.passed and result.message.startswith(
        "✘ Real processes: not written yet (tick() is not written yet)"), result.message
    assert time.monotonic() - began < 2
    assert not (tmp_path / "run").exists()


def test_a_snapshot_the_runtime_cannot_carry_is_named_before_any_process_starts(s2, tmp_path):
    class DictSnapshots(s2["KVStateMachine"]):
        def snapshot(self):
            return {"data": dict(self.data)}

    text = fails(s2["MyRaftNode"], DictSnapshots, data_dir=tmp_path / "run",
                 match=r"your KVStateMachine.snapshot\(\) returned \{'data'.*no dicts")
    assert "kept in" not in text and not (tmp_path / "run").exists()


def test_a_message_the_runtime_cannot_carry_is_named_before_any_process_starts(s2, tmp_path):
    @dataclass(frozen=True)
    class Hello:
        term: int
        src: str
        dst: str

    class Chatty(s2["MyRaftNode"]):
        def start_election(self):
            super().start_election()
            self.send(Hello(self.current_term, self.id, "n2"))

    fails(Chatty, s2["KVStateMachine"], data_dir=tmp_path / "run",
          match=r"your node sent .*Hello\(term=1, src='n1', dst='n2'\), which the real runtime "
                r"cannot carry: its TCP codec sends only the message dataclasses")
    assert not (tmp_path / "run").exists()


# -- ProcessCluster(core_class=..., kv_factory=...) ----------------------------------------------
def test_bad_core_classes_are_refused_at_construction(tmp_path):
    data = tmp_path / "d"
    with pytest.raises(ValueError, match="core_class must be a class .* got 42"):
        ProcessCluster(3, data_dir=data, core_class=42)
    with pytest.raises(ValueError, match="core_class int lacks tick, step"):
        ProcessCluster(3, data_dir=data, core_class=int)
    with pytest.raises(ValueError, match="kv_factory must be a callable"):
        ProcessCluster(3, data_dir=data, kv_factory="KVStateMachine")
    locked = type("Locked", (RaftNode,), {"lock": threading.Lock()})
    with pytest.raises(ValueError, match=r"cannot send core_class .*Locked.* cloudpickle cannot "
                                         r"pickle it \(TypeError: cannot pickle '_thread.lock'"):
        ProcessCluster(3, data_dir=data, core_class=locked)
    with pytest.raises(ValueError, match="read_mode must be"):
        ProcessCluster(3, data_dir=data, core_class=RaftNode, read_mode="stale")
    assert not data.exists()


def test_the_default_cluster_runs_the_same_command_and_writes_no_pickle(tmp_path):
    with ProcessCluster(3, data_dir=tmp_path / "d") as c:
        peers = ",".join(f"n{i}=127.0.0.1:{c.ports[f'n{i}']}" for i in (1, 2, 3))
        expected = [sys.executable, "-m", "course_lib.net.node", "--id", "n1", "--peers", peers,
                    "--data", str(tmp_path / "d" / "n1"), "--tick-ms", "10", "--election-ms",
                    "300,600", "--heartbeat-ms", "50", "--snapshot-threshold", "1000",
                    "--parent-pid", str(__import__("os").getpid()), "--voters", "n1,n2,n3"]
        assert c._command("n1") == expected
        c.start()
        assert c.client("a").put("x", "1") is None
        assert not (tmp_path / "d" / "core.pickle").exists()


def test_classes_defined_in_a_function_run_in_the_node_processes(tmp_path):
    marker = f"made-in-a-function-{id(tmp_path)}"

    def init(self, *args, **kwargs):
        RaftNode.__init__(self, *args, **kwargs)
        print(f"{self.id}: core {type(self).__name__} {marker}", file=sys.stderr, flush=True)

    Core = type("TypeMadeCore", (RaftNode,), {"__init__": init})    # built by type(...)

    class LocalKV(KVStateMachine):                                   # defined in this function
        def read(self, key):
            return f"{marker}:{super().read(key)}"

    for obj in (Core, LocalKV):
        with pytest.raises((pickle.PicklingError, AttributeError, TypeError)):
            pickle.dumps(obj)                                        # plain pickle cannot
    with ProcessCluster(3, data_dir=tmp_path / "d", core_class=Core, kv_factory=LocalKV,
                        read_mode="read_index") as c:
        c.start()
        k = c.client("alice")
        k.put("x", "1")
        assert k.get("x") == f"{marker}:1"                           # LocalKV.read, in the leader
    for i in (1, 2, 3):
        assert f"n{i}: core TypeMadeCore {marker}" in (tmp_path / "d" / f"n{i}.log").read_text()
    assert node_processes(tmp_path) == []


MAIN_SCRIPT = """
import json, sys, time
sys.path.insert(0, {root!r})
from course_lib.grading import load_solution
from course_lib.grading.ex2 import RequestVoteResponse
from course_lib.grading.ex2.real_runtime import LearnerKVFactory
from course_lib.net import ProcessCluster

s2 = load_solution("ex2_consensus_protocol")


class MainNode(s2["MyRaftNode"]):          # lives in __main__, as in a notebook
    def handle_request_vote(self, m):
        print(f"{{self.id}}: MainNode votes in term {{m.term}}", file=sys.stderr, flush=True)
        super().handle_request_vote(m)


with ProcessCluster(3, data_dir={data!r}, core_class=MainNode,
                    kv_factory=LearnerKVFactory(s2["KVStateMachine"])) as c:
    c.start()
    k = c.client("alice")
    k.put("x", "1")
    k.append("x", "2")
    print(json.dumps({{"module": MainNode.__module__, "x": k.get("x"), "read_mode": c.read_mode}}))
"""


def test_a_class_defined_in_main_runs_in_the_node_processes(tmp_path):
    data = tmp_path / "d"
    out = subprocess.run([sys.executable, "-c", MAIN_SCRIPT.format(root=str(ROOT), data=str(data))],
                         capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result == {"module": "__main__", "x": "12", "read_mode": "log"}
    logs = "".join((data / f"n{i}.log").read_text() for i in (1, 2, 3))
    assert "MainNode votes in term" in logs
    assert node_processes(tmp_path) == []


def test_a_client_op_on_a_crashed_core_raises_at_once_with_the_traceback(s2, tmp_path):
    class Boom(s2["MyRaftNode"]):
        def propose(self, command):
            raise RuntimeError("boom in propose")

    with ProcessCluster(3, data_dir=tmp_path / "d", core_class=Boom,
                        kv_factory=LearnerKVFactory(s2["KVStateMachine"])) as c:
        c.start()
        k = c.client("alice")
        began = time.monotonic()
        with pytest.raises(NodeCrashed, match=r"node n\d crashed \(exit status 70\)") as info:
            k.put("x", "1")
        assert time.monotonic() - began < 3 < c.client_timeout_ms / 1000
        text = str(info.value)
        assert "RuntimeError: boom in propose" in text and str(tmp_path / "d") in text
        assert [(op.input, op.ret) for op in c.history] == [(("put", "x", "1"), None)]
        with pytest.raises(NodeCrashed):
            c.wait_for_leader(1)
    assert node_processes(tmp_path) == []


def test_a_core_that_raises_at_start_fails_start_with_its_traceback(tmp_path):
    class Broken(RaftNode):
        def __init__(self, *args, **kwargs):
            raise RuntimeError("broken at birth")

    began = time.monotonic()
    with ProcessCluster(3, data_dir=tmp_path / "d", core_class=Broken) as c:
        with pytest.raises(ValueError, match=r"node n1 failed to start \(exit 70\): "
                                             r"RuntimeError: broken at birth") as info:
            c.start()
    assert time.monotonic() - began < c.start_timeout_s
    text = str(info.value)
    assert "fatal: n1: building the core" in text and "Traceback" in text
    assert 'raise RuntimeError("broken at birth")' in text and str(tmp_path / "d" / "n1.log") in text
    assert node_processes(tmp_path) == []


def test_learner_kv_factory_wraps_a_new_machine_each_time(s2):
    make = LearnerKVFactory(s2["KVStateMachine"])
    a, b = make(), make()
    assert isinstance(a, LearnerKV) and a.machine is not b.machine
    assert a.session_result("c", 1) == (False, None)


def test_the_lab_plumbing_travels_by_value_so_nodes_do_not_import_the_grading_package(s2, tmp_path):
    """Importing course_lib.grading (nbformat, jsonschema, the whole suite) cost each node
    process about a second of CPU, ten on a busy machine: RaftBase and LearnerKV are sent
    with the learner's classes instead."""
    c = ProcessCluster(3, data_dir=tmp_path / "d", core_class=s2["MyRaftNode"],
                       kv_factory=LearnerKVFactory(s2["KVStateMachine"]))
    path = tmp_path / "core.pickle"
    path.write_bytes(c._core_pickle)
    probe = ("import sys; from course_lib.net.node import load_core; "
             f"core, kv = load_core({str(path)!r}); m = kv(); "
             "print(core.__name__, type(m).__name__, type(m.machine).__name__, "
             "sorted(n for n in sys.modules if n.startswith(('course_lib.grading', 'nbformat'))))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         timeout=30, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["MyRaftNode", "LearnerKV", "KVStateMachine", "[]"]
