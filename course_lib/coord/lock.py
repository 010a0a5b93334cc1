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

Losing the session while holding the lock is not an exception at the moment it happens
(nothing runs then); ``ensure_held()`` raises ``LockLost`` at the next point of use, and
``on_lost`` is called from kazoo's event thread as soon as the client learns of it.
"""

from __future__ import annotations

import time
from typing import Callable, Optional

from kazoo.protocol.states import KazooState

from .base import CoordinationError
from .paths import check_name, check_timeout
from .waitlist import Entry, Waitlist


class LockLost(CoordinationError):
    """The lock may no longer be held: the session was suspended or has expired."""


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
        entry = self._waitlist.enter(self._kind, self.identifier.encode())
        try:
            got = self._waitlist.wait_turn(entry, self._blocked_by, deadline)
        except BaseException:
            self._abandon(entry)
            raise
        if not got:
            self._abandon(entry)
            return False
        self._entry = entry
        self.acquisitions += 1
        self.client.add_listener(self._on_state)
        return True

    def release(self) -> None:
        """Give the lock up (delete the entry).  Releasing a lock whose session was
        lost is allowed: there is nothing left to delete."""
        if self._entry is None:
            raise RuntimeError(f"lock {self.name!r} is not held")
        entry, self._entry = self._entry, None
        self.client.remove_listener(self._on_state)
        if not self.lost:
            self._waitlist.leave(entry)

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

    def _abandon(self, entry: Entry) -> None:
        if self.client.state != KazooState.LOST:
            self._waitlist.leave(entry)

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
