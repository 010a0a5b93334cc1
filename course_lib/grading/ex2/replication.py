"""Stage 2 (6.5840 3B): log replication — AppendEntries, the consistency check,
nextIndex back-off, and the commit rule for current-term entries only (§5.4.2)."""

from __future__ import annotations

from ...raft.kv import ClientCommand
from ...raft.messages import (AppendEntriesResponse, Entry)
from .cluster import LEADER, LabFailure
from .solo import Solo
from .suite import lab_test


def _cmd(n: int) -> ClientCommand:
    return ClientCommand("rule", n, ("append", "x", f"{n};"))


@lab_test("AppendEntriesRules", 2, 1, "rule table of the follower: consistency check, keep "
          "matching entries, truncate at a conflict only, commit = min(leaderCommit, last new)")
def append_entries_rules(lab) -> None:
    s = Solo(lab.node_class)
    e1, e2, e3 = (Entry(1, i, _cmd(i)) for i in (1, 2, 3))
    r = s.append(1, "n2", 0, 0, [e1, e2, e3], commit=0)
    if r is None or not r.success or s.node.log.last_index != 3:
        raise LabFailure(f"n1 (empty log) got AppendEntries(term 1, prev 0, 3 entries) from n2: "
                         f"it must append them and answer success (it answered {r}, log has "
                         f"{s.node.log.last_index} entries)")
    if r.match_index != 3:
        raise LabFailure(f"a successful AppendEntriesResponse carries match_index = the last "
                         f"index the follower now shares with the leader (3), got {r.match_index}")
    r = s.append(1, "n2", 0, 0, [e1], commit=0)
    if s.node.log.last_index != 3:
        raise LabFailure(f"a late, duplicated AppendEntries carrying only entry 1 (already in the "
                         f"log) shrank n1's log from 3 to {s.node.log.last_index} entries: "
                         f"truncate only at the first entry whose term conflicts (Figure 2, "
                         f"AppendEntries rule 3), never on every AppendEntries")
    r = s.append(1, "n2", 5, 1, [Entry(1, 6, _cmd(6))], commit=0)
    if r is None or r.success or s.node.log.last_index != 3:
        raise LabFailure("n1 holds 3 entries but accepted AppendEntries(prev_log_index 5): the "
                         "consistency check must refuse when there is no entry at prev_log_index "
                         "with prev_log_term (§5.3)")
    if r.reject_index != 5:
        raise LabFailure(f"a rejection carries reject_index = the prev_log_index it refused (5), "
                         f"got {r.reject_index}")
    r = s.append(1, "n2", 2, 7, [Entry(7, 3, _cmd(30))], commit=0)
    if r is None or r.success:
        raise LabFailure("n1's entry 2 is of term 1 but it accepted AppendEntries with "
                         "prev_log_term 7 at index 2 (§5.3: the terms must match)")
    x3 = Entry(2, 3, _cmd(33))
    r = s.append(2, "n3", 2, 1, [x3], commit=3)
    log = s.node.log
    if r is None or not r.success or log.last_index != 3 or log[3] != x3:
        raise LabFailure("n1's entry 3 is of term 1; n3, leader of term 2, sent entry 3 of term 2 "
                         "after a matching entry 2: the conflicting entry (and all after it) must "
                         "be replaced by the leader's (Figure 2, AppendEntries rules 3 and 4)")
    if s.node.commit_index != 3:
        raise LabFailure(f"after AppendEntries with leaderCommit 3 whose last new entry is 3, "
                         f"commit_index must be 3 (Figure 2 rule 5), got {s.node.commit_index}")
    s.append(2, "n3", 3, 2, [], commit=9)
    if s.node.commit_index != 3:
        raise LabFailure(f"leaderCommit 9 but n1 holds only 3 entries: commit_index = "
                         f"min(leaderCommit, index of last new entry) = 3, got {s.node.commit_index}")


@lab_test("UpToDateVote", 2, 1, "rule: a vote only for a candidate whose log is at least as "
          "up to date (§5.4.1)")
def up_to_date_vote(lab) -> None:
    s = Solo(lab.node_class)
    s.append(1, "n2", 0, 0, [Entry(1, 1, _cmd(1)), Entry(1, 2, _cmd(2))], commit=0)
    a = s.vote(2, "n3", last_index=1, last_term=1)
    if a is not None and a.granted:
        raise LabFailure("n1 holds entries 1..2 of term 1 and voted for n3 whose last entry is "
                         "1 of term 1: a candidate's log must be at least as up to date "
                         "(later last term, or same term and at least as long — §5.4.1)")
    b = s.vote(3, "n2", last_index=1, last_term=2)
    if b is None or not b.granted:
        raise LabFailure("n1's last entry is (2, term 1); n2's is (1, term 2) — a later last term "
                         "is more up to date whatever the length (§5.4.1); n1 must vote for it")


@lab_test("CommitCurrentTermOnly", 2, 1, "Figure 8 as a rule: a leader of term 3 with an "
          "entry of term 1 on a majority does not commit it until an entry of term 3 is")
def commit_current_term_only(lab) -> None:
    s = Solo(lab.node_class)
    t1 = s.elect()
    s.node.propose(_cmd(1))
    s.pump()
    idx = s.node.log.last_index
    # n3 wins the next term (n1 votes for it), then n1 wins the one after
    s.vote(t1 + 1, "n3", last_index=idx, last_term=t1)
    if s.node.state is LEADER:
        raise LabFailure(f"n1 (leader of term {t1}) stayed leader after a RequestVote of term "
                         f"{t1 + 1}: a higher term makes it a follower (§5.1)")
    t3 = s.elect()
    s.step(AppendEntriesResponse(t3, "n2", "n1", True, match_index=idx))
    if s.node.commit_index >= idx:
        raise LabFailure(
            f"as leader of term {t3}, n1 committed entry {idx} of term {t1} as soon as n2 stored "
            f"it (a majority with n1): Figure 8 shows such an entry can still be overwritten. "
            f"Count replicas only for entries of the current term (§5.4.2)")
    last = s.node.log.last_index
    if s.node.log.term_at(last) == t3:
        s.step(AppendEntriesResponse(t3, "n2", "n1", True, match_index=last))
        if s.node.commit_index != last:
            raise LabFailure(f"n2 stores all of n1's log up to {last} (term {t3}): with n1 that is "
                             f"a majority, so commit_index must reach {last} "
                             f"(got {s.node.commit_index})")


@lab_test("NextIndexBackoff", 2, 1, "rule: after a rejection the leader retries with an "
          "earlier prev_log_index (§5.3)")
def next_index_backoff(lab) -> None:
    s = Solo(lab.node_class)
    term = s.elect()
    for n in range(1, 4):
        s.node.propose(_cmd(n))
    s.pump()
    s.vote(term + 1, "n3", last_index=s.node.log.last_index, last_term=term)
    s.sent = []
    term = s.elect()
    sent = s.appends_to("n2")
    if not sent:
        raise LabFailure(f"n1 became leader of term {term} but sent no AppendEntries to n2: a new "
                         f"leader sends (empty) AppendEntries at once (§5.2)")
    tried = sent[-1].prev_log_index
    if tried == 0:
        return
    s.sent = []
    s.step(AppendEntriesResponse(term, "n2", "n1", False, reject_index=tried))
    retry = s.appends_to("n2")
    if not retry:
        s.sent = []
        for _ in range(12):
            s.node.tick()
            s.pump()
        retry = s.appends_to("n2")
    if not retry:
        raise LabFailure(f"n2 rejected AppendEntries at prev_log_index {tried}; n1 sent it nothing "
                         f"more: decrement nextIndex and retry (§5.3)")
    if retry[0].prev_log_index >= tried:
        raise LabFailure(f"n2 rejected AppendEntries at prev_log_index {tried}; n1's next one to n2 "
                         f"is again at prev_log_index {retry[0].prev_log_index}: after a "
                         f"rejection decrement nextIndex[n2] and retry (§5.3)")


@lab_test("BasicAgree", 2, 20, "3 servers agree on 3 commands, none committed before it is proposed")
def basic_agree(lab) -> None:
    lab.make_cluster(3)
    lab.check_one_leader()
    last = 0
    for _ in range(3):
        index = lab.one(expected=3)
        if index <= last:
            lab.fail(f"a new command was placed at index {index}, not after {last}")
        last = index


@lab_test("FailAgree", 2, 20, "3 servers: a follower disconnected, 4 commands agreed by 2; it "
          "returns and catches up")
def fail_agree(lab) -> None:
    c = lab.make_cluster(3)
    lead = lab.check_one_leader()
    lab.one(expected=3)
    follower = next(n for n in c.members if n != lead)
    c.disconnect(follower)
    for _ in range(4):
        lab.one(expected=2)
    c.connect(follower)
    lab.one(expected=3)
    lab.one(expected=3)


@lab_test("FailNoAgree", 2, 15, "5 servers: 3 followers disconnected, the leader's new entry "
          "must not commit; they return, agreement resumes")
def fail_no_agree(lab) -> None:
    c = lab.make_cluster(5)
    lab.one(expected=5)
    lead = lab.check_one_leader()
    for nid in [n for n in c.members if n != lead][:3]:
        c.disconnect(nid)
    placed = lab.start(lead, lab.command())
    if placed is None:
        lab.fail(f"{lead} leads but did not accept a command")
    c.run_for(2000)
    n, _ = lab.n_committed(placed[0])
    if n > 0:
        lab.fail(f"the entry at {placed[0]} was committed though only 2 of 5 servers could store "
                 f"it: commit needs a majority (§5.3)")
    c.heal()
    lab.one(expected=5, within_ms=6000)


@lab_test("ConcurrentStarts", 2, 20, "5 commands proposed at once all commit, in one order")
def concurrent_starts(lab) -> None:
    c = lab.make_cluster(3)
    lead = lab.check_one_leader()
    cmds = [lab.command() for _ in range(5)]
    placed = [lab.start(lead, cmd) for cmd in cmds]
    if any(p is None for p in placed):
        lab.fail(f"{lead} stopped accepting commands while it still led")
    if len({p[0] for p in placed}) != 5:
        lab.fail(f"5 commands proposed at once were given indexes {[p[0] for p in placed]}: each "
                 f"goes at the end of the leader's log (§5.3)")
    if not c.run_until(lambda: all(lab.n_committed(p[0])[0] == 3 for p in placed), 3000):
        lab.fail("5 commands proposed together were not all committed on the 3 servers in 3 s")


@lab_test("Rejoin", 2, 20, "a partitioned leader with uncommitted entries rejoins: its "
          "entries are replaced by the new leader's")
def rejoin(lab) -> None:
    c = lab.make_cluster(3)
    lab.one(expected=3)
    old = lab.check_one_leader()
    c.disconnect(old)
    for _ in range(3):
        lab.start(old, lab.command())
    c.run_for(50)
    lab.one(expected=2)
    new = lab.check_one_leader()
    c.disconnect(new)
    c.connect(old)
    lab.one(expected=2)
    c.connect(new)
    lab.one(expected=3)
    lab.converged()


@lab_test("Backup", 2, 12, "5 servers; 50 uncommitted entries on a minority leader, 50 "
          "committed by the majority; the laggards must back up quickly and converge")
def backup(lab) -> None:
    c = lab.make_cluster(5)
    lab.one(expected=5)
    lead = lab.check_one_leader()
    others = [n for n in c.members if n != lead]
    for nid in others[1:]:
        c.disconnect(nid)
    for _ in range(50):
        lab.start(lead, lab.command())
    c.run_for(500)
    c.disconnect(lead)
    c.disconnect(others[0])
    for nid in others[1:]:
        c.connect(nid)
    for _ in range(50):
        lab.one(expected=3)
    lead2 = lab.check_one_leader()
    follower = next(n for n in others[1:] if n != lead2)
    c.disconnect(follower)
    for _ in range(20):
        lab.start(lead2, lab.command())
    c.run_for(500)
    for nid in list(c.disconnected):
        c.connect(nid)
    lab.one(expected=5, within_ms=6000)
    lab.converged()


@lab_test("Count", 2, 10, "an RPC budget: an election, 10 agreements and 1 s idle take no more "
          "messages than needed")
def count(lab) -> None:
    c = lab.make_cluster(3)
    lab.check_one_leader()
    election = c.raft_messages
    if election > 30:
        lab.fail(f"electing the first leader of 3 servers took {election} messages (budget 30): "
                 f"one RequestVote per peer per election, one answer each")
    c.run_for(200)
    before = c.raft_messages
    for _ in range(10):
        lab.one(expected=3)
    used = c.raft_messages - before
    budget = 10 * 2 * 2 * 4 + 60
    if used > budget:
        lab.fail(f"10 agreements on 3 servers took {used} messages (budget {budget}): send "
                 f"AppendEntries when there is something new and on heartbeats, not on every tick")
    before = c.raft_messages
    c.run_for(1000)
    idle = c.raft_messages - before
    hb = c.config.heartbeat_ticks * c.tick_ms
    budget = int(1000 / hb * 2 * 2 * 1.5) + 10
    if idle > budget:
        lab.fail(f"1 s idle took {idle} messages (budget {budget} with a {hb:.0f} ms heartbeat): "
                 f"a leader with nothing to send sends one heartbeat per heartbeat interval")
