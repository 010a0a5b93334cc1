"""EnsembleWidget on a real ensemble: a kill is followed without Live."""

from __future__ import annotations

import asyncio
import time

import pytest

from course_lib.viz.zk_widget import EnsembleWidget

pytestmark = pytest.mark.zk


def test_a_kill_is_followed_without_live_and_each_change_stamped_when_seen(private_ensemble):
    async def scenario():
        widget = EnsembleWidget(private_ensemble)
        old = private_ensemble.leader()
        killed_at = time.monotonic() - widget._began
        assert widget.kill(old)
        assert not widget.live.running, "Live stays off"
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and widget._follow.running:
            await asyncio.sleep(0.1)
        return widget, old, killed_at

    widget, old, killed_at = asyncio.run(scenario())
    modes = {s.id: s.mode for s in widget.statuses}
    assert modes[old] == "down" and list(modes.values()).count("leader") == 1, modes
    assert not widget._follow.running, "following stops once the ensemble has settled"
    elected = [t for t, text in widget.events if text.endswith("→ leader")]
    assert elected, widget.events
    # stamped when seen: within a few polls of the election, not when someone pressed Live
    assert killed_at <= elected[0] <= killed_at + 5.0, (killed_at, widget.events)
    assert widget.restart(old)
    private_ensemble.wait_until(lambda st: all(s.serving for s in st), 30, "all to serve")
    widget.close()


def test_nonsense_actions_show_a_message(private_ensemble):
    widget = EnsembleWidget(private_ensemble)
    assert widget.restart(1) is False and "already running" in widget.message_text
    assert widget.kill(7) is False and widget.message_text
    widget.close()
