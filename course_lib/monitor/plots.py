"""A plotly overview of a :class:`~course_lib.monitor.cluster.Telemetry` run."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .cluster import Telemetry

INCIDENT_COLORS = {"crash": "rgba(220,50,50,0.15)", "slow": "rgba(240,160,0,0.18)",
                   "error_burst": "rgba(150,60,200,0.15)", "disk_fill": "rgba(30,120,220,0.15)"}


def telemetry_figure(telemetry: Telemetry, bin_s: float = 10.0) -> go.Figure:
    """Three rows over time: per-node p95 latency and error count per ``bin_s``
    seconds, and disk usage; each incident shaded on every row and named on the top one."""
    if not bin_s > 0:
        raise ValueError(f"bin_s must be > 0, got {bin_s!r}")
    fig = make_subplots(rows=3, cols=1, shared_xaxes=True, vertical_spacing=0.06,
                        subplot_titles=(f"p95 latency per {bin_s:g} s (ms)",
                                        f"failed requests per {bin_s:g} s", "disk used (%)"))
    edges = np.arange(0.0, telemetry.duration + bin_s, bin_s)
    for node in telemetry.nodes:
        reqs = [r for r in telemetry.requests if r.node == node]
        times = np.array([r.time for r in reqs])
        lat = np.array([r.latency_ms for r in reqs])
        failed = np.array([not r.ok for r in reqs], dtype=bool)
        which = np.digitize(times, edges) - 1
        mids, p95, errors = [], [], []
        for b in range(len(edges) - 1):
            mask = which == b
            mids.append(edges[b] + bin_s / 2)
            p95.append(float(np.percentile(lat[mask], 95)) if mask.any() else None)
            errors.append(int((failed & mask).sum()))
        fig.add_trace(go.Scatter(x=mids, y=p95, name=node, legendgroup=node, mode="lines",
                                 uid=f"p95-{node}"), row=1, col=1)
        fig.add_trace(go.Scatter(x=mids, y=errors, name=node, legendgroup=node, mode="lines",
                                 showlegend=False, uid=f"err-{node}"), row=2, col=1)
        disk = telemetry.gauge_series(node, "disk_used_percent")
        fig.add_trace(go.Scatter(x=[g.time for g in disk], y=[g.value for g in disk], name=node,
                                 legendgroup=node, mode="lines", showlegend=False,
                                 uid=f"disk-{node}"), row=3, col=1)
    for incident in telemetry.incidents:
        for row in (1, 2, 3):
            fig.add_vrect(x0=incident.start, x1=incident.end, line_width=0, row=row, col=1,
                          fillcolor=INCIDENT_COLORS[incident.kind.value])
        fig.add_annotation(x=(incident.start + incident.end) / 2, y=1.0, yref="y domain",
                           text=f"{incident.kind.value} {incident.node}", showarrow=False,
                           font=dict(size=10), row=1, col=1)
    fig.update_xaxes(title_text="time (s)", row=3, col=1)
    fig.update_layout(height=620, margin=dict(l=50, r=20, t=40, b=40),
                      title=f"Simulated cluster, seed {telemetry.seed}")
    return fig
