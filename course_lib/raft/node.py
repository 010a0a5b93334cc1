"""The Raft core: a deterministic state machine without I/O (etcd raft's RawNode).

Inputs: :meth:`RaftNode.tick` (one unit of logical time), :meth:`RaftNode.step`
(a message from a peer), :meth:`RaftNode.propose` (a client command),
:meth:`RaftNode.read_index`, :meth:`RaftNode.propose_conf_change`,
:meth:`RaftNode.transfer_leadership`, :meth:`RaftNode.timeout_now`,
:meth:`RaftNode.compact`.

Output, etcd's ``RawNode`` contract (``HasReady`` / ``Ready`` / ``Advance``):

1. :meth:`RaftNode.has_ready` — is there work to take?
2. :meth:`RaftNode.ready` takes one :class:`Ready`: the snapshot, entries and hard state
   to **persist**, the messages to **send — only once those are on stable storage** (a
   vote or an acknowledged entry must survive a crash, Figure 2), and the committed
   entries to **apply**;
3. :meth:`RaftNode.advance` hands the same Ready back once it is persisted, sent and
   applied.  Only then does the core count the hard state as persisted and the
   committed entries as applied (``last_applied``).

One Ready is outstanding at a time: between ``ready()`` and ``advance()`` the core keeps
taking ticks, messages and proposals (an asynchronous driver steps the network while its
fsync runs), but ``has_ready()`` is False and a second ``ready()`` raises.  What happens
meanwhile goes into the next Ready, so nothing is applied or acknowledged before it is
persisted.  A synchronous driver calls ``ready()``, handles it, ``advance()`` at once.

The core reads no clock (time is ticks), draws randomness only from the injected
``random.Random``, and never touches a socket or a file.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, Optional

from .errors import ConfChangeInProgress, NotLeader, RaftError, SafetyViolation
from .log import RaftLog
from .messages import (
    AppendEntries, AppendEntriesResponse, ConfChange, Entry, EntryKind, HardState,
    InstallSnapshot, InstallSnapshotResponse, NodeState, RequestVote,
    RequestVoteResponse, Snapshot, TimeoutNow,
)
from .progress import PROBE, REPLICATE, SNAPSHOT, Progress
from .read_index import ReadIndexQueue
from .storage import Storage

FOLLOWER = NodeState.FOLLOWER
PRE_CANDIDATE = NodeState.PRE_CANDIDATE
CANDIDATE = NodeState.CANDIDATE
LEADER = NodeState.LEADER


@dataclass(frozen=True)
class RaftConfig:
    """Timing in ticks, and the optional protocol features."""
    election_ticks: tuple = (30, 60)     # election timeout drawn uniformly in [lo, hi] (§5.2)
    heartbeat_ticks: int = 10
    pre_vote: bool = True                # thesis §9.6
    check_quorum: bool = True            # thesis §6.2: a leader without a quorum steps down
    max_entries_per_message: int = 64
    # The unsafe rule Figure 8 warns against: commit an entry of an earlier term once
    # it is stored on a majority.  For lessons only (it breaks State Machine Safety).
    unsafe_commit_old_terms: bool = False

    def __post_init__(self) -> None:
        lo, hi = self.election_ticks
        if not (isinstance(lo, int) and isinstance(hi, int) and 1 <= lo <= hi):
            raise ValueError(f"election_ticks must be ints 1 <= lo <= hi, got {self.election_ticks!r}")
        if not isinstance(self.heartbeat_ticks, int) or not 1 <= self.heartbeat_ticks < lo:
            raise ValueError(
                f"heartbeat_ticks must be an int in [1, election lo={lo}), got {self.heartbeat_ticks!r}")
        if self.max_entries_per_message < 1:
            raise ValueError("max_entries_per_message must be >= 1")


class Ready:
    """One batch of work for the driver: persist, then send, then apply, then
    :meth:`RaftNode.advance` it.

    Read-only by convention (a plain slotted class: one is built per step, so it is
    kept cheaper than a frozen dataclass).
    """
    __slots__ = ("hard_state", "snapshot", "entries", "messages", "committed_entries",
                 "read_states", "soft_state")

    def __init__(self, hard_state, snapshot, entries, messages, committed_entries,
                 read_states, soft_state) -> None:
        self.hard_state: Optional[HardState] = hard_state   # persist if not None
        self.snapshot: Optional[Snapshot] = snapshot        # received: persist, restore the state machine
        self.entries: tuple = entries                       # persist (overwriting from entries[0].index)
        self.messages: tuple = messages                     # send, only after persisting
        self.committed_entries: tuple = committed_entries   # apply in order
        self.read_states: tuple = read_states               # (ctx, index): serve once index is applied
        self.soft_state: Optional[tuple] = soft_state       # (state, leader_id) when changed

    @property
    def must_sync(self) -> bool:
        """True when something must reach stable storage (fsync) before ``messages``
        are sent; a Ready of only messages, reads or applies needs no fsync."""
        return self.hard_state is not None or self.snapshot is not None or bool(self.entries)

    def __repr__(self) -> str:
        return (f"Ready(hard_state={self.hard_state}, snapshot={self.snapshot}, "
                f"entries={len(self.entries)}, messages={len(self.messages)}, "
                f"committed={len(self.committed_entries)}, reads={self.read_states}, "
                f"soft={self.soft_state})")


class RaftNode:
    """One Raft server's protocol state (Figure 2), driven from outside."""

    def __init__(self, node_id: str, voters, *, rng: random.Random,
                 config: Optional[RaftConfig] = None, storage: Optional[Storage] = None) -> None:
        if not isinstance(rng, random.Random):
            raise ValueError("rng must be an injected random.Random (no global randomness)")
        self.id = node_id
        self.config = config or RaftConfig()
        self.rng = rng
        # persistent state (Figure 2)
        self.current_term = 0
        self.voted_for: Optional[str] = None
        self.log = RaftLog()
        self.snapshot: Optional[Snapshot] = None
        # volatile state
        self.state = FOLLOWER
        self.leader_id: Optional[str] = None
        self.commit_index = 0
        self.last_applied = 0
        # membership: (index, voters) for each config known, oldest first (thesis §4.1)
        self._confs: list[tuple[int, tuple]] = [(0, tuple(sorted(set(voters))))]
        self.voters: tuple = self._confs[0][1]
        # timers, in ticks
        self.election_elapsed = 0
        self.heartbeat_elapsed = 0
        self.randomized_timeout = 0
        # candidate
        self.votes: dict[str, bool] = {}
        # leader
        self.progress: dict[str, Progress] = {}
        self.pending_conf_index = 0
        self.lead_transferee: Optional[str] = None
        self.reads = ReadIndexQueue()
        # Ready bookkeeping
        self._msgs: list = []
        self._unstable_from: Optional[int] = None
        self._pending_snapshot: Optional[Snapshot] = None
        self._read_states: list = []
        self._persisted_hs = HardState(0, None)
        self._soft = (FOLLOWER, None)
        self._outstanding: Optional[Ready] = None        # taken by ready(), not yet advanced
        if storage is not None:
            self._restore(storage)
        self.reset_election_timer()

    # ------------------------------------------------------------------ restore
    def _restore(self, storage: Storage) -> None:
        hs, snap, entries = storage.load()
        if hs is not None:
            self.current_term, self.voted_for = hs.term, hs.voted_for
            self._persisted_hs = hs
        if snap is not None:
            self.snapshot = snap
            self.log = RaftLog(entries, snap.index, snap.term)
            self.commit_index = self.last_applied = snap.index
            self._confs = [(snap.index, snap.voters)]
        else:
            self.log = RaftLog(entries)
        for e in self.log:
            if e.kind is EntryKind.CONFIG:
                self._confs.append((e.index, self._conf_after(self._confs[-1][1], e.command)))
        self.voters = self._confs[-1][1]

    # ------------------------------------------------------------------ helpers
    @property
    def quorum(self) -> int:
        return len(self.voters) // 2 + 1

    @property
    def promotable(self) -> bool:
        """Only a member of its own configuration may campaign (thesis §4.2.2)."""
        return self.id in self.voters

    def reset_election_timer(self) -> None:
        self.election_elapsed = 0
        lo, hi = self.config.election_ticks
        self.randomized_timeout = self.rng.randint(lo, hi)      # §5.2 randomized timeouts

    def send(self, msg) -> None:
        self._msgs.append(msg)

    def _mark_unstable(self, index: int) -> None:
        if self._unstable_from is None or index < self._unstable_from:
            self._unstable_from = index

    def _append(self, entry: Entry) -> None:
        self.log.append(entry)
        self._mark_unstable(entry.index)
        if entry.kind is EntryKind.CONFIG:
            # a server uses the latest configuration in its log, committed or not (thesis §4.1)
            self._confs.append((entry.index, self._conf_after(self.voters, entry.command)))
            self._set_voters(self._confs[-1][1])

    def _truncate_from(self, index: int) -> None:
        if index <= self.commit_index:
            raise SafetyViolation(
                f"{self.id}: asked to delete committed entry {index} (commit {self.commit_index})")
        self.log.truncate_from(index)
        self._mark_unstable(index)
        if self._confs[-1][0] >= index:
            while len(self._confs) > 1 and self._confs[-1][0] >= index:
                self._confs.pop()
            self._set_voters(self._confs[-1][1])

    @staticmethod
    def _conf_after(voters: tuple, cc: ConfChange) -> tuple:
        if cc.voters:
            return cc.voters
        s = set(voters)
        if cc.op == "add":
            s.add(cc.node)
        else:
            s.discard(cc.node)
        return tuple(sorted(s))

    def conf_at(self, index: int) -> tuple:
        """The configuration in force after entry ``index``."""
        voters = self._confs[0][1]
        for i, v in self._confs:
            if i <= index:
                voters = v
        return voters

    def _set_voters(self, voters: tuple) -> None:
        self.voters = voters
        if self.state is LEADER:
            for p in voters:
                if p != self.id and p not in self.progress:
                    self.progress[p] = Progress(self.log.last_index + 1)
            for p in list(self.progress):
                if p not in voters:
                    del self.progress[p]
            if self.lead_transferee is not None and self.lead_transferee not in voters:
                self.lead_transferee = None
            self.maybe_commit()

    def is_up_to_date(self, last_log_index: int, last_log_term: int) -> bool:
        """§5.4.1: the candidate's log is at least as up-to-date as ours."""
        my_term = self.log.last_term
        return last_log_term > my_term or (
            last_log_term == my_term and last_log_index >= self.log.last_index)

    # ------------------------------------------------------------------ role changes
    def become_follower(self, term: int, leader: Optional[str]) -> None:
        if term < self.current_term:
            raise SafetyViolation(f"{self.id}: term would go back from {self.current_term} to {term}")
        if term > self.current_term:
            self.current_term = term
            self.voted_for = None
        self.state = FOLLOWER
        self.leader_id = leader
        self._reset_role_state()

    def become_pre_candidate(self) -> None:
        if self.state is LEADER:
            raise SafetyViolation(f"{self.id}: a leader cannot become a pre-candidate")
        self.state = PRE_CANDIDATE
        self.leader_id = None
        self._reset_role_state()
        self.votes = {self.id: True}

    def become_candidate(self) -> None:
        if self.state is LEADER:
            raise SafetyViolation(f"{self.id}: a leader cannot become a candidate")
        self.current_term += 1                   # §5.2: increment term, vote for self
        self.voted_for = self.id
        self.state = CANDIDATE
        self.leader_id = None
        self._reset_role_state()
        self.votes = {self.id: True}

    def become_leader(self) -> None:
        if self.state is not CANDIDATE:
            raise SafetyViolation(f"{self.id}: only a candidate can become leader (is {self.state})")
        self.state = LEADER
        self.leader_id = self.id
        self._reset_role_state()
        nxt = self.log.last_index + 1
        self.progress = {p: Progress(nxt) for p in self.voters if p != self.id}
        for pr in self.progress.values():
            pr.recent_active = True
        # a new leader may not change membership before an entry of its own term commits
        # (the fix to single-server changes, thesis §4.1 / raft-dev 2015)
        self.pending_conf_index = self.log.last_index + 1
        # §8 / thesis §6.4: commit a no-op to learn the commit index and let earlier-term
        # entries commit (§5.4.2 forbids counting replicas for them)
        self._append(Entry(self.current_term, nxt, None, EntryKind.NOOP))
        self.maybe_commit()
        self.broadcast_append()

    def _reset_role_state(self) -> None:
        self.reset_election_timer()
        self.heartbeat_elapsed = 0
        self.votes = {}
        self.progress = {}
        self.lead_transferee = None
        self.reads.clear()

    # ------------------------------------------------------------------ ticks
    def tick(self) -> None:
        if self.state is LEADER:
            self.tick_heartbeat()
        else:
            self.tick_election()

    def tick_election(self) -> None:
        self.election_elapsed += 1
        if self.promotable and self.election_elapsed >= self.randomized_timeout:
            self.campaign(pre_vote=self.config.pre_vote)

    def tick_heartbeat(self) -> None:
        self.heartbeat_elapsed += 1
        self.election_elapsed += 1
        if self.election_elapsed >= self.config.election_ticks[0]:
            self.election_elapsed = 0
            if self.config.check_quorum and not self.check_quorum_active():
                # thesis §6.2: a leader that cannot reach a quorum steps down
                self.become_follower(self.current_term, None)
                return
            self.lead_transferee = None          # a transfer not done in time is aborted (§3.10)
        if self.heartbeat_elapsed >= self.config.heartbeat_ticks:
            self.heartbeat_elapsed = 0
            self.broadcast_heartbeat()

    def check_quorum_active(self) -> bool:
        active = 1 if self.id in self.voters else 0
        for p, pr in self.progress.items():
            if pr.recent_active:
                active += 1
            pr.recent_active = False
        return active >= self.quorum

    # ------------------------------------------------------------------ elections
    def campaign(self, pre_vote: bool, transfer: bool = False) -> None:
        if not self.promotable:
            raise SafetyViolation(f"{self.id}: not in its configuration {self.voters}, cannot campaign")
        if pre_vote:
            self.become_pre_candidate()
            term = self.current_term + 1         # the term we would use; not persisted (§9.6)
        else:
            self.become_candidate()
            term = self.current_term
        if self.poll():
            return
        last_index, last_term = self.log.last_index, self.log.last_term
        for p in self.voters:
            if p != self.id:
                self.send(RequestVote(term, self.id, p, last_index, last_term, pre_vote, transfer))

    def poll(self) -> bool:
        """Count votes; act on a decided election.  True when decided."""
        granted = rejected = 0
        for p in self.voters:
            v = self.votes.get(p)
            if v is True:
                granted += 1
            elif v is False:
                rejected += 1
        if granted >= self.quorum:
            if self.state is PRE_CANDIDATE:
                self.campaign(pre_vote=False)
            else:
                self.become_leader()
            return True
        if rejected >= self.quorum:
            self.become_follower(self.current_term, None)
            return True
        return False

    def timeout_now(self) -> None:
        """Start an election at once, skipping PreVote (TimeoutNow, thesis §3.10)."""
        if self.state is LEADER:
            return
        if not self.promotable:
            raise ValueError(f"{self.id} is not a voting member; it cannot campaign")
        self.campaign(pre_vote=False, transfer=True)

    def handle_request_vote(self, m: RequestVote) -> None:
        # §5.2: at most one vote per term, first come first served; a pre-vote is only
        # a question ("would you?") and changes nothing (§9.6)
        can_vote = (self.voted_for == m.src
                    or (self.voted_for is None and self.leader_id is None)
                    or (m.pre_vote and m.term > self.current_term))
        if can_vote and self.is_up_to_date(m.last_log_index, m.last_log_term):
            if m.pre_vote:
                self.send(RequestVoteResponse(m.term, self.id, m.src, True, True))
            else:
                self.voted_for = m.src
                self.election_elapsed = 0        # §5.2: granting a vote resets the timer
                self.send(RequestVoteResponse(self.current_term, self.id, m.src, True, False))
        else:
            self.send(RequestVoteResponse(self.current_term, self.id, m.src, False, m.pre_vote))

    def handle_vote_response(self, m: RequestVoteResponse) -> None:
        if m.pre_vote != (self.state is PRE_CANDIDATE):
            return
        if m.src not in self.votes:
            self.votes[m.src] = m.granted
        self.poll()

    # ------------------------------------------------------------------ step
    def step(self, m) -> None:
        """Handle one message from a peer (§5.1 term rules first, then by role)."""
        if m.dst != self.id:
            raise ValueError(f"{self.id} got a message for {m.dst!r}: {m!r}")
        term = self.current_term
        if m.term > term:
            kind = type(m)
            if kind is RequestVote:
                in_lease = (self.config.check_quorum and self.leader_id is not None
                            and self.election_elapsed < self.config.election_ticks[0])
                if in_lease and not m.transfer:
                    # thesis §4.2.3 / §9.6: we heard from a live leader within the
                    # minimum election timeout: ignore a disruptive candidate
                    return
                if not m.pre_vote:
                    self.become_follower(m.term, None)
            elif kind is RequestVoteResponse and m.pre_vote and m.granted:
                pass                              # the future term of our pre-vote
            elif kind is AppendEntries or kind is InstallSnapshot or kind is TimeoutNow:
                self.become_follower(m.term, m.src)
            else:
                self.become_follower(m.term, None)
        elif m.term < term:
            kind = type(m)
            # §5.1: reject a request with a stale term; the reply carries our term so
            # a deposed leader or candidate learns it is stale
            if kind is AppendEntries:
                self.send(AppendEntriesResponse(term, self.id, m.src, False,
                                                reject_index=m.prev_log_index, read_ctx=m.read_ctx))
            elif kind is InstallSnapshot:
                self.send(InstallSnapshotResponse(term, self.id, m.src, 0))
            elif kind is RequestVote:
                self.send(RequestVoteResponse(term, self.id, m.src, False, m.pre_vote))
            return
        state = self.state
        if state is LEADER:
            self.step_leader(m)
        elif state is FOLLOWER:
            self.step_follower(m)
        else:
            self.step_candidate(m)

    def step_follower(self, m) -> None:
        kind = type(m)
        if kind is AppendEntries:
            self.leader_id = m.src
            self.election_elapsed = 0
            self.handle_append_entries(m)
        elif kind is InstallSnapshot:
            self.leader_id = m.src
            self.election_elapsed = 0
            self.handle_install_snapshot(m)
        elif kind is RequestVote:
            self.handle_request_vote(m)
        elif kind is TimeoutNow:
            if self.promotable:
                self.campaign(pre_vote=False, transfer=True)

    def step_candidate(self, m) -> None:
        kind = type(m)
        if kind is RequestVoteResponse:
            self.handle_vote_response(m)
        elif kind is AppendEntries or kind is InstallSnapshot:
            # §5.2: a candidate that hears from the leader of its term steps down
            self.become_follower(m.term, m.src)
            self.step_follower(m)
        elif kind is RequestVote:
            self.handle_request_vote(m)

    def step_leader(self, m) -> None:
        kind = type(m)
        if kind is AppendEntriesResponse:
            self.handle_append_response(m)
        elif kind is InstallSnapshotResponse:
            self.handle_snapshot_response(m)
        elif kind is RequestVote:
            self.handle_request_vote(m)
        elif kind is AppendEntries or kind is InstallSnapshot:
            raise SafetyViolation(f"{self.id}: two leaders in term {self.current_term} ({m.src} too)")

    # ------------------------------------------------------------------ replication: follower
    def handle_append_entries(self, m: AppendEntries) -> None:
        log = self.log
        prev = m.prev_log_index
        entries = m.entries
        if prev < self.commit_index:
            # entries up to our commit index are committed, so they match the
            # leader's (Leader Completeness, §5.4): skip them, go on from there
            skip = self.commit_index - prev
            if skip >= len(entries):
                self.send(AppendEntriesResponse(self.current_term, self.id, m.src, True,
                                                match_index=self.commit_index, read_ctx=m.read_ctx))
                return
            entries = entries[skip:]
            prev = self.commit_index
        elif log.term_at(prev) != m.prev_log_term:
            # §5.3 consistency check failed; hint where to retry (fast backtracking)
            if prev > log.last_index:
                ci, ct = log.last_index + 1, None
            else:
                ct = log.term_at(prev)
                ci = log.first_index_of_term(prev)
            self.send(AppendEntriesResponse(self.current_term, self.id, m.src, False,
                                            reject_index=prev, conflict_index=ci,
                                            conflict_term=ct, read_ctx=m.read_ctx))
            return
        # §5.3: delete an existing entry that conflicts with a new one (and all that
        # follow), then append the entries not already in the log
        for k, e in enumerate(entries):
            t = log.term_at(e.index)
            if t is None:
                for e2 in entries[k:]:
                    self._append(e2)
                break
            if t != e.term:
                self._truncate_from(e.index)
                for e2 in entries[k:]:
                    self._append(e2)
                break
        last_new = prev + len(entries)
        if m.leader_commit > self.commit_index:
            # Figure 2: commitIndex = min(leaderCommit, index of last new entry)
            self.commit_index = max(self.commit_index, min(m.leader_commit, last_new))
        self.send(AppendEntriesResponse(self.current_term, self.id, m.src, True,
                                        match_index=last_new, read_ctx=m.read_ctx))

    def handle_install_snapshot(self, m: InstallSnapshot) -> None:
        s = m.snapshot
        if s.index <= self.commit_index:
            self.send(InstallSnapshotResponse(self.current_term, self.id, m.src, self.commit_index))
            return
        if self.log.match_term(s.index, s.term):
            # §7: we hold the snapshot's last entry: keep the log after it; it is committed
            self.commit_index = s.index
        else:
            # §7: discard the entire log and restore from the snapshot
            self.log.reset(s.index, s.term)
            self._unstable_from = None
            self.snapshot = s
            self._pending_snapshot = s
            self.commit_index = self.last_applied = s.index
            self._confs = [(s.index, s.voters)]
            self._set_voters(s.voters)
        self.send(InstallSnapshotResponse(self.current_term, self.id, m.src, s.index))

    # ------------------------------------------------------------------ replication: leader
    def propose(self, command: Any) -> tuple[int, int]:
        """Append ``command`` to the leader's log; returns ``(index, term)``."""
        if self.state is not LEADER:
            raise NotLeader(self.id, self.leader_id)
        if self.lead_transferee is not None:
            raise NotLeader(self.id, self.lead_transferee)
        return self._propose(command, EntryKind.NORMAL)

    def propose_many(self, commands) -> list:
        """Append several client commands at once; returns their ``(index, term)``s.

        The same log as calling :meth:`propose` for each, with one commit check and one
        round of AppendEntries for the whole batch (a driver batches the requests one
        read from the network brought: one message per follower, not one per command).
        """
        if self.state is not LEADER:
            raise NotLeader(self.id, self.leader_id)
        if self.lead_transferee is not None:
            raise NotLeader(self.id, self.lead_transferee)
        term = self.current_term
        out = []
        for command in commands:
            e = Entry(term, self.log.last_index + 1, command, EntryKind.NORMAL)
            self._append(e)                      # §5.3: leaders only append
            out.append((e.index, term))
        if out:
            self.maybe_commit()
            self.broadcast_append()
        return out

    def _propose(self, command, kind) -> tuple[int, int]:
        e = Entry(self.current_term, self.log.last_index + 1, command, kind)
        self._append(e)                          # §5.3: leaders only append
        self.maybe_commit()
        self.broadcast_append()
        return e.index, e.term

    def propose_conf_change(self, cc: ConfChange) -> tuple[int, int]:
        """Single-server membership change (thesis §4.2.1): one at a time."""
        if self.state is not LEADER:
            raise NotLeader(self.id, self.leader_id)
        if self.lead_transferee is not None:
            raise NotLeader(self.id, self.lead_transferee)
        if self.pending_conf_index > self.commit_index:
            raise ConfChangeInProgress(
                f"{self.id}: a membership change (or this term's first entry) at index "
                f"{self.pending_conf_index} is not committed yet (commit {self.commit_index})")
        if cc.op == "add" and cc.node in self.voters:
            raise ValueError(f"{cc.node!r} is already a member")
        if cc.op == "remove":
            if cc.node not in self.voters:
                raise ValueError(f"{cc.node!r} is not a member")
            if len(self.voters) == 1:
                raise ValueError(f"cannot remove {cc.node!r}: it is the last member")
        cc = ConfChange(cc.op, cc.node, self._conf_after(self.voters, ConfChange(cc.op, cc.node)))
        index, term = self._propose(cc, EntryKind.CONFIG)
        self.pending_conf_index = index
        return index, term

    def transfer_leadership(self, target: str) -> None:
        """Hand leadership to ``target`` (thesis §3.10): catch it up, then TimeoutNow."""
        if self.state is not LEADER:
            raise NotLeader(self.id, self.leader_id)
        if target == self.id:
            return
        if target not in self.progress:
            raise ValueError(f"{target!r} is not a voting member")
        self.lead_transferee = target
        self.election_elapsed = 0
        pr = self.progress[target]
        if pr.match == self.log.last_index:
            self.send(TimeoutNow(self.current_term, self.id, target))
        else:
            self.send_append(target)

    def broadcast_append(self) -> None:
        for p in self.progress:
            self.send_append(p)

    def broadcast_heartbeat(self) -> None:
        """§5.2: empty AppendEntries (or the entries a follower lacks) to every peer."""
        for p in self.progress:
            self.send_append(p, heartbeat=True)

    def send_append(self, peer: str, heartbeat: bool = False) -> None:
        pr = self.progress[peer]
        log = self.log
        if pr.state is SNAPSHOT:
            if not heartbeat:
                return
            pr.snapshot_heartbeats += 1
            if pr.snapshot_heartbeats < 3:
                return
            pr.become_probe()                     # unanswered: try again
        prev = pr.next - 1
        prev_term = log.term_at(prev)
        if prev_term is None:
            # §7: what the follower needs is compacted away: send the snapshot
            snap = self.snapshot
            if snap is None:
                raise SafetyViolation(f"{self.id}: entry {prev} missing but no snapshot")
            pr.become_snapshot(snap.index)
            self.send(InstallSnapshot(self.current_term, self.id, peer, snap))
            return
        if pr.state is PROBE:
            if pr.probe_sent and not heartbeat:
                return
            pr.probe_sent = True
        last = log.last_index
        if pr.next <= last:
            hi = min(last, pr.next + self.config.max_entries_per_message - 1)
            entries = tuple(log.slice(pr.next, hi))
            if pr.state is REPLICATE:
                pr.next = hi + 1                  # optimistic pipelining
        elif heartbeat:
            entries = ()
        else:
            return
        self.send(AppendEntries(self.current_term, self.id, peer, prev, prev_term, entries,
                                self.commit_index, self.reads.seq))

    def handle_append_response(self, m: AppendEntriesResponse) -> None:
        pr = self.progress.get(m.src)
        if pr is None:
            return                                # no longer a member
        pr.recent_active = True
        if m.read_ctx:
            self._ack_reads(m.src, m.read_ctx)
        if m.success:
            if m.match_index > pr.match:
                pr.match = m.match_index
                advanced = True
            else:
                advanced = False
            if pr.next <= pr.match:
                pr.next = pr.match + 1
            if pr.state is PROBE:
                pr.become_replicate()
            elif pr.state is SNAPSHOT and pr.match >= pr.pending_snapshot:
                pr.become_replicate()
            if advanced:
                self.maybe_commit()
                if self.state is not LEADER:
                    return
            if m.src == self.lead_transferee and pr.match == self.log.last_index:
                self.send(TimeoutNow(self.current_term, self.id, m.src))
            if pr.next <= self.log.last_index:
                self.send_append(m.src)
            return
        # rejected: ignore stale answers (reordered or duplicated)
        if m.reject_index <= pr.match:
            return
        if pr.state is PROBE and m.reject_index != pr.next - 1:
            return
        if pr.state is SNAPSHOT:
            return
        # fast backtracking (§5.3): skip a whole conflicting term per round trip
        if m.conflict_term is not None:
            li = self.log.last_index_of_term(m.conflict_term)
            nxt = li + 1 if li is not None else m.conflict_index
        else:
            nxt = m.conflict_index
        pr.next = max(pr.match + 1, min(nxt, m.reject_index, self.log.last_index + 1))
        pr.become_probe()
        self.send_append(m.src)

    def handle_snapshot_response(self, m: InstallSnapshotResponse) -> None:
        pr = self.progress.get(m.src)
        if pr is None:
            return
        pr.recent_active = True
        if m.match_index > pr.match:
            pr.match = m.match_index
            self.maybe_commit()
            if self.state is not LEADER:
                return
        if pr.state is SNAPSHOT and pr.match >= pr.pending_snapshot:
            pr.next = pr.match + 1
            pr.become_probe()
            self.send_append(m.src)

    def maybe_commit(self) -> bool:
        """§5.3 / §5.4.2: commit the highest index stored on a quorum — only if its
        entry is from the current term (Figure 8); earlier entries commit with it."""
        voters = self.voters
        if not voters:
            return False
        last = self.log.last_index
        matches = sorted((last if v == self.id else self.progress[v].match) for v in voters)
        n = matches[len(matches) - self.quorum]
        if n <= self.commit_index:
            return False
        if self.log.term_at(n) != self.current_term and not self.config.unsafe_commit_old_terms:
            return False
        first_of_term = self.log.term_at(self.commit_index) != self.current_term
        self.commit_index = n
        if first_of_term:
            self.reads.release_deferred(self)
        if self.id not in self.voters and self._confs[-1][0] <= n:
            # thesis §4.2.2: a leader removed from the configuration steps down once
            # the change is committed
            self.become_follower(self.current_term, None)
        return True

    # ------------------------------------------------------------------ reads (thesis §6.4)
    def read_index(self, ctx: Any) -> None:
        """Ask for a linearizable read point; answered in ``Ready.read_states``."""
        if self.state is not LEADER:
            raise NotLeader(self.id, self.leader_id)
        if self.log.term_at(self.commit_index) != self.current_term:
            self.reads.defer(ctx)                 # wait for this term's no-op to commit
            return
        self.start_read(ctx)

    def start_read(self, ctx: Any) -> None:
        if self.quorum == 1 and self.id in self.voters:
            self._read_states.append((ctx, self.commit_index))
            return
        self.reads.add(ctx, self.commit_index, self.id)
        self.broadcast_heartbeat()                # confirm we still lead

    def _ack_reads(self, peer: str, read_ctx: int) -> None:
        if self.reads.pending:
            for ctx, index in self.reads.ack(peer, read_ctx, self.voters, self.quorum):
                self._read_states.append((ctx, index))

    # ------------------------------------------------------------------ compaction (§7)
    def compact(self, index: int, data: Any) -> Snapshot:
        """Replace the log up to ``index`` (applied) by a snapshot holding ``data``."""
        if index > self.last_applied:
            raise ValueError(f"cannot snapshot at {index}: only {self.last_applied} applied")
        if index <= self.log.snapshot_index:
            raise ValueError(f"cannot snapshot at {index}: already compacted to {self.log.snapshot_index}")
        term = self.log.term_at(index)
        snap = Snapshot(index, term, self.conf_at(index), data)
        self.log.compact(index, term)
        self.snapshot = snap
        base = [c for c in self._confs if c[0] <= index][-1]
        self._confs = [(index, base[1])] + [c for c in self._confs if c[0] > index]
        return snap

    # ------------------------------------------------------------------ Ready
    def has_ready(self) -> bool:
        """Is there a Ready to take?  False while one awaits :meth:`advance`."""
        if self._outstanding is not None:
            return False
        return bool(self._msgs or self._unstable_from is not None
                    or self.commit_index > self.last_applied or self._read_states
                    or self._pending_snapshot is not None
                    or self.current_term != self._persisted_hs.term
                    or self.voted_for != self._persisted_hs.voted_for
                    or self._soft[0] is not self.state or self._soft[1] != self.leader_id)

    def ready(self) -> Ready:
        """Take the pending work.  The caller must persist, then send, then apply, then
        :meth:`advance` it; until then no other Ready can be taken."""
        if self._outstanding is not None:
            raise RaftError(f"{self.id}: ready() called again before advance() of {self._outstanding!r}")
        hs = None
        p = self._persisted_hs
        if self.current_term != p.term or self.voted_for != p.voted_for:
            hs = HardState(self.current_term, self.voted_for)
        entries = ()
        if self._unstable_from is not None:
            lo = max(self._unstable_from, self.log.first_index)
            if lo <= self.log.last_index:
                entries = tuple(self.log.slice(lo, self.log.last_index))
            # handed to the driver: a later change of the log (a conflicting
            # AppendEntries) marks it unstable again, for the next Ready
            self._unstable_from = None
        committed = ()
        if self.commit_index > self.last_applied:
            committed = tuple(self.log.slice(self.last_applied + 1, self.commit_index))
        soft = None
        if self._soft[0] is not self.state or self._soft[1] != self.leader_id:
            soft = self._soft = (self.state, self.leader_id)
        rd = Ready(hs, self._pending_snapshot, entries, tuple(self._msgs), committed,
                   tuple(self._read_states), soft)
        self._msgs = []
        self._read_states = []
        self._pending_snapshot = None
        self._outstanding = rd
        return rd

    def take_appends(self) -> list:
        """The AppendEntries queued while a Ready is outstanding, for a leader's driver
        that replicates while it persists (thesis §10.2.1); other messages stay for the
        next Ready.  Empty unless leading with no unpersisted term or vote.

        The entries they carry may not be on this server's disk yet, and its commit
        index may count them: the caller must not let a follower learn a commit index
        beyond what this server has persisted (it caps ``leader_commit``)."""
        if self.state is not LEADER or self._outstanding is None or not self._msgs:
            return []
        p = self._persisted_hs
        if self.current_term != p.term or self.voted_for != p.voted_for:
            return []
        out, keep = [], []
        for m in self._msgs:
            (out if type(m) is AppendEntries else keep).append(m)
        self._msgs = keep
        return out

    def advance(self, rd: Ready) -> None:
        """The driver has persisted ``rd``, sent its messages and applied its committed
        entries (etcd's ``Advance``): record the hard state as persisted and move
        ``last_applied`` past them."""
        if rd is not self._outstanding:
            raise RaftError(f"{self.id}: advance() of a Ready that is not the outstanding one: "
                            f"{rd!r} (outstanding: {self._outstanding!r})")
        self._outstanding = None
        if rd.hard_state is not None:
            self._persisted_hs = rd.hard_state
        if rd.committed_entries:
            # an InstallSnapshot taken meanwhile may already have moved it further
            self.last_applied = max(self.last_applied, rd.committed_entries[-1].index)
