"""``PhiWidget``: live phi curves of a monitored heartbeat cluster.

A view over a :class:`~course_lib.detect.cluster.HeartbeatCluster` -- real sender
processes (:class:`~course_lib.detect.processes.ProcessCluster`) or simulated ones
(:class:`~course_lib.detect.simulated.SimulatedCluster`).  Left: every node's phi
over the last ``window`` seconds, the threshold line, and a cross where a node became
suspected.  Right: the selected node's heartbeat intervals (the detector's window),
the distribution fitted to them, and the silence after which it would be suspected.

Buttons call the cluster's public methods (``kill``, ``pause``, ``resume``,
``restart``, ``set_jitter``, ``set_delay``) on the selected node; code can call the
same methods, or ``.click()`` the buttons.  Start runs an asyncio task on the
kernel's loop that advances the cluster (a simulation's virtual clock) and redraws
at most ``fps`` (<= 10) times a second inside ``batch_update()``; Pause and
``close()`` stop it.  An action that makes no sense (pause a dead sender) shows a
message in the widget.  ``close()`` also closes the cluster: its processes are killed.
"""

from __future__ import annotations

import html
import math
import time
from collections import deque
from typing import Optional

import ipywidgets as widgets
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from course_lib.detect.cluster import HeartbeatCluster
from course_lib.detect.distributions import density
from course_lib.viz.display import view_bundle
from course_lib.viz.live import LiveTask
from course_lib.viz.plotly_bundle import CourseFigureWidget

COLOURS = ("#3b7dd8", "#e8743b", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf")
MAX_FPS = 10.0
HISTOGRAM_EVERY = 5


class PhiWidget:
    """Live phi curves and fault buttons over ``cluster`` (see the module docstring)."""

    def __init__(
        self,
        cluster: HeartbeatCluster,
        window: float = 20.0,
        fps: float = 10.0,
        speed: float = 1.0,
    ) -> None:
        if not isinstance(window, (int, float)) or not 1.0 <= window <= 600.0:
            raise ValueError(f"window must be 1 to 600 seconds, got {window!r}")
        if not isinstance(fps, (int, float)) or not 0.5 <= fps <= MAX_FPS:
            raise ValueError(f"fps must be 0.5 to {MAX_FPS:g} redraws per second, got {fps!r}")
        if not isinstance(speed, (int, float)) or not 0.05 <= speed <= 100.0:
            raise ValueError(f"speed must be 0.05 to 100 (simulated s per wall s), got {speed!r}")
        self.cluster = cluster
        self.window = float(window)
        self.fps = float(fps)
        self.speed = float(speed)
        self.frame_ms: deque[float] = deque(maxlen=200)
        self.message_text = ""
        self._origin = cluster.now()
        self._curves = {n: deque() for n in cluster.nodes}
        self._marks: deque[tuple[float, float, str]] = deque()
        self._was_suspected: set[str] = set()
        self._frames = 0
        self._live = LiveTask(self._live_frame, 1.0 / self.fps,
                              on_error=lambda e: self.say(f"live updates stopped: {e}", ok=False))
        self._last_frame = 0.0
        self._closed = False
        self._last_sample = None

        self.figure = self._make_figure()
        self._build_controls()
        self.view = widgets.VBox([self.figure, self._controls, self.status, self.message])
        self.render()

    def _repr_mimebundle_(self, **kwargs):
        return view_bundle(self.view, **kwargs)

    # -- construction --------------------------------------------------------------

    def _make_figure(self) -> go.FigureWidget:
        base = make_subplots(
            rows=1, cols=2, column_widths=[0.66, 0.34], horizontal_spacing=0.08,
            subplot_titles=("phi per node", "heartbeat intervals"))
        fig = CourseFigureWidget(base)
        for k, node in enumerate(self.cluster.nodes):
            fig.add_scatter(x=[], y=[], mode="lines", name=node,
                            line=dict(color=COLOURS[k % len(COLOURS)], width=2), row=1, col=1)
        fig.add_scatter(x=[], y=[], mode="lines", name="threshold",
                        line=dict(color="#d62728", dash="dash"), row=1, col=1)
        fig.add_scatter(x=[], y=[], mode="markers", name="suspected",
                        marker=dict(symbol="x", size=11, color="#d62728"), hovertext=[],
                        row=1, col=1)
        fig.add_histogram(x=[], histnorm="probability density", name="intervals",
                          marker_color="#7aa6e8", opacity=0.75,
                          showlegend=False, row=1, col=2)
        fig.add_scatter(x=[], y=[], mode="lines", name="fitted",
                        line=dict(color="#333333"), showlegend=False, row=1, col=2)
        fig.add_scatter(x=[], y=[], mode="lines", name="suspect after",
                        line=dict(color="#d62728", dash="dot"), showlegend=False, row=1, col=2)
        # Trace uids stay FigureWidget's own: reassigning them after the traces exist
        # desynchronises the browser's copy of the figure.
        fig.update_layout(height=380, margin=dict(l=50, r=20, t=40, b=40),
                          legend=dict(orientation="h", y=-0.15), uirevision="phi")
        fig.update_xaxes(title_text="seconds", row=1, col=1)
        fig.update_yaxes(title_text="phi", row=1, col=1)
        fig.update_xaxes(title_text="interval (s)", row=1, col=2)
        return fig

    def _build_controls(self) -> None:
        real = self.cluster.kind == "processes"
        self.start_button = widgets.Button(description="Start", icon="play", button_style="success")
        self.stop_button = widgets.Button(description="Pause", icon="pause")
        self.start_button.on_click(lambda _: self.start())
        self.stop_button.on_click(lambda _: self.stop())
        self.node_select = widgets.Dropdown(options=list(self.cluster.nodes), description="node",
                                            layout=widgets.Layout(width="160px"))
        self.node_select.observe(lambda _: self._on_select(), "value")
        self.kill_button = widgets.Button(
            description="Kill (SIGKILL)" if real else "Kill", button_style="danger")
        self.pause_button = widgets.Button(description="Pause (SIGSTOP)" if real else "Pause node")
        self.resume_button = widgets.Button(description="Resume (SIGCONT)" if real else "Resume node")
        self.restart_button = widgets.Button(description="Restart", button_style="info")
        self.kill_button.on_click(lambda _: self.act("kill"))
        self.pause_button.on_click(lambda _: self.act("pause"))
        self.resume_button.on_click(lambda _: self.act("resume"))
        self.restart_button.on_click(lambda _: self.act("restart"))
        self.jitter_slider = widgets.FloatSlider(
            value=0.0, min=0.0, max=0.1, step=0.005, readout_format=".3f",
            description="jitter (s)", continuous_update=False)
        self.delay_slider = widgets.FloatSlider(
            value=0.0, min=0.0, max=0.5, step=0.01, readout_format=".2f",
            description="delay (s)", continuous_update=False)
        self.apply_button = widgets.Button(description="Apply to node")
        self.apply_button.on_click(lambda _: self.apply_network())
        self.threshold_slider = widgets.FloatSlider(
            value=self.cluster.detector.threshold, min=0.5, max=20.0, step=0.5,
            description="threshold", continuous_update=True)
        self.threshold_slider.observe(lambda change: self.set_threshold(change["new"]), "value")
        rows = [
            widgets.HBox([self.start_button, self.stop_button, self.threshold_slider]),
            widgets.HBox([self.node_select, self.kill_button, self.pause_button,
                          self.resume_button, self.restart_button]),
            widgets.HBox([self.jitter_slider, self.delay_slider, self.apply_button]),
        ]
        if self.cluster.kind == "simulated":
            self.speed_slider = widgets.FloatLogSlider(
                value=self.speed, base=10, min=-1, max=1, step=0.1, description="speed")
            self.speed_slider.observe(lambda change: setattr(self, "speed", change["new"]), "value")
            rows[0].children += (self.speed_slider,)
        self._controls = widgets.VBox(rows)
        self.status = widgets.HTML()
        self.message = widgets.HTML()

    # -- actions (buttons call these; so can code) -------------------------------

    def say(self, text: str, ok: bool = True) -> bool:
        """Show ``text`` under the controls (red if not ``ok``); returns ``ok``."""
        self.message_text = text
        colour = "#2a7a2a" if ok else "#c0392b"
        self.message.value = f'<span style="color:{colour}">{html.escape(text)}</span>'
        return ok

    def act(self, action: str, node: Optional[str] = None) -> bool:
        """Apply ``action`` (kill, pause, resume, restart) to ``node`` (default: the
        selected one).  False, with a message, if the cluster refuses it."""
        node = self.node_select.value if node is None else node
        if action not in ("kill", "pause", "resume", "restart"):
            return self.say(f"unknown action {action!r}", ok=False)
        try:
            getattr(self.cluster, action)(node)
        except (ValueError, RuntimeError, OSError) as error:
            return self.say(str(error), ok=False)
        done = {"kill": "killed", "pause": "paused", "resume": "resumed", "restart": "restarted"}
        self.render()
        return self.say(f"{done[action]} node {node}")

    def apply_network(self, node: Optional[str] = None) -> bool:
        """Set the selected node's jitter and delay from the sliders."""
        node = self.node_select.value if node is None else node
        try:
            self.cluster.set_jitter(node, self.jitter_slider.value)
            self.cluster.set_delay(node, self.delay_slider.value)
        except (ValueError, OSError) as error:
            return self.say(str(error), ok=False)
        return self.say(f"node {node}: jitter {self.jitter_slider.value:.3f} s, "
                        f"delay {self.delay_slider.value:.2f} s")

    def set_threshold(self, threshold: float) -> bool:
        try:
            with self.cluster.lock:
                self.cluster.detector.threshold = threshold
        except ValueError as error:
            return self.say(str(error), ok=False)
        if self.threshold_slider.value != threshold:
            self.threshold_slider.value = threshold
        self.render()
        return True

    def _on_select(self) -> None:
        try:
            info = self.cluster.info(self.node_select.value)
        except ValueError:
            return
        self.jitter_slider.value = info.jitter
        self.delay_slider.value = info.delay
        self.render(histogram=True)

    # -- live updates ---------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._live.running

    def start(self) -> bool:
        """Start redrawing (and advancing a simulation) on the running asyncio loop."""
        if self._closed:
            return self.say("this widget is closed", ok=False)
        if self.running:
            return True
        self._last_frame = time.perf_counter()
        if not self._live.start():
            return self.say("live updates need a running event loop (a Jupyter kernel); "
                            "call step() instead", ok=False)
        return self.say("live")

    def stop(self) -> None:
        """Stop the live task (the cluster keeps running)."""
        self._live.stop()
        if not self._closed:
            self.say("paused")

    def _live_frame(self) -> None:
        now = time.perf_counter()
        self.cluster.advance((now - self._last_frame) * self.speed)
        self._last_frame = now
        self.render()

    def step(self, dt: Optional[float] = None) -> None:
        """One frame by hand: advance the cluster ``dt`` seconds (default: one frame at
        the current speed) and redraw."""
        self.cluster.advance(self.speed / self.fps if dt is None else dt)
        self.render()

    # -- drawing ----------------------------------------------------------------------

    def render(self, histogram: Optional[bool] = None) -> float:
        """Sample every node's phi and redraw; returns the frame's cost in ms."""
        if self._closed:
            return 0.0
        began = time.perf_counter()
        sample = self.cluster.sample()
        self._last_sample = sample
        x = sample.time - self._origin
        for node, phi in sample.phi.items():
            curve = self._curves[node]
            curve.append((x, phi))
            while curve and curve[0][0] < x - self.window:
                curve.popleft()
        threshold = self.cluster.detector.threshold
        for node in sample.suspected - self._was_suspected:
            self._marks.append((x, threshold, node))
        self._was_suspected = set(sample.suspected)
        while self._marks and self._marks[0][0] < x - self.window:
            self._marks.popleft()
        self._frames += 1
        if histogram is None:
            histogram = self._frames % HISTOGRAM_EVERY == 1
        hist = self._histogram_data() if histogram else None
        x0 = max(0.0, x - self.window)
        top = max(2.0 * threshold, 10.0)
        fig = self.figure
        with fig.batch_update():
            for k, node in enumerate(self.cluster.nodes):
                curve = self._curves[node]
                fig.data[k].x = tuple(p[0] for p in curve)
                fig.data[k].y = tuple(p[1] for p in curve)
            n = len(self.cluster.nodes)
            fig.data[n].x = (x0, max(x, self.window))
            fig.data[n].y = (threshold, threshold)
            fig.data[n + 1].x = tuple(m[0] for m in self._marks)
            fig.data[n + 1].y = tuple(m[1] for m in self._marks)
            fig.data[n + 1].hovertext = tuple(f"{m[2]} suspected" for m in self._marks)
            fig.layout.xaxis.range = (x0, max(x, self.window))
            fig.layout.yaxis.range = (0.0, top)
            if hist is not None:
                intervals, xs, ys, deadline, peak = hist
                fig.data[n + 2].x = intervals
                fig.data[n + 3].x = xs
                fig.data[n + 3].y = ys
                fig.data[n + 4].x = (deadline, deadline)
                fig.data[n + 4].y = (0.0, peak)
                fig.layout.annotations[1].text = f"intervals of {self.node_select.value}"
        self.status.value = self._status_html(sample)
        cost = (time.perf_counter() - began) * 1000.0
        self.frame_ms.append(cost)
        return cost

    def _histogram_data(self):
        node = self.node_select.value
        cluster = self.cluster
        with cluster.lock:
            detector = cluster.detector
            if node not in detector.nodes:
                return (), (), (), 0.0, 0.0
            intervals = detector.intervals(node)
            stats = detector.interval_stats(node)
            deadline = detector.time_to_suspicion(node)
            std = max(stats.std_dev, detector.min_std_dev)
            name = detector.distribution
            mean = stats.mean + detector.acceptable_pause
        hi = max(max(intervals, default=0.0), deadline) * 1.15
        xs = tuple(hi * i / 120 for i in range(121))
        ys = tuple(density(name, v, mean, std) for v in xs)
        return intervals, xs, ys, deadline, max(ys, default=1.0)

    def _status_html(self, sample) -> str:
        cells = []
        for node in self.cluster.nodes:
            status = self.cluster.status(node)
            phi = sample.phi[node]
            suspected = node in sample.suspected
            colour = "#c0392b" if suspected else "#2a7a2a"
            shown = f"{phi:.1f}" if math.isfinite(phi) and phi < 1e6 else f"{phi:.3g}"
            cells.append(
                f"<td style='padding:0 12px'><b>{html.escape(node)}</b> {status.value} "
                f"&middot; phi <span style='color:{colour}'>{shown}</span>"
                f"{' &middot; <b>suspected</b>' if suspected else ''}</td>")
        return "<table><tr>" + "".join(cells) + "</tr></table>"

    # -- tear-down ----------------------------------------------------------------------

    def close(self) -> None:
        """Stop the live task, close the cluster (killing its processes), close the view."""
        self.stop()
        self._closed = True
        self.cluster.close()
        self.say("closed: the senders are stopped")
        for child in (self.figure, self._controls, self.status, self.message, self.view):
            child.close()
