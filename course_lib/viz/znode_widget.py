"""``ZnodeWidget``: a live view of one ZooKeeper subtree — node types, versions, owners, watches.

The subtree under ``root`` is drawn as a plotly treemap, one tile per znode, coloured by
its type (persistent, ephemeral, sequential, ephemeral sequential).  The hover shows the
node's data, ``version`` (bumped by every ``set``: the compare-and-set token),
``cversion`` (bumped when its children change), and for an ephemeral node the session
that owns it (``ephemeralOwner``), named when that session belongs to a client you gave
the widget.  A tile whose label carries ``👁`` is watched.

Which nodes are watched: ZooKeeper reports watches per server with the four-letter
words ``wchp`` / ``wchc``; the course's servers answer them only if
``course_lib.zk.fourletter.WORDS`` whitelists them.  When it does, the widget asks every
serving server (all sessions' watches).  Otherwise it reads the watch tables of the
kazoo clients you pass (``clients={"name": client}``) — the watches *those* sessions
hold: a one-shot watch disappears from the table when it fires; a kazoo recipe watcher
(``DataWatch`` / ``ChildrenWatch``) sets a new one each time.

Buttons call public methods that code can call too: ``refresh``, ``start_live`` /
``stop_live`` (an asyncio task on the kernel's loop, never a blocking loop),
``create``, ``set_data``, ``delete``.  Every change seen between two refreshes is
logged with its time (``events``): a node appearing, vanishing (an ephemeral node whose
session died), changing version, gaining or losing a watch.  An action that makes no
sense (delete a node that has children, create one that exists) shows a message; bad
arguments in code raise ``ValueError``.
"""

from __future__ import annotations

import asyncio
import html
import re
import time
from dataclasses import dataclass
from typing import Mapping, Optional

import ipywidgets as widgets
import plotly.graph_objects as go
from kazoo.client import KazooClient
from kazoo.exceptions import (BadVersionError, KazooException, NoChildrenForEphemeralsError,
                              NodeExistsError, NoNodeError, NotEmptyError)

from course_lib.viz.display import view_bundle
from course_lib.viz.live import LiveTask
from course_lib.viz.plotly_bundle import CourseFigureWidget
from course_lib.zk import Ensemble, four_letter_word
from course_lib.zk.fourletter import WORDS

KIND_COLOURS = {
    "persistent": "#3b7dd8",
    "persistent sequential": "#7aa6e8",
    "ephemeral": "#f2a900",
    "ephemeral sequential": "#e8743b",
}
_SEQUENTIAL = re.compile(r"\d{10}$")
WATCH_MARK = "👁"


@dataclass(frozen=True)
class Znode:
    """One znode as the widget last saw it."""

    path: str
    version: int
    cversion: int
    children: int
    ephemeral_owner: int         # session id of the owner; 0 for a persistent node
    data: bytes
    data_watchers: tuple = ()    # who holds a data/exists watch on it
    child_watchers: tuple = ()   # who holds a children watch on it

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[1] or "/"

    @property
    def parent(self) -> str:
        return self.path.rsplit("/", 1)[0] or "/"

    @property
    def ephemeral(self) -> bool:
        return self.ephemeral_owner != 0

    @property
    def sequential(self) -> bool:
        """Named with ZooKeeper's 10-digit counter: how a sequential node is recognised
        (so a persistent node whose name ends in 10 digits looks sequential too)."""
        return bool(_SEQUENTIAL.search(self.name))

    @property
    def kind(self) -> str:
        return ("ephemeral" if self.ephemeral else "persistent") + (
            " sequential" if self.sequential else "")

    @property
    def watched(self) -> bool:
        return bool(self.data_watchers or self.child_watchers)


class ZnodeWidget:
    """Live view of the subtree under ``root`` (see the module docstring).

    ``client``: a started kazoo client the widget reads with (and acts with).
    ``clients``: kazoo clients to name sessions and read watches from, by name;
    ``client`` is included as ``"widget"`` unless given under another name.
    """

    def __init__(self, client: KazooClient, root: str, clients: Optional[Mapping[str, KazooClient]] = None,
                 interval: float = 0.5, max_nodes: int = 300, op_timeout: float = 3.0,
                 ensemble: Optional[Ensemble] = None):
        if not isinstance(client, KazooClient):
            raise ValueError(f"client must be a KazooClient, not {type(client).__name__}")
        if not isinstance(root, str) or not root.startswith("/") or (root != "/" and root.endswith("/")):
            raise ValueError(f"root must be an absolute znode path like '/lesson', not {root!r}")
        if not isinstance(interval, (int, float)) or not 0.1 <= interval <= 10:
            raise ValueError(f"interval must be 0.1 to 10 seconds, not {interval!r}")
        if not isinstance(max_nodes, int) or max_nodes < 1:
            raise ValueError(f"max_nodes must be a positive integer, not {max_nodes!r}")
        self.client = client
        self.root = root
        self.clients: dict[str, KazooClient] = dict(clients or {})
        if not any(c is client for c in self.clients.values()):
            self.clients["widget"] = client
        for name, c in self.clients.items():
            if not isinstance(c, KazooClient):
                raise ValueError(f"clients[{name!r}] must be a KazooClient")
        self.session_names: dict[int, str] = {}
        self.interval = interval
        self.max_nodes = max_nodes
        self.op_timeout = op_timeout
        self.ensemble = ensemble
        self.nodes: dict[str, Znode] = {}
        self.events: list[tuple[float, str]] = []
        self.refreshes = 0
        self._began = time.monotonic()
        self._live_task = LiveTask(self._live_frame, interval)

        self.figure = CourseFigureWidget(layout=go.Layout(
            height=420, margin=dict(l=5, r=5, t=40, b=5), title=f"znodes under {root}"))
        self.figure.add_treemap(uid="znodes", branchvalues="remainder", sort=False,
                                hoverinfo="text", textinfo="label", root=dict(color="#eeeeee"),
                                pathbar=dict(visible=True))
        self.figure.data[0].uid = "znodes"  # a fixed uid: nbval and tests see stable output
        self.live_button = widgets.ToggleButton(description="Live", icon="play", value=False)
        self.live_button.observe(self._on_live, "value")
        self.refresh_button = widgets.Button(description="Refresh", icon="refresh")
        self.refresh_button.on_click(lambda _: self.refresh())
        self.path_text = widgets.Text(placeholder="path under the root, e.g. app/node", description="path")
        self.data_text = widgets.Text(placeholder="data", description="data")
        self.ephemeral_box = widgets.Checkbox(description="ephemeral", indent=False)
        self.sequence_box = widgets.Checkbox(description="sequential", indent=False)
        self.create_button = widgets.Button(description="create", button_style="success")
        self.set_button = widgets.Button(description="set data", button_style="info")
        self.delete_button = widgets.Button(description="delete", button_style="danger")
        self.create_button.on_click(lambda _: self.create(
            self.path_text.value, self.data_text.value, ephemeral=self.ephemeral_box.value,
            sequence=self.sequence_box.value))
        self.set_button.on_click(lambda _: self.set_data(self.path_text.value, self.data_text.value))
        self.delete_button.on_click(lambda _: self.delete(self.path_text.value))
        self.message = widgets.HTML()
        self.log = widgets.HTML(layout=widgets.Layout(max_height="160px", overflow="auto"))
        legend = " ".join(f'<span style="background:{c};color:white;padding:1px 6px">{k}</span>'
                          for k, c in KIND_COLOURS.items())
        self.view = widgets.VBox([
            self.figure,
            widgets.HTML(f"{legend} &nbsp; {WATCH_MARK} = watched"),
            widgets.HBox([self.live_button, self.refresh_button]),
            widgets.HBox([self.path_text, self.data_text]),
            widgets.HBox([self.ephemeral_box, self.sequence_box, self.create_button,
                          self.set_button, self.delete_button]),
            self.message, widgets.HTML("<b>Changes seen</b>"), self.log,
        ])
        self.refresh()

    def _repr_mimebundle_(self, **kwargs):
        return view_bundle(self.view, **kwargs)

    # -- reading -----------------------------------------------------------------

    def refresh(self) -> list[Znode]:
        """Read the subtree, log what changed since the last look, redraw."""
        try:
            nodes = self.snapshot()
        except (KazooException, TimeoutError) as error:
            self.say(f"could not read {self.root}: {error or type(error).__name__} "
                     "(is a quorum up?)", ok=False)
            return list(self.nodes.values())
        return self._show(nodes)

    def snapshot(self) -> list[Znode]:
        """The subtree as it is now (root first, then breadth-first), without drawing.
        An empty list if the root does not exist."""
        watches = self.watches()
        found: list[Znode] = []
        level = [self.root]
        while level and len(found) < self.max_nodes:
            reads = [(p, self.client.get_async(p), self.client.get_children_async(p)) for p in level]
            level = []
            for path, data_result, children_result in reads:
                try:
                    data, stat = data_result.get(timeout=self.op_timeout)
                    children = children_result.get(timeout=self.op_timeout)
                except NoNodeError:
                    continue  # vanished while we looked
                except self.client.handler.timeout_exception:
                    raise TimeoutError(f"ZooKeeper did not answer within {self.op_timeout} s") from None
                found.append(Znode(path, stat.version, stat.cversion, stat.numChildren,
                                   stat.ephemeralOwner, data or b"",
                                   tuple(sorted(watches["data"].get(path, ()))),
                                   tuple(sorted(watches["child"].get(path, ())))))
                base = path.rstrip("/")
                level += [f"{base}/{c}" for c in sorted(children)]
        return found[: self.max_nodes]

    def watches(self) -> dict[str, dict[str, set]]:
        """``{"data": {path: {holder, ...}}, "child": {...}}``: from the servers when
        ``wchp`` is whitelisted (holders are session names), else from the clients'
        watch tables (holders are the clients' names)."""
        if "wchp" in WORDS and self.ensemble is not None:
            return self._server_watches()
        result: dict[str, dict[str, set]] = {"data": {}, "child": {}}
        for name, client in self.clients.items():
            for kind, table in (("data", client._data_watchers), ("child", client._child_watchers)):
                for path, callbacks in list(table.items()):
                    if callbacks and (path == self.root or path.startswith(self.root.rstrip("/") + "/")):
                        result[kind].setdefault(path, set()).add(name)
        return result

    def owner_name(self, session_id: int) -> str:
        """A session's name: the client that owns it, or its hex id."""
        if session_id in self.session_names:
            return self.session_names[session_id]
        for name, client in self.clients.items():
            if client.client_id and client.client_id[0] == session_id:
                return name
        return f"0x{session_id:x}"

    def name_session(self, session_id: int, name: str) -> None:
        """Name a session that belongs to no client given to the widget (another process)."""
        if isinstance(session_id, bool) or not isinstance(session_id, int) or not isinstance(name, str):
            raise ValueError("name_session needs an integer session id and a string name")
        self.session_names[session_id] = name

    # -- actions (the buttons call these) ----------------------------------------

    def create(self, path: str, data: str | bytes = b"", ephemeral: bool = False,
               sequence: bool = False) -> Optional[str]:
        """Create a node (parents made if missing) with the widget's client; its path,
        or None and a message if that makes no sense."""
        full = self._resolve(path)
        if full is None:
            return None
        try:
            made = self._call("create", full, _bytes(data), ephemeral=bool(ephemeral),
                              sequence=bool(sequence), makepath=True)
        except NodeExistsError:
            return self._fail(f"{full} already exists")
        except NoChildrenForEphemeralsError:
            return self._fail(f"cannot create {full}: an ephemeral node cannot have children")
        except (KazooException, TimeoutError) as error:
            return self._fail(f"create {full} failed: {error or type(error).__name__}")
        self.refresh()
        self.say(f"created {made}" + (" (ephemeral: it lives as long as this session)" if ephemeral else ""))
        return made

    def set_data(self, path: str, data: str | bytes, version: int = -1) -> Optional[int]:
        """Set a node's data (compare-and-set if ``version`` >= 0); its new version, or
        None and a message."""
        full = self._resolve(path)
        if full is None:
            return None
        if isinstance(version, bool) or not isinstance(version, int) or version < -1:
            raise ValueError(f"version must be an int >= -1, not {version!r}")
        try:
            stat = self._call("set", full, _bytes(data), version)
        except NoNodeError:
            return self._fail(f"no node {full}")
        except BadVersionError:
            return self._fail(f"{full} is no longer at version {version}: someone changed it")
        except (KazooException, TimeoutError) as error:
            return self._fail(f"set {full} failed: {error or type(error).__name__}")
        self.refresh()
        self.say(f"{full} is now at version {stat.version}")
        return stat.version

    def delete(self, path: str) -> bool:
        """Delete one node; False and a message if it is missing or has children."""
        full = self._resolve(path)
        if full is None:
            return False
        if full == self.root:
            return bool(self._fail("the widget's root cannot be deleted from the widget"))
        try:
            self._call("delete", full)
        except NoNodeError:
            return bool(self._fail(f"no node {full}"))
        except NotEmptyError:
            return bool(self._fail(f"{full} has children: delete them first"))
        except (KazooException, TimeoutError) as error:
            return bool(self._fail(f"delete {full} failed: {error or type(error).__name__}"))
        self.refresh()
        self.say(f"deleted {full}")
        return True

    def start_live(self) -> None:
        """Refresh every ``interval`` seconds in a task on the running loop."""
        if not self._live_task.start():
            self.say("Live updates need a running event loop (a Jupyter kernel).", ok=False)
        self.live_button.value = self.live

    def stop_live(self) -> None:
        self._live_task.stop()
        self.live_button.value = False

    @property
    def live(self) -> bool:
        return self._live_task.running

    def close(self) -> None:
        self.stop_live()
        self.view.close()

    def say(self, text: str, ok: bool = True) -> bool:
        colour = "#1a7f37" if ok else "#c62828"
        self.message.value = f'<span style="color:{colour}">{html.escape(text)}</span>'
        return ok

    @property
    def message_text(self) -> str:
        return html.unescape(re.sub(r"<[^>]+>", "", self.message.value))

    # -- internals ---------------------------------------------------------------

    def _resolve(self, path) -> Optional[str]:
        if not isinstance(path, str):
            raise ValueError(f"path must be a string, not {path!r}")
        path = path.strip()
        if not path:
            return self._fail("give a path (relative to the root, or absolute under it)")
        full = path if path.startswith("/") else f"{self.root.rstrip('/')}/{path}"
        full = full.rstrip("/") or "/"
        if not (full == self.root or full.startswith(self.root.rstrip("/") + "/")):
            return self._fail(f"{full} is outside this widget's subtree {self.root}")
        if "//" in full or any(part in (".", "..") for part in full.split("/")[1:]):
            return self._fail(f"{full!r} is not a valid znode path")
        return full

    def _call(self, method: str, *args, **kwargs):
        """``client.<method>``, bounded by ``op_timeout`` (kazoo's own calls wait for ever
        while no server answers)."""
        result = getattr(self.client, f"{method}_async")(*args, **kwargs)
        try:
            return result.get(timeout=self.op_timeout)
        except self.client.handler.timeout_exception:
            raise TimeoutError(f"ZooKeeper did not answer within {self.op_timeout} s") from None

    def _fail(self, text: str):
        self.say(text, ok=False)
        return None

    async def _live_frame(self) -> None:
        try:  # reading blocks on the network: do it off the kernel's loop
            nodes = await asyncio.get_running_loop().run_in_executor(None, self.snapshot)
        except (KazooException, TimeoutError) as error:
            self.say(f"could not read {self.root}: {error or type(error).__name__}", ok=False)
        else:
            self._show(nodes)

    def _show(self, nodes: list[Znode]) -> list[Znode]:
        new = {n.path: n for n in nodes}
        for n in nodes:  # remember who owned what: the owner may be gone by the next look
            if n.ephemeral and n.ephemeral_owner not in self.session_names:
                name = self.owner_name(n.ephemeral_owner)
                if not name.startswith("0x"):
                    self.session_names[n.ephemeral_owner] = name
        if self.refreshes:
            self._log_changes(self.nodes, new)
        self.nodes = new
        self.refreshes += 1
        self._redraw()
        return nodes

    def _log_changes(self, old: dict[str, Znode], new: dict[str, Znode]) -> None:
        for path in sorted(new.keys() - old.keys()):
            n = new[path]
            owner = f", owner {self.owner_name(n.ephemeral_owner)}" if n.ephemeral else ""
            self._event(f"+ {path} ({n.kind}{owner})")
        for path in sorted(old.keys() - new.keys()):
            n = old[path]
            why = f" — its owner {self.owner_name(n.ephemeral_owner)} is gone" if n.ephemeral else ""
            self._event(f"− {path}{why}")
        for path in sorted(old.keys() & new.keys()):
            a, b = old[path], new[path]
            if a.version != b.version:
                self._event(f"~ {path}: version {a.version} → {b.version}")
            for kind, before, after in (("data", a.data_watchers, b.data_watchers),
                                        ("child", a.child_watchers, b.child_watchers)):
                for who in sorted(set(after) - set(before)):
                    self._event(f"{WATCH_MARK} {who} watches {path} ({kind})")
                for who in sorted(set(before) - set(after)):
                    self._event(f"{WATCH_MARK} {who}'s {kind} watch on {path} fired (or was dropped)")

    def _event(self, text: str) -> None:
        self.events.append((time.monotonic() - self._began, text))
        self.log.value = "<br>".join(f"{t:6.1f} s &nbsp; {html.escape(e)}"
                                     for t, e in reversed(self.events[-60:]))

    def _redraw(self) -> None:
        nodes = list(self.nodes.values())
        labels, hovers, colours = [], [], []
        for n in nodes:
            labels.append(n.name + (f" {WATCH_MARK}" if n.watched else ""))
            colours.append(KIND_COLOURS[n.kind])
            lines = [f"<b>{html.escape(n.path)}</b>", n.kind,
                     f"version {n.version}, cversion {n.cversion}, {n.children} children"]
            if n.ephemeral:
                lines.append(f"owner: session {html.escape(self.owner_name(n.ephemeral_owner))}")
            if n.data:
                lines.append("data: " + html.escape(n.data[:60].decode("utf-8", "replace")))
            if n.data_watchers:
                lines.append("data watch: " + html.escape(", ".join(n.data_watchers)))
            if n.child_watchers:
                lines.append("children watch: " + html.escape(", ".join(n.child_watchers)))
            hovers.append("<br>".join(lines))
        paths = {n.path for n in nodes}
        with self.figure.batch_update():
            tree = self.figure.data[0]
            tree.ids = [n.path for n in nodes]
            tree.labels = labels
            tree.parents = [n.parent if n.path != self.root and n.parent in paths else "" for n in nodes]
            tree.hovertext = hovers
            tree.marker.colors = colours

    def _server_watches(self) -> dict[str, dict[str, set]]:
        result: dict[str, dict[str, set]] = {"data": {}, "child": {}}
        for status in self.ensemble.status(timeout=0.5):
            if not status.serving:
                continue
            try:
                reply = four_letter_word("127.0.0.1", status.client_port, "wchp", 1.0)
            except (OSError, ValueError):
                continue
            for path, sessions in parse_wchp(reply).items():
                if path == self.root or path.startswith(self.root.rstrip("/") + "/"):
                    names = {self.owner_name(s) for s in sessions}
                    # wchp does not say which kind: report it as a data watch
                    result["data"].setdefault(path, set()).update(names)
        return result

    def _on_live(self, change) -> None:
        if change["new"] and not self.live:
            self.start_live()
        elif not change["new"] and self.live:
            self.stop_live()


def parse_wchp(reply: str) -> dict[str, set[int]]:
    """``wchp`` output (a path, then one indented ``0x<session>`` per watcher) as
    ``{path: {session id, ...}}``."""
    result: dict[str, set[int]] = {}
    current = None
    for line in reply.splitlines():
        if line.startswith("/"):
            current = line.strip()
            result.setdefault(current, set())
        elif line.strip().startswith("0x") and current is not None:
            result[current].add(int(line.strip(), 16))
    return result


def _bytes(data) -> bytes:
    if isinstance(data, bytes):
        return data
    if isinstance(data, str):
        return data.encode()
    raise ValueError(f"data must be str or bytes, not {type(data).__name__}")
