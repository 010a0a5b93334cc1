"""A waitlist of ephemeral sequential znodes: the shape under locks and elections.

Layout: ``PARENT/<guid>__<kind>__<0000000042>``.  ZooKeeper numbers the entries in the
order they were created, so the list is a fair queue; an entry vanishes when its owner
deletes it or its session dies.  Each waiter watches *one* entry — the nearest one
before it that blocks it — so a release wakes one waiter, not all of them (no herd).

The guid makes ``enter`` safe to retry: if the create reached the server but its reply
was lost with the connection, the retry finds the entry it already made instead of
making a second one (the newest with our guid: an older one may still be on its way
out, see ``leave_async``).

Pipelining (``leave_async``, then ``enter_listing``) rests on one guarantee of
ZooKeeper: the requests of one session are applied in the order the client sent them,
and answered in that order (FIFO client order).  So a ``create`` sent right behind the
``delete`` of the same session's previous entry finds that entry gone, without waiting
for the delete's answer before sending the create.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from dataclasses import dataclass
from enum import Enum
from typing import Iterable, Optional

from kazoo.exceptions import (ConnectionClosedError, ConnectionLoss, NoAuthError, NoNodeError,
                              OperationTimeoutError, RolledBackError, RuntimeInconsistency,
                              SessionExpiredError)
from kazoo.protocol.states import EventType, KazooState

from .base import CoordinationTimeout, Recipe, SessionLost
from .paths import join, sequence_of

log = logging.getLogger(__name__)


@dataclass(frozen=True, order=True)
class Entry:
    sequence: int
    kind: str
    name: str


class Leaving:
    """The delete of an entry, sent and not waited for (``Waitlist.leave_async``).

    ``held=True`` (the entry had its turn: a release) sends the delete in one
    transaction behind a change of the entry's data, so the one waiter watching it is
    woken by a data change, not a deletion, and knows it was a release (see
    ``Waitlist.wait_turn``); ZooKeeper applies a transaction's operations atomically
    and in order, and fires a watch at most once.

    The outcome is always checked, on kazoo's completion thread as soon as the answer
    comes: ``NoNode`` (already gone) and a session that expired or was closed (the
    ephemeral entry goes with it) count as done; ``ConnectionLoss`` (the connection
    dropped with the request in flight: it may or may not have been applied) sends it
    again — the entry's name is unique, so a second delete of it is harmless and finds
    ``NoNode`` — for as long as the session lives; any other error (``NoAuth``...) is a
    failure, logged at once and raised by :meth:`wait`.
    """

    RELEASED = b"released"  # the data of an entry in the instant it is released

    def __init__(self, client, path: str, held: bool, op_timeout: float):
        self.path = path
        self.held = held
        self.error: Optional[BaseException] = None
        self.attempts = 0
        self._client = client
        self._op_timeout = op_timeout
        self._done = threading.Event()
        self._send()

    @property
    def done(self) -> bool:
        """True once the delete is confirmed or has failed."""
        return self._done.is_set() or self._confirmed()

    def _confirmed(self) -> bool:
        # The answer is in, and a success: no need to wait for the completion thread.
        result = self._result
        return result.ready() and result.successful() and not _failures(result.value)

    def wait(self, timeout: Optional[float] = None) -> None:
        """Return once ZooKeeper confirms the entry is gone; raise the delete's error if
        it failed, ``CoordinationTimeout`` if no answer came within ``timeout`` seconds
        (``op_timeout`` if None; the delete is still retried while the session lives)."""
        timeout = self._op_timeout if timeout is None else timeout
        if self._confirmed():
            return
        if not self._done.wait(timeout):
            raise CoordinationTimeout(f"ZooKeeper did not confirm the delete of {self.path} "
                                      f"within {timeout:.0f} s (is a quorum up?)")
        if self.error is not None:
            raise self.error

    def _send(self) -> None:
        self.attempts += 1
        if self.held:
            transaction = self._client.transaction()
            transaction.set_data(self.path, self.RELEASED)
            transaction.delete(self.path)
            self._result = transaction.commit_async()
        else:
            self._result = self._client.delete_async(self.path)
        self._result.rawlink(self._completed)

    def _completed(self, result) -> None:
        # kazoo's completion thread: decide, re-send or record; never block.
        try:
            failed = _failures(result.get(block=False))
            if failed:
                raise failed[0]
        except (NoNodeError, SessionExpiredError, ConnectionClosedError):
            pass  # gone already, or going with its session (expired, or closed by stop())
        except (ConnectionLoss, OperationTimeoutError):
            if self._client.state != KazooState.LOST:  # (LOST: the entry went with it)
                self._send()  # kazoo holds it until the client has reconnected
                return
        except Exception as error:  # NoAuth...: the entry may still be there
            self.error = error
            self._done.set()  # before the log: whoever reads the log finds it done
            log.error("the delete of %s failed: %r; the entry stays until it is deleted "
                      "or its session ends", self.path, error)
            return
        self._done.set()


def _failures(value) -> list:
    """The errors in a transaction's answer (a list, one result per operation; the
    operations it rolled back do not count); none in a plain delete's (True)."""
    if not isinstance(value, list):
        return []
    return [r for r in value if isinstance(r, Exception)
            and not isinstance(r, (RolledBackError, RuntimeInconsistency))]


class Waitlist(Recipe):
    """Entries under ``/NAMESPACE/<parts...>``; see the module docstring."""

    def __init__(self, zk, *parts: str, namespace=None, op_timeout: float = 10.0):
        super().__init__(zk, namespace, op_timeout)
        self.parent = join(self.root, *parts)
        self.guid = uuid.uuid4().hex
        self.wakeups = 0  # watch notifications this waitlist received
        self._newest = -1  # sequence of the newest entry this waitlist made

    def enter(self, kind: str, data: bytes = b"") -> Entry:
        """Create an entry (one round trip; retried, safely, on a lost connection)."""
        prefix = f"{self.guid}__{kind}__"
        while True:
            try:
                path = self.call("create", f"{self.parent}/{prefix}", data, ephemeral=True,
                                 sequence=True, makepath=True, retry=False, on_late=self._undo)
                return self._entered(path)
            except (ConnectionLoss, OperationTimeoutError):
                # The lost attempt may have created the entry: look for our guid.
                found = self._find_new(prefix)
                if found is not None:
                    return found

    def enter_listing(self, kind: str, data: bytes = b"") -> tuple[Entry, list[Entry]]:
        """``enter`` then ``entries``, most often in one request.

        The create goes in one transaction with a ``set_data`` of the parent (its data
        stays b"": the parent is the recipe's own znode), whose answer is the parent's
        stat *after* the create — ZooKeeper applies a transaction's operations
        atomically and in order.  When its
        ``numChildren`` is 1 the new entry is alone and the listing is known without
        asking; otherwise the children are listed (a second round trip: there are
        others in the queue, so this entry waits anyway).
        """
        prefix = f"{self.guid}__{kind}__"
        deadline = time.monotonic() + self.op_timeout
        transaction = self.client.transaction()
        transaction.create(f"{self.parent}/{prefix}", data, ephemeral=True, sequence=True)
        transaction.set_data(self.parent, b"")
        try:
            answers = self.outcome(transaction.commit_async(), deadline, on_late=self._undo_entered)
        except (ConnectionLoss, OperationTimeoutError):
            entry = self._find_new(prefix) or self.enter(kind, data)
            return entry, self.entries()
        failed = _failures(answers)
        if failed:
            # No parent yet (the first entry ever: enter makes it), or one we may create
            # children of but not write to: the slow path.
            if not isinstance(failed[0], (NoNodeError, NoAuthError)):
                raise failed[0]
            entry = self.enter(kind, data)
            return entry, self.entries()
        path, parent = answers
        entry = self._entered(path)
        return entry, [entry] if parent.numChildren == 1 else self.entries()

    def _entered(self, path: str) -> Entry:
        name = path.rsplit("/", 1)[1]
        entry = Entry(sequence_of(name), name.split("__")[1], name)
        self._newest = max(self._newest, entry.sequence)
        return entry

    def _find_new(self, prefix: str) -> Optional[Entry]:
        """Our entry made by a create whose reply was lost: one with our guid newer than
        every entry we made before (an older one may still wait for its delete)."""
        mine = [n for n in self._children()
                if n.startswith(prefix) and sequence_of(n) > self._newest]
        return self._entered(f"{self.parent}/{min(mine, key=sequence_of)}") if mine else None

    def _undo(self, path: str) -> None:  # a create we gave up on went through after all
        self.client.delete_async(path)

    def _undo_entered(self, answers: list) -> None:  # the same, for enter_listing's transaction
        if answers and isinstance(answers[0], str):
            self._undo(answers[0])

    def entries(self) -> list[Entry]:
        return self._parse(self._children())

    @staticmethod
    def _parse(names: Iterable[str]) -> list[Entry]:
        return sorted(Entry(sequence_of(n), n.split("__")[1], n)
                      for n in names if n.count("__") == 2)

    def _children(self) -> list[str]:
        try:
            return self.call("get_children", self.parent)
        except NoNodeError:
            return []

    def leave(self, entry: Entry) -> None:
        """Delete ``entry`` and wait for ZooKeeper to confirm it (already gone is fine)."""
        try:
            self.call("delete", f"{self.parent}/{entry.name}")
        except NoNodeError:
            pass

    def leave_async(self, entry: Entry, held: bool = False) -> Leaving:
        """Send the delete of ``entry`` and return at once; the returned
        :class:`Leaving` checks the outcome (and re-sends after a lost connection).
        ``held=True`` if the entry had its turn: the watcher behind it learns so."""
        return Leaving(self.client, f"{self.parent}/{entry.name}", held, self.op_timeout)

    def data(self, entry: Entry) -> Optional[bytes]:
        try:
            return self.call("get", f"{self.parent}/{entry.name}")[0]
        except NoNodeError:
            return None

    def wait_turn(self, mine: Entry, blocked_by: Iterable[str], deadline: Optional[float],
                  entries: Optional[list[Entry]] = None) -> bool:
        """Block until no entry of a kind in ``blocked_by`` is ahead of ``mine``.

        Watches only the nearest blocking entry ahead.  False when ``deadline`` (a
        ``time.monotonic()`` value) passes first; ``SessionLost`` if the session dies.
        ``entries``: a listing made after ``mine`` was created (``enter_listing``'s), to
        start from instead of listing again.

        When the watched entry goes, the children are listed again: it may have been a
        waiter that gave up or died, not a release, and a holder may still be ahead.
        Two cases need no second look, as they prove that nothing blocking is left:

        - the entry was *released* (its data changed: only a release writes to an
          entry, ``Leaving``) and is of our kind: it had its turn, so nothing that
          blocks our kind was ahead of it, and nothing was between it and us;
        - it was the only blocking entry ahead in the last listing (made after ``mine``
          existed): ZooKeeper's sequence counter only grows, so an entry created later
          sorts after ``mine`` — none can have joined ahead of it.
        """
        blocked_by = frozenset(blocked_by)
        while True:
            if entries is None:
                entries = self.entries()
            if mine not in entries:
                raise SessionLost(f"entry {mine.name} vanished while waiting: the session expired")
            ahead = [e for e in entries if e < mine and e.kind in blocked_by]
            if not ahead:
                return True
            woken = self._wait_gone(ahead[-1], deadline)
            if woken is Woken.TIMED_OUT:
                return False
            if woken is Woken.RELEASED and ahead[-1].kind == mine.kind:
                return True
            if woken in (Woken.RELEASED, Woken.DELETED) and len(ahead) == 1:
                return True
            entries = None

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

    def _wait_gone(self, entry: Entry, deadline: Optional[float]) -> "Woken":
        gone = threading.Event()
        waiting = True
        events = []

        def on_change(event) -> None:
            if waiting:  # a watch outlives a wait that timed out: do not count it then
                self.wakeups += 1
            events.append(event)
            gone.set()

        if not self.watch(entry, on_change):
            return Woken.DELETED
        try:
            while not gone.is_set():
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return Woken.TIMED_OUT
                # The watch wakes us; the periodic look at the (local) session state is
                # how a session lost while waiting is noticed.  It sends nothing to ZooKeeper.
                gone.wait(1.0 if remaining is None else min(remaining, 1.0))
                if self.client.state == KazooState.LOST:
                    raise SessionLost("the ZooKeeper session expired while waiting")
            # A NONE event (the connection dropped: kazoo fires every watch with it and
            # drops them) says nothing about the queue.
            return {EventType.DELETED: Woken.DELETED,
                    EventType.CHANGED: Woken.RELEASED}.get(events[0].type, Woken.OTHER)
        finally:
            waiting = False


class Woken(Enum):
    """Why ``Waitlist._wait_gone`` returned."""
    DELETED = "the watched entry was deleted"
    RELEASED = "the watched entry was released (its data changed as it was deleted)"
    OTHER = "its watch fired for another reason"
    TIMED_OUT = "the deadline passed"
