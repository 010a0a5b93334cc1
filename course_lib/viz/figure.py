"""``LiveFigure``: a plotly ``FigureWidget`` that keeps what the course sets.

After every update, the browser sends back the figure's *computed* defaults (full
layout, full traces), and ``FigureWidget`` then deletes, on both sides, every property
the course set that also appears among those defaults — an axis ``range`` (the axis
falls back to autorange), a heatmap's ``z``, a trace's ``text``.  With a figure redrawn
ten times a second (the Raft ring, the log grid) that left the browser showing a
collapsed ring and an empty log grid, while the kernel's copy was right; headless, no
browser answers, so no test saw it.  ``LiveFigure`` takes the browser's answer only as
"this edit is done" and keeps every property as set.
"""

from __future__ import annotations

import plotly.graph_objects as go
from traitlets import observe


class LiveFigure(go.FigureWidget):
    """A ``FigureWidget`` whose properties are never removed by the browser's defaults."""

    @observe("_js2py_traceDeltas")
    def _handler_js2py_traceDeltas(self, change):
        message = change["new"]
        if not message:
            return
        if message["trace_edit_id"] == self._last_trace_edit_id:
            self._trace_edit_in_process = False
            self._run_waiting_callbacks()
        self._js2py_traceDeltas = None

    @observe("_js2py_layoutDelta")
    def _handler_js2py_layoutDelta(self, change):
        message = change["new"]
        if not message:
            return
        if message["layout_edit_id"] == self._last_layout_edit_id:
            self._layout_edit_in_process = False
            self._run_waiting_callbacks()
        self._js2py_layoutDelta = None

    def _run_waiting_callbacks(self) -> None:
        if not self._trace_edit_in_process and not self._layout_edit_in_process:
            while self._waiting_edit_callbacks:
                self._waiting_edit_callbacks.pop()()
