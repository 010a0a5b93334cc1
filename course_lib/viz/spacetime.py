"""A space-time (Lamport) diagram of a simulated run: one lane per node, time to the
right, each message an arrow from its send to its delivery.

Read from the simulator's trace (:class:`course_lib.sim.trace.Trace`): ``send`` /
``deliver`` / ``drop`` / ``duplicate`` give the arrows (a dropped message ends in a
cross, halfway to its destination; one still on the wire at the end is dotted), ``crash`` … ``restart`` and ``pause`` … ``resume``
shade the node's lane, ``partition`` … ``heal`` shade the whole time band, and
``state`` (a Raft role change), ``decide`` and ``chosen`` mark the lanes.  Messages
are coloured by type; hover shows the message.  ``window=(t0, t1)`` draws that window
only (a long run has thousands of messages); the figure zooms like any plotly figure.

:func:`spacetime_events` is the same reading as data, for tests and for other views.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Optional

import plotly.graph_objects as go

PALETTE = ("#1f77b4", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22",
           "#7f7f7f", "#ff7f0e", "#393b79")
MAX_ARROWS = 3000


@dataclass(frozen=True)
class Arrow:
    src: str
    dst: str
    sent: float
    arrived: Optional[float]     # None: dropped (``why`` says why)
    msg: Any
    why: str = ""


@dataclass(frozen=True)
class Band:
    """A stretch of time: a node down or paused (``node`` set), or a partition."""
    kind: str                    # "down", "paused", "partition"
    node: Optional[str]
    start: float
    end: Optional[float]         # None: to the end of the run
    label: str = ""


@dataclass(frozen=True)
class Mark:
    node: str
    time: float
    label: str


@dataclass(frozen=True)
class SpaceTime:
    nodes: tuple
    arrows: tuple
    bands: tuple
    marks: tuple
    end: float


def spacetime_events(trace, window: Optional[tuple] = None) -> SpaceTime:
    """The diagram's content, as data: arrows, bands and marks inside ``window``."""
    events = list(trace)                       # a Trace iterates over its events
    t0, t1 = _window(window, events)
    nodes: list = []
    pending: dict = defaultdict(list)          # (src, dst, id(msg)) -> send times
    sent_at: dict = {}                         # (src, dst, id(msg)) -> last send time
    sent_msg: dict = {}                        # (src, dst, id(msg)) -> the message
    arrows, bands, marks = [], [], []
    open_bands: dict = {}
    partition_start: Optional[tuple] = None

    def lane(node):
        if node is not None and node not in nodes:
            nodes.append(node)

    for e in events:
        kind, node, d = e.kind, e.node, e.details
        if kind in ("add",):
            lane(node)
        elif kind == "send":
            dst, msg = d
            lane(node), lane(dst)
            pending[(node, dst, id(msg))].append(e.time)
            sent_at[(node, dst, id(msg))] = e.time
            sent_msg[(node, dst, id(msg))] = msg
        elif kind == "duplicate":
            dst, msg = d
            pending[(node, dst, id(msg))].append(sent_at.get((node, dst, id(msg)), e.time))
        elif kind == "deliver":
            src, msg = d
            lane(src), lane(node)
            sends = pending.get((src, node, id(msg)))
            sent = sends.pop(0) if sends else e.time
            arrows.append(Arrow(src, node, sent, e.time, msg))
        elif kind == "drop":
            if node is None or len(d) != 3:
                continue
            peer, why, msg = d
            # dropped on arrival (in flight from ``peer``: "down", "cut", "manual"), or at
            # the sender before it left ("cut", "loss": no send was recorded)
            in_flight = pending.get((peer, node, id(msg)))
            src, dst = (peer, node) if in_flight else (node, peer)
            sent = in_flight.pop(0) if in_flight else e.time
            lane(src), lane(dst)
            arrows.append(Arrow(src, dst, sent, None, msg, why))
        elif kind in ("crash", "pause"):
            lane(node)
            open_bands[node] = (("down" if kind == "crash" else "paused"), e.time)
        elif kind in ("restart", "resume") and node in open_bands:
            what, start = open_bands.pop(node)
            bands.append(Band(what, node, start, e.time))
        elif kind in ("partition", "isolate"):
            if partition_start is not None:
                bands.append(Band("partition", None, partition_start[0], e.time, partition_start[1]))
            groups = d if kind == "partition" else ((node,),)
            label = " | ".join(" ".join(map(str, g)) for g in groups) if kind == "partition" \
                else f"{node} isolated"
            partition_start = (e.time, label)
        elif kind == "heal" and partition_start is not None:
            bands.append(Band("partition", None, partition_start[0], e.time, partition_start[1]))
            partition_start = None
        elif kind == "state" and node is not None:
            state = d[0] if d else ""
            if state == "leader":
                marks.append(Mark(node, e.time, f"leader, term {d[1]}"))
        elif kind in ("decide", "chosen") and node is not None:
            marks.append(Mark(node, e.time, f"decided {d[-1]!r}"))
    end = events[-1].time if events else 0.0
    for (src, dst, _), sends in pending.items():          # still on the wire at the end
        for sent in sends:
            arrows.append(Arrow(src, dst, sent, None, sent_msg[(src, dst, _)], "in flight"))
    for node, (what, start) in open_bands.items():
        bands.append(Band(what, node, start, None))
    if partition_start is not None:
        bands.append(Band("partition", None, partition_start[0], None, partition_start[1]))

    def inside(a, b):
        return (b is None or b >= t0) and (a is None or a <= t1)

    return SpaceTime(
        nodes=tuple(sorted(nodes, key=_natural)),
        arrows=tuple(a for a in arrows if inside(a.sent, a.arrived if a.arrived is not None else a.sent)),
        bands=tuple(b for b in bands if inside(b.start, b.end)),
        marks=tuple(m for m in marks if t0 <= m.time <= t1),
        end=min(end, t1))


def stepwise(timeline) -> list:
    """A model checker's replay (``[(step, events), ...]``, all at one simulated instant)
    as events whose time is the step's number, 1, 2, ...: a diagram of the
    counterexample step by step (``spacetime_figure(stepwise(r.timeline), xlabel="step")``)."""
    from course_lib.sim.trace import TraceEvent

    return [TraceEvent(float(number), e.kind, e.node, e.details)
            for number, (_step, events) in enumerate(timeline, start=1) for e in events]


def spacetime_figure(trace, window: Optional[tuple] = None, title: str = "Space-time diagram",
                     max_arrows: int = MAX_ARROWS, xlabel: str = "simulated time (ms)") -> go.Figure:
    """The Lamport diagram of ``trace`` (a :class:`~course_lib.sim.trace.Trace` or its
    events) in ``window`` = ``(t0, t1)`` simulated ms (default: the whole run).  More
    than ``max_arrows`` messages in the window is a ``ValueError`` naming a narrower
    window to ask for."""
    st = spacetime_events(trace, window)
    if len(st.arrows) > max_arrows:
        first = st.arrows[0].sent
        last = st.arrows[max_arrows - 1].sent
        raise ValueError(f"{len(st.arrows)} messages in the window: too many arrows to read; "
                         f"draw a narrower window, e.g. window=({first:g}, {last:g})")
    y = {node: i for i, node in enumerate(st.nodes)}
    first = min((a.sent for a in st.arrows), default=st.end)
    pad = max(0.03 * (st.end - first), 0.3)      # how far past the end in-flight lines reach
    fig = go.Figure()
    by_type: dict = defaultdict(list)
    for a in st.arrows:
        by_type[type(a.msg).__name__].append(a)
    for k, (name, arrows) in enumerate(sorted(by_type.items())):
        xs, ys, hover = [], [], []
        lost_x, lost_y, lost_hover = [], [], []
        flight_x, flight_y, flight_hover = [], [], []
        for a in arrows:
            if a.why == "in flight":           # would arrive after the end: drawn past it
                flight_x += [a.sent, st.end + pad, None]
                flight_y += [y[a.src], y[a.dst], None]
                flight_hover += ["", f"{a.src} → {a.dst}: still in flight at the end"
                                     f"<br>{_short(a.msg)}", ""]
            elif a.arrived is None:
                mid = a.sent + max(1.0, 0.02 * (st.end or 1.0))
                xs += [a.sent, mid, None]
                ys += [y[a.src], (y[a.src] + y[a.dst]) / 2, None]
                hover += ["", "", ""]
                lost_x.append(mid)
                lost_y.append((y[a.src] + y[a.dst]) / 2)
                lost_hover.append(f"{a.src} → {a.dst}: dropped ({a.why})<br>{_short(a.msg)}")
            else:
                xs += [a.sent, a.arrived, None]
                ys += [y[a.src], y[a.dst], None]
                hover += ["", f"{a.src} → {a.dst} at {a.arrived:g} (sent at {a.sent:g})"
                              f"<br>{_short(a.msg)}", ""]
        colour = PALETTE[k % len(PALETTE)]
        fig.add_scatter(x=xs, y=ys, mode="lines+markers", name=name, legendgroup=name,
                        line=dict(color=colour, width=1),
                        marker=dict(symbol="arrow", angleref="previous", size=8, color=colour),
                        hovertext=hover, hoverinfo="text")
        if flight_x:
            fig.add_scatter(x=flight_x, y=flight_y, mode="lines", name=f"{name} in flight",
                            legendgroup=name, showlegend=False, hovertext=flight_hover,
                            hoverinfo="text", line=dict(color=colour, width=1, dash="dot"))
        if lost_x:
            fig.add_scatter(x=lost_x, y=lost_y, mode="markers", name=f"{name} dropped",
                            legendgroup=name, showlegend=False,
                            marker=dict(symbol="x", size=9, color="#d62728"),
                            hovertext=lost_hover, hoverinfo="text")
    if st.marks:
        fig.add_scatter(x=[m.time for m in st.marks], y=[y[m.node] for m in st.marks],
                        mode="markers", name="leader / decision",
                        marker=dict(symbol="star", size=13, color="#f2b600",
                                    line=dict(color="black", width=1)),
                        hovertext=[f"{m.node}: {m.label} at {m.time:g}" for m in st.marks],
                        hoverinfo="text")
    for b in st.bands:
        end = st.end if b.end is None else b.end
        if b.node is None:
            fig.add_vrect(x0=b.start, x1=end, fillcolor="#f4a261", opacity=0.15, line_width=0,
                          annotation_text=f"partition {b.label}", annotation_position="top left",
                          annotation_font_size=10)
        else:
            fig.add_shape(type="rect", x0=b.start, x1=end, y0=y[b.node] - 0.35,
                          y1=y[b.node] + 0.35, fillcolor="#888" if b.kind == "down" else "#a8dadc",
                          opacity=0.35, line_width=0, layer="below")
            fig.add_annotation(x=b.start, y=y[b.node] + 0.35, text=b.kind, showarrow=False,
                               xanchor="left", yanchor="bottom", font=dict(size=10))
    for i in range(len(st.nodes)):
        fig.add_hline(y=i, line=dict(color="#ccc", width=1), layer="below")
    x0 = window[0] if window else None
    fig.update_layout(
        title=title, height=max(260, 90 + 60 * len(st.nodes)), hovermode="closest",
        margin=dict(l=50, r=20, t=70, b=40),
        legend=dict(orientation="h", x=1, xanchor="right", y=1.02, yanchor="bottom"),
        xaxis=dict(title=xlabel, range=[x0, st.end + pad] if x0 is not None else None,
                   dtick=1 if xlabel == "step" else None),
        yaxis=dict(tickvals=list(range(len(st.nodes))), ticktext=list(st.nodes),
                   autorange="reversed", zeroline=False, showgrid=False))
    return fig


def _window(window, events) -> tuple:
    if window is None:
        return float("-inf"), float("inf")
    try:
        t0, t1 = (float(v) for v in window)
    except (TypeError, ValueError):
        raise ValueError(f"window must be (start, end) in simulated ms, not {window!r}") from None
    if t1 <= t0:
        raise ValueError(f"window must end after it starts, not {window!r}")
    return t0, t1


def _short(msg: Any, limit: int = 160) -> str:
    text = repr(msg)
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _natural(name: Any) -> tuple:
    text = str(name)
    digits = "".join(ch for ch in text if ch.isdigit())
    return (text.rstrip("0123456789"), int(digits) if digits else -1, text)
