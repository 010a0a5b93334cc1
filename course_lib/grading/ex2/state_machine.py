"""Stage 3: the key-value state machine with client sessions (exactly once), on the
learner's replicated log — checked with the clients' history (linearizability)."""

from __future__ import annotations

from ...raft.client import APPEND_KEYS
from ...raft.kv import ClientCommand
from .cluster import LabFailure
from .suite import lab_test


@lab_test("SessionRules", 3, 1, "rule table of the state machine: put/append/get, a retried "
          "seq answered from the session and not applied again, an older seq ignored, "
          "snapshot()/restore() with the sessions")
def session_rules(lab) -> None:
    kv = lab.kv_class()
    steps = [
        (ClientCommand("a", 1, ("put", "k", "1")), None, "1"),
        (ClientCommand("a", 2, ("append", "k", "2")), None, "12"),
        (ClientCommand("b", 1, ("get", "k")), "12", "12"),
        (ClientCommand("a", 2, ("append", "k", "2")), None, "12"),
        (ClientCommand("b", 1, ("get", "k")), "12", "12"),
        (ClientCommand("a", 3, ("append", "k", "3")), None, "123"),
        (ClientCommand("b", 2, ("put", "k", "x")), None, "x"),
        (ClientCommand("b", 1, ("get", "k")), None, "x"),
        (ClientCommand("c", 1, ("get", "nothing")), "", "x"),
    ]
    for k, (cmd, result, value) in enumerate(steps, 1):
        retry = k in (4, 5)
        got = kv.apply(cmd)
        if got != result:
            why = (" — a retry (same client, same seq) gets the remembered result" if retry else
                   " — an older seq than the client's last is not applied and returns None"
                   if k == 8 else "")
            raise LabFailure(f"step {k}: apply({cmd}) returned {got!r}, expected {result!r}{why}")
        if kv.read("k") != value:
            why = (": a retried command must not have been applied twice — remember each "
                   "client's last seq and result (client sessions, thesis §6.3)" if retry else
                   ": an older seq must not be applied" if k == 8 else "")
            raise LabFailure(f"after step {k} ({cmd.op}), read('k') is {kv.read('k')!r}, "
                             f"expected {value!r}{why}")
    copy = lab.kv_class()
    copy.restore(kv.snapshot())
    if copy.read("k") != "x" or copy.apply(ClientCommand("a", 3, ("append", "k", "3"))) is not None \
            or copy.read("k") != "x":
        raise LabFailure("a state machine restored from snapshot() must have the same data and "
                         "the same sessions: after restore, client a's retried seq 3 was applied "
                         "again or the data differs (the sessions belong in the snapshot)")
    snap = kv.snapshot()
    kv.apply(ClientCommand("d", 1, ("put", "k", "later")))
    if snap != copy.snapshot():
        raise LabFailure("snapshot() must return an immutable copy: it changed when the state "
                         "machine applied a later command")


def appends_workload(rng, client_id: str, n: int) -> tuple:
    """Mostly appends (so a command applied twice shows), some reads."""
    if rng.random() < 0.75:
        return ("append", rng.choice(APPEND_KEYS), f"{client_id}.{n};")
    return ("get", rng.choice(APPEND_KEYS))


@lab_test("ClientRetries", 3, 5, "3 clients appending, retrying every 20 ms (so commands are "
          "proposed again) while the leader is disconnected 3 times: exactly once, linearizable")
def client_retries(lab) -> None:
    c = lab.make_cluster(3, client_retry_ms=20)
    lab.check_one_leader()
    clients = lab.clients(3, workload=appends_workload)
    lab.depose_leaders(3, before_ms=(300, 400, 500), during_ms=500)
    c.run_for(500)
    lab.check_history(clients, min_ok=20)


@lab_test("UnreliableAgree", 3, 4, "5 servers, 4 clients, a network that drops 10%, "
          "duplicates 5% and reorders: every acknowledged write applied once, linearizable")
def unreliable_agree(lab) -> None:
    c = lab.make_cluster(5)
    c.unreliable(0.1, 0.05)
    clients = lab.clients(4)
    c.run_for(3000)
    c.reliable()
    c.run_for(500)
    lab.check_history(clients, min_ok=30)
    lab.converged()


@lab_test("ClientsReElection", 3, 4, "clients keep writing while leaders are disconnected "
          "and return, 4 times: exactly once, linearizable")
def clients_re_election(lab) -> None:
    c = lab.make_cluster(5)
    clients = lab.clients(3)
    lab.depose_leaders(4, before_ms=600, during_ms=600)
    c.run_for(500)
    lab.check_history(clients, min_ok=20)
    lab.converged()
