"""Workloads: what concurrent clients ask, and the model that judges the answers.

A :class:`Workload` draws the next operation input for a client from a seeded
``random.Random``.  Written values are unique (``client``-``seq`` strings or ints) so a
stale read cannot hide behind an equal value, as in Jepsen's register tests.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

from .models import Model, cas_register, kv, register


@dataclass(frozen=True)
class Workload:
    """``generate(rng, client, seq)`` returns the input of ``client``'s ``seq``-th operation.

    ``model`` is the specification the resulting history is checked against.
    """

    name: str
    model: Model
    generate: Callable[[random.Random, int, int], Any]


def _unique(client: int, seq: int) -> int:
    return seq * 1000 + client


def register_workload(read_fraction: float = 0.5) -> Workload:
    """Reads and writes of unique ints on one register (initially ``None``)."""
    _fraction(read_fraction, "read_fraction")

    def generate(rng: random.Random, client: int, seq: int) -> Any:
        if rng.random() < read_fraction:
            return ("read", None)
        return ("write", _unique(client, seq))

    return Workload("register", register(), generate)


def cas_workload(values: int = 5, read_fraction: float = 0.4,
                 cas_fraction: float = 0.4) -> Workload:
    """Reads, writes and compare-and-sets over ``values`` small ints (so CAS can succeed)."""
    _fraction(read_fraction, "read_fraction")
    _fraction(cas_fraction, "cas_fraction")
    if values < 1:
        raise ValueError(f"values must be >= 1, got {values}")

    def generate(rng: random.Random, client: int, seq: int) -> Any:
        x = rng.random()
        if x < read_fraction:
            return ("read", None)
        if x < read_fraction + cas_fraction:
            return ("cas", (rng.randrange(values), rng.randrange(values)))
        return ("write", rng.randrange(values))

    return Workload("cas_register", cas_register(), generate)


def kv_workload(keys: int = 5, read_fraction: float = 0.5,
                append_fraction: float = 0.25) -> Workload:
    """Gets, puts and appends of unique strings over ``keys`` keys ``k0``, ``k1``, ..."""
    _fraction(read_fraction, "read_fraction")
    _fraction(append_fraction, "append_fraction")
    if keys < 1:
        raise ValueError(f"keys must be >= 1, got {keys}")
    names: list[Hashable] = [f"k{i}" for i in range(keys)]

    def generate(rng: random.Random, client: int, seq: int) -> Any:
        key = rng.choice(names)
        x = rng.random()
        if x < read_fraction:
            return ("get", key)
        if x < read_fraction + append_fraction:
            return ("append", key, f"{client}.{seq};")
        return ("put", key, f"{client}.{seq};")

    return Workload("kv", kv(), generate)


def _fraction(x: float, name: str) -> None:
    if not 0.0 <= x <= 1.0:
        raise ValueError(f"{name} must be in [0, 1], got {x}")
