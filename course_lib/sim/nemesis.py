"""A nemesis: seeded random faults for any simulation (Jepsen's word for it).

:class:`Nemesis` draws one fault at a time from the kinds the simulator offers —
crash, restart, partition into random groups, isolate, one-way cut, pause, resume,
heal, lossy network (loss / duplication / long reordering / delay), reliable network,
clock skew — over the nodes it is given.  Protocol campaigns subclass it to add their
own actions (e.g. Raft's forced elections and membership changes).  Every action is
logged as ``(time, kind, argument)``; all draws come from the injected ``rng``.
"""

from __future__ import annotations

import random
from typing import Callable, Optional


class Nemesis:
    KINDS = ("crash", "restart", "partition", "isolate", "cut", "pause", "resume", "heal",
             "lossy", "reliable", "skew")

    def __init__(self, sim, rng: random.Random, nodes: Callable[[], list],
                 can_crash: Optional[Callable[[], bool]] = None) -> None:
        if not isinstance(rng, random.Random):
            raise ValueError("rng must be a random.Random")
        self.sim = sim
        self.rng = rng
        self._nodes = nodes                  # () -> the node ids faults may hit
        self._can_crash = can_crash or (lambda: True)
        self.log: list = []

    # -- views ---------------------------------------------------------------------------
    def nodes(self) -> list:
        return sorted(self._nodes())

    def down(self) -> list:
        return [n for n in self.nodes() if not self.sim.is_alive(n)]

    def up(self) -> list:
        return [n for n in self.nodes() if self.sim.is_alive(n) and not self.sim.is_paused(n)]

    def paused(self) -> list:
        return [n for n in self.nodes() if self.sim.is_alive(n) and self.sim.is_paused(n)]

    # -- actions -------------------------------------------------------------------------
    def act(self, kind: Optional[str] = None) -> Optional[tuple]:
        """Do one fault (``kind`` or a random one); returns the logged action or None."""
        kind = kind or self.rng.choice(self.KINDS)
        do = getattr(self, f"do_{kind}", None)
        if do is None:
            raise ValueError(f"unknown fault kind {kind!r}; kinds: {self.KINDS}")
        done = do()
        if done is None:
            return None
        entry = (self.sim.now, kind, done)
        self.log.append(entry)
        return entry

    def do_crash(self):
        up = self.up()
        if up and self._can_crash():
            n = self.rng.choice(up)
            self.sim.crash(n)
            return n

    def do_restart(self):
        down = self.down()
        if down:
            n = self.rng.choice(down)
            self.sim.restart(n)
            return n

    def do_partition(self):
        nodes = self.nodes()
        if len(nodes) < 2:
            return None
        self.rng.shuffle(nodes)
        k = self.rng.randint(1, len(nodes) - 1)
        a, b = tuple(sorted(nodes[:k])), tuple(sorted(nodes[k:]))
        self.sim.partition(set(a), set(b))
        return (a, b)

    def do_isolate(self):
        n = self.rng.choice(self.nodes())
        self.sim.isolate(n)
        return n

    def do_cut(self):
        nodes = self.nodes()
        if len(nodes) < 2:
            return None
        a, b = self.rng.sample(nodes, 2)
        self.sim.cut_link(a, b)
        return (a, b)

    def do_pause(self):
        up = self.up()
        if up:
            n = self.rng.choice(up)
            self.sim.pause(n)
            return n

    def do_resume(self):
        paused = self.paused()
        if paused:
            n = self.rng.choice(paused)
            self.sim.resume(n)
            return n

    def do_heal(self):
        self.sim.heal()
        return ()

    def do_lossy(self):
        net, rng = self.sim.network, self.rng
        net.drop_rate = rng.choice((0.0, 0.05, 0.2))
        net.duplicate_rate = rng.choice((0.0, 0.05, 0.2))
        net.reorder = rng.random() < 0.5
        net.delay_ms = rng.choice(((1, 5), (5, 50), (1, 100)))
        return (net.drop_rate, net.duplicate_rate, net.reorder, net.delay_ms)

    def do_reliable(self):
        net = self.sim.network
        net.drop_rate = net.duplicate_rate = 0.0
        net.reorder = False
        net.delay_ms = (1, 5)
        return ()

    def do_skew(self):
        n = self.rng.choice(self.nodes())
        rate = self.rng.choice((0.5, 1.0, 1.5, 2.0))
        self.sim.set_clock_rate(n, rate)
        return (n, rate)

    def heal_all(self) -> None:
        """Undo every fault: links, network settings, crashed / paused nodes, skew."""
        self.do_heal()
        self.do_reliable()
        for n in self.nodes():
            if not self.sim.is_alive(n):
                self.sim.restart(n)
            elif self.sim.is_paused(n):
                self.sim.resume(n)
            self.sim.set_clock_rate(n, 1.0)
