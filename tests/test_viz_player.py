"""LivePlayer: the Play / Pause of the Raft, consensus and monitoring widgets, on its own."""

from __future__ import annotations

import asyncio

import plotly.graph_objects as go
import pytest

from course_lib.viz.frame_pacing import AckFigureWidget, FramePacer
from course_lib.viz.player import LivePlayer


class Host:
    """What a widget gives its player: a model that counts the time it was moved, a
    drawing that counts its frames, a message line, two buttons."""

    def __init__(self, **options) -> None:
        self.moved, self.drawn, self.skipped, self.redrawn = [], [], [], 0
        self.messages: list = []
        self.closed = False
        self.advance = options.pop("advance", lambda s: self.moved.append(s))
        self.player = LivePlayer(advance=lambda s: self.advance(s), draw=self.drawn.append,
                                 redraw=self._redraw, say=self.say, closed=lambda: self.closed,
                                 skipped=self.skipped.append, **options)
        self.play_button, self.pause_button = self.player.make_buttons(
            lambda: self.player.play("playing"), lambda: self.player.pause())

    def _redraw(self) -> None:
        self.redrawn += 1

    def say(self, text: str, ok: bool = True) -> bool:
        self.messages.append((text, ok))
        return ok

    @property
    def styles(self) -> tuple:
        return self.play_button.button_style, self.pause_button.button_style


def ack(fig) -> None:
    """What plotly's front end sends once it has drawn the figure's last update."""
    ack.n = getattr(ack, "n", 0) + 1
    fig._js2py_traceDeltas = {"trace_deltas": [], "n": ack.n, "trace_edit_id": fig._last_trace_edit_id}


def update(fig, player) -> None:
    with fig.batch_update():
        fig.layout.title = f"frame {fig._last_trace_edit_id}"
    player.pacer.sent(fig)


@pytest.mark.parametrize("fps", [0, 0.4, 11, True, "5"])
def test_fps_out_of_range_is_refused_by_name(fps):
    with pytest.raises(ValueError, match="fps must be 0.5 to 10"):
        Host(fps=fps)


def test_without_a_loop_play_says_how_to_step_and_nothing_runs():
    host = Host(fps=5, hint="use Step")
    assert host.player.play("playing") is False and not host.player.running
    assert host.messages[-1] == ("Play needs a running event loop (a Jupyter kernel); use Step", False)
    assert host.styles == ("success", "")
    assert host.player.pause() is False and host.messages[-1] == ("not playing", False)


def test_play_moves_the_model_by_the_real_time_elapsed_and_pause_stops_it():
    host = Host(fps=10)

    host.player.task.interval = 0.7             # as a slow browser left it, before a Pause

    async def scenario():
        assert host.player.play("playing at 1x") and host.player.running
        assert host.player.task.interval == pytest.approx(0.1), "Play starts at fps again"
        assert host.styles == ("", "warning"), "while playing, Pause is the coloured button"
        assert host.player.play("again") is True and host.messages[-1] == ("already playing", True)
        await asyncio.sleep(0.45)
        assert host.player.pause("paused at t = 3 s")
        frames = len(host.moved)
        await asyncio.sleep(0.15)
        return frames

    frames = asyncio.run(scenario())
    assert 2 <= frames <= 6 and len(host.moved) == frames, "no frame after Pause"
    assert 0.3 <= sum(host.moved) <= 0.6, "each frame moves the model by the time since the last"
    assert len(host.drawn) == frames and host.redrawn == 1, "headless, no frame waits for a browser"
    assert host.messages[-1] == ("paused at t = 3 s", True) and host.styles == ("success", "")


def test_a_frame_waits_for_the_browser_but_the_model_runs_on():
    host = Host(fps=10)
    clock = [0.0]
    host.player.pacer = pacer = FramePacer(10, min_fps=1, clock=lambda: clock[0])
    fig = AckFigureWidget(go.Figure())
    pacer.watch(fig)
    update(fig, host.player)
    ack(fig)                                    # a view answers: pacing is on from now
    update(fig, host.player)
    clock[0] += 0.3
    ack(fig)                                    # ... 0.3 s after the update
    host.player.frame()
    assert host.drawn == [None]
    # the next frame waits 2 x the smoothed round trip (0.7 x 0 s + 0.3 x 0.3 s), not 1 / fps
    assert host.player.task.interval == pytest.approx(0.18), "a slow browser gets fewer frames"
    update(fig, host.player)                    # not drawn by the browser yet
    host.player.frame()
    assert host.player.skipped_frames == 1 and host.drawn == [None] and host.skipped == [None]
    assert len(host.moved) == 2, "a skipped frame still moves the model"
    assert host.player.task.interval == pytest.approx(0.1), "look again soon"
    ack(fig)
    host.player.frame()
    assert host.drawn == [None, None] and host.player.skipped_frames == 1


def test_pacing_off_draws_every_frame_at_the_fixed_rate():
    host = Host(fps=4, pacing=False)
    fig = AckFigureWidget(go.Figure())
    host.player.pacer.watch(fig)
    update(fig, host.player)
    ack(fig)
    update(fig, host.player)                    # unanswered, and drawn over anyway
    host.player.frame()
    assert host.drawn == [None] and host.player.skipped_frames == 0
    assert host.player.task.interval == pytest.approx(0.25)


def test_a_model_read_off_the_loop_is_drawn_once_read_unless_the_widget_closed():
    async def fetch():
        await asyncio.sleep(0)
        return {"n1": "leader"}

    host = Host(fps=10, advance=lambda s: fetch())

    async def scenario():
        await host.player.frame()
        host.closed = True
        await host.player.frame()

    asyncio.run(scenario())
    assert host.drawn == [{"n1": "leader"}]


def test_an_error_in_a_frame_stops_playing_and_says_what_happened():
    host = Host(fps=10, advance=lambda s: 1 / 0)

    async def scenario():
        host.player.play("playing")
        await asyncio.sleep(0.05)
        return host.player.running

    assert asyncio.run(scenario()) is False
    assert host.messages[-1] == ("playing stopped: ZeroDivisionError: division by zero", False)
    assert host.styles == ("success", ""), "Play is offered again"


def test_a_closed_widget_does_not_play():
    host = Host(fps=10)
    host.closed = True
    assert host.player.play("playing") is False
    assert host.messages[-1] == ("this widget is closed", False)
