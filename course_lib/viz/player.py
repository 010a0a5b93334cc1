"""``LivePlayer``: the Play / Pause of a widget whose model runs in time.

The Raft widget, the consensus widget and the monitoring dashboard animate the same
way, and this is that way, written once:

- *Play* starts a :class:`~course_lib.viz.live.LiveTask` on the kernel's loop (never a
  blocking loop; without a running loop it says so and the widget is stepped by hand);
- each frame moves the model by the real time elapsed since the previous frame (the
  widget's ``advance`` turns it into simulated time: its speed, its cap), then draws
  only if the browser has acknowledged the previous figure update
  (:class:`~course_lib.viz.frame_pacing.FramePacer`).  While the page is still drawing,
  the frame is skipped but the model keeps running, and the next frame comes after
  ``1 / fps``; after a frame drawn, after the pacer's interval (the browser's round
  trip, between ``1 / fps`` and 1 s).  ``pacing=False`` draws every frame at ``fps``
  (a benchmark's baseline);
- *Pause* stops the task and redraws the model as it stands; Play and Pause restyle
  the two buttons (:meth:`LivePlayer.make_buttons`) so the one that acts next is the
  coloured one.

The widget keeps what is its own: its messages (passed to :meth:`play` and
:meth:`pause`, shown with its ``say``), how its model advances and how it draws.
``advance`` may return an awaitable (a real cluster polled off the loop): the frame
then awaits it and hands its result to ``draw`` (or, when the frame is skipped, to
``skipped``, so what was read is still recorded).  A widget that keeps its player as
``self._player`` and derives from :class:`PlayerAttributes` shows its state as its own
attributes (``running``, ``skipped_frames``).
"""

from __future__ import annotations

import inspect
import time
from typing import Any, Callable, Optional

import ipywidgets as widgets

from course_lib.viz.frame_pacing import FramePacer
from course_lib.viz.live import LiveTask

MAX_FPS = 10.0       # redraws per second at most, whatever the browser's speed
MIN_FPS = 1.0        # pacing never waits longer than 1 s between frames


class LivePlayer:
    """Play / Pause for one widget (see the module docstring).

    ``advance(elapsed_s)`` moves the model by ``elapsed_s`` real seconds and returns
    what the frame read (usually None), or an awaitable of it; ``draw(read)`` draws a
    live frame; ``redraw()`` draws once after Pause; ``say(text, ok=True) -> ok`` shows
    a message; ``closed()`` tells whether the widget was closed.  :meth:`make_buttons`
    builds the widget's Play and Pause buttons, restyled on Play and Pause.
    """

    def __init__(self, *, advance: Callable[[float], Any], draw: Callable[[Any], Any],
                 redraw: Callable[[], Any], say: Callable[..., bool], closed: Callable[[], bool],
                 fps: float, pacing: bool = True, skipped: Optional[Callable[[Any], Any]] = None,
                 hint: str = "use step()", on_error: Optional[Callable[[BaseException], Any]] = None,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        if isinstance(fps, bool) or not isinstance(fps, (int, float)) or not 0.5 <= fps <= MAX_FPS:
            raise ValueError(f"fps must be 0.5 to {MAX_FPS:g} redraws per second, got {fps!r}")
        self.advance, self.draw, self.redraw = advance, draw, redraw
        self.say, self.closed, self.skipped = say, closed, skipped
        self.fps = float(fps)
        self.pacing = bool(pacing)
        self.hint = hint
        self.clock = clock
        self.pacer = FramePacer(self.fps, min_fps=min(MIN_FPS, self.fps))
        self.buttons: tuple = ()
        self.skipped_frames = 0           # live frames not drawn: the browser lagged
        self.last_frame = 0.0             # clock() at the previous frame (or at Play)
        self._on_error = on_error or (lambda e: self.say(
            f"playing stopped: {type(e).__name__}: {e}", ok=False))
        self.task = LiveTask(self.frame, 1.0 / self.fps, on_error=self._stopped_by)

    @property
    def running(self) -> bool:
        return self.task.running

    def play(self, text: str) -> bool:
        """Start the live task on the running asyncio loop and show ``text``; False,
        with a message, when closed or when no loop runs (a plain script)."""
        if self.closed():
            return self.say("this widget is closed", ok=False)
        if self.running:
            return self.say("already playing")
        self.last_frame = self.clock()
        self.task.interval = 1.0 / self.fps
        if not self.task.start():
            return self.say(f"Play needs a running event loop (a Jupyter kernel); {self.hint}", ok=False)
        self.show_playing(True)
        return self.say(text)

    def pause(self, text: str = "paused") -> bool:
        """Stop the live task, show ``text``, then redraw (the message first, so the
        browser shows it before the redraw)."""
        if not self.running:
            return self.say("not playing", ok=False)
        self.stop()
        self.say(text)
        self.redraw()
        return True

    def stop(self) -> None:
        """Stop the live task without a word (a reset, a close)."""
        self.task.stop()
        self.show_playing(False)

    def make_buttons(self, play: Callable[[], Any], pause: Callable[[], Any],
                     widths: Optional[tuple] = None) -> tuple:
        """The ``(Play, Pause)`` buttons: clicked, they call ``play()`` / ``pause()``
        (the widget's, which carry its messages); ``widths`` in px, or as wide as their
        labels."""
        play_width, pause_width = (f"{w}px" for w in widths) if widths else ("auto", "auto")
        play_button = widgets.Button(description="Play", icon="play", button_style="success",
                                     layout=widgets.Layout(width=play_width))
        pause_button = widgets.Button(description="Pause", icon="pause",
                                      layout=widgets.Layout(width=pause_width))
        play_button.on_click(lambda _: play())
        pause_button.on_click(lambda _: pause())
        self.buttons = (play_button, pause_button)
        return self.buttons

    def show_playing(self, playing: bool) -> None:
        if self.buttons:
            play, pause = self.buttons
            play.button_style = "" if playing else "success"
            pause.button_style = "warning" if playing else ""

    def _stopped_by(self, error: BaseException) -> None:
        self.show_playing(False)
        self._on_error(error)

    # -- one frame ------------------------------------------------------------------------
    def frame(self):
        """One live frame (what the task calls every interval)."""
        now = self.clock()
        elapsed, self.last_frame = now - self.last_frame, now
        read = self.advance(elapsed)
        if inspect.isawaitable(read):
            return self._draw_when_read(read)
        self._draw_paced(read)
        return None

    async def _draw_when_read(self, pending) -> None:
        read = await pending
        if not self.closed():
            self._draw_paced(read)

    def _draw_paced(self, read) -> None:
        if self.pacing and not self.pacer.ready():
            self.skipped_frames += 1      # the browser is still drawing the last update
            if self.skipped is not None:
                self.skipped(read)
            self.task.interval = 1.0 / self.fps
            return
        self.draw(read)
        self.task.interval = self.pacer.interval if self.pacing else 1.0 / self.fps


class PlayerAttributes:
    """The live loop's state as attributes of a widget that keeps its
    :class:`LivePlayer` as ``self._player``: ``running``, ``skipped_frames``,
    ``_pacer`` (the widget's figures report their updates to it; a test swaps in one
    with a fake clock), and for tests ``_last_frame`` and ``_live_frame()`` (one frame
    now)."""

    _player: LivePlayer

    @property
    def running(self) -> bool:
        return self._player.running

    @property
    def skipped_frames(self) -> int:
        """Live frames not drawn because the browser was still drawing."""
        return self._player.skipped_frames

    @property
    def _pacer(self) -> FramePacer:
        return self._player.pacer

    @_pacer.setter
    def _pacer(self, pacer: FramePacer) -> None:
        self._player.pacer = pacer

    @property
    def _last_frame(self) -> float:
        return self._player.last_frame

    @_last_frame.setter
    def _last_frame(self, at: float) -> None:
        self._player.last_frame = at

    def _live_frame(self):
        return self._player.frame()
