"""One node driven by hand: the rule tests feed it messages and read its replies.

:class:`Solo` builds the learner's node with a :class:`MemoryStorage`, steps it,
and handles each Ready as a host would (persist, collect the messages, advance), so a
test can say "after this RequestVote, the node must answer that" — one rule of the
paper per test, deterministic, with no simulator in the way.
"""

from __future__ import annotations

import random

from ...raft.messages import (AppendEntries, AppendEntriesResponse, RequestVote,
                              RequestVoteResponse)
from ...raft.node import RaftConfig
from ...raft.storage import MemoryStorage
from .cluster import LEADER, LabFailure

CONFIG = RaftConfig(election_ticks=(30, 60), heartbeat_ticks=10, pre_vote=False,
                    check_quorum=False, max_entries_per_message=64)


class Solo:
    def __init__(self, node_class, nid: str = "n1", voters=("n1", "n2", "n3"), seed: int = 0):
        self.node_class = node_class
        self.nid = nid
        self.voters = tuple(voters)
        self.seed = seed
        self.storage = MemoryStorage()
        self.node = node_class(nid, self.voters, rng=random.Random(seed), config=CONFIG,
                               storage=self.storage)
        self.sent: list = []

    def pump(self) -> list:
        out = []
        node = self.node
        while node.has_ready():
            rd = node.ready()
            if rd.snapshot is not None:
                self.storage.save_snapshot(rd.snapshot)
            if rd.entries:
                self.storage.append(rd.entries)
            if rd.hard_state is not None:
                self.storage.save_hard_state(rd.hard_state)
            out.extend(rd.messages)
            node.advance(rd)
        self.sent.extend(out)
        return out

    def step(self, m) -> list:
        self.node.step(m)
        return self.pump()

    def crash(self) -> None:
        """Throw the node away and build a new one from the same storage."""
        self.node = self.node_class(self.nid, self.voters, rng=random.Random(self.seed + 1),
                                    config=CONFIG, storage=self.storage)
        self.sent = []

    def tick_until(self, kind, limit: int = 200) -> list:
        for _ in range(limit):
            self.node.tick()
            out = [m for m in self.pump() if type(m) is kind]
            if out:
                return out
        raise LabFailure(f"{self.nid} sent no {kind.__name__} in {limit} ticks "
                         f"(election timeout {CONFIG.election_ticks} ticks)")

    def elect(self) -> int:
        """Make the node leader: let it time out, grant it n2's vote.  Its term."""
        votes = self.tick_until(RequestVote)
        term = votes[0].term
        self.step(RequestVoteResponse(term, "n2", self.nid, True))
        if self.node.state is not LEADER:
            raise LabFailure(f"{self.nid} asked for votes in term {term}, got n2's, and with its "
                             f"own that is a majority of 3, but it did not become leader")
        return term

    def vote(self, term: int, candidate: str, last_index: int = 0, last_term: int = 0):
        """Send a RequestVote; return the node's answer (RequestVoteResponse) or None."""
        out = self.step(RequestVote(term, candidate, self.nid, last_index, last_term))
        answers = [m for m in out if type(m) is RequestVoteResponse and m.dst == candidate]
        return answers[-1] if answers else None

    def append(self, term, leader, prev_index, prev_term, entries, commit=0):
        out = self.step(AppendEntries(term, leader, self.nid, prev_index, prev_term,
                                      tuple(entries), commit))
        answers = [m for m in out if type(m) is AppendEntriesResponse and m.dst == leader]
        return answers[-1] if answers else None

    def appends_to(self, peer: str, msgs=None) -> list:
        return [m for m in (self.sent if msgs is None else msgs)
                if type(m) is AppendEntries and m.dst == peer]
