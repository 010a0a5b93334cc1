"""course_lib.viz.raft_widget: every control, through its method and its button."""

from __future__ import annotations

import asyncio
import time

import pytest

from course_lib.raft import NodeState
from course_lib.viz.raft_widget import (
    FAULT_KINDS, MESSAGE_KINDS, Action, RaftClusterWidget, message_kind, parse_groups,
)


@pytest.fixture
def w():
    widget = RaftClusterWidget(5, seed=1)
    widget.step(1000)
    assert widget.cluster.leader() is not None
    yield widget
    widget.close()


def trace(w, key):
    return w._trace(key)


def test_every_trace_key_names_its_own_trace(w):
    keys = list(w._trace_index)
    assert keys[:2] == ["cuts", "links"]
    assert [k for k in keys if k.startswith("msg-")] == [f"msg-{k}" for k in MESSAGE_KINDS]
    assert [k for k in keys if k.startswith("fault-")] == [f"fault-{k}" for k in FAULT_KINDS]
    assert {"servers", "labels", "log", "committed", "compacted", "term", "reigns", "leaders"} <= set(keys)
    for name, fig in w.figures.items():
        assert sorted(i for f, i in w._trace_index.values() if f == name) == list(range(len(fig.data)))
    assert w.figure is w.figures["ring"]
    assert w._trace("log").type == "heatmap" and w._trace("servers").type == "scatter"


def test_bad_construction_arguments_raise_value_error():
    with pytest.raises(ValueError):
        RaftClusterWidget(0)
    with pytest.raises(ValueError):
        RaftClusterWidget(5, fps=60)
    with pytest.raises(ValueError):
        RaftClusterWidget(5, election_timeout_ms=(300, 150))


def test_frame_shows_the_cluster_state(w):
    w.client_write("x", "1")
    w.step(300)
    states = w.cluster.states()
    servers = trace(w, "servers")
    lead = w.cluster.leader()
    assert list(servers.text) == w.ids
    assert servers.marker.color[w.ids.index(lead)] == "#54a24b"
    labels = trace(w, "labels").text
    for k, nid in enumerate(w.ids):
        assert f"term {states[nid]['term']}" in labels[k]
        assert f"commit {states[nid]['commit_index']}" in labels[k]
    log = trace(w, "log")
    last = max(s["last_index"] for s in states.values())
    assert list(log.y) == w.ids and len(log.x) == w.log_window
    assert log.x[0] <= last <= log.x[-1]  # the window shows the newest entry
    for row, nid in zip(log.z, w.ids):
        node_log = w.cluster.node(nid).log
        for i, cell in zip(log.x, row):
            expect = node_log.term_at(i) % 10 if i <= node_log.last_index else None
            assert cell == expect
    committed = set(zip(trace(w, "committed").x, trace(w, "committed").y))
    assert committed == {(i, nid) for nid in w.ids for i in log.x
                         if i <= w.cluster.node(nid).commit_index}
    dots = sum(len(trace(w, f"msg-{k}").x) for k in MESSAGE_KINDS)
    assert dots == len(w.cluster.in_flight())
    assert trace(w, "leaders").text[-1] == lead
    assert f"leader <b>{lead}</b>" in w.status.value


def test_messages_in_flight_are_drawn_between_their_ends():
    w = RaftClusterWidget(5, seed=2, latency_ms=(20, 30))
    w.step(600)
    assert w.cluster.in_flight()
    kinds = {message_kind(m.msg) for m in w.cluster.in_flight()}
    assert kinds & {"heartbeat", "append", "append reply"}
    for k in kinds:
        assert len(trace(w, f"msg-{k}").x) == sum(1 for m in w.cluster.in_flight() if message_kind(m.msg) == k)
    w.close()


def test_kill_restart_by_method_and_button(w):
    lead = w.cluster.leader()
    w.node_select.value = lead
    w.kill_button.click()
    assert not w.cluster.node(lead).alive and w.message_text.startswith("killed")
    assert trace(w, "servers").marker.color[w.ids.index(lead)] == "#b5b5b5"
    assert trace(w, "fault-server down").x, "the crash is shaded on the timeline"
    w.step(1000)
    assert w.cluster.leader() not in (None, lead)
    assert w.restart(lead) is True and w.cluster.node(lead).alive
    w.step(500)
    assert w.cluster.node(lead).state is NodeState.FOLLOWER


def test_nonsense_actions_show_a_message_and_never_raise(w):
    lead = w.cluster.leader()
    assert w.kill(lead)
    for call, words in [
        (lambda: w.kill(lead), "already down"),
        (lambda: w.kill("n9"), "unknown"),
        (lambda: w.restart(w.ids[0] if w.ids[0] != lead else w.ids[1]), "it is up"),
        (lambda: w.trigger_election(lead), "down"),
        (lambda: w.partition("n1 n2"), "two groups"),
        (lambda: w.partition("n1 n2 | n2 n3"), "overlap"),
        (lambda: w.partition({"n1"}, {"n7"}), "unknown"),
        (lambda: w.heal(), "no cut links"),
        (lambda: w.client_write(""), "key"),
        (lambda: w.set_loss(2.0), "probability"),
        (lambda: w.set_delay(50, 10), "delay"),
        (lambda: w.set_duplication(-1), "probability"),
        (lambda: w.set_load(99), "client load"),
        (lambda: w.set_speed(0), "speed"),
    ]:
        n_actions = len(w.actions)
        assert call() is False, words
        assert words in w.message_text, (words, w.message_text)
        assert "#c0392b" in w.message.value
        assert len(w.actions) == n_actions, "a refused action is not recorded"
    w.step(1000)
    new = w.cluster.leader()
    assert w.trigger_election(new) is False and "already the leader" in w.message_text
    w.kill_button.description  # the buttons still exist
    w.node_select.value = lead
    w.kill_button.click()
    assert "already down" in w.message_text


def test_partition_and_heal_by_text_and_button(w):
    lead = w.cluster.leader()
    others = [n for n in w.ids if n != lead]
    w.groups_text.value = f"{lead} {others[0]} | {' '.join(others[1:])}"
    w.partition_button.click()
    assert w.message_text.startswith("partitioned")
    assert (lead, others[1]) in w.cluster.network.cuts
    assert trace(w, "cuts").x, "cut links are drawn"
    w.step(1500)
    assert w.cluster.leader() in others[1:]
    w.heal_button.click()
    assert not w.cluster.network.cuts and w.message_text == "healed the network"
    assert not trace(w, "cuts").x
    assert trace(w, "fault-partition").x
    assert parse_groups("n1,n2 | n3") == [{"n1", "n2"}, {"n3"}]
    assert w.partition({"n1"}, {"n2", "n3"}) is True


def test_trigger_election_by_button(w):
    follower = next(n for n in w.ids if w.cluster.node(n).state is NodeState.FOLLOWER)
    w.node_select.value = follower
    w.elect_button.click()
    w.step(500)
    assert w.cluster.leader() == follower
    assert any(kind == "election" and follower in text and "told" in text for _t, kind, text in w.events)


def test_client_write_and_load(w):
    w.key_text.value, w.value_text.value = "k", "v"
    w.write_button.click()
    w.step(500)
    assert w.last_write.done and not w.last_write.timed_out
    assert w.cluster.node(w.cluster.leader()).kv.data["k"] == "v"
    assert w.client_write() is True          # auto value
    w.load_slider.value = 2
    assert w.actions[-1] == Action(w.cluster.now, "set_load", (2,))
    before = len(w.cluster.history)
    w.step(500)
    assert len(w.cluster.history) > before + 10
    w.set_load(0)
    assert w.load_slider.value == 0
    w.step(200)
    settled = len(w.cluster.history)
    w.step(500)
    assert len(w.cluster.history) == settled


def test_network_sliders_reach_the_model(w):
    w.loss_slider.value = 0.2
    w.dup_slider.value = 0.1
    w.delay_slider.value = (10, 30)
    net = w.cluster.network
    assert (net.drop_rate, net.duplicate_rate, net.delay_ms) == (0.2, 0.1, (10.0, 30.0))
    w.step(1000)
    assert net.dropped > 0 and net.duplicated > 0
    assert trace(w, "fault-bad network").x
    assert w.set_loss(0.0) and w.loss_slider.value == 0.0
    assert [a.method for a in w.actions] == ["set_loss", "set_duplication", "set_delay", "set_loss"]


def test_speed_and_step_buttons(w):
    w.speed_slider.value = 1.0
    assert w.speed == 1.0
    t = w.cluster.now
    w.step_button.click()
    assert w.cluster.now == t + w.step_ms


def test_replay_gives_the_same_trace_digest(w):
    lead = w.cluster.leader()
    w.set_load(1)
    w.step(300)
    w.kill(lead)
    w.set_loss(0.1)
    w.step(700)
    w.partition("n1 n2 | n3 n4 n5")
    w.client_write("a", "b")
    w.step(900)
    w.heal()
    w.restart(lead)
    w.set_duplication(0.05)
    w.step(1000)
    digest, now, actions = w.cluster.trace_digest(), w.cluster.now, list(w.actions)
    old = w.cluster
    w.replay_button.click()
    assert w.cluster is not old and w.message_text.startswith("replayed 8 action(s)")
    assert w.cluster.now == now and w.actions == actions
    assert w.cluster.trace_digest() == digest
    assert w.loss_slider.value == 0.1 and w.load_slider.value == 1
    assert w.replay() and w.cluster.trace_digest() == digest       # and again
    w.seed_box.value = 2                                            # another world
    w.replay()
    assert w.cluster.trace_digest() != digest and w.cluster.seed == 2
    w.reset_button.click()
    assert w.actions == [] and w.cluster.now == 0 and w.cluster.seed == 2


def test_events_are_in_plain_words(w):
    lead = w.cluster.leader()
    texts = [text for _t, _k, text in w.events]
    assert any(f"{lead} wins the election" in t for t in texts)
    assert any("votes for " + lead in t for t in texts)
    w.client_write("x", "1")
    w.step(300)
    w.kill(lead)
    w.step(1000)
    kinds = {k for _t, k, _x in w.events}
    assert {"election", "vote", "leader", "commit", "fault", "client"} <= kinds
    assert "crashed" in w.event_log.value


def test_split_votes_are_reported():
    w = RaftClusterWidget(5, seed=4, election_timeout_ms=(150, 152), pre_vote=False,
                          check_quorum=False, latency_ms=(2, 3), tick_ms=1)
    w.trigger_election("n1")
    w.step(300)
    w.kill("n1")
    w.step(3000)
    assert w.split_votes >= 2
    assert any(k == "split" and "nobody won" in text for _t, k, text in w.events)
    w.close()


def test_play_and_pause_run_an_asyncio_task(w):
    async def scenario():
        w.set_speed(1.0)
        t = w.cluster.now
        w.play_button.click()
        assert w.running
        await asyncio.sleep(0.35)
        w.pause_button.click()
        assert not w.running
        return w.cluster.now - t
    played = asyncio.run(scenario())
    assert 100 <= played <= 1000
    assert w.pause() is False and "not playing" in w.message_text


def test_play_without_a_loop_says_so(w):
    assert w.play() is False and "event loop" in w.message_text


def test_close_stops_everything(w):
    async def scenario():
        w.play()
        await asyncio.sleep(0.05)
        w.close()
        await asyncio.sleep(0.05)
    asyncio.run(scenario())
    assert not w.running and w.kill("n1") is False and "closed" in w.message_text


def test_frame_cost_is_small(w):
    w.set_load(2)
    costs = sorted(w.step(20) for _ in range(50))
    assert costs[len(costs) // 2] < 20


# ---------------------------------------------------------------- keeping the browser fluid
def ack(fig, edit_id=None):
    """What plotly's front end sends once it has drawn an update."""
    ack.n = getattr(ack, "n", 0) + 1             # a new value each time, as the browser's are
    fig._js2py_traceDeltas = {"trace_deltas": [], "n": ack.n, "trace_edit_id":
                              fig._last_trace_edit_id if edit_id is None else edit_id}


def test_a_frame_sends_only_the_figures_and_values_that_changed(w):
    w.render()
    sent = {name: fig._last_trace_edit_id for name, fig in w.figures.items()}
    w.render()                                   # nothing happened: nothing is sent
    assert {name: fig._last_trace_edit_id for name, fig in w.figures.items()} == sent
    while not w.cluster.in_flight():             # messages move; logs and terms do not
        w.cluster.run_for(1)
    w.render(live=True)
    assert w.figures["ring"]._last_trace_edit_id == sent["ring"] + 1
    assert w.figures["logs"]._last_trace_edit_id == sent["logs"]
    assert w.figures["timeline"]._last_trace_edit_id == sent["timeline"]
    w.kill(w.cluster.leader())                   # news: the timeline is redrawn at once
    assert w.figures["timeline"]._last_trace_edit_id == sent["timeline"] + 1


def test_live_frames_wait_for_the_browser_and_slow_down_when_it_lags(w):
    from course_lib.viz.frame_pacing import FramePacer

    clock = [0.0]
    w._pacer = pacer = FramePacer(10, min_fps=1, clock=lambda: clock[0])
    for name, fig in w.figures.items():
        pacer.watch(fig)
    assert pacer.ready() and pacer.interval == 0.1      # no view ever answered: headless
    w._sent.forget()
    w.render(live=True)
    for fig in w.figures.values():
        ack(fig)
    assert pacer.answered and pacer.ready()
    w._sent.forget()
    w.render(live=True)
    clock[0] += 0.3
    assert not pacer.ready(), "the ring's update is not drawn yet"
    w._last_frame = 0
    skipped = w.skipped_frames
    w._live_frame()
    assert w.skipped_frames == skipped + 1
    for fig in w.figures.values():
        ack(fig)
    assert pacer.ready()
    assert 0.2 < pacer.interval <= 1.0, "a slow browser gets fewer frames"
    w._sent.forget()
    w.render(live=True)
    clock[0] += 5.0                                     # the view went away
    assert pacer.ready() and pacer.timeouts >= 1


def test_pacing_off_sends_at_the_fixed_rate():
    w = RaftClusterWidget(5, seed=1, pacing=False)
    w.step(500)
    w._pacer.answered = True
    w._pacer._pending[id(w.figure)] = (99, 0.0)
    before = w.figure._last_trace_edit_id
    while not w.cluster.in_flight():             # something to draw
        w.cluster.run_for(1)
    w._last_frame = time.perf_counter()
    w._live_frame()
    assert w.figure._last_trace_edit_id == before + 1 and w.skipped_frames == 0
    w.close()


def test_controls_fit_their_labels(w):
    for b in (w.play_button, w.pause_button, w.step_button, w.kill_button, w.restart_button,
              w.elect_button, w.partition_button, w.heal_button, w.write_button,
              w.replay_button, w.reset_button):
        icon = 16 if b.icon else 0
        assert int(b.layout.width.rstrip("px")) >= 7 * len(b.description) + icon + 16, b.description


# ---------------------------------------------------------------- you are the network
def test_manual_mode_holds_messages_until_the_learner_delivers_them():
    w = RaftClusterWidget(5, seed=1, pre_vote=False)
    w.manual_toggle.value = True                 # the toggle calls set_manual(True)
    assert w.cluster.manual_delivery and w.actions[-1].method == "set_manual"
    assert w._manual_box.layout.display == "flex"
    assert w.expire_timer("n1") and w.cluster.node("n1").core.state is NodeState.CANDIDATE
    w.step(100)
    rows = w.held()
    assert rows and all(r[1] == "n1" and r[3] == "RequestVote" and r[4] == 1 for r in rows)
    assert w.cluster.network.delivered == 0, "nothing arrives by itself"
    assert [v for _label, v in w.held_select.options] == [r[0] for r in rows]
    assert sum(len(trace(w, f"msg-{k}").x) for k in MESSAGE_KINDS) == len(rows)
    to_n2 = next(r[0] for r in rows if r[2] == "n2")
    w.held_select.value = to_n2
    w.deliver_button.click()
    assert w.message_text.startswith(f"delivered #{to_n2}") and w.cluster.node("n2").core.voted_for == "n1"
    reply = next(r for r in w.held() if r[3] == "vote granted")
    votes = dict(w.cluster.node("n1").core.votes)
    assert w.deliver(reply[0]) and w.cluster.node("n1").core.votes == {**votes, "n2": True}
    w.close()


def test_manual_mode_drop_and_refusals_show_messages():
    w = RaftClusterWidget(5, seed=1)
    assert w.deliver() is False and "by itself" in w.message_text
    assert w.set_manual(True)
    assert w.drop() is False and "no message is waiting" in w.message_text
    w.expire_timer("n2")
    first = w.held()[0]
    w.held_select.value = first[0]
    w.drop_button.click()
    assert first[0] not in [r[0] for r in w.held()] and w.message_text.startswith("dropped")
    assert w.deliver(999) is False and "no held message" in w.message_text
    assert w.expire_timer("n9") is False and "unknown" in w.message_text
    assert w.set_manual(True) is False and "already" in w.message_text
    w.manual_toggle.value = False
    assert not w.cluster.manual_delivery and w.held() == []
    w.step(1000)
    assert w.cluster.leader() is not None
    w.close()


def test_a_run_steered_by_hand_replays_exactly():
    w = RaftClusterWidget(5, seed=3, pre_vote=False)
    w.set_manual(True)
    w.expire_timer("n4")
    for _ in range(6):                           # deliver requests and replies in order
        w.deliver()
    w.step(200)
    w.drop()
    digest, now = w.cluster.trace_digest(), w.cluster.now
    assert w.replay() and w.cluster.trace_digest() == digest and w.cluster.now == now
    assert w.cluster.manual_delivery and w.manual_toggle.value is True
    assert any("timer is made to run out" in text for _t, _k, text in w.events)
    w.close()


def test_the_timeline_model_is_the_widgets():
    w = RaftClusterWidget(5, seed=1)
    w.step(1000)
    assert w.events is w.timeline.events and w.split_votes == w.timeline.split_votes
    lead = w.cluster.leader()
    assert list(trace(w, "leaders").text) == [r[3] for r in w.timeline.reigns(w.cluster.now)]
    assert lead in trace(w, "leaders").text
    w.close()
