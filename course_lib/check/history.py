"""Histories of concurrent operations, as recorded by clients.

An :class:`Operation` is one client call: what was asked (``input``), when it was
invoked (``call``), what came back (``output``) and when (``ret``).  Times are in any
single unit per history (simulated ms for the simulator, seconds for real runs).

``ret is None`` means the outcome is unknown (the client timed out or crashed): the
operation may or may not have taken effect, at any time after ``call``.  Its
``output`` is then ``None`` too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Hashable, Optional


@dataclass(frozen=True)
class Operation:
    client_id: Hashable
    input: Any
    call: float
    output: Any = None
    ret: Optional[float] = None

    def __post_init__(self) -> None:
        if self.ret is not None and self.ret < self.call:
            raise ValueError(
                f"operation {self.input!r} of client {self.client_id!r} returns at "
                f"{self.ret} before it was called at {self.call}"
            )
        if self.ret is None and self.output is not None:
            raise ValueError(
                f"operation {self.input!r} of client {self.client_id!r} has an output "
                f"but no return time; an unknown outcome has output=None"
            )

    @property
    def completed(self) -> bool:
        """True when the outcome is known (the call returned)."""
        return self.ret is not None
