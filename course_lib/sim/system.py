"""``SimulatedSystem``: the base of every cluster that runs on a :class:`Simulation`.

A cluster (Raft's ``SimCluster``, ``PaxosCluster``, the chapter's consensus) owns one
``Simulation`` in ``self.sim``; time, the network and the trace are the simulation's,
and this base exposes them under the same names everywhere.
"""

from __future__ import annotations

from typing import Callable

from .simulation import Simulation


class SimulatedSystem:
    sim: Simulation

    @property
    def now(self) -> float:
        """Current simulated time in ms."""
        return self.sim.now

    @property
    def network(self):
        return self.sim.network

    @property
    def trace(self):
        """Every event so far: ``TraceEvent(time, kind, node, details)``."""
        return self.sim.trace

    def trace_digest(self) -> str:
        """A digest of the trace: same seed and same calls → same digest."""
        return self.sim.trace_digest()

    def run_for(self, ms: float) -> None:
        """Advance simulated time by ``ms`` (``ValueError`` if negative)."""
        self.sim.run_for(ms)

    def run_until(self, predicate: Callable[[], bool], timeout_ms: float) -> bool:
        """Run until ``predicate()`` holds (checked after every event) or ``timeout_ms``
        pass; True if it held."""
        return self.sim.run_until(predicate, timeout_ms)

    # -- manual delivery ("you are the network") -------------------------------------------
    def set_manual_delivery(self, on: bool) -> None:
        """Stop (``True``) or restart (``False``) automatic message delivery."""
        self.sim.set_manual_delivery(on)

    @property
    def manual_delivery(self) -> bool:
        return self.sim.network.manual

    def held_messages(self) -> list:
        """Messages waiting for :meth:`deliver` / :meth:`drop_message`, in send order."""
        return self.sim.held_messages()

    def deliver(self, mid: int) -> None:
        """Deliver the held message ``mid`` now."""
        self.sim.deliver_held(mid)

    def drop_message(self, mid: int) -> None:
        """Lose the held message ``mid``."""
        self.sim.drop_held(mid)

    def duplicate_message(self, mid: int) -> int:
        """Put a second copy of the held message ``mid`` on the wire (a duplicate);
        returns the copy's id."""
        return self.sim.duplicate_held(mid)
