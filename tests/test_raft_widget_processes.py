"""RaftClusterWidget over a ProcessCluster: the same buttons on real OS processes
(kill = SIGKILL, pause = SIGSTOP), the view fed by polling the nodes; headless."""

from __future__ import annotations

import asyncio
import re
import time

import pytest

from course_lib.net import ProcessCluster
from course_lib.viz.raft_widget import RaftClusterWidget
from tests.test_net_cluster import pids_of, wait_gone


def shown_leader(w) -> str:
    return re.search(r"leader <b>(\S+?)</b>", w.status.value).group(1)


def refresh_until(w, pred, timeout=15.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        w.refresh()
        if pred():
            return True
        time.sleep(0.1)
    return False


@pytest.fixture
def cw(tmp_path):
    c = ProcessCluster(3, data_dir=tmp_path / "raft", fsync=False)
    c.start()
    w = RaftClusterWidget(c)
    pids = pids_of(c)
    yield c, w
    w.close()
    c.stop()
    assert wait_gone(pids) == [], "no node process is left once the cluster stops"


def test_the_view_shows_the_polled_cluster(cw):
    c, w = cw
    assert not w.simulated and w.ids == ["n1", "n2", "n3"]
    assert refresh_until(w, lambda: shown_leader(w) != "none")
    lead = shown_leader(w)
    servers = w._trace("servers")
    assert servers.marker.color[w.ids.index(lead)] == "#54a24b"
    assert "wall-clock" in w.figures["timeline"].layout.xaxis.title.text
    assert any(k == "leader" and f"{lead} wins" in text for _t, k, text in w.events)
    for hidden in (w.step_button, w.loss_slider, w.manual_toggle, w.replay_button):
        assert hidden.layout.display == "none"
    assert w.elect_button.layout.display != "none"
    assert w.refresh_button.layout.display != "none"


def test_kill_the_leader_by_button_and_a_new_one_is_shown(cw):
    c, w = cw
    assert refresh_until(w, lambda: shown_leader(w) != "none")
    lead = shown_leader(w)
    pid = c.procs[lead].pid
    w.node_select.value = lead
    w.kill_button.click()
    assert w.message_text.startswith(f"killed {lead}") and c.procs[lead].poll() is not None
    assert wait_gone([pid]) == []
    assert refresh_until(w, lambda: shown_leader(w) not in ("none", lead))
    assert w._trace("servers").marker.color[w.ids.index(lead)] == "#b5b5b5"
    assert w._trace("fault-server down").x, "the kill is shaded on the timeline"
    w.kill_button.click()
    assert "already down" in w.message_text and "#c0392b" in w.message.value
    assert w.restart(lead) and c._alive(lead)
    assert refresh_until(w, lambda: w.cluster.states()[lead]["state"] == "follower")


def test_pause_deposes_the_leader_and_nonsense_shows_a_message(cw):
    c, w = cw
    assert refresh_until(w, lambda: shown_leader(w) != "none")
    lead = shown_leader(w)
    old_term = c.states()[lead]["term"]
    assert w.pause_server(lead) and w.message_text.startswith(f"paused {lead}")
    assert refresh_until(w, lambda: shown_leader(w) not in ("none", lead))
    for call, words in [(lambda: w.pause_server(lead), "already paused"),
                        (lambda: w.partition("n1 n2"), "two groups"),
                        (lambda: w.partition({"n1"}), "two groups"),
                        (lambda: w.kill("n9"), "unknown"),
                        (lambda: w.trigger_election(lead), "it is paused"),
                        (lambda: w.set_loss(0.2), "simulator"),
                        (lambda: w.set_manual(True), "simulator"),
                        (lambda: w.heal(), "no cut links"),
                        (lambda: w.replay(), "replay"),
                        (lambda: w.resume_server(next(n for n in w.ids if n != lead)), "not paused")]:
        n_actions = len(w.actions)
        assert call() is False, words
        assert words in w.message_text, (words, w.message_text)
        assert len(w.actions) == n_actions
    assert w.step() == 0.0 and "own clock" in w.message_text
    assert w.resume_server(lead)
    assert refresh_until(w, lambda: (s := c.states()[lead])["state"] == "follower" and s["term"] > old_term)
    assert any(k == "leader" and f"{lead} steps down" in text for _t, k, text in w.events)
    assert any("paused" in text for _t, k, text in w.events if k == "fault")


def test_partition_heal_and_client_writes_on_processes(cw):
    c, w = cw
    assert refresh_until(w, lambda: shown_leader(w) != "none")
    lead = shown_leader(w)
    others = [n for n in w.ids if n != lead]
    assert w.partition({lead}, set(others))
    assert refresh_until(w, lambda: shown_leader(w) in others)
    assert w._trace("cuts").x
    assert w.heal() and refresh_until(w, lambda: not w._trace("cuts").x)
    assert w.client_write("k", "v")
    assert refresh_until(w, lambda: w.last_write.done)
    assert not w.last_write.timed_out and w.last_write.error is None
    assert c.client("check").get("k") == "v"
    assert any("client w1: put k v done" in text for _t, _k, text in w.events)
    assert w.set_load(2)
    assert refresh_until(w, lambda: len(c.history) >= 10)
    assert w.set_load(0) and w.load_slider.value == 0
    assert any(k == "commit" for _t, k, _text in w.events)


def test_play_polls_the_nodes_on_the_kernels_loop(cw):
    c, w = cw

    async def scenario():
        t0 = w.control.now
        frames = len(w.frame_ms)
        assert w.play() and "polling" in w.message_text
        await asyncio.sleep(0.8)
        w.pause()
        return len(w.frame_ms) - frames, w.control.now - t0
    frames, waited = asyncio.run(scenario())
    assert frames >= 3 and 700 <= waited < 5000
    assert not w.running and re.search(r"t = <b>[\d.]+ s</b>", w.status.value)


def test_the_log_grid_shows_the_terms_the_nodes_report(cw):
    c, w = cw
    assert refresh_until(w, lambda: shown_leader(w) != "none")
    writer = c.client("grid")
    for i in range(5):
        writer.put(f"k{i}", str(i))
    term = c.states()[shown_leader(w)]["term"]
    assert refresh_until(w, lambda: all((w.control._states.get(n) or {}).get("last_index", 0) >= 5
                                        for n in w.ids))
    lo, rows = w.control.log_window(8)
    for nid, (terms, _commit, _snap) in rows.items():
        held = [t for t in terms if t is not None]
        assert held and "?" not in held, (nid, terms)
        assert held[-1] == term, (nid, terms, term)       # the latest writes: this leader's term


def test_trigger_election_on_a_process_makes_it_lead(cw):
    c, w = cw
    assert refresh_until(w, lambda: shown_leader(w) != "none")
    lead = shown_leader(w)
    term = c.states()[lead]["term"]
    other = next(n for n in w.ids if n != lead)
    assert w.trigger_election(other), w.message.value
    assert refresh_until(w, lambda: shown_leader(w) == other)
    assert c.states()[other]["term"] > term
    assert not w.trigger_election(other)                 # already the leader: a message
    assert "already the leader" in w.message.value
    with pytest.raises(ValueError, match="unknown node"):
        c.timeout_now("n9")
