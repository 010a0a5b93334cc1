"""``EnsembleWidget``: a live picture of the course's ZooKeeper ensemble.

Servers are drawn on a ring (networkx layout), coloured by the mode each reports
(``srvr``), with the leader linked to the followers it leads; a kazoo client, if given,
is drawn linked to the server its session is on (found with ``cons``).  Buttons kill
(SIGKILL) and restart each server's real process; "Live" polls the ensemble twice a
second in an asyncio task on the kernel's loop, so the learner watches a new leader
being elected.  Without Live, a kill or a restart is followed for a while anyway
(polled every ``interval / 2`` seconds until the ensemble has settled, at most
``FOLLOW_SECONDS``), so the picture never looks stuck on "down" while an election
runs, and the event log stamps each change when it was seen, within that poll.  Every
button calls a public method (``kill``, ``restart``, ``refresh``, ``start_live``,
``stop_live``) that code can call too; an action that makes no sense shows a message
instead of raising.
"""

from __future__ import annotations

import asyncio
import html
import time
from typing import Optional

import ipywidgets as widgets
import networkx as nx
import plotly.graph_objects as go

from course_lib.zk import Ensemble, ServerStatus, ZooKeeperError, four_letter_word

from .display import view_bundle
from .live import LiveTask
from .plotly_bundle import CourseFigureWidget

MODE_COLOURS = {
    "leader": "#f2a900", "standalone": "#f2a900", "follower": "#3b7dd8",
    "observer": "#7aa6e8", "not serving": "#e8743b", "starting": "#e8743b", "down": "#a0a0a0",
}
# How long a kill or restart is followed without Live, at most.
FOLLOW_SECONDS = 20.0


class EnsembleWidget:
    """View over an :class:`~course_lib.zk.Ensemble` (and optionally a kazoo client)."""

    def __init__(self, ensemble: Optional[Ensemble] = None, client=None, interval: float = 0.5):
        if not isinstance(interval, (int, float)) or not 0.1 <= interval <= 10:
            raise ValueError(f"interval must be 0.1 to 10 seconds, not {interval!r}")
        self.ensemble = ensemble if ensemble is not None else Ensemble.default()
        self.client = client
        self.interval = interval
        self.statuses: list[ServerStatus] = []
        self.client_server: Optional[int] = None
        self.events: list[tuple[float, str]] = []
        self._began = time.monotonic()
        self.live = LiveTask(self._live_frame, interval,
                             on_error=lambda e: self.say(f"live updates stopped: {e}", ok=False))
        self._follow = LiveTask(self._follow_frame, interval / 2,
                                on_error=lambda e: self.say(f"updates stopped: {e}", ok=False))
        self._follow_until = 0.0
        self._settled_polls = 0

        layout = nx.circular_layout(nx.complete_graph(self.ensemble.ids))
        self._xy = {i: (float(x), float(y)) for i, (x, y) in layout.items()}
        self.figure = self._make_figure()
        self.kill_buttons = {i: widgets.Button(description=f"kill {i}", button_style="danger",
                                               layout=widgets.Layout(width="90px"))
                             for i in self.ensemble.ids}
        self.restart_buttons = {i: widgets.Button(description=f"restart {i}", button_style="success",
                                                  layout=widgets.Layout(width="90px"))
                                for i in self.ensemble.ids}
        for i in self.ensemble.ids:
            self.kill_buttons[i].on_click(lambda _, i=i: self.kill(i))
            self.restart_buttons[i].on_click(lambda _, i=i: self.restart(i))
        self.live_button = widgets.ToggleButton(description="Live", icon="play", value=False)
        self.live_button.observe(self._on_live, "value")
        self.refresh_button = widgets.Button(description="Refresh", icon="refresh")
        self.refresh_button.on_click(lambda _: self.refresh())
        self.message = widgets.HTML()
        self.message_text = ""
        self.log = widgets.HTML(layout=widgets.Layout(max_height="160px", overflow="auto"))
        controls = widgets.VBox([
            widgets.HBox([self.live_button, self.refresh_button]),
            widgets.HBox(list(self.kill_buttons.values())),
            widgets.HBox(list(self.restart_buttons.values())),
            self.message,
        ])
        self.view = widgets.VBox([self.figure, controls, widgets.HTML("<b>Events</b>"), self.log])
        self.refresh()

    def _repr_mimebundle_(self, **kwargs):
        return view_bundle(self.view, **kwargs)

    # -- actions (the buttons call these) ----------------------------------------

    def kill(self, server_id: int) -> bool:
        """SIGKILL server ``server_id``; False (and a message) if that makes no sense."""
        try:
            self.ensemble.kill(server_id)
        except (ValueError, ZooKeeperError) as error:
            return self.say(str(error), ok=False)
        self._event(f"you killed server {server_id} (SIGKILL)")
        self.refresh()
        self._follow_changes()
        return self.say(f"Killed server {server_id}. Watch the others elect a leader.")

    def restart(self, server_id: int) -> bool:
        """Start server ``server_id`` again (returns at once; it joins within ~1 s)."""
        try:
            self.ensemble.restart(server_id, wait=False)
        except (ValueError, ZooKeeperError) as error:
            return self.say(str(error), ok=False)
        self._event(f"you restarted server {server_id}")
        self.refresh()
        self._follow_changes()
        return self.say(f"Restarted server {server_id}; it rejoins the ensemble.")

    def refresh(self) -> list[ServerStatus]:
        """Ask every server for its mode, log what changed, redraw."""
        return self._show(*self._observe())

    def start_live(self) -> None:
        """Poll and redraw every ``interval`` seconds in a task on the running loop."""
        if not self.live.start():
            self.say("Live updates need a running event loop (a Jupyter kernel).", ok=False)
        self.live_button.value = self.live.running

    def stop_live(self) -> None:
        self.live.stop()
        self.live_button.value = False

    def close(self) -> None:
        self.stop_live()
        self._follow.stop()
        self.view.close()

    def say(self, text: str, ok: bool = True) -> bool:
        """Show ``text`` under the buttons (red if not ``ok``); returns ``ok``.  The
        plain words are in :attr:`message_text`."""
        self.message_text = text
        colour = "#1a7f37" if ok else "#c62828"
        self.message.value = f'<span style="color:{colour}">{html.escape(text)}</span>'
        return ok

    # -- internals ---------------------------------------------------------------

    async def _live_frame(self) -> None:
        # Asking the servers blocks on sockets: do it off the kernel's loop.
        self._show(*await asyncio.get_running_loop().run_in_executor(None, self._observe))

    def _follow_changes(self) -> None:
        """Poll until the ensemble settles (see the module docstring)."""
        self._follow_until = time.monotonic() + FOLLOW_SECONDS
        self._settled_polls = 0
        if not self.live.running:
            self._follow.start()

    def settled(self) -> bool:
        """One leader, and every server that is up serves."""
        modes = [s.mode for s in self.statuses]
        return modes.count("leader") + modes.count("standalone") == 1 and all(
            s.serving or s.mode == "down" for s in self.statuses)

    async def _follow_frame(self) -> None:
        if self.live.running:
            self._follow.stop()
            return
        await self._live_frame()
        self._settled_polls = self._settled_polls + 1 if self.settled() else 0
        if self._settled_polls >= 3 or time.monotonic() > self._follow_until:
            self._follow.stop()

    def _show(self, statuses: list[ServerStatus], client_server: Optional[int]) -> list[ServerStatus]:
        previous = {s.id: s.mode for s in self.statuses}
        for s in statuses:
            if s.id in previous and previous[s.id] != s.mode:
                self._event(f"server {s.id}: {previous[s.id]} → {s.mode}")
        if self.client is not None and self.statuses and client_server != self.client_server:
            where = f"server {client_server}" if client_server else "no server (reconnecting)"
            self._event(f"your client's session is now on {where}")
        self.statuses, self.client_server = statuses, client_server
        self._redraw()
        return statuses

    def _observe(self) -> tuple[list[ServerStatus], Optional[int]]:
        statuses = self.ensemble.status(timeout=0.5)
        return statuses, self._find_client(statuses)

    def _find_client(self, statuses: list[ServerStatus]) -> Optional[int]:
        if self.client is None or not self.client.connected:
            return None
        session = f"sid=0x{self.client.client_id[0]:x}"
        for s in statuses:
            if s.serving:
                try:
                    if session in four_letter_word("127.0.0.1", s.client_port, "cons", 0.5):
                        return s.id
                except OSError:
                    pass
        return None

    def _event(self, text: str) -> None:
        self.events.append((time.monotonic() - self._began, text))
        self.log.value = "<br>".join(f"{t:6.1f} s &nbsp; {html.escape(e)}"
                                     for t, e in reversed(self.events[-50:]))

    def _on_live(self, change) -> None:
        if change["new"] and not self.live.running:
            self.start_live()
        elif not change["new"] and self.live.running:
            self.stop_live()

    def _make_figure(self) -> go.FigureWidget:
        figure = CourseFigureWidget(layout=go.Layout(
            width=460, height=400, showlegend=False, margin=dict(l=10, r=10, t=40, b=10),
            xaxis=dict(visible=False, range=[-2.0, 2.0]),
            yaxis=dict(visible=False, range=[-1.9, 1.9], scaleanchor="x"),
            title="ZooKeeper ensemble", plot_bgcolor="white"))
        figure.add_scatter(mode="lines", line=dict(color="#f2a900", width=3),
                           hoverinfo="skip")
        figure.add_scatter(mode="lines", line=dict(color="#2e7d32", dash="dot"),
                           hoverinfo="skip")
        figure.add_scatter(mode="markers+text", textposition="middle center",
                           marker=dict(size=64, line=dict(color="#333", width=1)),
                           textfont=dict(color="white", size=11), hoverinfo="text")
        figure.add_scatter(mode="markers+text", textposition="bottom center",
                           marker=dict(size=18, symbol="square"))
        return figure

    def _redraw(self) -> None:
        ids = [s.id for s in self.statuses]
        leader = next((s.id for s in self.statuses if s.mode == "leader"), None)
        lead_x, lead_y = [], []
        if leader is not None:
            for s in self.statuses:
                if s.mode == "follower":
                    lead_x += [self._xy[leader][0], self._xy[s.id][0], None]
                    lead_y += [self._xy[leader][1], self._xy[s.id][1], None]
        client_xy = (0.0, 0.0)
        link_x, link_y = [], []
        label_side = "bottom center"
        if self.client_server is not None:
            sx, sy = self._xy[self.client_server]
            client_xy = (sx * 1.55, sy * 1.55)
            link_x, link_y = [sx, client_xy[0]], [sy, client_xy[1]]
            # the label goes on the side away from the ring, never over a server
            label_side = "top center" if sy > 0.3 else "bottom center" if sy < -0.3 else (
                "middle right" if sx > 0 else "middle left")
        with self.figure.batch_update():
            leads, link, servers, client = self.figure.data
            leads.x, leads.y = lead_x, lead_y
            link.x, link.y = link_x, link_y
            servers.x = [self._xy[i][0] for i in ids]
            servers.y = [self._xy[i][1] for i in ids]
            servers.text = [f"{s.id}<br>{s.mode}" for s in self.statuses]
            servers.hovertext = [f"server {s.id} on 127.0.0.1:{s.client_port}, pid {s.pid}"
                                 for s in self.statuses]
            servers.marker.color = [MODE_COLOURS.get(s.mode, "#e8743b") for s in self.statuses]
            client.visible = self.client is not None and self.client_server is not None
            client.x, client.y = [client_xy[0]], [client_xy[1]]
            client.text = ["your client"]
            client.textposition = label_side
            client.marker.color = ["#2e7d32"]
