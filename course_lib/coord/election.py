"""``LeaderElection``: candidates queue up; the first one leads until it leaves or dies.

Layout: ``/NAMESPACE/elections/NAME/<guid>__candidate__<seq>``, data = the candidate's
identifier.  The candidate with the lowest sequence number leads.  Each other candidate
watches only the candidate just ahead of it; when that one goes (resigned, crashed,
session expired) the watcher re-checks, and becomes leader if nobody is left ahead.  A
leader's session dying ends its leadership within the session timeout: that is the bound
on fail-over time.

Unlike kazoo's ``Election`` (whose ``run()`` blocks the caller until it wins, then runs a
function while leading), this one joins without blocking and calls ``on_elected`` on a
thread of its own, so a notebook, a widget and a server process can all use it; and it
answers "who leads now?" for anyone (``leader()``), candidate or not.
"""

from __future__ import annotations

import threading
from typing import Callable, Optional

from kazoo.exceptions import NoNodeError

from .base import CoordinationError
from .paths import check_name, check_timeout
from .waitlist import Entry, Waitlist


class LeaderElection:
    """``e = LeaderElection(zk, "primary", "node-a", on_elected=serve); e.join()``."""

    def __init__(self, zk, name: str, identifier: str, namespace: Optional[str] = None,
                 on_elected: Optional[Callable[["LeaderElection"], None]] = None,
                 op_timeout: float = 10.0):
        check_name(name, "election name")
        if not isinstance(identifier, str) or not identifier:
            raise ValueError(f"identifier must be a non-empty string, not {identifier!r}")
        self.name = name
        self.identifier = identifier
        self.on_elected = on_elected
        self._waitlist = Waitlist(zk, "elections", name, namespace=namespace, op_timeout=op_timeout)
        self.client = self._waitlist.client
        self._entry: Optional[Entry] = None
        self._elected = threading.Event()
        self._lock = threading.Lock()

    @property
    def is_leader(self) -> bool:
        return self._elected.is_set() and self._entry is not None

    def join(self) -> None:
        """Become a candidate (returns at once)."""
        with self._lock:
            if self._entry is not None:
                raise RuntimeError(f"{self.identifier!r} is already a candidate in {self.name!r}")
            self._entry = self._waitlist.enter("candidate", self.identifier.encode())
        self._check()

    def resign(self) -> None:
        """Leave the election (and leadership, if held)."""
        with self._lock:
            entry, self._entry = self._entry, None
            self._elected.clear()
        if entry is not None:
            self._waitlist.leave(entry)

    def wait_until_elected(self, timeout: Optional[float] = None) -> bool:
        return self._elected.wait(check_timeout(timeout))

    def leader(self) -> Optional[str]:
        """The current leader's identifier, or None when there is no candidate."""
        for entry in self._waitlist.entries():
            data = self._waitlist.data(entry)
            if data is not None:
                return data.decode()
        return None

    def candidates(self) -> list[str]:
        """Identifiers of all candidates, leader first."""
        found = (self._waitlist.data(e) for e in self._waitlist.entries())
        return [d.decode() for d in found if d is not None]

    def _check(self, _event=None) -> None:
        # Called at join and by the watch on the candidate ahead (kazoo's event thread):
        # never block there — work that may wait goes to a thread.
        threading.Thread(target=self._evaluate, daemon=True,
                         name=f"election-{self.name}-{self.identifier}").start()

    def _evaluate(self) -> None:
        try:
            with self._lock:
                mine = self._entry
                if mine is None or self._elected.is_set():
                    return
                entries = self._waitlist.entries()
                if mine not in entries:
                    raise CoordinationError(f"candidate {self.identifier!r} vanished: session expired")
                ahead = [e for e in entries if e < mine]
                if ahead:
                    if self._waitlist.watch(ahead[-1], self._check):
                        return
                    # It went between listing and watching: look again.
                    threading.Thread(target=self._evaluate, daemon=True).start()
                    return
                self._elected.set()
        except (CoordinationError, NoNodeError):
            return
        if self.on_elected is not None:
            self.on_elected(self)

