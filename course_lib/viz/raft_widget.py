"""``RaftClusterWidget``: a live, clickable Raft cluster, simulated or real.

``RaftClusterWidget(5, seed=1)`` shows a seeded :class:`SimCluster` it builds itself;
``RaftClusterWidget(ProcessCluster(5, data_dir=...).start())`` shows real OS processes.
The widget is only the view: it talks to the cluster through a *control*
(:mod:`course_lib.raft.control`: :class:`SimControl` or :class:`ProcessControl`, one
surface for both), and what happened (events, terms, who led when, faults) is a
:class:`~course_lib.raft.timeline.ClusterTimeline` the control keeps.  On real
processes kill is SIGKILL, pause is SIGSTOP, the picture comes from polling each node's
status (wall-clock time; no messages in flight; the terms of the last 64 entries; no
step), and the simulator-only controls (step, timers, network sliders, "you are the network", replay)
are hidden; "Trigger election" sends the node a TimeoutNow over its control port.

Three pictures of one seeded simulated cluster:

- the **ring**: servers coloured by role (follower, pre-candidate, candidate, leader,
  down) with their term, vote and commit index; every message on the wire is a dot
  moving from sender to receiver (coloured by kind), cut links are red dashes;
- the **logs**: index x server, each entry coloured by its term (the number in the
  cell), committed entries outlined, entries folded into a snapshot grey;
- the **timeline**: the highest term and who led when, over simulated time, shaded
  where a server was down, the network partitioned, or lossy / slow / duplicating;

plus an event log in plain words (elections, votes, split votes, leaders, commits,
faults, client calls).

Every control calls a public method that code can call too (``kill``, ``restart``,
``pause_server``, ``resume_server``, ``partition``, ``heal``, ``trigger_election``,
``expire_timer``, ``client_write``, ``set_load``, ``set_loss``, ``set_delay``,
``set_duplication``, ``set_manual``, ``deliver``, ``drop``, ``step``, ``refresh``,
``play``, ``pause``, ``replay``, ``reset``); an action that makes no sense (kill a dead
server, pause a paused one, partition with one group) shows a message and returns
False, it never raises.

**You are the network** (simulator only): the toggle stops automatic delivery
(:meth:`SimCluster.set_manual_delivery`); the messages waiting are listed (id, from, to,
type, term, index) and :meth:`~RaftClusterWidget.deliver` / :meth:`~RaftClusterWidget.drop`
take the one chosen; *Expire timer* makes a server time out now.  Time still runs when
you step or play (timers fire, leaders send heartbeats), but nothing arrives until you
choose it.  Each action that changes the model is
kept as data, ``Action(time, method, args)`` in :attr:`RaftClusterWidget.actions`, so
:meth:`~RaftClusterWidget.replay` rebuilds the cluster from the seed box and re-applies
them at the same simulated times: a run made by clicking replays exactly (compare
``cluster.trace_digest()``).

Play runs an asyncio task on the kernel's loop (:class:`~course_lib.viz.player.LivePlayer`)
that advances simulated time by ``speed`` x the real time elapsed and redraws at most
``fps`` (<= 10) times a second; Pause and :meth:`close` stop it.  Nothing runs by
itself when a cell executes.

**Keeping the browser fluid.**  plotly.js redraws a whole figure on every update, and
in a 2-core browser one redraw of a figure holding all three pictures took longer than
the frame interval: updates queued, clicks waited behind them for seconds.  So:

- three figures (:attr:`figures`: ``ring``, ``logs``, ``timeline``), each updated only
  when something in it changed, and only the properties that changed
  (:class:`~course_lib.viz.frame_pacing.SentState`); while playing, the timeline is
  redrawn at most every ``TIMELINE_PERIOD`` s unless a term, leader or fault appears;
- ack-based pacing (:class:`~course_lib.viz.frame_pacing.FramePacer`): a live frame
  draws only once the browser has answered the previous update, and the next frame
  waits twice the time the browser took (between ``fps`` and one frame per
  second); the model keeps running while frames are skipped (:attr:`skipped_frames`).
  ``pacing=False`` sends every frame at ``fps`` (the benchmark's baseline);
- an action's message is sent before its redraw, so a click shows at once.
"""

from __future__ import annotations

import asyncio
import html
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Optional

import ipywidgets as widgets
import plotly.graph_objects as go

from course_lib.viz.display import view_bundle
from course_lib.viz.frame_pacing import AckFigureWidget, SentState
from course_lib.viz.player import MAX_FPS, LivePlayer, PlayerAttributes
from course_lib.viz.ring import parse_groups, ring_layout, ring_links
from course_lib.raft import (
    AppendEntries, AppendEntriesResponse, InstallSnapshot,
    InstallSnapshotResponse, RaftError, RequestVote, RequestVoteResponse, SimCluster,
    TimeoutNow,
)
from course_lib.raft.control import SimControl, control_for, describe_message
from course_lib.raft.timeline import FAULT_KINDS

TIMELINE_PERIOD = 1.0            # s between timeline redraws while playing (unless news)
FIGURE_NAMES = ("ring", "logs", "timeline")
RING_SIZE, LOGS_SIZE, TIMELINE_SIZE = (380, 300), (560, 300), (580, 185)
EVENTS_WIDTH = 354
ROLE_COLOURS = {
    "follower": "#4c78a8", "pre-candidate": "#eeca3b", "candidate": "#f58518",
    "leader": "#54a24b", "down": "#b5b5b5", "paused": "#9d755d",
}
# ten colours for terms (term % 10): neighbouring terms look different
TERM_COLOURS = ("#4c78a8", "#f58518", "#54a24b", "#e45756", "#72b7b2",
                "#b279a2", "#eeca3b", "#9d755d", "#ff9da6", "#79706e")
UNKNOWN_TERM = len(TERM_COLOURS)         # a real node's entry: its term is not reported
LOG_COLOURS = TERM_COLOURS + ("#bcbddc",)
ACTION_ERRORS = (ValueError, TypeError, RaftError, RuntimeError, OSError)
MESSAGE_KINDS = ("vote request", "vote reply", "append", "heartbeat", "append reply",
                 "snapshot", "client")
MESSAGE_COLOURS = {
    "vote request": "#f58518", "vote reply": "#e45756", "append": "#1f4e99",
    "heartbeat": "#9ecae9", "append reply": "#72b7b2", "snapshot": "#79706e",
    "client": "#b279a2",
}
FAULT_COLOURS = {"server down": "rgba(228,87,86,0.18)", "partition": "rgba(178,121,162,0.20)",
                 "bad network": "rgba(238,202,59,0.25)"}
CLIENT_POS = (0.0, 0.0)


def _label_side(x: float, y: float) -> str:
    """Where a server's label goes, seen from the ring's centre: beside the top server,
    above the upper ones, below the lower ones (never off the figure's edge)."""
    if y > 0.9:
        return "middle right"
    return "top center" if y > -0.2 else "bottom center"


@dataclass(frozen=True)
class Action:
    """One user action on the model, replayable: at simulated ``time`` (ms), the
    widget method ``method`` was called with ``args``."""
    time: float
    method: str
    args: tuple = ()


ACTIONS = frozenset({"crash", "restart", "pause", "resume", "partition", "heal", "trigger_election",
                     "expire_timer", "client_write", "set_load", "set_loss", "set_delay",
                     "set_duplication", "set_manual", "deliver", "drop"})


def message_kind(msg: Any) -> str:
    t = type(msg)
    if t is AppendEntries:
        return "append" if msg.entries else "heartbeat"
    if t is AppendEntriesResponse:
        return "append reply"
    if t is RequestVote or t is TimeoutNow:
        return "vote request"
    if t is RequestVoteResponse:
        return "vote reply"
    if t is InstallSnapshot or t is InstallSnapshotResponse:
        return "snapshot"
    return "client"


class RaftClusterWidget(PlayerAttributes):
    """A view over a Raft cluster (see the module docstring).

    ``RaftClusterWidget(n=5, seed=1, **cluster_options)`` builds
    ``SimCluster(n, seed, **cluster_options)``; ``replay`` and ``reset`` build a new
    one the same way from the seed box.  ``RaftClusterWidget(cluster)`` shows a
    cluster made elsewhere: a started :class:`~course_lib.net.ProcessCluster` (the
    caller stops it), or a :class:`SimCluster` (then replay and reset are refused).
    """

    def __init__(self, n=5, seed: int = 1, *, speed: float = 0.2, fps: float = MAX_FPS,
                 step_ms: float = 20.0, window_ms: float = 10_000.0, log_window: int = 24,
                 pacing: bool = True, **cluster_options) -> None:
        self._player = LivePlayer(  # validates fps
            advance=self._advance_live, draw=lambda fetched: self.render(live=True, fetched=fetched),
            redraw=self.render, skipped=self._skipped_frame, say=self.say,
            closed=lambda: self._closed, fps=fps, pacing=pacing)
        if not isinstance(step_ms, (int, float)) or not 0 < step_ms <= 10_000:
            raise ValueError(f"step_ms must be in (0, 10000] ms, got {step_ms!r}")
        if not isinstance(log_window, int) or not 4 <= log_window <= 200:
            raise ValueError(f"log_window must be an int in [4, 200], got {log_window!r}")
        given = None if isinstance(n, int) else n
        if given is not None and cluster_options:
            raise ValueError("cluster options go to the cluster you built, not to the widget: "
                             f"{sorted(cluster_options)}")
        self.n = n if given is None else None
        self.cluster_options = dict(cluster_options)
        self.fps = self._player.fps
        self.step_ms = float(step_ms)
        self.window_ms = float(window_ms)
        self.log_window = log_window
        self.speed = 0.2
        self.message_text = ""
        self.frame_ms: deque = deque(maxlen=500)
        self._timeline_at = 0.0                     # perf_counter of the last timeline redraw
        self._timeline_news = None
        self._closed = False
        # validates n, seed and the options
        self.control = control_for(given) if given is not None else SimControl(self._build(seed))
        self.owns_cluster = given is None
        self._reset_view_state()
        self._make_figures()
        self._build_controls(seed)
        self.set_speed(speed)
        f = self.figures
        events = widgets.VBox([widgets.HTML("<b>Events</b> (newest first)"), self.event_log],
                              layout=widgets.Layout(width=f"{EVENTS_WIDTH}px", margin="0 0 0 6px"))
        self.view = widgets.VBox([
            widgets.HBox([f["ring"], f["logs"]]), widgets.HTML(_legend_html()),
            widgets.HBox([f["timeline"], events]), self._controls, self.message, self.status])
        self.render()

    def _repr_mimebundle_(self, **kwargs):
        return view_bundle(self.view, **kwargs)

    # ------------------------------------------------------------------ model
    def _build(self, seed: int) -> SimCluster:
        return SimCluster(self.n, seed=seed, **self.cluster_options)

    @property
    def cluster(self):
        """The cluster shown (a ``SimCluster`` or a ``ProcessCluster``)."""
        return self.control.cluster

    @property
    def simulated(self) -> bool:
        return isinstance(self.control, SimControl)

    @property
    def timeline(self):
        """What happened: a :class:`~course_lib.raft.timeline.ClusterTimeline`."""
        return self.control.timeline

    @property
    def events(self) -> list:
        """``(time ms, kind, text)`` in plain words, oldest first."""
        return self.control.timeline.events

    @property
    def split_votes(self) -> int:
        return self.control.timeline.split_votes

    @property
    def last_write(self):
        """The handle of the last :meth:`client_write` (poll ``done``)."""
        return self.control.last_write

    def _reset_view_state(self) -> None:
        self.actions: list[Action] = []
        self._writes = 0                          # client writes so far (the auto value)
        self._shown_events = -1
        self._held_shown = None
        self.ids = list(self.control.ids)
        self._xy = ring_layout(self.ids)

    # ------------------------------------------------------------------ figure
    def _make_figures(self) -> None:
        """Three small ``FigureWidget`` s rather than one with subplots: plotly.js redraws
        a whole figure on every update, so the ring (which moves every frame) is kept
        apart from the log grid and the timeline (which change seldom)."""
        keys = {}  # trace key -> (figure name, index): ``_trace(key)`` finds it
        figs = {name: go.Figure() for name in FIGURE_NAMES}

        def add(key: str, name: str, trace) -> None:
            keys[key] = (name, len(figs[name].data))
            figs[name].add_trace(trace)

        S = go.Scatter
        add("cuts", "ring", S(x=[], y=[], mode="lines", hoverinfo="skip",
                              line=dict(color="#d62728", width=2, dash="dash")))
        add("links", "ring", S(x=[], y=[], mode="lines", hoverinfo="skip",
                               line=dict(color="#dddddd", width=1)))
        for kind in MESSAGE_KINDS:
            add(f"msg-{kind}", "ring", S(x=[], y=[], mode="markers", name=kind,
                                         marker=dict(size=7, color=MESSAGE_COLOURS[kind]),
                                         hoverinfo="text", hovertext=[]))
        # Data arrays are never set here but by the first render(): arrays given at
        # construction were lost in the browser for traces later restyled (the servers
        # vanished when the widget was built and shown in one cell).
        add("servers", "ring", S(
            x=[], y=[], mode="markers+text", marker=dict(size=40, line=dict(color="#333333", width=1)),
            text=[], textposition="middle center",
            textfont=dict(color="white", size=12), hoverinfo="text", hovertext=[]))
        # the labels sit on invisible discs at the servers, outside them (text offsets
        # are counted from the marker's edge), on the side where there is room
        add("labels", "ring", S(
            x=[], y=[], mode="markers+text", marker=dict(size=40, opacity=0), text=[],
            textfont=dict(size=10, color="#333333"), hoverinfo="skip"))
        add("clients", "ring", S(x=[], y=[], mode="markers+text",
                                 marker=dict(size=11, symbol="square", color="#b279a2"),
                                 text=[], textposition="bottom center",
                                 textfont=dict(size=9), hoverinfo="skip"))
        add("log", "logs", go.Heatmap(
            zmin=-0.5, zmax=UNKNOWN_TERM + 0.5, colorscale=_discrete_scale(LOG_COLOURS), showscale=False,
            texttemplate="%{text}",
            textfont=dict(size=10), hovertemplate="%{y} [%{x}] term %{text}<extra></extra>",
            xgap=2, ygap=2))
        add("committed", "logs", S(x=[], y=[], mode="markers", hoverinfo="skip",
                                   marker=dict(symbol="square-open", size=15, color="#111111",
                                               line=dict(width=2))))
        add("compacted", "logs", S(x=[], y=[], mode="markers", hoverinfo="text", hovertext=[],
                                   marker=dict(symbol="square", size=13, color="#cccccc")))
        for kind in FAULT_KINDS:
            add(f"fault-{kind}", "timeline", S(x=[], y=[], mode="lines", fill="toself", name=kind,
                                               fillcolor=FAULT_COLOURS[kind], line=dict(width=0),
                                               hoverinfo="name"))
        add("term", "timeline", S(x=[], y=[], mode="lines", name="highest term",
                                  line=dict(color="#555555", width=1, shape="hv")))
        add("reigns", "timeline", S(x=[], y=[], mode="lines", name="leader", hoverinfo="text",
                                    hovertext=[], line=dict(color="#54a24b", width=6)))
        add("leaders", "timeline", S(x=[], y=[], mode="markers+text", text=[],
                                     textposition="top center", textfont=dict(size=10),
                                     marker=dict(symbol="star", size=10, color="#54a24b"),
                                     hoverinfo="text", hovertext=[]))
        self._trace_index = keys

        common = dict(plot_bgcolor="white", showlegend=False, uirevision="raft",
                      title=dict(font=dict(size=13), x=0.02, y=0.99, yanchor="top"))
        ring, logs, timeline = figs["ring"], figs["logs"], figs["timeline"]
        # Fixed ranges, and no scaleanchor: with it, a browser falling behind a burst of
        # redraws re-constrained the ranges and shrank the ring to a third of its size.
        ring.update_layout(width=RING_SIZE[0], height=RING_SIZE[1], margin=dict(l=0, r=0, t=24, b=0),
                           title_text="servers and messages in flight", **common)
        ring.update_xaxes(visible=False, range=[-2.05, 2.05], fixedrange=True)
        ring.update_yaxes(visible=False, range=[-1.55, 1.4], fixedrange=True)
        logs_title = ("logs (cell = term; outlined = committed; grey = snapshot)" if self.simulated
                      else "logs as polled (cell = term; outlined = committed)")
        logs.update_layout(width=LOGS_SIZE[0], height=LOGS_SIZE[1],
                           margin=dict(l=34, r=8, t=24, b=34), title_text=logs_title, **common)
        logs.update_xaxes(title=dict(text="log index", standoff=4), showgrid=False, fixedrange=True,
                          range=(0.5, self.log_window + 0.5), title_font_size=11)
        logs.update_yaxes(autorange="reversed", type="category", categoryorder="array",
                          categoryarray=self.ids, fixedrange=True)
        timeline.update_layout(width=TIMELINE_SIZE[0], height=TIMELINE_SIZE[1],
                               margin=dict(l=40, r=8, t=24, b=34),
                               title_text="terms and leaders over time", **common)
        timeline.update_xaxes(title=dict(text=self.control.clock, standoff=4), gridcolor="#eeeeee",
                              title_font_size=11, range=(0, 2), fixedrange=True)
        timeline.update_yaxes(title=dict(text="term", standoff=2), gridcolor="#eeeeee",
                              title_font_size=11, range=(0, 1.5), fixedrange=True)
        # Each figure is wrapped once complete, so the widget's first state is whole.
        # The traces' uids are FigureWidget's own: setting uids afterwards
        # desynchronises the browser (the log grid stayed blank).
        self.figures = {name: AckFigureWidget(f) for name, f in figs.items()}
        self.figure = self.figures["ring"]
        self.figures["ring"].data[keys["servers"][1]].on_click(self._on_ring_click)
        self._sent = SentState()
        for name, fig in self.figures.items():
            self._pacer.watch(fig, lambda name=name: self._redraw_whole(name))

    def _redraw_whole(self, name: str) -> None:
        """A view of figure ``name`` drew itself from the model's state: send it every
        value again (a view built while updates were in flight missed some)."""
        self._sent.forget((name,))
        if not self._closed:
            self.render()

    def _trace(self, key: str):
        name, index = self._trace_index[key]
        return self.figures[name].data[index]

    # ------------------------------------------------------------------ controls
    def _build_controls(self, seed: int) -> None:
        # Widths fit each label (13 px font: ~8 px a character, + 16 px icon + padding);
        # descriptions take the width they need.
        W = widgets.Layout
        fit = {"description_width": "initial"}

        def button(label: str, width: int, **kw) -> widgets.Button:
            return widgets.Button(description=label, layout=W(width=f"{width}px"), **kw)

        self.play_button, self.pause_button = self._player.make_buttons(self.play, self.pause, (78, 86))
        self.step_button = button(f"Step {self.step_ms:g} ms", 124, icon="step-forward")
        self.speed_slider = widgets.FloatLogSlider(value=0.2, base=10, min=-2, max=1, step=0.1,
                                                   description="speed", readout_format=".2f",
                                                   style=fit, layout=W(width="250px"))
        self.refresh_button = button("Refresh", 90, icon="refresh", tooltip="poll the nodes and redraw")
        self.step_button.on_click(lambda _: self.step())
        self.refresh_button.on_click(lambda _: self.refresh())
        self.speed_slider.observe(lambda ch: self.set_speed(ch["new"]), "value")

        self.node_select = widgets.Dropdown(options=self.ids, value=self.ids[0], description="server",
                                            style=fit, layout=W(width="130px"))
        self.kill_button = button("Kill", 60, button_style="danger")
        self.restart_button = button("Restart", 86, button_style="info")
        self.elect_button = button("Trigger election", 146)
        self.suspend_button = button("Pause server", 118, tooltip="SIGSTOP: frozen, not dead")
        self.unsuspend_button = button("Resume server", 128)
        self.timer_button = button("Expire timer", 112,
                                   tooltip="its election timer runs out now: it campaigns as on a timeout")
        self.kill_button.on_click(lambda _: self.kill())
        self.restart_button.on_click(lambda _: self.restart())
        self.elect_button.on_click(lambda _: self.trigger_election())
        self.suspend_button.on_click(lambda _: self.pause_server())
        self.unsuspend_button.on_click(lambda _: self.resume_server())
        self.timer_button.on_click(lambda _: self.expire_timer())

        half = len(self.ids) // 2
        self.groups_text = widgets.Text(value=" ".join(self.ids[:half]) + " | " + " ".join(self.ids[half:]),
                                        description="groups", style=fit, layout=W(width="210px"))
        self.partition_button = button("Partition", 94, button_style="warning")
        self.heal_button = button("Heal", 64, button_style="success")
        self.partition_button.on_click(lambda _: self.partition(self.groups_text.value))
        self.heal_button.on_click(lambda _: self.heal())

        self.key_text = widgets.Text(value="x", description="key", style=fit, layout=W(width="110px"))
        self.value_text = widgets.Text(value="", placeholder="auto", description="value", style=fit,
                                       layout=W(width="130px"))
        self.write_button = button("Client write", 124, icon="pencil")
        self.write_button.on_click(lambda _: self.client_write(self.key_text.value,
                                                               self.value_text.value or None))
        self.load_slider = widgets.IntSlider(value=0, min=0, max=4, description="client load",
                                             continuous_update=False, style=fit,
                                             layout=W(width="260px"))
        self.load_slider.observe(lambda ch: self.set_load(ch["new"]), "value")

        loss, (lo, hi), dup = self._network_settings()
        self.loss_slider = widgets.FloatSlider(value=loss, min=0, max=0.5, step=0.01,
                                               description="loss", continuous_update=False,
                                               style=fit, layout=W(width="250px"))
        self.delay_slider = widgets.IntRangeSlider(value=(int(lo), int(hi)), min=0, max=300, step=1,
                                                   description="delay ms", continuous_update=False,
                                                   style=fit, layout=W(width="300px"))
        self.dup_slider = widgets.FloatSlider(value=dup, min=0, max=0.5, step=0.01,
                                              description="duplicate", continuous_update=False,
                                              style=fit, layout=W(width="270px"))
        self.loss_slider.observe(lambda ch: self.set_loss(ch["new"]), "value")
        self.delay_slider.observe(lambda ch: self.set_delay(*ch["new"]), "value")
        self.dup_slider.observe(lambda ch: self.set_duplication(ch["new"]), "value")

        self.seed_box = widgets.IntText(value=seed, description="seed", style=fit,
                                        layout=W(width="120px"))
        self.replay_button = button("Replay", 92, icon="repeat",
                                    tooltip="rebuild from the seed and re-apply your actions")
        self.reset_button = button("New run", 102, icon="refresh",
                                   tooltip="a fresh cluster from the seed, no actions")
        self.replay_button.on_click(lambda _: self.replay())
        self.reset_button.on_click(lambda _: self.reset())

        # "you are the network": a toggle, the messages waiting, deliver / drop the chosen one
        self.manual_toggle = widgets.ToggleButton(value=False, description="You are the network",
                                                  icon="hand-paper-o", layout=W(width="176px"),
                                                  tooltip="stop automatic delivery: you pick each message")
        self.held_select = widgets.Select(options=[], rows=5, layout=W(width="430px"))
        self.deliver_button = button("Deliver", 86, icon="check", button_style="success")
        self.drop_button = button("Drop", 70, icon="times", button_style="danger")
        self.manual_toggle.observe(lambda ch: self.set_manual(ch["new"]), "value")
        self.deliver_button.on_click(lambda _: self.deliver())
        self.drop_button.on_click(lambda _: self.drop())

        row = lambda *children: widgets.HBox(children, layout=W(flex_flow="row wrap"))  # noqa: E731
        gap = lambda: widgets.HTML("", layout=W(width="18px"))  # noqa: E731
        self._manual_box = widgets.HBox([self.held_select, widgets.VBox([self.deliver_button, self.drop_button])],
                                        layout=W(display="none"))
        self._controls = widgets.VBox([
            row(self.play_button, self.pause_button, self.step_button, self.refresh_button,
                self.speed_slider, gap(), self.seed_box, self.replay_button, self.reset_button),
            row(self.node_select, self.kill_button, self.restart_button, self.suspend_button,
                self.unsuspend_button, self.elect_button, self.timer_button),
            row(self.groups_text, self.partition_button, self.heal_button, gap(),
                self.key_text, self.value_text, self.write_button, gap(), self.load_slider),
            row(self.loss_slider, self.delay_slider, self.dup_slider, gap(), self.manual_toggle),
            self._manual_box,
        ])
        if self.simulated:
            self.refresh_button.layout.display = "none"
        else:                      # what a real cluster cannot do is not offered
            for control in (self.step_button, self.speed_slider, self.seed_box, self.replay_button,
                            self.reset_button, self.timer_button, self.loss_slider,
                            self.delay_slider, self.dup_slider, self.manual_toggle):
                control.layout.display = "none"
        self.message = widgets.HTML()
        self.status = widgets.HTML()
        self.event_log = widgets.HTML(layout=W(height=f"{TIMELINE_SIZE[1] - 24}px", overflow="auto"))

    def _set_quietly(self, control, value) -> None:
        """Move a control to ``value`` without calling its handler (replay, reset)."""
        self._quiet = True
        try:
            control.value = value
        finally:
            self._quiet = False

    _quiet = False

    def _on_ring_click(self, trace, points, state) -> None:    # browser only
        if points.point_inds:
            self.node_select.value = self.ids[points.point_inds[0]]

    # ------------------------------------------------------------------ messages
    def say(self, text: str, ok: bool = True) -> bool:
        """Show ``text`` under the controls (red if not ``ok``); returns ``ok``."""
        self.message_text = text
        colour = "#2a7a2a" if ok else "#c0392b"
        self.message.value = f'<span style="color:{colour}">{html.escape(text)}</span>'
        return ok

    # ------------------------------------------------------------------ actions
    def _node(self, node: Optional[str]) -> str:
        return self.node_select.value if node is None else node

    def _act(self, method: str, args: tuple, done: str) -> bool:
        """Apply a model action, record it, redraw; a refusal becomes a message."""
        if self._closed:
            return self.say("this widget is closed", ok=False)
        try:
            self._apply(method, args)
        except ACTION_ERRORS as error:
            return self.say(f"{method.replace('_', ' ')}: {error}", ok=False)
        self.actions.append(Action(self.control.now, method, args))
        self.say(done)                 # first, so the browser shows it before the redraw
        self.render()
        return True

    def _apply(self, method: str, args: tuple) -> None:
        """The model side of each action (also what :meth:`replay` calls): the
        control's method of the same name (``kill`` is its ``crash``)."""
        name = "crash" if method == "kill" else method
        if name not in ACTIONS:
            raise ValueError(f"unknown action {method!r}")
        getattr(self.control, name)(*args)
        if method == "client_write":
            self._writes += 1

    def kill(self, node: Optional[str] = None) -> bool:
        """Crash ``node`` (default: the selected one); it keeps only what it persisted
        (on real processes: SIGKILL; it keeps what its WAL holds)."""
        node = self._node(node)
        kept = "its persisted term, vote and log" if self.simulated else "what its WAL holds (SIGKILL)"
        return self._act("kill", (node,), f"killed {node}: it keeps only {kept}")

    def restart(self, node: Optional[str] = None) -> bool:
        """Restart a crashed server from its storage (a real one: a new process)."""
        node = self._node(node)
        return self._act("restart", (node,), f"restarted {node} from its storage")

    def pause_server(self, node: Optional[str] = None) -> bool:
        """Freeze ``node`` (SIGSTOP on a real one): it neither ticks nor answers."""
        node = self._node(node)
        return self._act("pause", (node,), f"paused {node}: frozen, not dead (a GC pause, SIGSTOP)")

    def resume_server(self, node: Optional[str] = None) -> bool:
        """Let a paused server run on (SIGCONT)."""
        node = self._node(node)
        return self._act("resume", (node,), f"resumed {node}")

    def partition(self, *groups) -> bool:
        """Cut the network between groups: ``partition({"n1","n2"}, {"n3","n4","n5"})`` or
        ``partition("n1 n2 | n3 n4 n5")``.  Servers in no group keep their links."""
        try:
            if len(groups) == 1 and isinstance(groups[0], str):
                groups = parse_groups(groups[0])
            clean = tuple(tuple(sorted(g)) for g in groups)
            if len(clean) < 2:
                raise ValueError("write at least two groups, e.g. 'n1 n2 | n3 n4 n5'")
        except (ValueError, TypeError) as error:
            return self.say(f"partition: {error}", ok=False)
        shown = " | ".join(" ".join(g) for g in clean)
        return self._act("partition", clean, f"partitioned the network: {shown}")

    def heal(self) -> bool:
        """Restore every cut link."""
        return self._act("heal", (), "healed the network")

    def trigger_election(self, node: Optional[str] = None) -> bool:
        """Make ``node`` time out now and campaign (TimeoutNow, thesis §3.10)."""
        node = self._node(node)
        return self._act("trigger_election", (node,), f"{node} starts an election now")

    def expire_timer(self, node: Optional[str] = None) -> bool:
        """Run ``node``'s election timer out now: it campaigns as on a real timeout
        (with PreVote if on).  With manual delivery, how a learner starts an election."""
        node = self._node(node)
        return self._act("expire_timer", (node,), f"{node}'s election timer ran out")

    def client_write(self, key: str = "x", value: Optional[str] = None) -> bool:
        """A client submits ``put key value`` (value: a counter if None); it completes
        as time runs.  The handle is :attr:`last_write`."""
        if not isinstance(key, str) or not key.strip():
            return self.say("client write: the key must be a non-empty string", ok=False)
        if value is None:
            value = str(self._writes + 1)
        if not isinstance(value, str):
            return self.say(f"client write: the value must be a string, got {value!r}", ok=False)
        return self._act("client_write", (key.strip(), value), f"client writes {key.strip()} = {value}")

    def set_load(self, clients: int) -> bool:
        """Run ``clients`` closed-loop writers (0 stops them)."""
        if self._quiet:
            return True
        ok = self._act("set_load", (clients,), f"client load: {clients} closed-loop writer(s)")
        if self.load_slider.value != self.control.load_size:
            self._set_quietly(self.load_slider, self.control.load_size)
        return ok

    def set_loss(self, p: float) -> bool:
        """Lose each message with probability ``p``."""
        if self._quiet:
            return True
        ok = self._act("set_loss", (p,), f"message loss {p:.0%}" if isinstance(p, (int, float)) else "")
        self._sync_network_controls()
        return ok

    def set_delay(self, lo: float, hi: float) -> bool:
        """Deliver each message after a delay drawn uniformly in [lo, hi] ms."""
        if self._quiet:
            return True
        ok = self._act("set_delay", (lo, hi), f"message delay {lo}-{hi} ms")
        self._sync_network_controls()
        return ok

    def set_duplication(self, p: float) -> bool:
        """Deliver each message twice with probability ``p``."""
        if self._quiet:
            return True
        ok = self._act("set_duplication", (p,),
                       f"message duplication {p:.0%}" if isinstance(p, (int, float)) else "")
        self._sync_network_controls()
        return ok

    # -- you are the network ------------------------------------------------------------
    def set_manual(self, on: bool) -> bool:
        """``True``: stop automatic delivery, list the messages waiting, and let the
        learner deliver or drop each (:meth:`deliver`, :meth:`drop`); ``False``: the
        network delivers what waits, and everything later, by itself again."""
        if self._quiet:
            return True
        done = ("you are the network: pick the next message to deliver, or drop it" if on
                else "the network delivers by itself again")
        ok = self._act("set_manual", (on,), done)
        self._sync_manual_controls()
        return ok

    def held(self) -> list:
        """The messages waiting for you: ``(id, from, to, type, term, index)`` rows."""
        return [(m.id, m.src, m.dst) + describe_message(m.msg) for m in self.control.held()]

    def _chosen(self, mid: Optional[int]) -> Optional[int]:
        if mid is not None:
            return mid
        if self.held_select.value is not None:
            return self.held_select.value
        held = self.control.held()
        return held[0].id if held else None

    def deliver(self, mid: Optional[int] = None) -> bool:
        """Deliver the waiting message ``mid`` (default: the one selected, else the oldest)."""
        mid = self._chosen(mid)
        return self._act("deliver", (mid,), f"delivered {self._label(mid)}")

    def drop(self, mid: Optional[int] = None) -> bool:
        """Lose the waiting message ``mid`` (default: the one selected, else the oldest)."""
        mid = self._chosen(mid)
        return self._act("drop", (mid,), f"dropped {self._label(mid)}")

    def _label(self, mid) -> str:
        for row in self.held():
            if row[0] == mid:
                return _held_label(row)
        return f"message {mid}"

    def _sync_manual_controls(self) -> None:
        on = self.control.manual
        if self.manual_toggle.value != on:
            self._set_quietly(self.manual_toggle, on)
        self._manual_box.layout.display = "flex" if on else "none"

    def _network_settings(self) -> tuple:
        """(loss, (delay lo, hi), duplication) of a simulated network; defaults otherwise."""
        return self.control.network_settings() if self.simulated else (0.0, (1, 5), 0.0)

    def _sync_network_controls(self) -> None:
        loss, d, dup = self._network_settings()
        self._set_quietly(self.loss_slider, loss)
        self._set_quietly(self.dup_slider, dup)
        self._set_quietly(self.delay_slider, (int(round(d[0])), int(round(d[1]))))

    def set_speed(self, speed: float) -> bool:
        """Simulated time per real time while playing (0.01 to 10)."""
        if not isinstance(speed, (int, float)) or isinstance(speed, bool) or not 0.01 <= speed <= 10:
            return self.say(f"speed must be 0.01 to 10, got {speed!r}", ok=False)
        self.speed = float(speed)
        if abs(self.speed_slider.value - self.speed) > 1e-9:
            self.speed_slider.value = self.speed
        return True

    # ------------------------------------------------------------------ time
    def advance(self, ms: float) -> None:
        """Run the simulation ``ms`` milliseconds (no redraw)."""
        self.control.advance(ms)

    def step(self, ms: Optional[float] = None) -> float:
        """Advance ``ms`` (default ``step_ms``) and redraw; returns the frame's cost (ms).
        A real cluster has no simulated time: use :meth:`refresh` (or Play)."""
        if self._closed:
            self.say("this widget is closed", ok=False)
            return 0.0
        if not self.simulated:
            self.say("step: a real cluster runs on its own clock; use Refresh or Play", ok=False)
            return 0.0
        ms = self.step_ms if ms is None else ms
        if not isinstance(ms, (int, float)) or isinstance(ms, bool) or not 0 <= ms <= 600_000:
            self.say(f"step: time must be 0 to 600000 ms, got {ms!r}", ok=False)
            return 0.0
        self.advance(ms)
        return self.render()

    def refresh(self) -> float:
        """Redraw from the cluster as it is now (a real one: poll every node)."""
        if self._closed:
            self.say("this widget is closed", ok=False)
            return 0.0
        return self.render()

    def play(self) -> bool:
        """Start the live task on the running asyncio loop (Pause stops it)."""
        return self._player.play("live: polling the nodes" if not self.simulated
                                 else f"playing at {self.speed:.2g}x")

    def pause(self) -> bool:
        """Stop the live task; the cluster stays where it is (and is drawn as it is)."""
        return self._player.pause("paused")

    def _advance_live(self, elapsed_s: float):
        """A live frame's model step: ``speed`` x the real time elapsed, at most 1 s of
        simulated time (a stalled kernel catches up gently); a real cluster is polled
        off the kernel's loop instead (an awaitable of what the nodes answered)."""
        if not self.simulated:
            return asyncio.get_running_loop().run_in_executor(None, self.control.fetch)
        self.advance(min(elapsed_s * 1000.0 * self.speed, 1000.0))
        return None

    def _skipped_frame(self, fetched) -> None:
        if fetched is not None:        # what was polled still goes into the timeline
            self.control.poll(fetched)


    # ------------------------------------------------------------------ replay
    def replay(self) -> bool:
        """Rebuild the cluster from the seed box and re-apply :attr:`actions` at their
        simulated times, up to the current time.  Same seed -> the same trace."""
        if not self.owns_cluster:
            return self.say("replay: only a cluster the widget built from a seed replays "
                            "(real processes never run the same way twice)", ok=False)
        seed = self.seed_box.value
        try:
            fresh = self._build(seed)
        except ValueError as error:
            return self.say(f"replay: {error}", ok=False)
        actions, end = list(self.actions), self.cluster.now
        was_playing = self.running
        self.pause() if was_playing else None
        self.control.close()
        self.control = SimControl(fresh)
        self._reset_view_state()
        run_to = fresh.sim.scheduler.run_until
        for a in actions:
            run_to(a.time)
            try:
                self._apply(a.method, a.args)
            except ACTION_ERRORS as error:
                self.control.poll()
                self.timeline.event(fresh.now, "fault", f"replay: {a.method}{a.args} refused this time: {error}")
                continue
            self.actions.append(Action(fresh.now, a.method, a.args))
        run_to(end)
        self._sync_network_controls()
        self._sync_manual_controls()
        self._set_quietly(self.load_slider, self.control.load_size)
        self.render()
        if was_playing:
            self.play()
        return self.say(f"replayed {len(actions)} action(s) with seed {seed} up to "
                        f"t = {end / 1000:.3f} s; trace digest {fresh.trace_digest()[:12]}")

    def reset(self, seed: Optional[int] = None) -> bool:
        """A fresh cluster from ``seed`` (default: the seed box); the actions are dropped."""
        if not self.owns_cluster:
            return self.say("new run: only a cluster the widget built from a seed can be rebuilt", ok=False)
        if seed is not None:
            self.seed_box.value = seed
        try:
            fresh = self._build(self.seed_box.value)
        except ValueError as error:
            return self.say(f"new run: {error}", ok=False)
        self.pause() if self.running else None
        self.control.close()
        self.control = SimControl(fresh)
        self._reset_view_state()
        self._sync_network_controls()
        self._sync_manual_controls()
        self._set_quietly(self.load_slider, 0)
        self.render()
        return self.say(f"new run with seed {self.seed_box.value}")

    # ------------------------------------------------------------------ drawing
    def render(self, live: bool = False, fetched=None) -> float:
        """Read the cluster (``fetched``: a poll already made off the loop) and redraw
        what changed: each figure whose pictures changed gets one ``batch_update``
        holding only the changed values.  ``live`` (a frame while playing) redraws the
        timeline only when a term, leader or fault appeared or ``TIMELINE_PERIOD`` s
        passed.  Returns the frame's cost in ms (also kept in :attr:`frame_ms`)."""
        if self._closed:
            return 0.0
        began = time.perf_counter()
        control = self.control
        states = control.poll(fetched)
        self._push("ring", self._ring_values(states))
        self._push("logs", self._log_values())
        news = control.timeline.news
        if not live or news != self._timeline_news or began - self._timeline_at >= TIMELINE_PERIOD:
            self._timeline_news, self._timeline_at = news, began
            self._push("timeline", self._timeline_values())
        self.status.value = self._status_html(states)
        events = control.timeline.events
        if len(events) != self._shown_events:
            self._shown_events = len(events)
            self.event_log.value = "<div style='font-size:11px;line-height:14px'>" + "<br>".join(
                f"<code>{t / 1000:7.3f}s</code> {html.escape(e)}"
                for t, _k, e in reversed(events[-60:])) + "</div>"
        if control.manual or self._held_shown:
            self._show_held()
        cost = (time.perf_counter() - began) * 1000.0
        self.frame_ms.append(cost)
        return cost

    def _push(self, name: str, values: list) -> bool:
        """Send the ``((trace key or "layout", property), value)`` pairs of figure
        ``name`` that differ from what was last sent, in one ``batch_update``."""
        changes = self._sent.changed(((name,) + key, value) for key, value in values)
        if not changes:
            return False
        fig = self.figures[name]
        with fig.batch_update():
            for (_name, key, prop), value in changes:
                if key == "layout":
                    fig.layout[prop] = value
                else:
                    self._trace(key)[prop] = value
        self._pacer.sent(fig)
        return True

    def _show_held(self) -> None:
        """The list of messages waiting for the learner (sent only when it changed)."""
        rows = self.held()
        if rows == self._held_shown:
            return
        self._held_shown = rows
        keep = self.held_select.value
        options = [(_held_label(r), r[0]) for r in rows]
        self._quiet = True
        try:
            self.held_select.options = options
            ids = [r[0] for r in rows]
            self.held_select.value = keep if keep in ids else (ids[0] if ids else None)
        finally:
            self._quiet = False

    def _ring_values(self, states: dict) -> list:
        control = self.control
        now = control.now
        xy, ids = self._xy, self.ids
        colours, labels, hover = [], [], []
        for nid in ids:
            s = states[nid]
            role = (s["state"] or "down") if s["alive"] else "down"
            if s["alive"] and s["paused"]:
                role = "paused"
            colours.append(ROLE_COLOURS[role])
            vote = s["voted_for"] or "-"
            term = "?" if s["term"] is None else s["term"]
            commit = "?" if s["commit_index"] is None else s["commit_index"]
            last = "?" if s["last_index"] is None else s["last_index"]
            labels.append(f"<b>{role}</b> · term {term}<br>vote {vote} · commit {commit}/{last}")
            hover.append(f"{nid}: {role}, term {term}, voted for {vote}, commit "
                         f"{commit}, applied {s['last_applied']}, last index "
                         f"{last}, snapshot {s['snapshot_index']}"
                         f"{'' if s.get('member', True) else ' (not a member)'}"
                         f"{'' if s.get('pid') is None else ', pid ' + str(s['pid'])}")
        link_x, link_y, cut_x, cut_y = ring_links(ids, xy, control.cuts(states))
        dots = {k: ([], [], []) for k in MESSAGE_KINDS}
        for m in control.in_flight():
            s_xy = xy.get(m.src, CLIENT_POS)
            d_xy = xy.get(m.dst, CLIENT_POS)
            if m.id is not None:                     # held for manual delivery: halfway
                f, when = 0.5, f"waits for you (#{m.id})"
            else:
                span = m.deliver_at - m.sent_at
                f = 1.0 if span <= 0 else min(1.0, max(0.0, (now - m.sent_at) / span))
                when = f"arrives at {m.deliver_at / 1000:.3f} s"
            f = 0.15 + 0.7 * f                       # keep dots off the server discs
            kind = message_kind(m.msg)
            xs, ys, hs = dots[kind]
            xs.append(round(s_xy[0] + (d_xy[0] - s_xy[0]) * f, 3))
            ys.append(round(s_xy[1] + (d_xy[1] - s_xy[1]) * f, 3))
            hs.append(f"{kind} {m.src}→{m.dst}, {when}")
        out = [(("cuts", "x"), cut_x), (("cuts", "y"), cut_y),
               (("links", "x"), link_x), (("links", "y"), link_y)]
        for kind in MESSAGE_KINDS:
            xs, ys, hs = dots[kind]
            out += [((f"msg-{kind}", "x"), xs), ((f"msg-{kind}", "y"), ys),
                    ((f"msg-{kind}", "hovertext"), hs)]
        pos_x, pos_y = [xy[n][0] for n in ids], [xy[n][1] for n in ids]
        out += [(("servers", "x"), pos_x), (("servers", "y"), pos_y), (("servers", "text"), list(ids)),
                (("servers", "marker.color"), colours), (("servers", "hovertext"), hover),
                (("labels", "x"), pos_x), (("labels", "y"), pos_y),
                (("labels", "textposition"), [_label_side(*xy[n]) for n in ids]),
                (("labels", "text"), labels),
                (("clients", "x"), [CLIENT_POS[0]]), (("clients", "y"), [CLIENT_POS[1]]),
                (("clients", "text"), ["clients"]), (("clients", "marker.color"), "#b279a2")]
        out += [((f"msg-{kind}", "marker.color"), MESSAGE_COLOURS[kind]) for kind in MESSAGE_KINDS]
        return out

    def _log_values(self) -> list:
        # the grid always spans the whole window: a one-column heatmap (a log of one
        # entry) is not drawn by the browser, and fixed columns keep cells still
        lo, rows = self.control.log_window(self.log_window)
        xs_idx = list(range(lo, lo + self.log_window))
        z, text, com_x, com_y, snap_x, snap_y, snap_h = [], [], [], [], [], [], []
        for nid in self.ids:
            terms, commit, snap = rows[nid]
            row_z, row_t = [], []
            for i, term in zip(xs_idx, terms):
                if i <= snap:
                    row_z.append(None)
                    row_t.append("")
                    snap_x.append(i)
                    snap_y.append(nid)
                    snap_h.append(f"{nid} [{i}]: in the snapshot")
                elif term is not None:
                    row_z.append(UNKNOWN_TERM if term == "?" else term % 10)
                    row_t.append(str(term))
                    if i <= commit:
                        com_x.append(i)
                        com_y.append(nid)
                else:
                    row_z.append(None)
                    row_t.append("")
            z.append(row_z)
            text.append(row_t)
        return [(("log", "x"), xs_idx), (("log", "y"), list(self.ids)), (("log", "z"), z),
                (("log", "text"), text), (("committed", "x"), com_x), (("committed", "y"), com_y),
                (("compacted", "x"), snap_x), (("compacted", "y"), snap_y),
                (("compacted", "hovertext"), snap_h),
                (("committed", "marker.color"), "#111111"), (("compacted", "marker.color"), "#cccccc"),
                (("layout", "xaxis.range"), (lo - 0.5, lo + self.log_window - 0.5)),
                (("layout", "yaxis.autorange"), "reversed")]

    def _timeline_values(self) -> list:
        now = self.control.now
        tl = self.control.timeline
        t_s = now / 1000.0
        x0 = max(0.0, now - self.window_ms) / 1000.0
        x1 = max(t_s, min(self.window_ms, 2000.0) / 1000.0)
        term_x = [t / 1000.0 for t, _term in tl.terms] + [t_s]
        term_y = [term for _t, term in tl.terms] + [tl.max_term]
        top = tl.max_term + 1.5
        reign_x, reign_y, reign_h, star_x, star_y, star_t = [], [], [], [], [], []
        for s0, e0, term, node in tl.reigns(now):
            if e0 / 1000.0 < x0:
                continue
            reign_x += [s0 / 1000.0, e0 / 1000.0, None]
            reign_y += [term, term, None]
            reign_h += [f"{node} leads term {term}"] * 3
            star_x.append(s0 / 1000.0)
            star_y.append(term)
            star_t.append(node)
        shades = {k: ([], []) for k in FAULT_KINDS}
        for kind, s0, e0 in tl.faults(now):
            if e0 / 1000.0 < x0:
                continue
            a, b = s0 / 1000.0, max(e0, s0 + 1.0) / 1000.0
            px, py = shades[kind]
            px += [a, b, b, a, a, None]
            py += [0, 0, top, top, 0, None]
        out = []
        for kind in FAULT_KINDS:
            out += [((f"fault-{kind}", "x"), shades[kind][0]), ((f"fault-{kind}", "y"), shades[kind][1])]
        out += [(("term", "x"), term_x), (("term", "y"), term_y),
                (("reigns", "x"), reign_x), (("reigns", "y"), reign_y),
                (("reigns", "hovertext"), reign_h),
                (("leaders", "x"), star_x), (("leaders", "y"), star_y),
                (("leaders", "text"), star_t), (("leaders", "hovertext"), star_t),
                (("layout", "xaxis.range"), (x0, x1)), (("layout", "yaxis.range"), (0, top))]
        return out

    def _status_html(self, states: dict) -> str:
        control = self.control
        lead = control.leader(states)
        term = f" (term {states[lead]['term']})" if lead else ""
        parts = " &middot; ".join(control.status_parts(states))
        return (f"t = <b>{control.now / 1000:.3f} s</b> &middot; leader <b>{lead or 'none'}</b>{term}"
                f" &middot; {parts}{' &middot; <b>playing</b>' if self.running else ''}")

    # ------------------------------------------------------------------ tear-down
    def close(self) -> None:
        """Stop the live task (and a real cluster's load and writer threads) and close
        the view.  The cluster itself is left as it is: stop a ProcessCluster yourself."""
        self._player.stop()
        self._closed = True
        self.control.close()
        for child in (*self.figures.values(), self._controls, self.message, self.status,
                      self.event_log, self.view):
            child.close()


def _legend_html() -> str:
    """One line of colour keys (an HTML legend costs the browser nothing per frame)."""
    def key(colour: str, text: str, shape: str = "&#9679;") -> str:
        return f'<span style="color:{colour}">{shape}</span>&nbsp;{html.escape(text)}'
    roles = " ".join(key(ROLE_COLOURS[r], r) for r in ROLE_COLOURS)
    msgs = " ".join(key(MESSAGE_COLOURS[k], k, "&#8226;") for k in MESSAGE_KINDS)
    faults = " ".join(key(FAULT_COLOURS[k].replace("0.18", "0.6").replace("0.20", "0.6")
                          .replace("0.25", "0.7"), k, "&#9632;") for k in FAULT_KINDS)
    return (f'<div style="font-size:11px;line-height:14px">servers: {roles} &nbsp;|&nbsp; '
            f'messages: {msgs} &nbsp;|&nbsp; shaded: {faults}</div>')


def _held_label(row: tuple) -> str:
    """One line of the "you are the network" list: id, from -> to, type, term, index."""
    mid, src, dst, kind, term, index = row
    return (f"#{mid}  {src} → {dst}  {kind}" + ("" if term is None else f"  term {term}")
            + ("" if index is None else f"  index {index}"))


def _discrete_scale(colours: tuple) -> list:
    n = len(colours)
    out = []
    for k, col in enumerate(colours):
        out.append((k / n, col))
        out.append(((k + 1) / n, col))
    return out
