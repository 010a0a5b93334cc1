"""What every driver of a Raft server does, whatever hosts it: the application around
a sans-I/O :class:`RaftNode` (etcd raft's "the application" loop).

:class:`RaftDriver` owns the core, the key-value state machine (:mod:`.kv`, with client
sessions) and the client requests waiting on this server.  It handles each
:class:`Ready` in the order the contract requires:

1. :meth:`RaftDriver.persist` — the snapshot, entries and hard state reach stable
   storage (a subclass writes them: memory in the simulator, an fsynced WAL for real);
2. :meth:`RaftDriver.finish_ready` — only then send the messages, restore a received
   snapshot, apply the committed entries (answering the clients that wait on them),
   serve linearizable reads, react to a role change, then :meth:`RaftNode.advance`
   the Ready and compact the log once ``snapshot_threshold`` entries are applied.

A synchronous driver (the simulator) calls both back to back (:meth:`handle_ready`); an
asynchronous one (``course_lib.net``) runs ``persist`` off its event loop and calls
``finish_ready`` when the fsync is done, stepping the core meanwhile.

Subclasses provide the I/O: :meth:`send_message`, :meth:`reply`, :meth:`persist`,
:meth:`save_snapshot`.  What the driver reports to the system running it goes through
a :class:`HostEvents` object (public callbacks, no-ops by default).
"""

from __future__ import annotations

import random
from typing import Any, Optional

from .client import ClientRequest
from .errors import NotLeader
from .kv import ClientCommand, KVStateMachine
from .messages import Entry, EntryKind, NodeState, Snapshot
from .node import RaftConfig, RaftNode, Ready
from .storage import Storage

LEADER = NodeState.LEADER


class HostEvents:
    """Callbacks from a driver to whoever runs it (a cluster, a widget, a log).

    Every method is a no-op here; override those you need.  They are called from
    :meth:`RaftDriver.finish_ready`, after the Ready was persisted and sent.
    """

    def on_snapshot_installed(self, host: "RaftDriver", snap: Snapshot) -> None:
        """``host`` restored its state machine from a snapshot its leader sent."""

    def on_conf_applied(self, host: "RaftDriver", entry: Entry) -> None:
        """``host`` applied a committed membership change."""

    def on_soft_state(self, host: "RaftDriver", soft: tuple) -> None:
        """``host``'s ``(role, leader_id)`` changed."""

    def on_ready(self, host: "RaftDriver", rd: Ready) -> None:
        """``host`` handled ``rd`` (e.g. a safety monitor observes it)."""

    def on_compacted(self, host: "RaftDriver", snap: Snapshot) -> None:
        """``host`` replaced its log up to ``snap.index`` by a snapshot."""


class RaftDriver:
    """One Raft server's application: core + KV state machine + waiting clients."""

    def __init__(self, node_id: str, initial_voters: tuple, config: RaftConfig, *,
                 snapshot_threshold: Optional[int] = None, read_mode: str = "read_index",
                 events: Optional[HostEvents] = None, core_class=None, kv_factory=None) -> None:
        if read_mode not in ("read_index", "log"):
            raise ValueError(f"read_mode must be 'read_index' or 'log', got {read_mode!r}")
        self.node_id = node_id
        self.initial_voters = tuple(initial_voters)
        self.config = config
        self.snapshot_threshold = snapshot_threshold
        self.read_mode = read_mode
        self.events = events if events is not None else HostEvents()
        # another core with RaftNode's interface and its state machine (exercise 2's
        # learner-written node); None: the course's RaftNode and KVStateMachine
        self.core_class = core_class or RaftNode
        self.kv_factory = kv_factory or KVStateMachine
        self.core: Optional[RaftNode] = None
        self.kv = self.kv_factory()
        self._pending: dict = {}         # (session, seq) -> client address, leader only
        self._reads: dict = {}           # ctx -> (client, seq, key)
        self._read_seq = 0
        self.applied_log: list = []      # (index, term) applied in this incarnation
        self.snapshots_installed = 0

    # -- I/O, provided by the host ---------------------------------------------------------
    def persist(self, rd: Ready) -> None:
        """Put ``rd.snapshot``, ``rd.entries`` and ``rd.hard_state`` on stable storage."""
        raise NotImplementedError

    def send_message(self, msg) -> None:
        """Send one Raft message to ``msg.dst`` (called only after :meth:`persist`)."""
        raise NotImplementedError

    def reply(self, client, seq: int, ok: bool, result: Any = None, hint: Optional[str] = None) -> None:
        """Answer request ``seq`` of ``client`` (``ok=False``: not the leader; ``hint``)."""
        raise NotImplementedError

    def save_snapshot(self, snap: Snapshot) -> None:
        """Persist a snapshot taken locally by compaction."""
        raise NotImplementedError

    # -- lifecycle ---------------------------------------------------------------------------
    def boot(self, rng: random.Random, storage: Storage) -> None:
        """(Re)build the core and the state machine from ``storage``, as a process
        starting does: pending client requests are forgotten."""
        self.core = self.core_class(self.node_id, self.initial_voters, rng=rng,
                                    config=self.config, storage=storage)
        self.kv = self.kv_factory()
        if getattr(self.core, "snapshot", None) is not None:
            self.kv.restore(self.core.snapshot.data)
        self._pending = {}
        self._reads = {}

    # -- clients -----------------------------------------------------------------------------
    def handle_client_request(self, req: ClientRequest) -> None:
        """A client's ``op`` with its session ``(req.session, req.seq)``: answered at once
        (not the leader, or already applied: exactly once), or once committed."""
        core = self.core
        if core.state is not LEADER:
            self.reply(req.src, req.seq, False, None, core.leader_id)
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
            self.reply(req.src, req.seq, True, result)         # exactly once: answer from the session
            return
        if key in self._pending:
            self._pending[key] = req.src                        # already in our log: wait for it
            return
        try:
            core.propose(ClientCommand(req.session, req.seq, op))
        except NotLeader as e:
            self.reply(req.src, req.seq, False, None, e.leader_hint)
            return
        self._pending[key] = req.src

    def handle_client_requests(self, reqs) -> None:
        """Many requests at once (what one read from a connection brought): answered as
        :meth:`handle_client_request` would, in order, except that consecutive new
        writes are proposed together (:meth:`RaftNode.propose_many`: one AppendEntries
        per follower for the batch)."""
        core = self.core
        pending = self._pending
        batch: list = []                     # (key, client, command)
        for req in reqs:
            op = req.op
            if core.state is not LEADER or (op[0] == "get" and self.read_mode == "read_index"):
                self._propose_batch(batch)
                self.handle_client_request(req)
                continue
            key = (req.session, req.seq)
            done, result = self.kv.session_result(req.session, req.seq)
            if done:
                self.reply(req.src, req.seq, True, result)
                continue
            if key in pending:
                pending[key] = req.src
                continue
            pending[key] = req.src           # a duplicate later in this batch waits for it
            batch.append((key, ClientCommand(req.session, req.seq, op)))
        self._propose_batch(batch)

    def _propose_batch(self, batch: list) -> None:
        if not batch:
            return
        try:
            self.core.propose_many([cmd for _key, cmd in batch])
        except NotLeader as e:
            for key, _cmd in batch:
                client = self._pending.pop(key, None)
                if client is not None:
                    self.reply(client, key[1], False, None, e.leader_hint)
        batch.clear()

    # -- Ready: persist, send, apply, advance ----------------------------------------------------
    def handle_ready(self) -> None:
        """A synchronous turn: take the Ready, persist it, finish it."""
        rd = self.core.ready()
        self.persist(rd)
        self.finish_ready(rd)

    def finish_ready(self, rd: Ready, messages=None, applied: int = 0) -> None:
        """Everything after :meth:`persist`: send, apply, answer, advance, compact.

        ``messages``: those of ``rd`` still to send (default: all of them; a driver that
        sent a leader's AppendEntries while persisting passes the rest).  ``applied``:
        how many of ``rd.committed_entries`` the driver already applied while
        persisting (:meth:`stable_committed` says how many it may)."""
        core = self.core
        for m in (rd.messages if messages is None else messages):   # only after persisting
            self.send_message(m)
        events = self.events
        if rd.snapshot is not None:
            self.kv.restore(rd.snapshot.data)
            self.snapshots_installed += 1
            events.on_snapshot_installed(self, rd.snapshot)
        if len(rd.committed_entries) > applied:
            self.apply_entries(rd.committed_entries[applied:] if applied else rd.committed_entries)
        for ctx, index in rd.read_states:
            # applied >= index here: the entries up to it are applied within this Ready
            waiting = self._reads.pop(ctx, None)
            if waiting is not None:
                client, seq, key = waiting
                self.reply(client, seq, True, self.kv.read(key))
        core.advance(rd)
        if rd.soft_state is not None:
            events.on_soft_state(self, rd.soft_state)
            if rd.soft_state[0] is not LEADER and (self._pending or self._reads):
                hint = core.leader_id
                for (_s, seq), client in self._pending.items():
                    self.reply(client, seq, False, None, hint)
                for client, seq, _k in self._reads.values():
                    self.reply(client, seq, False, None, hint)
                self._pending = {}
                self._reads = {}
        events.on_ready(self, rd)
        if self.compaction_due():
            snap = core.compact(core.last_applied, self.kv.snapshot())
            self.save_snapshot(snap)
            events.on_compacted(self, snap)

    @staticmethod
    def stable_committed(rd: Ready) -> int:
        """How many of ``rd.committed_entries`` were persisted by *earlier* Readies, and
        so may be applied (and their clients answered) while ``rd`` is being persisted:
        committed means stored on a quorum, and these are on this server's disk too.
        (etcd's server applies in parallel with its WAL write the same way.)  Entries
        that ``rd`` itself persists — a single-server cluster commits an entry in the
        Ready that appends it — wait for :meth:`persist`; so does everything after a
        snapshot in ``rd`` (it must be restored first)."""
        committed = rd.committed_entries
        if not committed or rd.snapshot is not None:
            return 0
        if not rd.entries:
            return len(committed)
        first_unstable = rd.entries[0].index
        n = 0
        for e in committed:
            if e.index >= first_unstable:
                break
            n += 1
        return n

    def compaction_due(self) -> bool:
        """Compact once ``snapshot_threshold`` entries were applied since the last snapshot."""
        core = self.core
        return (self.snapshot_threshold is not None
                and core.last_applied - core.log.snapshot_index >= self.snapshot_threshold)

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
                        self.reply(client, cmd.seq, True, result)
            elif e.kind is EntryKind.CONFIG:
                self.events.on_conf_applied(self, e)

    def poke(self) -> None:
        """Handle whatever the core has ready after a direct call (operator actions)."""
        if self.core.has_ready():
            self.handle_ready()

    # -- views ---------------------------------------------------------------------------------
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
