"""What a learner reads when a lab test fails: compact, in the protocol's terms.

The report has the failing test, the seed and a one-line replay command, the reason,
the fault timeline, each server's term, role, vote, commit index and log (entry terms)
at the failure, and the last messages the servers sent.
"""

from __future__ import annotations

from ...raft.messages import (AppendEntries, AppendEntriesResponse, EntryKind, RequestVote,
                              RequestVoteResponse)

LOG_SHOWN = 16        # entries per server shown (the last ones)
MESSAGES_SHOWN = 10


def describe_message(m) -> str:
    """One Raft message as a short line: ``AE n1→n3 t4 prev=5/2 [6:t4 7:t4] commit=5``."""
    kind = type(m)
    head = f"{getattr(m, 'src', '?')}→{getattr(m, 'dst', '?')} t{getattr(m, 'term', '?')}"
    if kind is RequestVote:
        return f"RequestVote {head} last={m.last_log_index}/t{m.last_log_term}"
    if kind is RequestVoteResponse:
        return f"RequestVoteResponse {head} {'granted' if m.granted else 'refused'}"
    if kind is AppendEntries:
        body = " ".join(f"{e.index}:t{e.term}" for e in m.entries[:4])
        if len(m.entries) > 4:
            body += f" …+{len(m.entries) - 4}"
        return (f"AppendEntries {head} prev={m.prev_log_index}/t{m.prev_log_term} "
                f"[{body}] commit={m.leader_commit}")
    if kind is AppendEntriesResponse:
        if m.success:
            return f"AppendEntriesResponse {head} ok match={m.match_index}"
        return f"AppendEntriesResponse {head} rejected at prev={m.reject_index}"
    return f"{kind.__name__} {head}"


def describe_log(log) -> str:
    """The log as entry terms, ``1:t1· 2:t1 3:t2*`` (``·``: a no-op, ``*``: a membership
    change), the last ones only, after ``[snapshot ≤N tT]`` once compacted."""
    last = log.last_index
    first = log.snapshot_index + 1
    lo = max(first, last - LOG_SHOWN + 1)
    parts = [f"[snapshot ≤{log.snapshot_index} t{log.snapshot_term}]"] if first > 1 else []
    for i in range(lo, last + 1):
        e = log[i]
        mark = "*" if e.kind is EntryKind.CONFIG else ("·" if e.kind is EntryKind.NOOP else "")
        parts.append(f"{i}:t{e.term}{mark}")
    if lo > first:
        parts.insert(1 if first > 1 else 0, "…")
    return " ".join(parts) if parts else "(empty)"


def describe_servers(cluster) -> list:
    lines = []
    for nid, host in sorted(cluster.hosts.items()):
        core = host.core
        up = "up" if host.alive else "DOWN"
        if nid in cluster.disconnected:
            up += ", disconnected"
        state = getattr(core, "state", None)
        role = getattr(state, "value", state)
        lines.append(f"  {nid} ({up}) {role} term={core.current_term} voted_for={core.voted_for} "
                     f"commit={core.commit_index} log: {describe_log(core.log)}")
    return lines


def failure_report(test: str, seed: int, reason: str, cluster, replay: str) -> str:
    lines = [f"{test} failed (seed {seed}): {reason}", f"  replay: {replay}"]
    if cluster is not None:
        lines.append(f"at t={cluster.now:.0f} ms; faults so far:")
        faults = cluster.faults or [(0.0, "none")]
        for t, text in faults[-12:]:
            lines.append(f"  t={t:.0f} {text}")
        lines.append("servers:")
        lines.extend(describe_servers(cluster))
        if cluster.last_messages:
            lines.append("last messages sent:")
            for t, m in list(cluster.last_messages)[-MESSAGES_SHOWN:]:
                lines.append(f"  t={t:.0f} {describe_message(m)}")
    return "\n".join(lines)
