"""``StateReplicator``: the chapter's class, working — primary-backup in one process.

The chapter's replicator changes its own state first, then sends the change to every
node and returns whether all answered; it has no sequence numbers, no catch-up and no
notion of who may write.  This one hosts :class:`~.core.Replica` cores on a seeded,
in-process network (one FIFO link per pair of nodes, like TCP; the seed picks which link
delivers next) with a :class:`MemoryDisk` per node that survives a crash:

- ``await update_state(key, value)`` returns the write's sequence number once ``acks``
  backups hold it, and only then is it visible in ``state``; otherwise it raises
  (``NotEnoughReplicas``, ``PrimaryCrashed``, ``NotReplicated``) and the write is not
  acknowledged — it may still appear later, as one whose outcome was unknown;
- ``crash(node)`` loses the node's memory and keeps its disk; ``crash_after(node, n)``
  crashes it after it sent ``n`` more messages (a crash in the middle of an update);
  ``restart(node)`` rebuilds it from its disk and catches it up from the primary;
- ``fail_over(node)`` makes ``node`` primary with the next epoch; the others follow.

Same seed, same calls: the same deliveries and the same states.
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Iterable, Optional

from .core import Replica
from .records import (NotPrimary, Ready, ReplicationError, Role, Snapshot,
                      check_count)


class PrimaryCrashed(ReplicationError):
    """The primary crashed before acknowledging the write: its outcome is unknown."""


class NotReplicated(ReplicationError):
    """The network went quiet before enough backups acknowledged the write."""


@dataclass
class MemoryDisk:
    """What a node persisted (the part of it a crash does not take)."""

    epoch: int = 0
    snapshot: Snapshot = field(default_factory=Snapshot)
    entries: list = field(default_factory=list)

    def persist(self, ready: Ready) -> None:
        if ready.epoch is not None:
            self.epoch = ready.epoch
        if ready.snapshot is not None:
            self.snapshot = ready.snapshot
            self.entries = list(ready.entries)
        else:
            self.entries.extend(ready.entries)


class StateReplicator:
    """Primary ``node_id`` replicating to the other ``nodes`` (see the module docstring).

    ``acks`` defaults to every backup (the only setting where any backup may take over
    without losing an acknowledged write).
    """

    def __init__(self, node_id: str, nodes: Iterable[str], acks: Optional[int] = None,
                 seed: int = 0):
        self.nodes = tuple(nodes)
        if len(set(self.nodes)) != len(self.nodes) or not all(isinstance(n, str) and n for n in self.nodes):
            raise ValueError(f"nodes must be distinct non-empty strings, not {self.nodes!r}")
        if node_id not in self.nodes:
            raise ValueError(f"node_id {node_id!r} is not one of the nodes {self.nodes!r}")
        self.acks = len(self.nodes) - 1 if acks is None else check_count("acks", acks)
        if self.acks > len(self.nodes) - 1:
            raise ValueError(f"acks={acks} is more than the {len(self.nodes) - 1} backups")
        self.rng = random.Random(seed)
        self.disks = {n: MemoryDisk() for n in self.nodes}
        self.replicas: dict[str, Optional[Replica]] = {n: Replica(n, self.acks) for n in self.nodes}
        self.links: dict[tuple[str, str], deque] = {}
        self.delivered = 0
        self._crash_budget: dict[str, int] = {}
        self._acknowledged: set[int] = set()
        self.node_id = node_id
        self.fail_over(node_id)

    # -- views ----------------------------------------------------------------------

    @property
    def primary(self) -> str:
        return self.node_id

    @property
    def state(self) -> dict:
        """The primary's committed state."""
        replica = self.replicas[self.node_id]
        if replica is None:
            raise NotPrimary(f"the primary {self.node_id} is down")
        return replica.state

    @property
    def serving(self) -> bool:
        """True when the primary is up and still primary (not restarted as a backup)."""
        replica = self.replicas[self.node_id]
        return replica is not None and replica.role is Role.PRIMARY

    def replica_state(self, node: str) -> Optional[dict]:
        """``node``'s state with every entry it holds applied (None if it is down):
        what it would serve if it took over now."""
        replica = self.replicas[self._check(node)]
        if replica is None:
            return None
        state = replica.log.snapshot.state()
        for entry in replica.log.entries:
            state[entry.key] = entry.value
        return state

    def is_up(self, node: str) -> bool:
        return self.replicas[self._check(node)] is not None

    # -- faults and reconfiguration -------------------------------------------------

    def crash(self, node: str) -> None:
        """Lose ``node``'s memory and everything in flight from or to it; keep its disk."""
        if self.replicas[self._check(node)] is None:
            raise ValueError(f"cannot crash {node!r}: it is down")
        self.replicas[node] = None
        self._crash_budget.pop(node, None)
        for (_, dst), queue in self.links.items():
            if dst == node:
                queue.clear()  # what it already sent is in the network and still arrives
        for replica in self.replicas.values():
            if replica is not None:
                self._host(replica, replica.detach(node))

    def crash_after(self, node: str, messages: int) -> None:
        """Crash ``node`` when it is about to send its ``messages + 1``-th message from
        now (0: before it sends anything more; what it persists first stays on disk)."""
        if self.replicas[self._check(node)] is None:
            raise ValueError(f"cannot arm a crash of {node!r}: it is down")
        self._crash_budget[node] = check_count("messages", messages)

    def restart(self, node: str) -> None:
        """Rebuild ``node`` from its disk; it rejoins as a backup and catches up."""
        if self.replicas[self._check(node)] is not None:
            raise ValueError(f"cannot restart {node!r}: it is up")
        disk = self.disks[node]
        replica = Replica(node, self.acks, epoch=disk.epoch, snapshot=disk.snapshot,
                          entries=disk.entries)
        self.replicas[node] = replica
        primary = self.replicas[self.node_id]
        if primary is not None and primary.role is Role.PRIMARY and node != self.node_id:
            self._host(replica, replica.follow(self.node_id, primary.epoch))
            self.run()

    def restore(self, node: str, snapshot: Snapshot) -> None:
        """Replace a down node's disk by a backup ``snapshot`` (then ``restart`` it)."""
        if self.replicas[self._check(node)] is not None:
            raise ValueError(f"cannot restore {node!r} while it is up: crash it first")
        self.disks[node] = MemoryDisk(max(self.disks[node].epoch, snapshot.epoch), snapshot, [])

    def fail_over(self, node: str) -> int:
        """Make ``node`` primary with the next epoch; returns the epoch."""
        replica = self.replicas[self._check(node)]
        if replica is None:
            raise ValueError(f"cannot make {node!r} primary: it is down")
        epoch = 1 + max(d.epoch for d in self.disks.values())
        self.node_id = node
        self._host(replica, replica.become_primary(epoch))
        for other, backup in self.replicas.items():
            if backup is not None and other != node:
                self._host(backup, backup.follow(node, epoch))
        self.run()
        return epoch

    # -- writes ---------------------------------------------------------------------

    async def update_state(self, key: str, value: Any) -> int:
        """Replicate ``key = value``; its sequence number once acknowledged."""
        primary = self.replicas[self.node_id]
        if primary is None:
            raise NotPrimary(f"the primary {self.node_id} is down")
        seq, ready = primary.propose(key, value)
        self._host(primary, ready)
        self.run()
        if seq in self._acknowledged:
            return seq
        if self.replicas[self.node_id] is not primary:
            raise PrimaryCrashed(f"{self.node_id} crashed before acknowledging write {seq}")
        raise NotReplicated(f"write {seq} reached fewer than {self.acks} backups")

    def run(self, max_steps: int = 100_000) -> int:
        """Deliver messages (a seeded choice of link each time) until none is in flight."""
        steps = 0
        while True:
            busy = [link for link, queue in self.links.items() if queue]
            if not busy:
                return steps
            if steps >= max_steps:
                raise RuntimeError(f"no quiescence after {max_steps} deliveries")
            src, dst = busy[self.rng.randrange(len(busy))]
            msg = self.links[(src, dst)].popleft()
            replica = self.replicas[dst]
            steps += 1
            self.delivered += 1
            if replica is not None:
                self._host(replica, replica.step(msg))

    def _host(self, replica: Replica, ready: Ready) -> None:
        # The Ready contract: persist, then send, then acknowledge.
        self.disks[replica.node_id].persist(ready)
        for to, msg in ready.messages:
            budget = self._crash_budget.get(replica.node_id)
            if budget == 0:
                self.crash(replica.node_id)
                return  # crashed while sending: the rest never leaves
            if budget is not None:
                self._crash_budget[replica.node_id] = budget - 1
            if self.replicas.get(to) is not None:
                self.links.setdefault((replica.node_id, to), deque()).append(msg)
        if replica.role is Role.PRIMARY:
            self._acknowledged.update(ready.committed)

    def _check(self, node: str) -> str:
        if node not in self.replicas:
            raise ValueError(f"unknown node {node!r}; nodes are {', '.join(self.nodes)}")
        return node
