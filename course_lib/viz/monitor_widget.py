"""``MonitorWidget``: a live monitoring dashboard over a seeded :class:`Dashboard`.

A view over :class:`course_lib.monitor.Dashboard` (a simulated five-node cluster and
what its monitor computes).  It draws, over the last ``view_s`` seconds of virtual
time, every node's p95 latency over the sliding window, its ERROR log lines within the
window, and its disk usage, with the threshold (red dashes) and clear level (green
dots) of the rule that watches each of them; beside the figure, tables of node health
and windowed metrics (p50/p95/p99 against the mean), the alerts pending and firing,
the notifications sent (FIRING / RESOLVED) and the log analysis of the window (ERROR
lines per node, most frequent WARN/ERROR message templates).

Controls call the model's public methods, which code can call too (or ``.click()`` the
buttons): *Play* / *Pause* / *Step 1 s* / *Step 10 s* move virtual time; *Inject*
starts the chosen fault (slow node, full disk, error burst, crash) on the chosen node
for the chosen duration, *Heal* ends the node's faults; *Apply rule* changes the
chosen rule's threshold, ``for`` duration, clear level and ``keep_firing_for``;
*Reset* starts the run again from the seed box.  An action that makes no sense (crash
a node that is down, a clear level above the threshold) shows a message in the widget
and returns False; it never raises.

Play runs an asyncio task on the kernel's loop (:class:`~course_lib.viz.player.LivePlayer`)
that advances ``speed`` simulated seconds per real second, in whole evaluation steps,
and redraws at most ``fps`` times a second -- only what changed, and only once the
browser acknowledged the previous update (:mod:`course_lib.viz.frame_pacing`).  Pause
and :meth:`close` stop it; nothing runs by itself when a cell executes.
"""

from __future__ import annotations

import html
import time
from collections import deque
from typing import Optional

import ipywidgets as widgets
from plotly.subplots import make_subplots

from course_lib.monitor import Dashboard, Health, IncidentKind
from course_lib.monitor.dashboard import FAULT_DEFAULTS, AlertState
from course_lib.viz.display import view_bundle
from course_lib.viz.frame_pacing import AckFigureWidget, SentState
from course_lib.viz.player import LivePlayer, PlayerAttributes

COLOURS = ("#3b7dd8", "#e8743b", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf",
           "#bcbd22", "#7f7f7f", "#1f77b4", "#ff7f0e", "#d62728")
ROWS = (("p95_ms", "p95 latency over the window (ms)"),
        ("error_logs", "ERROR log lines in the window"),
        ("disk_used_percent", "disk used (%)"))
FAULTS = (("slow node (4x latency)", IncidentKind.SLOW.value),
          ("full disk", IncidentKind.DISK_FILL.value),
          ("error burst (50 % fail)", IncidentKind.ERROR_BURST.value),
          ("crash", IncidentKind.CRASH.value))
HEALTH_COLOURS = {Health.UP: "#2a7a2a", Health.SUSPECTED: "#d08000", Health.DOWN: "#c0392b"}
STATE_COLOURS = {AlertState.PENDING: "#d08000", AlertState.FIRING: "#c0392b"}
MAX_STEP_S = 30.0          # at most this much virtual time per live frame


def _fmt(value, digits: int = 0, scale: float = 1.0, unit: str = "") -> str:
    return "–" if value is None else f"{value * scale:.{digits}f}{unit}"


class MonitorWidget(PlayerAttributes):
    """A live dashboard over ``dashboard`` (default: ``Dashboard(seed)``); see the
    module docstring."""

    def __init__(self, dashboard: Optional[Dashboard] = None, *, seed: int = 0,
                 speed: float = 5.0, fps: float = 5.0, view_s: float = 180.0) -> None:
        if dashboard is not None and not isinstance(dashboard, Dashboard):
            raise ValueError(f"dashboard must be a course_lib.monitor.Dashboard, got {dashboard!r}")
        self._player = LivePlayer(  # validates fps
            advance=self._advance_live, draw=lambda _read: self.render(), redraw=self.render,
            say=self.say, closed=lambda: self._closed, fps=fps, hint="use Step",
            on_error=lambda e: self.say(f"live updates stopped: {e}", ok=False))
        if not isinstance(speed, (int, float)) or not 1 <= speed <= 60:
            raise ValueError(f"speed must be 1 to 60 simulated seconds per second, got {speed!r}")
        if not isinstance(view_s, (int, float)) or not 30 <= view_s <= 3600:
            raise ValueError(f"view_s must be 30 to 3600 s, got {view_s!r}")
        self.dashboard = dashboard if dashboard is not None else Dashboard(seed)
        self.fps, self.speed, self.view_s = self._player.fps, float(speed), float(view_s)
        self.message_text = ""
        self.frame_ms: deque[float] = deque(maxlen=200)
        self._closed = False
        self._budget = 0.0                # simulated seconds owed to the run, less than a step
        self._html_sent: dict = {}
        self._build_figure()
        self._build_controls()
        self.view = widgets.VBox([self.status, self._controls, self.message, self.figure,
                                  widgets.HBox([self.nodes_html, self.alerts_html]),
                                  widgets.HBox([self.events_html, self.logs_html])])
        self.render()

    def _repr_mimebundle_(self, **kwargs):
        return view_bundle(self.view, **kwargs)

    # -- construction ---------------------------------------------------------------------

    def _build_figure(self) -> None:
        base = make_subplots(rows=len(ROWS), cols=1, shared_xaxes=True, vertical_spacing=0.07,
                             subplot_titles=[title for _m, title in ROWS])
        self._keys: list[tuple] = []
        nodes = self.dashboard.nodes
        for row, (metric, _title) in enumerate(ROWS, 1):
            for k, node in enumerate(nodes):
                base.add_scatter(x=[], y=[], mode="lines", name=node, legendgroup=node,
                                 showlegend=row == 1, line=dict(color=COLOURS[k % len(COLOURS)], width=2),
                                 row=row, col=1)
                self._keys.append((metric, node))
            for level, dash, colour in (("threshold", "dash", "#d62728"), ("clear", "dot", "#2a9d2a")):
                base.add_scatter(x=[], y=[], mode="lines", name=level, showlegend=False,
                                 hoverinfo="skip", line=dict(color=colour, dash=dash, width=1.5),
                                 row=row, col=1)
                self._keys.append((metric, level))
        base.update_layout(height=520, margin=dict(l=50, r=20, t=30, b=40), uirevision="monitor",
                           legend=dict(orientation="h", y=-0.1), hovermode="x unified")
        base.update_xaxes(title_text="simulated time (s)", row=len(ROWS), col=1)
        for row in range(1, len(ROWS) + 1):
            base.update_yaxes(rangemode="tozero", row=row, col=1)
        self._xaxes = tuple("xaxis" if row == 1 else f"xaxis{row}" for row in range(1, len(ROWS) + 1))
        self.figure = AckFigureWidget(base)
        self._index = {key: i for i, key in enumerate(self._keys)}
        self._sent = SentState()
        self._pacer.watch(self.figure, self._redraw_whole)

    def _redraw_whole(self) -> None:
        """A browser view appeared: send it every value again."""
        self._sent.forget()
        if not self._closed:
            self.render()

    def _build_controls(self) -> None:
        d = self.dashboard
        button = lambda text, style="", icon="": widgets.Button(
            description=text, button_style=style, icon=icon, layout=widgets.Layout(width="auto"))
        self.play_button, self.pause_button = self._player.make_buttons(self.play, self.pause)
        self.step_button = button("Step 1 s")
        self.step10_button = button("Step 10 s")
        self.step_button.on_click(lambda _: self.step(1.0))
        self.step10_button.on_click(lambda _: self.step(10.0))
        self.speed_slider = widgets.IntSlider(value=int(self.speed), min=1, max=60,
                                              description="speed (s/s)", continuous_update=False)
        self.speed_slider.observe(lambda c: setattr(self, "speed", float(c["new"])), "value")
        self.seed_box = widgets.IntText(value=d.seed, description="seed",
                                        layout=widgets.Layout(width="150px"))
        self.reset_button = button("Reset", "warning")
        self.reset_button.on_click(lambda _: self.reset())

        self.node_select = widgets.Dropdown(options=list(d.nodes), value=d.nodes[min(3, len(d.nodes) - 1)],
                                            description="node", layout=widgets.Layout(width="150px"))
        self.fault_select = widgets.Dropdown(options=list(FAULTS), value=IncidentKind.SLOW.value,
                                             description="fault", layout=widgets.Layout(width="260px"))
        self.duration_box = widgets.FloatText(value=FAULT_DEFAULTS[IncidentKind.SLOW][0],
                                              description="for (s)", layout=widgets.Layout(width="150px"))
        self.fault_select.observe(lambda c: setattr(self.duration_box, "value",
                                                    FAULT_DEFAULTS[IncidentKind(c["new"])][0]), "value")
        self.inject_button = button("Inject", "danger", "bolt")
        self.heal_button = button("Heal", "info", "medkit")
        self.inject_button.on_click(lambda _: self.inject())
        self.heal_button.on_click(lambda _: self.heal())

        rules = list(d.rules)
        self.rule_select = widgets.Dropdown(options=rules, value=rules[0] if rules else None,
                                            description="rule", layout=widgets.Layout(width="215px"))
        short = widgets.Layout(width="150px")   # the row fits a notebook's width
        self.threshold_box = widgets.FloatText(description="threshold", layout=short)
        self.for_box = widgets.FloatText(description="for (s)", layout=short)
        self.clear_box = widgets.FloatText(description="clear below", layout=short)
        self.keep_box = widgets.FloatText(description="keep firing", layout=short)
        self.rule_select.observe(lambda _: self._show_rule(), "value")
        self.apply_rule_button = button("Apply rule", "primary")
        self.apply_rule_button.on_click(lambda _: self.apply_rule())
        self._show_rule()

        self._controls = widgets.VBox([
            widgets.HBox([self.play_button, self.pause_button, self.step_button, self.step10_button,
                          self.speed_slider, self.seed_box, self.reset_button]),
            widgets.HBox([self.node_select, self.fault_select, self.duration_box,
                          self.inject_button, self.heal_button]),
            widgets.HBox([self.rule_select, self.threshold_box, self.for_box, self.clear_box,
                          self.keep_box, self.apply_rule_button]),
        ])
        self.status = widgets.HTML()
        self.message = widgets.HTML()
        panel = widgets.Layout(width="50%", padding="0 8px 0 0")
        self.nodes_html = widgets.HTML(layout=panel)
        self.alerts_html = widgets.HTML(layout=panel)
        self.events_html = widgets.HTML(layout=panel)
        self.logs_html = widgets.HTML(layout=panel)

    def _show_rule(self) -> None:
        rule = self.dashboard.rules.get(self.rule_select.value)
        if rule is None:
            return
        self.threshold_box.value = rule.threshold
        self.for_box.value = rule.for_s
        self.clear_box.value = rule.clear_below
        self.keep_box.value = rule.keep_firing_for_s

    # -- actions (buttons call these; so can code) ------------------------------------------

    def say(self, text: str, ok: bool = True) -> bool:
        """Show ``text`` under the controls (red if not ``ok``); returns ``ok``."""
        self.message_text = text
        colour = "#2a7a2a" if ok else "#c0392b"
        self.message.value = f'<span style="color:{colour}">{html.escape(text)}</span>'
        return ok

    def step(self, seconds: float = 1.0) -> bool:
        """Advance the run ``seconds`` of virtual time (whole evaluation steps) and redraw."""
        if self._closed:
            return self.say("this widget is closed", ok=False)
        if self.running:
            return self.say("pause first: stepping while playing would skip ahead", ok=False)
        try:
            events = self.dashboard.run_for(seconds)
        except ValueError as error:
            return self.say(str(error), ok=False)
        self.render()
        news = "; ".join(f"{e.status.name} {e.rule} {e.node}" for e in events)
        return self.say(f"t = {self.dashboard.time:g} s" + (f": {news}" if news else ""))

    def inject(self, kind: Optional[str] = None, node: Optional[str] = None,
               duration_s: Optional[float] = None) -> bool:
        """Start fault ``kind`` (default: the fault menu) on ``node`` (default: the node
        menu) for ``duration_s`` seconds (default: the duration box)."""
        if self._closed:
            return self.say("this widget is closed", ok=False)
        kind = self.fault_select.value if kind is None else kind
        node = self.node_select.value if node is None else node
        duration_s = self.duration_box.value if duration_s is None else duration_s
        try:
            incident = self.dashboard.inject(kind, node, duration_s)
        except ValueError as error:
            return self.say(str(error), ok=False)
        self.render()
        return self.say(f"{incident.kind.value} on {incident.node} from {incident.start:g} s "
                        f"to {incident.end:g} s")

    def heal(self, node: Optional[str] = None) -> bool:
        """End every fault on ``node`` (default: the node menu) now."""
        if self._closed:
            return self.say("this widget is closed", ok=False)
        node = self.node_select.value if node is None else node
        try:
            ended = self.dashboard.heal(node)
        except ValueError as error:
            return self.say(str(error), ok=False)
        self.render()
        return self.say(f"healed {node}: ended {', '.join(i.kind.value for i in ended)}")

    def apply_rule(self, name: Optional[str] = None, **changes) -> bool:
        """Change rule ``name`` (default: the rule menu): by keyword (``threshold``,
        ``for_s``, ``clear_below``, ``keep_firing_for_s``) or, with none, from the boxes."""
        if self._closed:
            return self.say("this widget is closed", ok=False)
        name = self.rule_select.value if name is None else name
        if not changes:
            changes = dict(threshold=self.threshold_box.value, for_s=self.for_box.value,
                           clear_below=self.clear_box.value, keep_firing_for_s=self.keep_box.value)
        try:
            rule = self.dashboard.set_rule(name, **changes)
        except ValueError as error:
            self._show_rule()
            return self.say(str(error), ok=False)
        if name == self.rule_select.value:
            self._show_rule()
        self.render()
        return self.say(f"{rule.name}: {rule.describe()}")

    def reset(self, seed: Optional[int] = None) -> bool:
        """Start again from time 0 with ``seed`` (default: the seed box), same settings."""
        if self._closed:
            return self.say("this widget is closed", ok=False)
        seed = self.seed_box.value if seed is None else seed
        config = dict(self.dashboard.config, seed=seed)
        try:
            fresh = Dashboard(**config)
        except ValueError as error:
            return self.say(str(error), ok=False)
        was_playing = self.running
        self._player.stop()
        self.dashboard = fresh
        self.seed_box.value = seed
        self._show_rule()
        self._sent.forget()
        self._pacer.reset()
        self.render()
        if was_playing:
            self.play()
        return self.say(f"reset: seed {seed}, t = 0 s")

    # -- live updates ---------------------------------------------------------------------------

    def play(self) -> bool:
        """Advance ``speed`` simulated seconds per second, live (asyncio task)."""
        if not self.running:
            self._budget = 0.0
        return self._player.play(f"playing at {self.speed:g} simulated s per s")

    def pause(self) -> bool:
        return self._player.pause(f"paused at t = {self.dashboard.time:g} s")

    def _advance_live(self, elapsed_s: float) -> None:
        """A live frame's model step: ``speed`` x the real time elapsed, in whole
        evaluation steps (the rest owed to the next frame), at most ``MAX_STEP_S``."""
        self._budget = min(self._budget + elapsed_s * self.speed, MAX_STEP_S)
        ticks = int(self._budget / self.dashboard.eval_s + 1e-9)
        if ticks:
            self._budget -= ticks * self.dashboard.eval_s
            self.dashboard.step(ticks)

    # -- drawing ------------------------------------------------------------------------------

    def _rule_for(self, metric: str):
        return next((r for r in self.dashboard.rules.values() if r.metric == metric), None)

    def render(self) -> float:
        """Redraw what changed; returns the frame's cost in ms."""
        if self._closed:
            return 0.0
        began = time.perf_counter()
        d = self.dashboard
        t = d.time
        x0, x1 = max(0.0, t - self.view_s), max(t, self.view_s)
        values = []
        for metric, _title in ROWS:
            times = None
            for node in d.nodes:
                times, ys = d.history(metric, node)
                keep = [i for i, x in enumerate(times) if x >= x0]
                values.append(((metric, node), "x", tuple(times[i] for i in keep)))
                values.append(((metric, node), "y", tuple(None if ys[i] is None else round(ys[i], 2)
                                                          for i in keep)))
            rule = self._rule_for(metric)
            for level in ("threshold", "clear"):
                y = None if rule is None else (rule.threshold if level == "threshold" else rule.clear_below)
                values.append(((metric, level), "x", (x0, x1) if y is not None else ()))
                values.append(((metric, level), "y", (y, y) if y is not None else ()))
        for axis in self._xaxes:
            values.append((("layout", axis), "range", (x0, x1)))
        changes = self._sent.changed(((key, prop), value) for key, prop, value in values)
        if changes:
            fig = self.figure
            with fig.batch_update():
                for ((key, prop), value) in changes:
                    if key[0] == "layout":
                        fig.layout[key[1]][prop] = value
                    else:
                        fig.data[self._index[key]][prop] = value
            self._pacer.sent(fig)
        self._set_html("status", self.status, self._status_html())
        self._set_html("nodes", self.nodes_html, self._nodes_html())
        self._set_html("alerts", self.alerts_html, self._alerts_html())
        self._set_html("events", self.events_html, self._events_html())
        self._set_html("logs", self.logs_html, self._logs_html())
        cost = (time.perf_counter() - began) * 1000.0
        self.frame_ms.append(cost)
        return cost

    def _set_html(self, key: str, widget: widgets.HTML, text: str) -> None:
        if self._html_sent.get(key) != text:
            self._html_sent[key] = text
            widget.value = text

    def _status_html(self) -> str:
        d = self.dashboard
        firing = len(d.firing())
        pending = len(d.alerts(AlertState.PENDING))
        faults = ", ".join(f"{i.kind.value} {i.node} (until {i.end:g} s)" for i in d.active_incidents())
        return (f"<b>t = {d.time:g} s</b> &middot; seed {d.seed} &middot; window {d.window_s:g} s"
                f" &middot; <span style='color:#c0392b'>{firing} firing</span>, "
                f"<span style='color:#d08000'>{pending} pending</span>"
                f" &middot; faults: {html.escape(faults) if faults else 'none'}"
                f"{' &middot; <b>playing</b>' if self.running else ''}")

    def _nodes_html(self) -> str:
        head = ("<tr><th>node</th><th>health</th><th>p50</th><th>p95</th><th>p99</th>"
                "<th>mean</th><th>req/s</th><th>errors</th><th>disk</th><th>faults</th></tr>")
        rows = []
        for view in self.dashboard.nodes_view():
            m = view.metrics
            colour = HEALTH_COLOURS[view.health]
            rows.append(
                f"<tr><td><b>{view.node}</b></td><td style='color:{colour}'>{view.health.value}</td>"
                f"<td>{_fmt(m['p50_ms'])}</td><td>{_fmt(m['p95_ms'])}</td><td>{_fmt(m['p99_ms'])}</td>"
                f"<td>{_fmt(m['mean_ms'])}</td><td>{_fmt(m['throughput_rps'], 1)}</td>"
                f"<td>{_fmt(m['error_ratio'], 0, 100, '%')}</td>"
                f"<td>{_fmt(m['disk_used_percent'], 0, 1, '%')}</td>"
                f"<td>{html.escape(', '.join(view.faults))}</td></tr>")
        return ("<div style='font-size:12px'><b>nodes</b> (latency in ms over the window)"
                f"<table style='border-collapse:collapse'>{head}{''.join(rows)}</table></div>")

    def _alerts_html(self) -> str:
        d = self.dashboard
        rules = "".join(f"<li><b>{html.escape(r.name)}</b>: {html.escape(r.describe())}</li>"
                        for r in d.rules.values())
        active = d.alerts(AlertState.PENDING, AlertState.FIRING)
        rows = "".join(
            f"<tr><td>{html.escape(a.rule)}</td><td>{a.node}</td>"
            f"<td style='color:{STATE_COLOURS[a.state]}'><b>{a.state.value}</b></td>"
            f"<td>since {a.since:g} s</td><td>{_fmt(a.value, 2)}</td></tr>" for a in active)
        table = (f"<table>{rows}</table>" if rows else "<i>no alert pending or firing</i>")
        return (f"<div style='font-size:12px'><b>rules</b><ul style='margin:2px 0'>{rules}</ul>"
                f"<b>alerts</b> {table}</div>")

    def _events_html(self) -> str:
        events = self.dashboard.events[-10:]
        lines = "<br>".join(
            f"<code>{e.time:6g} s</code> <span style='color:"
            f"{'#c0392b' if e.status.name == 'FIRING' else '#2a7a2a'}'>{e.status.name}</span> "
            f"{html.escape(e.rule)} {e.node}" for e in reversed(events))
        return ("<div style='font-size:12px'><b>notifications</b> (newest first)<br>"
                f"{lines or '<i>none yet</i>'}</div>")

    def _logs_html(self) -> str:
        summary = self.dashboard.log_summary()
        counts = " ".join(f"{n}: <b>{c}</b>" for n, c in summary.errors_by_node.items())
        top = "".join(f"<tr><td>{count}</td><td>{level}</td><td><code>{html.escape(text)}</code></td></tr>"
                      for level, text, count in summary.top)
        return (f"<div style='font-size:12px'><b>logs in the window</b> &middot; ERROR lines per "
                f"node: {counts}<table>{top or '<tr><td><i>no WARN or ERROR lines</i></td></tr>'}"
                f"</table></div>")

    # -- tear-down ------------------------------------------------------------------------------

    def close(self) -> None:
        """Stop the live task and close the view."""
        self._player.stop()
        self._closed = True
        for child in (self.figure, self._controls, self.status, self.message, self.nodes_html,
                      self.alerts_html, self.events_html, self.logs_html, self.view):
            child.close()
