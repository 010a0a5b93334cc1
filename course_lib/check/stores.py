"""In-memory stores to test the tester: correct ones and known-bad ones.

Each store is a sequential object: ``apply(input) -> output`` with the inputs of the
models in :mod:`course_lib.check.models`.  Calling the store (``store(input)``) applies
under a lock, so a correct store is linearizable when real threads share it.  The
known-bad stores misbehave with a seeded probability, deterministically for a seed.
"""

from __future__ import annotations

import random
import threading
from typing import Any


class MemoryRegister:
    """A correct register with read, write and compare-and-set (initially ``initial``)."""

    def __init__(self, initial: Any = None) -> None:
        self.value = initial
        self._lock = threading.Lock()

    def apply(self, input: Any) -> Any:
        kind = input[0]
        if kind == "read":
            return self.value
        if kind == "write":
            self.value = input[1]
            return None
        if kind == "cas":
            expected, new = input[1]
            if self.value == expected:
                self.value = new
                return True
            return False
        raise ValueError(f"{type(self).__name__}: unknown operation {input!r}")

    def __call__(self, input: Any) -> Any:
        with self._lock:
            return self.apply(input)


class MemoryKV:
    """A correct string key-value store: get (``""`` if absent), put, append."""

    def __init__(self) -> None:
        self.data: dict[Any, str] = {}
        self._lock = threading.Lock()

    def apply(self, input: Any) -> Any:
        kind, key = input[0], input[1]
        if kind == "get":
            return self.data.get(key, "")
        if kind == "put":
            self.data[key] = input[2]
            return None
        if kind == "append":
            self.data[key] = self.data.get(key, "") + input[2]
            return None
        raise ValueError(f"{type(self).__name__}: unknown operation {input!r}")

    def __call__(self, input: Any) -> Any:
        with self._lock:
            return self.apply(input)


class StaleRegister(MemoryRegister):
    """Known-bad: with probability ``p`` a read returns an older value (a lagging replica)."""

    def __init__(self, p: float = 0.1, seed: int = 0, initial: Any = None) -> None:
        super().__init__(initial)
        self.p = p
        self._rng = random.Random(seed)
        self._older: list[Any] = []

    def apply(self, input: Any) -> Any:
        if input[0] == "read" and self._older and self._rng.random() < self.p:
            return self._rng.choice(self._older)
        before = self.value
        output = super().apply(input)
        if self.value != before:
            self._older.append(before)
        return output


class LossyKV(MemoryKV):
    """Known-bad: with probability ``p`` a put or append is acknowledged but never applied."""

    def __init__(self, p: float = 0.05, seed: int = 0) -> None:
        super().__init__()
        self.p = p
        self._rng = random.Random(seed)
        self.lost: list[Any] = []

    def apply(self, input: Any) -> Any:
        if input[0] in ("put", "append") and self._rng.random() < self.p:
            self.lost.append(input)
            return None
        return super().apply(input)
