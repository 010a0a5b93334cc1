"""``ConsensusWidget``: the chapter's "more than half" protocol and Paxos, side by side.

``ConsensusWidget(3, seed=7)`` shows a :class:`~course_lib.consensus.side_by_side.SideBySide`
model it builds: the same nodes, the same seed and the same proposals (n1 proposes
``red``, n3 proposes ``blue``, at time 0) in two panels, one per protocol.  Each panel
draws its nodes on a ring, coloured by the value each decided (grey: nothing yet), with
every message on the wire as a dot between sender and receiver; under it a table per
node (what it has seen or promised and accepted, what it decided) and a banner:
**SAFETY VIOLATED: two values decided** when agreement is broken.

The network controls act on both panels at once, as in the Raft widget: kill / restart
a node, partition / heal, message loss, delay; Play / Pause / Step move simulated time.
**You are the network** stops automatic delivery: each panel lists the messages
waiting (id, from, to, type, ballot, value; refusals read as such: a chapter reply
"rejected", Paxos's "Nack: promised 1.n3"), and *Deliver* / *Drop* under a panel take
the one selected there; *Deliver all* delivers everything waiting, oldest first.

Every control calls a public method that code can call too (``kill``, ``restart``,
``partition``, ``heal``, ``set_loss``, ``set_delay``, ``set_manual``, ``deliver``,
``drop``, ``deliver_all``, ``propose``, ``step``, ``play``, ``pause``, ``replay``,
``reset``), and :meth:`ConsensusWidget.replay_steps` runs a schedule (see
:mod:`course_lib.consensus.side_by_side`) on one panel or both::

    w = ConsensusWidget(3, seed=7)
    w.replay_steps(["n1->n3", "n3->n1"])      # each proposer hears the other first
    assert w.model.violated("chapter") and not w.model.violated("paxos")

An action that makes no sense (kill a node that is down, deliver with the network
automatic, partition with one group) shows a message in red and returns False, never
raises.  What is decided, what waits and whether safety broke are the model's
(:attr:`model`, tested without ipywidgets); the widget only draws them.  Same seed,
same actions -> the same run (*Replay* rebuilds it from the seed box).

Play runs an asyncio task on the kernel's loop (:class:`~course_lib.viz.player.LivePlayer`)
that advances simulated time by ``speed`` x the real time elapsed, redrawing at most
``fps`` times a second and only once the browser acknowledged the previous update
(:class:`~course_lib.viz.frame_pacing.FramePacer`); each figure gets only the values that
changed.  Nothing runs by itself when a cell executes.
"""

from __future__ import annotations

import html
import math
import time
from collections import defaultdict
from typing import Optional

import ipywidgets as widgets
import plotly.graph_objects as go

from course_lib.consensus.side_by_side import PANELS, TITLES, SideBySide, describe
from course_lib.viz.display import view_bundle
from course_lib.viz.frame_pacing import AckFigureWidget, SentState
from course_lib.viz.player import MAX_FPS, LivePlayer, PlayerAttributes
from course_lib.viz.ring import parse_groups, ring_layout, ring_links

RING_SIZE = (400, 270)
ACTION_ERRORS = (ValueError, TypeError, RuntimeError)
PANEL_NAMES = {"chapter": "chapter", "paxos": "Paxos"}
NAMED_COLOURS = {"red": "#e45756", "blue": "#4c78a8", "green": "#54a24b", "orange": "#f58518",
                 "purple": "#b279a2", "yellow": "#eeca3b", "brown": "#9d755d", "pink": "#ff9da6"}
PALETTE = ("#e45756", "#4c78a8", "#54a24b", "#f58518", "#b279a2", "#eeca3b", "#9d755d")
UNDECIDED, DOWN = "#d9d9d9", "#7f7f7f"
MESSAGE_COLOURS = (                      # by the start of the message's type
    ("Proposal", "#f58518"), ("reply: accepted", "#72b7b2"), ("reply: rejected", "#d62728"),
    ("Prepare", "#1f77b4"), ("Promise", "#9ecae9"), ("Accepted", "#ffbb78"), ("Accept", "#ff7f0e"),
    ("Nack", "#d62728"), ("Decided", "#2ca02c"), ("Inquire", "#bbbbbb"),
)


def message_colour(kind: str) -> str:
    for prefix, colour in MESSAGE_COLOURS:
        if kind.startswith(prefix):
            return colour
    return "#555555"


class ConsensusWidget(PlayerAttributes):
    """A view over a :class:`SideBySide` model (see the module docstring).

    ``ConsensusWidget(n=3, seed=7, proposals=None, manual=False, latency_ms=(1, 20))``
    builds the model; ``speed`` is simulated per real time while playing, ``step_ms``
    what *Step* advances.
    """

    def __init__(self, n: int = 3, seed: int = 7, *, proposals=None, manual: bool = False,
                 latency_ms: tuple = (1, 20), speed: float = 0.05, fps: float = MAX_FPS,
                 step_ms: float = 10.0, pacing: bool = True) -> None:
        if not isinstance(step_ms, (int, float)) or isinstance(step_ms, bool) or not 0 < step_ms <= 10_000:
            raise ValueError(f"step_ms must be in (0, 10000] ms, got {step_ms!r}")
        self._player = LivePlayer(  # validates fps
            advance=lambda s: self.model.advance(min(s * 1000.0 * self.speed, 1000.0)),
            draw=lambda _read: self.render(), redraw=self.render, say=self.say,
            closed=lambda: self._closed, fps=fps, pacing=pacing)
        self.model = SideBySide(n, seed, proposals=proposals, manual=manual, latency_ms=latency_ms)
        self.fps = self._player.fps
        self.step_ms = float(step_ms)
        self.speed = 0.05
        self.message_text = ""
        self.frame_ms: list = []
        self.last_schedule: list = []
        self._closed = False
        self._quiet = False
        self._held_shown = {p: None for p in PANELS}
        self._layout_ring()
        self._make_figures()
        self._build_controls(seed)
        self.set_speed(speed)
        panels = [self._panel_box(p) for p in PANELS]
        self.view = widgets.VBox([widgets.HBox(panels), widgets.HTML(_legend_html()), self._controls,
                                  self.message, self.status])
        self._sync_controls()
        self.render()

    def _repr_mimebundle_(self, **kwargs):
        return view_bundle(self.view, **kwargs)

    # ------------------------------------------------------------------ figures
    def _layout_ring(self) -> None:
        self.ids = list(self.model.node_ids)
        self._xy = ring_layout(self.ids)
        self._value_colour: dict = {}

    def _make_figures(self) -> None:
        """One small figure per panel: links, cut links, messages, nodes, labels.  Data
        arrays are set by the first render (see the Raft widget: arrays given at
        construction were lost in the browser for traces restyled later)."""
        S = go.Scatter
        self.figures = {}
        for p in PANELS:
            fig = go.Figure()
            fig.add_trace(S(x=[], y=[], mode="lines", hoverinfo="skip", line=dict(color="#dddddd", width=1)))
            fig.add_trace(S(x=[], y=[], mode="lines", hoverinfo="skip",
                            line=dict(color="#d62728", width=2, dash="dash")))
            fig.add_trace(S(x=[], y=[], mode="markers", hoverinfo="text", hovertext=[],
                            marker=dict(size=9, color=[], line=dict(color="#333333", width=0.5))))
            fig.add_trace(S(x=[], y=[], mode="markers+text", text=[], textposition="middle center",
                            textfont=dict(color="white", size=12), hoverinfo="text", hovertext=[],
                            marker=dict(size=40, color=[], line=dict(color="#333333", width=1))))
            fig.add_trace(S(x=[], y=[], mode="text", text=[], textfont=dict(size=11, color="#333333"),
                            hoverinfo="skip"))
            fig.update_layout(width=RING_SIZE[0], height=RING_SIZE[1], margin=dict(l=0, r=0, t=4, b=0),
                              plot_bgcolor="white", showlegend=False, uirevision=p)
            fig.update_xaxes(visible=False, range=[-1.9, 1.9], fixedrange=True)
            fig.update_yaxes(visible=False, range=[-1.45, 1.35], fixedrange=True)
            self.figures[p] = AckFigureWidget(fig)
        self._sent = SentState()
        for p, fig in self.figures.items():
            self._pacer.watch(fig, lambda p=p: self._redraw_whole(p))

    def _redraw_whole(self, panel: str) -> None:
        self._sent.forget((panel,))
        if not self._closed:
            self.render()

    def colour_of(self, value) -> str:
        """The colour of a decided value (colour words keep their colour)."""
        if value is None:
            return UNDECIDED
        if value not in self._value_colour:
            self._value_colour[value] = NAMED_COLOURS.get(
                str(value).lower(), PALETTE[len(self._value_colour) % len(PALETTE)])
        return self._value_colour[value]

    # ------------------------------------------------------------------ controls
    def _build_controls(self, seed: int) -> None:
        W = widgets.Layout
        fit = {"description_width": "initial"}

        def button(label: str, width: int, **kw) -> widgets.Button:
            return widgets.Button(description=label, layout=W(width=f"{width}px"), **kw)

        self.play_button, self.pause_button = self._player.make_buttons(self.play, self.pause, (78, 86))
        self.step_button = button(f"Step {self.step_ms:g} ms", 124, icon="step-forward")
        self.speed_slider = widgets.FloatLogSlider(value=0.05, base=10, min=-3, max=0, step=0.1,
                                                   description="speed", readout_format=".3f",
                                                   style=fit, layout=W(width="240px"))
        self.step_button.on_click(lambda _: self.step())
        self.speed_slider.observe(lambda ch: None if self._quiet else self.set_speed(ch["new"]), "value")
        self.seed_box = widgets.IntText(value=seed, description="seed", style=fit, layout=W(width="120px"))
        self.replay_button = button("Replay", 92, icon="repeat",
                                    tooltip="rebuild from the seed and re-apply your actions")
        self.reset_button = button("New run", 102, icon="refresh", tooltip="a fresh run from the seed")
        self.replay_button.on_click(lambda _: self.replay())
        self.reset_button.on_click(lambda _: self.reset())

        self.node_select = widgets.Dropdown(options=self.ids, value=self.ids[0], description="node",
                                            style=fit, layout=W(width="120px"))
        self.kill_button = button("Kill", 60, button_style="danger")
        self.restart_button = button("Restart", 86, button_style="info")
        self.kill_button.on_click(lambda _: self.kill())
        self.restart_button.on_click(lambda _: self.restart())
        self.value_text = widgets.Text(value="", placeholder="e.g. green", description="value",
                                       style=fit, layout=W(width="150px"))
        self.propose_button = button("Propose", 92, icon="lightbulb-o",
                                     tooltip="the node proposes this value, in both protocols")
        self.propose_button.on_click(lambda _: self.propose(None, self.value_text.value))
        groups = " ".join(self.ids[:1]) + " | " + " ".join(self.ids[1:])
        self.groups_text = widgets.Text(value=groups, description="groups", style=fit, layout=W(width="190px"))
        self.partition_button = button("Partition", 94, button_style="warning")
        self.heal_button = button("Heal", 64, button_style="success")
        self.partition_button.on_click(lambda _: self.partition(self.groups_text.value))
        self.heal_button.on_click(lambda _: self.heal())

        loss, (lo, hi) = self.model.network_settings()
        self.loss_slider = widgets.FloatSlider(value=loss, min=0, max=0.5, step=0.01, description="loss",
                                               continuous_update=False, style=fit, layout=W(width="240px"))
        self.delay_slider = widgets.IntRangeSlider(value=(int(lo), int(hi)), min=0, max=300, step=1,
                                                   description="delay ms", continuous_update=False,
                                                   style=fit, layout=W(width="290px"))
        self.loss_slider.observe(lambda ch: None if self._quiet else self.set_loss(ch["new"]), "value")
        self.delay_slider.observe(lambda ch: None if self._quiet else self.set_delay(*ch["new"]), "value")
        self.manual_toggle = widgets.ToggleButton(value=False, description="You are the network",
                                                  icon="hand-paper-o", layout=W(width="176px"),
                                                  tooltip="stop automatic delivery: you pick each message")
        self.manual_toggle.observe(lambda ch: None if self._quiet else self.set_manual(ch["new"]), "value")
        self.deliver_all_button = button("Deliver all", 110, icon="forward",
                                         tooltip="deliver everything waiting, oldest first, in both panels")
        self.deliver_all_button.on_click(lambda _: self.deliver_all())

        # per panel: the messages waiting, and deliver / drop the one selected
        self.held_select, self.deliver_buttons, self.drop_buttons, self._manual_boxes = {}, {}, {}, {}
        self.banners, self.tables = {}, {}
        for p in PANELS:
            name = PANEL_NAMES[p]
            self.held_select[p] = widgets.Select(options=[], rows=6, layout=W(width=f"{RING_SIZE[0] - 4}px"))
            self.deliver_buttons[p] = button(f"Deliver ({name})", 150, icon="check", button_style="success")
            self.drop_buttons[p] = button(f"Drop ({name})", 142, icon="times", button_style="danger")
            self.deliver_buttons[p].on_click(lambda _, p=p: self.deliver(p))
            self.drop_buttons[p].on_click(lambda _, p=p: self.drop(p))
            self._manual_boxes[p] = widgets.VBox(
                [self.held_select[p], widgets.HBox([self.deliver_buttons[p], self.drop_buttons[p]])],
                layout=W(display="none"))
            self.banners[p] = widgets.HTML()
            self.tables[p] = widgets.HTML()

        row = lambda *children: widgets.HBox(children, layout=W(flex_flow="row wrap"))  # noqa: E731
        gap = lambda: widgets.HTML("", layout=W(width="14px"))  # noqa: E731
        self._controls = widgets.VBox([
            row(self.play_button, self.pause_button, self.step_button, self.speed_slider, gap(),
                self.seed_box, self.replay_button, self.reset_button),
            row(self.node_select, self.kill_button, self.restart_button, gap(), self.value_text,
                self.propose_button, gap(), self.groups_text, self.partition_button, self.heal_button),
            row(self.loss_slider, self.delay_slider, gap(), self.manual_toggle, self.deliver_all_button),
        ])
        self.message = widgets.HTML()
        self.status = widgets.HTML()

    def _panel_box(self, panel: str) -> widgets.VBox:
        title = widgets.HTML(f"<b>{html.escape(TITLES[panel])}</b>")
        return widgets.VBox([title, self.banners[panel], self.figures[panel], self.tables[panel],
                             self._manual_boxes[panel]],
                            layout=widgets.Layout(width=f"{RING_SIZE[0] + 16}px", margin="0 8px 0 0"))

    def _set_quietly(self, control, value) -> None:
        self._quiet = True
        try:
            control.value = value
        finally:
            self._quiet = False

    def _sync_controls(self) -> None:
        """Controls follow the model (after replay, reset, or a refused change)."""
        on = self.model.manual
        self._set_quietly(self.manual_toggle, on)
        for box in self._manual_boxes.values():
            box.layout.display = "flex" if on else "none"
        loss, (lo, hi) = self.model.network_settings()
        self._set_quietly(self.loss_slider, loss)
        self._set_quietly(self.delay_slider, (int(round(lo)), int(round(hi))))

    # ------------------------------------------------------------------ messages
    def say(self, text: str, ok: bool = True) -> bool:
        """Show ``text`` under the controls (red if not ``ok``); returns ``ok``."""
        self.message_text = text
        colour = "#2a7a2a" if ok else "#c0392b"
        self.message.value = f'<span style="color:{colour}">{html.escape(text)}</span>'
        return ok

    def _act(self, what: str, call, done) -> bool:
        """Run a model call; a refusal becomes a red message.  ``done`` is the text to
        show, or a function of the call's result giving it."""
        if self._closed:
            return self.say("this widget is closed", ok=False)
        try:
            result = call()
        except ACTION_ERRORS as error:
            self._sync_controls()
            return self.say(f"{what}: {error}", ok=False)
        self.say(done(result) if callable(done) else done)   # first: shown before the redraw
        self._sync_controls()
        self.render()
        return True

    # ------------------------------------------------------------------ actions
    def _node(self, node: Optional[str]) -> str:
        return self.node_select.value if node is None else node

    def kill(self, node: Optional[str] = None) -> bool:
        """Crash ``node`` (default: the one selected) in both protocols."""
        node = self._node(node)
        return self._act("kill", lambda: self.model.crash(node),
                         f"killed {node}: the chapter's node forgets everything; Paxos's keeps "
                         f"what it persisted")

    def restart(self, node: Optional[str] = None) -> bool:
        node = self._node(node)
        return self._act("restart", lambda: self.model.restart(node), f"restarted {node}")

    def propose(self, node: Optional[str] = None, value: str = "") -> bool:
        """``node`` (default: the one selected) proposes ``value`` in both protocols."""
        node = self._node(node)
        return self._act("propose", lambda: self.model.propose(node, value),
                         f"{node} proposes {str(value).strip()!r} in both protocols")

    def partition(self, *groups) -> bool:
        """``partition("n1 | n2 n3")`` or ``partition({"n1"}, {"n2", "n3"})``, both panels."""
        try:
            if len(groups) == 1 and isinstance(groups[0], str):
                groups = parse_groups(groups[0], example="n1 | n2 n3")
        except ValueError as error:
            return self.say(f"partition: {error}", ok=False)
        shown = " | ".join(" ".join(sorted(g)) if not isinstance(g, str) else g for g in groups)
        return self._act("partition", lambda: self.model.partition(*groups), f"partitioned the network: {shown}")

    def heal(self) -> bool:
        return self._act("heal", self.model.heal, "healed the network")

    def set_loss(self, p: float) -> bool:
        """Lose each message with probability ``p`` (while delivery is automatic)."""
        text = f"message loss {p:.0%}" if isinstance(p, (int, float)) and not isinstance(p, bool) else ""
        return self._act("loss", lambda: self.model.set_loss(p), text)

    def set_delay(self, lo: float, hi: float) -> bool:
        return self._act("delay", lambda: self.model.set_delay(lo, hi), f"message delay {lo}-{hi} ms")

    def set_manual(self, on: bool) -> bool:
        """``True``: you are the network (nothing arrives by itself); ``False``: the
        network delivers what waits, and everything later, by itself."""
        done = ("you are the network: pick a message in either panel and Deliver or Drop it" if on
                else "the network delivers by itself again")
        return self._act("you are the network", lambda: self.model.set_manual(on), done)

    def held(self, panel: str) -> list:
        """The messages waiting in ``panel``: :class:`HeldMessage` rows."""
        return self.model.held(panel)

    def _chosen(self, panel: str, mid: Optional[int]) -> int:
        if panel not in PANELS:
            raise ValueError(f"unknown panel {panel!r}; choose one of {list(PANELS)}")
        if mid is not None:
            return mid
        ids = [h.id for h in self.model.held(panel)]
        if self.held_select[panel].value in ids:
            return self.held_select[panel].value
        if not self.model.manual:
            raise ValueError("the network delivers by itself: turn on 'You are the network' first")
        if not ids:
            raise ValueError(f"nothing is waiting in the {PANEL_NAMES[panel]} panel")
        return ids[0]

    def deliver(self, panel: str, mid: Optional[int] = None) -> bool:
        """Deliver ``panel``'s waiting message ``mid`` (default: the one selected there,
        else the oldest)."""
        return self._act(f"deliver ({PANEL_NAMES.get(panel, panel)})",
                         lambda: self.model.deliver(panel, self._chosen(panel, mid)),
                         lambda h: f"{PANEL_NAMES[panel]}: delivered {h.label()}")

    def drop(self, panel: str, mid: Optional[int] = None) -> bool:
        """Lose ``panel``'s waiting message ``mid`` (default: the one selected, else the oldest)."""
        return self._act(f"drop ({PANEL_NAMES.get(panel, panel)})",
                         lambda: self.model.drop(panel, self._chosen(panel, mid)),
                         lambda h: f"{PANEL_NAMES[panel]}: dropped {h.label()}")

    def deliver_all(self) -> bool:
        """Deliver everything waiting in both panels, oldest first, until nothing waits."""
        return self._act("deliver all", lambda: self.model.deliver_all("both"),
                         lambda done: f"delivered {len(done)} message(s), oldest first")

    def replay_steps(self, steps, panel: str = "both") -> list:
        """Run a schedule (``["n1->n3", "n3->n1", "all"]``, see
        :mod:`course_lib.consensus.side_by_side`) on ``panel`` or both, turning on "you
        are the network" if needed; returns the :class:`StepResult` s ([] if refused,
        with a message)."""
        results: list = []

        def run():
            results.extend(self.model.run_schedule(steps, panel))
            return results

        def done(res) -> str:
            per = defaultdict(int)
            skipped = 0
            for r in res:
                per[r.panel] += len(r.done)
                skipped += r.skipped
            counts = ", ".join(f"{PANEL_NAMES[p]} {per[p]}" for p in PANELS if p in per)
            return (f"schedule of {len(res) // max(1, len(set(r.panel for r in res)))} step(s): "
                    f"delivered {counts}" + (f"; {skipped} step(s) found nothing" if skipped else ""))

        self.last_schedule = results
        return results if self._act("schedule", run, done) else []

    # ------------------------------------------------------------------ time
    def set_speed(self, speed: float) -> bool:
        """Simulated time per real time while playing (0.001 to 1)."""
        if not isinstance(speed, (int, float)) or isinstance(speed, bool) or not 0.001 <= speed <= 1:
            return self.say(f"speed must be 0.001 to 1, got {speed!r}", ok=False)
        self.speed = float(speed)
        if abs(self.speed_slider.value - self.speed) > 1e-9:
            self._set_quietly(self.speed_slider, self.speed)
        return True

    def step(self, ms: Optional[float] = None) -> bool:
        """Advance both simulations ``ms`` (default ``step_ms``) and redraw."""
        ms = self.step_ms if ms is None else ms
        return self._act("step", lambda: self.model.advance(ms),
                         lambda _r: f"t = {self.model.now / 1000:.3f} s")

    def play(self) -> bool:
        """Start the live task on the running asyncio loop (Pause stops it)."""
        return self._player.play(
            f"playing at {self.speed:.3g}x"
            + (" (you are the network: time runs, nothing arrives by itself)" if self.model.manual else ""))

    def pause(self) -> bool:
        return self._player.pause("paused")

    def replay(self) -> bool:
        """Rebuild both runs from the seed box and re-apply every action at its time."""
        seed = self.seed_box.value
        n = len(self.model.actions)
        was = self.running
        if was:
            self.pause()
        ok = self._act("replay", lambda: self.model.replay(seed),
                       lambda _r: f"replayed {n} action(s) with seed {seed} up to t = "
                                  f"{self.model.now / 1000:.3f} s")
        if was:
            self.play()
        return ok

    def reset(self, seed: Optional[int] = None) -> bool:
        """A fresh run from ``seed`` (default: the seed box): the proposals again, no actions."""
        seed = self.seed_box.value if seed is None else seed
        if self.running:
            self.pause()
        ok = self._act("new run", lambda: self.model.reset(seed), f"new run with seed {seed}")
        if ok:
            self._set_quietly(self.seed_box, seed)
        return ok

    # ------------------------------------------------------------------ drawing
    def render(self) -> float:
        """Redraw what changed from the model; returns the frame's cost in ms."""
        if self._closed:
            return 0.0
        began = time.perf_counter()
        m = self.model
        for p in PANELS:
            self._push(p, self._ring_values(p))
            banner = m.banner(p)
            style = ("background:#c0392b;color:white" if m.violated(p) else
                     "background:#e3f1e0;color:#1e5a1e" if m.decided_values(p) else
                     "background:#eeeeee;color:#555555")
            head, _, rest = banner.partition(" (")
            detail = f"<br><span style='font-weight:normal;font-size:11px'> ({html.escape(rest)}</span>" if rest else ""
            text = (f'<div style="{style};padding:3px 6px;font-weight:bold;min-height:38px;'
                    f'line-height:18px">{html.escape(head)}{detail}</div>')
            if self.banners[p].value != text:
                self.banners[p].value = text
            table = self._table_html(p)
            if self.tables[p].value != table:
                self.tables[p].value = table
            self._show_held(p)
        waiting = " &middot; ".join(f"{PANEL_NAMES[p]}: {len(m.held(p))} waiting" for p in PANELS)
        mode = f"you are the network &middot; {waiting}" if m.manual else "automatic delivery"
        self.status.value = (f"t = <b>{m.now / 1000:.3f} s</b> &middot; seed {m.seed} &middot; {mode}"
                             f"{' &middot; <b>playing</b>' if self.running else ''}")
        cost = (time.perf_counter() - began) * 1000.0
        self.frame_ms = (self.frame_ms + [cost])[-500:]
        return cost

    def _push(self, panel: str, values: list) -> None:
        changes = self._sent.changed(((panel,) + key, value) for key, value in values)
        if not changes:
            return
        fig = self.figures[panel]
        with fig.batch_update():
            for (_p, index, prop), value in changes:
                fig.data[index][prop] = value
        self._pacer.sent(fig)

    def _ring_values(self, panel: str) -> list:
        m = self.model
        xy, ids = self._xy, self.ids
        link_x, link_y, cut_x, cut_y = ring_links(ids, xy, m.cuts())
        held = {h.id: h for h in m.held(panel)}
        per_link: dict = defaultdict(int)
        mx, my, mc, mh = [], [], [], []
        now = m.now
        for f in m.in_flight(panel):
            (sx, sy), (dx, dy) = xy[f.src], xy[f.dst]
            if f.id is not None:
                k = per_link[(f.src, f.dst)]
                per_link[(f.src, f.dst)] += 1
                frac = 0.3 + 0.1 * (k % 5)
                h = held.get(f.id)
                kind, text = (h.kind, h.label() + " (waits for you)") if h else ("?", f"#{f.id}")
            else:
                span = f.deliver_at - f.sent_at
                frac = 0.2 + 0.6 * (1.0 if span <= 0 else min(1.0, max(0.0, (now - f.sent_at) / span)))
                kind, ballot, value = describe(f.msg)
                text = f"{f.src} → {f.dst} {kind}" + (f" {ballot}" if ballot else "") + (f" {value}" if value else "")
            if f.src == f.dst:                       # a node's message to itself: a dot beside it
                px, py = sx * 1.28, sy * 1.28 + 0.05 * per_link[(f.src, f.dst)]
            else:
                # opposite directions on one link side by side, not on top of each other
                nx_, ny_ = -(dy - sy), dx - sx
                norm = math.hypot(nx_, ny_) or 1.0
                off = 0.07 if f.src < f.dst else -0.07
                px = sx + (dx - sx) * frac + off * nx_ / norm
                py = sy + (dy - sy) * frac + off * ny_ / norm
            mx.append(round(px, 3))
            my.append(round(py, 3))
            mc.append(message_colour(kind))
            mh.append(text)
        colours, hover, labels = [], [], []
        for nid, state, detail, value in m.node_rows(panel):
            up = state == "up"
            colours.append(self.colour_of(value) if up else DOWN)
            labels.append(("down" if not up else "undecided" if value is None else f"decided {value}"))
            what = "seen" if panel == "chapter" else "promised · accepted"
            hover.append(f"{nid}: {state}; {what} {detail}; decided {value}")
        pos_x = [xy[n][0] for n in ids]
        pos_y = [xy[n][1] for n in ids]
        label_y = [y - 0.27 if y < 0.5 else y + 0.27 for y in pos_y]
        return [((0, "x"), link_x), ((0, "y"), link_y), ((1, "x"), cut_x), ((1, "y"), cut_y),
                ((2, "x"), mx), ((2, "y"), my), ((2, "marker.color"), mc), ((2, "hovertext"), mh),
                ((3, "x"), pos_x), ((3, "y"), pos_y), ((3, "text"), list(ids)),
                ((3, "marker.color"), colours), ((3, "hovertext"), hover),
                ((4, "x"), pos_x), ((4, "y"), label_y), ((4, "text"), labels)]

    def _table_html(self, panel: str) -> str:
        rows = []
        for nid, state, detail, value in self.model.node_rows(panel):
            chip = (f'<span style="background:{self.colour_of(value)};color:white;padding:0 4px">'
                    f'{html.escape(str(value))}</span>' if value is not None else "&ndash;")
            rows.append(f"<tr><td><b>{nid}</b></td><td>{state}</td><td>{html.escape(detail)}</td>"
                        f"<td>{chip}</td></tr>")
        what = "values seen" if panel == "chapter" else "promised · accepted"
        return ('<table style="font-size:11px;line-height:14px"><tr><th>node</th><th></th>'
                f'<th style="text-align:left">{what}</th><th>decided</th></tr>' + "".join(rows) + "</table>")

    def _show_held(self, panel: str) -> None:
        rows = [(h.label(), h.id) for h in self.model.held(panel)]
        if rows == self._held_shown[panel]:
            return
        self._held_shown[panel] = rows
        select = self.held_select[panel]
        keep = select.value
        ids = [mid for _label, mid in rows]
        self._quiet = True
        try:
            select.options = rows
            select.value = keep if keep in ids else (ids[0] if ids else None)
        finally:
            self._quiet = False

    # ------------------------------------------------------------------ tear-down
    def close(self) -> None:
        """Stop the live task and close the view."""
        self._player.stop()
        self._closed = True
        for child in (*self.figures.values(), self._controls, self.message, self.status, self.view):
            child.close()


def _legend_html() -> str:
    keys = " ".join(f'<span style="color:{c}">&#9679;</span>&nbsp;{html.escape(k)}' for k, c in MESSAGE_COLOURS)
    return (f'<div style="font-size:11px;line-height:14px">nodes are coloured by the value they decided '
            f'(grey: undecided, dark grey: down) &nbsp;|&nbsp; messages: {keys}</div>')
