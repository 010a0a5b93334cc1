"""Seeded random streams, one per purpose.

Each purpose ("net", "raft:n1", "client:alice", ...) gets its own ``random.Random``
seeded from ``sha256(f"{seed}/{purpose}")``.  Adding a client or a node therefore does
not perturb the network's draws, and a run is reproduced from its seed alone.
"""

from __future__ import annotations

import hashlib
import random


class RandomStreams:
    """A family of independent, reproducible ``random.Random`` streams."""

    __slots__ = ("seed", "_streams")

    def __init__(self, seed: int) -> None:
        if not isinstance(seed, int) or isinstance(seed, bool):
            raise ValueError(f"seed must be an int, got {seed!r}")
        self.seed = seed
        self._streams: dict[str, random.Random] = {}

    def stream(self, purpose: str) -> random.Random:
        """The stream for ``purpose``; the same object on every call."""
        rng = self._streams.get(purpose)
        if rng is None:
            digest = hashlib.sha256(f"{self.seed}/{purpose}".encode()).digest()
            rng = random.Random(int.from_bytes(digest[:8], "big"))
            self._streams[purpose] = rng
        return rng
