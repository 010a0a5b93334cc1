"""What the simulator hosts: a :class:`Process` receives ticks and messages.

A protocol plugs in by subclassing :class:`Process` (or duck-typing it).  The
simulator calls, for a live, unpaused process only:

- ``on_start()`` once when added, and ``on_restart()`` after a crash;
- ``on_tick()`` every tick of its own clock (``ticking=True`` processes only);
- ``on_message(src, msg)`` for each delivered message;
- ``on_crash()`` when it crashes: it must drop volatile state and keep only what it
  persisted.

A process sends with ``self.sim.send(self.node_id, dst, msg)``.
"""

from __future__ import annotations

from typing import Any


class Process:
    ticking: bool = True

    def __init__(self, node_id: str) -> None:
        self.node_id = node_id
        self.sim = None

    def on_start(self) -> None:
        pass

    def on_tick(self) -> None:
        pass

    def on_message(self, src: str, msg: Any) -> None:
        pass

    def on_crash(self) -> None:
        pass

    def on_restart(self) -> None:
        pass
