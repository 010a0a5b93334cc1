"""The simulated network: delay, loss, duplication, reordering, partitions.

Every message goes through :meth:`Network.send`.  Faults are drawn from the
network's own random stream, so a run is reproduced from its seed.

- ``delay_ms``: a ``(lo, hi)`` uniform range, a number, or ``callable(rng) -> ms``;
  per-link overrides with :meth:`set_link`.
- ``drop_rate``, ``duplicate_rate``: probabilities per message (per link overridable).
- ``reorder``: False keeps each link FIFO (a message is never delivered before one
  sent earlier on the same link).  True lifts FIFO and, with probability
  ``reorder_rate``, holds a message back by up to ``reorder_max_ms`` ("long
  reordering": a stale message may arrive long after newer ones).
- cuts: ordered pairs ``(src, dst)`` that lose every message, so a link can be cut one
  way only.  A message is checked when sent and again when delivered: a partition also
  swallows what was in flight.

Messages in flight stay queryable (:meth:`in_flight`) for widgets.

**Manual delivery** ("you are the network"): after :meth:`hold`, nothing is delivered by
itself.  The messages on the wire and every message sent from then on wait in
:meth:`held`, each with an ``id`` (numbered in send order), until the caller
:meth:`take` s one to deliver or drop it (or :meth:`duplicate` s it); loss, duplication and delay are not drawn
for them (the caller decides), cuts still drop at send and at delivery.
:meth:`release` hands the waiting messages back to the clock.  While delivery is
automatic none of this runs, and the random draws are exactly those of a network that
never had the mode: the same seed gives the same run.
"""

from __future__ import annotations

import heapq
import math
import random
from heapq import heappush
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Optional, Union

DelaySpec = Union[float, int, tuple, Callable[[random.Random], float]]


def _check_delay(spec: DelaySpec) -> DelaySpec:
    if callable(spec):
        return spec
    if isinstance(spec, (int, float)) and not isinstance(spec, bool):
        if spec < 0:
            raise ValueError(f"delay must be >= 0 ms, got {spec!r}")
        return (float(spec), float(spec))
    if isinstance(spec, tuple) and len(spec) == 2:
        lo, hi = spec
        if not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in spec):
            raise ValueError(f"delay range must hold numbers, got {spec!r}")
        if lo < 0 or hi < lo:
            raise ValueError(f"delay range must satisfy 0 <= lo <= hi, got {spec!r}")
        return (float(lo), float(hi))
    raise ValueError(f"delay must be ms, a (lo, hi) range or callable(rng), got {spec!r}")


def _check_rate(name: str, p: float) -> float:
    if not isinstance(p, (int, float)) or isinstance(p, bool) or not 0.0 <= p <= 1.0:
        raise ValueError(f"{name} must be a probability in [0, 1], got {p!r}")
    return float(p)


@dataclass(frozen=True, slots=True)
class InFlight:
    """A message on the wire.  A message held for manual delivery has an ``id`` and
    ``deliver_at = inf`` (it arrives when someone delivers it)."""
    src: str
    dst: str
    msg: Any
    sent_at: float
    deliver_at: float
    id: Optional[int] = None


class LinkConfig:
    """Per-link overrides; None means "use the network's default"."""
    __slots__ = ("delay", "drop_rate", "duplicate_rate")

    def __init__(self, delay=None, drop_rate=None, duplicate_rate=None) -> None:
        self.delay = delay
        self.drop_rate = drop_rate
        self.duplicate_rate = duplicate_rate


class Network:
    """Delivers messages between endpoints through the scheduler, with faults."""

    def __init__(self, scheduler, rng: random.Random, trace, deliver: Callable) -> None:
        self._sched = scheduler
        self._rng = rng
        self._trace = trace
        # deliver(src, dst, msg, sent_at), scheduled at the arrival time: the simulation's
        # hook; it drops the message if the link was cut meanwhile (see ``cuts``)
        self._deliver = deliver
        self._delay: tuple = (1.0, 5.0)
        self._delay_fn: Optional[Callable] = None
        self._drop = 0.0
        self._dup = 0.0
        self.reorder = False
        self.reorder_rate = 0.1
        self.reorder_max_ms = 500.0
        self.cuts: set = set()
        self._links: dict = {}
        self._fifo_tail: dict = {}       # (src, dst) -> latest scheduled delivery time
        # while delivery is manual: id -> (InFlight, delay to use if released to the clock)
        self._held: Optional[dict] = None
        self._held_ids = 0
        self.sent = 0
        self.delivered = 0
        self.dropped = 0
        self.duplicated = 0

    # -- configuration -------------------------------------------------------------
    @property
    def delay_ms(self) -> DelaySpec:
        return self._delay_fn or self._delay

    @delay_ms.setter
    def delay_ms(self, spec: DelaySpec) -> None:
        spec = _check_delay(spec)
        if callable(spec):
            self._delay_fn = spec
        else:
            self._delay_fn = None
            self._delay = spec

    @property
    def drop_rate(self) -> float:
        return self._drop

    @drop_rate.setter
    def drop_rate(self, p: float) -> None:
        self._drop = _check_rate("drop_rate", p)

    @property
    def duplicate_rate(self) -> float:
        return self._dup

    @duplicate_rate.setter
    def duplicate_rate(self, p: float) -> None:
        self._dup = _check_rate("duplicate_rate", p)

    def set_link(self, src: str, dst: str, *, delay: DelaySpec = None,
                 drop_rate: float = None, duplicate_rate: float = None) -> None:
        """Override delay / loss / duplication on the one-way link ``src -> dst``."""
        cfg = LinkConfig(
            None if delay is None else _check_delay(delay),
            None if drop_rate is None else _check_rate("drop_rate", drop_rate),
            None if duplicate_rate is None else _check_rate("duplicate_rate", duplicate_rate),
        )
        self._links[(src, dst)] = cfg

    def clear_links(self) -> None:
        self._links.clear()

    # -- cuts (the simulation validates node ids) ------------------------------------
    def cut(self, src: str, dst: str) -> None:
        self.cuts.add((src, dst))

    def uncut(self, src: str, dst: str) -> None:
        self.cuts.discard((src, dst))

    def heal(self) -> None:
        self.cuts.clear()

    def is_cut(self, src: str, dst: str) -> bool:
        return (src, dst) in self.cuts

    # -- the wire --------------------------------------------------------------------
    def _draw_delay(self, spec) -> float:
        if callable(spec):
            d = float(spec(self._rng))
            if d < 0:
                raise ValueError(f"delay function returned {d} ms < 0")
            return d
        lo, hi = spec
        return lo if lo == hi else lo + (hi - lo) * self._rng.random()

    def send(self, src: str, dst: str, msg: Any) -> None:
        """Put ``msg`` on the wire from ``src`` to ``dst`` (it may be lost)."""
        self.sent += 1
        sched = self._sched
        now = sched.now
        link = (src, dst)
        trace = self._trace
        if self.cuts and link in self.cuts:
            self.dropped += 1
            if trace.messages:
                trace.record(now, "drop", src, (dst, "cut", msg))
            return
        if self._held is not None:
            if trace.messages:
                trace.record(now, "send", src, (dst, msg))
            self._hold(src, dst, msg, now, 0.0)
            return
        cfg = self._links.get(link) if self._links else None
        if cfg is None and not self._drop and not self._dup and self._delay_fn is None:
            # the common case, kept short: one delay draw and one heap push
            lo, hi = self._delay
            at = now + (lo if lo == hi else lo + (hi - lo) * self._rng.random())
            if not self.reorder:
                tail = self._fifo_tail.get(link)
                if tail is not None and at < tail:
                    at = tail
                self._fifo_tail[link] = at
            elif self._rng.random() < self.reorder_rate:
                at += self.reorder_max_ms * self._rng.random()
            if trace.messages:
                trace._raw.append((now, "send", src, dst, msg))
            sched.seq += 1
            heappush(sched._heap, (at, sched.seq, self._deliver, (src, dst, msg, now)))
            return
        rng = self._rng
        drop = self._drop if cfg is None or cfg.drop_rate is None else cfg.drop_rate
        if drop and rng.random() < drop:
            self.dropped += 1
            if trace.messages:
                trace.record(now, "drop", src, (dst, "loss", msg))
            return
        if trace.messages:
            trace.record(now, "send", src, (dst, msg))
        dup = self._dup if cfg is None or cfg.duplicate_rate is None else cfg.duplicate_rate
        copies = 2 if dup and rng.random() < dup else 1
        if copies == 2:
            self.duplicated += 1
            if trace.messages:
                trace.record(now, "duplicate", src, (dst, msg))
        for _ in range(copies):
            if cfg is not None and cfg.delay is not None:
                delay = self._draw_delay(cfg.delay)
            elif self._delay_fn is not None:
                delay = self._draw_delay(self._delay_fn)
            else:
                lo, hi = self._delay
                delay = lo if lo == hi else lo + (hi - lo) * rng.random()
            at = now + delay
            if self.reorder:
                if rng.random() < self.reorder_rate:
                    at += self.reorder_max_ms * rng.random()
            else:
                tail = self._fifo_tail.get(link)
                if tail is not None and at < tail:
                    at = tail
                self._fifo_tail[link] = at
            sched.seq += 1
            heappush(sched._heap, (at, sched.seq, self._deliver, (src, dst, msg, now)))

    def in_flight(self, src: str = None, dst: str = None) -> list[InFlight]:
        """Messages on the wire, in delivery order (then the held ones, in send order);
        optionally only ``src`` / ``dst``."""
        deliver = self._deliver
        found = sorted((e for e in self._sched._heap if e[2] is deliver), key=lambda e: (e[0], e[1]))
        out = []
        for at, _seq, _fn, (s, d, m, sent) in found:
            if (src is None or s == src) and (dst is None or d == dst):
                out.append(InFlight(s, d, m, sent, at))
        if self._held:
            out += [f for f in self.held() if (src is None or f.src == src) and (dst is None or f.dst == dst)]
        return out

    # -- manual delivery ("you are the network") ------------------------------------------
    @property
    def manual(self) -> bool:
        """True while delivery is manual (between :meth:`hold` and :meth:`release`)."""
        return self._held is not None

    def hold(self) -> None:
        """Stop automatic delivery: the messages on the wire and all later ones wait in
        :meth:`held` (``ValueError`` if already manual)."""
        if self._held is not None:
            raise ValueError("delivery is already manual")
        self._held = {}
        heap = self._sched._heap
        deliver = self._deliver
        mine = sorted((e for e in heap if e[2] is deliver), key=lambda e: (e[0], e[1]))
        if mine:
            heap[:] = [e for e in heap if e[2] is not deliver]
            heapq.heapify(heap)
        now = self._sched.now
        for at, _seq, _fn, (s, d, m, sent) in mine:
            self._hold(s, d, m, sent, at - now)       # keeps what was left of its delay

    def _hold(self, src: str, dst: str, msg: Any, sent_at: float, delay: float) -> None:
        self._held_ids += 1
        mid = self._held_ids
        self._held[mid] = (InFlight(src, dst, msg, sent_at, math.inf, mid), delay)

    def held(self) -> list[InFlight]:
        """The messages waiting for manual delivery, in send order ([] when automatic)."""
        if not self._held:
            return []
        return [f for f, _delay in self._held.values()]

    def take(self, mid: int) -> InFlight:
        """Remove held message ``mid`` and return it (the caller delivers or drops it)."""
        if self._held is None:
            raise ValueError("delivery is automatic: call hold() first")
        entry = self._held.pop(mid, None) if isinstance(mid, int) else None
        if entry is None:
            raise ValueError(f"no held message with id {mid!r}; held: {sorted(self._held)}")
        return entry[0]

    def duplicate(self, mid: int) -> InFlight:
        """Put a second copy of held message ``mid`` on the wire (it stays held too); the
        copy gets the next id.  Returns the copy."""
        if self._held is None:
            raise ValueError("delivery is automatic: call hold() first")
        entry = self._held.get(mid) if isinstance(mid, int) else None
        if entry is None:
            raise ValueError(f"no held message with id {mid!r}; held: {sorted(self._held)}")
        f, delay = entry
        self.duplicated += 1
        self._hold(f.src, f.dst, f.msg, f.sent_at, delay)
        return self._held[self._held_ids][0]

    def release(self) -> None:
        """Back to automatic delivery: each held message goes back on the wire, due after
        what was left of its delay (0 for one sent while held), links kept FIFO."""
        if self._held is None:
            raise ValueError("delivery is already automatic")
        held, self._held = self._held, None
        sched = self._sched
        now = sched.now
        for f, delay in held.values():
            at = now + delay
            link = (f.src, f.dst)
            tail = self._fifo_tail.get(link)
            if not self.reorder and tail is not None and at < tail:
                at = tail
            self._fifo_tail[link] = max(at, tail or at)
            sched.seq += 1
            heappush(sched._heap, (at, sched.seq, self._deliver, (f.src, f.dst, f.msg, f.sent_at)))

    def partition_cuts(self, groups: Iterable[Iterable[str]]) -> None:
        """Cut both ways between every pair of nodes in different ``groups``."""
        groups = [tuple(sorted(g)) for g in groups]
        for i, ga in enumerate(groups):
            for j, gb in enumerate(groups):
                if i != j:
                    for a in ga:
                        for b in gb:
                            self.cuts.add((a, b))
