"""A bounded model checker: every choice up to a depth, breadth first, with state hashing.

A randomized campaign samples runs; this explores **all** of them up to ``depth`` steps.
The system is a *model*: an object that lists the steps enabled in its current state,
applies one, and tells its state apart from others (a canonical fingerprint).  The
simulated systems provide one (``course_lib.sim.explore.SimModel`` and its subclasses
``course_lib.consensus.explore.ChapterModel`` / ``PaxosModel`` and
``course_lib.raft.explore.RaftModel``): in manual delivery, a step is *deliver this
in-flight message*, *drop it*, *duplicate it*, *crash / restart this node*, *this node's
timer fires*, *this client proposes*.  The engine itself knows no protocol and imports
the standard library alone.

How it searches (:func:`explore`):

- **Breadth first**, level by level, so the first violation found is at the smallest
  depth: the counterexample is minimal (no shorter sequence of steps violates the
  invariant).  Every level below it was explored completely.
- **State hashing**: a state reached again (by another interleaving) is not expanded
  again.  The key is the model's :meth:`fingerprint` — every node's protocol state, the
  *multiset* of messages in flight (their order on the wire does not matter: any can be
  delivered next) and the history variables the invariant reads — plus how much of each
  fault budget was used.  The visited set keeps a 64-bit hash of each key (a collision,
  about ``n**2 / 2**65`` for ``n`` states, could only hide a state, never invent a
  violation).
- **Budgets**: ``faults={"crash": 1, "restart": 1, "drop": 0, "duplicate": 1}`` bounds
  how many steps of each fault kind a run may take (0 or absent: none; None:
  unbounded); ``bounds={"timer": 4}`` does the same for a protocol's own step kinds
  (absent: unbounded).  The budget used is part of the state key.  The models bound
  the rest themselves (terms, ballots and values are finite there).
- **No stored copies**: the tree of reached states is two integer arrays (parent, step
  number), not a list of systems.  To expand a level the engine walks the tree in
  order, keeping a copy of each state on the current path (``mode="copy"``: at most
  ``depth`` copies alive) — or, with ``mode="replay"``, re-executes every path from a
  fresh system (the deterministic simulator makes the two equal; the copy is faster,
  see :attr:`ExploreResult.seconds`).

:func:`replay` re-runs a counterexample in a fresh system from the same factory — the
ordinary simulator, with its full trace — and checks that it ends in the violation, so a
lesson can draw it.
"""

from __future__ import annotations

import time
from array import array
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Optional, Sequence

FAULT_KINDS = ("drop", "duplicate", "crash", "restart")


@dataclass(frozen=True)
class Step:
    """One choice: ``kind`` is what happens, ``node`` who acts (or receives).

    ``deliver`` / ``drop`` / ``duplicate``: the in-flight message ``msg`` from ``src``
    to ``node``; ``timer``, ``heartbeat``, ``crash``, ``restart``: at ``node``;
    ``propose``: ``node`` proposes ``value``.  ``label`` is a short description of the
    message for people (not part of the step's identity).
    """
    kind: str
    node: Optional[str] = None
    src: Optional[str] = None
    msg: Any = None
    value: Any = None
    label: str = field(default="", compare=False)

    def __str__(self) -> str:
        what = self.label or (type(self.msg).__name__ if self.msg is not None else "")
        if self.kind == "deliver":
            return f"deliver {what} {self.src}→{self.node}"
        if self.kind == "call":
            return f"{what} {self.src}→{self.node} and its reply"
        if self.kind == "drop":
            return f"drop {what} {self.src}→{self.node}"
        if self.kind == "duplicate":
            return f"duplicate {what} {self.src}→{self.node}"
        if self.kind == "timer":
            return f"{self.node}'s election timer fires" if not self.label else f"{self.node}: {self.label}"
        if self.kind == "heartbeat":
            return f"{self.node} sends heartbeats"
        if self.kind == "propose":
            return f"{self.node} proposes {self.value!r}"
        if self.kind in ("crash", "restart"):
            return f"{self.kind} {self.node}"
        return f"{self.kind} {self.node or ''} {what}".strip()


class Model:
    """What :func:`explore` needs of a system (duck-typed; this base documents it).

    - :meth:`steps` the steps enabled now, in a deterministic order (the same state
      gives the same list: the engine stores a step as its position in it);
    - :meth:`apply` take one of them (mutates the model);
    - :meth:`fingerprint` a hashable canonical key: two states with equal keys must
      behave the same from now on and satisfy the invariant alike;
    - :meth:`violations` what is wrong now ([] when the invariant holds);
    - :meth:`copy` an independent copy (only for ``mode="copy"``).
    """

    def steps(self) -> list:
        raise NotImplementedError

    def apply(self, step: Step) -> None:
        raise NotImplementedError

    def fingerprint(self) -> Any:
        raise NotImplementedError

    def violations(self) -> list:
        return []

    def copy(self) -> "Model":
        raise NotImplementedError


def _as_violations(v: Any) -> list:
    """An invariant may return [] / None / True (holds), or a list / str / False."""
    if v is None or v is True:
        return []
    if v is False:
        return ["invariant does not hold"]
    if isinstance(v, str):
        return [v] if v else []
    return list(v)


def _check_budgets(faults: Optional[dict], bounds: Optional[dict]) -> dict:
    """``{kind: budget}``: fault kinds absent from ``faults`` are off (budget 0), other
    kinds absent from ``bounds`` unbounded (not listed)."""
    out = {k: 0 for k in FAULT_KINDS}
    for name, given, fault in (("faults", faults, True), ("bounds", bounds, False)):
        if given is None:
            continue
        if not isinstance(given, dict):
            raise ValueError(f"{name} must be a dict step kind -> budget, got {given!r}")
        for kind, budget in given.items():
            if fault and kind not in FAULT_KINDS:
                raise ValueError(f"unknown fault kind {kind!r}; use {FAULT_KINDS} (bound other kinds with bounds=)")
            if not fault and (kind in FAULT_KINDS or not isinstance(kind, str)):
                raise ValueError(f"bounds names protocol step kinds (e.g. 'timer'), not {kind!r}: use faults=")
            if budget is not None and (not isinstance(budget, int) or isinstance(budget, bool) or budget < 0):
                raise ValueError(f"budget for {kind!r} must be an int >= 0 or None, got {budget!r}")
            out[kind] = budget
    return {k: b for k, b in out.items() if b is not None}


@dataclass
class ExploreResult:
    """What :func:`explore` found.

    ``states``: successor states generated (every transition taken, plus the initial
    state); ``distinct``: how many of them were new (the rest were pruned by the state
    hash); ``depth``: the deepest level reached (all of it explored unless
    ``violated`` or ``truncated``); ``levels``: new distinct states per level.
    ``trace``: the steps of the (minimal) counterexample, or None; ``violations``: what
    the invariant reported at its end.
    """
    states: int
    distinct: int
    violated: bool
    trace: Optional[tuple]
    violations: list
    depth: int
    max_depth: int
    levels: list
    seconds: float
    mode: str
    truncated: bool = False

    @property
    def length(self) -> Optional[int]:
        return None if self.trace is None else len(self.trace)

    def steps_in_words(self) -> list:
        return [f"{i}. {s}" for i, s in enumerate(self.trace or (), 1)]

    def summary(self) -> str:
        head = (f"{self.states} states explored, {self.distinct} distinct, depth {self.depth}"
                f"/{self.max_depth}, {self.seconds:.2f} s ({self.mode})")
        if self.violated:
            return f"{head}: VIOLATION after {self.length} steps: {self.violations[0]}"
        if self.truncated:
            return f"{head}: stopped at the state limit, no violation so far"
        return f"{head}: no violation up to depth {self.depth}"


class _Tree:
    """The states reached, as parent pointers: node ``i`` is reached from ``parent[i]`` by
    its ``index[i]``-th step.  Node 0 is the initial state."""

    __slots__ = ("parent", "index", "used")

    def __init__(self) -> None:
        self.parent = array("l", [-1])
        self.index = array("l", [-1])
        self.used: list = [()]            # fault budget used, as a tuple per fault kind

    def add(self, parent: int, index: int, used: tuple) -> int:
        self.parent.append(parent)
        self.index.append(index)
        self.used.append(used)
        return len(self.parent) - 1

    def path(self, i: int) -> list:
        """The node ids from the root's child down to ``i``."""
        out = []
        while i > 0:
            out.append(i)
            i = self.parent[i]
        out.reverse()
        return out


def _enabled(steps: list, used: tuple, kinds: tuple, budget: tuple) -> Iterable:
    """``(position, step, used')`` for each step the budgets allow."""
    for k, s in enumerate(steps):
        kind = s.kind
        if kind in kinds:
            j = kinds.index(kind)
            if used[j] >= budget[j]:
                continue
            u = list(used)
            u[j] += 1
            yield k, s, tuple(u)
        else:
            yield k, s, used


def explore(factory: Callable[[], Any], invariant: Optional[Callable[[Any], Any]] = None,
            depth: int = 10, *, faults: Optional[dict] = None, bounds: Optional[dict] = None,
            mode: str = "copy",
            max_states: Optional[int] = None,
            progress: Optional[Callable[[int, int, int], None]] = None) -> ExploreResult:
    """Explore every sequence of at most ``depth`` steps of ``factory()``'s model.

    ``invariant(model)`` returns [] / None / True when it holds, else a list of
    problems / a str / False (default: ``model.violations()``).  It is checked in the
    initial state and after every new state.  Stops at the first violation — found
    at the smallest depth, so ``trace`` is a shortest counterexample — or when every
    level up to ``depth`` is done, or after ``max_states`` distinct states
    (``truncated``).  ``progress(level, states, distinct)`` is called after each level.
    """
    if not isinstance(depth, int) or isinstance(depth, bool) or depth < 0:
        raise ValueError(f"depth must be an int >= 0, got {depth!r}")
    if mode not in ("copy", "replay"):
        raise ValueError(f"mode must be 'copy' or 'replay', got {mode!r}")
    budgets = _check_budgets(faults, bounds)
    kinds = tuple(budgets)
    budget = tuple(budgets[k] for k in kinds)
    fault_kinds = tuple(k for k in FAULT_KINDS if budgets.get(k) != 0)
    check = invariant if invariant is not None else (lambda m: m.violations())
    started = time.perf_counter()
    searching = factory

    def factory() -> Any:                   # a fresh model, set up for searching
        m = searching()
        if hasattr(m, "for_search"):
            m.for_search(fault_kinds)
        return m

    root = factory()
    tree = _Tree()
    tree.used[0] = tuple(0 for _ in kinds)
    visited = {hash((root.fingerprint(), tree.used[0]))}
    states = distinct = 1
    levels = [1]

    def result(violated, node, problems, reached, truncated=False) -> ExploreResult:
        trace = None
        if node is not None:
            trace = tuple(_steps_of(factory, tree, node, root_copy))
        return ExploreResult(states, distinct, violated, trace, problems, reached, depth,
                             levels, time.perf_counter() - started, mode, truncated)

    root_copy = root.copy() if mode == "copy" else None
    problems = _as_violations(check(root))
    if problems:
        return result(True, 0, problems, 0)
    frontier = [0]
    for level in range(depth):
        nxt: list = []
        # the copy of each state on the current path, by depth (mode "copy")
        path_ids: list = [0]
        path_models: list = [root_copy]
        for node in frontier:
            model = _materialize(factory, tree, node, mode, path_ids, path_models)
            steps = model.steps()
            used = tree.used[node]
            enabled = list(_enabled(steps, used, kinds, budget))
            for n_child, (k, step, used2) in enumerate(enabled, 1):
                if mode == "replay":
                    child = _materialize(factory, tree, node, mode)
                elif n_child == len(enabled) and node != 0:
                    child = model                 # the last child takes the parent itself
                    path_ids.pop()
                    path_models.pop()
                else:
                    child = model.copy()
                child.apply(step)
                states += 1
                key = hash((child.fingerprint(), used2))
                if key in visited:
                    continue
                visited.add(key)
                distinct += 1
                cid = tree.add(node, k, used2)
                problems = _as_violations(check(child))
                if problems:
                    levels.append(len(nxt) + 1)
                    return result(True, cid, problems, level + 1)
                nxt.append(cid)
                if max_states is not None and distinct >= max_states:
                    levels.append(len(nxt))
                    return result(False, None, [], level + 1, truncated=True)
        levels.append(len(nxt))
        if progress is not None:
            progress(level + 1, states, distinct)
        if not nxt:
            return result(False, None, [], level + 1)
        frontier = nxt
    return result(False, None, [], depth)


def _materialize(factory, tree: _Tree, node: int, mode: str, path_ids: list = None,
                 path_models: list = None):
    """The model in state ``node``.  ``mode="replay"``: re-execute its path from a fresh
    system.  ``mode="copy"``: start from the deepest state cached on the current path
    that is an ancestor of ``node``, copy it and apply the remaining steps, caching
    each state passed (the frontier is walked in tree order, so each tree edge is
    re-applied about once per level)."""
    path = tree.path(node)
    if mode == "replay":
        model = factory()
        for i in path:
            model.apply(model.steps()[tree.index[i]])
        return model
    d = 0
    while d < len(path) and d + 1 < len(path_ids) and path_ids[d + 1] == path[d]:
        d += 1
    del path_ids[d + 1:]
    del path_models[d + 1:]
    if d == len(path):
        return path_models[d]
    model = path_models[d]
    for i in path[d:]:
        model = model.copy()
        model.apply(model.steps()[tree.index[i]])
        path_ids.append(i)
        path_models.append(model)
    return model


def _steps_of(factory, tree: _Tree, node: int, root_copy=None) -> list:
    model = root_copy.copy() if root_copy is not None else factory()
    out = []
    for i in tree.path(node):
        step = model.steps()[tree.index[i]]
        out.append(step)
        model.apply(step)
    return out


@dataclass
class ReplayResult:
    """A trace re-run in a fresh system: ``model`` at the end (its ``system`` is the
    ordinary simulated cluster, with its trace), what the invariant says there, and for
    each step the trace events it caused (``(step, events)``)."""
    model: Any
    violations: list
    timeline: list
    first_violation_at: Optional[int]

    @property
    def system(self):
        return getattr(self.model, "system", self.model)

    @property
    def violated(self) -> bool:
        return bool(self.violations)


def replay(factory: Callable[[], Any], trace: Sequence[Step],
           invariant: Optional[Callable[[Any], Any]] = None) -> ReplayResult:
    """Re-run ``trace`` step by step on ``factory()`` (each step must be enabled when
    its turn comes: ``ValueError`` otherwise) and check the invariant after each."""
    check = invariant if invariant is not None else (lambda m: m.violations())
    model = factory()
    timeline = []
    first = None
    problems = _as_violations(check(model))
    if problems:
        first = 0
    traced = hasattr(model, "trace_mark") and hasattr(model, "trace_since")
    for n, step in enumerate(trace, 1):
        enabled = model.steps()
        if step not in enabled:
            raise ValueError(f"step {n} ({step}) is not enabled; enabled: {[str(s) for s in enabled]}")
        mark = model.trace_mark() if traced else None
        model.apply(step)
        events = model.trace_since(mark) if traced else []
        timeline.append((step, events))
        problems = _as_violations(check(model))
        if problems and first is None:
            first = n
    return ReplayResult(model, problems, timeline, first)
