"""The history as a timeline: one row per client, one bar per operation from call to return.

Operations the checker could not place are red, the longest linearizable prefix of a
failing partition is green, other completed operations are blue, and unknown-outcome
operations are hatched orange bars running to the end of the plot (they may take
effect at any time after their call).  Fault intervals are shaded grey with a label.

As in Porcupine's viewer: with a model that splits the history by key, the rows are
grouped by key (``key · client``); hovering an operation of a linearizable prefix shows
its place in the linearization and the model's state after it; the first operation that
cannot be placed is marked with the state the model was in before it.  The same facts
are data in the check's :class:`~course_lib.check.checker.Evidence`.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from typing import Any, Optional

import plotly.graph_objects as go

from .checker import CheckResult
from .history import Operation
from .models import UNKNOWN, Model

_STYLE = {
    "failing": ("cannot be placed", "#d62728"),
    "prefix": ("linearizable prefix", "#2ca02c"),
    "ok": ("operation", "#1f77b4"),
    "unknown": ("outcome unknown", "#ff7f0e"),
}


def _fault(f: Any) -> tuple[float, Optional[float], str]:
    if isinstance(f, tuple):
        if len(f) != 3:
            raise ValueError(f"a fault is (start, end, label) or has .start/.end/.label, got {f!r}")
        return f
    try:
        return f.start, f.end, f.label
    except AttributeError:
        raise ValueError(f"a fault is (start, end, label) or has .start/.end/.label, "
                         f"got {f!r}") from None


def plot_history(history: Iterable[Operation], result: Optional[CheckResult] = None, *,
                 model: Optional[Model] = None, faults: Iterable[Any] = (),
                 key: Hashable = ..., title: Optional[str] = None,
                 labels: Optional[bool] = None, by_key: Optional[bool] = None) -> go.Figure:
    """A plotly figure of ``history``.

    ``result`` (from :func:`check`) colours the failing operations and prefixes; its model
    labels the bars unless ``model`` is given.  ``faults`` are ``(start, end, label)``
    tuples or objects with those attributes (``end=None``: until the end).  ``key``
    restricts the plot to one partition of the model.  ``labels`` writes each
    operation's description on its bar (default: when there are at most 150 bars).
    ``by_key``: one row per key and client (default: when the model's partitions, the
    keys, are more than one).
    """
    ops = list(history)
    for i, op in enumerate(ops):
        if not isinstance(op, Operation):
            raise ValueError(f"history[{i}] is a {type(op).__name__}, not an Operation")
    model = model or (result.model if result is not None else None)
    if key is not ...:
        if model is None:
            raise ValueError("key= needs a model (or a result) to partition the history")
        ops = [op for op in ops if model.partition_key(op.input) == key]
    faults = [_fault(f) for f in faults]

    failing: set = set()
    prefix: set = set()
    notes: dict = {}           # op -> what the hover adds: its place, the state after/before
    if result is not None:
        failing = {_ident(op) for op in result.failing_operations}
        prefix = {_ident(op) for e in result.evidence for op in e.prefix}
        notes = _evidence_notes(result)
    times = [op.call for op in ops] + [op.ret for op in ops if op.ret is not None]
    times += [t for s, e, _ in faults for t in (s, e) if t is not None]
    t0, t1 = (min(times), max(times)) if times else (0.0, 1.0)
    span = (t1 - t0) or 1.0
    end = t1 + 0.05 * span
    if labels is None:
        labels = len(ops) <= 150

    keys = {} if model is None else {_ident(op): model.partition_key(op.input) for op in ops}
    if by_key is None:
        by_key = len(set(keys.values())) > 1
    if by_key and model is None:
        raise ValueError("by_key=True needs a model (or a result) to find each operation's key")
    lane = ((lambda op: (keys[_ident(op)], op.client_id)) if by_key else (lambda op: op.client_id))
    lanes = sorted({lane(op) for op in ops}, key=_order)
    names = {ln: (f"{ln[0]} · client {ln[1]}" if by_key else f"client {ln}") for ln in lanes}
    row = {_ident(op): names[lane(op)] for op in ops}
    groups: dict[str, list[Operation]] = {k: [] for k in _STYLE}
    for op in ops:
        if _ident(op) in failing:
            groups["failing"].append(op)
        elif op.ret is None:
            groups["unknown"].append(op)
        elif _ident(op) in prefix:
            groups["prefix"].append(op)
        else:
            groups["ok"].append(op)

    fig = go.Figure()
    for kind, members in groups.items():
        if not members:
            continue
        name, colour = _STYLE[kind]
        texts = [_describe(model, op) for op in members]
        fig.add_trace(go.Bar(
            name=name, orientation="h",
            y=[row[_ident(op)] for op in members],
            base=[op.call for op in members],
            x=[max((end if op.ret is None else op.ret) - op.call, 0.004 * span)
               for op in members],
            marker=dict(color=colour, line=dict(color="white", width=0.5),
                        pattern=dict(shape="/" if kind == "unknown" else "")),
            opacity=0.55 if kind == "unknown" else 0.9,
            text=texts if labels else None, textposition="inside",
            insidetextanchor="middle",
            hovertext=[f"{t}<br>client {op.client_id}<br>call {op.call:g}, return "
                       f"{'?' if op.ret is None else format(op.ret, 'g')}"
                       + notes.get(_ident(op), "")
                       for t, op in zip(texts, members)],
            hoverinfo="text",
        ))
    for start, stop, label in faults:
        fig.add_vrect(x0=start, x1=end if stop is None else stop, fillcolor="grey",
                      opacity=0.18, line_width=0, annotation_text=label,
                      annotation_position="top left", annotation_font_size=10)
    if result is not None:
        for e in result.evidence:
            if e.failed is not None and _ident(e.failed) in row:
                fig.add_annotation(
                    x=e.failed.call, y=row[_ident(e.failed)], xanchor="left", yshift=14,
                    text=f"✗ cannot be placed; state before: {e.model.describe_state(e.state)}",
                    showarrow=False, font=dict(color=_STYLE["failing"][1], size=11))
    verdict = "" if result is None else {True: " — linearizable", False: " — NOT linearizable",
                                         None: " — undecided (timeout)"}[result.ok]
    fig.update_layout(
        title=(title or f"History of {len(ops)} operations") + verdict,
        barmode="overlay", bargap=0.35, xaxis_title="time",
        yaxis=dict(categoryorder="array", categoryarray=[names[ln] for ln in lanes][::-1],
                   title=None),
        height=max(250, 60 + 28 * len(lanes)), legend_orientation="h",
        legend=dict(y=-0.2), margin=dict(l=10, r=10, t=50, b=10),
    )
    fig.update_xaxes(range=[t0 - 0.02 * span, end])
    return fig


def _order(value: Any) -> tuple:
    """A sort key for client ids and (key, client) lanes of any hashable type."""
    if isinstance(value, tuple):
        return tuple(_order(v) for v in value)
    if isinstance(value, (int, float, str)):
        return (str(type(value)), value)
    return (str(type(value)), repr(value))


def _evidence_notes(result: CheckResult) -> dict:
    """For each failing partition: each prefix operation's place in the linearization
    and the model's state after it; the state before the first unplaceable one."""
    notes: dict = {}
    for e in result.evidence:
        state = e.model.init()
        for place, op in enumerate(e.prefix, start=1):
            _, state = e.model.step(state, op.input, op.output if op.ret is not None else UNKNOWN)
            notes[_ident(op)] = (f"<br>linearized #{place} of {len(e.prefix)}; "
                                 f"state after: {e.model.describe_state(state)}")
        if e.failed is not None:
            notes[_ident(e.failed)] = (f"<br><b>cannot be placed</b>; state before: "
                                       f"{e.model.describe_state(e.state)}")
    return notes


def _describe(model: Optional[Model], op: Operation) -> str:
    output = op.output if op.ret is not None else UNKNOWN
    if model is not None:
        return model.describe_operation(op.input, output)
    return f"{op.input!r} → {'?' if output is UNKNOWN else repr(output)}"


def _ident(op: Operation) -> Hashable:
    try:
        hash(op)
    except TypeError:
        return id(op)
    return op
