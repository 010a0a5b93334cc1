"""A read path broken on purpose, to test the tester: reads answered by one server
from its own state machine, without a ReadIndex round or the log.

That is what a "follower read", or a leader that serves reads without first checking
it still leads, does. It is fast — no message at all — and it is wrong: a server cut
off from the majority (or a deposed leader that has not heard yet) keeps answering
from a state the others have moved past, so a read can miss a write that completed
before it began. :class:`LocalReads` issues such reads on a
:class:`~course_lib.raft.SimCluster` while its ordinary clients write through Raft,
and records each as an :class:`~course_lib.check.history.Operation` to merge into the
cluster's history: the checker should reject the result.
"""

from __future__ import annotations

import random
from typing import Sequence

from ..check.history import Operation


class LocalReads:
    """Every ``every_ms`` simulated ms, read one of ``keys`` from one live server's own
    state machine (servers and keys drawn from ``rng``); :attr:`history` holds the
    reads.  ``running = False`` stops them."""

    def __init__(self, cluster, keys: Sequence[str], rng: random.Random, *,
                 every_ms: float = 10.0, client_id: str = "local-reader") -> None:
        if not keys:
            raise ValueError("LocalReads needs at least one key to read")
        if not isinstance(rng, random.Random):
            raise ValueError("rng must be a random.Random")
        if every_ms <= 0:
            raise ValueError(f"every_ms must be > 0, got {every_ms!r}")
        self.cluster = cluster
        self.keys = tuple(keys)
        self.rng = rng
        self.every_ms = every_ms
        self.client_id = client_id
        self.history: list[Operation] = []
        self.running = True
        cluster.sim.scheduler.schedule(every_ms, self._read)

    def _read(self) -> None:
        if not self.running:
            return
        c = self.cluster
        up = [n for n in sorted(c.members) if c.sim.is_alive(n) and not c.sim.is_paused(n)]
        if up:
            node = self.rng.choice(up)
            key = self.rng.choice(self.keys)
            value = c.hosts[node].kv.read(key)        # no ReadIndex, no log: its own copy
            self.history.append(Operation(f"{self.client_id}@{node}", ("get", key),
                                          c.now, value, c.now))
        c.sim.scheduler.schedule(self.every_ms, self._read)
