"""Stage 5 (6.5840 3C): persistence and crash recovery — hard state and log on stable
storage before replying; a restarted server starts from what it persisted."""

from __future__ import annotations

from ...raft.messages import (AppendEntries, AppendEntriesResponse, Entry, InstallSnapshot,
                              InstallSnapshotResponse, Snapshot)
from .cluster import LabFailure
from .replication import _cmd
from .solo import CONFIG, Solo
from .suite import lab_test


@lab_test("PersistRules", 5, 1, "rule table: a vote and an acknowledged entry survive a crash; "
          "the restarted server refuses a second vote in that term")
def persist_rules(lab) -> None:
    s = Solo(lab.node_class)
    a = s.vote(5, "n2")
    if a is None or not a.granted:
        raise LabFailure("n1 did not grant a first RequestVote of term 5")
    st = s.storage.hard_state
    if st is None or (st.term, st.voted_for) != (5, "n2"):
        raise LabFailure(f"n1 granted its vote to n2 in term 5, but storage holds {st}: persist "
                         f"(term 5, voted_for n2) before the reply leaves (Figure 2)")
    s.crash()
    if (s.node.current_term, s.node.voted_for) != (5, "n2"):
        raise LabFailure(f"n1 restarted with term {s.node.current_term}, voted_for "
                         f"{s.node.voted_for}; storage holds term 5, voted_for n2: restore() "
                         f"must recover them")
    b = s.vote(5, "n3")
    if b is not None and b.granted:
        raise LabFailure("n1 voted for n2 in term 5, crashed, restarted, and voted for n3 in "
                         "term 5: two votes in one term can elect two leaders")
    e1, e2 = Entry(5, 1, _cmd(1)), Entry(5, 2, _cmd(2))
    r = s.append(5, "n2", 0, 0, [e1, e2])
    if r is None or not r.success:
        raise LabFailure("n1 refused AppendEntries(prev 0) from n2, leader of its term")
    if [e.term for e in s.storage.entries] != [5, 5]:
        raise LabFailure(f"n1 acknowledged entries 1..2 but storage holds "
                         f"{len(s.storage.entries)} entries: persist the log before answering")
    s.crash()
    if s.node.log.last_index != 2 or s.node.log[2] != e2:
        raise LabFailure(f"n1 restarted with {s.node.log.last_index} log entries; it had "
                         f"persisted 2: restore() must rebuild the log (e.g. RaftLog(entries))")


@lab_test("Persist1", 5, 20, "3 servers: all crash and restart; the leader crashes and "
          "restarts; a follower too — committed entries survive, agreement continues")
def persist1(lab) -> None:
    c = lab.make_cluster(3)
    lab.one(expected=3)
    for nid in c.members:
        c.crash(nid)
    for nid in c.members:
        c.restart(nid)
    lab.one(expected=3)
    lead = lab.check_one_leader()
    c.crash(lead)
    c.restart(lead)
    lab.one(expected=3)
    lead = lab.check_one_leader()
    c.crash(lead)
    lab.one(expected=2)
    c.restart(lead)
    lab.one(expected=3)
    follower = next(n for n in c.members if n != lab.check_one_leader())
    c.crash(follower)
    lab.one(expected=2)
    c.restart(follower)
    lab.one(expected=3)
    lab.converged()


@lab_test("Persist2", 5, 12, "5 servers, 5 rounds: crash the leader and a follower, agree "
          "with 3, crash two more, restart all")
def persist2(lab) -> None:
    c = lab.make_cluster(5)
    for _ in range(5):
        lab.one(expected=5, within_ms=6000)
        lead = lab.check_one_leader()
        down = [lead, lab.rng.choice([n for n in c.members if n != lead])]
        for nid in down:
            c.crash(nid)
        lab.one(expected=3)
        more = lab.rng.sample([n for n in c.members if n not in down], 2)
        for nid in more:
            c.crash(nid)
        for nid in down + more:
            c.restart(nid)
    lab.one(expected=5, within_ms=6000)
    lab.converged()


@lab_test("Persist3", 5, 20, "a leader disconnected with an uncommitted entry, crashed and "
          "restarted into the majority's term: its entry must give way")
def persist3(lab) -> None:
    c = lab.make_cluster(3)
    lab.one(expected=3)
    lead = lab.check_one_leader()
    c.disconnect(lead)
    lab.start(lead, lab.command())
    c.run_for(100)
    lab.one(expected=2)
    c.crash(lead)
    c.connect(lead)
    c.restart(lead)
    lab.one(expected=3)
    lab.converged()


def _figure8(lab, unreliable: bool) -> None:
    c = lab.make_cluster(5, max_entries_per_message=1 if not unreliable else 4)
    if unreliable:
        c.unreliable(0.1, 0.05)
    lab.one(expected=1)
    rounds = 30
    for _ in range(rounds):
        lead = c.leader_among(c.live())
        for nid in c.live():
            if lab.start(nid, lab.command()) is not None:
                lead = nid
        c.run_for(lab.rng.choice([5, 13, 40, 150, 400]))
        if unreliable:
            if lab.rng.random() < 0.5 and lead is not None:
                c.disconnect(lead)
            elif c.disconnected:
                c.connect(lab.rng.choice(sorted(c.disconnected)))
            if len(c.disconnected) > 2:
                c.connect(sorted(c.disconnected)[0])
        elif lead is not None and lab.rng.random() < 0.7:
            c.crash(lead)
        if not unreliable and len(c.live()) < 3:
            c.restart(lab.rng.choice([n for n in c.members if not c.hosts[n].alive]))
    if unreliable:
        c.reliable()
        c.heal()
    c.restart_all()
    lab.one(expected=5, within_ms=8000)
    lab.converged()


@lab_test("Figure8", 5, 40, "5 servers, 30 rounds: propose on the leader, wait a random "
          "while, crash it; entries replicated one per message; then all agree")
def figure8(lab) -> None:
    _figure8(lab, unreliable=False)


@lab_test("Figure8Unreliable", 5, 20, "Figure8 on a network that drops, duplicates and "
          "reorders, with leaders disconnected instead of crashed")
def figure8_unreliable(lab) -> None:
    _figure8(lab, unreliable=True)


@lab_test("UnreliableChurn", 5, 10, "clients write while servers crash, restart and are "
          "disconnected at random on an unreliable network; linearizable, converged")
def unreliable_churn(lab) -> None:
    c = lab.make_cluster(5)
    c.unreliable(0.05, 0.05)
    clients = lab.clients(3)
    for _ in range(12):
        c.run_for(lab.rng.choice([50, 150, 300]))
        r = lab.rng.random()
        live = c.live()
        down = [n for n in c.members if not c.hosts[n].alive]
        if r < 0.3 and len(live) > 3:
            c.crash(lab.rng.choice(live))
        elif r < 0.55 and down:
            c.restart(lab.rng.choice(down))
        elif r < 0.8 and len(c.disconnected) < 2:
            c.disconnect(lab.rng.choice(live))
        elif c.disconnected:
            c.connect(lab.rng.choice(sorted(c.disconnected)))
    c.restore()
    c.run_for(1000)
    lab.check_history(clients, min_ok=10)
    lab.converged()


@lab_test("SnapshotRules", 5, 1, "rule table (§7): a follower installs a snapshot past its "
          "commit index and restarts from it; a leader whose log is compacted past a "
          "follower's next entry sends its snapshot")
def snapshot_rules(lab) -> None:
    s = Solo(lab.node_class)
    s.append(1, "n2", 0, 0, [Entry(1, i, _cmd(i)) for i in (1, 2, 3)], commit=0)
    snap = Snapshot(5, 1, ("n1", "n2", "n3"), "state up to 5")
    out = s.step(InstallSnapshot(1, "n2", "n1", snap))
    answers = [m for m in out if type(m) is InstallSnapshotResponse]
    log = s.node.log
    if log.snapshot_index != 5 or log.last_index != 5:
        raise LabFailure(f"n1 (log up to 3) installed a snapshot up to 5 of term 1: its log must "
                         f"now start after 5 (log.reset(5, 1)), but it has snapshot_index "
                         f"{log.snapshot_index} and last index {log.last_index}")
    if s.node.commit_index != 5 or s.storage.snapshot != snap:
        raise LabFailure("after a snapshot up to 5, commit_index must be 5 and the snapshot on "
                         "stable storage (call install_snapshot(snap), then persist())")
    if not answers or answers[-1].match_index != 5:
        raise LabFailure(f"n1 must answer InstallSnapshotResponse with match_index 5, got "
                         f"{answers}")
    s.crash()
    if s.node.log.snapshot_index != 5 or s.node.commit_index != 5:
        raise LabFailure(f"n1 restarted with snapshot_index {s.node.log.snapshot_index} and "
                         f"commit_index {s.node.commit_index}: restore() gets the snapshot; the "
                         f"log starts after it (RaftLog(entries, snap.index, snap.term)) and "
                         f"everything in it is committed")
    leader = Solo(lab.node_class, seed=3)
    term = leader.elect()
    for n in range(1, 4):
        leader.node.propose(_cmd(n))
    leader.pump()
    last = leader.node.log.last_index
    leader.step(AppendEntriesResponse(term, "n2", "n1", True, match_index=last))
    if leader.node.commit_index != last:
        raise LabFailure(f"n1 (leader) did not commit {last} once n2 stored it")
    leader.node.compact(last, "data")
    leader.sent = []
    for _ in range(3 * CONFIG.heartbeat_ticks):
        leader.node.tick()
        leader.pump()
        to_n3 = [m for m in leader.sent if m.dst == "n3"]
        if to_n3 and type(to_n3[-1]) is AppendEntries:
            ae = to_n3[-1]
            leader.step(AppendEntriesResponse(term, "n3", "n1", False, reject_index=ae.prev_log_index,
                                              conflict_index=1))
        if any(type(m) is InstallSnapshot and m.dst == "n3" for m in leader.sent):
            break
    snaps = [m for m in leader.sent if type(m) is InstallSnapshot and m.dst == "n3"]
    if not snaps or snaps[-1].snapshot.index != last:
        raise LabFailure(f"n1 compacted its log up to {last}; n3 has nothing and rejects every "
                         f"AppendEntries: n1 must send it InstallSnapshot with its snapshot (§7)")


def _snapshot_cluster(lab, n: int):
    return lab.make_cluster(n, snapshot_threshold=10)


@lab_test("SnapshotBasic", 5, 8, "3 servers compact every 10 entries under client load: logs "
          "stay short, the state is right (linearizable), all converge")
def snapshot_basic(lab) -> None:
    c = _snapshot_cluster(lab, 3)
    clients = lab.clients(3)
    c.run_for(1500)
    lab.check_history(clients, min_ok=30)
    lab.converged()
    for nid in c.members:
        log = c.hosts[nid].core.log
        if log.snapshot_index == 0 or log.last_index - log.snapshot_index > 40:
            lab.fail(f"{nid}'s log holds {log.last_index - log.snapshot_index} entries after its "
                     f"snapshot at {log.snapshot_index}: the host compacts every 10 applied "
                     f"entries — keep entries only after log.snapshot_index")


@lab_test("SnapshotInstall", 5, 8, "a follower disconnected while the leader compacts past its "
          "log; it returns and must catch up from InstallSnapshot")
def snapshot_install(lab) -> None:
    c = _snapshot_cluster(lab, 3)
    lead = lab.check_one_leader()
    behind = next(n for n in c.members if n != lead)
    c.disconnect(behind)
    clients = lab.clients(3)
    c.run_for(1200)
    c.connect(behind)
    c.run_for(800)
    lab.check_history(clients, min_ok=30)
    lab.converged()
    host = c.hosts[behind]
    lid = c.leader_among(c.live())
    if host.snapshots_installed == 0:
        lab.fail(f"{behind} caught up without installing a snapshot: the leader compacted past "
                 f"its log, so it should have needed one")
    if host.kv.data != c.hosts[lid].kv.data:
        lab.fail(f"{behind}'s state machine differs from the leader's after catching up")


@lab_test("SnapshotInstallCrash", 5, 6, "5 servers compacting every 10 entries; servers crash, "
          "restart (from their snapshots) and are disconnected under client load")
def snapshot_install_crash(lab) -> None:
    c = _snapshot_cluster(lab, 5)
    c.unreliable(0.05, 0.02)
    clients = lab.clients(3)
    for _ in range(10):
        c.run_for(lab.rng.choice([100, 200, 400]))
        live = c.live()
        down = [n for n in c.members if not c.hosts[n].alive]
        if down and lab.rng.random() < 0.5:
            c.restart(lab.rng.choice(down))
        elif len(live) > 3:
            victim = lab.rng.choice(live)
            if lab.rng.random() < 0.6:
                c.crash(victim)
            else:
                c.disconnect(victim)
        if len(c.disconnected) > 1:
            c.connect(sorted(c.disconnected)[0])
    c.restore()
    c.run_for(1000)
    lab.check_history(clients, min_ok=20)
    lab.converged()
    datas = {nid: c.hosts[nid].kv.data for nid in c.members}
    if len({repr(sorted(d.items())) for d in datas.values()}) != 1:
        lab.fail("after converging, the servers' state machines differ")
