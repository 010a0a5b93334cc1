"""Every line of the public SimCluster contract (issue 3), including the ValueErrors."""

from __future__ import annotations

import pytest

from course_lib.check.history import Operation
from course_lib.raft import ClientTimeout, NodeState, SimCluster
from course_lib.sim import TraceEvent


@pytest.fixture
def c():
    c = SimCluster(5, seed=1)
    assert c.run_until(lambda: c.leader() is not None, 2000)
    return c


def test_construction_and_defaults():
    c = SimCluster(5, seed=1)
    assert sorted(c.nodes) == ["n1", "n2", "n3", "n4", "n5"]
    assert c.now == 0
    assert c.config.election_ticks == (30, 60) and c.tick_ms == 5      # 150-300 ms
    assert c.config.heartbeat_ticks * c.tick_ms == 50
    assert c.network.delay_ms == (1.0, 5.0)                              # a few ms
    assert {m for m in NodeState} >= {NodeState.FOLLOWER, NodeState.CANDIDATE, NodeState.LEADER}


def test_time_run_for_and_run_until():
    c = SimCluster(3, seed=2)
    c.run_for(100)
    assert c.now == 100
    assert c.run_until(lambda: c.leader() is not None, 2000) is True
    t = c.now
    assert c.run_until(lambda: False, 50) is False and c.now == t + 50


def test_leader_and_node_views(c):
    lid = c.leader()
    n = c.node(lid)
    assert n.state is NodeState.LEADER and n.alive
    assert n.current_term >= 1 and n.voted_for == lid
    assert len(n.log) >= 1 and n.log[1].term >= 1 and n.log[1].command is None   # the no-op
    c.run_for(100)
    assert n.commit_index >= 1 and n.last_applied == n.commit_index
    for nid in c.nodes:
        f = c.node(nid)
        assert f.state in (NodeState.FOLLOWER, NodeState.LEADER)


def test_leader_is_highest_term_leader(c):
    old = c.leader()
    c.isolate(old)              # the old leader may still believe it leads for a while
    assert c.run_until(lambda: c.leader() != old, 2000)
    assert c.node(c.leader()).current_term > c.node(old).current_term


def test_crash_and_restart(c):
    lid = c.leader()
    c.crash(lid)
    assert not c.node(lid).alive
    assert c.run_until(lambda: c.leader() not in (None, lid), 2000)
    c.restart(lid)
    assert c.node(lid).alive


def test_partition_isolate_heal(c):
    c.partition({"n1", "n2"}, {"n3", "n4", "n5"})
    assert c.run_until(lambda: c.leader() in {"n3", "n4", "n5"}
                       and c.node(c.leader()).current_term >= 1, 2000)
    c.run_for(600)
    assert c.node("n1").state is not NodeState.LEADER and c.node("n2").state is not NodeState.LEADER
    c.heal()
    c.isolate("n3")
    c.run_for(300)
    c.heal()
    assert c.run_until(lambda: c.leader() is not None, 2000)


def test_network_knobs(c):
    c.network.drop_rate = 0.2
    c.network.duplicate_rate = 0.05
    c.network.delay_ms = (5, 50)
    c.network.reorder = True
    k = c.client("alice")
    k.put("x", "1")
    assert k.get("x") == "1"
    assert c.network.dropped > 0


def test_timeout_now(c):
    c.run_for(200)
    target = next(n for n in c.nodes if n != c.leader())
    c.timeout_now(target)
    assert c.node(target).state in (NodeState.CANDIDATE, NodeState.LEADER)
    assert c.run_until(lambda: c.leader() == target, 1000)


def test_add_and_remove_server(c):
    c.add_server("n6")
    assert "n6" in c.members and c.node("n6").alive
    c.remove_server("n1")
    assert "n1" not in c.members
    assert c.run_until(lambda: c.leader() is not None, 2000)
    k = c.client("alice")
    k.put("x", "1")
    assert c.run_until(lambda: c.node("n6").kv.read("x") == "1", 1000)


def test_client_blocking_calls(c):
    k = c.client("alice")
    assert k.put("x", "1") is None
    assert k.get("x") == "1"
    assert k.append("x", "2") is None
    assert k.get("x") == "12"
    assert k.get("missing") == ""
    assert c.client("alice") is k


def test_client_submit_non_blocking_and_concurrent(c):
    a, b = c.client("a"), c.client("b")
    op1 = a.submit(("put", "x", "1"))
    op2 = b.submit(("append", "y", "z"))
    assert not op1.done and not op2.done
    assert c.run_until(lambda: op1.done and op2.done, 2000)
    assert op1.result is None and op2.result is None and not op1.timed_out


def test_client_timeout_raises_and_history_records_unknown_outcome(c):
    k = c.client("alice")
    for n in c.nodes:
        c.crash(n)
    with pytest.raises(ClientTimeout):
        k.put("x", "1", timeout_ms=300)
    op = c.history[-1]
    assert op.ret is None and op.output is None


def test_history_is_a_list_of_operations(c):
    k = c.client("alice")
    k.put("x", "1")
    k.get("x")
    h = c.history
    assert all(isinstance(op, Operation) for op in h)
    put, get = h
    assert put.client_id == "alice" and put.input == ("put", "x", "1") and put.output is None
    assert get.input == ("get", "x") and get.output == "1"
    assert put.call <= put.ret <= get.call <= get.ret


def test_history_of_crashed_client_is_unknown(c):
    k = c.client("bob")
    c.isolate(c.leader())
    op = k.submit(("put", "x", "1"))
    c.crash("bob")
    assert op.done and op.timed_out
    assert c.history[-1].ret is None


def test_safety_violations_and_trace(c):
    assert c.safety_violations() == []
    assert len(c.trace) > 0 and isinstance(c.trace[0], TraceEvent)
    e = c.trace[-1]
    assert isinstance(e.time, float) and isinstance(e.kind, str)
    assert isinstance(c.trace_digest(), str) and len(c.trace_digest()) == 64


def test_in_flight_and_states(c):
    c.run_for(1)
    inf = c.in_flight()
    assert all(m.src in c.nodes or m.dst in c.nodes for m in inf)
    s = c.states()
    assert set(s) == set(c.nodes) and s[c.leader()]["state"] == "leader"


def test_bad_arguments_raise_value_error():
    c = SimCluster(3, seed=1)
    with pytest.raises(ValueError, match="unknown server 'n9'"):
        c.node("n9")
    with pytest.raises(ValueError, match="unknown node 'zz'"):
        c.crash("zz")
    c.crash("n1")
    with pytest.raises(ValueError, match="already down"):
        c.crash("n1")
    with pytest.raises(ValueError, match="is up"):
        c.restart("n2")
    with pytest.raises(ValueError, match="non-negative"):
        c.run_for(-1)
    with pytest.raises(ValueError, match="timeout_ms"):
        c.run_until(lambda: True, -5)
    with pytest.raises(ValueError, match="overlap"):
        c.partition({"n1", "n2"}, {"n2", "n3"})
    with pytest.raises(ValueError, match="unknown server 'n7'"):
        c.partition({"n1"}, {"n7"})
    with pytest.raises(ValueError, match="unknown server"):
        c.isolate("n8")
    with pytest.raises(ValueError, match="down"):
        c.timeout_now("n1")
    with pytest.raises(ValueError, match="already a member"):
        c.add_server("n2")
    with pytest.raises(ValueError, match="unknown server"):
        c.remove_server("n9")
    with pytest.raises(ValueError, match="drop_rate"):
        c.network.drop_rate = -0.1
    with pytest.raises(ValueError, match="delay"):
        c.network.delay_ms = (-1, 5)
    with pytest.raises(ValueError, match="operation"):
        c.client("alice").submit(("delete", "x"))
    with pytest.raises(ValueError, match="server id"):
        c.client("n2")
    with pytest.raises(ValueError, match="cluster size"):
        SimCluster(0)
    k = c.client("bob")
    k.submit(("put", "x", "1"))
    with pytest.raises(ValueError, match="in flight"):
        k.submit(("put", "x", "2"))


def test_same_seed_same_trace():
    def run():
        c = SimCluster(5, seed=42)
        c.run_until(lambda: c.leader() is not None, 2000)
        k = c.client("alice")
        k.put("x", "1")
        c.crash(c.leader())
        k.append("x", "2")
        return c.trace_digest()
    assert run() == run()
