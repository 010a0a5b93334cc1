"""``SimReplicaGroup``: a primary-backup key-value store with a failover manager, on the
seeded simulator — in a correct version and in a version with a classic bug.

The replicas are the :class:`~.core.Replica` cores of this package (sequence numbers,
epoch fencing, catch-up by log suffix or snapshot), one per node, each persisting to a
:class:`~.replicator.MemoryDisk` before it sends (a crash keeps only the disk).  With
three nodes a write is acknowledged once the primary **and one backup** hold it — a
majority — so one backup may lag without slowing the writes down.

A **failover manager** (one more process, ``"manager"``, which faults never hit: the role
ZooKeeper or a controller plays in a real system) pings every node every ``ping_ms``.
When the primary has not answered for ``detect_ms`` (it crashed, is paused, or is cut off
from the manager), the manager

1. **fences**: sends a new epoch to every other node; each raises its epoch (persisted),
   so that from then on it refuses the old primary — which can commit nothing more —
   and answers with its log position ``(last epoch, last sequence number)``;
2. waits for the answers of enough of them that their logs must, between them, hold
   every acknowledged write (with three nodes: both backups; in general
   ``backups - acks + 1``);
3. **promotes** one of them, with the next epoch, and tells the others to follow it.
   Nodes that come back later (restarted, resumed, healed) are told to follow too.

Step 3 is where the two versions differ (``promote=``):

- ``"most_up_to_date"`` (the correct one): the node whose log position is highest —
  the rule of Raft's election restriction (§5.4.1) and of Viewstamped Replication's view
  change (the new primary takes the log of the latest view with the highest op-number);
- ``"lowest_id"`` (the bug): the first *live* backup in sorted order — one that answered
  and is not still recovering from a restart — whatever its log position: a static
  preference ("promote the first backup") that ignores how far the backup is behind.  A
  write acknowledged by the primary and the *other* backup is then thrown away when the
  promoted node's log replaces theirs.  It is the shape of Kafka's unclean leader
  election (a replica that is not in sync becomes leader; Kafka's documentation says of
  ``unclean.leader.election.enable`` that it "may result in data loss"), and Jepsen's
  2013 analysis of Kafka saw acknowledged writes thrown away that way after a partition.

The bug needs a backup that is behind **at the moment of a failover**.  A backup cut off
from the primary (a partition, an isolation) falls behind, and catches up within a few
milliseconds of hearing from it again (the next write shows it a gap, or its periodic
pull asks; it gets the rest).  A *paused* backup misses nothing: messages wait for it
and arrive, in order, when it resumes.  A *restarted* one asks its primary at once (it
kept its name on disk) and is "recovering" until it has caught up.  So one fault at a
time — cut the backup off, heal, later crash the primary — almost never finds the bug:
it takes a backup that is cut off from the primary, but not from the manager, when the
primary goes.

Clients ask the manager where the primary is (as a client of a real system reads it
from ZooKeeper) and send it ``("get", key)``, ``("put", key, value)`` or
``("append", key, suffix)``.  Reads go through the log too (a no-op entry, committed like
a write), so a deposed primary cannot answer one.  A request a replica refuses (not the
primary, or no backup attached) definitely did not happen; a request with no answer may
have.

Every fault applied through this object (the :class:`~course_lib.check.SimNemesis`
calls its ``crash`` / ``restart`` / ``pause`` / ``resume`` / ``partition`` / ``isolate`` /
``heal``) is recorded as a :class:`FaultEvent` with every replica's position, every
failover as a :class:`Failover` with the positions the manager was told and the
acknowledged writes the promoted node lacked, and the lag of each replica behind the
primary is sampled every ``sample_ms`` — so a test can say *why* a run lost nothing.
Same seed, same calls: the same run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Optional

from ..sim import Process, SimulatedSystem, Simulation
from .core import Replica
from .records import (NotEnoughReplicas, Ready, Refuse, Replicate, Role, check_count)
from .replicator import MemoryDisk

PROMOTE_RULES = ("most_up_to_date", "lowest_id")
MANAGER = "manager"
# A read is a log entry under this key (its value: the key read), so that it is
# answered only once committed, by a primary that still is one.
READ_KEY = "~read"


# -- messages between the manager, the replicas and the clients ------------------------

@dataclass(frozen=True)
class Ping:
    pass


@dataclass(frozen=True)
class Pong:
    node: str
    role: str
    epoch: int
    following: Optional[str]
    last_epoch: int
    last_seq: int


@dataclass(frozen=True)
class Fence:
    """Manager -> node: "epoch ``epoch`` has begun: refuse the old primary, tell me your
    log position"."""
    epoch: int


@dataclass(frozen=True)
class Fenced:
    node: str
    epoch: int
    last_epoch: int
    last_seq: int
    recovering: bool = False    # restarted, and not caught up with a primary since


@dataclass(frozen=True)
class Promote:
    epoch: int


@dataclass(frozen=True)
class Follow:
    primary: str
    epoch: int


@dataclass(frozen=True)
class Request:
    op_id: int
    input: tuple


@dataclass(frozen=True)
class Reply:
    op_id: int
    ok: bool
    output: Any = None
    reason: str = ""


# -- what the group records ---------------------------------------------------------------

@dataclass(frozen=True)
class Position:
    """A replica's log at one instant: ``up`` False when crashed (then ``paused`` is
    False and the position is its disk's); ``missing``: acknowledged writes it lacks."""
    node: str
    up: bool
    paused: bool
    last_epoch: int
    last_seq: int
    missing: int

    def __str__(self) -> str:
        state = "" if self.up and not self.paused else (" (paused)" if self.paused else " (down)")
        return f"{self.node} at entry {self.last_seq}{state}"


@dataclass(frozen=True)
class FaultEvent:
    """A fault action at ``time`` (``crash``, ``restart``, ``pause``, ``resume``,
    ``partition``, ``isolate``, ``heal``), with the primary the manager named then and
    every replica's position just before the action."""
    time: float
    action: str
    target: Any
    primary: Optional[str]
    positions: tuple

    def position(self, node: str) -> Position:
        return next(p for p in self.positions if p.node == node)


@dataclass(frozen=True)
class Failover:
    """The manager replaced ``old`` (unanswered since ``suspected_at``) by ``promoted``
    at ``time``, with epoch ``epoch``, having been told ``reports``: ``(node, last_epoch,
    last_seq)`` per fenced node.  ``positions``: every replica's true position then;
    ``lost``: acknowledged writes the promoted node lacked (lost, unless it gets them
    from nowhere — no one sends them)."""
    time: float
    old: str
    suspected_at: float
    promoted: str
    epoch: int
    rule: str
    reports: tuple
    positions: tuple
    lost: int
    recovering: tuple = ()     # fenced nodes still recovering from a restart

    def position(self, node: str) -> Position:
        return next(p for p in self.positions if p.node == node)


@dataclass
class _Fencing:
    epoch: int
    old: str
    since: float
    replies: dict = field(default_factory=dict)
    recovering: set = field(default_factory=set)


# -- the processes --------------------------------------------------------------------------

class ReplicaHost(Process):
    """One node: hosts a :class:`Replica` core, carries out its ``Ready`` (persist, then
    send, then answer the clients whose writes committed), answers the manager."""

    ticking = True

    def __init__(self, node_id: str, group: "SimReplicaGroup", acks: int) -> None:
        super().__init__(node_id)
        self.group = group
        self.acks = acks
        self.disk = MemoryDisk()
        self.replica: Optional[Replica] = Replica(node_id, acks)
        self.following: Optional[tuple] = None   # (primary, epoch) the manager named
        # ...kept on disk too: a restarted backup asks that primary for what it missed at
        # once, as a restarted replica reads its primary from its own configuration
        self.saved_following: Optional[tuple] = None
        self.heard = 0.0                         # last Replicate from that primary
        self.pending: dict[int, tuple] = {}      # seq -> (client, op_id, input)
        self.recovering = False                  # restarted, not yet caught up since
        self.tip: dict = {}                      # a primary's newest value per key

    # -- lifecycle --------------------------------------------------------------------
    def on_crash(self) -> None:
        self.replica = None
        self.following = None
        self.pending = {}
        self.tip = {}

    def on_restart(self) -> None:
        d = self.disk
        self.replica = Replica(self.node_id, self.acks, epoch=d.epoch, snapshot=d.snapshot,
                               entries=d.entries)
        self.heard = self.sim.now
        self.recovering = True
        if self.saved_following is not None:
            self._follow(Follow(*self.saved_following))

    def on_tick(self) -> None:
        # A backup pulls when its primary has been quiet for pull_ms (Kafka's followers
        # fetch; here a CatchUp): after a heal or a restart it catches up even if no
        # write arrives to show it the gap.
        r, f = self.replica, self.following
        if (r is not None and f is not None and r.role is Role.BACKUP and r.epoch == f[1]
                and self.sim.now - self.heard >= self.group.pull_ms):
            self.heard = self.sim.now
            self._host(r.follow(*f))

    # -- messages ----------------------------------------------------------------------
    def on_message(self, src: str, msg: Any) -> None:
        r = self.replica
        if isinstance(msg, Request):
            self._request(src, msg)
        elif isinstance(msg, Ping):
            self._send(src, Pong(self.node_id, r.role.value, r.epoch, r.primary,
                                 r.log.last_epoch, r.log.last_seq))
        elif isinstance(msg, Fence):
            if msg.epoch > r.epoch:
                self._host(r.step(Refuse(src, msg.epoch)))   # raise the epoch, persisted
            if r.epoch == msg.epoch:
                self._send(src, Fenced(self.node_id, r.epoch, r.log.last_epoch, r.log.last_seq,
                                       self.recovering))
        elif isinstance(msg, Promote):
            if msg.epoch > r.epoch:
                self.following = self.saved_following = None
                ready = r.become_primary(msg.epoch)
                self.tip = dict(r.log.state)
                self._host(ready)
        elif isinstance(msg, Follow):
            self._follow(msg)
        else:
            mine = isinstance(msg, Replicate) and self.following and src == self.following[0]
            if mine:
                self.heard = self.sim.now
            self._host(r.step(msg))
            if mine and self.recovering and r.log.last_seq >= msg.commit_seq and r.epoch == msg.epoch:
                self.recovering = False          # caught up with a primary once
        if self.pending and (self.replica is None or self.replica.role is not Role.PRIMARY):
            self.pending = {}      # never answered: those clients time out (outcome unknown)
            self.tip = {}

    def _follow(self, msg: Follow) -> None:
        r = self.replica
        if msg.primary == self.node_id or msg.epoch < r.epoch:
            return
        if r.role is Role.PRIMARY and msg.epoch == r.epoch:
            return
        if (self.following == (msg.primary, msg.epoch) and r.role is Role.BACKUP
                and r.epoch == msg.epoch):
            return                                   # already following: a resend
        self.following = self.saved_following = (msg.primary, msg.epoch)
        self.heard = self.sim.now
        self._host(r.follow(msg.primary, msg.epoch))

    def _request(self, client: str, msg: Request) -> None:
        r = self.replica
        if r.role is not Role.PRIMARY:
            self._send(client, Reply(msg.op_id, False, reason=f"{self.node_id} is not the primary"))
            return
        kind = msg.input[0]
        if kind == "get":
            key, value = READ_KEY, msg.input[1]
        elif kind == "put":
            key, value = msg.input[1], msg.input[2]
        else:                                        # append: the new value, computed here
            key = msg.input[1]
            value = self.tip.get(key, "") + msg.input[2]
        try:
            seq, ready = r.propose(key, value)
        except NotEnoughReplicas as refused:
            self._send(client, Reply(msg.op_id, False, reason=str(refused)))
            return
        if kind != "get":
            self.tip[key] = value
        self.pending[seq] = (client, msg.op_id, msg.input)
        self._host(ready)

    # -- the Ready contract: persist, then send, then acknowledge -----------------------
    def _host(self, ready: Ready) -> None:
        self.disk.persist(ready)
        for to, m in ready.messages:
            self._send(to, m)
        if ready.committed and self.pending:
            state = self.replica.log.state
            for seq in ready.committed:
                waiting = self.pending.pop(seq, None)
                if waiting is None:
                    continue
                client, op_id, input = waiting
                if input[0] == "get":
                    self._send(client, Reply(op_id, True, state.get(input[1], "")))
                else:
                    self.group._acknowledged(self.replica.log.epoch_at(seq), seq)
                    self._send(client, Reply(op_id, True))

    def _send(self, to: str, msg: Any) -> None:
        self.sim.send(self.node_id, to, msg)


class FailoverManager(Process):
    """Pings the nodes, detects a silent primary, fences, promotes (see the module
    docstring); also tells every node that comes back whom to follow."""

    ticking = False

    def __init__(self, group: "SimReplicaGroup", primary: str, promote: str) -> None:
        super().__init__(MANAGER)
        self.group = group
        self.nodes = group.nodes
        self.primary: Optional[str] = primary     # None while a failover is under way
        self.epoch = 1
        self.promote = promote
        self.last_pong = {n: 0.0 for n in self.nodes}
        self.fencing: Optional[_Fencing] = None
        self.quorum = len(self.nodes) - 1 - group.acks + 1

    def on_start(self) -> None:
        self.sim.scheduler.schedule(self.group.ping_ms, self._round)

    def _round(self) -> None:
        now = self.sim.now
        for n in self.nodes:
            self.sim.send(MANAGER, n, Ping())
        f = self.fencing
        if f is not None:
            for n in self.nodes:
                if n != f.old and n not in f.replies:
                    self.sim.send(MANAGER, n, Fence(f.epoch))
        elif now - self.last_pong[self.primary] > self.group.detect_ms:
            self._begin_failover(self.last_pong[self.primary])
        self.sim.scheduler.schedule(self.group.ping_ms, self._round)

    def on_message(self, src: str, msg: Any) -> None:
        if isinstance(msg, Pong):
            self.last_pong[src] = self.sim.now
            if self.fencing is None:
                self._reconcile(src, msg)
        elif isinstance(msg, Fenced):
            f = self.fencing
            if f is not None and msg.epoch == f.epoch and src != f.old:
                f.replies[src] = (msg.last_epoch, msg.last_seq)
                if msg.recovering:
                    f.recovering.add(src)
                if len(f.replies) >= self.quorum:
                    self._promote(f)

    def _reconcile(self, node: str, pong: Pong) -> None:
        if node == self.primary:
            if pong.role == Role.PRIMARY.value and pong.epoch == self.epoch:
                return
            if pong.epoch < self.epoch:
                self.sim.send(MANAGER, node, Promote(self.epoch))   # it missed the promotion
            else:
                self._begin_failover(self.sim.now)  # it restarted: no longer primary
            return
        if (pong.role != Role.BACKUP.value or pong.epoch < self.epoch
                or pong.following != self.primary):
            self.sim.send(MANAGER, node, Follow(self.primary, self.epoch))

    def _begin_failover(self, suspected_at: float) -> None:
        self.fencing = _Fencing(self.epoch + 1, self.primary, suspected_at)
        self.primary = None
        for n in self.nodes:
            if n != self.fencing.old:
                self.sim.send(MANAGER, n, Fence(self.fencing.epoch))

    def _promote(self, f: _Fencing) -> None:
        if self.promote == "lowest_id":
            # the bug: the first live backup in sorted order — one that answered and is
            # not still recovering from a restart — whatever its log position
            chosen = min(set(f.replies) - f.recovering or f.replies)
        else:
            best = max(f.replies.values())
            chosen = min(n for n, pos in f.replies.items() if pos == best)
        self.fencing = None
        self.epoch = f.epoch + 1
        self.primary = chosen
        self.sim.send(MANAGER, chosen, Promote(self.epoch))
        for n in self.nodes:
            if n != chosen:
                self.sim.send(MANAGER, n, Follow(chosen, self.epoch))
        self.group._failed_over(f, chosen, self.epoch)


# -- the group ----------------------------------------------------------------------------

class SimReplicaGroup(SimulatedSystem):
    """Replicas ``nodes`` (``primary`` first primary, default the first node), a failover
    manager with the ``promote`` rule, on a :class:`~course_lib.sim.Simulation` seeded
    by ``seed``.  See the module docstring."""

    def __init__(self, nodes: Iterable[str] = ("n1", "n2", "n3"), *, primary: Optional[str] = None,
                 promote: str = "most_up_to_date", seed: int = 0,
                 delay_ms: tuple = (1.0, 2.0), ping_ms: float = 10.0, detect_ms: float = 50.0,
                 pull_ms: float = 20.0, sample_ms: float = 5.0, trace_level: str = "summary") -> None:
        nodes = tuple(nodes)
        if len(nodes) < 3 or len(set(nodes)) != len(nodes) or not all(
                isinstance(n, str) and n for n in nodes):
            raise ValueError(f"nodes must be at least 3 distinct non-empty strings, not {nodes!r}")
        if MANAGER in nodes or any(n.startswith("client-") for n in nodes):
            raise ValueError(f"node ids {MANAGER!r} and 'client-...' are taken, got {nodes!r}")
        primary = nodes[0] if primary is None else primary
        if primary not in nodes:
            raise ValueError(f"primary {primary!r} is not one of the nodes {nodes!r}")
        if promote not in PROMOTE_RULES:
            raise ValueError(f"promote must be one of {PROMOTE_RULES}, not {promote!r}")
        for name, value in (("ping_ms", ping_ms), ("detect_ms", detect_ms), ("pull_ms", pull_ms),
                            ("sample_ms", sample_ms)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise ValueError(f"{name} must be a positive number of ms, not {value!r}")
        self.nodes = tuple(sorted(nodes))
        self.promote = promote
        self.acks = check_count("acks", (len(nodes) - 1) // 2, minimum=1)
        self.ping_ms, self.detect_ms, self.pull_ms = float(ping_ms), float(detect_ms), float(pull_ms)
        self.sample_ms = float(sample_ms)
        self.sim = Simulation(seed, trace_level=trace_level)
        self.sim.network.delay_ms = delay_ms
        self.hosts = {n: ReplicaHost(n, self, self.acks) for n in self.nodes}
        for host in self.hosts.values():
            self.sim.add(host)
        self.manager = FailoverManager(self, primary, promote)
        self.sim.add(self.manager)
        self.fault_events: list[FaultEvent] = []
        self.failovers: list[Failover] = []
        self.lag_samples: list[tuple] = []          # (time, {node: entries behind or None})
        self._acked: list[tuple] = []               # (epoch, seq) of acknowledged writes
        self._top: Optional[int] = None             # the last primary commit point sampled
        first = self.hosts[primary]
        first._host(first.replica.become_primary(1))
        first.tip = {}
        for n in self.nodes:
            if n != primary:
                self.hosts[n]._follow(Follow(primary, 1))
        self.sim.scheduler.schedule(self.sample_ms, self._sample)

    # -- views ----------------------------------------------------------------------------
    @property
    def primary(self) -> Optional[str]:
        """The primary the manager names (None during a failover): where clients write."""
        return self.manager.primary

    @property
    def backups(self) -> tuple:
        return tuple(n for n in self.nodes if n != self.primary)

    def positions(self) -> tuple:
        """Every replica's :class:`Position` now (a crashed one: its disk's)."""
        out = []
        for n in self.nodes:
            host = self.hosts[n]
            r = host.replica
            if r is None:
                last_epoch = host.disk.entries[-1].epoch if host.disk.entries else host.disk.snapshot.epoch
                last_seq = host.disk.entries[-1].seq if host.disk.entries else host.disk.snapshot.seq
                has = _disk_has(host.disk)
            else:
                last_epoch, last_seq, has = r.log.last_epoch, r.log.last_seq, _log_has(r.log)
            missing = sum(1 for e, s in self._acked if not has(e, s))
            out.append(Position(n, r is not None, r is not None and self.sim.is_paused(n),
                                last_epoch, last_seq, missing))
        return tuple(out)

    def acknowledged_writes(self) -> int:
        return len(self._acked)

    # -- faults (SimNemesis calls these; each is recorded with the positions) ---------------
    def crash(self, node: str) -> None:
        self._record("crash", node)
        self.sim.crash(node)

    def restart(self, node: str) -> None:
        self._record("restart", node)
        self.sim.restart(node)

    def pause(self, node: str) -> None:
        self._record("pause", node)
        self.sim.pause(node)

    def resume(self, node: str) -> None:
        self._record("resume", node)
        self.sim.resume(node)

    def partition(self, *groups: Iterable[str]) -> None:
        groups = tuple(tuple(g) for g in groups)
        for g in groups:
            for n in g:
                self._check_replica(n, "partition")
        self._record("partition", groups)
        self.sim.partition(*groups)

    def isolate(self, node: str) -> None:
        self._record("isolate", node)
        self.sim.isolate(node)

    def heal(self) -> None:
        self._record("heal", ())
        self.sim.heal()

    def set_clock_rate(self, node: str, rate: float) -> None:
        self._check_replica(node, "set_clock_rate")
        self.sim.set_clock_rate(node, rate)

    def _check_replica(self, node: str, what: str) -> None:
        if node not in self.hosts:
            raise ValueError(f"{what}: unknown node {node!r}; the replicas are {', '.join(self.nodes)}")

    def _record(self, action: str, target: Any) -> None:
        if action != "heal" and action != "partition":
            self._check_replica(target, action)
        self.fault_events.append(FaultEvent(self.sim.now, action, target, self.primary,
                                            self.positions()))

    # -- called by the processes ------------------------------------------------------------
    def _acknowledged(self, epoch: int, seq: int) -> None:
        self._acked.append((epoch, seq))

    def _failed_over(self, f: _Fencing, chosen: str, epoch: int) -> None:
        positions = self.positions()
        reports = tuple((n, *f.replies[n]) for n in sorted(f.replies))
        lost = next(p.missing for p in positions if p.node == chosen)
        self.failovers.append(Failover(self.sim.now, f.old, f.since, chosen, epoch, self.promote,
                                       reports, positions, lost, tuple(sorted(f.recovering))))

    def _sample(self) -> None:
        # Lag = entries a replica lacks below the primary's commit point.  While no live
        # primary is named (it is down, or a failover is under way) the last commit point
        # stands: how far behind each backup is when the manager comes to choose.
        primary = self.primary
        host = self.hosts[primary] if primary is not None else None
        if host is not None and host.replica is not None and host.replica.role is Role.PRIMARY:
            self._top = host.replica.commit_seq
        if self._top is not None:
            lag = {}
            for n in self.nodes:
                r = self.hosts[n].replica
                lag[n] = None if r is None else max(0, self._top - r.log.last_seq)
            self.lag_samples.append((self.sim.now, lag))
        self.sim.scheduler.schedule(self.sample_ms, self._sample)


def _log_has(log) -> Callable[[int, int], bool]:
    def has(epoch: int, seq: int) -> bool:
        if seq <= log.snapshot.seq:
            return True          # folded into a snapshot taken from a primary's state
        return log.epoch_at(seq) == epoch
    return has


def _disk_has(disk: MemoryDisk) -> Callable[[int, int], bool]:
    base = disk.snapshot.seq

    def has(epoch: int, seq: int) -> bool:
        if seq <= base:
            return True
        index = seq - base - 1
        return index < len(disk.entries) and disk.entries[index].epoch == epoch
    return has
