"""Stage 4: single-server membership changes (Ongaro's thesis §4.1–4.2)."""

from __future__ import annotations

from ...raft.client import ClientTimeout
from ...raft.errors import ConfChangeInProgress
from ...raft.messages import AppendEntriesResponse, ConfChange, EntryKind
from .cluster import LEADER, LabFailure
from .solo import Solo
from .suite import lab_test


@lab_test("OneChangeAtATime", 4, 1, "rule table: a change is an entry with the new voters, used "
          "at once; a second change while one is uncommitted is refused")
def one_change_at_a_time(lab) -> None:
    s = Solo(lab.node_class)
    term = s.elect()
    last = s.node.log.last_index
    s.step(AppendEntriesResponse(term, "n2", "n1", True, match_index=last))
    s.sent = []
    try:
        placed = s.node.propose_conf_change(ConfChange("add", "n4"))
    except ConfChangeInProgress:
        raise LabFailure(f"n1, leader of term {term} with an entry of its term committed and no "
                         f"change pending, refused to add n4") from None
    s.pump()
    index = placed[0]
    entry = s.node.log[index] if s.node.log.last_index >= index else None
    if entry is None or entry.kind is not EntryKind.CONFIG or \
            tuple(entry.command.voters) != ("n1", "n2", "n3", "n4"):
        raise LabFailure(f"propose_conf_change(add n4) must append an entry of kind "
                         f"EntryKind.CONFIG whose command is ConfChange('add', 'n4', voters="
                         f"('n1', 'n2', 'n3', 'n4')) and return (index, term); got {entry}")
    if tuple(s.node.voters) != ("n1", "n2", "n3", "n4"):
        raise LabFailure(f"after appending the change, n1's voters are {s.node.voters}: a server "
                         f"uses the latest configuration in its log at once (thesis §4.1)")
    if not s.appends_to("n4"):
        raise LabFailure("n1 added n4 but sent it no AppendEntries: the leader replicates to every "
                         "server of its latest configuration (give n4 a nextIndex)")
    try:
        s.node.propose_conf_change(ConfChange("add", "n5"))
    except ConfChangeInProgress:
        pass
    else:
        raise LabFailure(
            "n1 accepted a second membership change (add n5) while add n4 was not committed: with "
            "two changes in flight the old and new configurations can have disjoint majorities "
            "and elect two leaders (thesis §4.1) — raise ConfChangeInProgress until the pending "
            "change commits")
    for bad in (ConfChange("add", "n2"), ConfChange("remove", "n9")):
        s2 = Solo(lab.node_class, seed=1)
        t = s2.elect()
        s2.step(AppendEntriesResponse(t, "n2", "n1", True, match_index=s2.node.log.last_index))
        try:
            s2.node.propose_conf_change(bad)
        except ValueError:
            continue
        except ConfChangeInProgress:
            raise LabFailure(f"{bad.op} {bad.node} with nothing pending raised "
                             f"ConfChangeInProgress; it should raise ValueError") from None
        raise LabFailure(f"propose_conf_change({bad.op} {bad.node}) on voters n1..n3 must raise "
                         f"ValueError ({bad.node} is {'already' if bad.op == 'add' else 'not'} a "
                         f"member)")


def _change(lab, op: str, nid: str) -> None:
    c = lab.cluster
    try:
        (c.add_server if op == "add" else c.remove_server)(nid, timeout_ms=8000)
    except ClientTimeout:
        lab.fail(f"{op} {nid} was not committed within 8 s")
    c.note(f"{op} {nid} committed; members {','.join(c.members)}")


@lab_test("AddServers", 4, 10, "3 servers under client load grow to 5, one at a time; the new "
          "servers catch up; linearizable")
def add_servers(lab) -> None:
    c = lab.make_cluster(3)
    lab.check_one_leader()
    clients = lab.clients(2)
    c.run_for(300)
    _change(lab, "add", "n4")
    c.run_for(300)
    _change(lab, "add", "n5")
    c.run_for(500)
    lab.check_history(clients, min_ok=10)
    lab.converged()
    c.disconnect(lab.check_one_leader())
    c.disconnect(next(n for n in c.connected() if n in ("n1", "n2", "n3")))
    lab.one(expected=3, within_ms=5000)


@lab_test("RemoveServers", 4, 10, "5 servers shrink to 3 — a follower, then the leader itself "
          "(it steps down once the change commits); linearizable")
def remove_servers(lab) -> None:
    c = lab.make_cluster(5)
    lead = lab.check_one_leader()
    clients = lab.clients(2)
    c.run_for(300)
    follower = next(n for n in c.members if n != lead)
    _change(lab, "remove", follower)
    c.shut_down(follower)
    c.run_for(300)
    lead = lab.check_one_leader()
    _change(lab, "remove", lead)
    c.run_for(100)
    if c.hosts[lead].core.state is LEADER and lead not in c.members:
        c.run_for(500)
        if c.hosts[lead].core.state is LEADER:
            lab.fail(f"{lead} removed itself and the change committed, but it still leads: a "
                     f"leader not in the committed configuration steps down (thesis §4.2.2)")
    c.shut_down(lead)
    lab.check_one_leader(3000)
    c.run_for(500)
    lab.check_history(clients, min_ok=10)
    lab.converged()


@lab_test("MembershipChurn", 4, 15, "adds and removes under client load with followers "
          "disconnected now and then; safety after every event; linearizable")
def membership_churn(lab) -> None:
    c = lab.make_cluster(3)
    lab.check_one_leader()
    clients = lab.clients(2)
    spare = 4
    for _ in range(4):
        c.run_for(200)
        if len(c.members) <= 3 or lab.rng.random() < 0.5:
            _change(lab, "add", f"n{spare}")
            spare += 1
        else:
            lead = c.leader_among(c.live())
            victim = lab.rng.choice([n for n in c.members if n != lead])
            _change(lab, "remove", victim)
            c.shut_down(victim)
        lead = c.leader_among(c.live())
        other = [n for n in c.members if n != lead and c.hosts[n].alive]
        if other and lab.rng.random() < 0.7:
            nid = lab.rng.choice(other)
            c.disconnect(nid)
            c.run_for(300)
            c.connect(nid)
    c.run_for(500)
    lab.check_history(clients, min_ok=10)
    lab.converged()
