"""The simulator driver of one Raft server: the core + storage + key-value store.

:class:`RaftHost` is the loop around a sans-I/O :class:`RaftNode` (etcd's "the
application"): feed it ticks and messages, then handle its :class:`Ready` —
**persist** (snapshot, entries, hard state), **send**, **apply** — and answer clients.

Storage survives a crash; the core, the state machine and the pending client requests
do not: on a crash the core is rebuilt from storage, as a restarted process would.
"""

from __future__ import annotations

from typing import Optional

from ..sim import Process
from .client import ClientReply, ClientRequest
from .errors import NotLeader
from .kv import ClientCommand, KVStateMachine
from .messages import EntryKind, NodeState
from .node import RaftConfig, RaftNode
from .storage import MemoryStorage

LEADER = NodeState.LEADER


class RaftHost(Process):
    def __init__(self, node_id: str, initial_voters: tuple, cluster, config: RaftConfig,
                 snapshot_threshold: Optional[int], read_mode: str) -> None:
        super().__init__(node_id)
        self.cluster = cluster
        self.initial_voters = tuple(initial_voters)
        self.config = config
        self.snapshot_threshold = snapshot_threshold
        self.read_mode = read_mode
        self.storage = MemoryStorage()
        self.core: Optional[RaftNode] = None
        self.kv = KVStateMachine()
        self._pending: dict = {}         # (session, seq) -> client address, leader only
        self._reads: dict = {}           # ctx -> (client, seq, key)
        self._read_seq = 0
        self.applied_log: list = []      # (index, term) applied in this incarnation
        self.snapshots_installed = 0

    # -- lifecycle -------------------------------------------------------------------------
    def _boot(self) -> None:
        self.core = RaftNode(self.node_id, self.initial_voters,
                             rng=self.sim.random.stream(f"raft:{self.node_id}"),
                             config=self.config, storage=self.storage)
        self.kv = KVStateMachine()
        if self.core.snapshot is not None:
            self.kv.restore(self.core.snapshot.data)
        self._pending = {}
        self._reads = {}

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

    def handle_client_request(self, req: ClientRequest) -> None:
        core = self.core
        if core.state is not LEADER:
            self._reply(req.src, req.seq, False, None, core.leader_id)
            return
        op = req.op
        if op[0] == "get" and self.read_mode == "read_index":
            self._read_seq += 1
            ctx = (self.node_id, self._read_seq)
            self._reads[ctx] = (req.src, req.seq, op[1])
            core.read_index(ctx)
            return
        key = (req.session, req.seq)
        done, result = self.kv.session_result(req.session, req.seq)
        if done:
            self._reply(req.src, req.seq, True, result)        # exactly once: answer from the session
            return
        if key in self._pending:
            self._pending[key] = req.src                        # already in our log: wait for it
            return
        try:
            core.propose(ClientCommand(req.session, req.seq, op))
        except NotLeader as e:
            self._reply(req.src, req.seq, False, None, e.leader_hint)
            return
        self._pending[key] = req.src

    def _reply(self, client: str, seq: int, ok: bool, result=None, hint=None) -> None:
        self.sim.send(self.node_id, client, ClientReply(self.node_id, client, seq, ok, result, hint))

    # -- Ready: persist, send, apply ----------------------------------------------------------
    def handle_ready(self) -> None:
        core = self.core
        rd = core.ready()
        storage = self.storage
        if rd.snapshot is not None:
            storage.save_snapshot(rd.snapshot)
        if rd.entries:
            storage.append(rd.entries)
        if rd.hard_state is not None:
            storage.save_hard_state(rd.hard_state)
        send = self.sim.network.send
        me = self.node_id
        for m in rd.messages:                                   # only after persisting
            send(me, m.dst, m)
        if rd.snapshot is not None:
            self.kv.restore(rd.snapshot.data)
            self.snapshots_installed += 1
            self.cluster._on_snapshot_installed(self, rd.snapshot)
        if rd.committed_entries:
            self.apply_entries(rd.committed_entries)
        for ctx, index in rd.read_states:
            # applied == commit >= index here: entries are applied within this Ready
            waiting = self._reads.pop(ctx, None)
            if waiting is not None:
                client, seq, key = waiting
                self._reply(client, seq, True, self.kv.read(key))
        if rd.soft_state is not None:
            self.cluster._on_soft_state(self, rd.soft_state)
            if rd.soft_state[0] is not LEADER and (self._pending or self._reads):
                hint = core.leader_id
                for (_s, seq), client in self._pending.items():
                    self._reply(client, seq, False, None, hint)
                for client, seq, _k in self._reads.values():
                    self._reply(client, seq, False, None, hint)
                self._pending = {}
                self._reads = {}
        monitor = self.cluster.monitor
        if monitor is not None:
            monitor.observe(self, rd)
        if (self.snapshot_threshold is not None
                and core.last_applied - core.log.snapshot_index >= self.snapshot_threshold):
            snap = core.compact(core.last_applied, self.kv.snapshot())
            storage.save_snapshot(snap)
            self.sim.trace.record(self.sim.now, "snapshot", me, (snap.index, snap.term))

    def apply_entries(self, entries) -> None:
        kv = self.kv
        pending = self._pending
        for e in entries:
            if e.kind is EntryKind.NORMAL:
                cmd = e.command
                result = kv.apply(cmd)
                if pending:
                    client = pending.pop((cmd.client_id, cmd.seq), None)
                    if client is not None:
                        self._reply(client, cmd.seq, True, result)
            elif e.kind is EntryKind.CONFIG:
                self.cluster._on_conf_applied(self, e)

    # -- operator actions ---------------------------------------------------------------------
    def poke(self) -> None:
        """Handle whatever the core has ready after a direct call (operator actions)."""
        if self.core.has_ready():
            self.handle_ready()

    # -- views ---------------------------------------------------------------------------------
    @property
    def alive(self) -> bool:
        return self.sim.is_alive(self.node_id)

    @property
    def paused(self) -> bool:
        return self.sim.is_paused(self.node_id)

    @property
    def state(self) -> NodeState:
        return self.core.state

    @property
    def current_term(self) -> int:
        return self.core.current_term

    @property
    def voted_for(self):
        return self.core.voted_for

    @property
    def log(self):
        return self.core.log

    @property
    def commit_index(self) -> int:
        return self.core.commit_index

    @property
    def last_applied(self) -> int:
        return self.core.last_applied

    @property
    def leader_id(self):
        return self.core.leader_id

    @property
    def voters(self) -> tuple:
        return self.core.voters

    def __repr__(self) -> str:
        c = self.core
        return (f"<RaftHost {self.node_id} {'up' if self.alive else 'down'} {c.state.value} "
                f"term={c.current_term} last={c.log.last_index} commit={c.commit_index}>")
