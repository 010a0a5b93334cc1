"""A Jepsen-style run: concurrent clients → history → checker → report.

:func:`run_workload` starts ``clients`` threads.  Each draws operations from a seeded
:class:`~course_lib.check.workloads.Workload` and performs them on the system under
test — any callable ``input -> output`` (shared, or one per client from
``client_factory``) — timing each call on one clock.  While they run, an optional
nemesis (e.g. :class:`~course_lib.check.nemesis.ProcessNemesis`) injects faults.  The
outcome of each call is one of:

- *ok*: the call returned an output → a completed :class:`Operation`;
- *fail*: it raised :class:`OperationFailed` — it definitely did not take effect, so it
  is left out of the history (and counted in ``report.failed``);
- *unknown*: any other exception, or no answer within ``op_timeout`` → an operation
  with ``ret=None``: it may take effect at any later time.  The client then continues
  under a new ``client_id`` (``worker + k * clients``), as a crashed Jepsen process
  does, since its old call may still be in flight.

The history is checked against the workload's model and a :class:`RunReport` gives
latency percentiles, throughput over time, the faults, and plots.
"""

from __future__ import annotations

import math
import queue
import random
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Optional

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .checker import CheckResult, check
from .history import Operation
from .nemesis import FaultInterval
from .plot import plot_history
from .workloads import Workload


class OperationFailed(Exception):
    """Raised by a client to say the operation certainly did not take effect."""


@dataclass(frozen=True)
class RunReport:
    """What a run produced.  Times are seconds since the run started.

    ``history`` holds ok and unknown-outcome operations (what the checker sees);
    ``failed`` the operations that definitely failed; ``errors`` one message per
    unknown outcome; ``result`` the checker's verdict (None if not checked).
    """

    workload: Workload
    clients: int
    duration: float
    history: tuple[Operation, ...]
    failed: tuple[Operation, ...]
    errors: tuple[str, ...]
    faults: tuple[FaultInterval, ...]
    result: Optional[CheckResult] = field(default=None)

    @property
    def ok(self) -> Optional[bool]:
        return None if self.result is None else self.result.ok

    def counts(self) -> dict[str, int]:
        unknown = sum(1 for op in self.history if op.ret is None)
        return {"ok": len(self.history) - unknown, "fail": len(self.failed), "unknown": unknown}

    def latencies(self) -> list[float]:
        """Seconds from call to return of every completed (ok) operation, in call order."""
        return [op.ret - op.call for op in self.history if op.ret is not None]

    def latency_percentiles(self, percentiles: Iterable[float] = (50, 90, 99, 99.9, 100)
                            ) -> dict[float, float]:
        """Latency (seconds) at each percentile, linearly interpolated; empty if no ok ops."""
        return percentile(self.latencies(), percentiles)

    def throughput(self, bucket: Optional[float] = None) -> list[tuple[float, float]]:
        """``(bucket start, ok operations completed per second)`` over the run."""
        bucket = bucket or max(self.duration / 50, 1e-3)
        n = max(1, math.ceil(self.duration / bucket))
        counts = [0] * n
        for op in self.history:
            if op.ret is not None:
                counts[min(n - 1, int(op.ret / bucket))] += 1
        return [(k * bucket, c / bucket) for k, c in enumerate(counts)]

    def summary(self) -> str:
        c = self.counts()
        lines = [
            f"{self.workload.name}: {self.clients} clients, {self.duration:.2f} s, "
            f"{c['ok']} ok / {c['fail']} failed / {c['unknown']} unknown, "
            f"{c['ok'] / self.duration if self.duration else 0:.0f} ok ops/s",
        ]
        p = self.latency_percentiles()
        if p:
            lines.append("latency " + ", ".join(f"p{k:g} {v * 1e3:.3g} ms" for k, v in p.items()))
        if self.faults:
            lines.append(f"{len(self.faults)} fault(s): " + ", ".join(
                f"{f.label} [{f.start:.2f}, {'-' if f.end is None else format(f.end, '.2f')}]"
                for f in self.faults))
        if self.result is not None:
            lines.append(self.result.explain())
        return "\n".join(lines)

    def plot(self, title: Optional[str] = None) -> go.Figure:
        """Latency of every operation over time (top) and throughput (bottom), faults shaded."""
        fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.65, 0.35],
                            vertical_spacing=0.06)
        kinds = sorted({op.input[0] if isinstance(op.input, tuple) and op.input else "op"
                        for op in self.history})
        for kind in kinds:
            ops = [op for op in self.history if op.ret is not None and _kind(op) == kind]
            fig.add_trace(go.Scattergl(
                x=[op.call for op in ops], y=[(op.ret - op.call) * 1e3 for op in ops],
                mode="markers", marker=dict(size=4), name=f"{kind} ok"), row=1, col=1)
        ceiling = max(self.latencies(), default=0.001) * 1e3
        unknown = [op for op in self.history if op.ret is None]
        if unknown:
            fig.add_trace(go.Scattergl(
                x=[op.call for op in unknown], y=[ceiling] * len(unknown), mode="markers",
                marker=dict(symbol="x", size=7, color="#ff7f0e"), name="unknown outcome"),
                row=1, col=1)
        if self.failed:
            fig.add_trace(go.Scattergl(
                x=[op.call for op in self.failed],
                y=[(op.ret - op.call) * 1e3 for op in self.failed], mode="markers",
                marker=dict(symbol="triangle-down", size=6, color="#d62728"), name="failed"),
                row=1, col=1)
        rate = self.throughput()
        fig.add_trace(go.Scatter(x=[t for t, _ in rate], y=[r for _, r in rate],
                                 mode="lines", line_shape="hv", name="ok ops/s"),
                      row=2, col=1)
        for f in self.faults:
            fig.add_vrect(x0=f.start, x1=self.duration if f.end is None else f.end,
                          fillcolor="grey", opacity=0.18, line_width=0,
                          annotation_text=f.label, annotation_position="top left",
                          annotation_font_size=10, row="all", col=1)
        verdict = {True: "linearizable", False: "NOT linearizable", None: "undecided"}
        fig.update_layout(
            title=title or f"{self.workload.name}, {self.clients} clients"
            + ("" if self.result is None else f" — {verdict[self.result.ok]}"),
            height=520, legend_orientation="h", legend=dict(y=-0.15),
            margin=dict(l=10, r=10, t=50, b=10))
        fig.update_yaxes(title_text="latency (ms)", type="log", row=1, col=1)
        fig.update_yaxes(title_text="ops/s", row=2, col=1)
        fig.update_xaxes(title_text="time (s)", row=2, col=1)
        return fig

    def plot_history(self, **kwargs: Any) -> go.Figure:
        """The history timeline (see :func:`~course_lib.check.plot.plot_history`)."""
        kwargs.setdefault("model", self.workload.model)
        return plot_history(self.history, self.result, faults=self.faults, **kwargs)


def _kind(op: Operation) -> str:
    return op.input[0] if isinstance(op.input, tuple) and op.input else "op"


def percentile(values: Iterable[float], percentiles: Iterable[float]) -> dict[float, float]:
    """Linearly interpolated percentiles (0-100) of ``values``; ``{}`` for no values."""
    data = sorted(values)
    if not data:
        return {}
    out = {}
    for p in percentiles:
        if not 0 <= p <= 100:
            raise ValueError(f"percentiles are in [0, 100], got {p}")
        pos = (len(data) - 1) * p / 100
        lo = math.floor(pos)
        hi = min(lo + 1, len(data) - 1)
        out[p] = data[lo] + (data[hi] - data[lo]) * (pos - lo)
    return out


_STOP = object()


class _Caller:
    """Calls ``fn`` on a helper daemon thread so a hung call can be abandoned on timeout."""

    def __init__(self, fn: Callable[[Any], Any]) -> None:
        self._fn = fn
        self._spawn()

    def _spawn(self) -> None:
        self._requests: queue.SimpleQueue = queue.SimpleQueue()
        self._replies: queue.SimpleQueue = queue.SimpleQueue()
        threading.Thread(target=self._serve, args=(self._fn, self._requests, self._replies),
                         daemon=True, name="runner-call").start()

    @staticmethod
    def _serve(fn, requests, replies) -> None:
        while True:
            input = requests.get()
            if input is _STOP:
                return
            try:
                replies.put((True, fn(input)))
            except BaseException as e:  # noqa: BLE001 - handed to the client thread
                replies.put((False, e))

    def __call__(self, input: Any, timeout: float) -> Any:
        self._requests.put(input)
        try:
            ok, value = self._replies.get(timeout=timeout)
        except queue.Empty:
            self._requests.put(_STOP)
            self._spawn()
            raise TimeoutError(f"no answer within {timeout} s") from None
        if ok:
            return value
        raise value

    def close(self) -> None:
        self._requests.put(_STOP)


def run_workload(target: Optional[Callable[[Any], Any]], workload: Workload, *,
                 clients: int = 5, ops: Optional[int] = None,
                 duration: Optional[float] = None, seed: int = 0,
                 client_factory: Optional[Callable[[int], Callable[[Any], Any]]] = None,
                 nemesis: Any = None, op_timeout: Optional[float] = None,
                 think_time: float = 0.0, check_history: bool = True,
                 check_timeout: Optional[float] = 60.0,
                 clock: Callable[[], float] = time.monotonic) -> RunReport:
    """Run ``workload`` with ``clients`` concurrent threads and check the history.

    The run stops after ``ops`` operations in total (split evenly between clients) or
    after ``duration`` seconds, whichever comes first (give at least one).  ``target``
    is shared by all clients; alternatively ``client_factory(worker)`` makes one per
    client (closed with ``close()`` at the end if it has one).  ``nemesis`` is anything
    with ``start(t0)`` and ``stop() -> intervals``.  ``op_timeout`` turns a call that
    takes longer into an unknown outcome.  ``think_time`` is a pause between a client's
    operations.  Client ``w`` draws from ``random.Random(f"{seed}-{w}")``.
    """
    if (target is None) == (client_factory is None):
        raise ValueError("give exactly one of target and client_factory")
    if target is not None and not callable(target):
        raise ValueError(f"target must be callable (input -> output), got {target!r}")
    if clients < 1:
        raise ValueError(f"clients must be >= 1, got {clients}")
    if ops is None and duration is None:
        raise ValueError("give ops=, duration=, or both, to bound the run")
    if ops is not None and ops < 0 or duration is not None and duration <= 0:
        raise ValueError(f"need ops >= 0 and duration > 0, got {ops} and {duration}")
    if op_timeout is not None and op_timeout <= 0:
        raise ValueError(f"op_timeout must be > 0 seconds, got {op_timeout}")
    if nemesis is not None and not (hasattr(nemesis, "start") and hasattr(nemesis, "stop")):
        raise ValueError(f"nemesis needs start(t0) and stop(), got {nemesis!r}")

    t0 = clock()
    results: list[tuple[list, list, list]] = [([], [], []) for _ in range(clients)]
    crashes: list[BaseException] = []

    def worker(w: int) -> None:
        done, failed, errors = results[w]
        try:
            fn = target if client_factory is None else client_factory(w)
            caller = _Caller(fn) if op_timeout is not None else None
            rng = random.Random(f"{seed}-{w}")
            quota = None if ops is None else ops // clients + (1 if w < ops % clients else 0)
            client_id, seq = w, 0
            while quota is None or seq < quota:
                if duration is not None and clock() - t0 >= duration:
                    break
                input = workload.generate(rng, w, seq)
                seq += 1
                call = clock() - t0
                try:
                    output = fn(input) if caller is None else caller(input, op_timeout)
                except OperationFailed:
                    failed.append(Operation(client_id, input, call, None, clock() - t0))
                except Exception as e:  # noqa: BLE001 - an unknown outcome
                    done.append(Operation(client_id, input, call))
                    errors.append(f"client {client_id}: {input!r}: {e!r}")
                    client_id += clients
                else:
                    done.append(Operation(client_id, input, call, output, clock() - t0))
                if think_time:
                    time.sleep(think_time)
            if caller is not None:
                caller.close()
            if client_factory is not None and hasattr(fn, "close"):
                fn.close()
        except BaseException as e:  # noqa: BLE001 - re-raised in the caller
            crashes.append(e)

    threads = [threading.Thread(target=worker, args=(w,), name=f"client-{w}", daemon=True)
               for w in range(clients)]
    if nemesis is not None:
        nemesis.start(t0)
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        faults: tuple = ()
        if nemesis is not None:
            stopped = nemesis.stop()
            faults = tuple(stopped if stopped is not None else getattr(nemesis, "intervals", ()))
    if crashes:
        raise RuntimeError(f"a client thread crashed: {crashes[0]!r}") from crashes[0]
    elapsed = clock() - t0
    history = sorted((op for done, _, _ in results for op in done), key=lambda op: op.call)
    failed = sorted((op for _, f, _ in results for op in f), key=lambda op: op.call)
    errors = tuple(msg for _, _, errs in results for msg in errs)
    result = check(workload.model, history, timeout=check_timeout) if check_history else None
    return RunReport(workload, clients, elapsed, tuple(history), tuple(failed), errors,
                     faults, result)
