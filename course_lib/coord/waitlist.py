"""A waitlist of ephemeral sequential znodes: the shape under locks and elections.

Layout: ``PARENT/<guid>__<kind>__<0000000042>``.  ZooKeeper numbers the entries in the
order they were created, so the list is a fair queue; an entry vanishes when its owner
deletes it or its session dies.  Each waiter watches *one* entry — the nearest one
before it that blocks it — so a release wakes one waiter, not all of them (no herd).

The guid makes ``enter`` safe to retry: if the create reached the server but its reply
was lost with the connection, the retry finds the entry it already made instead of
making a second one.
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass
from typing import Iterable, Optional

from kazoo.exceptions import ConnectionLoss, NoNodeError, OperationTimeoutError
from kazoo.protocol.states import KazooState

from .base import Recipe, SessionLost
from .paths import join, sequence_of


@dataclass(frozen=True, order=True)
class Entry:
    sequence: int
    kind: str
    name: str


class Waitlist(Recipe):
    """Entries under ``/NAMESPACE/<parts...>``; see the module docstring."""

    def __init__(self, zk, *parts: str, namespace=None, op_timeout: float = 10.0):
        super().__init__(zk, namespace, op_timeout)
        self.parent = join(self.root, *parts)
        self.guid = uuid.uuid4().hex
        self.wakeups = 0  # watch notifications this waitlist received

    def enter(self, kind: str, data: bytes = b"") -> Entry:
        prefix = f"{self.guid}__{kind}__"

        def undo(path: str) -> None:  # a create we gave up on went through after all
            self.client.delete_async(path)

        while True:
            try:
                path = self.call("create", f"{self.parent}/{prefix}", data, ephemeral=True,
                                 sequence=True, makepath=True, retry=False, on_late=undo)
                name = path.rsplit("/", 1)[1]
                break
            except (ConnectionLoss, OperationTimeoutError):
                # The lost attempt may have created the entry: look for our guid.
                mine = [n for n in self._children() if n.startswith(prefix)]
                if mine:
                    name = mine[0]
                    break
        return Entry(sequence_of(name), kind, name)

    def entries(self) -> list[Entry]:
        return sorted(Entry(sequence_of(n), n.split("__")[1], n)
                      for n in self._children() if n.count("__") == 2)

    def _children(self) -> list[str]:
        try:
            return self.call("get_children", self.parent)
        except NoNodeError:
            return []

    def leave(self, entry: Entry) -> None:
        try:
            self.call("delete", f"{self.parent}/{entry.name}")
        except NoNodeError:
            pass

    def data(self, entry: Entry) -> Optional[bytes]:
        try:
            return self.call("get", f"{self.parent}/{entry.name}")[0]
        except NoNodeError:
            return None

    def wait_turn(self, mine: Entry, blocked_by: Iterable[str], deadline: Optional[float]) -> bool:
        """Block until no entry of a kind in ``blocked_by`` is ahead of ``mine``.

        Watches only the nearest blocking entry ahead.  False when ``deadline`` (a
        ``time.monotonic()`` value) passes first; ``SessionLost`` if the session dies.
        """
        blocked_by = frozenset(blocked_by)
        while True:
            entries = self.entries()
            if mine not in entries:
                raise SessionLost(f"entry {mine.name} vanished while waiting: the session expired")
            ahead = [e for e in entries if e < mine and e.kind in blocked_by]
            if not ahead:
                return True
            if not self._wait_gone(ahead[-1], deadline):
                return False

    def watch(self, entry: Entry, callback) -> bool:
        """Call ``callback(event)`` once when ``entry`` changes or goes; False (and no
        watch left behind) if it is already gone.

        ``get`` with a watch, not ``exists``: on a missing node ``exists`` would leave a
        watch for its creation, which never comes — one stray watch per race, for the
        life of the session.
        """
        try:
            self.call("get", f"{self.parent}/{entry.name}", watch=callback)
        except NoNodeError:
            return False
        return True

    def _wait_gone(self, entry: Entry, deadline: Optional[float]) -> bool:
        gone = threading.Event()
        waiting = True

        def on_change(_event) -> None:
            if waiting:  # a watch outlives a wait that timed out: do not count it then
                self.wakeups += 1
            gone.set()

        if not self.watch(entry, on_change):
            return True
        try:
            while not gone.is_set():
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                # The watch wakes us; the periodic look at the (local) session state is
                # how a session lost while waiting is noticed.  It sends nothing to ZooKeeper.
                gone.wait(1.0 if remaining is None else min(remaining, 1.0))
                if self.client.state == KazooState.LOST:
                    raise SessionLost("the ZooKeeper session expired while waiting")
            return True
        finally:
            waiting = False
