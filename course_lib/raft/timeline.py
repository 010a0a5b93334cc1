"""``ClusterTimeline``: what happened to a Raft cluster, in plain words and intervals.

The model behind the widget's event log and its "terms and leaders" picture, with no
ipywidgets or plotly.  It is fed in one of two ways, and both end in the same
``note_*`` calls:

- :meth:`ClusterTimeline.read_trace` reads a simulator trace (``SimCluster.trace.raw``)
  from where it stopped last time: every role change, vote, fault and client call, at
  its exact simulated time;
- :meth:`ClusterTimeline.observe` compares a poll of real nodes (``ProcessCluster.states()``)
  with the previous one: role, term, vote, liveness, pauses and cuts, at the poll's time
  (a role held for less than one poll interval is not seen).

Times are milliseconds (simulated, or wall-clock since the poller began).  What it keeps:

- :attr:`events`: ``(time, kind, text)``, kind in ``election``, ``vote``, ``split``,
  ``leader``, ``commit``, ``fault``, ``client``, ``snapshot``, ``member``;
- :attr:`terms`: ``(time, highest term)`` steps; :attr:`split_votes`: terms whose
  election found no leader (a later election started first);
- :meth:`reigns`: ``(start, end, term, node)``, who led when;
- :meth:`faults`: ``(kind, start, end)`` with kind in :data:`FAULT_KINDS`
  (a server down or paused, the network partitioned, the network lossy / slow /
  duplicating).
"""

from __future__ import annotations

from typing import Iterable, Optional

from .messages import RequestVoteResponse

FAULT_KINDS = ("server down", "partition", "bad network")
#: client ids whose calls are not written into the event log (load generators)
QUIET_CLIENT_PREFIX = "load"


class ClusterTimeline:
    """Events, terms, reigns and fault intervals of one cluster (see the module doc)."""

    def __init__(self, servers: Iterable[str]) -> None:
        self.servers = set(servers)
        self.events: list[tuple] = []            # (time ms, kind, text)
        self.terms: list[tuple] = [(0.0, 0)]     # (time, highest term) steps
        self.max_term = 0
        self.split_votes = 0
        self._roles: dict = {}                   # node -> last role seen
        self._forced: set = set()                # told to time out (TimeoutNow)
        self._candidates: dict = {}              # term -> candidates of that term
        self._term_leader: dict = {}             # term -> its leader
        self._leading: dict = {}                 # node -> (start, term) of an open leadership
        self._reigns: list = []                  # (start, end, term, node) closed
        self._out: dict = {}                     # node -> since when down or paused
        self._faults: list = []                  # (kind, start, end) closed intervals
        self._cut_since: Optional[float] = None
        self._net_since: Optional[float] = None
        self._commit_seen = 0
        self._trace_pos = 0
        self._seen: dict = {}                    # node -> last polled row (observe)

    # ------------------------------------------------------------------ reading
    def event(self, t: float, kind: str, text: str) -> None:
        self.events.append((t, kind, text))

    @property
    def leading(self) -> dict:
        """node -> (start, term) of each leadership still open."""
        return dict(self._leading)

    def reigns(self, now: float) -> list:
        """``(start, end, term, node)`` of every leadership, the open ones ending ``now``."""
        return self._reigns + [(s0, now, term, n) for n, (s0, term) in self._leading.items()]

    def faults(self, now: float) -> list:
        """``(kind, start, end)`` of every fault interval, the open ones ending ``now``."""
        open_ = [("server down", s0, now) for s0 in self._out.values()]
        if self._cut_since is not None:
            open_.append(("partition", self._cut_since, now))
        if self._net_since is not None:
            open_.append(("bad network", self._net_since, now))
        return self._faults + open_

    @property
    def news(self) -> tuple:
        """Changes whenever a term, a leader or a fault appears or ends (a view redraws
        the timeline at once then, and only now and then otherwise)."""
        return (len(self.terms), len(self._reigns), tuple(sorted(self._leading)),
                len(self._faults), tuple(sorted(self._out)), self._cut_since, self._net_since)

    # ------------------------------------------------------------------ notes
    def note_role(self, t: float, node: str, role: str, term: int) -> None:
        """``node`` is now ``role`` in ``term``."""
        before = self._roles.get(node)
        self._roles[node] = role
        ev = self.event
        if term > self.max_term:
            self.max_term = term
            self.terms.append((t, term))
        if before == "leader" and (role != "leader" or self._leading.get(node, (t, term))[1] != term):
            # (a poll may see a leader of a later term without seeing it step down between)
            self._close_reign(node, t)
            ev(t, "leader", f"{node} steps down (term {term})")
        if role == "candidate":
            self._note_split(term, t)
            self._candidates.setdefault(term, set()).add(node)
            if node in self._forced:
                ev(t, "election", f"{node} is told to time out: election for term {term}")
            elif before == "pre-candidate":
                ev(t, "election", f"{node} won the pre-vote: election for term {term}")
            else:
                ev(t, "election", f"{node} timed out: election for term {term}")
            self._forced.discard(node)
        elif role == "pre-candidate":
            ev(t, "election", f"{node} timed out: asks for pre-votes (term {term + 1} if it wins)")
        elif role == "leader":
            if node not in self._leading:
                self._leading[node] = (t, term)
                self._term_leader[term] = node
                ev(t, "leader", f"{node} wins the election: leader of term {term}")
        elif role == "follower" and before == "candidate":
            ev(t, "election", f"{node} gives up: no majority for it in term {term}")
        elif role == "follower" and before == "pre-candidate":
            ev(t, "election", f"{node} gives up its pre-vote")

    def note_vote(self, t: float, voter: str, candidate: str, term: int, granted: bool = True) -> None:
        self.event(t, "vote", f"{voter} {'votes for' if granted else 'refuses'} {candidate} in term {term}")

    def note_forced(self, node: str) -> None:
        """``node`` was told to time out (TimeoutNow): its next candidacy says so."""
        self._forced.add(node)

    def note_crash(self, t: float, node: str, how: str = "it keeps its persisted term, vote and log") -> None:
        self._out.setdefault(node, t)
        self._close_reign(node, t)
        self._roles[node] = "down"
        self.event(t, "fault", f"{node} crashed ({how})")

    def note_restart(self, t: float, node: str) -> None:
        if node in self._out:
            self._faults.append(("server down", self._out.pop(node), t))
        self._roles[node] = "follower"
        self.event(t, "fault", f"{node} restarted from its storage")

    def note_pause(self, t: float, node: str) -> None:
        self._out.setdefault(node, t)
        self.event(t, "fault", f"{node} paused: it neither ticks nor answers (a GC pause, SIGSTOP)")

    def note_resume(self, t: float, node: str) -> None:
        if node in self._out:
            self._faults.append(("server down", self._out.pop(node), t))
        self.event(t, "fault", f"{node} resumed: it runs on, unaware of the time it lost")

    def note_cut(self, t: float, text: str) -> None:
        if self._cut_since is None:
            self._cut_since = t
        self.event(t, "fault", text)

    def note_heal(self, t: float) -> None:
        if self._cut_since is not None:
            self._faults.append(("partition", self._cut_since, t))
            self._cut_since = None
        self.event(t, "fault", "network healed")

    def note_network(self, t: float, bad: bool) -> None:
        """Whether the network is lossy, slow or duplicating now."""
        if bad and self._net_since is None:
            self._net_since = t
        elif not bad and self._net_since is not None:
            self._faults.append(("bad network", self._net_since, t))
            self._net_since = None

    def note_commits(self, t: float, states: dict, leader: Optional[str]) -> None:
        """The highest commit index among ``states`` rows; an event when it grew."""
        top = max((s["commit_index"] for s in states.values() if s.get("commit_index") is not None),
                  default=0)
        if top > self._commit_seen:
            who = f" by leader {leader} (term {states[leader]['term']})" if leader else ""
            first = self._commit_seen + 1
            span = f"entry {top}" if first == top else f"entries {first}-{top}"
            self.event(t, "commit", f"{span} committed{who}: a majority stores them")
            self._commit_seen = top

    def _note_split(self, term: int, t: float) -> None:
        """A new election for ``term`` while the candidates of an earlier term found no
        leader: that term's votes were split (or lost)."""
        for old in sorted(k for k in self._candidates if k < term):
            who = self._candidates.pop(old)
            if old not in self._term_leader:
                self.split_votes += 1
                self.event(t, "split", f"term {old}: nobody won (candidates {', '.join(sorted(who))}; "
                                       f"votes split or lost) -> new election for term {term}")

    def _close_reign(self, node: str, t: float) -> None:
        open_ = self._leading.pop(node, None)
        if open_ is not None:
            self._reigns.append((open_[0], t, open_[1], node))

    # ------------------------------------------------------------------ feed 1: a trace
    def read_trace(self, raw: list) -> None:
        """Read the simulator trace records ``raw`` (``Trace.raw``) not read yet."""
        start, end = self._trace_pos, len(raw)
        self._trace_pos = end
        for k in range(start, end):
            r = raw[k]
            kind = r[1]
            if kind == "send":
                msg = r[4] if len(r) == 5 else r[3][1]
                if type(msg) is RequestVoteResponse and not msg.pre_vote:
                    self.note_vote(r[0], msg.src, msg.dst, msg.term, msg.granted)
                continue
            if kind in ("deliver", "drop", "duplicate", "tick"):
                continue
            t, node = r[0], r[2]
            d = r[3] if len(r) == 4 else ()
            if kind == "state":
                role, term, _leader = d
                self.note_role(t, node, role, term)
            elif kind == "crash":
                if node in self.servers:
                    self.note_crash(t, node)
            elif kind == "restart":
                if node in self._out:
                    self.note_restart(t, node)
            elif kind == "pause":
                if node in self.servers:
                    self.note_pause(t, node)
            elif kind == "resume":
                if node in self.servers:
                    self.note_resume(t, node)
            elif kind == "partition":
                self.note_cut(t, "network partitioned: " + " | ".join(" ".join(g) for g in d))
            elif kind == "isolate":
                self.note_cut(t, f"{node} cut off from everyone")
            elif kind == "cut":
                self.note_cut(t, f"link {node} -> {d[0]} cut")
            elif kind == "heal":
                self.note_heal(t)
            elif kind == "timeout_now":
                self.note_forced(node)
            elif kind == "expire_timer":
                self.event(t, "election", f"{node}'s election timer is made to run out")
            elif kind == "manual_delivery":
                self.event(t, "fault", "you are the network: messages wait for you" if d[0]
                           else "the network delivers by itself again")
            elif kind == "client_call":
                if not node.startswith(QUIET_CLIENT_PREFIX):
                    self.event(t, "client", f"client {node} sends {' '.join(map(str, d[1]))}")
            elif kind == "client_return":
                if not node.startswith(QUIET_CLIENT_PREFIX):
                    self.event(t, "client", f"client {node}: request {d[0]} done")
            elif kind == "client_timeout":
                self.event(t, "client", f"client {node}: request {d[0]} timed out (outcome unknown)")
            elif kind == "snapshot":
                self.event(t, "snapshot", f"{node} snapshots its state up to index {d[0]}")
            elif kind == "members":
                self.event(t, "member", f"members now: {' '.join(d)}")

    # ------------------------------------------------------------------ feed 2: polls
    def observe(self, t: float, states: dict) -> None:
        """Compare a poll of the nodes (``ProcessCluster.states()`` rows: ``alive``,
        ``paused``, ``responding``, ``state``, ``term``, ``voted_for``, ``cut``) with the
        previous poll and note what changed, at time ``t``."""
        for nid in sorted(states):
            s = states[nid]
            prev = self._seen.get(nid)
            self._seen[nid] = s
            alive, paused = bool(s["alive"]), bool(s.get("paused"))
            if prev is not None:
                if prev["alive"] and not alive:
                    self.note_crash(t, nid, "killed: it keeps what its WAL holds")
                elif not prev["alive"] and alive:
                    self.note_restart(t, nid)
                if alive and paused and not prev.get("paused"):
                    self.note_pause(t, nid)
                elif alive and prev.get("paused") and not paused:
                    self.note_resume(t, nid)
            if not alive or paused or not s.get("responding", True) or s.get("state") is None:
                continue
            term, vote = s["term"], s.get("voted_for")
            if (vote is not None and vote != nid and
                    (prev is None or (prev.get("voted_for"), prev.get("term")) != (vote, term))):
                self.note_vote(t, nid, vote, term)
            if self._roles.get(nid) != s["state"] or (prev is not None and prev.get("term") != term):
                self.note_role(t, nid, s["state"], term)
        self._observe_cuts(t, states)

    def _observe_cuts(self, t: float, states: dict) -> None:
        cuts = {nid: set(s.get("cut") or ()) for nid, s in states.items()}
        if any(cuts.values()):
            if self._cut_since is None:
                groups = partition_groups(cuts)
                self.note_cut(t, "network partitioned: " + " | ".join(" ".join(g) for g in groups))
        elif self._cut_since is not None:
            self.note_heal(t)


def partition_groups(cuts: dict) -> list:
    """``{node: nodes it is cut off from}`` -> the groups, each a sorted tuple (nodes
    with no cuts are in no group): what ``partition(*groups)`` was given."""
    grouped = {nid for nid, cut in cuts.items() if cut}
    groups = []
    for nid in sorted(grouped):
        g = tuple(sorted(grouped - cuts[nid]))
        if g not in groups:
            groups.append(g)
    return sorted(groups)
