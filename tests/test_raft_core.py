"""One test per Raft rule, on the sans-I/O core alone (no simulator).

Each test builds RaftNode objects, feeds them ticks and messages by hand and reads
what they ask to persist, send and apply.
"""

from __future__ import annotations

import random

import pytest

from course_lib.raft import (
    AppendEntries, AppendEntriesResponse, ConfChange, ConfChangeInProgress, Entry,
    EntryKind, HardState, InstallSnapshot, InstallSnapshotResponse, KVStateMachine, ClientCommand,
    MemoryStorage, NodeState, NotLeader, RaftConfig, RaftNode, RequestVote,
    RaftError, RequestVoteResponse, SafetyViolation, TimeoutNow,
)

IDS = ("n1", "n2", "n3")
CFG = RaftConfig(election_ticks=(10, 20), heartbeat_ticks=3, pre_vote=False, check_quorum=False)


def mk(nid="n1", voters=IDS, cfg=CFG, seed=0, storage=None) -> RaftNode:
    return RaftNode(nid, voters, rng=random.Random(seed), config=cfg, storage=storage)


def take(node):
    """A synchronous driver's turn: take the Ready, handle it, advance it at once."""
    rd = node.ready()
    node.advance(rd)
    return rd


def persist(node, storage):
    rd = take(node)
    if rd.snapshot is not None:
        storage.save_snapshot(rd.snapshot)
    if rd.entries:
        storage.append(rd.entries)
    if rd.hard_state is not None:
        storage.save_hard_state(rd.hard_state)
    return rd


def msgs(node, kind=None):
    rd = take(node)
    return [m for m in rd.messages if kind is None or isinstance(m, kind)]


def route(nodes: dict, pending: list, drop=lambda m: False, limit=10_000):
    """Deliver messages (and the replies they cause) until the network is quiet."""
    n = 0
    while pending:
        m = pending.pop(0)
        n += 1
        assert n < limit, "message storm"
        if drop(m) or m.dst not in nodes:
            continue
        nodes[m.dst].step(m)
        pending.extend(take(nodes[m.dst]).messages)


def elect(nodes: dict, nid: str):
    """Make ``nid`` leader by an immediate election, and let its no-op commit."""
    node = nodes[nid]
    node.campaign(pre_vote=False)
    route(nodes, list(take(node).messages))
    assert node.state is NodeState.LEADER
    return node


def elect_only(nodes: dict, nid: str):
    """Make ``nid`` leader; its first AppendEntries stay unsent in its Ready."""
    node = nodes[nid]
    node.campaign(pre_vote=False)
    for m in take(node).messages:
        nodes[m.dst].step(m)
        for r in take(nodes[m.dst]).messages:
            node.step(r)
    assert node.state is NodeState.LEADER
    return node


def cluster(ids=IDS, cfg=CFG):
    return {i: mk(i, ids, cfg, seed=k) for k, i in enumerate(ids)}


def fill(node: RaftNode, terms: list[int]):
    """Give ``node`` a log with one entry per term in ``terms``."""
    for t in terms:
        node.log.append(Entry(t, node.log.last_index + 1, ("put", "k", str(t))))
    node.current_term = max([node.current_term] + terms)


# -- §5.2 leader election -----------------------------------------------------------------

def test_election_timeout_is_randomized_within_bounds():
    timeouts = {mk(seed=s).randomized_timeout for s in range(50)}
    assert min(timeouts) >= 10 and max(timeouts) <= 20
    assert len(timeouts) > 5


def test_follower_becomes_candidate_after_election_timeout():
    n = mk()
    for _ in range(n.randomized_timeout - 1):
        n.tick()
    assert n.state is NodeState.FOLLOWER
    n.tick()
    assert n.state is NodeState.CANDIDATE


def test_candidate_increments_term_votes_for_itself_and_requests_votes():
    n = mk()
    n.campaign(pre_vote=False)
    assert (n.state, n.current_term, n.voted_for) == (NodeState.CANDIDATE, 1, "n1")
    rd = take(n)
    assert rd.hard_state.term == 1 and rd.hard_state.voted_for == "n1"
    assert sorted(m.dst for m in rd.messages if isinstance(m, RequestVote)) == ["n2", "n3"]


def test_follower_grants_at_most_one_vote_per_term():
    n = mk("n1")
    n.step(RequestVote(1, "n2", "n1", 0, 0))
    n.step(RequestVote(1, "n3", "n1", 0, 0))
    replies = msgs(n, RequestVoteResponse)
    assert [(r.dst, r.granted) for r in replies] == [("n2", True), ("n3", False)]
    assert n.voted_for == "n2"


def test_vote_is_granted_again_to_the_same_candidate():
    n = mk("n1")
    n.step(RequestVote(1, "n2", "n1", 0, 0))
    n.step(RequestVote(1, "n2", "n1", 0, 0))          # a retried / duplicated request
    assert [r.granted for r in msgs(n, RequestVoteResponse)] == [True, True]


def test_vote_denied_to_candidate_with_older_last_term():        # §5.4.1
    n = mk("n1")
    fill(n, [1, 2])
    n.step(RequestVote(3, "n2", "n1", 5, 1))
    assert msgs(n, RequestVoteResponse)[0].granted is False


def test_vote_denied_to_candidate_with_shorter_log_of_same_term():  # §5.4.1
    n = mk("n1")
    fill(n, [1, 1, 1])
    n.step(RequestVote(2, "n2", "n1", 2, 1))
    assert msgs(n, RequestVoteResponse)[0].granted is False
    n.step(RequestVote(3, "n3", "n1", 3, 1))
    assert msgs(n, RequestVoteResponse)[0].granted is True


def test_vote_must_be_persisted_before_the_reply_is_sent():
    n = mk("n1")
    n.step(RequestVote(1, "n2", "n1", 0, 0))
    rd = take(n)
    assert rd.hard_state is not None and rd.hard_state.voted_for == "n2"
    assert any(isinstance(m, RequestVoteResponse) and m.granted for m in rd.messages)


def test_granting_a_vote_resets_the_election_timer():
    n = mk("n1")
    for _ in range(5):
        n.tick()
    n.step(RequestVote(1, "n2", "n1", 0, 0))
    assert n.election_elapsed == 0


def test_candidate_with_majority_becomes_leader_and_appends_noop():
    nodes = cluster()
    leader = elect(nodes, "n1")
    assert leader.log.last_index == 1
    assert leader.log[1].kind is EntryKind.NOOP and leader.log[1].term == leader.current_term


def test_candidate_with_rejections_from_majority_steps_down():
    n = mk("n1")
    n.campaign(pre_vote=False)
    take(n)
    n.step(RequestVoteResponse(1, "n2", "n1", False))
    n.step(RequestVoteResponse(1, "n3", "n1", False))
    assert n.state is NodeState.FOLLOWER and n.current_term == 1


def test_candidate_steps_down_on_append_entries_from_leader_of_its_term():
    n = mk("n1")
    n.campaign(pre_vote=False)
    take(n)
    n.step(AppendEntries(1, "n2", "n1", 0, 0, (), 0))
    assert n.state is NodeState.FOLLOWER and n.leader_id == "n2"


def test_single_node_cluster_elects_itself_and_commits_alone():
    n = mk("n1", voters=("n1",))
    n.campaign(pre_vote=False)
    assert n.state is NodeState.LEADER
    idx, _ = n.propose("x")
    assert n.commit_index == idx


# -- §5.1 terms ---------------------------------------------------------------------------

def test_stale_term_append_entries_is_rejected_with_current_term():
    n = mk("n1")
    n.current_term = 5
    n.step(AppendEntries(3, "n2", "n1", 0, 0, (Entry(3, 1, "x"),), 1))
    r = msgs(n, AppendEntriesResponse)[0]
    assert (r.term, r.success) == (5, False)
    assert n.log.last_index == 0 and n.leader_id is None


def test_stale_term_vote_request_is_rejected():
    n = mk("n1")
    n.current_term = 5
    n.step(RequestVote(4, "n2", "n1", 10, 4))
    r = msgs(n, RequestVoteResponse)[0]
    assert (r.term, r.granted) == (5, False) and n.voted_for is None


def test_stale_term_responses_are_ignored():
    nodes = cluster()
    leader = elect(nodes, "n1")
    leader.step(AppendEntriesResponse(0, "n2", "n1", True, match_index=50))
    assert leader.progress["n2"].match <= 1


def test_leader_steps_down_on_higher_term():
    nodes = cluster()
    leader = elect(nodes, "n1")
    leader.step(AppendEntriesResponse(leader.current_term + 3, "n2", "n1", False))
    assert leader.state is NodeState.FOLLOWER and leader.current_term == 4 and leader.voted_for is None


def test_message_for_another_node_fails_loudly():
    with pytest.raises(ValueError, match="n2"):
        mk("n1").step(AppendEntries(1, "n3", "n2", 0, 0, (), 0))


def test_term_never_goes_back():
    n = mk()
    n.current_term = 4
    with pytest.raises(SafetyViolation):
        n.become_follower(3, None)


# -- §5.3 log replication ------------------------------------------------------------------

def test_append_entries_rejected_when_prev_entry_does_not_match():
    n = mk("n1")
    fill(n, [1, 1])
    n.step(AppendEntries(2, "n2", "n1", 2, 2, (Entry(2, 3, "x"),), 0))
    r = msgs(n, AppendEntriesResponse)[0]
    assert r.success is False and r.reject_index == 2
    assert (r.conflict_term, r.conflict_index) == (1, 1)
    assert n.log.last_index == 2


def test_append_entries_rejected_when_follower_log_too_short():
    n = mk("n1")
    n.step(AppendEntries(1, "n2", "n1", 5, 1, (), 0))
    r = msgs(n, AppendEntriesResponse)[0]
    assert r.success is False and r.conflict_index == 1 and r.conflict_term is None


def test_conflicting_entries_are_deleted_and_replaced():
    n = mk("n1")
    fill(n, [1, 1, 2, 2])
    n.step(AppendEntries(3, "n2", "n1", 2, 1, (Entry(3, 3, "a"), Entry(3, 4, "b")), 0))
    assert [e.term for e in n.log] == [1, 1, 3, 3]
    rd = take(n)
    assert [e.index for e in rd.entries] == [3, 4]      # persisted from the first change
    assert rd.messages[0].success and rd.messages[0].match_index == 4


def test_stale_shorter_append_does_not_truncate_matching_entries():
    n = mk("n1")
    n.step(AppendEntries(1, "n2", "n1", 0, 0, (Entry(1, 1, "a"), Entry(1, 2, "b")), 0))
    n.step(AppendEntries(1, "n2", "n1", 0, 0, (Entry(1, 1, "a"),), 0))  # arrives late
    assert n.log.last_index == 2


def test_follower_commit_is_min_of_leader_commit_and_last_new_entry():
    n = mk("n1")
    fill(n, [1, 1, 1])      # entries 2..3 may be stale: not covered by this message
    n.step(AppendEntries(1, "n2", "n1", 0, 0, (Entry(1, 1, n.log[1].command),), 3))
    assert n.commit_index == 1
    n.step(AppendEntries(1, "n2", "n1", 1, 1, (n.log[2], n.log[3]), 2))
    assert n.commit_index == 2


def test_append_overlapping_the_commit_index_keeps_the_new_suffix():
    n = mk("n1")
    n.step(AppendEntries(1, "n2", "n1", 0, 0, tuple(Entry(1, i, i) for i in range(1, 4)), 3))
    assert n.commit_index == 3
    n.step(AppendEntries(1, "n2", "n1", 1, 1, tuple(Entry(1, i, i) for i in range(2, 6)), 3))
    r = msgs(n, AppendEntriesResponse)[-1]
    assert r.success and r.match_index == 5 and n.log.last_index == 5


def test_committed_entries_are_applied_once_in_order():
    n = mk("n1")
    n.step(AppendEntries(1, "n2", "n1", 0, 0, (Entry(1, 1, "a"), Entry(1, 2, "b")), 2))
    assert [e.command for e in take(n).committed_entries] == ["a", "b"]
    assert take(n).committed_entries == ()
    assert n.last_applied == 2


def test_leader_commits_entry_stored_on_a_majority():
    nodes = cluster()
    leader = elect(nodes, "n1")
    idx, _ = leader.propose("x")
    pending = [m for m in take(leader).messages if m.dst == "n2"]   # n3 is unreachable
    route(nodes, pending, drop=lambda m: "n3" in (m.src, m.dst))
    assert leader.commit_index == idx


def test_leader_does_not_commit_without_a_majority():
    nodes = cluster()
    leader = elect(nodes, "n1")
    idx, _ = leader.propose("x")
    route(nodes, list(take(leader).messages), drop=lambda m: m.dst != "n1")
    assert leader.commit_index < idx


def test_leader_commits_only_current_term_entries_by_counting_figure_8():
    """§5.4.2: an entry of an older term on a majority is not committed by counting."""
    nodes = cluster()
    n1 = nodes["n1"]
    fill(n1, [1, 2])                 # entry 2 (term 2) only on n1
    n1.current_term = 3
    n1.state = NodeState.CANDIDATE
    n1.votes = {"n1": True, "n2": True}
    n1.become_leader()               # term 3, appends no-op at 3
    take(n1)
    pr = n1.progress["n2"]
    # n2 acknowledges entry 2 (older term) but not the no-op of term 3
    n1.step(AppendEntriesResponse(3, "n2", "n1", True, match_index=2))
    assert pr.match == 2 and n1.commit_index == 0
    n1.step(AppendEntriesResponse(3, "n2", "n1", True, match_index=3))
    assert n1.commit_index == 3      # the current-term entry commits, and entry 2 with it


def test_fast_backtracking_skips_a_whole_conflicting_term():
    nodes = cluster()
    n1, n2 = nodes["n1"], nodes["n2"]
    fill(n1, [1] * 30 + [3] * 60)
    fill(n2, [1] * 30 + [2] * 60)
    n1.current_term = 3
    n1.state = NodeState.CANDIDATE
    n1.become_leader()                               # term 3 (+ no-op at 91)
    out = [m for m in take(n1).messages if m.dst == "n2"]
    n2.step(out[0])                                  # prev 90 (term 3) vs n2's term 2
    r = take(n2).messages[0]
    assert (r.success, r.conflict_term, r.conflict_index) == (False, 2, 31)
    n1.step(r)
    assert n1.progress["n2"].next == 31              # one round trip skips all of term 2
    route(nodes, list(take(n1).messages), drop=lambda m: "n3" in (m.src, m.dst))
    assert [e.term for e in n2.log] == [e.term for e in n1.log]


def test_stale_rejection_is_ignored():
    nodes = cluster()
    leader = elect(nodes, "n1")
    pr = leader.progress["n2"]
    assert pr.match == 1
    leader.step(AppendEntriesResponse(leader.current_term, "n2", "n1", False,
                                      reject_index=1, conflict_index=1))
    assert pr.next == 2 and pr.match == 1


def test_leader_never_overwrites_its_log_and_propose_on_follower_fails():
    n = mk("n1")
    with pytest.raises(NotLeader):
        n.propose("x")


def test_follower_refuses_to_delete_committed_entries():
    n = mk("n1")
    n.step(AppendEntries(1, "n2", "n1", 0, 0, (Entry(1, 1, "a"),), 1))
    with pytest.raises(SafetyViolation):
        n._truncate_from(1)


# -- persistence -------------------------------------------------------------------------

def test_restart_restores_term_vote_and_log_from_storage():
    st = MemoryStorage()
    n = mk("n1", storage=st)
    n.step(AppendEntries(2, "n2", "n1", 0, 0, (Entry(1, 1, "a"), Entry(2, 2, "b")), 1))
    persist(n, st)
    n.step(RequestVote(3, "n3", "n1", 2, 2))
    persist(n, st)
    m = mk("n1", storage=st)
    assert (m.current_term, m.voted_for) == (3, "n3")
    assert [e.command for e in m.log] == ["a", "b"]
    assert m.commit_index == 0 and m.state is NodeState.FOLLOWER   # volatile state is lost


# -- PreVote and CheckQuorum (thesis §9.6, §6.2, §4.2.3) -------------------------------------

PV = RaftConfig(election_ticks=(10, 20), heartbeat_ticks=3, pre_vote=True, check_quorum=True)


def test_prevote_does_not_increment_term():
    n = mk(cfg=PV)
    n.campaign(pre_vote=True)
    assert n.state is NodeState.PRE_CANDIDATE and n.current_term == 0 and n.voted_for is None
    reqs = msgs(n, RequestVote)
    assert all(r.pre_vote and r.term == 1 for r in reqs)


def test_prevote_success_starts_a_real_election():
    nodes = cluster(cfg=PV)
    n = nodes["n1"]
    n.campaign(pre_vote=True)
    route(nodes, list(take(n).messages))
    assert n.state is NodeState.LEADER and n.current_term == 1


def test_partitioned_node_does_not_inflate_its_term():
    n = mk(cfg=PV)
    for _ in range(200):
        n.tick()
        take(n)
    assert n.current_term == 0


def test_follower_in_lease_ignores_disruptive_vote_requests():
    nodes = cluster(cfg=PV)
    leader = elect(nodes, "n1")
    f = nodes["n2"]
    assert f.leader_id == "n1"
    f.step(RequestVote(leader.current_term + 1, "n3", "n2", 100, 100))
    assert f.current_term == leader.current_term and msgs(f) == []


def test_leader_without_quorum_steps_down():
    nodes = cluster(cfg=PV)
    leader = elect(nodes, "n1")
    for _ in range(2 * PV.election_ticks[0] + 1):
        leader.tick()
        take(leader)                  # no answers reach it
    assert leader.state is NodeState.FOLLOWER


def test_leader_with_quorum_stays():
    nodes = cluster(cfg=PV)
    leader = elect(nodes, "n1")
    for _ in range(5 * PV.election_ticks[0]):
        leader.tick()
        route(nodes, list(take(leader).messages))
    assert leader.state is NodeState.LEADER


# -- leadership transfer (thesis §3.10) ------------------------------------------------------

def test_timeout_now_starts_election_at_once_that_overrides_the_lease():
    nodes = cluster(cfg=PV)
    leader = elect(nodes, "n1")
    n2 = nodes["n2"]
    n2.step(TimeoutNow(leader.current_term, "n1", "n2"))
    assert n2.state is NodeState.CANDIDATE
    reqs = [m for m in take(n2).messages if isinstance(m, RequestVote)]
    assert all(r.transfer and not r.pre_vote for r in reqs)
    route(nodes, reqs)
    assert n2.state is NodeState.LEADER and leader.state is NodeState.FOLLOWER


def test_leader_transfer_sends_timeout_now_once_target_caught_up_and_blocks_proposals():
    nodes = cluster(cfg=PV)
    leader = elect(nodes, "n1")
    leader.transfer_leadership("n2")
    out = take(leader).messages
    assert any(isinstance(m, TimeoutNow) and m.dst == "n2" for m in out)
    with pytest.raises(NotLeader):
        leader.propose("x")
    route(nodes, list(out))
    assert nodes["n2"].state is NodeState.LEADER


# -- log compaction (§7) -------------------------------------------------------------------

def test_leader_sends_snapshot_when_follower_needs_compacted_entries():
    nodes = cluster()
    leader = elect(nodes, "n1")
    for i in range(5):
        leader.propose(f"c{i}")
    route(nodes, list(take(leader).messages), drop=lambda m: "n3" in (m.src, m.dst))
    take(leader)
    snap = leader.compact(leader.last_applied, "STATE")
    assert leader.log.first_index == snap.index + 1
    n3 = nodes["n3"]
    leader.send_append("n3", heartbeat=True)         # n3 lacks entries 2..6: it rejects
    hb = take(leader).messages[0]
    n3.step(hb)
    leader.step(take(n3).messages[0])
    out = take(leader).messages
    assert [type(m) for m in out] == [InstallSnapshot]
    n3.step(out[0])
    rd = take(n3)
    assert rd.snapshot == snap and n3.commit_index == snap.index and n3.log.last_index == snap.index
    leader.step(rd.messages[0])
    assert leader.progress["n3"].match == snap.index


def test_snapshot_covering_existing_entry_keeps_the_suffix():
    n = mk("n1")
    n.step(AppendEntries(1, "n2", "n1", 0, 0, tuple(Entry(1, i, i) for i in range(1, 6)), 0))
    take(n)
    from course_lib.raft import Snapshot
    n.step(InstallSnapshot(1, "n2", "n1", Snapshot(3, 1, IDS, "S")))
    rd = take(n)
    assert rd.snapshot is None and n.log.last_index == 5 and n.commit_index == 3
    assert isinstance(rd.messages[0], InstallSnapshotResponse) and rd.messages[0].match_index == 3


def test_snapshot_with_conflicting_log_discards_it():
    n = mk("n1")
    fill(n, [1, 1, 1, 1])
    from course_lib.raft import Snapshot
    n.step(InstallSnapshot(2, "n2", "n1", Snapshot(3, 2, IDS, "S")))
    rd = take(n)
    assert rd.snapshot.index == 3 and n.log.last_index == 3 and list(n.log) == []


def test_compact_refuses_unapplied_entries():
    n = mk("n1", voters=("n1",))
    n.campaign(pre_vote=False)
    n.propose("x")
    with pytest.raises(ValueError, match="applied"):
        n.compact(2, None)


# -- membership (thesis §4.2.1) ------------------------------------------------------------

def test_configuration_takes_effect_when_appended_not_committed():
    nodes = cluster()
    leader = elect(nodes, "n1")
    route(nodes, list(take(leader).messages))          # no-op committed
    leader.propose_conf_change(ConfChange("add", "n4"))
    assert "n4" in leader.voters and "n4" in leader.progress
    assert leader.quorum == 3


def test_only_one_membership_change_at_a_time():
    nodes = cluster()
    leader = elect(nodes, "n1")
    route(nodes, list(take(leader).messages))
    leader.propose_conf_change(ConfChange("add", "n4"))
    with pytest.raises(ConfChangeInProgress):
        leader.propose_conf_change(ConfChange("add", "n5"))


def test_new_leader_waits_for_its_first_commit_before_a_membership_change():
    nodes = cluster()
    leader = elect_only(nodes, "n1")                       # no-op not acknowledged yet
    with pytest.raises(ConfChangeInProgress):
        leader.propose_conf_change(ConfChange("remove", "n3"))


def test_truncated_configuration_entry_is_rolled_back():
    n = mk("n1")
    n.step(AppendEntries(1, "n2", "n1", 0, 0, (Entry(1, 1, ConfChange("add", "n4"), EntryKind.CONFIG),), 0))
    assert "n4" in n.voters
    n.step(AppendEntries(2, "n3", "n1", 0, 0, (Entry(2, 1, None, EntryKind.NOOP),), 0))
    assert n.voters == IDS


def test_removed_leader_steps_down_once_the_change_commits():
    nodes = cluster()
    leader = elect(nodes, "n1")
    route(nodes, list(take(leader).messages))
    leader.propose_conf_change(ConfChange("remove", "n1"))
    route(nodes, list(take(leader).messages))
    assert leader.state is NodeState.FOLLOWER and leader.voters == ("n2", "n3")
    for _ in range(100):
        leader.tick()
    assert leader.state is NodeState.FOLLOWER          # a non-member never campaigns


# -- reads (thesis §6.4) --------------------------------------------------------------------

def test_read_index_needs_a_quorum_acknowledgement():
    nodes = cluster()
    leader = elect(nodes, "n1")
    route(nodes, list(take(leader).messages))
    leader.read_index("r1")
    out = take(leader)
    assert out.read_states == ()
    route(nodes, list(out.messages), drop=lambda m: m.src != "n1" and m.dst == "n1")
    assert take(leader).read_states == ()            # nobody answered
    leader.read_index("r2")
    out = take(leader).messages
    acks = []
    for m in out:
        nodes[m.dst].step(m)
        acks.extend(take(nodes[m.dst]).messages)
    leader.step(acks[0])
    assert [ctx for ctx, _ in take(leader).read_states] == ["r1", "r2"]


def test_read_index_waits_for_the_leaders_first_commit():
    nodes = cluster()
    leader = elect_only(nodes, "n1")
    first = take(leader).messages
    leader.read_index("r")
    assert leader.reads.deferred == ["r"]
    route(nodes, list(first))
    route(nodes, list(take(leader).messages))
    assert leader.reads.deferred == [] and leader.commit_index == 1


# -- the state machine with sessions (thesis §6.3) ------------------------------------------

def test_retried_command_is_applied_exactly_once():
    kv = KVStateMachine()
    cmd = ClientCommand("alice", 1, ("append", "x", "a"))
    kv.apply(cmd)
    kv.apply(cmd)
    kv.apply(ClientCommand("alice", 2, ("append", "x", "b")))
    kv.apply(cmd)                                      # very late duplicate
    assert kv.read("x") == "ab"
    restored = KVStateMachine()
    restored.restore(kv.snapshot())
    restored.apply(ClientCommand("alice", 2, ("append", "x", "b")))
    assert restored.read("x") == "ab"


def test_core_uses_only_the_injected_random():
    with pytest.raises(ValueError):
        RaftNode("n1", IDS, rng=None)
    a = [mk(seed=7).randomized_timeout for _ in range(3)]
    random.seed(12345)
    b = [mk(seed=7).randomized_timeout for _ in range(3)]
    assert a == b


# -- the driver contract: Ready / advance (etcd's RawNode) -----------------------------------

def test_only_one_ready_is_outstanding_until_advance():
    n = mk("n1")
    n.step(AppendEntries(1, "n2", "n1", 0, 0, (Entry(1, 1, "a"),), 1))
    rd = n.ready()
    assert not n.has_ready()                                # taken, awaiting advance
    with pytest.raises(RaftError, match="before advance"):
        n.ready()
    n.advance(rd)
    assert not n.has_ready()


def test_advance_of_another_ready_fails_loudly():
    n = mk("n1")
    n.step(AppendEntries(1, "n2", "n1", 0, 0, (Entry(1, 1, "a"),), 1))
    rd = n.ready()
    n.advance(rd)
    with pytest.raises(RaftError, match="not the outstanding"):
        n.advance(rd)


def test_committed_entries_count_as_applied_only_after_advance():
    n = mk("n1")
    n.step(AppendEntries(1, "n2", "n1", 0, 0, (Entry(1, 1, "a"), Entry(1, 2, "b")), 2))
    rd = n.ready()
    assert [e.index for e in rd.committed_entries] == [1, 2] and rd.must_sync
    assert n.last_applied == 0                              # not applied yet: no compaction
    with pytest.raises(ValueError):
        n.compact(2, "state")
    n.advance(rd)
    assert n.last_applied == 2
    n.compact(2, "state")


def test_hard_state_counts_as_persisted_only_after_advance():
    n = mk("n2")
    n.step(RequestVote(1, "n1", "n2", 0, 0))
    rd = n.ready()
    assert rd.hard_state == HardState(1, "n1") and rd.must_sync
    n.advance(rd)
    n.tick()
    assert not n.has_ready() or n.ready().hard_state is None


def test_work_done_while_a_ready_is_outstanding_goes_into_the_next_one():
    # an asynchronous driver steps the network while its fsync runs
    n = mk("n1")
    n.step(AppendEntries(1, "n2", "n1", 0, 0, (Entry(1, 1, "a"),), 0))
    first = n.ready()
    n.step(AppendEntries(1, "n2", "n1", 1, 1, (Entry(1, 2, "b"),), 2))
    assert [e.index for e in first.entries] == [1] and first.committed_entries == ()
    n.advance(first)
    second = n.ready()
    assert [e.index for e in second.entries] == [2]
    assert [e.index for e in second.committed_entries] == [1, 2]
    assert [m.match_index for m in second.messages] == [2]   # sent once entry 2 is persisted
    n.advance(second)
    assert n.last_applied == 2


def test_a_ready_of_messages_only_needs_no_fsync():
    nodes = cluster()
    leader = elect(nodes, "n1")
    for _ in range(CFG.heartbeat_ticks):
        leader.tick()
    rd = leader.ready()
    assert rd.messages and not rd.must_sync
    leader.advance(rd)
