"""The consensus widget of lesson 02_2: its model (``SideBySide``: held messages,
deliver / drop, schedules, the safety check) without ipywidgets, then the widget
headless (its buttons, and messages instead of tracebacks for actions that make no
sense)."""

from __future__ import annotations

import random

import pytest

from course_lib.consensus import TWO_VALUES, Ballot, SideBySide, parse_step
from course_lib.consensus.side_by_side import describe

ATTACK = ("n1->n1 Prepare", "n1->n2 Prepare", "n1->n1 Promise", "n2->n1 Promise",
          "n3->n2 Prepare", "n3->n3 Prepare", "n2->n3 Promise", "n3->n3 Promise",
          "n1->n2 Accept", "n1->n1 Accept", "n2->n1 Nack", "all")


def kinds(model, panel):
    return [h.kind for h in model.held(panel)]


# -- the model ------------------------------------------------------------------------------

def test_manual_from_the_start_holds_the_proposals_in_send_order():
    m = SideBySide(3, seed=7, manual=True)
    assert m.manual and m.proposed == {"n1": "red", "n3": "blue"}
    chapter = [(h.id, h.src, h.dst, h.kind, h.ballot, h.value) for h in m.held("chapter")]
    assert chapter == [(1, "n1", "n2", "Proposal", None, "red"), (2, "n1", "n3", "Proposal", None, "red"),
                       (3, "n3", "n1", "Proposal", None, "blue"), (4, "n3", "n2", "Proposal", None, "blue")]
    paxos = m.held("paxos")
    assert [(h.src, h.dst, h.kind, h.ballot) for h in paxos] == [
        ("n1", d, "Prepare", "1.n1") for d in ("n1", "n2", "n3")] + [
        ("n3", d, "Prepare", "1.n3") for d in ("n1", "n2", "n3")]
    m.advance(1000)
    assert len(m.held("chapter")) == 4, "time passes; nothing arrives by itself"
    assert all(v is None for p in ("chapter", "paxos") for v in m.decided(p).values())


def test_turning_manual_on_later_holds_what_is_in_flight():
    m = SideBySide(3, seed=7)
    assert not m.manual and m.held("chapter") == [] and len(m.in_flight("chapter")) == 4
    m.set_manual(True)
    assert sorted(kinds(m, "chapter")) == ["Proposal"] * 4 and kinds(m, "paxos") == ["Prepare"] * 6


def test_deliver_and_drop_take_one_message_and_replies_are_held():
    m = SideBySide(3, seed=7, manual=True)
    got = m.deliver("chapter", 2)                       # n1's red reaches n3, which has blue
    assert (got.src, got.dst, got.kind, got.value) == ("n1", "n3", "Proposal", "red")
    assert m.decided("chapter")["n3"] == "red"
    reply = m.held("chapter")[-1]
    assert (reply.src, reply.dst, reply.kind) == ("n3", "n1", "reply: accepted")
    m.drop("chapter", 1)
    assert [h.id for h in m.held("chapter")] == [3, 4, 5]
    assert m.cluster("chapter").network.dropped == 1
    with pytest.raises(ValueError, match="no message #1"):
        m.deliver("chapter", 1)
    with pytest.raises(ValueError, match="unknown protocol"):
        m.deliver("raft", 3)


def test_delivering_needs_manual_mode_and_mode_switches_refuse_nonsense():
    m = SideBySide(3, seed=7)
    with pytest.raises(ValueError, match="delivers by itself"):
        m.deliver("paxos", 1)
    with pytest.raises(ValueError, match="already automatic"):
        m.set_manual(False)
    m.set_manual(True)
    with pytest.raises(ValueError, match="already the network"):
        m.set_manual(True)
    with pytest.raises(ValueError, match="True or False"):
        m.set_manual("yes")


def test_the_two_values_schedule_breaks_the_chapter_and_not_paxos():
    m = SideBySide(3, seed=7, manual=True)
    results = m.run_schedule(TWO_VALUES)
    assert [(r.panel, r.step) for r in results] == [
        ("chapter", "n1->n3"), ("paxos", "n1->n3"), ("chapter", "n3->n1"), ("paxos", "n3->n1")]
    assert all(len(r.done) == 1 for r in results)
    assert m.decided("chapter") == {"n1": "blue", "n2": None, "n3": "red"}
    assert m.violated("chapter") and m.banner("chapter").startswith("SAFETY VIOLATED: two values decided")
    assert m.decided_values("paxos") == set() and m.banner("paxos") == "nothing decided yet"
    m.run_schedule(["all"])
    assert m.violated("chapter"), "a decision is never taken back"
    assert not m.violated("paxos") and len(set(m.decided("paxos").values())) == 1
    assert None not in m.decided("paxos").values()


def test_the_two_values_schedule_reproduces():
    def run():
        m = SideBySide(3, seed=7)
        m.set_manual(True)
        m.run_schedule(list(TWO_VALUES) + ["all"])
        return m.digests(), m.decided("chapter"), m.decided("paxos")

    first = run()
    assert run() == first
    assert first[1] == {"n1": "blue", "n2": "blue", "n3": "red"}


def test_an_attack_on_paxos_is_refused_with_a_nack():
    m = SideBySide(3, seed=7, manual=True)
    results = m.run_schedule(ATTACK, panel="paxos")
    assert all(r.done for r in results)
    nack = results[-2].done[0]
    assert "n2 → n1  Nack: promised 1.n3  ballot 1.n1" in nack
    paxos = m.cluster("paxos")
    assert paxos.acceptances[Ballot(1, "n1")] == {"n1": "red"}, "red never reaches a majority"
    assert paxos.chosen == {Ballot(1, "n3"): "blue"}
    assert m.decided("paxos") == {"n1": "blue", "n2": "blue", "n3": "blue"} and not m.violated("paxos")


def test_one_side_then_the_other_gives_the_chapter_two_values_and_paxos_the_first():
    m = SideBySide(3, seed=7, manual=True)
    m.run_schedule(["among n1 n2", "among n2 n3", "all"])
    assert m.violated("chapter")
    assert m.decided("paxos") == {"n1": "red", "n2": "red", "n3": "red"}


@pytest.mark.parametrize("n", [3, 5])
def test_paxos_never_decides_two_values_over_random_manual_schedules(n):
    proposals = [("n1", "red"), ("n3", "blue")] + ([("n5", "green")] if n == 5 else [])
    chapter_broken = paxos_decided = 0
    for seed in range(150):
        m = SideBySide(n, seed=seed, manual=True, proposals=proposals)
        m.run_random(random.Random(seed), steps=400, wait=0.15, fault=0.05)
        m.deliver_all()
        assert not m.violated("paxos"), (seed, m.summary())
        assert m.decided_values("paxos") <= {v for _n, v in proposals}
        chapter_broken += m.violated("chapter")
        paxos_decided += bool(m.decided_values("paxos"))
    assert chapter_broken > 75, "the same schedules break the chapter's protocol, often"
    assert paxos_decided > 30, "and Paxos often decides: the check is not vacuous"


def test_same_seed_same_actions_same_run_and_replay_rebuilds_it():
    def run(seed):
        m = SideBySide(3, seed=seed)
        m.advance(3)
        m.crash("n2")
        m.set_loss(0.2)
        m.advance(50)
        m.restart("n2")
        m.set_manual(True)
        m.run_random(random.Random(1), steps=30)
        return m

    a, b = run(4), run(4)
    assert a.digests() == b.digests() and a.actions == b.actions
    before = (a.digests(), a.decided("chapter"), a.decided("paxos"), a.now)
    a.replay()
    assert (a.digests(), a.decided("chapter"), a.decided("paxos"), a.now) == before
    assert run(5).digests() != before[0]
    a.reset()
    assert a.actions == [] and a.now == 0 and not a.manual


def test_faults_apply_to_both_and_refuse_nonsense():
    m = SideBySide(3, seed=7)
    m.crash("n1")
    assert not m.cluster("chapter").sim.is_alive("n1") and not m.cluster("paxos").sim.is_alive("n1")
    with pytest.raises(ValueError, match="already down"):
        m.crash("n1")
    m.crash("n2")
    with pytest.raises(ValueError, match="cannot propose"):
        m.propose("n2", "green")
    m.restart("n2")
    m.restart("n1")
    with pytest.raises(ValueError, match="it is up"):
        m.restart("n1")
    m.partition({"n1"}, {"n2", "n3"})
    assert ("n1", "n2") in m.cluster("chapter").network.cuts and ("n3", "n1") in m.cuts()
    with pytest.raises(ValueError, match="overlap"):
        m.partition({"n1", "n2"}, {"n2", "n3"})
    with pytest.raises(ValueError, match="unknown node"):
        m.partition({"n1"}, {"n9"})
    m.heal()
    assert m.cuts() == set()
    with pytest.raises(ValueError):
        m.set_loss(2)
    with pytest.raises(ValueError):
        m.set_delay(30, 10)
    with pytest.raises(ValueError, match="already proposes"):
        m.propose("n1", "green")
    with pytest.raises(ValueError):
        SideBySide(1)
    with pytest.raises(ValueError):
        SideBySide(3, seed="x")


def test_a_crash_makes_the_chapter_forget_and_paxos_remember():
    m = SideBySide(3, seed=7, manual=True)
    m.run_schedule(["n1->n3"] + list(ATTACK[:4]) + ["n1->n1 Accept"], panel="both")
    assert m.decided("chapter")["n3"] == "red"
    m.crash("n3")
    m.crash("n1")
    assert m.decided("chapter")["n3"] is None, "the chapter persists nothing"
    assert m.decisions("chapter") == [(0.0, "n3", "red")], "but the decision was made"
    assert m.cluster("paxos").hosts["n1"].core.accepted_value == "red", "Paxos persists its acceptance"


def test_schedule_steps_parse_and_bad_ones_raise_before_running():
    assert parse_step("n1->n3") == ("deliver", "link", "n1", "n3", None)
    assert parse_step("drop  n2 → n1 Nack") == ("drop", "link", "n2", "n1", "Nack")
    assert parse_step("#4") == ("deliver", "id", 4)
    assert parse_step("drop #4") == ("drop", "id", 4)
    assert parse_step("among n1, n2") == ("among", frozenset({"n1", "n2"}))
    assert parse_step("all") == ("all",)
    for bad in ("", "n1", "deliver", "among n1", 3):
        with pytest.raises(ValueError):
            parse_step(bad)
    m = SideBySide(3, seed=7, manual=True)
    with pytest.raises(ValueError, match="unknown node"):
        m.run_schedule(["n1->n3", "n1->n9"])
    assert len(m.held("chapter")) == 4, "nothing ran"
    results = m.run_schedule(["n2->n1"])                # n2 has sent nothing
    assert all(r.skipped for r in results)


def test_messages_read_as_a_learner_reads_them():
    m = SideBySide(3, seed=7, manual=True)
    m.run_schedule(ATTACK[:-1], panel="paxos")
    labels = [h.label() for h in m.held("paxos")]
    assert any("Accept  ballot 1.n3  blue" in s for s in labels)
    assert describe(object())[0] == "object"


# -- the widget, headless -------------------------------------------------------------------

@pytest.fixture
def w():
    from course_lib.viz.consensus_widget import ConsensusWidget
    widget = ConsensusWidget(3, seed=7)
    yield widget
    widget.close()


def test_widget_draws_both_panels(w):
    assert set(w.figures) == {"chapter", "paxos"}
    for p, fig in w.figures.items():
        assert list(fig.data[3].text) == ["n1", "n2", "n3"]
        assert len(fig.data[2].x) == len(w.model.in_flight(p))
        assert "nothing decided yet" in w.banners[p].value
    assert "automatic delivery" in w.status.value
    assert w._manual_boxes["chapter"].layout.display == "none"


def test_widget_buttons_steer_the_chapter_into_two_values(w):
    w.manual_toggle.value = True                       # the toggle, as clicked
    assert w.model.manual and w._manual_boxes["paxos"].layout.display == "flex"
    assert w.message_text.startswith("you are the network")
    chapter = w.held_select["chapter"]
    assert [label.split("  ")[1] for label, _ in chapter.options] == ["n1 → n3", "n3 → n1", "n1 → n2", "n3 → n2"]
    w.deliver_buttons["chapter"].click()               # the first one is selected
    w.deliver_buttons["chapter"].click()
    assert w.message_text.startswith("chapter: delivered #2  n3 → n1  Proposal  blue")
    assert "SAFETY VIOLATED: two values decided" in w.banners["chapter"].value
    fig = w.figures["chapter"]
    assert list(fig.data[4].text) == ["decided blue", "undecided", "decided red"]
    assert fig.data[3].marker.color[0] == "#4c78a8" and fig.data[3].marker.color[2] == "#e45756"
    w.deliver_all_button.click()
    assert w.message_text.startswith("delivered ") and "one value decided" in w.banners["paxos"].value
    assert "SAFETY VIOLATED" not in w.banners["paxos"].value
    assert "chapter: 0 waiting" in w.status.value


def test_widget_replay_steps_and_replay_button(w):
    results = w.replay_steps(TWO_VALUES)
    assert len(results) == 4 and w.model.violated("chapter") and not w.model.violated("paxos")
    assert w.message_text == "schedule of 2 step(s): delivered chapter 2, Paxos 2"
    assert w.manual_toggle.value is True
    digests = w.model.digests()
    w.replay_button.click()
    assert w.message_text.startswith("replayed ") and w.model.digests() == digests
    assert w.model.violated("chapter")
    assert w.replay_steps(["nonsense"]) == [] and w.message_text.startswith("schedule: not a step")
    w.reset_button.click()
    assert w.message_text == "new run with seed 7" and not w.model.violated("chapter")
    assert w.manual_toggle.value is False


def test_widget_network_controls(w):
    w.node_select.value = "n2"
    w.kill_button.click()
    assert w.message_text.startswith("killed n2")
    assert w.figures["paxos"].data[4].text[1] == "down"
    w.kill_button.click()
    assert w.message_text == "kill: cannot kill n2: it is already down"
    w.restart_button.click()
    assert w.message_text == "restarted n2"
    w.groups_text.value = "n1 | n2 n3"
    w.partition_button.click()
    assert w.message_text == "partitioned the network: n1 | n2 n3"
    assert len(w.figures["chapter"].data[1].x) == 6, "two cut links drawn"
    w.heal_button.click()
    assert w.message_text == "healed the network" and list(w.figures["chapter"].data[1].x) == []
    w.loss_slider.value = 0.2
    assert w.model.network_settings()[0] == 0.2 and w.message_text == "message loss 20%"
    w.delay_slider.value = (5, 50)
    assert w.model.network_settings()[1] == (5.0, 50.0)
    w.step_button.click()
    assert w.model.now == 10.0 and w.message_text == "t = 0.010 s"
    w.step(500)
    assert not w.model.violated("paxos") and w.model.decided_values("paxos")


def test_widget_shows_messages_for_nonsense(w):
    w.deliver_buttons["paxos"].click()
    assert w.message_text == ("deliver (Paxos): the network delivers by itself: "
                              "turn on 'You are the network' first")
    w.drop_buttons["chapter"].click()
    assert w.message_text.startswith("drop (chapter): the network delivers by itself")
    w.deliver_all_button.click()
    assert w.message_text.startswith("deliver all: the network delivers by itself")
    w.groups_text.value = "n1 n2"
    w.partition_button.click()
    assert w.message_text.startswith("partition: write at least two groups")
    assert w.partition("n1 | n9") is False and "unknown node" in w.message_text
    w.value_text.value = "green"
    w.propose_button.click()                           # n1 already proposes red
    assert w.message_text.startswith("propose: n1 already proposes 'red'")
    w.node_select.value = "n2"
    w.propose_button.click()
    assert w.message_text == "n2 proposes 'green' in both protocols"
    assert w.step(-1) is False and w.message_text.startswith("step: time must be")
    assert w.deliver("raft") is False and "unknown panel" in w.message_text
    assert w.set_loss(3) is False and w.loss_slider.value == 0.0
    w.set_manual(True)
    w.model.deliver_all()
    w.render()
    w.deliver_buttons["chapter"].click()
    assert w.message_text == "deliver (chapter): nothing is waiting in the chapter panel"
    assert w.deliver("chapter", 99) is False and "no message #99" in w.message_text
    assert w.pause() is False and w.message_text == "not playing"
    assert w.play() is False and "event loop" in w.message_text
    assert w.set_speed(5) is False


def test_widget_plays_on_a_running_loop():
    import asyncio

    from course_lib.viz.consensus_widget import ConsensusWidget

    async def go():
        w = ConsensusWidget(3, seed=7, speed=1.0)
        assert w.play() and w.running
        await asyncio.sleep(0.4)
        assert w.pause() and not w.running
        t = w.model.now
        await asyncio.sleep(0.2)
        assert w.model.now == t > 50
        w.close()
        return w

    w = asyncio.run(go())
    assert w.model.decided_values("paxos")


def test_widget_frames_are_cheap(w):
    w.set_manual(True)
    costs = [w.render() for _ in range(20)]
    assert min(costs) < 20
