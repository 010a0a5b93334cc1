"""Seeded, thread-free simulation of concurrent clients against a sequential store.

Each client issues operations one after another: a random gap, then an operation whose
interval ``[call, ret]`` has a random length.  The store executes each operation
atomically at a *linearization point* drawn inside its interval, in point order — so a
correct store yields a linearizable history by construction, and a known-bad store
yields the anomalies it was built to have.  Same seed, same history.
"""

from __future__ import annotations

import random
from typing import Any

from .history import Operation
from .workloads import Workload


def simulate_history(store: Any, workload: Workload, *, clients: int = 5,
                     ops: int = 100, seed: int = 0, unknown_rate: float = 0.0,
                     length: tuple[float, float] = (1.0, 10.0),
                     gap: tuple[float, float] = (0.0, 5.0),
                     integer_times: bool = False) -> list[Operation]:
    """Return ``ops`` operations of ``clients`` concurrent clients, sorted by call time.

    ``store`` has ``apply(input) -> output``.  With probability ``unknown_rate`` an
    operation's outcome is unknown to its client (``ret=None``); it then took effect
    or not with even odds, and the client carries on under a new ``client_id``
    (``client + k * clients`` after its ``k``-th unknown outcome), as a Jepsen process
    does after a crash.  ``integer_times`` rounds times to ints, making ties frequent.
    """
    if clients < 1 or ops < 0:
        raise ValueError(f"need clients >= 1 and ops >= 0, got {clients} and {ops}")
    if not 0.0 <= unknown_rate <= 1.0:
        raise ValueError(f"unknown_rate must be in [0, 1], got {unknown_rate}")
    rng = random.Random(seed)
    apply = store.apply if hasattr(store, "apply") else store
    planned = []
    for c in range(clients):
        t = rng.uniform(*gap)
        incarnation = 0
        for seq in range(ops // clients + (1 if c < ops % clients else 0)):
            call = t
            ret = call + rng.uniform(*length)
            if integer_times:
                call, ret = round(call), round(ret)
            point = rng.uniform(call, ret)
            unknown = rng.random() < unknown_rate
            takes_effect = not unknown or rng.random() < 0.5
            planned.append((point, c + incarnation * clients, workload.generate(rng, c, seq),
                            call, ret, unknown, takes_effect))
            if unknown:
                incarnation += 1
            t = ret + rng.uniform(*gap)
    planned.sort(key=lambda p: p[0])
    history = []
    for point, client, input, call, ret, unknown, takes_effect in planned:
        output = apply(input) if takes_effect else None
        if unknown:
            history.append(Operation(client, input, call))
        else:
            history.append(Operation(client, input, call, output, ret))
    history.sort(key=lambda op: op.call)
    return history
