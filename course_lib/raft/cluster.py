"""SimCluster: a Raft cluster in the deterministic simulator.

The public model behind lessons, widgets and tests::

    c = SimCluster(5, seed=1)           # nodes n1..n5
    c.run_until(lambda: c.leader() is not None, 2000)
    k = c.client("alice"); k.put("x", "1"); k.get("x")
    c.partition({"n1", "n2"}, {"n3", "n4", "n5"}); c.heal()
    assert c.safety_violations() == []

Times are simulated milliseconds.  Everything random comes from ``seed``; the same
seed and the same calls give the same :attr:`trace` (compare :meth:`trace_digest`).
"""

from __future__ import annotations

from typing import Iterable, Optional

from ..check.history import Operation
from ..sim import SimulatedSystem, Simulation
from .client import ClientTimeout, RaftClient
from .errors import ConfChangeInProgress, NotLeader
from .driver import HostEvents
from .host import RaftHost
from .invariants import SafetyMonitor, full_check
from .messages import ConfChange, NodeState
from .node import RaftConfig

LEADER = NodeState.LEADER


def _ms(name: str, v) -> float:
    if not isinstance(v, (int, float)) or isinstance(v, bool) or v < 0:
        raise ValueError(f"{name} must be a non-negative number of ms, got {v!r}")
    return float(v)


class SimCluster(SimulatedSystem, HostEvents):
    """``n`` Raft servers ``n1..nn`` (plus clients) over one simulated network.

    It is the :class:`~.driver.HostEvents` of its hosts: they report role changes,
    applied membership changes, snapshots and every Ready through those callbacks.

    ``core_class`` / ``kv_factory`` host another core with :class:`~.node.RaftNode`'s
    interface and another state machine (exercise 2's learner-written node,
    ``course_lib.grading.ex2``); left ``None``, the run is exactly the default one.
    """

    def __init__(self, n: int = 5, seed: int = 0, *,
                 election_timeout_ms: tuple = (150, 300), heartbeat_ms: float = 50,
                 latency_ms: tuple = (1, 5), tick_ms: float = 5,
                 pre_vote: bool = True, check_quorum: bool = True,
                 snapshot_threshold: Optional[int] = None, read_mode: str = "read_index",
                 client_retry_ms: float = 100, client_timeout_ms: float = 5000,
                 trace_level: str = "messages", check_invariants: bool = True,
                 raise_on_violation: bool = False, max_entries_per_message: int = 64,
                 unsafe_commit_old_terms: bool = False,
                 core_class=None, kv_factory=None) -> None:
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise ValueError(f"cluster size must be an int >= 1, got {n!r}")
        if not isinstance(seed, int) or isinstance(seed, bool):
            raise ValueError(f"seed must be an int, got {seed!r}")
        if read_mode not in ("read_index", "log"):
            raise ValueError(f"read_mode must be 'read_index' or 'log', got {read_mode!r}")
        if snapshot_threshold is not None and (not isinstance(snapshot_threshold, int) or snapshot_threshold < 1):
            raise ValueError(f"snapshot_threshold must be None or an int >= 1, got {snapshot_threshold!r}")
        tick_ms = _ms("tick_ms", tick_ms)
        if tick_ms <= 0:
            raise ValueError("tick_ms must be > 0")
        lo, hi = election_timeout_ms
        lo, hi = _ms("election timeout", lo), _ms("election timeout", hi)
        if hi < lo:
            raise ValueError(f"election_timeout_ms must be (lo, hi) with lo <= hi, got {election_timeout_ms!r}")
        hb = _ms("heartbeat_ms", heartbeat_ms)
        self.tick_ms = tick_ms
        self.config = RaftConfig(
            election_ticks=(max(1, round(lo / tick_ms)), max(1, round(hi / tick_ms))),
            heartbeat_ticks=max(1, round(hb / tick_ms)),
            pre_vote=pre_vote, check_quorum=check_quorum,
            max_entries_per_message=max_entries_per_message,
            unsafe_commit_old_terms=unsafe_commit_old_terms,
        )
        self.seed = seed
        # another core with RaftNode's interface (exercise 2), and its state machine
        self.core_class = core_class
        self.kv_factory = kv_factory
        self.sim = Simulation(seed, tick_ms=tick_ms, trace_level=trace_level)
        self.sim.network.delay_ms = latency_ms
        self.snapshot_threshold = snapshot_threshold
        self.read_mode = read_mode
        self.client_retry_ms = _ms("client_retry_ms", client_retry_ms)
        self.client_timeout_ms = _ms("client_timeout_ms", client_timeout_ms)
        self.monitor = SafetyMonitor(raise_on_violation) if check_invariants else None
        self.hosts: dict[str, RaftHost] = {}
        self.clients: dict[str, RaftClient] = {}
        self._ops: list = []
        self.members: tuple = tuple(f"n{i}" for i in range(1, n + 1))
        self._members_index = 0
        self.leader_changes: list = []           # (time, node, term) when a node becomes leader
        for nid in self.members:
            self._spawn(nid, self.members)

    def _spawn(self, nid: str, voters: tuple) -> RaftHost:
        host = RaftHost(nid, voters, self, self.config, self.snapshot_threshold, self.read_mode,
                        self.core_class, self.kv_factory)
        self.hosts[nid] = host
        self.sim.add(host)
        return host

    # -- views ----------------------------------------------------------------------------
    def _check_server(self, nid: str) -> RaftHost:
        host = self.hosts.get(nid) if isinstance(nid, str) else None
        if host is None:
            raise ValueError(f"unknown server {nid!r}; servers: {sorted(self.hosts)}")
        return host

    def node(self, nid: str) -> RaftHost:
        return self._check_server(nid)

    @property
    def nodes(self) -> dict:
        return dict(self.hosts)

    def leader(self) -> Optional[str]:
        """The live leader with the highest term, or None."""
        best, term = None, -1
        for nid, h in self.hosts.items():
            c = h.core
            if c.state is LEADER and c.current_term > term and self.sim._alive[nid]:
                best, term = nid, c.current_term
        return best

    def states(self) -> dict:
        """Per-server summary for widgets: role, term, log length, commit, liveness."""
        out = {}
        for nid, h in sorted(self.hosts.items()):
            c = h.core
            out[nid] = {
                "alive": h.alive, "paused": h.paused, "state": c.state.value,
                "term": c.current_term, "voted_for": c.voted_for, "last_index": c.log.last_index,
                "commit_index": c.commit_index, "last_applied": c.last_applied,
                "snapshot_index": c.log.snapshot_index, "member": nid in self.members,
            }
        return out

    def in_flight(self, src: str = None, dst: str = None):
        """Messages on the wire (``InFlight(src, dst, msg, sent_at, deliver_at)``)."""
        return self.sim.in_flight(src, dst)

    # -- faults ---------------------------------------------------------------------------
    def _check_any(self, nid: str) -> None:
        if not isinstance(nid, str) or (nid not in self.hosts and nid not in self.clients):
            raise ValueError(f"unknown node {nid!r}; servers: {sorted(self.hosts)}, "
                             f"clients: {sorted(self.clients)}")

    def crash(self, nid: str) -> None:
        """Crash a server (or client): it keeps only what it persisted."""
        self._check_any(nid)
        self.sim.crash(nid)

    def restart(self, nid: str) -> None:
        self._check_any(nid)
        self.sim.restart(nid)

    def pause(self, nid: str) -> None:
        self._check_any(nid)
        self.sim.pause(nid)

    def resume(self, nid: str) -> None:
        self._check_any(nid)
        self.sim.resume(nid)

    def set_clock_rate(self, nid: str, rate: float) -> None:
        self._check_server(nid)
        self.sim.set_clock_rate(nid, rate)

    def partition(self, *groups: Iterable[str]) -> None:
        """Cut all links between servers of different groups (clients keep theirs)."""
        for g in groups:
            if isinstance(g, str):
                raise ValueError(f"partition group {g!r} must be a set of server ids")
            for nid in g:
                self._check_server(nid)
        self.sim.partition(*groups)

    def isolate(self, nid: str) -> None:
        """Cut ``nid`` off from every server and client, both ways."""
        self._check_server(nid)
        self.sim.isolate(nid)

    def cut_link(self, src: str, dst: str) -> None:
        """Cut one direction only: ``src`` can no longer reach ``dst``."""
        self._check_any(src)
        self._check_any(dst)
        self.sim.cut_link(src, dst)

    def heal(self) -> None:
        self.sim.heal()

    # -- operator actions -------------------------------------------------------------------
    def timeout_now(self, nid: str) -> None:
        """Force ``nid`` to start an election now (TimeoutNow, thesis §3.10)."""
        host = self._check_server(nid)
        if not host.alive:
            raise ValueError(f"cannot force an election on {nid!r}: it is down")
        if host.paused:
            raise ValueError(f"cannot force an election on {nid!r}: it is paused")
        self.sim.trace.record(self.now, "timeout_now", nid, ())
        host.core.timeout_now()
        host.poke()

    def expire_timer(self, nid: str) -> int:
        """Tick ``nid``'s clock now until its election timer runs out, so it times out
        as it would by itself (with PreVote if configured: §9.6) — without the rest of
        the cluster's time passing.  For manual delivery: the learner starts elections.
        Returns the number of ticks given."""
        host = self._check_server(nid)
        if not host.alive:
            raise ValueError(f"cannot expire {nid!r}'s timer: it is down")
        if host.paused:
            raise ValueError(f"cannot expire {nid!r}'s timer: it is paused")
        core = host.core
        if core.state is LEADER:
            raise ValueError(f"{nid} is the leader: it has no election timer running")
        if not core.promotable:
            raise ValueError(f"{nid} is not a voting member: it never times out")
        ticks = max(1, core.randomized_timeout - core.election_elapsed)
        self.sim.trace.record(self.now, "expire_timer", nid, (ticks,))
        for _ in range(ticks):
            host.on_tick()
        return ticks

    def transfer_leadership(self, target: str, timeout_ms: float = 2000) -> bool:
        """Ask the current leader to hand over to ``target``; True once it leads."""
        self._check_server(target)
        if target not in self.members:
            raise ValueError(f"{target!r} is not a member")
        lid = self.leader()
        if lid is None:
            raise ValueError("no leader to transfer from")
        if lid != target:
            lh = self.hosts[lid]
            lh.core.transfer_leadership(target)
            lh.poke()
        return self.run_until(lambda: self.leader() == target, timeout_ms)

    def add_server(self, nid: str, timeout_ms: float = 5000) -> None:
        """Add one server (thesis §4.2.1); blocks until the change is committed."""
        if not isinstance(nid, str) or not nid:
            raise ValueError(f"server id must be a non-empty str, got {nid!r}")
        if nid in self.clients:
            raise ValueError(f"{nid!r} is a client id")
        if nid in self.members:
            raise ValueError(f"{nid!r} is already a member")
        if nid not in self.hosts:
            self._spawn(nid, ())
        self._change_membership(ConfChange("add", nid), timeout_ms)

    def remove_server(self, nid: str, timeout_ms: float = 5000) -> None:
        """Remove one server (thesis §4.2.1); blocks until the change is committed."""
        self._check_server(nid)
        if nid not in self.members:
            raise ValueError(f"{nid!r} is not a member")
        if len(self.members) == 1:
            raise ValueError(f"cannot remove {nid!r}: it is the last member")
        self._change_membership(ConfChange("remove", nid), timeout_ms)

    def _change_membership(self, cc: ConfChange, timeout_ms: float) -> None:
        _ms("timeout_ms", timeout_ms)
        deadline = self.now + timeout_ms
        self.sim.trace.record(self.now, "conf_change", cc.node, (cc.op,))
        while self.now < deadline:
            lid = self.leader()
            proposed = None
            if lid is not None:
                lh = self.hosts[lid]
                try:
                    proposed = lh.core.propose_conf_change(cc)
                    lh.poke()
                except (NotLeader, ConfChangeInProgress):
                    proposed = None
                except ValueError:
                    # the change is already in the leader's configuration (e.g. a retry)
                    if self._conf_committed(lh, cc):
                        self._note_members(lh)
                        return
                    proposed = None
            if proposed is None:
                self.run_for(min(10.0, max(0.0, deadline - self.now)))
                continue
            index, term = proposed

            def settled() -> bool:
                c = lh.core
                return c.current_term != term or c.state is not LEADER or c.commit_index >= index
            self.run_until(settled, max(0.0, deadline - self.now))
            c = lh.core
            if c.commit_index >= index:
                committed = c.conf_at(c.commit_index)
                if (cc.node in committed) == (cc.op == "add"):
                    self._note_members(lh, committed)
                    return
        raise ClientTimeout(f"membership change {cc.op} {cc.node!r} not committed in {timeout_ms} ms")

    def _conf_committed(self, lh, cc) -> bool:
        c = lh.core
        in_conf = cc.node in c.voters
        return (in_conf if cc.op == "add" else not in_conf) and c.pending_conf_index <= c.commit_index

    def _note_members(self, lh, voters: tuple = None) -> None:
        voters = tuple(voters if voters is not None else lh.core.voters)
        if voters != self.members:
            self.members = voters
            self.sim.trace.record(self.now, "members", None, self.members)

    # -- HostEvents: what the hosts report ------------------------------------------------------
    def on_conf_applied(self, host, entry) -> None:
        # the cluster's membership = the latest committed configuration anyone applied
        if entry.index > self._members_index:
            self._members_index = entry.index
            self.members = host.core.conf_at(entry.index)
            self.sim.trace.record(self.now, "members", None, self.members)

    def on_snapshot_installed(self, host, snap) -> None:
        if snap.index > self._members_index:
            self._members_index = snap.index
            self.members = snap.voters

    def on_soft_state(self, host, soft) -> None:
        state, leader = soft
        self.sim.trace.record(self.now, "state", host.node_id, (state.value, host.core.current_term, leader))
        if state is LEADER:
            self.leader_changes.append((self.now, host.node_id, host.core.current_term))

    def on_ready(self, host, rd) -> None:
        if self.monitor is not None:
            self.monitor.observe(host, rd)

    def on_compacted(self, host, snap) -> None:
        self.sim.trace.record(self.now, "snapshot", host.node_id, (snap.index, snap.term))

    # -- clients --------------------------------------------------------------------------------
    def client(self, client_id: str) -> RaftClient:
        """The client ``client_id`` (created on first use) with its own session."""
        if not isinstance(client_id, str) or not client_id:
            raise ValueError(f"client id must be a non-empty str, got {client_id!r}")
        if client_id in self.hosts:
            raise ValueError(f"{client_id!r} is a server id")
        k = self.clients.get(client_id)
        if k is None:
            k = RaftClient(client_id, self, retry_ms=self.client_retry_ms, timeout_ms=self.client_timeout_ms)
            self.clients[client_id] = k
            self.sim.add(k)
        return k

    @property
    def history(self) -> list:
        """Every client operation as a ``course_lib.check.history.Operation``."""
        out = []
        for op in self._ops:
            if op.done and not op.timed_out:
                out.append(Operation(op.client_id, op.input, op.call, op.result, op.ret))
            else:
                out.append(Operation(op.client_id, op.input, op.call, None, None))
        return out

    # -- safety ---------------------------------------------------------------------------------
    def safety_violations(self) -> list:
        """[] while Election Safety, Log Matching, Leader Completeness and State
        Machine Safety hold (incremental checks after every event + a full scan)."""
        out = list(self.monitor.violations) if self.monitor is not None else []
        out.extend(full_check(self.hosts.values()))
        return out

    def __repr__(self) -> str:
        return f"<SimCluster {len(self.hosts)} servers t={self.now}ms leader={self.leader()}>"
