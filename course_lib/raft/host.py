"""The simulator driver of one Raft server: the core + storage + key-value store.

:class:`RaftHost` is a :class:`~.driver.RaftDriver` hosted as a simulator
:class:`~course_lib.sim.Process`: ticks and messages come from the simulation, each
:class:`Ready` is handled synchronously — **persist** into :class:`MemoryStorage`,
**send** on the simulated network, **apply** — and advanced at once.  What it reports
(role changes, applied membership changes, installed snapshots, each Ready for the
safety monitor) goes to its :class:`~.driver.HostEvents` (the :class:`SimCluster`).

Storage survives a crash; the core, the state machine and the pending client requests
do not: on a crash the core is rebuilt from storage, as a restarted process would.

``core_class`` / ``kv_factory`` (default: the course's :class:`~.node.RaftNode` and
:class:`~.kv.KVStateMachine`) host another core with the same interface — exercise 2's
learner-written node — in the same place; the default path is unchanged.
"""

from __future__ import annotations

from typing import Optional

from ..sim import Process
from .client import ClientReply, ClientRequest
from .driver import HostEvents, RaftDriver
from .messages import NodeState
from .node import RaftConfig
from .storage import MemoryStorage

LEADER = NodeState.LEADER


class RaftHost(Process, RaftDriver):
    def __init__(self, node_id: str, initial_voters: tuple, events: HostEvents, config: RaftConfig,
                 snapshot_threshold: Optional[int], read_mode: str,
                 core_class=None, kv_factory=None) -> None:
        Process.__init__(self, node_id)
        RaftDriver.__init__(self, node_id, initial_voters, config,
                            snapshot_threshold=snapshot_threshold, read_mode=read_mode,
                            events=events, core_class=core_class, kv_factory=kv_factory)
        self.cluster = events             # the SimCluster (its safety monitor reads the peers)
        self.storage = MemoryStorage()

    # -- lifecycle -------------------------------------------------------------------------
    def _boot(self) -> None:
        self.boot(self.sim.random.stream(f"raft:{self.node_id}"), self.storage)

    def on_start(self) -> None:
        self._boot()

    def on_crash(self) -> None:
        self._boot()                      # volatile state is gone; what storage holds remains

    def on_restart(self) -> None:
        pass                              # rebuilt from storage at the crash already

    # -- inputs ------------------------------------------------------------------------------
    def on_tick(self) -> None:
        core = self.core
        core.tick()
        if core.has_ready():
            self.handle_ready()

    def on_message(self, src: str, msg) -> None:
        if type(msg) is ClientRequest:
            self.handle_client_request(msg)
        else:
            self.core.step(msg)
        if self.core.has_ready():
            self.handle_ready()

    # -- I/O ---------------------------------------------------------------------------------
    def persist(self, rd) -> None:
        storage = self.storage
        if rd.snapshot is not None:
            storage.save_snapshot(rd.snapshot)
        if rd.entries:
            storage.append(rd.entries)
        if rd.hard_state is not None:
            storage.save_hard_state(rd.hard_state)

    def send_message(self, msg) -> None:
        self.sim.network.send(self.node_id, msg.dst, msg)

    def reply(self, client: str, seq: int, ok: bool, result=None, hint=None) -> None:
        self.sim.send(self.node_id, client, ClientReply(self.node_id, client, seq, ok, result, hint))

    def save_snapshot(self, snap) -> None:
        self.storage.save_snapshot(snap)

    # -- views ---------------------------------------------------------------------------------
    @property
    def alive(self) -> bool:
        return self.sim.is_alive(self.node_id)

    @property
    def paused(self) -> bool:
        return self.sim.is_paused(self.node_id)

    def __repr__(self) -> str:
        c = self.core
        return (f"<RaftHost {self.node_id} {'up' if self.alive else 'down'} {c.state.value} "
                f"term={c.current_term} last={c.log.last_index} commit={c.commit_index}>")
