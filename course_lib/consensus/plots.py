"""Figures for lesson 02_2: quorums on a graph, and a message timeline of a run.

plotly figures built from networkx layouts (no matplotlib).  Each function returns a
``plotly.graph_objects.Figure`` and sets ``uid`` on its traces, so a figure's text is
the same from run to run.
"""

from __future__ import annotations

from collections import defaultdict, deque
from typing import Optional, Sequence

import networkx as nx
import plotly.graph_objects as go

PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b")


def quorum_figure(nodes: Sequence[str], a: Sequence[str], b: Sequence[str], *,
                  title: str = "", names: tuple = ("A", "B")) -> go.Figure:
    """The nodes on a circle; quorum ``a`` and quorum ``b`` drawn as two cliques, and
    their intersection (if any) ringed in red."""
    nodes = list(nodes)
    unknown = sorted(set(a) - set(nodes)) + sorted(set(b) - set(nodes))
    if unknown:
        raise ValueError(f"quorums name unknown nodes {unknown}; nodes: {nodes}")
    g = nx.Graph()
    g.add_nodes_from(nodes)
    pos = nx.circular_layout(g)            # positions only: a complete picture of who is where
    fig = go.Figure()
    for q, name, colour, uid in ((a, names[0], PALETTE[0], "quorum-a"), (b, names[1], PALETTE[1], "quorum-b")):
        xs, ys = [], []
        for u, v in nx.complete_graph(sorted(q)).edges():
            xs += [pos[u][0], pos[v][0], None]
            ys += [pos[u][1], pos[v][1], None]
        fig.add_scatter(x=xs, y=ys, mode="lines", line=dict(color=colour, width=4), opacity=0.6,
                        name=f"{name} = {{{', '.join(sorted(q))}}}", uid=uid, hoverinfo="skip")
    both = set(a) & set(b)
    colours = []
    for n in nodes:
        colours.append("#7f7f7f" if n not in set(a) | set(b) else
                       PALETTE[0] if n in set(a) - both else PALETTE[1] if n in set(b) - both else "#ffffff")
    fig.add_scatter(x=[pos[n][0] for n in nodes], y=[pos[n][1] for n in nodes], mode="markers+text",
                    text=nodes, textposition="middle center", uid="nodes", name="nodes",
                    marker=dict(size=38, color=colours,
                                line=dict(width=[5 if n in both else 1 for n in nodes],
                                          color=["#d62728" if n in both else "#333333" for n in nodes])))
    fig.update_layout(title=title or (f"intersection: {sorted(both)}" if both else "disjoint: no common node"),
                      height=360, width=420, xaxis=dict(visible=False), plot_bgcolor="white", margin=dict(t=50, b=10, l=10, r=10),
                      yaxis=dict(visible=False, scaleanchor="x"), legend=dict(orientation="h", y=-0.05))
    return fig


def message_timeline(trace, nodes: Sequence[str], *, colour_of=None, label_of=None,
                     title: str = "", until: Optional[float] = None) -> go.Figure:
    """A space-time diagram: one horizontal line per node, one arrow per delivered
    message (from send time at the sender to delivery time at the receiver), and the
    trace's ``propose`` / ``decide`` / ``outcome`` events as labelled markers.

    ``colour_of(msg)`` and ``label_of(msg)`` choose how a message is drawn.
    """
    nodes = list(nodes)
    row = {n: i for i, n in enumerate(nodes)}
    colour_of = colour_of or (lambda m: "#7f7f7f")
    label_of = label_of or (lambda m: type(m).__name__)
    sent = defaultdict(deque)
    arrows = []
    marks = []
    for e in trace:
        if until is not None and e.time > until:
            break
        if e.kind == "send":
            dst, msg = e.details
            sent[(e.node, dst, msg)].append(e.time)
        elif e.kind == "deliver":
            src, msg = e.details
            queue = sent.get((src, e.node, msg))
            if queue:
                arrows.append((queue.popleft(), src, e.time, e.node, msg))
        elif e.kind in ("propose", "decide", "outcome"):
            marks.append(e)
    fig = go.Figure()
    for n in nodes:
        fig.add_scatter(x=[0, max([a[2] for a in arrows] + [m.time for m in marks] + [1])], y=[row[n]] * 2,
                        mode="lines", line=dict(color="#dddddd"), showlegend=False, hoverinfo="skip",
                        uid=f"line-{n}")
    groups = defaultdict(lambda: ([], [], []))
    for t0, src, t1, dst, msg in arrows:
        xs, ys, texts = groups[(colour_of(msg), label_of(msg))]
        xs += [t0, t1, None]
        ys += [row[src], row[dst], None]
        texts += [f"{src}→{dst}: {msg}"] * 2 + [None]
    for i, ((colour, label), (xs, ys, texts)) in enumerate(sorted(groups.items())):
        fig.add_scatter(x=xs, y=ys, mode="lines+markers", name=label, uid=f"msgs-{i}",
                        line=dict(color=colour, width=1.5), hovertext=texts, hoverinfo="text",
                        marker=dict(symbol="arrow", angleref="previous", size=9, color=colour))
    styles = {"propose": ("diamond", "#000000", "bottom center"), "decide": ("star", "#d62728", "top center"),
              "outcome": ("square", "#2ca02c", "bottom left")}
    for kind, (symbol, colour, where) in styles.items():
        ms = [m for m in marks if m.kind == kind]
        if not ms:
            continue
        fig.add_scatter(
            x=[m.time for m in ms], y=[row[m.node] for m in ms], mode="markers+text", name=kind,
            uid=f"mark-{kind}", marker=dict(symbol=symbol, size=14, color=colour),
            text=[_mark_text(m) for m in ms], textposition=where)
    end = max([a[2] for a in arrows] + [m.time for m in marks] + [1])
    fig.update_layout(title=title, height=140 + 80 * len(nodes), margin=dict(t=40, b=40),
                      plot_bgcolor="white", xaxis_range=[-2, end * 1.08],
                      xaxis_title="virtual time (ms)",
                      yaxis=dict(tickvals=list(range(len(nodes))), ticktext=nodes, autorange="reversed"))
    return fig


def _mark_text(e) -> str:
    d = e.details
    if e.kind == "propose":
        return f"propose {d[-1]}"
    if e.kind == "decide":
        return f"decide {d[-1]}"
    key, value, result = d
    return f"told {'consensus' if result else 'no consensus'} for {value}"


def chapter_timeline(cluster, *, title: str = "") -> go.Figure:
    """``message_timeline`` of a ``ChapterCluster``: proposals coloured by value,
    answers green (True) or grey (False)."""
    from ..chapter.consensus import Proposal

    values = sorted({v for _t, _n, _p, _k, v in cluster.proposals})
    colour = {v: PALETTE[i % len(PALETTE)] for i, v in enumerate(values)}

    def colour_of(m):
        if type(m) is Proposal:
            return colour.get(m.value, "#7f7f7f")
        return "#2ca02c" if m.accepted else "#bbbbbb"

    def label_of(m):
        if type(m) is Proposal:
            return f"Proposal {m.value}"
        return "answer True" if m.accepted else "answer False"

    return message_timeline(cluster.trace, cluster.node_ids, colour_of=colour_of, label_of=label_of,
                            title=title)
