"""Manual delivery ("you are the network"): the simulator's network holds every message
until the caller delivers or drops it; with the mode off, runs are unchanged."""

from __future__ import annotations

import math

import pytest

from course_lib.raft import NodeState, RequestVote, RequestVoteResponse, SimCluster
from tests.test_sim import world


def test_nothing_is_delivered_until_chosen():
    sim, (p1, p2, p3) = world()
    sim.set_manual_delivery(True)
    sim.send("p1", "p2", "a")
    sim.send("p1", "p3", "b")
    sim.run_for(1000)
    assert p2.got == [] and p3.got == []
    held = sim.held_messages()
    assert [(m.id, m.src, m.dst, m.msg) for m in held] == [(1, "p1", "p2", "a"), (2, "p1", "p3", "b")]
    assert all(m.deliver_at == math.inf for m in held)
    assert sim.in_flight() == held, "held messages are still on the wire"
    sim.deliver_held(2)
    assert p3.got == [(1000.0, "p1", "b")] and p2.got == []
    assert [m.id for m in sim.held_messages()] == [1]


def test_dropping_removes_a_held_message_and_counts_it():
    sim, (p1, p2, _) = world()
    sim.set_manual_delivery(True)
    sim.send("p1", "p2", "a")
    sim.drop_held(1)
    assert sim.held_messages() == [] and sim.network.dropped == 1
    sim.run_for(100)
    assert p2.got == []
    assert any(e.kind == "drop" and e.details[1] == "manual" for e in sim.trace)
    with pytest.raises(ValueError, match="no held message"):
        sim.deliver_held(1)


def test_replies_to_a_delivered_message_are_held_too():
    sim, (p1, p2, _) = world()
    sim.set_manual_delivery(True)
    sim.send("p1", "p2", "ping")
    sim.deliver_held(1)
    assert p2.got[0][1:] == ("p1", "ping")
    (pong,) = sim.held_messages()
    assert (pong.src, pong.dst, pong.msg) == ("p2", "p1", "pong") and p1.got == []


def test_turning_manual_on_holds_what_is_in_flight_and_off_hands_it_back():
    sim, (p1, p2, _) = world()
    sim.network.delay_ms = (10, 10)
    sim.send("p1", "p2", "early")
    sim.run_for(4)
    sim.set_manual_delivery(True)
    sim.send("p1", "p2", "late")
    sim.run_for(50)
    assert p2.got == [] and [m.msg for m in sim.held_messages()] == ["early", "late"]
    sim.set_manual_delivery(False)
    assert sim.held_messages() == []
    sim.run_for(20)
    # "early" keeps the 6 ms it had left; "late" (sent while held) is due at once: FIFO
    assert [(t, m) for t, _s, m in p2.got] == [(60.0, "early"), (60.0, "late")]


def test_cuts_and_crashes_still_apply_to_manual_deliveries():
    sim, (p1, p2, p3) = world()
    sim.set_manual_delivery(True)
    sim.send("p1", "p2", "a")
    sim.send("p1", "p3", "b")
    sim.partition({"p1"}, {"p2", "p3"})
    sim.deliver_held(1)
    sim.crash("p3")
    sim.deliver_held(2)
    assert p2.got == [] and p3.got == [] and sim.network.dropped == 2


def test_mode_switches_refuse_nonsense():
    sim, _ = world()
    with pytest.raises(ValueError, match="automatic"):
        sim.deliver_held(1)
    with pytest.raises(ValueError, match="already automatic"):
        sim.set_manual_delivery(False)
    sim.set_manual_delivery(True)
    with pytest.raises(ValueError, match="already manual"):
        sim.set_manual_delivery(True)
    with pytest.raises(ValueError, match="True or False"):
        sim.set_manual_delivery("yes")


def test_same_seed_same_run_with_the_mode_off_and_switching_it_is_replayable():
    def run(manual_window: bool) -> str:
        c = SimCluster(5, seed=7)
        c.run_for(600)
        if manual_window:
            c.set_manual_delivery(True)
            for m in list(c.held_messages())[:5]:
                c.deliver(m.id)
            c.set_manual_delivery(False)
        c.run_for(600)
        return c.trace_digest()

    assert run(False) == run(False)
    assert run(True) == run(True)
    assert run(True) != run(False)


def test_a_vote_request_then_its_reply_changes_the_candidates_vote_count():
    c = SimCluster(5, seed=3, pre_vote=False)
    c.set_manual_delivery(True)
    c.expire_timer("n1")                         # n1 times out: an election for term 1
    n1 = c.node("n1").core
    assert n1.state is NodeState.CANDIDATE and n1.votes == {"n1": True}
    requests = {m.dst: m for m in c.held_messages() if type(m.msg) is RequestVote}
    assert sorted(requests) == ["n2", "n3", "n4", "n5"]
    c.run_for(50)                                # time passes; nothing arrives
    assert n1.votes == {"n1": True} and c.node("n2").core.voted_for is None
    for voter, expect in (("n2", {"n1": True, "n2": True}),
                          ("n3", None)):         # the third vote (3 of 5) makes a leader
        c.deliver(requests[voter].id)
        assert c.node(voter).core.voted_for == "n1"
        (reply,) = [m for m in c.held_messages() if type(m.msg) is RequestVoteResponse]
        assert reply.msg.granted and reply.src == voter
        before = dict(n1.votes)
        c.deliver(reply.id)
        if expect is not None:
            assert before == {"n1": True} and n1.votes == expect
            assert n1.state is NodeState.CANDIDATE
    assert n1.state is NodeState.LEADER and n1.current_term == 1
    assert c.safety_violations() == []


def test_dropping_the_vote_requests_leaves_the_candidate_alone():
    c = SimCluster(3, seed=3, pre_vote=False)
    c.set_manual_delivery(True)
    c.expire_timer("n2")
    for m in c.held_messages():
        c.drop_message(m.id)
    assert c.held_messages() == []
    assert c.node("n2").core.state is NodeState.CANDIDATE and c.node("n2").core.votes == {"n2": True}
    assert c.node("n1").core.voted_for is None and c.node("n3").core.voted_for is None


def test_expire_timer_follows_pre_vote_and_refuses_nonsense():
    c = SimCluster(3, seed=3)                    # PreVote on: a timeout asks first (§9.6)
    c.set_manual_delivery(True)
    c.expire_timer("n3")
    assert c.node("n3").core.state is NodeState.PRE_CANDIDATE
    assert all(type(m.msg) is RequestVote and m.msg.pre_vote for m in c.held_messages())
    assert c.node("n3").core.current_term == 0, "a pre-vote does not bump the term"
    c.crash("n1")
    with pytest.raises(ValueError, match="down"):
        c.expire_timer("n1")
    c.pause("n2")
    with pytest.raises(ValueError, match="paused"):
        c.expire_timer("n2")
    with pytest.raises(ValueError, match="unknown"):
        c.expire_timer("n9")
