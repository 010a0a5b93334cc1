"""Consensus: the chapter's "more than half" protocol, quorums, and single-decree Paxos.

Paxos tests are anchored to Lamport, "Paxos Made Simple" (2001): one test per rule
(phase 1b, P1a, P2c, choosing), then scenarios, then seeded fault campaigns.
"""

from __future__ import annotations

import random

import pytest

from course_lib.chapter.consensus import ConsensusProtocol, Proposal, ProposalResponse
from course_lib.consensus import (
    ZERO, Accept, Accepted, Ballot, ChapterCluster, Decided, Inquire, Nack,
    PaxosCluster, PaxosConfig, PaxosNode, Phase, Prepare, Promise, disjoint_pair,
    find_disagreement, majorities, majority, pairs_checked, quorums, raft_decide,
    run_campaign, run_chapter, run_seed,
)
from course_lib.consensus.plots import chapter_timeline, quorum_figure

NODES = ("n1", "n2", "n3")
DISAGREEMENT_SEED = 5          # the first seed of run_chapter(n=3, proposers=2) that disagrees


# -- the chapter's protocol -------------------------------------------------------------

def test_chapter_receiver_counts_distinct_values_not_votes():
    core = ConsensusProtocol("n1", list(NODES))
    assert core.receive_proposal("n2", "x", "a") is False      # one value: not > 3 // 2
    assert core.receive_proposal("n2", "x", "a") is False      # the same value again: still one
    assert core.receive_proposal("n3", "x", "b") is True       # two *values*: decides the last one
    assert core.decided == {"x": "b"}


def test_chapter_rejects_everything_once_decided():
    core = ConsensusProtocol("n1", list(NODES))
    core.receive_proposal("n2", "x", "a")
    core.receive_proposal("n3", "x", "b")
    assert core.receive_proposal("n2", "x", "c") is False and core.decided["x"] == "b"


def test_chapter_propose_waits_for_every_answer_then_counts_more_than_half():
    core = ConsensusProtocol("n1", list(NODES))
    pid = core.propose("x", "a")
    sent = core.take_outbox()
    assert sent == [("n2", Proposal(pid, "x", "a")), ("n3", Proposal(pid, "x", "a"))]
    assert core.handle_response("n2", ProposalResponse(pid, "x", "a", True)) is None
    assert core.handle_response("n2", ProposalResponse(pid, "x", "a", True)) is None   # duplicate
    assert core.handle_response("n3", ProposalResponse(pid, "x", "a", True)) is True
    assert core.outcomes == {pid: True} and "x" not in core.decided   # the proposer decides nothing


def test_chapter_single_uncontested_proposal_is_never_decided():
    run = run_chapter(0, n=3, proposers=1)
    assert run.decided_values == set() and run.claims == {}
    assert [ok for *_rest, ok in run.cluster.outcomes] == [False]


def test_chapter_disagreement_is_found_for_a_fixed_seed_and_replays():
    run = find_disagreement(range(100), n=3, proposers=2)
    assert run is not None and run.seed == DISAGREEMENT_SEED
    assert run.disagreement and len(run.decided_values) == 2
    again = run_chapter(DISAGREEMENT_SEED, n=3, proposers=2)
    assert again.decided == run.decided and again.claims == run.claims
    assert again.digest == run.digest
    assert run_chapter(DISAGREEMENT_SEED + 1, n=3, proposers=2).digest != run.digest


def test_chapter_true_answers_act_as_votes_but_decisions_still_diverge():
    # each receiver answers True at most once (it then rejects), so two proposers can
    # never both collect a majority of Trues -- yet the receivers' decisions differ
    runs = [run_chapter(s, n=5, proposers=3) for s in range(200)]
    assert all(len(set(r.claims.values())) <= 1 for r in runs)
    assert sum(len(r.decided_values) > 1 for r in runs) > 100


def test_chapter_lost_node_blocks_propose_forever():
    c = ChapterCluster(3, seed=1)
    c.sim.crash("n3")
    c.propose("n1", "x", "a")
    c.run_for(5000)
    assert c.outcomes == []                     # gather has no timeout


def test_chapter_bad_arguments():
    c = ChapterCluster(3, seed=1)
    with pytest.raises(ValueError, match="unknown node"):
        c.propose("n9", "x", "a")
    with pytest.raises(ValueError, match="str"):
        c.propose("n1", "x", 3)
    with pytest.raises(ValueError, match="n must be"):
        ChapterCluster(0)
    with pytest.raises(ValueError, match="proposers"):
        run_chapter(1, n=3, proposers=4)
    with pytest.raises(ValueError, match="seed"):
        ChapterCluster(3, seed="1")


# -- quorums ----------------------------------------------------------------------------

@pytest.mark.parametrize("n", range(3, 8))
def test_every_two_majorities_intersect(n):
    family = majorities(n)
    pairs, hits = pairs_checked(family)
    assert pairs == len(family) * (len(family) - 1) // 2 and hits == pairs
    assert all(2 * len(q) > n for q in family)     # pigeonhole: |A| + |B| > n


@pytest.mark.parametrize("n", range(3, 8))
def test_sets_of_at_most_half_can_be_disjoint(n):
    for size in range(1, n + 1):
        pair = disjoint_pair(n, size)
        assert (pair is not None) == (2 * size <= n)
        if pair:
            assert not set(pair[0]) & set(pair[1])


def test_quorum_bad_arguments():
    with pytest.raises(ValueError, match="size"):
        quorums(5, 6)
    with pytest.raises(ValueError, match="n must be"):
        majorities(0)


# -- Paxos: one test per rule --------------------------------------------------------------

def node(nid="n1", nodes=NODES, **config) -> PaxosNode:
    return PaxosNode(nid, nodes, rng=random.Random(0), config=PaxosConfig(**config))


def sent(n: PaxosNode, kind=None) -> list:
    rd = n.ready()
    return [m for m in rd.messages if kind is None or type(m) is kind]


def test_acceptor_promises_only_higher_ballots():
    a = node("n2")
    a.step(Prepare("n1", "n2", Ballot(2, "n1")))
    (p,) = sent(a, Promise)
    assert p.ballot == Ballot(2, "n1") and a.promised == Ballot(2, "n1")
    a.step(Prepare("n3", "n2", Ballot(1, "n3")))            # lower: refused
    (nack,) = sent(a, Nack)
    assert nack.promised == Ballot(2, "n1") and a.promised == Ballot(2, "n1")
    a.step(Prepare("n3", "n2", Ballot(2, "n3")))            # higher (node id breaks the tie)
    assert [m.ballot for m in sent(a, Promise)] == [Ballot(2, "n3")]


def test_promise_reports_the_highest_accepted_proposal():
    a = node("n2")
    a.step(Accept("n1", "n2", Ballot(1, "n1"), "red"))
    a.ready()
    a.step(Prepare("n3", "n2", Ballot(2, "n3")))
    (p,) = sent(a, Promise)
    assert (p.accepted_ballot, p.accepted_value) == (Ballot(1, "n1"), "red")


def test_acceptor_accepts_only_if_ballot_at_least_promised():
    a = node("n2")
    a.step(Prepare("n3", "n2", Ballot(3, "n3")))
    a.ready()
    a.step(Accept("n1", "n2", Ballot(2, "n1"), "red"))       # P1a: promised 3.n3
    assert [type(m) for m in sent(a)] == [Nack] and a.accepted_ballot == ZERO
    a.step(Accept("n3", "n2", Ballot(3, "n3"), "blue"))      # equal: accepted
    out = sent(a, Accepted)
    assert {m.dst for m in out} == set(NODES) and all(m.value == "blue" for m in out)
    assert (a.accepted_ballot, a.accepted_value) == (Ballot(3, "n3"), "blue")


def test_acceptor_persists_before_it_answers():
    a = node("n2")
    a.step(Prepare("n1", "n2", Ballot(1, "n1")))
    rd = a.ready()
    assert rd.hard_state is not None and rd.hard_state.promised == Ballot(1, "n1")
    a.step(Accept("n1", "n2", Ballot(1, "n1"), "red"))
    rd = a.ready()
    assert rd.hard_state.accepted_ballot == Ballot(1, "n1") and rd.hard_state.accepted_value == "red"


def promises(p: PaxosNode, accepted: dict) -> None:
    for src, (b, v) in accepted.items():
        p.step(Promise(src, p.node_id, p.ballot, b, v))


def test_proposer_adopts_the_value_of_the_highest_accepted_ballot():
    p = node("n1", nodes=("n1", "n2", "n3", "n4", "n5"))
    p.propose("mine")
    sent(p)
    promises(p, {"n2": (Ballot(1, "n4"), "old"), "n3": (Ballot(2, "n5"), "newer"), "n4": (ZERO, None)})
    out = sent(p, Accept)
    assert len(out) == 5 and all(m.value == "newer" and m.ballot == p.ballot for m in out)  # P2c


def test_proposer_proposes_its_own_value_when_nothing_was_accepted():
    p = node("n1")
    p.propose("mine")
    sent(p)
    promises(p, {"n1": (ZERO, None), "n2": (ZERO, None)})
    assert {m.value for m in sent(p, Accept)} == {"mine"} and p.phase is Phase.ACCEPTING


def test_proposer_waits_for_a_majority_of_distinct_promises():
    p = node("n1", nodes=("n1", "n2", "n3", "n4", "n5"))
    p.propose("mine")
    sent(p)
    promises(p, {"n2": (ZERO, None)})
    promises(p, {"n2": (ZERO, None)})                       # a duplicate counts once
    p.step(Promise("n3", "n1", Ballot(99, "n9"), ZERO, None))  # another ballot's promise
    assert sent(p, Accept) == [] and p.phase is Phase.PREPARING


def test_without_p2c_the_proposer_overrides_an_accepted_value():
    p = node("n1", unsafe_ignore_accepted=True)
    p.propose("mine")
    sent(p)
    promises(p, {"n2": (Ballot(1, "n2"), "theirs"), "n3": (ZERO, None)})
    assert {m.value for m in sent(p, Accept)} == {"mine"}


def test_proposer_retries_with_a_higher_ballot_after_a_nack():
    p = node("n1", retry_ticks=(2, 2), max_backoff_exp=0)
    p.propose("mine")
    first = p.ballot
    sent(p)
    p.step(Nack("n2", "n1", first, Ballot(7, "n3")))
    assert p.phase is Phase.IDLE
    for _ in range(2):
        p.tick()
    prepares = sent(p, Prepare)
    assert prepares and p.ballot == Ballot(8, "n1") > Ballot(7, "n3")


def test_proposer_retries_after_a_timeout_and_backs_off():
    p = node("n1", retry_ticks=(3, 3), max_backoff_exp=2)
    p.propose("mine")
    ballots = [p.ballot]
    sent(p)
    for _ in range(200):
        p.tick()
        if sent(p, Prepare):
            ballots.append(p.ballot)
    assert ballots == sorted(ballots) and len(set(ballots)) == len(ballots) >= 5


def test_a_restarted_proposer_never_reuses_a_ballot():
    p = node("n1")
    p.propose("mine")
    rd = p.ready()
    used = p.ballot
    again = PaxosNode("n1", NODES, rng=random.Random(1), hard_state=rd.hard_state)
    assert again.proposal == "mine"
    while not again.has_ready() or not any(type(m) is Prepare for m in again.ready().messages):
        again.tick()
    assert again.ballot > used


def test_learner_learns_when_a_majority_accepts_in_one_ballot():
    lr = node("n3", nodes=("n1", "n2", "n3", "n4", "n5"))
    lr.step(Accepted("n1", "n3", Ballot(1, "n1"), "a"))
    lr.step(Accepted("n2", "n3", Ballot(2, "n2"), "a"))     # another ballot: not counted together
    lr.step(Accepted("n1", "n3", Ballot(1, "n1"), "a"))     # duplicate
    assert lr.decided is None
    lr.step(Accepted("n4", "n3", Ballot(1, "n1"), "a"))
    lr.step(Accepted("n5", "n3", Ballot(1, "n1"), "a"))
    assert lr.decided == "a" and lr.ready().decided == "a" and lr.phase is Phase.LEARNED


def test_a_node_that_learned_answers_inquiries():
    lr = node("n1")
    lr.step(Decided("n2", "n1", "a"))
    lr.ready()
    lr.step(Inquire("n3", "n1"))
    assert sent(lr) == [Decided("n1", "n3", "a")]


def test_paxos_bad_arguments():
    with pytest.raises(ValueError, match="node_id"):
        PaxosNode("n9", NODES, rng=random.Random(0))
    with pytest.raises(ValueError, match="nodes"):
        PaxosNode("n1", ("n1", "n1"), rng=random.Random(0))
    with pytest.raises(ValueError, match="rng"):
        PaxosNode("n1", NODES, rng=0)
    with pytest.raises(ValueError, match="retry_ticks"):
        PaxosConfig(retry_ticks=(5, 2))
    with pytest.raises(ValueError, match="not a majority"):
        node("n1", nodes=("n1", "n2", "n3", "n4", "n5"), quorum=2)
    with pytest.raises(ValueError, match="value"):
        node().propose(None)
    p = node()
    p.propose("a")
    with pytest.raises(ValueError, match="already proposes"):
        p.propose("b")
    with pytest.raises(ValueError, match="not a Paxos message"):
        p.step("hello")
    with pytest.raises(ValueError, match="unknown node"):
        PaxosCluster(3).propose("n7", "a")
    with pytest.raises(ValueError, match="n must be"):
        PaxosCluster(0)
    with pytest.raises(ValueError, match="fault_ms"):
        run_seed(1, fault_ms=0)


def test_majority():
    assert [majority(n) for n in range(1, 8)] == [1, 2, 2, 3, 3, 4, 4]


# -- Paxos in the simulator ---------------------------------------------------------------

def test_concurrent_proposers_agree_on_one_proposed_value():
    c = PaxosCluster(5, seed=2)
    for nid, v in (("n1", "red"), ("n3", "green"), ("n5", "blue")):
        c.propose(nid, v)
    assert c.run_until(c.all_decided, 3000)
    assert c.agreement() and c.validity() and len(set(c.decided().values())) == 1


def test_a_crashed_acceptor_keeps_its_promise_and_acceptance():
    c = PaxosCluster(3, seed=4)
    c.propose("n1", "red")
    c.run_until(c.all_decided, 1000)
    before = c.hosts["n2"].core
    c.crash("n2")
    after = c.hosts["n2"].core
    assert after is not before
    assert (after.promised, after.accepted_value, after.decided) == (before.promised, "red", "red")


def test_a_minority_cannot_decide_and_learns_after_healing():
    c = PaxosCluster(5, seed=3)
    c.partition({"n1", "n2"}, {"n3", "n4", "n5"})
    c.propose("n1", "left")
    c.run_for(1000)
    assert set(c.decided().values()) == {None}
    c.propose("n4", "right")
    assert c.run_until(lambda: c.decided()["n4"] is not None, 2000)
    assert c.decided()["n1"] is None
    c.heal()
    assert c.run_until(c.all_decided, 2000) and c.decided_values() == {"right"}


def test_non_majority_quorums_let_two_sides_decide_differently():
    c = PaxosCluster(5, seed=3, config=PaxosConfig(quorum=2, unsafe_quorum=True))
    c.partition({"n1", "n2"}, {"n3", "n4", "n5"})
    c.propose("n1", "left")
    c.propose("n4", "right")
    c.run_for(1000)
    c.heal()
    c.run_for(1000)
    assert c.decided_values() == {"left", "right"} and not c.agreement()


def test_paxos_survives_500_seeded_fault_runs():
    summary = run_campaign(range(500))
    assert [r.summary() for r in summary.failures] == []
    assert all(r.termination_ms is not None and r.termination_ms < 3000 for r in summary.runs)
    assert sum(1 for r in summary.runs for f in r.faults if f[1] == "crash") > 500


def test_campaign_is_valid_and_terminates_after_heal():
    for seed in range(20):
        r = run_seed(seed)
        assert r.decided_values <= set(r.proposed.values()) and len(r.decided_values) == 1
        assert all(v is not None for v in r.decided.values())


def test_campaign_replays_from_its_seed():
    a, b = run_seed(11, trace_level="messages"), run_seed(11, trace_level="messages")
    assert a.digest == b.digest and a.decided == b.decided and a.faults == b.faults
    assert run_seed(12, trace_level="messages").digest != a.digest


def test_campaign_catches_paxos_without_p2c():
    summary = run_campaign(range(500), config=PaxosConfig(unsafe_ignore_accepted=True))
    assert summary.failures
    assert all("agreement" in " ".join(r.problems) for r in summary.failures)


# -- Raft as consensus, and the figures ----------------------------------------------------

def test_raft_as_consensus_agrees_on_the_first_committed_value():
    for seed in range(3):
        r = raft_decide(seed, ["red", "green", "blue"])
        assert len(r.decided_values) == 1 and r.decided_values <= {"red", "green", "blue"}
        assert None not in r.decided.values() and r.violations == []


def test_figures_build():
    fig = quorum_figure(("n1", "n2", "n3"), ("n1", "n2"), ("n2", "n3"))
    assert "n2" in fig.layout.title.text
    with pytest.raises(ValueError, match="unknown"):
        quorum_figure(("n1", "n2"), ("n1", "n9"), ("n2",))
    run = run_chapter(DISAGREEMENT_SEED)
    fig = chapter_timeline(run.cluster)
    names = {t.name for t in fig.data}
    assert {"propose", "decide", "outcome"} <= names
