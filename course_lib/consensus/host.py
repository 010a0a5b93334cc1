"""The simulator driver of one Paxos node: the core plus its stable storage.

:class:`PaxosHost` feeds the sans-I/O :class:`PaxosNode` ticks and messages and handles
each :class:`Ready` in order — **persist** the hard state, **send** the messages,
**report** a value learned.  The stored :class:`HardState` survives a crash; the core
does not: on a crash it is rebuilt from storage, as a restarted process would be.
"""

from __future__ import annotations

from typing import Optional

from ..sim import Process
from .messages import HardState
from .paxos import PaxosConfig, PaxosNode


class PaxosHost(Process):
    def __init__(self, node_id: str, nodes: tuple, cluster, config: PaxosConfig) -> None:
        super().__init__(node_id)
        self.nodes = tuple(nodes)
        self.cluster = cluster
        self.config = config
        self.stored: Optional[HardState] = None       # stable storage: survives crashes
        self.core: Optional[PaxosNode] = None
        self.writes = 0

    def _boot(self) -> None:
        self.core = PaxosNode(self.node_id, self.nodes, rng=self.sim.random.stream(f"paxos:{self.node_id}"),
                              config=self.config, hard_state=self.stored)

    def on_start(self) -> None:
        self._boot()

    def on_crash(self) -> None:
        self._boot()                      # volatile state is gone; what storage holds remains

    def on_tick(self) -> None:
        core = self.core
        core.tick()
        if core.has_ready():
            self.handle_ready()

    def on_message(self, src: str, msg) -> None:
        self.core.step(msg)
        if self.core.has_ready():
            self.handle_ready()

    def handle_ready(self) -> None:
        rd = self.core.ready()
        if rd.hard_state is not None:
            self.stored = rd.hard_state
            self.writes += 1
            self.cluster._on_persist(self, rd.hard_state)
        send = self.sim.network.send
        me = self.node_id
        for m in rd.messages:                       # only after persisting
            send(me, m.dst, m)
        if rd.decided is not None:
            self.cluster._on_decided(self, rd.decided)

    def poke(self) -> None:
        """Handle whatever the core has ready after a direct call (a client's propose)."""
        if self.core.has_ready():
            self.handle_ready()

    @property
    def alive(self) -> bool:
        return self.sim.is_alive(self.node_id)

    def __repr__(self) -> str:
        return f"<PaxosHost {self.node_id} {'up' if self.alive else 'down'} {self.core!r}>"
