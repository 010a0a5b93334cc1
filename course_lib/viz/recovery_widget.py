"""``RecoveryWidget``: a primary and its hot standby, real processes, live.

A view over a :class:`~course_lib.recovery.failover.FailoverModel` (which it builds
from a :class:`~course_lib.recovery.processes.ReplicaGroup` when given one): the model
polls the servers, carries out the faults, writes as a client and keeps what happened
when; the widget only draws it.

- a **status table**: each server's role (primary / standby / deposed / paused / down),
  epoch, log position (last entry, committed), the standby's lag, its ZooKeeper
  session state, its pid;
- a **figure** over time: each server's log position, the highest sequence number the
  client got acknowledged, refused writes (red crosses), and the moments: kills, pauses,
  resumes, restarts (dotted) and promotions (green, with the new epoch);
- **buttons** per server: ``kill a`` (SIGKILL), ``pause a`` (SIGSTOP), ``resume a``
  (SIGCONT), ``restart a``; ``Writes`` (a client writing continuously), ``Live`` (poll
  and redraw twice a second), ``Refresh``; an event log in plain words.

Each button calls a public method code can call too (``kill``, ``pause``, ``resume``,
``restart``, ``start_writes``, ``stop_writes``, ``start_live``, ``stop_live``,
``refresh``); an action that makes no sense shows a message and returns False, never a
traceback.  Without Live, an action is followed anyway (polled every
``FOLLOW_INTERVAL`` s for up to ``FOLLOW_SECONDS``, until the group has settled), so a
fail-over is seen as it happens.  Polling blocks on sockets: it runs in an executor, off
the kernel's loop.  A frame is drawn only once the browser acknowledged the previous
one (:class:`~course_lib.viz.frame_pacing.FramePacer`) and only what changed is sent.
``close()`` stops everything and kills the group's processes.
"""

from __future__ import annotations

import asyncio
import html
import time

import ipywidgets as widgets

from course_lib.recovery.failover import FailoverModel, Moment, Sample
from course_lib.viz.display import view_bundle
from course_lib.viz.frame_pacing import AckFigureWidget, FramePacer, SentState
from course_lib.viz.live import LiveTask

COLOURS = ("#3b7dd8", "#e8743b", "#9467bd", "#8c564b")
STATUS_COLOURS = {"primary": "#1a7f37", "standby": "#3b7dd8", "deposed": "#b26a00",
                  "paused": "#b26a00", "down": "#888888", "no answer": "#c62828"}
MOMENT_COLOURS = {"kill": "#c62828", "pause": "#e8a33b", "resume": "#7aa6e8",
                  "restart": "#3b7dd8", "primary": "#1a7f37", "deposed": "#b26a00",
                  "exited": "#c62828"}
MARKED = ("kill", "pause", "resume", "restart", "primary", "deposed", "exited")
FOLLOW_SECONDS = 12.0
FOLLOW_INTERVAL = 0.25
LIVE_INTERVAL = 0.5


class RecoveryWidget:
    """Live view over a hot-standby group (see the module docstring)."""

    def __init__(self, source, window: float = 60.0) -> None:
        if not isinstance(window, (int, float)) or not 5 <= window <= 3600:
            raise ValueError(f"window must be 5 to 3600 seconds, not {window!r}")
        self.model = source if isinstance(source, FailoverModel) else FailoverModel(source)
        self.window = float(window)
        self.message_text = ""
        self._closed = False
        self._busy = False
        self.live = LiveTask(self._frame, LIVE_INTERVAL,
                             on_error=lambda e: self.say(f"live updates stopped: {e}", ok=False))
        self._follow = LiveTask(self._follow_frame, FOLLOW_INTERVAL,
                                on_error=lambda e: self.say(f"updates stopped: {e}", ok=False))
        self._follow_until = 0.0
        self._settled = 0
        self._sent = SentState()
        self._pacer = FramePacer(1.0 / FOLLOW_INTERVAL, min_fps=0.5)
        self._logged = 0

        nodes = self.model.nodes
        self.figure = self._make_figure()
        self._pacer.watch(self.figure, lambda: self._sent.forget())
        self.buttons: dict[tuple[str, str], widgets.Button] = {}
        rows = []
        for node in nodes:
            row = []
            for action, style in (("kill", "danger"), ("pause", "warning"),
                                  ("resume", "info"), ("restart", "success")):
                b = widgets.Button(description=f"{action} {node}", button_style=style,
                                   layout=widgets.Layout(width="100px"))
                b.on_click(lambda _, a=action, n=node: self.act(a, n))
                self.buttons[(action, node)] = b
                row.append(b)
            rows.append(widgets.HBox(row))
        self.kill_primary_button = widgets.Button(description="kill primary", button_style="danger",
                                                  layout=widgets.Layout(width="120px"))
        self.kill_primary_button.on_click(lambda _: self.act("kill", "primary"))
        self.pause_primary_button = widgets.Button(description="pause primary",
                                                   button_style="warning",
                                                   layout=widgets.Layout(width="120px"))
        self.pause_primary_button.on_click(lambda _: self.act("pause", "primary"))
        self.writes_button = widgets.ToggleButton(description="Writes", icon="pencil", value=False)
        self.writes_button.observe(self._on_writes, "value")
        self.live_button = widgets.ToggleButton(description="Live", icon="play", value=False)
        self.live_button.observe(self._on_live, "value")
        self.refresh_button = widgets.Button(description="Refresh", icon="refresh")
        self.refresh_button.on_click(lambda _: self.refresh())
        self.status = widgets.HTML()
        self.message = widgets.HTML()
        self.log = widgets.HTML(layout=widgets.Layout(max_height="150px", overflow="auto"))
        controls = widgets.VBox([
            widgets.HBox([self.live_button, self.writes_button, self.refresh_button,
                          self.kill_primary_button, self.pause_primary_button]),
            *rows, self.message])
        self.view = widgets.VBox([self.status, self.figure, controls,
                                  widgets.HTML("<b>Events</b>"), self.log])
        self.refresh()

    def _repr_mimebundle_(self, **kwargs):
        return view_bundle(self.view, **kwargs)

    # -- actions (the buttons call these) -------------------------------------------

    def say(self, text: str, ok: bool = True) -> bool:
        """Show ``text`` under the buttons (red if not ``ok``); returns ``ok``."""
        self.message_text = text
        colour = "#1a7f37" if ok else "#c62828"
        self.message.value = f'<span style="color:{colour}">{html.escape(text)}</span>'
        return ok

    def act(self, action: str, which: str) -> bool:
        """Carry out ``action`` (kill, pause, resume, restart) on ``which`` (a node,
        ``"primary"`` or ``"standby"``); False, with a message, if it makes no sense."""
        if self._closed:
            return self.say("this widget is closed: its processes are gone", ok=False)
        try:
            moment = self.model.act(action, which)
        except (ValueError, OSError, TimeoutError) as error:
            return self.say(str(error), ok=False)
        hints = {"kill": "Watch the standby take over once ZooKeeper expires the session "
                         f"(about {self.model.group.session_timeout:g} s).",
                 "pause": "Frozen: past the session timeout the standby takes over; "
                          "then resume it and see what it may still do.",
                 "resume": "", "restart": "It rejoins as a standby and catches up."}
        self.refresh()
        self._follow_changes()
        return self.say(f"{moment.text[0].upper()}{moment.text[1:]}. {hints[action]}".strip())

    def kill(self, which: str) -> bool:
        return self.act("kill", which)

    def pause(self, which: str) -> bool:
        return self.act("pause", which)

    def resume(self, which: str) -> bool:
        return self.act("resume", which)

    def restart(self, which: str) -> bool:
        return self.act("restart", which)

    def start_writes(self) -> bool:
        try:
            self.model.start_writes()
        except (ValueError, OSError, TimeoutError) as error:
            self.writes_button.value = False
            return self.say(f"cannot write: {error}", ok=False)
        self.writes_button.value = True
        self._follow_changes()
        return self.say("A client writes w0, w1, ... continuously (each answered only once "
                        "the standby holds it too).")

    def stop_writes(self) -> bool:
        self.model.stop_writes(wait=0)   # never block the kernel on a write in flight
        self.writes_button.value = False
        return self.say(f"Writes stopped: {self.model.acked} acknowledged, "
                        f"{self.model.refused} refused.")

    def start_live(self) -> bool:
        if self._closed:
            return self.say("this widget is closed", ok=False)
        if not self.live.start():
            self.live_button.value = False
            return self.say("Live updates need a running event loop (a Jupyter kernel); "
                            "call refresh() instead.", ok=False)
        self._follow.stop()
        self.live_button.value = True
        return True

    def stop_live(self) -> None:
        self.live.stop()
        self.live_button.value = False

    def refresh(self) -> Sample:
        """Poll now (blocking) and redraw."""
        sample = self.model.poll()
        self._draw(sample)
        return sample

    @property
    def sample(self) -> Sample:
        return self.model.samples[-1]

    # -- live -----------------------------------------------------------------------

    async def _frame(self) -> None:
        if self._busy or self._closed:
            return
        self._busy = True
        try:
            sample = await asyncio.get_running_loop().run_in_executor(None, self.model.poll)
        finally:
            self._busy = False
        if self._pacer.ready():
            self._draw(sample)

    def _follow_changes(self) -> None:
        self._follow_until = time.monotonic() + FOLLOW_SECONDS
        self._settled = 0
        if not self.live.running:
            self._follow.start()

    def settled(self) -> bool:
        """One primary and every running server a standby of it, none paused."""
        s = self.sample
        statuses = [v.status for v in s.servers]
        return (statuses.count("primary") == 1 and not self.model.paused
                and all(st in ("primary", "standby", "down") for st in statuses))

    async def _follow_frame(self) -> None:
        if self.live.running:
            self._follow.stop()
            return
        await self._frame()
        self._settled = self._settled + 1 if self.settled() else 0
        if (self._settled >= 4 and not self.model.writing) or time.monotonic() > self._follow_until:
            self._follow.stop()

    def _on_live(self, change) -> None:
        if change["new"] and not self.live.running:
            self.start_live()
        elif not change["new"] and self.live.running:
            self.stop_live()

    def _on_writes(self, change) -> None:
        if change["new"] and not self.model.writing:
            self.start_writes()
        elif not change["new"] and self.model.writing:
            self.stop_writes()

    # -- drawing ----------------------------------------------------------------------

    def _make_figure(self) -> AckFigureWidget:
        fig = AckFigureWidget()
        for k, node in enumerate(self.model.nodes):
            fig.add_scatter(x=[], y=[], mode="lines", name=f"{node}: log position",
                            line=dict(color=COLOURS[k % len(COLOURS)], width=2))
        fig.add_scatter(x=[], y=[], mode="lines", name="acknowledged to the client",
                        line=dict(color="#1a7f37", width=3, dash="dot", shape="hv"))
        fig.add_scatter(x=[], y=[], mode="markers", name="write refused",
                        marker=dict(symbol="x", size=9, color="#c62828"), hovertext=[],
                        hoverinfo="text")
        fig.add_scatter(x=[], y=[], mode="lines", name="moments", showlegend=False,
                        line=dict(color="#888888", width=1, dash="dot"), hoverinfo="skip")
        fig.add_scatter(x=[], y=[], mode="lines", name="promotion", showlegend=False,
                        line=dict(color="#1a7f37", width=2), hoverinfo="skip")
        fig.add_scatter(x=[], y=[], mode="text", name="labels", showlegend=False,
                        text=[], textposition="top right", textfont=dict(size=10),
                        hoverinfo="text", hovertext=[])
        fig.update_layout(height=330, margin=dict(l=50, r=20, t=30, b=40),
                          legend=dict(orientation="h", y=-0.2), uirevision="recovery",
                          xaxis_title="seconds", yaxis_title="sequence number",
                          title=dict(text="log positions and fail-overs", font=dict(size=13)))
        return fig

    def _draw(self, sample: Sample) -> None:
        if self._closed:
            return
        model = self.model
        t = sample.time
        x0 = max(0.0, t - self.window)
        samples = [s for s in model.samples if s.time >= x0]
        items = []
        for k, node in enumerate(model.nodes):
            xs, ys = [], []
            for s in samples:
                v = s.server(node)
                xs.append(round(s.time, 2))
                ys.append(v.last_seq)   # None while down or paused: a gap
            items += [((k, "x"), tuple(xs)), ((k, "y"), tuple(ys))]
        n = len(model.nodes)
        with model._lock:
            writes = [w for w in model.writes if w.time >= x0]
            moments = [m for m in model.moments if m.time >= x0 and m.kind in MARKED]
        acked = [w for w in writes if w.ok]
        # the acknowledged line: thinned to at most one point per 0.1 s
        ax, ay, last = [], [], None
        for w in acked:
            key = round(w.time, 1)
            if key != last:
                ax.append(key)
                ay.append(w.seq)
                last = key
            else:
                ay[-1] = w.seq
        items += [((n, "x"), tuple(ax)), ((n, "y"), tuple(ay))]
        refused = [w for w in writes if not w.ok][-200:]
        level = [self._level_before(acked, w.time) for w in refused]
        items += [((n + 1, "x"), tuple(round(w.time, 2) for w in refused)),
                  ((n + 1, "y"), tuple(level)),
                  ((n + 1, "hovertext"), tuple(f"{w.error}: {w.message}" for w in refused))]
        top = max([y for y in ay if y is not None] +
                  [v.last_seq for s in samples for v in s.servers if v.last_seq is not None] + [1])
        top = top * 1.08 + 1
        dotted_x, dotted_y, green_x, green_y = [], [], [], []
        lx, ly, lt, lh = [], [], [], []
        for i, m in enumerate(moments):
            xs, ys = (green_x, green_y) if m.kind == "primary" else (dotted_x, dotted_y)
            xs += [round(m.time, 2), round(m.time, 2), None]
            ys += [0, top, None]
            lx.append(round(m.time, 2))
            ly.append(top * (0.92 - 0.1 * (i % 4)))
            lt.append(self._label(m))
            lh.append(m.text)
        items += [((n + 2, "x"), tuple(dotted_x)), ((n + 2, "y"), tuple(dotted_y)),
                  ((n + 3, "x"), tuple(green_x)), ((n + 3, "y"), tuple(green_y)),
                  ((n + 4, "x"), tuple(lx)), ((n + 4, "y"), tuple(ly)),
                  ((n + 4, "text"), tuple(lt)), ((n + 4, "hovertext"), tuple(lh)),
                  (("layout", "xrange"), (round(x0, 1), round(max(t, self.window) + 1, 1))),
                  (("layout", "yrange"), (0, round(top, 1)))]
        changed = self._sent.changed(items)
        if changed:
            fig = self.figure
            with fig.batch_update():
                for (trace, prop), value in changed:
                    if trace == "layout":
                        if prop == "xrange":
                            fig.layout.xaxis.range = value
                        else:
                            fig.layout.yaxis.range = value
                    else:
                        setattr(fig.data[trace], prop, value)
            self._pacer.sent(fig)
        self.status.value = self._status_html(sample)
        self._draw_log()

    @staticmethod
    def _level_before(acked, t: float) -> int:
        level = 0
        for w in acked:
            if w.time > t:
                break
            level = w.seq
        return level

    @staticmethod
    def _label(m: Moment) -> str:
        if m.kind == "primary":
            return f"{m.node} primary, epoch {m.epoch}"
        if m.kind == "deposed":
            return f"{m.node} deposed"
        if m.kind == "exited":
            return f"{m.node} exited"
        return f"{m.kind} {m.node}"

    def _status_html(self, sample: Sample) -> str:
        head = ("<tr><th>server</th><th>role</th><th>epoch</th><th>log (last / committed)</th>"
                "<th>lag</th><th>ZooKeeper session</th><th>pid</th><th></th></tr>")
        rows = []
        for v in sample.servers:
            colour = STATUS_COLOURS.get(v.status, "#333")
            cells = (f"<b>{html.escape(v.node)}</b>",
                     f"<span style='color:{colour}'><b>{html.escape(v.status)}</b></span>",
                     "-" if v.epoch is None else str(v.epoch),
                     "-" if v.last_seq is None else f"{v.last_seq} / {v.commit_seq}",
                     "-" if v.lag is None else str(v.lag),
                     html.escape(v.session), "-" if v.pid is None else str(v.pid),
                     f"<small>{html.escape(v.detail)}</small>")
            rows.append("<tr>" + "".join(f"<td style='padding:0 10px'>{c}</td>" for c in cells)
                        + "</tr>")
        writes = (f"client: {sample.acked} writes acknowledged, {sample.refused} refused"
                  + (" (writing)" if self.model.writing else ""))
        return f"<table>{head}{''.join(rows)}</table><small>{html.escape(writes)}</small>"

    def _draw_log(self) -> None:
        with self.model._lock:
            moments = list(self.model.moments)
        if len(moments) == self._logged:
            return
        self._logged = len(moments)
        self.log.value = "<br>".join(f"{m.time:6.1f} s &nbsp; {html.escape(m.text)}"
                                     for m in reversed(moments[-60:]))

    # -- tear-down --------------------------------------------------------------------

    def close(self) -> None:
        """Stop live updates and writes, kill the group's processes, close the view."""
        self.stop_live()
        self._follow.stop()
        self._closed = True
        self.model.close()
        self.say("closed: the servers are stopped")
        self.view.close()
        self.figure.close()
