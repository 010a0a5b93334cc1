"""Static figures for the lock lessons, built from what the worker processes print.

- :func:`parse_lines` turns the workers' JSON lines (``course_lib.coord.worker``) into
  dicts; :func:`holds_of` keeps the ``held`` events.
- :func:`holder_gantt`: one row per worker process, one bar per time it held the lock
  (from ``acquired`` to ``released``), the fencing token in the hover.
- :func:`overlaps`: pairs of holds that overlap in time (mutual exclusion says: none),
  and :func:`idle_gaps`: how long the lock sat free between two holders.
- :func:`wakeup_figure`: wake-ups (or create calls) per release against the number of
  waiters, one line per lock design.
- :func:`fencing_figure`: each fenced write as a marker, accepted or refused, with the
  paused interval shaded.

Every function returns a plain ``plotly.graph_objects.Figure`` with fixed trace
``uid``s, so notebooks show them and tests inspect them.
"""

from __future__ import annotations

import json
from typing import Iterable, Optional, Sequence

import plotly.graph_objects as go

PALETTE = ("#3b7dd8", "#f2a900", "#2e7d32", "#c62828", "#7b1fa2", "#00838f", "#ef6c00",
           "#5d4037", "#ad1457", "#558b2f", "#283593", "#6d4c41")
KIND_COLOURS = {"read": "#3b7dd8", "write": "#c62828", "lock": "#2e7d32"}
DESIGN_COLOURS = {"chapter": "#e8743b", "herd": "#c62828", "ours": "#2e7d32", "kazoo": "#3b7dd8"}


def parse_lines(text: str | Iterable[str]) -> list[dict]:
    """The JSON objects of a worker's output (blank lines skipped); ``ValueError``
    naming the line if one is not JSON."""
    lines = text.splitlines() if isinstance(text, str) else list(text)
    events = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            events.append(json.loads(line))
        except json.JSONDecodeError:
            raise ValueError(f"line {number} is not a JSON object: {line[:80]!r}") from None
    return events


def holds_of(events: Iterable[dict]) -> list[dict]:
    """The ``held`` events (each with ``worker``, ``acquired``, ``released``), by start."""
    holds = []
    for event in events:
        if event.get("event") != "held":
            continue
        missing = {"worker", "acquired", "released"} - set(event)
        if missing:
            raise ValueError(f"a held event lacks {sorted(missing)}: {event}")
        if event["released"] < event["acquired"]:
            raise ValueError(f"released before acquired: {event}")
        holds.append(event)
    return sorted(holds, key=lambda e: e["acquired"])


def overlaps(events: Iterable[dict]) -> list[tuple[dict, dict]]:
    """Pairs of holds whose intervals overlap (touching ends do not count)."""
    holds = holds_of(events)
    found = []
    latest = None  # the hold that ends last among those seen so far
    for hold in holds:
        if latest is not None and hold["acquired"] < latest["released"]:
            found.append((latest, hold))
        if latest is None or hold["released"] > latest["released"]:
            latest = hold
    return found


def idle_gaps(events: Iterable[dict]) -> list[float]:
    """Seconds the lock was free between consecutive holds (hand-over latency plus any
    time nobody wanted it)."""
    holds = holds_of(events)
    return [max(0.0, b["acquired"] - a["released"]) for a, b in zip(holds, holds[1:])]


def holder_gantt(events: Iterable[dict], title: str = "Who held the lock",
                 colour_by: str = "worker", height: Optional[int] = None,
                 marks: Optional[dict] = None) -> go.Figure:
    """A Gantt chart of lock holders: one row per worker, a bar per hold.

    ``events``: the workers' parsed lines (other events are ignored).  Times are shown
    in seconds since the first acquisition.  ``colour_by``: ``"worker"`` (one colour per
    worker) or ``"kind"`` (``read`` / ``write`` / ``lock``, from an event's ``kind``).
    The hover shows the worker, the times and the fencing token.  ``marks``: label ->
    ``time.time()`` of an event to draw as a dashed vertical line (a server killed...).
    """
    if colour_by not in ("worker", "kind"):
        raise ValueError(f"colour_by must be 'worker' or 'kind', not {colour_by!r}")
    holds = holds_of(events)
    if not holds:
        raise ValueError("no 'held' events to draw: did the workers run with --trace?")
    t0 = holds[0]["acquired"]
    workers = sorted({h["worker"] for h in holds}, key=_natural)
    groups: dict[str, list[dict]] = {}
    for hold in holds:
        key = hold["worker"] if colour_by == "worker" else hold.get("kind", "lock")
        groups.setdefault(key, []).append(hold)
    figure = go.Figure()
    for index, (key, group) in enumerate(sorted(groups.items(), key=lambda kv: _natural(kv[0]))):
        colour = (PALETTE[workers.index(key) % len(PALETTE)] if colour_by == "worker"
                  else KIND_COLOURS.get(key, PALETTE[index % len(PALETTE)]))
        figure.add_bar(
            uid=f"holds-{key}", name=str(key), orientation="h",
            y=[h["worker"] for h in group],
            base=[h["acquired"] - t0 for h in group],
            x=[max(h["released"] - h["acquired"], 1e-4) for h in group],
            marker=dict(color=colour, line=dict(width=0)),
            customdata=[[h.get("token"), (h["released"] - h["acquired"]) * 1000] for h in group],
            hovertemplate=("%{y}: held from %{base:.3f} s for %{customdata[1]:.1f} ms"
                           "<br>fencing token %{customdata[0]}<extra></extra>"))
    figure.update_layout(
        title=title, barmode="overlay", bargap=0.25,
        height=height or max(220, 60 + 28 * len(workers)),
        margin=dict(l=60, r=20, t=50, b=40), legend=dict(orientation="h", y=-0.25),
        showlegend=colour_by == "kind",
        xaxis=dict(title="seconds since the first acquisition", zeroline=False),
        yaxis=dict(categoryorder="array", categoryarray=workers[::-1], title=None))
    for label, at in (marks or {}).items():
        figure.add_vline(x=at - t0, line=dict(color="#c0392b", dash="dash", width=2),
                         annotation_text=label, annotation_position="top")
    return figure


def wakeup_figure(rows: Sequence, metric: str = "wakeups_per_release",
                  title: str = "Wake-ups per release") -> go.Figure:
    """One line per design: ``metric`` against the number of waiters.

    ``rows``: objects or dicts with ``design``, ``waiters`` and ``metric``
    (e.g. :class:`course_lib.coord.herd.WakeupCount`).
    """
    if not rows:
        raise ValueError("no measurements to draw")
    table: dict[str, list[tuple[int, float]]] = {}
    for row in rows:
        design, waiters, value = (_field(row, "design"), _field(row, "waiters"), _field(row, metric))
        table.setdefault(design, []).append((waiters, value))
    figure = go.Figure()
    for design, points in table.items():
        points.sort()
        figure.add_scatter(uid=f"{metric}-{design}", name=design, mode="lines+markers",
                           x=[p[0] for p in points], y=[p[1] for p in points],
                           line=dict(color=DESIGN_COLOURS.get(design.split()[0]),
                                     dash="dot" if "chapter" in design else "solid"))
    figure.update_layout(title=title, height=330, margin=dict(l=60, r=20, t=50, b=40),
                         xaxis=dict(title="waiters queued behind the holder", type="log",
                                    tickvals=sorted({p[0] for v in table.values() for p in v})),
                         yaxis=dict(title=metric.replace("_", " "), rangemode="tozero"))
    return figure


def fencing_figure(events: Iterable[dict], paused: Optional[tuple[float, float]] = None,
                   expired_at: Optional[float] = None, title: str = "Fenced writes") -> go.Figure:
    """Each ``write`` event as a marker on its worker's row: filled if the storage
    accepted it, a red cross if it refused it (stale token).  ``paused``: the
    ``(start, end)`` wall-clock times a worker was stopped, shaded; ``expired_at``: when
    its session expired, a dashed line."""
    writes = [e for e in events if e.get("event") == "write"]
    if not writes:
        raise ValueError("no 'write' events to draw")
    t0 = min([w["time"] for w in writes] + ([paused[0]] if paused else []))
    figure = go.Figure()
    for accepted, symbol, colour, label in ((True, "circle", "#2e7d32", "accepted"),
                                            (False, "x", "#c62828", "refused (stale token)")):
        chosen = [w for w in writes if bool(w.get("accepted")) is accepted]
        figure.add_scatter(uid=f"writes-{label.split()[0]}", name=label, mode="markers",
                           x=[w["time"] - t0 for w in chosen], y=[w["worker"] for w in chosen],
                           marker=dict(symbol=symbol, size=11 if accepted else 14, color=colour),
                           customdata=[w.get("token") for w in chosen],
                           hovertemplate="%{y}, token %{customdata}<extra>" + label + "</extra>")
    if paused:
        figure.add_vrect(x0=paused[0] - t0, x1=paused[1] - t0, fillcolor="#999", opacity=0.2,
                         line_width=0, annotation_text="paused (SIGSTOP)",
                         annotation_position="top left")
    if expired_at is not None:
        figure.add_vline(x=expired_at - t0, line_dash="dash", line_color="#c62828",
                         annotation_text="session expired", annotation_position="bottom right")
    rows = sorted({w["worker"] for w in writes}, key=_natural)
    figure.update_layout(title=title, height=260, margin=dict(l=60, r=20, t=50, b=40),
                         xaxis=dict(title="seconds"), legend=dict(orientation="h", y=-0.35),
                         yaxis=dict(categoryorder="array", categoryarray=rows[::-1]))
    return figure


def _field(row, name: str):
    value = row.get(name) if isinstance(row, dict) else getattr(row, name, None)
    if value is None:
        raise ValueError(f"a row lacks {name!r}: {row!r}")
    return value


def _natural(key) -> tuple:
    """Sort ``w2`` before ``w10``."""
    text = str(key)
    digits = "".join(c for c in text if c.isdigit())
    return (text.rstrip("0123456789"), int(digits) if digits else -1, text)
