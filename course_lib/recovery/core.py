"""Primary-backup replication as a deterministic state machine (no clock, no I/O).

One :class:`Replica` per node.  The host calls ``become_primary`` / ``propose`` /
``step`` / ``detach`` and carries out the :class:`~.records.Ready` each returns (persist,
then send, then acknowledge).  The protocol:

1. **Write** (primary): ``propose(key, value)`` gives the write the next sequence number
   and the primary's epoch, persists it, and sends it to every attached backup.
2. **Acknowledge**: a write is *committed* — applied and acknowledged to its client —
   once ``acks`` backups have persisted it (``Ack``) and the primary has too.  Writes
   commit in sequence order.  With no backups attached beyond ``acks`` the primary
   refuses writes (``NotEnoughReplicas``) rather than acknowledge what one crash loses.
3. **Catch-up**: a backup attaches with ``CatchUp(last_seq, last_epoch)``.  If the
   primary's log holds that entry with that epoch (the logs match there, as in Raft's
   log-matching rule, §5.3), it sends the entries after it; otherwise — the backup is
   behind the compacted log, or holds entries of a deposed primary that were never
   committed — it sends a snapshot of its applied state and the entries after it.
4. **Fencing**: every message carries the sender's epoch; a replica remembers the
   highest epoch it has seen (persisted) and answers an older primary with ``Refuse``,
   which deposes it.  A deposed primary never commits again: a write is committed only
   on ``acks >= 1`` acknowledgements from backups that all follow the newest epoch.

Contract on the epoch: ``become_primary(epoch)`` needs an epoch larger than any this
replica has seen; the host gets it from the election (a ZooKeeper znode version).

What primary-backup with ``acks = k`` guarantees: an acknowledged write is on the
primary and on ``k`` backups.  It survives the primary's crash if the new primary is one
of those backups — certain when ``k`` is the number of backups (the hot-standby set-up of
the lesson: one primary, one standby, ``k = 1``).
"""

from __future__ import annotations

from typing import Any, Optional

from .log import ReplicaLog
from .records import (Ack, CatchUp, LogEntry, NotEnoughReplicas, NotPrimary, Ready, Refuse,
                      Replicate, Role, Snapshot, check_count, check_json_value, check_key)


class Replica:
    """One node's replication state; see the module docstring for the protocol."""

    def __init__(self, node_id: str, acks: int = 1, *, epoch: int = 0,
                 snapshot: Optional[Snapshot] = None, entries=()):
        if not isinstance(node_id, str) or not node_id:
            raise ValueError(f"node_id must be a non-empty string, not {node_id!r}")
        self.node_id = node_id
        self.acks = check_count("acks", acks)
        self.epoch = check_count("epoch", epoch)
        self.log = ReplicaLog(snapshot, entries)
        if self.log.last_epoch > self.epoch:
            raise ValueError(f"epoch {epoch} is below the log's last epoch {self.log.last_epoch}")
        self.role = Role.BACKUP
        self.commit_seq = self.log.applied_seq
        self.primary: Optional[str] = None   # a backup's primary (the sender it follows)
        self.match: dict[str, int] = {}      # a primary's attached backups -> highest acked seq

    # -- read-only views ------------------------------------------------------------

    @property
    def state(self) -> dict:
        """The committed state (a copy)."""
        return dict(self.log.state)

    @property
    def last_seq(self) -> int:
        return self.log.last_seq

    def snapshot(self) -> Snapshot:
        """A consistent snapshot of the committed state (state + its sequence number)."""
        return self.log.applied_snapshot()

    # -- primary --------------------------------------------------------------------

    def become_primary(self, epoch: int) -> Ready:
        """Lead epoch ``epoch``.  Everything in the local log is committed: with
        ``acks`` = every backup, each acknowledged write is in it."""
        check_count("epoch", epoch, minimum=1)
        if epoch <= self.epoch:
            raise ValueError(f"epoch {epoch} is not above the highest epoch seen, {self.epoch}")
        self.epoch = epoch
        self.role = Role.PRIMARY
        self.primary = None
        self.match = {}
        self._commit(self.log.last_seq)
        return Ready(epoch=epoch)

    def propose(self, key: str, value: Any) -> tuple[int, Ready]:
        """Start replicating ``key = value``; returns its sequence number and the Ready.
        The write is acknowledged when its number appears in a later ``Ready.committed``."""
        check_key(key)
        check_json_value(value)
        if self.role is not Role.PRIMARY:
            raise NotPrimary(f"{self.node_id} is {self.role.value}, not primary")
        if len(self.match) < self.acks:
            raise NotEnoughReplicas(f"{self.node_id} has {len(self.match)} backup(s) attached; "
                                    f"writes need {self.acks} acknowledgement(s)")
        prev_seq, prev_epoch = self.log.last_seq, self.log.last_epoch
        entry = LogEntry(prev_seq + 1, self.epoch, key, value)
        self.log.append(entry)
        messages = tuple((node, Replicate(self.node_id, self.epoch, prev_seq, prev_epoch,
                                          (entry,), self.commit_seq)) for node in self.match)
        return entry.seq, Ready(entries=(entry,), messages=messages, committed=self._maybe_commit())

    def fence(self, node: str) -> Ready:
        """Tell ``node`` — the primary this replica followed before it was promoted —
        that epoch ``self.epoch`` has begun: ``node`` steps down on receiving it."""
        if self.role is not Role.PRIMARY:
            raise ValueError(f"{self.node_id} is {self.role.value}: only a primary fences")
        if node == self.node_id:
            raise ValueError(f"{self.node_id} cannot fence itself")
        return Ready(messages=((node, Refuse(self.node_id, self.epoch)),))

    def detach(self, node: str) -> Ready:
        """The connection to backup ``node`` is gone: stop counting on it."""
        self.match.pop(node, None)
        return Ready()

    def _maybe_commit(self) -> tuple:
        if self.role is not Role.PRIMARY or len(self.match) < self.acks:
            return ()
        acked = sorted(self.match.values(), reverse=True)
        target = self.log.last_seq if self.acks == 0 else acked[self.acks - 1]
        return self._commit(target)

    def _commit(self, target: int) -> tuple:
        target = min(target, self.log.last_seq)
        if target <= self.commit_seq:
            return ()
        committed = tuple(range(self.commit_seq + 1, target + 1))
        self.commit_seq = target
        self.log.apply_through(target)
        return committed

    def _catch_up(self, msg: CatchUp) -> Ready:
        have = self.log.epoch_at(msg.last_seq)
        suffix = self.log.entries_after(msg.last_seq) if have == msg.last_epoch else None
        if suffix is not None:
            reply = Replicate(self.node_id, self.epoch, msg.last_seq, msg.last_epoch,
                              tuple(suffix), self.commit_seq)
            self.match[msg.node] = msg.last_seq
        else:
            snap = self.snapshot()
            reply = Replicate(self.node_id, self.epoch, snap.seq, snap.epoch,
                              tuple(self.log.entries_after(snap.seq)), self.commit_seq, snap)
            self.match[msg.node] = 0
        return Ready(messages=((msg.node, reply),), committed=self._maybe_commit())

    # -- every role -----------------------------------------------------------------

    def step(self, msg) -> Ready:
        """Handle one message from a peer."""
        if isinstance(msg, Replicate):
            return self._step_replicate(msg)
        if msg.epoch > self.epoch:
            return self._step_down(msg.epoch)
        if isinstance(msg, CatchUp):
            return self._catch_up(msg) if self.role is Role.PRIMARY else Ready()
        if isinstance(msg, Ack):
            if self.role is not Role.PRIMARY or msg.epoch != self.epoch or msg.node not in self.match:
                return Ready()
            self.match[msg.node] = max(self.match[msg.node], msg.seq)
            return Ready(committed=self._maybe_commit())
        if isinstance(msg, Refuse):
            return Ready()
        raise ValueError(f"unknown message {msg!r}")

    def _step_down(self, epoch: int) -> Ready:
        """A higher epoch exists: a primary is deposed (it commits nothing more)."""
        self.epoch = epoch
        if self.role is Role.PRIMARY:
            self.role = Role.DEPOSED
            self.match = {}
        return Ready(epoch=epoch)

    def follow(self, primary: str, epoch: int) -> Ready:
        """Become a backup of ``primary`` (epoch ``epoch``, from the election) and ask it
        for what we miss.  Raising our epoch first fences every older primary."""
        check_count("epoch", epoch)
        if epoch < self.epoch:
            raise ValueError(f"epoch {epoch} is older than the highest seen, {self.epoch}")
        if primary == self.node_id:
            raise ValueError(f"{self.node_id} cannot follow itself")
        changed = epoch > self.epoch
        self.epoch = epoch
        self.role = Role.BACKUP
        self.primary = primary
        self.match = {}
        msg = CatchUp(self.node_id, epoch, self.log.last_seq, self.log.last_epoch)
        return Ready(epoch=epoch if changed else None, messages=((primary, msg),))

    def _step_replicate(self, msg: Replicate) -> Ready:
        if msg.epoch < self.epoch:
            return Ready(messages=((msg.node, Refuse(self.node_id, self.epoch)),))
        new_epoch = msg.epoch if msg.epoch > self.epoch else None
        if self.role is Role.PRIMARY and msg.epoch == self.epoch:
            raise ValueError(f"two primaries in epoch {msg.epoch}: {self.node_id} and {msg.node}")
        self.epoch = msg.epoch
        self.role = Role.BACKUP
        self.primary = msg.node
        self.match = {}
        installed = None
        if msg.snapshot is not None:
            self.log.install(msg.snapshot)
            self.commit_seq = msg.snapshot.seq
            installed = msg.snapshot
        if self.log.epoch_at(msg.prev_seq) != msg.prev_epoch:
            ask = CatchUp(self.node_id, self.epoch, self.log.last_seq, self.log.last_epoch)
            return Ready(epoch=new_epoch, snapshot=installed, messages=((msg.node, ask),))
        fresh = []
        for entry in msg.entries:
            have = self.log.epoch_at(entry.seq)
            if have == entry.epoch:
                continue  # a duplicate (a resend after a catch-up)
            if have is not None or entry.seq != self.log.last_seq + 1:
                # The log holds other entries here: those of a deposed primary, never
                # committed.  Start over from the primary's snapshot.
                ask = CatchUp(self.node_id, self.epoch, 0, -1)
                return Ready(epoch=new_epoch, snapshot=installed,
                             entries=tuple(fresh) if installed is None else tuple(self.log.entries),
                             messages=((msg.node, ask),))
            self.log.append(entry)
            fresh.append(entry)
        self.commit_seq = max(self.commit_seq, min(msg.commit_seq, self.log.last_seq))
        self.log.apply_through(self.commit_seq)
        ack = Ack(self.node_id, self.epoch, self.log.last_seq)
        if installed is not None:
            return Ready(epoch=new_epoch, snapshot=installed, entries=tuple(self.log.entries),
                         messages=((msg.node, ack),))
        return Ready(epoch=new_epoch, entries=tuple(fresh), messages=((msg.node, ack),))

    def compact(self) -> Ready:
        """Fold committed entries into the snapshot (the host may call it any time)."""
        self.log.compact()
        return Ready(snapshot=self.log.snapshot, entries=tuple(self.log.entries))
