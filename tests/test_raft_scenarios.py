"""Named Raft scenarios on the simulated cluster (after MIT 6.824's Raft tests and the
Raft paper's figures).  Every scenario ends by checking Raft's safety properties."""

from __future__ import annotations

import random

import pytest

from course_lib.raft import (
    AppendEntriesResponse, InstallSnapshot, NodeState, NotLeader, SimCluster,
)
from course_lib.raft.campaign import ClosedLoopClients, check_appends

try:
    from course_lib.check import check, kv
except ImportError:                      # the checker is optional
    check = kv = None


def wait_leader(c: SimCluster, timeout_ms: float = 3000) -> str:
    assert c.run_until(lambda: c.leader() is not None, timeout_ms), "no leader elected"
    return c.leader()


def assert_safe(c: SimCluster) -> None:
    assert c.safety_violations() == []


def assert_linearizable(c: SimCluster) -> None:
    if check is None:
        return
    res = check(kv(), c.history, timeout=30)
    assert res.ok is True, res.explain()


def converged(c: SimCluster, nodes=None) -> bool:
    """All (given, live) servers applied the same prefix as the leader."""
    lid = c.leader()
    if lid is None:
        return False
    target = c.node(lid).commit_index
    nodes = nodes or [n for n in c.members if c.node(n).alive]
    return all(c.node(n).last_applied >= target for n in nodes)


def kv_equal(c: SimCluster, nodes) -> bool:
    datas = [c.node(n).kv.data for n in nodes]
    return all(d == datas[0] for d in datas)


def propose_on_leader(c: SimCluster, command) -> bool:
    """Start(): append a raw command on the leader's core (no client), if there is one."""
    lid = c.leader()
    if lid is None:
        return False
    from course_lib.raft import ClientCommand
    host = c.node(lid)
    try:
        host.core.propose(ClientCommand("raw", random.getrandbits(32), ("put", "raw", str(command))))
    except NotLeader:
        return False
    host.poke()
    return True


# -- elections ----------------------------------------------------------------------------

def test_initial_election():
    c = SimCluster(3, seed=1)
    lid = wait_leader(c, 1000)
    term = c.node(lid).current_term
    c.run_for(500)
    assert c.leader() == lid and c.node(lid).current_term == term
    assert {c.node(n).current_term for n in c.members} == {term}
    assert_safe(c)


def test_reelection_after_leader_is_cut_off():
    c = SimCluster(3, seed=2)
    old = wait_leader(c)
    c.isolate(old)
    assert c.run_until(lambda: c.leader() not in (None, old), 2000)
    new = c.leader()
    assert c.node(new).current_term > c.node(old).current_term
    c.heal()                                   # the old leader rejoins: it must not disrupt
    c.run_for(500)
    assert c.leader() == new and c.node(old).state is NodeState.FOLLOWER
    # cut the new leader and one more: no quorum among the last one
    other = next(n for n in c.members if n not in (new, old))
    c.isolate(new)
    c.isolate(other)
    c.run_for(1000)
    assert c.node(old).state is not NodeState.LEADER
    c.heal()
    wait_leader(c)
    assert_safe(c)


def test_no_leader_without_a_quorum():
    c = SimCluster(5, seed=3)
    lid = wait_leader(c)
    followers = [n for n in c.members if n != lid]
    c.partition({lid, followers[0]}, set(followers[1:]))
    # the majority side elects; the minority's old leader steps down (CheckQuorum)
    assert c.run_until(lambda: c.leader() in followers[1:], 2000)
    c.run_for(700)
    assert c.node(lid).state is not NodeState.LEADER
    for n in followers[1:]:
        c.crash(n)
    c.run_for(2000)
    assert c.leader() is None
    assert_safe(c)


@pytest.mark.parametrize("pre_vote", [True, False])
def test_rejoining_partitioned_follower_does_not_depose_a_healthy_leader(pre_vote):
    """PreVote + CheckQuorum (thesis §9.6): an isolated follower cannot win a pre-vote,
    so its term stays put and its return is harmless.  Without them it inflates its
    term and, on rejoining, forces the healthy leader to step down."""
    c = SimCluster(5, seed=21, pre_vote=pre_vote, check_quorum=pre_vote)
    lid = wait_leader(c)
    term = c.node(lid).current_term
    f = next(n for n in c.members if n != lid)
    c.isolate(f)
    c.run_for(2000)
    c.heal()
    c.run_for(1000)
    if pre_vote:
        assert c.node(f).current_term == term
        assert c.leader() == lid and c.node(lid).current_term == term
    else:
        assert c.node(f).current_term > term + 3       # it kept campaigning alone
        assert c.node(c.leader()).current_term > term  # and deposed the leader
    assert_safe(c)


def test_no_spurious_elections_in_10s_without_faults():
    c = SimCluster(5, seed=4)
    lid = wait_leader(c)
    term = c.node(lid).current_term
    changes = len(c.leader_changes)
    c.run_for(10_000)
    assert c.leader() == lid and c.node(lid).current_term == term
    assert len(c.leader_changes) == changes
    assert_safe(c)


def test_leadership_transfer_and_forced_election():
    c = SimCluster(5, seed=5)
    lid = wait_leader(c)
    target = next(n for n in c.members if n != lid)
    assert c.transfer_leadership(target)
    assert c.leader() == target
    c.run_for(100)                             # let every log catch up with the new leader
    other = next(n for n in c.members if n not in (lid, target))
    c.timeout_now(other)                       # forced election: an up-to-date node wins
    assert c.run_until(lambda: c.leader() == other, 1000)
    assert_safe(c)


# -- agreement ----------------------------------------------------------------------------

def test_basic_agreement():
    c = SimCluster(3, seed=6)
    wait_leader(c)
    k = c.client("alice")
    for i in range(10):
        k.put(f"k{i}", str(i))
    assert c.run_until(lambda: converged(c), 1000)
    assert kv_equal(c, c.members)
    assert c.node(c.leader()).kv.data == {f"k{i}": str(i) for i in range(10)}
    assert_safe(c)


def test_agreement_despite_a_failed_follower():
    c = SimCluster(3, seed=7)
    lid = wait_leader(c)
    down = next(n for n in c.members if n != lid)
    c.crash(down)
    k = c.client("alice")
    for i in range(5):
        k.append("x", str(i))
    assert k.get("x") == "01234"
    c.restart(down)
    assert c.run_until(lambda: converged(c), 2000)
    assert c.node(down).kv.read("x") == "01234"
    assert_safe(c)


def test_no_agreement_without_a_majority():
    c = SimCluster(5, seed=8, check_quorum=False)
    lid = wait_leader(c)
    k = c.client("alice")
    k.put("x", "1")
    before = c.node(lid).commit_index
    followers = [n for n in c.members if n != lid][:3]
    for n in followers:
        c.crash(n)
    op = k.submit(("put", "x", "2"))
    c.run_for(1000)
    assert not op.done and c.node(lid).commit_index == before
    assert c.node(lid).log.last_index > before          # appended, not committed
    for n in followers:
        c.restart(n)
    assert c.run_until(lambda: op.done, 3000) and not op.timed_out
    assert k.get("x") == "2"
    assert_safe(c)


def test_reads_through_the_log_are_linearizable_too():
    c = SimCluster(3, seed=22, read_mode="log")
    lid = wait_leader(c)
    k = c.client("alice")
    k.put("x", "1")
    before = c.node(lid).log.last_index
    assert k.get("x") == "1"
    assert c.node(c.leader()).log.last_index == before + 1      # the read went through the log
    c.isolate(c.leader())
    assert k.get("x") == "1"
    assert_linearizable(c)
    assert_safe(c)


def test_concurrent_proposals():
    c = SimCluster(5, seed=9)
    wait_leader(c)
    clients = [c.client(f"c{i}") for i in range(5)]
    ops = [k.submit(("append", "log", f"{k.node_id};")) for k in clients]
    assert c.run_until(lambda: all(op.done for op in ops), 2000)
    value = clients[0].get("log")
    assert sorted(t for t in value.split(";") if t) == sorted(k.node_id for k in clients)
    assert_linearizable(c)
    assert_safe(c)


def test_rejoin_of_a_stale_leader():
    c = SimCluster(3, seed=10)
    old = wait_leader(c)
    k = c.client("alice")
    k.put("x", "1")
    c.isolate(old)
    for i in range(3):                         # uncommitted: the old leader is alone
        propose_on_leader(c, f"lost{i}")
    stale_last = c.node(old).log.last_index
    assert c.run_until(lambda: c.leader() not in (None, old), 2000)
    k.put("x", "2")
    c.heal()
    assert c.run_until(lambda: converged(c), 2000)
    assert c.node(old).state is NodeState.FOLLOWER
    log_old = [(e.term, e.command) for e in c.node(old).log]
    log_new = [(e.term, e.command) for e in c.node(c.leader()).log]
    assert log_old[:len(log_new)] == log_new[:len(log_old)]
    assert stale_last > 0 and c.node(old).kv.read("x") == "2"
    assert not any("lost" in str(e.command) for e in c.node(old).log)   # overwritten
    assert_safe(c)


def test_fast_backup_over_long_divergent_logs():
    c = SimCluster(5, seed=11, max_entries_per_message=500)
    old = wait_leader(c)
    c.client("alice").put("x", "0")
    f1 = next(n for n in c.members if n != old)
    rest = [n for n in c.members if n not in (old, f1)]
    c.partition({old, f1}, set(rest))
    for i in range(50):                        # 50 entries that will never commit
        propose_on_leader(c, f"lost{i}")
    c.run_for(50)
    assert c.run_until(lambda: c.leader() in rest, 2000)
    k = c.client("bob")
    for i in range(20):
        k.append("y", ".")
    c.partition({rest[0]}, {old, f1, rest[1], rest[2]})     # a new leader for the next round
    assert c.run_until(lambda: c.leader() in (old, f1, rest[1], rest[2]) and c.leader() != rest[0], 3000)
    mark = len(c.trace)
    c.heal()
    assert c.run_until(lambda: converged(c), 3000)
    rejections = [e for e in c.trace[mark:]
                  if e.kind == "deliver" and isinstance(e.details[1], AppendEntriesResponse)
                  and not e.details[1].success]
    assert len(rejections) <= 8, f"{len(rejections)} rejections to repair the logs"
    assert_safe(c)


def test_bounded_rpc_counts():
    c = SimCluster(3, seed=12)
    wait_leader(c)
    assert c.network.sent < 40, f"{c.network.sent} messages to elect a leader"
    k = c.client("alice")
    k.put("warm", "up")
    sent0, t0 = c.network.sent, c.now
    for i in range(10):
        k.put("x", str(i))
    elapsed = c.now - t0
    heartbeats = 2 * 2 * (elapsed / 50 + 1)          # to and from each follower
    per_op = 2 + 2 * 2                               # request, reply, 2 appends, 2 answers
    assert c.network.sent - sent0 <= 10 * per_op + heartbeats + 10
    assert_safe(c)


def test_persistence_across_crashing_all_nodes():
    c = SimCluster(3, seed=13)
    wait_leader(c)
    k = c.client("alice")
    for i in range(5):
        k.append("x", str(i))
    c.run_for(200)
    terms = {n: c.node(n).current_term for n in c.members}
    lasts = {n: c.node(n).log.last_index for n in c.members}
    for n in c.members:
        c.crash(n)
    for n in c.members:
        assert c.node(n).current_term == terms[n] and c.node(n).log.last_index == lasts[n]
        assert c.node(n).commit_index == 0        # volatile
    c.run_for(500)
    for n in c.members:
        c.restart(n)
    wait_leader(c)
    assert k.get("x") == "01234"
    k.append("x", "5")
    assert k.get("x") == "012345"
    assert_safe(c)


# -- Figure 8 -----------------------------------------------------------------------------

@pytest.mark.parametrize("unsafe", [False, True])
def test_figure_8_scripted(unsafe):
    """The paper's Figure 8, step by step.  Counting replicas of an older-term entry
    (the unsafe rule) commits X at (c); (d) overwrites it: safety is broken.  With the
    §5.4.2 rule X is not committed at (c), and (d) may overwrite it."""
    from course_lib.raft.scenarios import figure8
    c = SimCluster(5, seed=1, pre_vote=False, check_quorum=False, max_entries_per_message=1,
                   unsafe_commit_old_terms=unsafe)
    r = figure8(c)
    assert r["x_committed_in_c"] is unsafe
    assert r["final_entry"].command is None and r["final_entry"].term > 2   # (b)'s leader's entry
    if unsafe:
        assert any("leader completeness" in v or "state machine safety" in v for v in r["violations"])
    else:
        assert r["violations"] == []


def _figure8(c: SimCluster, rng: random.Random, iterations: int, unreliable: bool) -> None:
    for i in range(iterations):
        propose_on_leader(c, i)
        c.run_for(rng.uniform(0, 13) if rng.random() < 0.9 else rng.uniform(0, 500))
        lid = c.leader()
        if lid is not None and rng.random() < 0.5:
            if unreliable:
                c.isolate(lid)
            else:
                c.crash(lid)
        if unreliable and rng.random() < 0.3:
            c.heal()
        down = [n for n in c.members if not c.node(n).alive]
        if len(down) > len(c.members) // 2 or (down and rng.random() < 0.3):
            c.restart(rng.choice(down))
    for n in c.members:
        if not c.node(n).alive:
            c.restart(n)
    c.heal()
    c.network.drop_rate = c.network.duplicate_rate = 0.0
    c.network.reorder = False
    k = c.client("final")
    k.put("final", "yes", timeout_ms=10_000)
    assert c.run_until(lambda: converged(c), 3000)
    assert kv_equal(c, c.members)


@pytest.mark.parametrize("seed", range(14, 19))
def test_figure_8(seed):
    """§5.4.2: entries of older terms are never committed by counting; crashes of
    leaders at random moments never lose a committed entry."""
    c = SimCluster(5, seed=seed, raise_on_violation=True)
    wait_leader(c)
    _figure8(c, random.Random(seed), 1000, unreliable=False)
    assert len(c.leader_changes) > 20
    assert_safe(c)


@pytest.mark.parametrize("seed", range(15, 20))
def test_figure_8_unreliable_network(seed):
    c = SimCluster(5, seed=seed, raise_on_violation=True)
    c.network.drop_rate = 0.1
    c.network.duplicate_rate = 0.05
    c.network.reorder = True
    c.network.delay_ms = (1, 30)
    wait_leader(c)
    _figure8(c, random.Random(seed), 1000, unreliable=True)
    assert len(c.leader_changes) > 5
    assert_safe(c)


# -- churn and clients -----------------------------------------------------------------

@pytest.mark.parametrize("seed", [16, 116, 216])
def test_churn(seed):
    c = SimCluster(5, seed=seed, raise_on_violation=True, client_timeout_ms=1000)
    wait_leader(c)
    rng = random.Random(seed)
    work = ClosedLoopClients(c, 3, random.Random(1))
    for _ in range(40):
        c.run_for(rng.uniform(20, 200))
        n = rng.choice(c.members)
        h = c.node(n)
        r = rng.random()
        alive = sum(c.node(x).alive for x in c.members)
        if r < 0.3 and h.alive and alive > 3:
            c.crash(n)
        elif r < 0.5 and not h.alive:
            c.restart(n)
        elif r < 0.7:
            c.isolate(n)
        else:
            c.heal()
    c.heal()
    for n in c.members:
        if not c.node(n).alive:
            c.restart(n)
    c.run_for(1000)
    work.running = False
    assert c.run_until(lambda: all(k.current.done for k in work.clients), 2000)
    done = [op for op in c.history if op.ret is not None]
    assert len(done) > 50
    assert check_appends(c.history, c.node(wait_leader(c)).kv.data) == []
    assert_linearizable(c)
    assert_safe(c)


def test_exactly_once_client_retries():
    c = SimCluster(3, seed=17, client_retry_ms=40)
    lid = wait_leader(c)
    k = c.client("alice")
    # replies get lost and duplicated: the client retries requests that already applied
    for n in c.members:
        c.network.set_link(n, "alice", drop_rate=0.4, duplicate_rate=0.3)
    c.network.set_link("alice", lid, duplicate_rate=0.5)
    for i in range(15):
        if i == 7:
            c.crash(c.leader())                # and the leader dies mid-way
        k.append("x", f"{i};")
    c.network.clear_links()
    tokens = k.get("x").split(";")[:-1]
    assert tokens == [str(i) for i in range(15)]
    assert_linearizable(c)
    assert_safe(c)


# -- snapshots ---------------------------------------------------------------------------

def test_snapshot_install_to_a_lagging_follower():
    c = SimCluster(3, seed=18, snapshot_threshold=10)
    lid = wait_leader(c)
    lag = next(n for n in c.members if n != lid)
    c.crash(lag)
    k = c.client("alice")
    for i in range(40):
        k.put(f"k{i % 7}", str(i))
    assert c.node(lid).log.snapshot_index > 0
    c.restart(lag)
    assert c.run_until(lambda: converged(c), 2000)
    assert c.node(lag).snapshots_installed >= 1
    assert kv_equal(c, c.members)
    assert_safe(c)


def test_crash_during_snapshot_install():
    c = SimCluster(3, seed=19, snapshot_threshold=10)
    lid = wait_leader(c)
    lag = next(n for n in c.members if n != lid)
    c.crash(lag)
    k = c.client("alice")
    for i in range(30):
        k.append("x", ".")
    c.restart(lag)
    # crash the follower while a snapshot is on its way to it
    assert c.run_until(lambda: any(isinstance(m.msg, InstallSnapshot) for m in c.in_flight(dst=lag)), 1000)
    c.crash(lag)
    c.run_for(100)
    c.restart(lag)
    # and the leader right after it sends the next one
    assert c.run_until(lambda: any(isinstance(m.msg, InstallSnapshot) for m in c.in_flight(dst=lag)), 1000)
    c.crash(lid)
    k.append("x", "!")
    c.restart(lid)
    assert c.run_until(lambda: converged(c), 3000)
    assert c.node(lag).kv.read("x") == "." * 30 + "!"
    assert kv_equal(c, c.members)
    assert_safe(c)


# -- membership ---------------------------------------------------------------------------

def test_add_and_remove_servers_under_load():
    c = SimCluster(3, seed=20, snapshot_threshold=20)
    wait_leader(c)
    work = ClosedLoopClients(c, 3, random.Random(20))
    c.run_for(200)
    c.add_server("n4")
    c.add_server("n5")
    assert c.members == ("n1", "n2", "n3", "n4", "n5")
    c.run_for(200)
    c.remove_server("n1")
    c.remove_server(c.leader())                # the leader removes itself and steps down
    c.run_for(500)
    work.running = False
    assert c.run_until(lambda: all(k.current.done for k in work.clients), 3000)
    assert len(c.members) == 3
    lid = wait_leader(c)
    assert lid in c.members
    assert c.run_until(lambda: converged(c), 2000)
    assert kv_equal(c, c.members)
    assert sum(op.ret is not None for op in c.history) > 30
    assert_linearizable(c)
    assert_safe(c)
