"""The chapter's RaftNode (course_lib.chapter.raft): it runs, and its flaws are real."""

from __future__ import annotations

import random

import pytest

from course_lib.chapter import raft as chapter

FIVE = ["n1", "n2", "n3", "n4", "n5"]


def node(nodes=FIVE, seed=1, start=0.0):
    clock = chapter.FakeClock(start)
    return chapter.RaftNode(nodes[0], nodes, clock=clock, sleep=clock.sleep,
                            rng=random.Random(seed)), clock


def test_defaults_are_the_chapters():
    n = chapter.RaftNode("a", ["a", "b"])
    assert n.state is chapter.NodeState.FOLLOWER and 150 <= n.election_timeout <= 300
    assert n.log == [] and n.next_index == {"a": 0, "b": 0}


@pytest.mark.parametrize("seed", range(5))
def test_a_follower_waits_the_timeout_in_seconds_not_milliseconds(seed):
    n, clock = node(seed=seed, start=500.0)
    chapter.run_until(n, lambda x: x.state is chapter.NodeState.CANDIDATE)
    waited = clock.now - 500.0
    assert n.election_timeout < waited <= n.election_timeout + 0.1 + 1e-6
    assert waited >= 150.0


def test_a_candidate_of_five_never_leads_and_never_yields():
    n, clock = node()
    chapter.run_until(n, lambda x: x.state is chapter.NodeState.CANDIDATE)
    sleeps = clock.sleeps
    chapter.run_until(n, lambda x: x.current_term >= 500)
    assert n.state is chapter.NodeState.FOLLOWER and n.current_term == 500
    assert clock.sleeps == sleeps


def test_only_a_cluster_of_one_elects_itself():
    n, clock = node(nodes=["solo"])
    chapter.run_until(n, lambda x: x.state is chapter.NodeState.LEADER)
    assert n.current_term == 1 and n.log == [] and n.commit_index == 0


def test_the_rpcs_return_none():
    import asyncio
    n, _ = node()
    assert asyncio.run(n._request_vote("n2")) is None
    assert asyncio.run(n._append_entries("n2")) is None


def test_run_until_gives_up_and_needs_the_fake_clock():
    n, _ = node()
    with pytest.raises(RuntimeError):
        chapter.run_until(n, lambda x: False, max_rounds=50)
    real = chapter.RaftNode("a", ["a", "b"])
    with pytest.raises(ValueError):
        chapter.run_until(real, lambda x: False, max_rounds=5)
