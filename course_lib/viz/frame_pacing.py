"""Keeping a live plotly ``FigureWidget`` within what the browser can draw.

Two small pieces, used by :class:`~course_lib.viz.raft_widget.RaftClusterWidget`:

- :class:`SentState` remembers what was last sent per (trace, property), so a frame
  assigns only the values that changed (a ``FigureWidget`` that receives nothing new is
  not touched at all: no message, no redraw in the browser);
- :class:`FramePacer` waits for the browser's acknowledgement of each figure update
  before the next one, and spaces frames by how long the browser took.

**The acknowledgement.**  plotly's ``FigureWidget`` front end answers every update
(``_py2js_update``, one per ``batch_update``) once ``Plotly.update`` has run, by
setting ``_js2py_traceDeltas`` with the update's ``trace_edit_id`` (plotly uses it to
learn the defaults plotly.js filled in).  The kernel receives it as a comm message, on
the same loop as the clicks.  So "the last edit id sent" minus "the last edit id
answered" is the browser's backlog, and the time between them is what one frame costs
the page plus the round trip.  While an update is unanswered the widget skips frames
(the model keeps running); the next frame waits ``headroom`` x that round trip, so the
page stays idle most of the time whatever its speed.

Headless (nbval, a plain kernel, a test) no view ever answers: until the first answer
arrives the pacer does not wait, and an answer missing for ``ack_timeout`` seconds (the
view was closed) stops the wait.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Iterable

from course_lib.viz.plotly_bundle import CourseFigureWidget


class AckFigureWidget(CourseFigureWidget):
    """A ``FigureWidget`` whose browser acknowledgements only acknowledge.

    plotly's own handler of ``_js2py_traceDeltas`` also takes the values plotly.js
    reports as "defaults" and deletes them from the Python figure and then from the
    browser's (``_py2js_removeTraceProps``).  Among them came data set when the trace
    was built (the ring's server positions, the log grid): a figure redrawn in full
    every frame put them back, one that sends only what changed lost them for good
    (the servers vanished).  Here the deltas are ignored (no observer by that name):
    the figure stays exactly what Python set, and :class:`FramePacer` reads the
    acknowledgement's edit id.
    """

    def _handler_js2py_traceDeltas(self, change):  # replaces plotly's observer
        return None


class SentState:
    """The last value sent per key: :meth:`changed` keeps only what differs."""

    def __init__(self) -> None:
        self._last: dict = {}

    def changed(self, items: Iterable[tuple[Any, Any]]) -> list[tuple[Any, Any]]:
        """``[(key, value), ...]`` -> the pairs whose value differs from the last one
        recorded, recording them."""
        out = []
        last = self._last
        for key, value in items:
            if key not in last or last[key] != value:
                last[key] = value
                out.append((key, value))
        return out

    def forget(self, prefix: tuple = ()) -> None:
        """Forget every key (or those starting with ``prefix``): they are sent again."""
        if not prefix:
            self._last.clear()
            return
        n = len(prefix)
        for key in [k for k in self._last if k[:n] == prefix]:
            del self._last[key]


class FramePacer:
    """Ack-based pacing for a set of ``FigureWidget`` s (see the module docstring).

    ``ready()`` says whether a live frame may draw now; ``sent(fig)`` records an
    update just sent; :attr:`interval` is the pause before the next frame, between
    ``1 / max_fps`` and ``1 / min_fps`` seconds.
    """

    def __init__(self, max_fps: float, *, min_fps: float = 1.0, headroom: float = 2.0,
                 ack_timeout: float = 2.0, clock: Callable[[], float] = time.monotonic) -> None:
        if not 0 < min_fps <= max_fps:
            raise ValueError(f"need 0 < min_fps <= max_fps, got {min_fps!r}, {max_fps!r}")
        self.max_fps, self.min_fps = float(max_fps), float(min_fps)
        self.headroom = float(headroom)
        self.ack_timeout = float(ack_timeout)
        self.clock = clock
        self.answered = False             # has any view ever acknowledged an update?
        self.lag = 0.0                    # smoothed send -> acknowledgement time (s)
        self.acks = 0
        self.timeouts = 0
        self._pending: dict = {}          # id(fig) -> (edit id, sent at)

    def watch(self, fig, on_new_view: Callable[[], None] | None = None) -> None:
        """Listen for ``fig``'s acknowledgements.  ``on_new_view`` is called when a
        browser view of ``fig`` appears (its ``_view_count`` grows): a view built while
        the model was still loading in the page can miss updates, so the caller sends
        the whole figure again."""
        fig.observe(lambda change, key=id(fig): self._on_ack(key, change["new"]),
                    names="_js2py_traceDeltas")
        if on_new_view is not None:
            fig.observe(lambda change: on_new_view()
                        if (change["new"] or 0) > (change["old"] or 0) else None,
                        names="_view_count")

    def sent(self, fig) -> None:
        """``fig`` just sent an update (after its ``batch_update``)."""
        self._pending[id(fig)] = (fig._last_trace_edit_id, self.clock())

    def _on_ack(self, key: int, msg) -> None:
        if not msg:
            return
        self.answered = True
        pending = self._pending.get(key)
        if pending is None or msg.get("trace_edit_id", -1) < pending[0]:
            return                        # an older update: the newest is still drawing
        del self._pending[key]
        self.acks += 1
        took = max(0.0, self.clock() - pending[1])
        self.lag = took if self.acks == 1 else 0.7 * self.lag + 0.3 * took

    def ready(self) -> bool:
        """True when no acknowledged-by-a-view figure is still drawing an update."""
        if not self.answered or not self._pending:
            return True
        now = self.clock()
        for key, (_edit, at) in list(self._pending.items()):
            if now - at > self.ack_timeout:
                del self._pending[key]    # the view went away (or is hopelessly behind)
                self.timeouts += 1
        return not self._pending

    @property
    def interval(self) -> float:
        """Seconds to wait before the next live frame."""
        fastest, slowest = 1.0 / self.max_fps, 1.0 / self.min_fps
        if not self.answered:
            return fastest
        return min(slowest, max(fastest, self.headroom * self.lag))

    def reset(self) -> None:
        """Forget pending updates (the figures were rebuilt)."""
        self._pending.clear()
