"""RecoveryWidget and FailoverModel over real replica processes and the test session's
ZooKeeper ensemble, headless: buttons are clicked from code inside a running loop."""

from __future__ import annotations

import asyncio
import time

import pytest

from course_lib.recovery import ReplicaGroup
from course_lib.recovery.failover import FailoverModel
from course_lib.viz.recovery_widget import FOLLOW_INTERVAL, RecoveryWidget

pytestmark = pytest.mark.zk

SESSION_TIMEOUT = 2.0


@pytest.fixture
def group(session_ensemble, tmp_path):
    g = ReplicaGroup(tmp_path, ("a", "b"), session_timeout=SESSION_TIMEOUT,
                     hosts=session_ensemble.hosts)
    g.start("a")
    g.wait_for("primary", "a")
    g.start("b")
    g.wait_for("following", "b")
    yield g
    g.close()


async def until(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{what} did not happen within {timeout} s")


def status(widget, node):
    return widget.sample.server(node)


def test_kill_the_primary_by_button_shows_the_standby_promoted_with_a_higher_epoch(group):
    async def scenario():
        widget = RecoveryWidget(group)
        a = status(widget, "a")
        assert (a.status, a.epoch, status(widget, "b").status) == ("primary", 1, "standby")
        widget.writes_button.value = True                 # the Writes toggle
        await until(lambda: widget.model.acked >= 20, 10, "20 acknowledged writes")
        widget.kill_primary_button.click()
        assert "killed a" in widget.message_text, widget.message_text
        assert not widget.live.running, "Live stays off: the kill is followed anyway"
        await until(lambda: status(widget, "b").status == "primary", SESSION_TIMEOUT + 8,
                    "b shown as primary")
        b = status(widget, "b")
        assert b.epoch == 2 > a.epoch and status(widget, "a").status == "down"
        assert "<b>primary</b>" in widget.status.value and "down" in widget.status.value
        # the promotion's event line may arrive a poll after the role is seen
        await until(lambda: widget.model.failovers(), 3, "the promotion recorded")
        await asyncio.sleep(FOLLOW_INTERVAL * 2)
        promoted = widget.model.failovers()[-1]
        assert (promoted.node, promoted.epoch) == ("b", 2)
        # drawn: the promotion line and its label, the log positions, the refusals
        n = len(group.nodes)
        assert round(promoted.time, 2) in widget.figure.data[n + 3].x
        assert "b primary, epoch 2" in widget.figure.data[n + 4].text
        await until(lambda: any(not w.ok for w in widget.model.writes), 5, "a refused write")
        refused = [w for w in widget.model.writes if not w.ok]
        assert {w.error for w in refused} <= {"NotEnoughReplicas", "TimeoutError"}, refused
        before = widget.model.acked
        widget.buttons[("restart", "a")].click()          # a rejoins as the standby
        await until(lambda: status(widget, "a").status == "standby", 10, "a shown as standby")
        await until(lambda: widget.model.acked > before + 5, 10, "writes acknowledged again")
        widget.writes_button.value = False
        assert status(widget, "a").epoch == 2
        acked = {w.seq for w in widget.model.writes if w.ok}
        assert len(acked) == widget.model.acked, "every acknowledged write has its own seq"
        return widget

    widget = asyncio.run(scenario())
    procs = list(group.procs.values())
    widget.close()
    assert all(p.poll() is not None for p in procs), "no replica process left after close"
    assert not widget.model.writing


def test_a_paused_primary_is_shown_paused_replaced_then_gone(group):
    async def scenario():
        widget = RecoveryWidget(group)
        assert widget.pause("a")
        assert status(widget, "a").status == "paused"
        assert status(widget, "a").session == "frozen"
        await until(lambda: status(widget, "b").status == "primary", SESSION_TIMEOUT + 8,
                    "b promoted while a is frozen")
        assert status(widget, "b").epoch == 2
        assert widget.buttons[("resume", "a")].click() is None
        await until(lambda: status(widget, "a").status == "down", 8, "a gone after waking")
        kinds = [(m.node, m.kind) for m in widget.model.moments]
        assert ("a", "pause") in kinds and ("b", "primary") in kinds and ("a", "resume") in kinds
        assert ("a", "exited") in kinds, kinds          # self-fencing: session lost, exited 3
        assert "session was lost" in status(widget, "a").detail
        return widget

    widget = asyncio.run(scenario())
    widget.close()
    assert all(p.poll() is not None for p in group.procs.values())


def test_actions_that_make_no_sense_show_a_message_not_a_traceback(group):
    widget = RecoveryWidget(group)
    assert widget.resume("a") is False and "not paused" in widget.message_text
    assert widget.restart("b") is False and "running" in widget.message_text
    assert widget.act("kill", "c") is False and "unknown server" in widget.message_text
    assert widget.act("explode", "a") is False and "unknown action" in widget.message_text
    widget.model.act("kill", "b")
    widget.refresh()
    assert widget.kill("b") is False and "not running" in widget.message_text
    assert widget.kill("standby") is False and "no server is standby" in widget.message_text
    widget.close()
    assert widget.kill("a") is False and "closed" in widget.message_text
    assert all(p.poll() is not None for p in group.procs.values())


def test_the_model_alone_reports_roles_lag_and_session_without_ipywidgets(group):
    model = FailoverModel(group)
    try:
        for i in range(5):
            assert model.write_once(f"k{i}", i).ok
        sample = model.poll()
        a, b = sample.server("a"), sample.server("b")
        assert (a.status, b.status) == ("primary", "standby")
        assert a.session == b.session == "CONNECTED"
        assert a.last_seq == 5 and b.lag in (0, 1)     # b may learn of the last commit late
        assert model.resolve("primary") == "a" and model.resolve("standby") == "b"
        with pytest.raises(ValueError, match="already paused"):
            model.act("pause", "b")
            model.act("pause", "b")
        model.act("resume", "b")
        assert [m.kind for m in model.moments if m.node == "b"][-2:] == ["pause", "resume"]
    finally:
        model.close()
    assert all(p.poll() is not None for p in group.procs.values())
