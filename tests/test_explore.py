"""The bounded model checker (course_lib.check.explore) on the chapter's consensus, Paxos
and Raft: it finds the known bugs with shortest counterexamples, replays them in the
ordinary simulator, proves the safe versions to the same depth, and prunes by state."""

from __future__ import annotations

import pytest

from course_lib.check.explore import Step, explore, replay
from course_lib.consensus.explore import ChapterModel, PaxosModel
from course_lib.raft.explore import RaftModel


def chapter():
    return ChapterModel(values=("a", "b"))


def figure8(unsafe=True):
    return lambda: RaftModel(unsafe_commit_old_terms=unsafe, start="figure8")


def test_chapter_consensus_two_values_decided_in_four_steps_and_not_fewer():
    r = explore(chapter, depth=6)
    assert r.violated and r.length == 4
    assert "agreement" in r.violations[0]
    assert [s.kind for s in r.trace] == ["propose", "propose", "deliver", "deliver"]
    assert not explore(chapter, depth=3).violated, "4 is the minimal length"
    assert r.distinct < r.states, "state hashing pruned interleavings"


def test_chapter_counterexample_replays_in_the_simulator_deterministically():
    r = explore(chapter, depth=4)
    a, b = replay(chapter, r.trace), replay(chapter, r.trace)
    assert a.violated and a.first_violation_at == 4
    assert len(set(a.system.decided("x").values()) - {None}) == 2
    assert a.system.trace_digest() == b.system.trace_digest()
    assert [str(s) for s, _events in a.timeline] == [str(s) for s in r.trace]
    assert any(e.kind == "decide" for _s, events in a.timeline for e in events)


def test_copy_and_replay_modes_explore_the_same_graph():
    c, p = explore(chapter, depth=4, mode="copy"), explore(chapter, depth=4, mode="replay")
    assert (c.states, c.distinct, c.trace) == (p.states, p.distinct, p.trace)
    f = figure8()
    c, p = explore(f, depth=4, mode="copy"), explore(f, depth=4, mode="replay")
    assert (c.states, c.distinct, c.levels) == (p.states, p.distinct, p.levels)


def test_paxos_keeps_agreement_to_the_same_depth_and_beyond():
    r = explore(lambda: PaxosModel(values=("a", "b")), depth=5)
    assert not r.violated and r.depth == 5 and r.distinct < r.states


def test_paxos_with_a_crash_and_a_restart_keeps_agreement():
    r = explore(lambda: PaxosModel(values=("a", "b")), depth=4, faults={"crash": 1, "restart": 1})
    assert not r.violated and r.distinct < r.states


def test_raft_unsafe_commit_rule_figure8_minimal_counterexample():
    r = explore(figure8(True), depth=9)
    assert r.violated and r.length == 8
    assert "leader completeness" in r.violations[0]
    assert not explore(figure8(True), depth=7).violated, "8 is the minimal length"
    assert r.distinct < r.states
    # the steps: n1 re-elected in term 3, copies its term-1 entry to n3 and commits it
    # (the unsafe rule), then n2 (whose last entry has term 2) is elected in term 4
    words = r.steps_in_words()
    assert "AppendEntries(t3, prev 0@t0, [1@t1]" in words[5]
    assert words[-1].startswith("8. RequestVote(t4")


def test_raft_counterexample_replays_in_the_ordinary_simulator():
    f = figure8(True)
    r = explore(f, depth=8)
    a, b = replay(f, r.trace), replay(f, r.trace)
    assert a.violated and a.first_violation_at == 8
    c = a.system                                      # a SimCluster with its full trace
    assert c.safety_violations() and c.leader() == "n2"
    assert c.trace_digest() == b.system.trace_digest()
    # the entry n1 committed at index 1 (term 1) is not in n2's log (term 2 there)
    assert c.node("n1").commit_index >= 1 and c.node("n2").log.term_at(1) == 2


def test_raft_safe_commit_rule_holds_to_the_same_depth():
    r = explore(figure8(False), depth=8)
    assert not r.violated and r.depth == 8 and r.distinct < r.states


def test_raft_from_the_initial_state_with_every_message_a_step():
    r = explore(lambda: RaftModel(unsafe_commit_old_terms=True, network="messages"), depth=4)
    assert not r.violated and r.levels[:3] == [1, 3, 12]


def test_a_replayed_step_that_is_not_enabled_is_refused():
    with pytest.raises(ValueError, match="not enabled"):
        replay(chapter, [Step("deliver", "n2", "n1", "nothing")])


def test_bad_arguments():
    with pytest.raises(ValueError, match="depth"):
        explore(chapter, depth=-1)
    with pytest.raises(ValueError, match="fault kind"):
        explore(chapter, depth=1, faults={"meteor": 1})
    with pytest.raises(ValueError, match="bounds"):
        explore(chapter, depth=1, bounds={"crash": 1})
    with pytest.raises(ValueError, match="mode"):
        explore(chapter, depth=1, mode="magic")
    with pytest.raises(ValueError, match="start"):
        RaftModel(start="nowhere")
