"""LiveTask: widgets animate as an asyncio task, never a blocking loop."""

from __future__ import annotations

import asyncio

import pytest

from course_lib.viz.live import LiveTask


def test_frames_run_on_the_loop_until_stopped():
    frames = []

    async def scenario():
        task = LiveTask(lambda: frames.append(len(frames)), interval=0.01)
        assert task.start() and task.running
        await asyncio.sleep(0.1)
        task.stop()
        seen = len(frames)
        await asyncio.sleep(0.05)
        return seen, task.running

    seen, running = asyncio.run(scenario())
    assert seen >= 3 and len(frames) == seen and not running


def test_coroutine_frames_are_awaited_and_errors_reported():
    errors = []

    async def frame():
        await asyncio.sleep(0)
        raise RuntimeError("boom")

    async def scenario():
        task = LiveTask(frame, interval=0.01, on_error=errors.append)
        task.start()
        await asyncio.sleep(0.05)
        return task.running

    assert asyncio.run(scenario()) is False
    assert [str(e) for e in errors] == ["boom"]


def test_without_a_running_loop_start_says_no():
    task = LiveTask(lambda: None, interval=0.1)
    assert task.start() is False and not task.running
    with pytest.raises(ValueError, match="interval"):
        LiveTask(lambda: None, interval=0)


def test_ensemble_widget_live_updates_and_messages(session_ensemble):
    from course_lib.viz.zk_widget import EnsembleWidget

    widget = EnsembleWidget(session_ensemble, interval=0.1)
    widget.start_live()  # no loop here: a message, not an exception
    assert "event loop" in widget.message.value and not widget.live_button.value

    async def scenario():
        widget.live_button.value = True  # the toggle button starts the task
        await asyncio.sleep(0.5)
        running = widget.live.running
        widget.live_button.value = False
        return running

    assert asyncio.run(scenario()) is True
    assert not widget.live.running
    assert sorted(s.mode for s in widget.statuses).count("leader") == 1
    widget.close()
