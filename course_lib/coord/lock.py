"""``DistributedLock``: a fair mutual-exclusion lock on ZooKeeper, with fencing tokens.

Layout: ``/NAMESPACE/locks/NAME/<guid>__lock__<seq>``, one ephemeral sequential entry
per waiter (see :mod:`course_lib.coord.waitlist`).  The lowest entry holds the lock;
every other waiter watches only the entry just before its own, so a release wakes
exactly one waiter, and waiters are served in arrival order.

How it differs from kazoo's ``Lock`` (same queue shape): each acquisition hands out a
**fencing token** — the entry's sequence number, which only grows — for a storage
service to refuse writes from a holder that lost the lock without knowing (a paused
process whose session expired); the lock tells you when that may have happened
(``suspended``: connection lost, the session may still live; ``lost``: the session
expired, the lock is gone), and it counts its wake-ups so the herd effect can be
measured.  No re-entrancy, no semaphores: one job.

Round trips — a round trip is one wait for ZooKeeper's answers; requests sent before
waiting share it.  Before, every request was awaited before the next was sent:

- uncontended acquire+release: ``create``, ``get_children``, ``delete``: 3 requests,
  3 round trips (kazoo's ``Lock``: 4 and 4 — it starts every acquire after the first
  with a ``get_children`` looking for a node it may have left behind);
- a waiter: ``create``, ``get_children``, ``get`` (the watch), after the wake-up
  ``get_children`` again — a round trip between the release ahead and our turn —
  and ``delete``: 5 and 5 (kazoo's: 6 and 6).

Now:

- uncontended: 2 requests, **1 round trip**.  ``release()`` sends the release (a
  transaction: the entry's data changed, then the entry deleted) and returns; the next
  ``acquire()`` sends its entry's ``create`` right behind it, in one transaction with
  a ``set_data`` of the lock's znode whose answer counts the children: 1, the entry
  is alone, the lock is ours without listing (``Waitlist.enter_listing``);
- a waiter: 4 requests, 3 round trips, none of them between the release ahead and
  our turn: [release | create], ``get_children``, ``get`` (the watch).  The watch of
  an entry that was *released* fires with "data changed" (the transaction changes the
  data before deleting, and a watch fires once), so the waiter knows the entry ahead
  had its turn — nothing is left ahead — and takes the lock at once.  An entry that
  merely *vanished* (a waiter that gave up, a session that died) fires "deleted", and
  the waiter lists the queue again: a vanished predecessor is not a release
  (``Waitlist.wait_turn``).

Why the pipelining is safe: ZooKeeper applies the requests of one session in the order
the client sent them, and answers them in that order (FIFO client order, one of
ZooKeeper's guarantees, with the atomic, in-order transaction).  So the ``create``
behind the release comes after the old entry is gone: the new entry never sees our own
old entry ahead of it.  Until the release is applied the old entry still excludes
everybody else: a late release makes a hand-over later, never two holders (and the
holder's earlier requests, its own writes to ZooKeeper, are applied before it).  Its
outcome is not dropped: it is checked as soon as the answer comes (a lost connection
re-sends it, for as long as the session lives), a failure is logged at once and raised
as ``ReleaseFailed`` by ``wait_released()`` or by the next ``acquire()``;
``release(wait=True)`` waits for the answer, as the lock did before.  Nobody but their
owner writes to the entries (a foreign write would look like a release).

Losing the session while holding the lock is not an exception at the moment it happens
(nothing runs then); ``ensure_held()`` raises ``LockLost`` at the next point of use, and
``on_lost`` is called from kazoo's event thread as soon as the client learns of it.
"""

from __future__ import annotations

import logging
import time
from typing import Callable, Optional

from kazoo.protocol.states import KazooState

from .base import CoordinationError
from .paths import check_name, check_timeout
from .waitlist import Entry, Leaving, Waitlist

log = logging.getLogger(__name__)


class LockLost(CoordinationError):
    """The lock may no longer be held: the session was suspended or has expired."""


class ReleaseFailed(CoordinationError):
    """ZooKeeper refused or did not confirm a release's delete: the entry may still
    be there, holding the lock, until it is deleted or its session ends."""


class DistributedLock:
    """``with DistributedLock(zk, "orders") as lock: ... lock.fencing_token ...``

    ``zk`` is a ``KazooClient`` or a ``ZKCoordinator``.  ``acquire(timeout=None)``
    returns True once held, False if ``timeout`` seconds pass first.
    """

    _folder = "locks"
    _kind = "lock"
    _blocked_by: frozenset = frozenset({"lock"})

    def __init__(self, zk, name: str, identifier: str = "", namespace: Optional[str] = None,
                 on_lost: Optional[Callable[["DistributedLock"], None]] = None,
                 op_timeout: float = 10.0):
        check_name(name, "lock name")
        if not isinstance(identifier, str):
            raise ValueError(f"identifier must be a string, not {identifier!r}")
        self.name = name
        self.identifier = identifier
        self.on_lost = on_lost
        self._waitlist = Waitlist(zk, self._folder, name, namespace=namespace, op_timeout=op_timeout)
        self.client = self._waitlist.client
        self._entry: Optional[Entry] = None
        self._leaving: Optional[Leaving] = None  # the last release's delete
        self.suspended = False
        self.lost = False
        self.acquisitions = 0

    @property
    def path(self) -> str:
        return self._waitlist.parent

    @property
    def wakeups(self) -> int:
        """Watch notifications received while waiting (one per release ahead of us)."""
        return self._waitlist.wakeups

    @property
    def held(self) -> bool:
        """True while acquired and the session is neither suspended nor lost."""
        return self._entry is not None and not self.suspended and not self.lost

    @property
    def fencing_token(self) -> int:
        """This acquisition's token: larger than every earlier holder's."""
        if self._entry is None:
            raise LockLost(f"lock {self.name!r} is not held: there is no fencing token")
        return self._entry.sequence

    def acquire(self, timeout: Optional[float] = None) -> bool:
        timeout = check_timeout(timeout)
        if self._entry is not None:
            raise RuntimeError(f"lock {self.name!r} is already held by this object")
        deadline = None if timeout is None else time.monotonic() + timeout
        self.suspended = self.lost = False
        leaving, self._leaving = self._leaving, None
        if leaving is not None and leaving.done:
            self._confirm(leaving)  # ReleaseFailed if it failed; nothing sent yet
            leaving = None
        # Sent behind the last release's delete if it is still on its way (FIFO order).
        entry, entries = self._waitlist.enter_listing(self._kind, self.identifier.encode())
        try:
            if leaving is not None:
                # Answered before the create was (FIFO): no wait, unless it was re-sent.
                self._confirm(leaving)
            got = self._waitlist.wait_turn(entry, self._blocked_by, deadline, entries)
        except BaseException:
            self._abandon(entry, quiet=True)
            raise
        if not got:
            self._abandon(entry)
            return False
        self._entry = entry
        self.acquisitions += 1
        self.client.add_listener(self._on_state)
        return True

    def release(self, wait: bool = False) -> None:
        """Give the lock up: send the delete of the entry and return without waiting for
        ZooKeeper's answer (``wait=True``: wait for it, ``ReleaseFailed`` if it failed).
        Releasing a lock whose session was lost is allowed: there is nothing to delete."""
        if self._entry is None:
            raise RuntimeError(f"lock {self.name!r} is not held")
        entry, self._entry = self._entry, None
        self.client.remove_listener(self._on_state)
        if not self.lost:
            self._leaving = self._waitlist.leave_async(entry, held=True)
            if wait:
                self.wait_released()

    def wait_released(self, timeout: Optional[float] = None) -> None:
        """Return once ZooKeeper has confirmed the last release's delete (at once if
        there is none to wait for); ``ReleaseFailed`` if it failed or no answer came
        within ``timeout`` seconds (``op_timeout`` if None)."""
        leaving = self._leaving
        if leaving is not None:
            try:
                self._confirm(leaving, check_timeout(timeout))
            finally:
                if leaving.done:  # reported (or fine): once
                    self._leaving = None

    def _confirm(self, leaving: Leaving, timeout: Optional[float] = None) -> None:
        try:
            leaving.wait(timeout)
        except Exception as error:
            raise ReleaseFailed(f"the release of lock {self.name!r} failed: {error!r}; its "
                                f"entry {leaving.path} may still hold the lock") from error

    def ensure_held(self) -> None:
        """Raise ``LockLost`` unless the lock is certainly still ours."""
        if self._entry is None:
            raise LockLost(f"lock {self.name!r} is not held")
        if self.lost:
            raise LockLost(f"lock {self.name!r} was lost: the ZooKeeper session expired")
        if self.suspended:
            raise LockLost(f"lock {self.name!r} may be lost: the connection to ZooKeeper "
                           "is suspended")

    def holders(self) -> list[str]:
        """Identifiers of the entries in the queue, holder first."""
        return [(self._waitlist.data(e) or b"").decode() for e in self._waitlist.entries()]

    def __enter__(self) -> "DistributedLock":
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    def __repr__(self) -> str:
        state = "held" if self.held else "lost" if self.lost else "free"
        return f"{type(self).__name__}({self.name!r}, {state})"

    def _abandon(self, entry: Entry, quiet: bool = False) -> None:
        """Delete an entry that never held the lock (a plain delete: the waiter behind
        it, if any, lists the queue again).  ``quiet``: an exception is on its way, do
        not hide it behind a failure here — log that one."""
        if self.client.state == KazooState.LOST:
            return
        try:
            self._waitlist.leave(entry)
        except Exception as error:
            if not quiet:
                raise
            log.error("could not delete the entry %s of lock %r: %r; it stays until its "
                      "session ends", entry.name, self.name, error)

    def _on_state(self, state: KazooState) -> None:
        # Runs on kazoo's event thread: record, call back, never block.
        if state == KazooState.SUSPENDED:
            self.suspended = True
        elif state == KazooState.CONNECTED:
            self.suspended = False
        elif state == KazooState.LOST:
            self.lost = True
            if self.on_lost is not None:
                self.on_lost(self)
