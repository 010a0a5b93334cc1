"""ClusterTimeline: a trace or a series of polls into events, reigns and faults
(no ipywidgets, no plotly)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from course_lib.raft import SimCluster
from course_lib.raft.timeline import ClusterTimeline, partition_groups


def read(c: SimCluster, tl: ClusterTimeline) -> ClusterTimeline:
    tl.read_trace(c.trace.raw)
    return tl


def test_it_imports_without_the_widget_libraries():
    code = ("import sys; sys.modules['ipywidgets'] = None; sys.modules['plotly'] = None; "
            "import course_lib.raft.timeline, course_lib.raft.control")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parents[1])
    assert done.returncode == 0, done.stderr


def test_an_election_from_the_trace_gives_a_leader_a_reign_and_votes():
    c = SimCluster(5, seed=1)
    tl = ClusterTimeline(c.hosts)
    c.run_until(lambda: c.leader() is not None, 2000)
    read(c, tl)
    lead, at = c.leader(), c.leader_changes[0][0]
    term = c.node(lead).current_term
    texts = [text for _t, _k, text in tl.events]
    assert f"{lead} wins the election: leader of term {term}" in texts
    assert sum(f"votes for {lead} in term {term}" in t for t in texts) >= 2
    assert tl.reigns(c.now) == [(at, c.now, term, lead)]
    assert tl.terms[-1] == (tl.terms[-1][0], term) and tl.max_term == term
    assert tl.faults(c.now) == []


def test_reading_twice_reads_each_record_once():
    c = SimCluster(3, seed=2)
    tl = ClusterTimeline(c.hosts)
    c.run_for(1000)
    read(c, tl)
    n = len(tl.events)
    read(c, tl)
    assert len(tl.events) == n


def test_a_crash_closes_the_reign_and_opens_a_down_interval_until_restart():
    c = SimCluster(5, seed=1)
    tl = ClusterTimeline(c.hosts)
    c.run_until(lambda: c.leader() is not None, 2000)
    lead = c.leader()
    c.run_for(100)
    crash_at = c.now
    c.crash(lead)
    c.run_for(1000)
    read(c, tl)
    assert [(k, s) for k, s, _e in tl.faults(c.now)] == [("server down", crash_at)]
    (old,) = [r for r in tl.reigns(c.now) if r[3] == lead]
    assert old[1] == crash_at, "the crashed leader's reign ends at the crash"
    new = c.leader()
    assert new not in (None, lead) and any(r[3] == new for r in tl.reigns(c.now))
    c.restart(lead)
    back = c.now
    c.run_for(10)
    read(c, tl)
    assert tl.faults(c.now) == [("server down", crash_at, back)]
    assert any("crashed" in text for _t, _k, text in tl.events)


def test_partitions_pauses_and_a_bad_network_are_intervals():
    c = SimCluster(5, seed=3)
    tl = ClusterTimeline(c.hosts)
    c.run_for(500)
    c.partition({"n1", "n2"}, {"n3", "n4", "n5"})
    c.run_for(200)
    c.heal()
    c.pause("n4")
    c.run_for(100)
    c.resume("n4")
    read(c, tl)
    tl.note_network(c.now, True)
    tl.note_network(c.now + 50, False)
    kinds = [(k, e - s) for k, s, e in tl.faults(c.now)]
    assert kinds == [("partition", 200.0), ("server down", 100.0), ("bad network", 50.0)]
    texts = " / ".join(t for _t, _k, t in tl.events)
    assert "network partitioned: n1 n2 | n3 n4 n5" in texts and "n4 paused" in texts


def test_split_votes_are_counted_once_per_leaderless_term():
    tl = ClusterTimeline(["n1", "n2", "n3"])
    tl.note_role(0, "n1", "candidate", 1)
    tl.note_role(1, "n2", "candidate", 1)
    tl.note_role(5, "n3", "candidate", 2)        # term 1 found no leader
    tl.note_role(6, "n3", "leader", 2)
    tl.note_role(9, "n1", "candidate", 3)        # term 2 had one: not a split
    assert tl.split_votes == 1
    (split,) = [text for _t, k, text in tl.events if k == "split"]
    assert "term 1: nobody won (candidates n1, n2" in split


def test_commits_are_reported_when_the_highest_commit_index_grows():
    tl = ClusterTimeline(["n1", "n2"])
    rows = {"n1": {"commit_index": 2, "term": 3}, "n2": {"commit_index": None, "term": None}}
    tl.note_commits(10, rows, "n1")
    tl.note_commits(11, rows, "n1")
    assert [text for _t, k, text in tl.events if k == "commit"] == [
        "entries 1-2 committed by leader n1 (term 3): a majority stores them"]


def row(state="follower", term=1, vote=None, alive=True, paused=False, cut=()):
    return {"alive": alive, "paused": paused, "responding": alive and not paused,
            "state": state if alive else None, "term": term if alive else None,
            "voted_for": vote, "commit_index": 0, "cut": cut}


def test_polls_give_the_same_kinds_of_events_as_a_trace():
    tl = ClusterTimeline(["n1", "n2", "n3"])
    tl.observe(0, {"n1": row(), "n2": row(), "n3": row()})
    tl.observe(100, {"n1": row("candidate", 2, "n1"), "n2": row(term=2, vote="n1"), "n3": row()})
    tl.observe(200, {"n1": row("leader", 2, "n1"), "n2": row(term=2, vote="n1"), "n3": row(term=2)})
    texts = [t for _t, _k, t in tl.events]
    assert "n1 timed out: election for term 2" in texts
    assert texts.count("n2 votes for n1 in term 2") == 1
    assert "n1 wins the election: leader of term 2" in texts
    assert tl.reigns(300) == [(200, 300, 2, "n1")]
    tl.observe(300, {"n1": row(alive=False), "n2": row(term=2, vote="n1"), "n3": row(term=2)})
    assert tl.reigns(400) == [(200, 300, 2, "n1")]
    tl.observe(400, {"n1": row(alive=False), "n2": row(term=2, vote="n1", paused=True),
                     "n3": row(term=2, cut=())})
    tl.observe(500, {"n1": row(term=2), "n2": row(term=2, vote="n1"), "n3": row(term=2)})
    faults = tl.faults(600)
    assert ("server down", 300, 500) in faults and ("server down", 400, 500) in faults
    assert any("n1 crashed (killed" in t for _t, _k, t in tl.events)
    assert any("n2 resumed" in t for _t, _k, t in tl.events)


def test_a_leader_seen_again_in_a_later_term_starts_a_new_reign():
    tl = ClusterTimeline(["n1"])
    tl.observe(0, {"n1": row("leader", 2)})
    tl.observe(100, {"n1": row("leader", 4)})   # it stepped down and won again between polls
    assert tl.reigns(200) == [(0, 100, 2, "n1"), (100, 200, 4, "n1")]


def test_cuts_in_polls_become_a_partition_and_heal():
    tl = ClusterTimeline(["n1", "n2", "n3"])
    groups = {"n1": row(cut=("n3",)), "n2": row(cut=("n3",)), "n3": row(cut=("n1", "n2"))}
    tl.observe(0, groups)
    tl.observe(50, {n: row() for n in groups})
    assert tl.faults(60) == [("partition", 0, 50)]
    assert "network partitioned: n1 n2 | n3" in [t for _t, _k, t in tl.events]
    assert partition_groups({"n1": {"n3"}, "n2": {"n3"}, "n3": {"n1", "n2"}, "n4": set()}) == [
        ("n1", "n2"), ("n3",)]
