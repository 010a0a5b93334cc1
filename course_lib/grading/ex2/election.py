"""Stage 1 (6.5840 3A): leader election — terms, randomized timeouts, RequestVote."""

from __future__ import annotations

from ...raft.messages import AppendEntriesResponse, RequestVote, RequestVoteResponse
from .cluster import LEADER, LabFailure
from .solo import Solo
from .suite import lab_test


@lab_test("VoteOncePerTerm", 1, 1, "rule table: one vote per term, stale terms refused, "
          "higher terms adopted (§5.1, §5.2)")
def vote_once_per_term(lab) -> None:
    s = Solo(lab.node_class)
    a = s.vote(5, "n2")
    if a is None or not a.granted:
        raise LabFailure("n1 (term 0, empty log, no vote yet) did not grant its vote to n2's "
                         "RequestVote of term 5: a server that has not voted in a term grants "
                         "it to a candidate whose log is as up to date (Figure 2)")
    if s.node.current_term != 5 or a.term != 5:
        raise LabFailure(f"after a RequestVote of term 5, n1's current_term is "
                         f"{s.node.current_term} and its reply says term {a.term}: a higher "
                         f"term in any message becomes the server's term (§5.1)")
    b = s.vote(5, "n3")
    if b is not None and b.granted:
        raise LabFailure("n1 voted for n2 in term 5 and then granted n3's RequestVote of term "
                         "5 too: a server votes for at most one candidate per term (§5.2) — "
                         "remember voted_for")
    again = s.vote(5, "n2")
    if again is None or not again.granted:
        raise LabFailure("n1 refused a repeated RequestVote from n2, the candidate it already "
                         "voted for in term 5 (a lost reply makes candidates ask again: "
                         "votedFor == candidateId grants)")
    old = s.vote(4, "n3")
    if old is None or old.granted or old.term != 5:
        raise LabFailure("n1 (term 5) must refuse a RequestVote of term 4 and answer with its "
                         "own term 5, so the stale candidate learns it is behind (§5.1)")


@lab_test("TermsInReplies", 1, 1, "rule table: a candidate counts only votes of its current "
          "term; a reply with a higher term turns a leader into a follower (Figure 2)")
def terms_in_replies(lab) -> None:
    s = Solo(lab.node_class)
    first = s.tick_until(RequestVote)[0].term
    second = s.tick_until(RequestVote)[0].term       # its first election timed out
    if second <= first:
        raise LabFailure(f"n1 campaigned again after its election of term {first} timed out, "
                         f"but in term {second}: each election is a new term (§5.2)")
    s.step(RequestVoteResponse(first, "n2", "n1", True))
    if s.node.state is LEADER:
        raise LabFailure(f"n1 is a candidate of term {second}; a vote n2 granted in its earlier "
                         f"election (term {first}) arrived late, and n1 counted it and became "
                         f"leader: n2 may have voted for someone else in term {second} — count a "
                         f"vote only if the reply's term is your current term")
    s.step(RequestVoteResponse(second, "n2", "n1", True))
    if s.node.state is not LEADER:
        raise LabFailure(f"n1 (candidate of term {second}) got n2's vote of term {second}: with "
                         f"its own that is a majority of 3, but it did not become leader")
    s.step(AppendEntriesResponse(second + 3, "n3", "n1", False, reject_index=0))
    if s.node.state is LEADER or s.node.current_term != second + 3:
        raise LabFailure(f"n1, leader of term {second}, got a reply of term {second + 3} from n3 "
                         f"and is still {s.node.state.name.lower()} of term "
                         f"{s.node.current_term}: any request or reply with a higher term "
                         f"makes a server a follower of that term (Figure 2, all servers)")


@lab_test("InitialElection", 1, 30, "3 servers elect one leader; with no faults the term "
          "stays the same for 2 s (heartbeats)")
def initial_election(lab) -> None:
    c = lab.make_cluster(3)
    lead = lab.check_one_leader(1500)
    term = c.hosts[lead].core.current_term
    if term < 1:
        lab.fail(f"{lead} leads term {term}: a candidate increments its term (§5.2)")
    c.run_for(2000)
    now = lab.terms()
    if any(t != term for t in now.values()):
        lab.fail(f"with no failures the terms changed from {term} to {now}: the leader must send "
                 f"heartbeats (empty AppendEntries) more often than the election timeout, and a "
                 f"follower that gets one resets its timer (§5.2)")
    lab.check_one_leader(10)


@lab_test("ReElection", 1, 30, "3 servers: the leader disconnected → a new one; it returns → "
          "one leader; no majority → no leader; majority back → a leader")
def re_election(lab) -> None:
    c = lab.make_cluster(3)
    first = lab.check_one_leader(1500)
    c.disconnect(first)
    lab.check_one_leader(2000)
    c.connect(first)
    second = lab.check_one_leader(2000)
    c.run_for(500)
    c.disconnect(second)
    other = next(n for n in c.members if n != second and n not in c.disconnected)
    c.disconnect(other)
    alone = [n for n in c.members if n not in c.disconnected]
    lab.check_no_leader(alone, 1500)
    c.connect(other)
    lab.check_one_leader(2000)
    c.connect(second)
    lab.check_one_leader(2000)


@lab_test("ManyElections", 1, 20, "7 servers, 10 rounds of disconnecting 3 at random: "
          "a leader among the 4 left each time")
def many_elections(lab) -> None:
    c = lab.make_cluster(7)
    lab.check_one_leader(2000)
    for _ in range(10):
        for nid in lab.rng.sample(sorted(c.members), 3):
            c.disconnect(nid)
        lab.check_one_leader(3000)
        c.heal()
    lab.check_one_leader(3000)
