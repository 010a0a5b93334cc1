"""``LiveTask``: the one way widgets animate — an asyncio task on the kernel's loop.

A widget never runs a blocking loop: its Play / Live button starts a ``LiveTask`` that
calls ``frame()`` every ``interval`` seconds on the running event loop (the kernel's,
in Jupyter) and yields between frames, so the kernel stays responsive to clicks; Pause
or ``close()`` cancels it.  Headless, a later cell ``await asyncio.sleep(...)`` lets it
run.  ``frame`` may be a plain function or a coroutine function (for work that must
leave the loop, e.g. ``await loop.run_in_executor(...)`` around blocking sockets).
"""

from __future__ import annotations

import asyncio
import inspect
from typing import Callable, Optional


class LiveTask:
    """Call ``frame()`` every ``interval`` seconds until ``stop()``.

    An exception in ``frame`` stops the task and is passed to ``on_error`` (a widget
    shows it as a message) instead of vanishing inside the event loop.
    """

    def __init__(self, frame: Callable, interval: float,
                 on_error: Optional[Callable[[BaseException], None]] = None):
        if isinstance(interval, bool) or not isinstance(interval, (int, float)) or interval <= 0:
            raise ValueError(f"interval must be a positive number of seconds, not {interval!r}")
        self.frame = frame
        self.interval = float(interval)
        self.on_error = on_error
        self._task: Optional[asyncio.Task] = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> bool:
        """Start (no-op if running).  False when no event loop runs (a plain script):
        then call the widget's step method yourself."""
        if self.running:
            return True
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return False
        self._task = loop.create_task(self._run())
        return True

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None

    async def _run(self) -> None:
        try:
            while True:
                result = self.frame()
                if inspect.isawaitable(result):
                    await result
                await asyncio.sleep(self.interval)
        except asyncio.CancelledError:
            pass
        except Exception as error:  # noqa: BLE001 — reported, not swallowed
            self._task = None
            if self.on_error is not None:
                self.on_error(error)
            else:
                raise
