"""What the course gives the learner's Raft node: the plumbing, not the protocol.

:class:`RaftBase` has the host interface of :class:`course_lib.raft.RaftNode` (the
constructor, ``has_ready`` / ``ready`` / ``advance``, the views the simulator and the
safety monitor read), so :class:`~course_lib.raft.SimCluster` hosts a subclass exactly
as it hosts the course's node.  The learner writes the protocol in a subclass:
``tick``, ``step``, ``propose``, ``propose_conf_change`` and the handlers they call.

The base keeps:

- ``self.log``, a :class:`~course_lib.raft.RaftLog` (1-based: ``log[i]``,
  ``log.last_index``, ``log.last_term``, ``log.term_at(i)``, ``log.append(entry)``,
  ``log.truncate_from(i)``, ``log.slice(lo, hi)``);
- an outbox: :meth:`send` queues a message; the host sends it after this step;
- persistence: :meth:`persist` records ``current_term``, ``voted_for`` and the log as
  they are now; the host writes what was recorded to stable storage **before** it sends
  the messages of the step (Figure 2: "updated on stable storage before responding to
  RPCs").  What was not recorded is not written: a crash loses it;
- the committed entries: everything up to ``commit_index`` not yet applied goes to the
  host's state machine after the step;
- the configuration: :attr:`voters` is the latest configuration in the log (the last
  ``EntryKind.CONFIG`` entry's ``command.voters``), committed or not (thesis §4.1), or
  the snapshot's, or the initial one;
- log compaction (§7): the host calls :meth:`compact` once enough entries are applied
  (the entries up to an index are replaced by a :class:`Snapshot` of the state machine,
  ``self.snapshot``); a follower that receives a leader's snapshot calls
  :meth:`install_snapshot`, and the host restores the state machine from it.

On a (re)start the constructor calls :meth:`restore` with what storage holds; the base's
version ignores it (task 5 writes it).
"""

from __future__ import annotations

import random
from typing import Any, Optional

from ...raft.errors import NotLeader
from ...raft.log import RaftLog
from ...raft.messages import EntryKind, HardState, NodeState, Snapshot
from ...raft.node import RaftConfig, Ready

FOLLOWER, CANDIDATE, LEADER = NodeState.FOLLOWER, NodeState.CANDIDATE, NodeState.LEADER


class RaftBase:
    """The plumbing of a sans-I/O Raft node; subclass it and write the protocol."""

    def __init__(self, node_id: str, voters, *, rng: random.Random,
                 config: Optional[RaftConfig] = None, storage=None) -> None:
        if not isinstance(rng, random.Random):
            raise ValueError("rng must be an injected random.Random (no global randomness)")
        self.id = node_id
        self.initial_voters: tuple = tuple(sorted(set(voters)))
        self.rng = rng
        self.config = config or RaftConfig()
        self.storage = storage
        # persistent state (Figure 2): on stable storage once persist() recorded it
        self.current_term = 0
        self.voted_for: Optional[str] = None
        self.log = RaftLog()
        # volatile state
        self.state = FOLLOWER
        self.leader_id: Optional[str] = None
        self.commit_index = 0
        self.last_applied = 0
        self.pending_conf_index = 0      # index of the latest membership change (task 4)
        self.snapshot: Optional[Snapshot] = None    # the latest snapshot (§7)
        # plumbing
        self._outbox: list = []
        hard, snapshot, entries = storage.load() if storage is not None else (None, None, [])
        self._stored_hs = hard if hard is not None else HardState(0, None)
        self._stored_log: list = list(entries)      # the entries after the stored snapshot
        self._recorded_hs = self._stored_hs
        self._recorded_log = self._stored_log
        self._dirty = False
        self._pending_snapshot: Optional[Snapshot] = None
        self._soft = (FOLLOWER, None)
        self._outstanding: Optional[Ready] = None
        self._conf_key = None
        self._conf = self.initial_voters
        if snapshot is not None:
            self.snapshot = snapshot
            self.last_applied = snapshot.index          # the host restores the state machine
        self.restore(hard, snapshot, list(entries))

    # -- for the learner ----------------------------------------------------------------
    def restore(self, hard_state: Optional[HardState], snapshot: Optional[Snapshot],
                entries: list) -> None:
        """Recover ``current_term``, ``voted_for`` and the log from what storage holds
        (``hard_state`` is None on a first start; ``snapshot`` None until the log was
        compacted; ``entries``: the log after the snapshot).  Task 5 writes it."""

    def send(self, msg) -> None:
        """Queue ``msg``; the host sends it after this step, once storage is written."""
        self._outbox.append(msg)

    def persist(self) -> None:
        """Record ``current_term``, ``voted_for`` and the log as they are now: the host
        writes them to stable storage before sending this step's messages."""
        self._recorded_hs = HardState(self.current_term, self.voted_for)
        self._recorded_log = self.log.entries()
        self._dirty = True

    @property
    def voters(self) -> tuple:
        """The latest configuration in the log, committed or not (thesis §4.1)."""
        log = self.log
        last = log.last_index
        key = (last, log.snapshot_index, log[last] if last > log.snapshot_index else None)
        if key != self._conf_key:
            self._conf_key = key
            self._conf = self.conf_at(log.last_index)
        return self._conf

    def conf_at(self, index: int) -> tuple:
        """The configuration in force after entry ``index``."""
        log = self.log
        for i in range(min(index, log.last_index), log.snapshot_index, -1):
            e = log[i]
            if e.kind is EntryKind.CONFIG:
                return tuple(e.command.voters)
        if self.snapshot is not None and index >= self.snapshot.index:
            return tuple(self.snapshot.voters)
        return self.initial_voters

    def install_snapshot(self, snap: Snapshot) -> None:
        """A leader's snapshot replaces this server's state up to ``snap.index`` (§7):
        the host persists it and restores the state machine from it.  Call it after
        making the log start after the snapshot (``log.reset`` or ``log.compact``)."""
        if self.log.snapshot_index != snap.index:
            raise ValueError(f"{self.id}: install_snapshot({snap.index}) but the log starts "
                             f"after {self.log.snapshot_index}: reset or compact it first")
        self.snapshot = snap
        self._pending_snapshot = snap
        self.last_applied = max(self.last_applied, snap.index)
        self.commit_index = max(self.commit_index, snap.index)
        self._dirty = True

    @property
    def promotable(self) -> bool:
        """Only a member of its own configuration may campaign (thesis §4.2.2)."""
        return self.id in self.voters

    # -- the protocol: the learner's subclass --------------------------------------------
    def tick(self) -> None:
        raise NotImplementedError("tick() is not written yet")

    def step(self, m) -> None:
        raise NotImplementedError("step() is not written yet")

    def propose(self, command: Any) -> tuple:
        raise NotImplementedError("propose() is not written yet")

    def propose_conf_change(self, cc) -> tuple:
        raise NotImplementedError("propose_conf_change() is not written yet")

    def propose_many(self, commands) -> list:
        return [self.propose(c) for c in commands]

    def read_index(self, ctx) -> None:
        raise NotLeader(self.id, self.leader_id)   # reads go through the log here

    # -- the host's side (etcd's Ready contract) -------------------------------------------
    def has_ready(self) -> bool:
        if self._outstanding is not None:
            return False
        return bool(self._outbox or self._dirty or self.commit_index > self.last_applied
                    or self._pending_snapshot is not None
                    or self._soft != (self.state, self.leader_id))

    def ready(self) -> Ready:
        if self._outstanding is not None:
            raise RuntimeError(f"{self.id}: ready() called again before advance()")
        hs = None
        entries: tuple = ()
        snap, self._pending_snapshot = self._pending_snapshot, None
        if snap is not None:
            # what storage.save_snapshot keeps: the entries after it, if it holds its last one
            kept = [e for e in self._stored_log if e.index > snap.index]
            holds = any(e.index == snap.index and e.term == snap.term for e in self._stored_log)
            self._stored_log = kept if holds else []
        if self._dirty:
            self._dirty = False
            if self._recorded_hs != self._stored_hs:
                hs = self._stored_hs = self._recorded_hs
            entries = _new_suffix(self._stored_log, self._recorded_log)
            if entries:
                first = entries[0].index
                self._stored_log = [e for e in self._stored_log if e.index < first] + list(entries)
        committed: tuple = ()
        if self.commit_index > self.last_applied:
            if self.commit_index > self.log.last_index:
                raise ValueError(f"{self.id}: commit_index {self.commit_index} is past the end "
                                 f"of its log (last index {self.log.last_index})")
            committed = tuple(self.log.slice(self.last_applied + 1, self.commit_index))
        soft = None
        if self._soft != (self.state, self.leader_id):
            soft = self._soft = (self.state, self.leader_id)
        rd = Ready(hs, snap, entries, tuple(self._outbox), committed, (), soft)
        self._outbox = []
        self._outstanding = rd
        return rd

    def advance(self, rd: Ready) -> None:
        if rd is not self._outstanding:
            raise RuntimeError(f"{self.id}: advance() of a Ready that is not the outstanding one")
        self._outstanding = None
        if rd.committed_entries:
            self.last_applied = max(self.last_applied, rd.committed_entries[-1].index)

    def compact(self, index: int, data: Any) -> Snapshot:
        """The host's log compaction (§7): entries up to ``index`` (applied) become a
        snapshot holding the state machine's ``data``; the host saves it."""
        if index > self.last_applied or index <= self.log.snapshot_index:
            raise ValueError(f"{self.id}: cannot snapshot at {index} (applied {self.last_applied}, "
                             f"compacted to {self.log.snapshot_index})")
        term = self.log.term_at(index)
        snap = Snapshot(index, term, self.conf_at(index), data)
        self.log.compact(index, term)
        self.snapshot = snap
        self._stored_log = [e for e in self._stored_log if e.index > index]
        self._recorded_log = [e for e in self._recorded_log if e.index > index]
        return snap


def _new_suffix(stored: list, recorded: list) -> tuple:
    """The entries of ``recorded`` from the first one that differs from ``stored``
    (both lists of entries with absolute indexes, each contiguous)."""
    if not recorded:
        return ()
    base = stored[0].index if stored else recorded[0].index
    k = len(recorded)
    while k > 0:
        e = recorded[k - 1]
        pos = e.index - base
        if 0 <= pos < len(stored) and (stored[pos] is e or stored[pos] == e):
            break
        k -= 1
    return tuple(recorded[k:])
