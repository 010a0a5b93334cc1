"""A simulated system seen as a transition system, for the model checker
(:func:`course_lib.check.explore.explore`).

:class:`SimModel` wraps a :class:`~course_lib.sim.SimulatedSystem` in manual delivery
("you are the network"): time never passes by itself, nothing arrives by itself, and
every step is a choice —

- ``deliver`` / ``drop`` / ``duplicate`` an in-flight message (one step per distinct
  ``(src, dst, message)``: two copies of one message are interchangeable);
- ``crash`` / ``restart`` a node (the simulator's own: only persisted state survives);
- the protocol's own steps, from a subclass: a timer fires, a client proposes.

Its :meth:`fingerprint` is canonical: each node's protocol state (from the subclass),
the *multiset* of live messages in flight, and the history ("ghost") variables the
invariant reads.  Timers, random streams, message ids and the trace are left out —
they do not change what can happen next once timer expiry is a choice.

While searching (:meth:`for_search`) the simulation records nothing (a null trace) and
copies share every immutable object (messages, log entries) instead of copying them;
a replayed trace (:func:`course_lib.check.explore.replay`) runs the ordinary simulator
with its full trace.
"""

from __future__ import annotations

import copy as _copy
import enum
import random as _random
import types
from collections import Counter
from typing import Any, Iterable

from ..check.explore import FAULT_KINDS, Step


class _NullTrace:
    """A trace that records nothing (the simulator checks ``messages`` / ``ticks``
    before recording the hot events, and calls ``record`` for the rest)."""

    level = "summary"
    messages = False
    ticks = False
    _raw: list = []

    def record(self, time, kind, node, details=()) -> None:
        pass

    def __len__(self) -> int:
        return 0

    @property
    def events(self) -> list:
        return []

    def __deepcopy__(self, memo) -> "_NullTrace":
        return self


NULL_TRACE = _NullTrace()


_FUNCTIONS = (types.FunctionType, types.BuiltinFunctionType, types.ModuleType, type)
_ATOMIC = frozenset((int, float, bool, str, bytes, type(None), complex, range, frozenset))
_kinds: dict = {}          # class -> how fast_copy copies its instances


def _kind(cls) -> str:
    k = _kinds.get(cls)
    if k is None:
        params = getattr(cls, "__dataclass_params__", None)
        if cls in _ATOMIC or issubclass(cls, _FUNCTIONS) or issubclass(cls, enum.Enum):
            k = "atomic"
        elif params is not None and params.frozen:
            k = "atomic"                   # immutable by contract (fields are tuples here)
        elif cls is types.MethodType:
            k = "method"
        elif issubclass(cls, _random.Random):
            k = "random"
        elif "__deepcopy__" in dir(cls) or cls.__module__ == "collections" or "__reduce_ex__" in cls.__dict__:
            k = "deepcopy"
        else:
            slots = []
            for c in cls.__mro__:
                sl = c.__dict__.get("__slots__", ())
                slots += [sl] if isinstance(sl, str) else [x for x in sl if x not in ("__dict__", "__weakref__")]
            k = ("object", tuple(slots), hasattr(cls, "__dict__") and "__dict__" in dir(cls))
        _kinds[cls] = k
    return k


def fast_copy(x: Any, memo: dict) -> Any:
    """``copy.deepcopy(x, memo)`` for the plain objects a simulated system is made of
    (dicts, lists, tuples, sets, instances with ``__dict__`` / ``__slots__``, bound
    methods, ``random.Random``), sharing immutable ones; anything else falls back to
    ``copy.deepcopy``."""
    y = memo.get(id(x), memo)
    if y is not memo:
        return y
    cls = type(x)
    if cls is dict:
        y = {}
        memo[id(x)] = y
        for k, v in x.items():
            y[k if type(k) in _ATOMIC else fast_copy(k, memo)] = v if type(v) in _ATOMIC else fast_copy(v, memo)
        return y
    if cls is list:
        y = []
        memo[id(x)] = y
        y.extend(v if type(v) in _ATOMIC else fast_copy(v, memo) for v in x)
        return y
    if cls is tuple:
        items = tuple(v if type(v) in _ATOMIC else fast_copy(v, memo) for v in x)
        y = x if all(a is b for a, b in zip(items, x)) else items
        memo[id(x)] = y
        return y
    if cls is set:
        y = set()
        memo[id(x)] = y
        y.update(v if type(v) in _ATOMIC else fast_copy(v, memo) for v in x)
        return y
    kind = _kind(cls)
    if kind == "atomic":
        return x
    if kind == "method":
        y = types.MethodType(x.__func__, fast_copy(x.__self__, memo))
    elif kind == "random":
        y = cls.__new__(cls)
        y.setstate(x.getstate())
    elif kind == "deepcopy":
        y = _copy.deepcopy(x, memo)
    else:
        _, slots, has_dict = kind
        y = cls.__new__(cls)
        memo[id(x)] = y
        if has_dict:
            d = x.__dict__
            y.__dict__.update({k: v if type(v) in _ATOMIC else fast_copy(v, memo) for k, v in d.items()})
        for name in slots:
            try:
                v = getattr(x, name)
            except AttributeError:
                continue
            object.__setattr__(y, name, v if type(v) in _ATOMIC else fast_copy(v, memo))
        return y
    memo[id(x)] = y
    return y


class SimModel:
    """Base of the simulated models: message and crash steps, fingerprint, copy.

    Subclasses set ``self.node_ids`` and override :meth:`protocol_steps`,
    :meth:`apply_protocol`, :meth:`node_key`, :meth:`ghost_key`, :meth:`violations`,
    and optionally :meth:`live` (a message whose delivery can no longer change
    anything), :meth:`label` and :meth:`shared` (immutable objects copies may share).
    """

    def __init__(self, system, node_ids: Iterable[str]) -> None:
        self.system = system
        self.sim = system.sim
        self.node_ids = tuple(node_ids)
        self.fault_kinds: tuple = FAULT_KINDS
        self.searching = False
        if not self.sim.network.manual:
            self.sim.set_manual_delivery(True)

    # -- searching ---------------------------------------------------------------------------
    def for_search(self, fault_kinds: Iterable[str] = FAULT_KINDS) -> None:
        """Record nothing from now on, and offer only the fault steps of ``fault_kinds``."""
        self.fault_kinds = tuple(k for k in FAULT_KINDS if k in set(fault_kinds))
        self.searching = True
        self.sim.trace = NULL_TRACE
        self.sim.network._trace = NULL_TRACE

    def copy(self) -> "SimModel":
        """An independent copy: :func:`fast_copy` of the whole model (``copy.deepcopy``
        semantics, several times faster; frozen dataclasses — messages, log entries —
        and enums are shared, not copied)."""
        memo: dict = {}
        if self.searching:
            # while searching, copies share the random streams: they only draw election
            # timeouts and tick phases, which a search never waits for (a timer is a step)
            for rng in self.sim.random._streams.values():
                memo[id(rng)] = rng
        self.shared(memo)
        return fast_copy(self, memo)

    def shared(self, memo: dict) -> None:
        """Add ``id(obj): obj`` for immutable objects the copy may share."""

    # -- steps -------------------------------------------------------------------------------
    def steps(self) -> list:
        deliver, others = self.message_steps()
        return deliver + self.protocol_steps() + others + self.fault_steps()

    def live(self, src: str, dst: str, msg: Any) -> bool:
        """False for a message whose delivery is a no-op now and forever (left out of
        the steps and of the fingerprint)."""
        return True

    def label(self, msg: Any) -> str:
        return type(msg).__name__

    def _distinct_held(self) -> list:
        seen = set()
        out = []
        live = self.live
        for f in self.sim.network.held():
            k = (f.src, f.dst, f.msg)
            if k in seen or not live(f.src, f.dst, f.msg):
                continue
            seen.add(k)
            out.append(f)
        return out

    def message_steps(self) -> tuple:
        """(deliveries, drops + duplicates), one per distinct live message, in send order."""
        held = self._distinct_held()
        deliver = [Step("deliver", f.dst, f.src, f.msg, label=self.label(f.msg)) for f in held]
        others = []
        if "drop" in self.fault_kinds:
            others += [Step("drop", s.node, s.src, s.msg, label=s.label) for s in deliver]
        if "duplicate" in self.fault_kinds:
            others += [Step("duplicate", s.node, s.src, s.msg, label=s.label) for s in deliver]
        return deliver, others

    def fault_steps(self) -> list:
        out = []
        alive = self.sim._alive
        if "crash" in self.fault_kinds:
            out += [Step("crash", n) for n in self.node_ids if alive[n]]
        if "restart" in self.fault_kinds:
            out += [Step("restart", n) for n in self.node_ids if not alive[n]]
        return out

    def protocol_steps(self) -> list:
        return []

    def _find(self, step: Step) -> int:
        for f in self.sim.network.held():
            if f.src == step.src and f.dst == step.node and f.msg == step.msg:
                return f.id
        raise ValueError(f"no message in flight for {step}")

    def apply(self, step: Step) -> None:
        kind = step.kind
        sim = self.sim
        if kind == "deliver":
            sim.deliver_held(self._find(step))
        elif kind == "drop":
            sim.drop_held(self._find(step))
        elif kind == "duplicate":
            sim.duplicate_held(self._find(step))
        elif kind == "crash":
            sim.crash(step.node)
        elif kind == "restart":
            sim.restart(step.node)
        else:
            self.apply_protocol(step)

    def apply_protocol(self, step: Step) -> None:
        raise ValueError(f"unknown step kind {step.kind!r}")

    # -- state -------------------------------------------------------------------------------
    def wire_key(self) -> frozenset:
        """The multiset of live in-flight messages."""
        live = self.live
        return frozenset(Counter((f.src, f.dst, f.msg) for f in self.sim.network.held()
                                 if live(f.src, f.dst, f.msg)).items())

    def node_key(self, nid: str) -> Any:
        raise NotImplementedError

    def ghost_key(self) -> Any:
        """History variables the invariant reads (e.g. every value ever decided)."""
        return ()

    def fingerprint(self) -> tuple:
        alive = self.sim._alive
        return (tuple((alive[n], self.node_key(n)) for n in self.node_ids),
                self.wire_key(), self.ghost_key())

    def violations(self) -> list:
        return []

    # -- replay ------------------------------------------------------------------------------
    def trace_mark(self) -> int:
        return len(self.sim.trace)

    def trace_since(self, mark: int) -> list:
        return list(self.sim.trace.events[mark:])

    def held_summary(self) -> list:
        """The live messages in flight, in words (for a lesson)."""
        return [f"{self.label(f.msg)} {f.src}→{f.dst}" for f in self._distinct_held()]


