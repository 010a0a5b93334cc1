"""Sequential specifications ("models") that the linearizability checker tests against.

A model describes one sequential object:

- ``init()`` returns the initial state;
- ``step(state, input, output)`` returns ``(ok, new_state)``: whether the object, in
  ``state``, may answer ``input`` with ``output``, and the state afterwards;
- states are **hashable values compared with ==** (tuples, ints, strings, frozensets):
  the checker memoises ``(set of linearized operations, state)`` pairs;
- optionally ``partition_key(input)`` (or the whole ``partition(history)``) splits a
  history into independent sub-histories that are checked alone (P-compositionality,
  Herlihy & Wing 1990: a history is linearizable iff each object's sub-history is).

For an operation whose outcome is unknown (``ret is None``) the checker passes the
sentinel :data:`UNKNOWN` as ``output``: ``step`` must accept any output then and still
return the state the operation leaves behind.

The easy way to write a model is to subclass :class:`Model` and implement ``init`` and
``apply(state, input) -> (output, new_state)`` for a deterministic object; the inherited
``step`` compares outputs and handles :data:`UNKNOWN`.  Override ``step`` itself for a
nondeterministic specification, and ``validate`` to reject malformed inputs early.

Optional hooks make the checker faster without changing its verdicts:
``read_only(input, output)`` (reads are linearized greedily, unknown-outcome reads are
dropped), ``unobserved(unknown, completed)`` (unknown-outcome writes whose effect no
output shows are dropped) and ``register_view(input)`` with ``register_initial()`` (a
partition made only of plain reads and blind writes of distinct values is decided
without search, see :mod:`course_lib.check.zones`).
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any, Optional

from .history import Operation


class _Unknown:
    """The output of an operation whose outcome is unknown; a singleton."""

    _instance: "_Unknown | None" = None

    def __new__(cls) -> "_Unknown":
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNKNOWN"

    def __reduce__(self) -> str:
        return "UNKNOWN"


UNKNOWN = _Unknown()


class Model:
    """Base class of sequential specifications; see the module docstring for the contract."""

    name = "model"

    def init(self) -> Hashable:
        raise NotImplementedError(f"{type(self).__name__} must implement init()")

    def apply(self, state: Hashable, input: Any) -> tuple[Any, Hashable]:
        """Deterministic specification: the output of ``input`` in ``state`` and the next state."""
        raise NotImplementedError(
            f"{type(self).__name__} must implement apply() or step()"
        )

    def step(self, state: Hashable, input: Any, output: Any) -> tuple[bool, Hashable]:
        """``(ok, new_state)``; ``output`` may be :data:`UNKNOWN`, which always matches."""
        expected, new_state = self.apply(state, input)
        if output is UNKNOWN or output == expected:
            return True, new_state
        return False, state

    def validate(self, input: Any) -> None:
        """Raise ``ValueError`` if ``input`` is not an operation of this model."""

    def read_only(self, input: Any, output: Any) -> bool:
        """True only if, in *every* state where ``step`` accepts ``(input, output)``, the
        state is left unchanged (a read; a compare-and-set known to have failed).

        The checker then linearizes such an operation as soon as it is allowed, without
        trying alternatives (moving it earlier cannot break any valid order).  ``False``
        is always safe, and the default.
        """
        return False

    def unobserved(self, unknown: Sequence[Any],
                   completed: Sequence[tuple[Any, Any]]) -> list[bool]:
        """For each input of ``unknown`` (operations of one partition whose outcome is
        unknown): True only if removing such an operation from *any* valid order of the
        partition leaves a valid order — typically a write whose value no output among
        ``completed`` (the partition's ``(input, output)`` pairs with a known outcome)
        could show.  The checker then drops it: it may not have taken effect, and
        keeping it makes the search try it at every point.  All False (the default) is
        always safe.
        """
        return [False] * len(unknown)

    def register_view(self, input: Any) -> Optional[tuple[str, Any]]:
        """``("read", None)`` or ``("write", value)`` if, within its partition, ``input``
        acts exactly as a read or a blind write of one register holding a value; ``None``
        (the default) otherwise.

        Contract: when every operation of a partition has a view, ``step`` must accept a
        read exactly when its output equals the current value (or is :data:`UNKNOWN`),
        a write always, and the value is ``register_initial()`` at first.  The checker
        then uses the unique-values algorithm when written values are distinct.
        """
        return None

    def register_initial(self) -> Any:
        """The value a partition holds before any write, for :meth:`register_view`."""
        raise NotImplementedError(f"{type(self).__name__} has no register view")

    def partition_key(self, input: Any) -> Hashable:
        """The independent object ``input`` acts on; one object (``None``) by default."""
        return None

    def partition(
        self, history: Sequence[Operation]
    ) -> list[tuple[Hashable, list[Operation]]]:
        """Split ``history`` into ``(key, operations)`` groups checked independently."""
        groups: dict[Hashable, list[Operation]] = {}
        for op in history:
            groups.setdefault(self.partition_key(op.input), []).append(op)
        return list(groups.items())

    def describe_operation(self, input: Any, output: Any) -> str:
        """A short label for plots and evidence, e.g. ``w 3`` or ``r → 3``."""
        if output is UNKNOWN:
            return f"{input!r} → ?"
        return f"{input!r} → {output!r}"

    def describe_state(self, state: Hashable) -> str:
        return repr(state)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def _kind(input: Any, kinds: dict[str, tuple[int, ...]], model: str) -> str:
    if not isinstance(input, tuple) or not input or not isinstance(input[0], str):
        raise ValueError(
            f"{model}: an operation input is a tuple (kind, ...), got {input!r}"
        )
    kind = input[0]
    if kind not in kinds:
        raise ValueError(
            f"{model}: unknown operation kind {kind!r} in {input!r}; "
            f"expected one of {sorted(kinds)}"
        )
    if len(input) not in kinds[kind]:
        shapes = " or ".join(str(n) for n in kinds[kind])
        raise ValueError(
            f"{model}: a {kind!r} input has {shapes} elements, got {input!r}"
        )
    return kind


def _any_equal(value: Any, outputs: Sequence[Any]) -> bool:
    return any(value == output for output in outputs)


def _show(output: Any) -> str:
    return "?" if output is UNKNOWN else repr(output)


class Register(Model):
    """A read/write register.

    ``("read", None)`` (or ``("read",)``) returns the value; ``("write", v)`` sets it and
    returns ``None`` (the output of a write carries no information and is not checked).
    The state is the value, ``initial`` at first.
    """

    name = "register"
    _KINDS = {"read": (1, 2), "write": (2,)}

    def __init__(self, initial: Hashable = None) -> None:
        self.initial = initial

    def init(self) -> Hashable:
        return self.initial

    def validate(self, input: Any) -> None:
        _kind(input, self._KINDS, self.name)

    def step(self, state: Hashable, input: Any, output: Any) -> tuple[bool, Hashable]:
        if input[0] == "write":
            return True, input[1]
        return (output is UNKNOWN or output == state), state

    def read_only(self, input: Any, output: Any) -> bool:
        return input[0] == "read"

    def register_view(self, input: Any) -> Optional[tuple[str, Any]]:
        if type(self).step not in (Register.step, CasRegister.step):
            return None           # a subclass with its own semantics: no shortcut
        if input[0] == "write":
            return ("write", input[1])
        return ("read", None) if input[0] == "read" else None

    def register_initial(self) -> Any:
        return self.initial

    def unobserved(self, unknown: Sequence[Any],
                   completed: Sequence[tuple[Any, Any]]) -> list[bool]:
        """A write of ``v`` is unobserved when no read returned ``v``: the reads after it
        (up to the next write) would have.  A compare-and-set observes every write."""
        if type(self).step not in (Register.step, CasRegister.step) or any(
                input[0] == "cas" for input, _ in completed):
            return [False] * len(unknown)
        seen = [output for input, output in completed if input[0] == "read"]
        return [input[0] == "write" and not _any_equal(input[1], seen) for input in unknown]

    def describe_operation(self, input: Any, output: Any) -> str:
        if input[0] == "write":
            return f"w {input[1]!r}"
        return f"r → {_show(output)}"

    def __repr__(self) -> str:
        return f"register(initial={self.initial!r})"


class CasRegister(Register):
    """A register with compare-and-set.

    Adds ``("cas", (expected, new))``: if the value equals ``expected`` it becomes ``new``
    and the output is ``True``, otherwise nothing changes and the output is ``False``.
    The initial value is ``None`` unless given.
    """

    name = "cas_register"
    _KINDS = {"read": (1, 2), "write": (2,), "cas": (2,)}

    def validate(self, input: Any) -> None:
        if _kind(input, self._KINDS, self.name) == "cas":
            arg = input[1]
            if not isinstance(arg, tuple) or len(arg) != 2:
                raise ValueError(
                    f"{self.name}: a cas input is ('cas', (expected, new)), got {input!r}"
                )

    def step(self, state: Hashable, input: Any, output: Any) -> tuple[bool, Hashable]:
        kind = input[0]
        if kind == "write":
            return True, input[1]
        if kind == "read":
            return (output is UNKNOWN or output == state), state
        expected, new = input[1]
        if state == expected:
            return (output is UNKNOWN or output == True), new  # noqa: E712
        return (output is UNKNOWN or output == False), state  # noqa: E712

    def read_only(self, input: Any, output: Any) -> bool:
        return input[0] == "read" or (input[0] == "cas" and output is not UNKNOWN
                                      and output == False)  # noqa: E712

    def describe_operation(self, input: Any, output: Any) -> str:
        if input[0] == "cas":
            expected, new = input[1]
            mark = {True: " ✓", False: " ✗"}.get(output, " ?")
            return f"cas {expected!r}→{new!r}{mark}"
        return super().describe_operation(input, output)

    def __repr__(self) -> str:
        return f"cas_register(initial={self.initial!r})"


class KV(Model):
    """A key-value store of strings, partitioned by key.

    ``("get", k)`` returns the value of ``k`` or ``""`` if absent; ``("put", k, v)`` sets
    it; ``("append", k, v)`` concatenates ``v`` (a ``str``) to it.  Outputs of put and
    append are not checked.  The state is a sorted tuple of ``(key, value)`` pairs; once
    partitioned, a sub-history touches one key so the tuple has at most one pair.
    ``partitioned=False`` checks the whole store as one object.
    """

    name = "kv"
    _KINDS = {"get": (2,), "put": (3,), "append": (3,)}

    def __init__(self, partitioned: bool = True) -> None:
        self.partitioned = partitioned

    def init(self) -> Hashable:
        return ()

    def validate(self, input: Any) -> None:
        kind = _kind(input, self._KINDS, self.name)
        try:
            hash(input[1])
        except TypeError:
            raise ValueError(f"{self.name}: keys must be hashable, got {input!r}") from None
        if kind == "append" and not isinstance(input[2], str):
            raise ValueError(f"{self.name}: append takes a str value, got {input!r}")

    def partition_key(self, input: Any) -> Hashable:
        return input[1] if self.partitioned else None

    def partition(
        self, history: Sequence[Operation]
    ) -> list[tuple[Hashable, list[Operation]]]:
        groups = super().partition(history)
        return sorted(groups, key=lambda group: repr(group[0]))

    def step(self, state: Hashable, input: Any, output: Any) -> tuple[bool, Hashable]:
        kind = input[0]
        key = input[1]
        current = ""
        for k, v in state:
            if k == key:
                current = v
                break
        if kind == "get":
            return (output is UNKNOWN or output == current), state
        value = input[2] if kind == "put" else current + input[2]
        rest = [(k, v) for k, v in state if k != key]
        rest.append((key, value))
        if len(rest) > 1:
            rest.sort(key=lambda kv: repr(kv[0]))
        return True, tuple(rest)

    def read_only(self, input: Any, output: Any) -> bool:
        return input[0] == "get"

    def register_view(self, input: Any) -> Optional[tuple[str, Any]]:
        if not self.partitioned or type(self).step is not KV.step:
            return None
        kind = input[0]
        if kind == "get":
            return ("read", None)
        return ("write", input[2]) if kind == "put" else None

    def register_initial(self) -> Any:
        return ""

    def unobserved(self, unknown: Sequence[Any],
                   completed: Sequence[tuple[Any, Any]]) -> list[bool]:
        """A put or append of ``v`` to ``k`` is unobserved when no get of ``k`` returned
        a string containing ``v``: every get after it, up to the next put, would have."""
        if type(self).step is not KV.step:
            return [False] * len(unknown)
        gets: dict[Hashable, list[str]] = {}
        for input, output in completed:
            if input[0] == "get" and isinstance(output, str):
                gets.setdefault(input[1], []).append(output)
        return [input[0] != "get" and not any(input[2] in out for out in gets.get(input[1], ()))
                for input in unknown]

    def describe_operation(self, input: Any, output: Any) -> str:
        kind = input[0]
        if kind == "get":
            return f"get {input[1]!r} → {_show(output)}"
        return f"{kind} {input[1]!r} {input[2]!r}"

    def describe_state(self, state: Hashable) -> str:
        return "{" + ", ".join(f"{k!r}: {v!r}" for k, v in state) + "}"

    def __repr__(self) -> str:
        return f"kv(partitioned={self.partitioned})"


def register(initial: Hashable = None) -> Register:
    """A read/write register model; see :class:`Register`."""
    return Register(initial)


def cas_register(initial: Hashable = None) -> CasRegister:
    """A compare-and-set register model; see :class:`CasRegister`."""
    return CasRegister(initial)


def kv(partitioned: bool = True) -> KV:
    """A string key-value store model, checked key by key; see :class:`KV`."""
    return KV(partitioned)
