"""Jepsen-style runs against :class:`~course_lib.recovery.sim_group.SimReplicaGroup`: a
seeded workload, a :class:`~course_lib.check.SimFault` schedule played by
:class:`~course_lib.check.SimNemesis`, the linearizability checker, and a diagnosis of
what the faults did to the replicas.

:func:`failover_run` (``schedule``, ``seed``, a :class:`FailoverLayout`, the manager's
``promote`` rule) runs three closed-loop clients doing ``get`` and ``append`` on three
keys for ``layout.window_ms`` of virtual time while the schedule plays, then heals
everything and lets the clients run ``tail_ms`` more, so that a write lost during the
faults is seen missing by a later read.  Appends make a loss visible for good: every
later read of the key lacks the lost suffix.  Same arguments, same history.

The faults a schedule may use here are those that take a replica away or cut it off —
``crash``, ``pause``, ``partition``, ``isolate`` (:data:`FAULT_KINDS`), aimed at the
replicas (the failover manager and the clients are never hit, and a partition's groups
name replicas only: the manager keeps its links to everyone).  :func:`validate_schedule`
says what is wrong with a schedule that breaks these rules.

:func:`random_schedule` is the course's standard generator (:func:`random_sim_schedule`:
faults one at a time, exponential gaps of 300 ms on average — start a fault, wait, stop
it, wait, as Jepsen's classic nemesis schedules do) over those kinds;
:func:`random_campaign` runs it over many seeds.  Measured with the broken store: 0 of
the 50 seeds ``range(50)`` found the bug, 1 of 500 (seed 166: the primary was paused
half a millisecond after a heal), 1 of 300 on the second layout.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Optional

from ..recovery.sim_group import Failover, FaultEvent, Reply, Request, SimReplicaGroup
from ..sim import Process
from .checker import CheckResult, check
from .history import Operation
from .models import kv
from .sim_nemesis import SimFault, SimNemesis, random_sim_schedule
from .workloads import kv_workload

FAULT_KINDS = ("crash", "pause", "partition", "isolate")
_NODE_KINDS = ("crash", "pause", "isolate")


@dataclass(frozen=True)
class FailoverLayout:
    """The group a schedule is written for: its replicas, which one is primary at the
    start, and the window within which every fault must start and end (virtual ms from
    the start of the run)."""

    nodes: tuple
    primary: str
    window_ms: float = 3000.0
    detect_ms: float = 50.0      # how long the manager waits for a silent primary

    def __post_init__(self) -> None:
        if self.primary not in self.nodes:
            raise ValueError(f"primary {self.primary!r} is not one of {self.nodes!r}")

    @property
    def backups(self) -> tuple:
        """The other replicas, in sorted order."""
        return tuple(sorted(n for n in self.nodes if n != self.primary))

    def __str__(self) -> str:
        return (f"replicas {', '.join(sorted(self.nodes))} with {self.primary} primary, "
                f"faults within {self.window_ms:g} ms")


#: The layouts the exercise's check uses: the same bug, other names and another primary.
LAYOUTS = (FailoverLayout(("n1", "n2", "n3"), "n1"), FailoverLayout(("a", "b", "c"), "b"))


# -- schedules ---------------------------------------------------------------------------

def validate_schedule(schedule: Any, layout: FailoverLayout, *, allow_empty: bool = False) -> tuple:
    """The schedule as a tuple of :class:`SimFault` (partition groups as tuples), or
    ``ValueError`` naming the first fault that breaks the rules (module docstring).  An
    empty schedule is refused unless ``allow_empty`` (a fault-free run)."""
    if isinstance(schedule, SimFault):
        raise ValueError("a schedule is a list of SimFault, not one SimFault: wrap it in [...]")
    if isinstance(schedule, (str, bytes, dict)) or not isinstance(schedule, Iterable):
        raise ValueError(f"a schedule is a list of SimFault(at, kind, target, duration), "
                         f"got {schedule!r:.120}")
    faults = list(schedule)
    if not faults and not allow_empty:
        raise ValueError("the schedule is empty: without faults there is nothing to test")
    out = []
    nodes = set(layout.nodes)
    names = ", ".join(sorted(layout.nodes))
    for i, f in enumerate(faults):
        where = f"fault {i} ({f!r:.160})"
        if not isinstance(f, SimFault):
            raise ValueError(f"{where} is not a SimFault(at, kind, target, duration)")
        if f.kind not in FAULT_KINDS:
            raise ValueError(f"{where}: kind {f.kind!r} is not used here; the kinds are "
                             f"{', '.join(FAULT_KINDS)}")
        target = f.target
        if f.kind in _NODE_KINDS:
            if not isinstance(target, str) or target not in nodes:
                raise ValueError(f"{where}: unknown node {target!r}; the replicas are {names} "
                                 f"({layout.primary} is primary at the start)")
        else:
            target = _partition_groups(target, nodes, names, where)
        end = f.at + f.duration
        if end > layout.window_ms:
            raise ValueError(f"{where} ends at {end:g} ms, after the faults' window of "
                             f"{layout.window_ms:g} ms: every fault must start and end within it")
        out.append(SimFault(f.at, f.kind, target, f.duration))
    return tuple(out)


def _partition_groups(target: Any, nodes: set, names: str, where: str) -> tuple:
    if isinstance(target, (str, bytes)) or not isinstance(target, Iterable):
        raise ValueError(f"{where}: a partition's target is a tuple of node groups, e.g. "
                         f"(('n1',), ('n2', 'n3')), not {target!r}")
    groups = []
    seen: set = set()
    for g in target:
        if isinstance(g, (str, bytes)) or not isinstance(g, Iterable):
            raise ValueError(f"{where}: partition group {g!r} must be a tuple of node ids, "
                             f"e.g. ('n1',) — not a bare string")
        g = tuple(g)
        if not g:
            raise ValueError(f"{where}: a partition group is empty")
        for n in g:
            if n not in nodes:
                raise ValueError(f"{where}: unknown node {n!r} in a partition group; the "
                                 f"replicas are {names}")
            if n in seen:
                raise ValueError(f"{where}: node {n!r} is in two partition groups")
            seen.add(n)
        groups.append(tuple(sorted(g)))
    if len(groups) < 2:
        raise ValueError(f"{where}: a partition needs at least two groups")
    return tuple(groups)


def random_schedule(layout: FailoverLayout, seed: int) -> tuple:
    """The course's standard random schedule over :data:`FAULT_KINDS`: one fault at a
    time, drawn from ``seed`` alone."""
    return random_sim_schedule(layout.nodes, seed=seed, duration_ms=layout.window_ms,
                               kinds=FAULT_KINDS)


# -- clients -----------------------------------------------------------------------------

class KVClient(Process):
    """A closed-loop client: think, ask the manager where the primary is, send one
    request, wait for its reply.  An answer is recorded as a completed
    :class:`Operation`; a refusal (not the primary, no backup attached) is not recorded —
    the operation definitely did not happen.  The client gives up when the manager names
    another primary than the one it asked (checked every ``watch_ms``) or after
    ``timeout_ms``: the outcome is then unknown (``ret=None``) and the client carries on
    under a new id, as a Jepsen process does.  (A long timeout: a primary cut off from its
    backups but still named commits the write after the heal, and a client that had
    given up on it would leave an unknown write that later reads observe — the most
    expensive kind of operation for the checker.)"""

    ticking = False

    watch_ms = 10.0

    def __init__(self, index: int, clients: int, group: SimReplicaGroup, history: list,
                 think_ms: tuple, timeout_ms: float) -> None:
        super().__init__(f"client-{index}")
        self.index, self.clients = index, clients
        self.group = group
        self.history = history
        self.think_ms, self.timeout_ms = think_ms, timeout_ms
        self.generate = kv_workload(keys=3, read_fraction=0.5, append_fraction=0.5).generate
        self.rng = group.sim.random.stream(f"client-{index}")
        self.running = True
        self.seq = 0
        self.incarnation = 0
        self.op_id = 0
        self.current: Optional[tuple] = None     # (op_id, input, call, primary asked)

    def on_start(self) -> None:
        self._later(self._next)

    def _later(self, fn, *args) -> None:
        self.sim.scheduler.schedule(self.rng.uniform(*self.think_ms), fn, *args)

    def _next(self) -> None:
        if not self.running:
            return
        primary = self.group.primary
        if primary is None:                        # a failover is under way
            self._later(self._next)
            return
        input = self.generate(self.rng, self.index, self.seq)
        self.seq += 1
        self.op_id += 1
        self.current = (self.op_id, input, self.sim.now, primary)
        self.sim.send(self.node_id, primary, Request(self.op_id, input))
        self.sim.scheduler.schedule(self.watch_ms, self._watch, self.op_id)

    @property
    def client_id(self) -> int:
        return self.index + self.incarnation * self.clients

    def on_message(self, src: str, msg: Any) -> None:
        if not isinstance(msg, Reply) or self.current is None or msg.op_id != self.current[0]:
            return
        _, input, call, _ = self.current
        self.current = None
        if msg.ok:
            self.history.append(Operation(self.client_id, input, call, msg.output, self.sim.now))
        self._later(self._next)

    def abandon(self) -> None:
        """Give up the operation in flight, if any (the end of a run): outcome unknown."""
        if self.current is not None:
            _, input, call, _ = self.current
            self.current = None
            self.history.append(Operation(self.client_id, input, call))

    def _watch(self, op_id: int) -> None:
        if self.current is None or self.current[0] != op_id:
            return
        _, input, call, asked = self.current
        if self.group.primary == asked and self.sim.now - call < self.timeout_ms:
            self.sim.scheduler.schedule(self.watch_ms, self._watch, op_id)
            return
        self.current = None
        self.history.append(Operation(self.client_id, input, call))
        self.incarnation += 1
        self._later(self._next)


# -- a run ---------------------------------------------------------------------------------

@dataclass
class FailoverRun:
    """What :func:`failover_run` saw: the history and the checker's verdict, the faults
    as applied (and those skipped), the failovers and fault events with the replicas'
    positions, and the lag samples ``(time, {node: entries behind the primary})``."""

    seed: int
    layout: FailoverLayout
    promote: str
    schedule: tuple
    history: list
    result: CheckResult
    faults: tuple              # FaultInterval, virtual ms
    skipped: tuple             # SimFault the nemesis could not start
    failovers: tuple           # Failover
    fault_events: tuple        # FaultEvent
    lag_samples: tuple
    acknowledged: int          # writes acknowledged to clients
    digest: str

    @property
    def completed(self) -> int:
        return sum(op.ret is not None for op in self.history)

    @property
    def lost_write(self) -> bool:
        """The checker found the history not linearizable."""
        return self.result.ok is False

    def lost_at_failover(self) -> int:
        """Acknowledged writes the promoted replicas lacked, over all failovers."""
        return sum(f.lost for f in self.failovers)

    def summary(self) -> str:
        verdict = {True: "linearizable", False: "NOT linearizable", None: "undecided"}[self.result.ok]
        return (f"seed {self.seed}, promote={self.promote}: {len(self.history)} operations "
                f"({self.completed} completed), {len(self.faults)} faults, "
                f"{len(self.failovers)} failover(s), {self.lost_at_failover()} acknowledged "
                f"write(s) missing on promotion: {verdict}")

    def diagnosis(self) -> str:
        """Why this run lost (or did not lose) an acknowledged write, from what the group
        recorded: which replica was promoted and how far behind it was."""
        skipped = _skipped_text(self.skipped)
        if not self.failovers:
            return (f"the primary {self.layout.primary} was never replaced: the manager only "
                    f"fails over when the primary stops answering it for {self.layout.detect_ms:g} "
                    f"ms (crashed, paused or isolated){skipped}")
        worst = max(self.failovers, key=lambda f: f.lost)
        if worst.lost:
            return (f"at t={worst.time:.0f} ms the manager replaced {worst.old} by "
                    f"{worst.promoted}, which lacked {worst.lost} acknowledged write(s) "
                    f"({_reports_text(worst)}){_evidence_text(self.result)}{skipped}")
        parts = []
        for f in self.failovers:
            parts.append(_failover_text(f, self.fault_events, self.lag_samples))
        return "; ".join(parts) + skipped


def _evidence_text(result: CheckResult) -> str:
    if not result.evidence:
        return ""
    ev = result.evidence[0]
    op = ev.failed
    if op is None:
        return f"; the checker found key {ev.key!r} not linearizable"
    return (f"; the checker found key {ev.key!r} not linearizable: the {op.input[0]} of "
            f"client {op.client_id} at t={op.call:.0f}–{op.ret:.0f} ms cannot follow the "
            f"{len(ev.prefix)} operations before it")


def _reports_text(f: Failover) -> str:
    return ", ".join(f"{n} at entry {s}" for n, _, s in f.reports)


def _failover_text(f: Failover, events: Sequence[FaultEvent], lag: Sequence[tuple]) -> str:
    text = (f"at t={f.time:.0f} ms the manager replaced {f.old} by {f.promoted}, which held "
            f"every acknowledged write ({_reports_text(f)})")
    skipped = [n for n in f.recovering if n != f.promoted]
    if f.rule == "lowest_id" and skipped and min(n for n, _, _ in f.reports) != f.promoted:
        text += (f" — it passed over {', '.join(skipped)}, still recovering from a restart (the "
                 f"broken manager does not promote a recovering backup when another answered)")
    away = next((e for e in reversed(events) if e.time <= f.time and e.target == f.old
                 and e.action in ("crash", "pause", "isolate")), None)
    if away is None:
        return text
    pos = away.position(f.promoted)
    text += (f"; when {f.old} was {_past(away.action)} at t={away.time:.0f} ms, "
             f"{f.promoted} was {pos.missing} acknowledged write(s) behind")
    if pos.missing and pos.paused:
        return text + (" — but it was paused, and a paused replica misses nothing: the messages "
                       "waiting for it arrived when it resumed, before the manager asked")
    if pos.missing:
        return text + " — but it received them before the manager asked for positions"
    others = [p for p in away.positions if p.node not in (f.promoted, f.old) and p.missing]
    if others:
        text += (f" (behind then: {', '.join(f'{p.node} by {p.missing}' for p in others)} — "
                 f"not the replica the manager promoted)")
    back = next((e for e in reversed(events) if e.time <= away.time and _brings_back(e, f.promoted)),
                None)
    if back is not None:
        caught = next((t for t, lags in lag if t >= back.time and lags.get(f.promoted) == 0), None)
        if caught is not None and caught <= away.time:
            text += (f" — it had caught up by t={caught:.0f} ms, {caught - back.time:.0f} ms "
                     f"after the {back.action} at t={back.time:.0f} ms")
    return text


def _brings_back(e: FaultEvent, node: str) -> bool:
    return (e.action in ("restart", "resume") and e.target == node) or e.action == "heal"


def _past(action: str) -> str:
    return {"crash": "crashed", "pause": "paused", "isolate": "isolated"}[action]


def _skipped_text(skipped: Sequence[SimFault]) -> str:
    if not skipped:
        return ""
    shown = "; ".join(f"{f}" for f in skipped[:3])
    return (f" ({len(skipped)} of your faults could not start and were skipped — a node fault "
            f"on a node already down, paused or faulted, or a partition/isolate while another "
            f"was active: {shown})")


def failover_run(schedule: Iterable[SimFault], *, seed: int,
                 layout: FailoverLayout = LAYOUTS[0], promote: str = "lowest_id",
                 clients: int = 3, tail_ms: float = 800.0, think_ms: tuple = (0.0, 10.0),
                 timeout_ms: float = 1000.0, check_timeout: float = 10.0) -> FailoverRun:
    """Run the group under ``schedule`` (validated first; empty: a fault-free run) and
    check the history; see the module docstring.  ``promote="lowest_id"`` is the broken store, ``"most_up_to_date"``
    the fixed one."""
    schedule = validate_schedule(schedule, layout, allow_empty=True)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"seed must be an int, not {seed!r}")
    group = SimReplicaGroup(layout.nodes, primary=layout.primary, promote=promote, seed=seed,
                            detect_ms=layout.detect_ms)
    history: list[Operation] = []
    workers = [KVClient(i, clients, group, history, think_ms, timeout_ms) for i in range(clients)]
    for w in workers:
        group.sim.add(w)
    nemesis = SimNemesis(group, schedule)
    nemesis.start()
    group.run_for(layout.window_ms)
    nemesis.heal_all()
    group.run_for(tail_ms)
    for w in workers:
        w.running = False
    group.run_for(min(timeout_ms, 200.0) + KVClient.watch_ms)
    for w in workers:
        w.abandon()
    history.sort(key=lambda op: (op.call, str(op.client_id)))
    result = check(kv(), history, timeout=check_timeout)
    return FailoverRun(seed, layout, promote, schedule, history, result, nemesis.intervals,
                       tuple(nemesis.skipped), tuple(group.failovers), tuple(group.fault_events),
                       tuple(group.lag_samples), group.acknowledged_writes(), group.trace_digest())


# -- random campaigns ----------------------------------------------------------------------

@dataclass(frozen=True)
class Campaign:
    """Random schedules over ``seeds``: the seeds whose run lost an acknowledged write,
    and per seed the number of failovers and of writes missing on promotion."""

    layout: FailoverLayout
    promote: str
    seeds: tuple
    found: tuple               # seeds with a linearizability violation
    undecided: tuple           # seeds the checker could not decide in time
    failovers: tuple           # per seed
    missing: tuple             # per seed: acknowledged writes missing on promotion

    @property
    def runs(self) -> int:
        return len(self.seeds)

    def text(self) -> str:
        return (f"random schedules: {len(self.found)} of {self.runs} seeds found the bug "
                f"({sum(self.failovers)} failovers in all, {sum(1 for m in self.missing if m)} "
                f"promoted a replica that lacked an acknowledged write)")


@functools.lru_cache(maxsize=8)
def random_campaign(seeds: tuple = tuple(range(50)), layout: FailoverLayout = LAYOUTS[0],
                    promote: str = "lowest_id") -> Campaign:
    """:func:`random_schedule` against the store on each seed (cached: same arguments,
    same answer)."""
    seeds = tuple(seeds)
    found, undecided, failovers, missing = [], [], [], []
    for seed in seeds:
        run = failover_run(random_schedule(layout, seed), seed=seed, layout=layout, promote=promote)
        if run.result.ok is False:
            found.append(seed)
        elif run.result.ok is None:
            undecided.append(seed)
        failovers.append(len(run.failovers))
        missing.append(run.lost_at_failover())
    return Campaign(layout, promote, seeds, tuple(found), tuple(undecided), tuple(failovers),
                    tuple(missing))


# -- a picture -------------------------------------------------------------------------------

def plot_lag(run: FailoverRun, title: Optional[str] = None):
    """A plotly figure: how many log entries (writes and reads) each replica lacks below
    the primary's commit point, over time — while no live primary is named, below the
    last one's — with the faults shaded and the failovers marked (plotly imported
    here).  A crashed replica has no line."""
    import plotly.graph_objects as go

    fig = go.Figure()
    for node in sorted(run.layout.nodes):
        xs = [t for t, lags in run.lag_samples]
        ys = [lags.get(node) for t, lags in run.lag_samples]
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", name=node, uid=f"lag-{node}",
                                 connectgaps=False))
    for f in run.faults:
        end = f.end if f.end is not None else run.layout.window_ms
        fig.add_vrect(x0=f.start, x1=end, fillcolor="grey", opacity=0.15, line_width=0,
                      annotation_text=f.label, annotation_position="top left")
    for f in run.failovers:
        fig.add_vline(x=f.time, line_dash="dash", line_color="#d62728",
                      annotation_text=f"{f.promoted} promoted" + (
                          f", lacking {f.lost} acknowledged writes" if f.lost else ""),
                      annotation_position="bottom right")
    fig.update_layout(title=title or run.summary(), xaxis_title="virtual time (ms)",
                      yaxis_title="entries behind the primary", height=360,
                      margin=dict(l=60, r=20, t=60, b=40))
    return fig
