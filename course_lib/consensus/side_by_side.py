"""Two consensus protocols side by side, over one network that you control.

:class:`SideBySide` runs the chapter's "more than half" protocol
(:class:`~course_lib.consensus.chapter_sim.ChapterCluster`) and single-decree Paxos
(:class:`~course_lib.consensus.cluster.PaxosCluster`) on the same nodes, from the same
seed, with the same proposals at time 0, and applies every fault to both: crash and
restart a node, partition and heal, message loss and delay, and **manual delivery**
("you are the network"): nothing arrives by itself, the messages in flight are listed
per protocol (:meth:`held`: id, from, to, type, ballot, value) and the caller
:meth:`deliver` s or :meth:`drop` s each one.  It is the model behind
``course_lib.viz.consensus_widget.ConsensusWidget`` and is tested without ipywidgets::

    m = SideBySide(3, seed=7, manual=True)       # n1 proposes red, n3 proposes blue
    m.run_schedule(TWO_VALUES, panel="chapter")  # n1 -> n3, then n3 -> n1
    assert m.violated("chapter")                 # n3 decided red, n1 decided blue
    m.run_schedule(TWO_VALUES + ["all"], panel="paxos")
    assert not m.violated("paxos")

**Schedules** are lists of steps, each a short string, applied to one panel or both:

- ``"n1->n3"`` deliver the oldest message waiting on the link n1 -> n3
  (``"n1->n3 Prepare"``: the oldest of that type; ``"drop n1->n3"`` loses it);
- ``"#4"`` deliver held message 4 (``"drop #4"``);
- ``"among n1 n2"`` deliver, oldest first, every message between these nodes (including
  the replies they cause) until none is left;
- ``"all"`` deliver everything, oldest first, until nothing is left.

A link step finds nothing to deliver when its protocol sent nothing on that link: it is
logged as skipped (the two protocols send different messages; the *order of links* is
what a schedule shares).  Delivering "oldest first" never advances time, so Paxos's
retry timers do not fire during a schedule.

**Safety** is judged on every value ever decided, across crashes: the chapter's
``decided[key]`` as it is set (a crash forgets it; the node may later decide again),
Paxos's learned values and chosen ballots.  Two different values is a violation of
agreement (:meth:`violated`, :meth:`banner`).

Every call that changes the run is recorded as an :class:`Action` at its simulated time;
:meth:`replay` rebuilds both clusters from the seed and re-applies them: the same seed
and the same actions give the same traces (:meth:`digests`).
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from typing import Any, Iterable, Optional

from ..chapter.consensus import Proposal, ProposalResponse
from .chapter_sim import ChapterCluster
from .cluster import PaxosCluster
from .messages import Accept, Accepted, Decided, Inquire, Nack, Prepare, Promise, ZERO

PANELS = ("chapter", "paxos")
TITLES = {"chapter": "the chapter's \"more than half\"", "paxos": "single-decree Paxos"}
DEFAULT_PROPOSALS = (("n1", "red"), ("n3", "blue"))
# The chapter's protocol decides two values after two deliveries: each proposer hears
# the other's proposal first.  Applied to Paxos, the same links carry Prepares.
TWO_VALUES = ("n1->n3", "n3->n1")
MAX_DELIVERIES = 10_000          # "all" / "among" stop here (a protocol that never stops)


@dataclass(frozen=True)
class HeldMessage:
    """One message waiting for manual delivery, as the learner reads it."""
    id: int
    src: str
    dst: str
    kind: str                    # "Proposal", "reply: accepted", "Prepare", "Nack", ...
    ballot: Optional[str]        # Paxos's ballot ("1.n3"); the chapter has none
    value: Optional[str]         # the value it carries, if any

    def label(self) -> str:
        return (f"#{self.id}  {self.src} → {self.dst}  {self.kind}"
                + ("" if self.ballot is None else f"  ballot {self.ballot}")
                + ("" if self.value is None else f"  {self.value}"))


@dataclass(frozen=True)
class Action:
    """One call on the model at simulated ``time`` (ms), replayable."""
    time: float
    method: str
    args: tuple = ()


@dataclass(frozen=True)
class StepResult:
    """What one schedule step did in one panel: the labels of the messages it
    delivered or dropped (empty: it found nothing)."""
    panel: str
    step: str
    done: tuple

    @property
    def skipped(self) -> bool:
        return not self.done


def describe(msg: Any) -> tuple:
    """``(type, ballot, value)`` of a message of either protocol, as text.  Refusals
    read as such: a chapter reply that says False is "reply: rejected", Paxos's
    ``Nack`` names the ballot promised instead."""
    t = type(msg)
    if t is Proposal:
        return ("Proposal", None, msg.value)
    if t is ProposalResponse:
        return ("reply: accepted" if msg.accepted else "reply: rejected", None, msg.value)
    if t is Prepare:
        return ("Prepare", str(msg.ballot), None)
    if t is Promise:
        had = None if msg.accepted_ballot == ZERO else f"had accepted {msg.accepted_value} in {msg.accepted_ballot}"
        return ("Promise", str(msg.ballot), had)
    if t is Accept:
        return ("Accept", str(msg.ballot), str(msg.value))
    if t is Accepted:
        return ("Accepted", str(msg.ballot), str(msg.value))
    if t is Nack:
        return (f"Nack: promised {msg.promised}", str(msg.ballot), None)
    if t is Decided:
        return ("Decided", None, str(msg.value))
    if t is Inquire:
        return ("Inquire", None, None)
    return (t.__name__, None, None)


def _check_panel(panel: str) -> str:
    if panel not in PANELS:
        raise ValueError(f"unknown protocol {panel!r}; choose one of {list(PANELS)}")
    return panel


def _panels(panel: str) -> tuple:
    return PANELS if panel == "both" else (_check_panel(panel),)


_LINK = re.compile(r"^(?:(deliver|drop)\s+)?(\w+)\s*(?:->|→)\s*(\w+)(?:\s+(\S.*))?$")
_ID = re.compile(r"^(?:(deliver|drop)\s+)?#(\d+)$")


def parse_step(step: str) -> tuple:
    """A schedule step (see the module docstring) -> ``(verb, arg...)``; ``ValueError``
    naming the problem when it is not one."""
    if not isinstance(step, str) or not step.strip():
        raise ValueError(f"a step is a non-empty string like 'n1->n3', got {step!r}")
    text = " ".join(step.split())
    if text == "all":
        return ("all",)
    if text.startswith("among "):
        nodes = tuple(re.split(r"[\s,]+", text[6:].strip()))
        if len(nodes) < 2:
            raise ValueError(f"'among' needs at least two nodes, got {step!r}")
        return ("among", frozenset(nodes))
    m = _ID.match(text)
    if m:
        return (m.group(1) or "deliver", "id", int(m.group(2)))
    m = _LINK.match(text)
    if m:
        return (m.group(1) or "deliver", "link", m.group(2), m.group(3), m.group(4))
    raise ValueError(f"not a step: {step!r}; write 'n1->n3', 'n1->n3 Prepare', 'drop n1->n3', "
                     f"'#4', 'among n1 n2' or 'all'")


class SideBySide:
    """The chapter's protocol and Paxos on ``n`` nodes ``n1..nn``, one seed, one set of
    faults (see the module docstring).

    ``proposals``: ``(node, value)`` pairs proposed at time 0 in both protocols (default
    n1 proposes ``red``, n3 proposes ``blue``); ``manual``: start with manual delivery,
    so the proposals themselves wait (ids in send order); ``latency_ms``: the delay
    range of both networks.
    """

    def __init__(self, n: int = 3, seed: int = 0, *, proposals: Optional[Iterable] = None,
                 manual: bool = False, latency_ms: tuple = (1, 20), key: str = "x") -> None:
        if not isinstance(n, int) or isinstance(n, bool) or not 2 <= n <= 7:
            raise ValueError(f"n must be an int from 2 to 7, got {n!r}")
        if not isinstance(seed, int) or isinstance(seed, bool):
            raise ValueError(f"seed must be an int, got {seed!r}")
        if not isinstance(manual, bool):
            raise ValueError(f"manual must be True or False, got {manual!r}")
        proposals = tuple(DEFAULT_PROPOSALS if proposals is None else
                          (proposals.items() if isinstance(proposals, dict) else proposals))
        self.n, self.seed, self.key = n, seed, key
        self.latency_ms = latency_ms
        self.initial_manual = manual
        self.initial_proposals = tuple(tuple(p) for p in proposals)
        self._build()

    def _build(self) -> None:
        self.clusters = {"chapter": ChapterCluster(self.n, self.seed, latency_ms=self.latency_ms),
                         "paxos": PaxosCluster(self.n, self.seed, latency_ms=self.latency_ms)}
        self.node_ids: tuple = self.clusters["paxos"].node_ids
        self.actions: list = []
        self.proposed: dict = {}                  # node -> value, as proposed in both
        if self.initial_manual:
            for c in self.clusters.values():
                c.set_manual_delivery(True)
        for entry in self.initial_proposals:
            if len(entry) != 2:
                raise ValueError(f"a proposal is (node, value), got {entry!r}")
            self._propose(*entry)

    # -- the clusters -------------------------------------------------------------------
    def cluster(self, panel: str):
        return self.clusters[_check_panel(panel)]

    @property
    def now(self) -> float:
        return self.clusters["paxos"].now

    @property
    def manual(self) -> bool:
        return self.clusters["paxos"].manual_delivery

    def _check_node(self, nid: str) -> str:
        if nid not in self.node_ids:
            raise ValueError(f"unknown node {nid!r}; nodes: {list(self.node_ids)}")
        return nid

    def _record(self, method: str, args: tuple) -> None:
        self.actions.append(Action(self.now, method, args))

    # -- proposals ------------------------------------------------------------------------
    def _propose(self, nid: str, value: str) -> None:
        self._check_node(nid)
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"a value is a non-empty string, got {value!r}")
        value = value.strip()
        if self.proposed.get(nid, value) != value:
            raise ValueError(f"{nid} already proposes {self.proposed[nid]!r} (Paxos: one value a node)")
        if not self.clusters["paxos"].sim.is_alive(nid):
            raise ValueError(f"cannot propose at {nid!r}: it is down")
        self.clusters["chapter"].propose(nid, self.key, value)
        self.clusters["paxos"].propose(nid, value)
        self.proposed[nid] = value

    def propose(self, nid: str, value: str) -> None:
        """``nid`` proposes ``value`` now, in both protocols."""
        self._propose(nid, value)
        self._record("propose", (nid, value))

    # -- time -----------------------------------------------------------------------------
    def advance(self, ms: float) -> None:
        """Run both simulations ``ms`` ms (with manual delivery nothing arrives, but
        Paxos's timers fire: a proposer that heard nothing retries, higher)."""
        if not isinstance(ms, (int, float)) or isinstance(ms, bool) or not 0 <= ms <= 600_000:
            raise ValueError(f"time must be 0 to 600000 ms, got {ms!r}")
        for c in self.clusters.values():
            c.run_for(ms)

    # -- faults, applied to both ------------------------------------------------------------
    def crash(self, nid: str) -> None:
        """Crash ``nid`` in both: the chapter's node forgets everything, Paxos's keeps
        what it persisted (promise, acceptance, what it learned)."""
        self._check_node(nid)
        if not self.clusters["paxos"].sim.is_alive(nid):
            raise ValueError(f"cannot kill {nid}: it is already down")
        for c in self.clusters.values():
            c.sim.crash(nid)
        self._record("crash", (nid,))

    def restart(self, nid: str) -> None:
        self._check_node(nid)
        if self.clusters["paxos"].sim.is_alive(nid):
            raise ValueError(f"cannot restart {nid}: it is up")
        for c in self.clusters.values():
            c.sim.restart(nid)
        self._record("restart", (nid,))

    def partition(self, *groups) -> None:
        """Cut every link between the groups (``{"n1"}, {"n2", "n3"}``), both ways."""
        clean = []
        for g in groups:
            if isinstance(g, str):
                raise ValueError(f"a partition group is a set of node ids, not the str {g!r}")
            clean.append(tuple(sorted(self._check_node(x) for x in g)))
        if len(clean) < 2:
            raise ValueError("a partition needs at least two groups")
        for c in self.clusters.values():
            c.sim.partition(*clean)               # validates overlaps and empties
        self._record("partition", tuple(clean))

    def heal(self) -> None:
        for c in self.clusters.values():
            c.sim.heal()
        self._record("heal", ())

    def set_loss(self, p: float) -> None:
        """Lose each message with probability ``p`` (automatic delivery only: held
        messages are yours to drop)."""
        for c in self.clusters.values():
            c.network.drop_rate = p               # validates
        self._record("set_loss", (float(p),))

    def set_delay(self, lo: float, hi: float) -> None:
        for c in self.clusters.values():
            c.network.delay_ms = (lo, hi)         # validates
        self._record("set_delay", (lo, hi))

    def network_settings(self) -> tuple:
        net = self.clusters["paxos"].network
        return net.drop_rate, net.delay_ms

    def cuts(self) -> set:
        return set(self.clusters["paxos"].network.cuts)

    def alive(self, nid: str) -> bool:
        return self.clusters["paxos"].sim.is_alive(nid)

    # -- you are the network ---------------------------------------------------------------
    def set_manual(self, on: bool) -> None:
        """Manual delivery on (``True``) or off, in both protocols."""
        if not isinstance(on, bool):
            raise ValueError(f"manual delivery is True or False, got {on!r}")
        if on == self.manual:
            raise ValueError("you are already the network" if on else "delivery is already automatic")
        for c in self.clusters.values():
            c.set_manual_delivery(on)
        self._record("set_manual", (on,))

    def held(self, panel: str) -> list:
        """The messages of ``panel`` waiting for you, oldest first ([] when automatic)."""
        return [HeldMessage(f.id, f.src, f.dst, *describe(f.msg))
                for f in self.cluster(panel).held_messages()]

    def in_flight(self, panel: str) -> list:
        """Every message of ``panel`` on the wire (``InFlight``; held ones have an id)."""
        return self.cluster(panel).sim.in_flight()

    def _need_manual(self) -> None:
        if not self.manual:
            raise ValueError("the network delivers by itself: turn on 'you are the network' first")

    def _take(self, panel: str, mid: int, deliver: bool) -> HeldMessage:
        self._need_manual()
        c = self.cluster(panel)
        waiting = c.held_messages()
        f = next((f for f in waiting if f.id == mid), None)
        if f is None:
            ids = [f.id for f in waiting]
            raise ValueError(f"{panel}: no message #{mid} is waiting"
                             + (f"; waiting: {ids}" if ids else "; nothing is waiting"))
        (c.deliver if deliver else c.drop_message)(mid)
        return HeldMessage(f.id, f.src, f.dst, *describe(f.msg))

    def deliver(self, panel: str, mid: int) -> HeldMessage:
        """Deliver ``panel``'s held message ``mid`` now (a cut link or a down receiver
        still loses it)."""
        found = self._take(panel, mid, True)
        self._record("deliver", (panel, mid))
        return found

    def drop(self, panel: str, mid: int) -> HeldMessage:
        """Lose ``panel``'s held message ``mid``."""
        found = self._take(panel, mid, False)
        self._record("drop", (panel, mid))
        return found

    def oldest(self, panel: str, src: str = None, dst: str = None, kind: str = None) -> Optional[HeldMessage]:
        """The oldest held message of ``panel`` from ``src`` to ``dst`` whose type starts
        with ``kind`` (any, where None), or None."""
        for h in self.held(panel):
            if ((src is None or h.src == src) and (dst is None or h.dst == dst)
                    and (kind is None or h.kind.lower().startswith(kind.lower()))):
                return h
        return None

    def deliver_all(self, panel: str = "both", among: Optional[Iterable[str]] = None) -> list:
        """Deliver, oldest first, every held message (only those between ``among``'s
        nodes, if given), and those they cause, until none is left; returns their labels."""
        self._need_manual()
        group = None if among is None else frozenset(self._check_node(x) for x in among)
        done = []
        for p in _panels(panel):
            for _ in range(MAX_DELIVERIES):
                nxt = next((h for h in self.held(p)
                            if group is None or (h.src in group and h.dst in group)), None)
                if nxt is None:
                    break
                done.append(self.deliver(p, nxt.id).label())
            else:
                raise RuntimeError(f"{p}: still delivering after {MAX_DELIVERIES} messages")
        return done

    def run_schedule(self, steps: Iterable[str], panel: str = "both") -> list:
        """Apply each step (see the module docstring) to ``panel`` (or both), in order;
        returns one :class:`StepResult` per step and panel.  Turns manual delivery on if
        it is off.  A malformed step raises ``ValueError`` before anything runs."""
        steps = list(steps) if not isinstance(steps, str) else [steps]
        parsed = [(s, parse_step(s)) for s in steps]
        panels = _panels(panel)
        for _s, p in parsed:
            if p[0] == "among":
                for x in p[1]:
                    self._check_node(x)
            elif len(p) > 1 and p[1] == "link":
                self._check_node(p[2])
                self._check_node(p[3])
        if not self.manual:
            self.set_manual(True)
        out = []
        for text, p in parsed:
            for pn in panels:
                out.append(StepResult(pn, text, tuple(self._run_step(pn, p))))
        return out

    def _run_step(self, panel: str, p: tuple) -> list:
        if p[0] == "all":
            return self.deliver_all(panel)
        if p[0] == "among":
            return self.deliver_all(panel, among=p[1])
        verb, how = p[0], p[1]
        if how == "id":
            target = next((h for h in self.held(panel) if h.id == p[2]), None)
        else:
            target = self.oldest(panel, p[2], p[3], p[4])
        if target is None:
            return []
        act = self.deliver if verb == "deliver" else self.drop
        return [("dropped " if verb == "drop" else "") + act(panel, target.id).label()]

    def run_random(self, rng: random.Random, *, steps: int = 200, drop: float = 0.1,
                   fault: float = 0.03, wait: float = 0.05) -> None:
        """One random schedule for both panels, drawn from ``rng`` (manual delivery is
        turned on).  At each step: with probability ``wait`` 5 to 50 ms pass (Paxos's
        proposers may retry with higher ballots); with probability ``fault`` a random
        node crashes, or restarts if it is down, in both protocols; otherwise one random
        position in the list of waiting messages is chosen and, in each panel, the
        message at that position is delivered (or dropped, with probability ``drop``).
        Stops after ``steps`` steps or when nothing waits anywhere."""
        if not isinstance(rng, random.Random):
            raise ValueError(f"rng must be a random.Random, got {rng!r}")
        if not self.manual:
            self.set_manual(True)
        for _ in range(steps):
            u = rng.random()
            if u < wait:
                self.advance(rng.uniform(5, 50))
                continue
            if u < wait + fault:
                nid = rng.choice(self.node_ids)
                (self.crash if self.alive(nid) else self.restart)(nid)
                continue
            lists = {p: self.clusters[p].held_messages() for p in PANELS}
            if not any(lists.values()):
                break
            pick, lose = rng.random(), rng.random() < drop
            for p, waiting in lists.items():
                if waiting:
                    mid = waiting[int(pick * len(waiting))].id
                    (self.drop if lose else self.deliver)(p, mid)

    # -- what was decided ------------------------------------------------------------------
    def decided(self, panel: str) -> dict:
        """Each node's decided value now (None: nothing, or forgotten in a crash)."""
        c = self.cluster(panel)
        return c.decided(self.key) if panel == "chapter" else c.decided()

    def decisions(self, panel: str) -> list:
        """Every decision so far, across crashes: ``(time ms, node, value)``."""
        c = self.cluster(panel)
        if panel == "chapter":
            return [(t, nid, v) for t, nid, k, v in c.decisions if k == self.key]
        return list(c.decisions)

    def decided_values(self, panel: str) -> set:
        """Every value any node of ``panel`` ever decided (Paxos: or a ballot chose)."""
        values = {v for _t, _n, v in self.decisions(panel)}
        if panel == "paxos":
            values |= set(self.clusters["paxos"].chosen.values())
        return values

    def violated(self, panel: str) -> bool:
        """Agreement broken: two different values decided."""
        return len(self.decided_values(panel)) > 1

    def banner(self, panel: str) -> str:
        """One line for the panel: the violation, the one value, or nothing yet."""
        values = self.decided_values(panel)
        if len(values) > 1:
            who = ", ".join(f"{n}: {v}" for _t, n, v in self.decisions(panel))
            return f"SAFETY VIOLATED: two values decided ({who})"
        if values:
            (v,) = values
            nodes = sorted({n for _t, n, x in self.decisions(panel) if x == v})
            return f"one value decided: {v} (by {' '.join(nodes)})"
        return "nothing decided yet"

    def node_rows(self, panel: str) -> list:
        """Per node: ``(node, "up" | "down", detail, decided)`` for the widget's table;
        detail is the values seen (chapter) or "promised · accepted" (Paxos)."""
        c = self.cluster(panel)
        rows = []
        decided = self.decided(panel)
        for nid in self.node_ids:
            up = c.sim.is_alive(nid)
            if panel == "chapter":
                seen = sorted(c.hosts[nid].core.values.get(self.key, ()))
                detail = ", ".join(seen) if seen else "none"
            else:
                core = c.hosts[nid].core
                acc = "-" if core.accepted_ballot == ZERO else f"{core.accepted_value} in {core.accepted_ballot}"
                detail = f"{core.promised} · {acc}"
            rows.append((nid, "up" if up else "down", detail, decided[nid]))
        return rows

    def summary(self) -> str:
        lines = [f"t = {self.now:.1f} ms, seed {self.seed}, proposals {self.proposed}"]
        for p in PANELS:
            lines.append(f"{p:8s} decided {self.decided(p)} -> {self.banner(p)}")
        return "\n".join(lines)

    def digests(self) -> dict:
        return {p: c.trace_digest() for p, c in self.clusters.items()}

    # -- replay ----------------------------------------------------------------------------
    def replay(self, seed: Optional[int] = None) -> None:
        """Rebuild both clusters from ``seed`` (default: this one) and re-apply
        :attr:`actions` at their simulated times, then run to the current time.  An
        action refused this time (another seed) is skipped."""
        if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
            raise ValueError(f"seed must be an int, got {seed!r}")
        actions, end = list(self.actions), self.now
        if seed is not None:
            self.seed = seed
        self._build()
        for a in actions:
            self.advance(max(0.0, a.time - self.now))
            try:
                getattr(self, a.method)(*a.args)
            except ValueError:
                continue
        self.advance(max(0.0, end - self.now))

    def reset(self, seed: Optional[int] = None) -> None:
        """A fresh run from ``seed`` (default: this one): the actions are dropped."""
        if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
            raise ValueError(f"seed must be an int, got {seed!r}")
        if seed is not None:
            self.seed = seed
        self._build()
