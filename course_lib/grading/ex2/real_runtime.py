"""Exercise 2's last check: the learner's node on real processes (``course_lib.net``).

The node is sans-I/O, so the host that ran it in the simulator can be swapped for the
real one with nothing changed in it: :func:`on_real_processes` starts three OS
processes (:class:`~course_lib.net.ProcessCluster`, its ``core_class`` hook: the
learner's classes travel to them by value), each with a TCP port and a WAL fsynced
before every message, and then:

1. waits for a leader;
2. runs a closed-loop client workload (appends with unique tokens, puts, reads) for a
   few seconds;
3. kills the leader with SIGKILL mid-run — its process, and everything not on its
   disk, is gone — and waits for the two others to elect a new one;
4. restarts the killed node cut off from its peers, so that what it reports is what it
   recovered from its own WAL alone (its term and its log must hold at least what it
   had as leader: Figure 2's persistent state), then reconnects it and waits until it
   has caught up with the leader;
5. checks the clients' history with the course's linearizability checker
   (:func:`course_lib.check.check`) and that every acknowledged write is in the final
   state, once (:func:`course_lib.raft.campaign.check_appends`).

Before any process starts, a quick check in this process (:func:`preflight`) builds one
node and one state machine and drives them a little, so an unwritten method is reported
as "not written yet" (with the learner's exception, their line) in a fraction of a
second, and a state machine snapshot or a message the real runtime cannot carry (its
codec is JSON of the message dataclasses of :mod:`course_lib.raft.messages`) is named.

A failure raises :class:`~course_lib.grading.CheckFailed` with what went wrong in the
protocol's terms: no leader within so many seconds, the checker's evidence, the tail of
a crashed node's traceback (from its log).  Every process is stopped whatever happens;
the whole check takes about 6 s here (longer on a busy machine).
"""

from __future__ import annotations

import random
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Optional

from .. import CheckFailed, expect
from ...check.checker import check as check_linearizable
from ...check.models import kv as kv_model
from ...net import ProcessCluster, codec
from ...net.client import NodeCrashed
from ...raft.campaign import check_appends
from ...raft.client import APPEND_KEYS, PUT_KEY, ClientTimeout
from ...raft.kv import ClientCommand
from ...raft.messages import RAFT_MESSAGES, RequestVote, RequestVoteResponse, Snapshot
from ...raft.node import RaftConfig
from ...raft.storage import MemoryStorage
from .adapter import LearnerKV

START_S = 20.0           # three fresh processes up (imports: ~2 s, more on a busy machine) and a leader
FAILOVER_S = 5.0         # a new leader after the old one is killed
CATCH_UP_S = 5.0         # the restarted node reaches the leader's commit index
CHECK_S = 10.0           # the linearizability checker's budget
VOTERS = ("n1", "n2", "n3")


class LearnerKVFactory:
    """``kv_factory`` for the nodes: a new learner's state machine wrapped for the
    course's driver (:class:`.adapter.LearnerKV`, which answers "not applied yet" to the
    driver's session lookups, so exactly-once rests on the learner's ``apply``, as in the
    simulator).  A class rather than a lambda: it has a readable repr in an error."""

    def __init__(self, kv_class) -> None:
        self.kv_class = kv_class

    def __call__(self) -> LearnerKV:
        return LearnerKV(self.kv_class())


# -- before any process ----------------------------------------------------------------------
def preflight(node_class, kv_class, seed: int = 0) -> None:
    """Build one node and one state machine here and drive them a little: what is not
    written yet raises here, in the learner's terms, before processes start; a snapshot
    or a message the real runtime cannot carry is named (``CheckFailed``)."""
    expect(isinstance(node_class, type),
           f"on_real_processes needs your node class (e.g. MyRaftNode), got {node_class!r:.80}")
    expect(isinstance(kv_class, type),
           f"on_real_processes needs your state machine class (e.g. KVStateMachine), got "
           f"{kv_class!r:.80}")
    node = node_class("n1", VOTERS, rng=random.Random(seed),
                      config=RaftConfig(election_ticks=(30, 60), heartbeat_ticks=5),
                      storage=MemoryStorage())
    sent = []

    def drain() -> None:
        for _ in range(100):
            if not node.has_ready():
                return
            rd = node.ready()
            sent.extend(rd.messages)
            node.advance(rd)

    for _ in range(61):                       # past the longest election timeout
        node.tick()
        drain()
    for m in [m for m in sent if type(m) is RequestVote and m.dst == "n2"][-1:]:
        node.step(RequestVoteResponse(m.term, "n2", "n1", True))
        drain()
    for m in sent:
        expect(type(m) in RAFT_MESSAGES,
               f"your node sent {m!r:.120}, which the real runtime cannot carry: its TCP codec "
               f"sends only the message dataclasses of course_lib.raft.messages "
               f"({', '.join(t.__name__ for t in RAFT_MESSAGES)})")
        _, why = _round_trip(m)
        expect(not why, f"your node sent {m!r:.120}, which the real runtime's codec cannot carry "
                        f"({why})")

    machine = kv_class()
    machine.apply(ClientCommand("preflight", 1, ("put", "k", "v")))
    machine.apply(ClientCommand("preflight", 2, ("append", "k", "w")))
    data = machine.snapshot()
    back, why = _round_trip(Snapshot(2, 1, VOTERS, data))
    expect(not why,
           f"your KVStateMachine.snapshot() returned {data!r:.120}, which the real runtime cannot "
           f"write to its WAL or send in an InstallSnapshot ({why}): return tuples, strings, "
           f"numbers and None only (no dicts or sets), e.g. sorted tuples of items")
    again = kv_class()
    again.restore(back.data)
    expect(again.read("k") == machine.read("k"),
           f"a state machine restored from your snapshot() reads {again.read('k')!r} for a key "
           f"that holds {machine.read('k')!r}")


def _round_trip(obj) -> tuple:
    """``(decoded, "")`` if the real runtime's codec carries ``obj`` (the decoded value
    encodes to the same bytes: lists come back as tuples, nothing else changes), else
    ``(None, why)``."""
    try:
        text = codec.dumps(obj)
        back = codec.loads(text)
        if codec.dumps(back) != text:
            return None, "it does not come back the same"
    except (ValueError, TypeError) as e:
        return None, str(e)
    return back, ""


# -- on real processes ----------------------------------------------------------------------
class _Workload:
    """Closed-loop clients, one thread each: appends with unique tokens to the append
    keys, puts of unique values to the put key, reads of all of them."""

    def __init__(self, cluster, clients: int, seed: int) -> None:
        self.cluster = cluster
        self.stop = threading.Event()
        self.crash: Optional[BaseException] = None       # NodeCrashed or a client bug
        self.threads = [threading.Thread(target=self.run, args=(i, seed), daemon=True,
                                         name=f"ex2-client-{i}") for i in range(clients)]

    def start(self) -> None:
        for t in self.threads:
            t.start()

    def run(self, i: int, seed: int) -> None:
        k = self.cluster.client(f"c{i}")
        rng = random.Random(seed * 100 + i)
        n = 0
        while not self.stop.is_set():
            n += 1
            x = rng.random()
            try:
                if x < 0.45:
                    k.append(rng.choice(APPEND_KEYS), f"c{i}.{n};")
                elif x < 0.65:
                    k.put(PUT_KEY, f"c{i}.{n}")
                else:
                    k.get(rng.choice(APPEND_KEYS + (PUT_KEY,)))
            except ClientTimeout:
                pass                              # outcome unknown: the history says so
            except Exception as e:                # NodeCrashed, or a bug: the check reports it
                self.crash = self.crash or e
                self.stop.set()
                return

    def finish(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(self.cluster.client_timeout_ms / 1000 + 2)


def _sleep_until(t: float, work: _Workload) -> None:
    """Sleep until ``time.monotonic() >= t``, failing at once if a node crashed."""
    while True:
        _check_crash(work)
        left = t - time.monotonic()
        if left <= 0:
            return
        time.sleep(min(0.05, left))


def _check_crash(work: _Workload) -> None:
    try:
        work.cluster.raise_for_crashed()
    except NodeCrashed as e:
        expect(False, f"on real processes, {e}")
    if work.crash is not None:
        expect(False, f"on real processes, a client failed: {type(work.crash).__name__}: "
                      f"{work.crash}")


def _states(c) -> str:
    return ", ".join(f"{n} {s['state'] or 'down'} term {s['term']}" for n, s in c.states().items())


def on_real_processes(node_class, kv_class, seconds: float = 4.0, clients: int = 3,
                      seed: int = 0, data_dir=None) -> str:
    """Run the learner's ``node_class`` and ``kv_class`` on three real processes (TCP,
    fsynced WALs), kill the leader with SIGKILL mid-workload, restart it, and check the
    clients' history: see the module docstring.  Returns a summary line; raises
    ``CheckFailed`` saying what went wrong.

    ``data_dir`` (empty or absent; kept): where the nodes' WALs and logs go.  By
    default a temporary directory, removed after a run that passed and kept after one
    that failed (the message names it: each node's log is ``<id>.log`` there).  The
    workload's choices are seeded (``seed``); the processes' timing is the machine's."""
    expect(isinstance(seconds, (int, float)) and not isinstance(seconds, bool)
           and 2 <= seconds <= 30, f"seconds must be a number in [2, 30], got {seconds!r}")
    expect(isinstance(clients, int) and not isinstance(clients, bool) and 1 <= clients <= 8,
           f"clients must be an int in [1, 8], got {clients!r}")
    preflight(node_class, kv_class, seed)
    if data_dir is not None:
        folder = Path(data_dir)
        expect(not folder.exists() or (folder.is_dir() and not any(folder.iterdir())),
               f"data_dir {folder} must be an empty directory or not exist yet")
    else:
        folder = Path(tempfile.mkdtemp(prefix="ex2-real-"))
    passed = False
    try:
        summary = _on_processes(node_class, kv_class, seconds, clients, seed, folder)
        passed = True
        return summary
    except CheckFailed as failure:
        raise CheckFailed(f"{failure}\n(the nodes' logs and WALs are kept in {folder})") from None
    finally:
        if passed and data_dir is None:
            shutil.rmtree(folder, ignore_errors=True)


def _on_processes(node_class, kv_class, seconds: float, clients: int, seed: int,
                  folder: Path) -> str:
    try:
        cluster = ProcessCluster(3, data_dir=folder, core_class=node_class,
                                 kv_factory=LearnerKVFactory(kv_class), client_retry_ms=300,
                                 client_timeout_ms=2000, start_timeout_s=START_S)
    except ValueError as e:
        expect(False, f"your classes cannot be sent to the node processes: {e}")
    with cluster as c:
        try:
            c.start()
        except NodeCrashed as e:
            expect(False, f"on real processes, {e}")
        except ValueError as e:
            expect(False, f"a node process could not start: {e}")
        except RuntimeError as e:                 # no ready line in time: a very busy machine
            expect(False, f"{e} ({START_S:.0f} s): is the machine very busy? Run the check again")
        except TimeoutError as e:
            expect(False, f"on three real processes no leader was elected within {START_S:.0f} s "
                          f"({e})")
        work = _Workload(c, clients, seed)
        try:
            f = _run(c, work, seconds)
        except NodeCrashed as e:
            expect(False, f"on real processes, {e}")
        except (RuntimeError, OSError) as e:        # the runtime, not the learner's code
            expect(False, f"the run on real processes failed: {type(e).__name__}: {e}")
        finally:
            work.finish()
    return (f"3 OS processes over TCP, WALs fsynced: {f['done']} client operations completed "
            f"({f['writes']} acknowledged writes) in {f['seconds']:.1f} s; leader {f['old']} "
            f"killed (SIGKILL), {f['new']} elected in {f['failover']:.2f} s; {f['old']} restarted "
            f"from its WAL (term {f['term']}, log to {f['last_index']}) and caught up; the history "
            f"({f['history']} operations) is linearizable and every acknowledged write survived")


def _run(c, work: _Workload, seconds: float) -> dict:
    t0 = time.monotonic()
    work.start()
    _sleep_until(t0 + 0.35 * seconds, work)
    old, s = None, None
    for _ in range(20):                           # a leader whose role we saw: its term is on disk
        old = c.leader()
        s = c.status(old) if old is not None else None
        if s is not None and s["state"] == "leader":
            break
        _sleep_until(time.monotonic() + 0.1, work)
    expect(s is not None and s["state"] == "leader",
           f"no node was leader long enough to be killed under load: {_states(c)}")
    term, applied = s["term"], s["last_applied"]
    c.crash(old)
    killed = time.monotonic()
    new = None
    while new is None and time.monotonic() < killed + FAILOVER_S:
        _check_crash(work)
        new = c.wait_for_leader(0.1, other_than=old)
    failover = time.monotonic() - killed
    new_wall = time.time()
    expect(new is not None,
           f"after {old}, leader of term {term}, was killed (SIGKILL), the two other nodes elected "
           f"no leader within {FAILOVER_S:.0f} s: {_states(c)}")
    _sleep_until(max(time.monotonic() + 0.3, t0 + 0.6 * seconds), work)
    # back from its own disk alone: cut off from its peers until it has said what it holds
    c.isolate(old)
    try:
        c.restart(old, timeout_s=START_S)
    except ValueError as e:
        expect(False, f"{old}, killed as leader, could not restart from its data dir: {e}")
    except RuntimeError as e:
        expect(False, f"{e} ({START_S:.0f} s) after it was killed: is the machine very busy? "
                      f"Run the check again")
    back = c.status(old)
    c.heal()
    expect(back is not None, f"{old} restarted but does not answer")
    expect(back["term"] >= term and back["last_index"] >= applied,
           f"{old}, killed (SIGKILL) as leader of term {term} with {applied} entries applied, came "
           f"back from its data dir with term {back['term']} and a log up to index "
           f"{back['last_index']}: restore() must rebuild current_term, voted_for and the log from "
           f"what storage holds, and every change to them must have been persisted (Figure 2: "
           f"a restarted server starts from its persistent state)")
    _sleep_until(t0 + seconds, work)
    work.finish()
    _check_crash(work)
    elapsed = time.monotonic() - t0
    # the restarted node catches up with the leader
    deadline = time.monotonic() + CATCH_UP_S
    while True:
        _check_crash(work)
        states = c.states()
        lead = c.leader()
        if lead is not None and states[old]["last_applied"] is not None \
                and states[old]["last_applied"] >= states[lead]["commit_index"]:
            break
        if time.monotonic() > deadline:
            expect(False, f"{old}, restarted, did not catch up with the leader within "
                          f"{CATCH_UP_S:.0f} s: " + ", ".join(
                              f"{n} {r['state']} term {r['term']} commit {r['commit_index']} "
                              f"applied {r['last_applied']}" for n, r in states.items()))
        time.sleep(0.05)
    # the final state, read through the log, and the history's checks
    reader = c.client("final")
    try:
        final = {key: reader.get(key, timeout_ms=5000) for key in APPEND_KEYS}
    except ClientTimeout:
        _check_crash(work)
        expect(False, f"after the run, a read was not answered within 5 s: {_states(c)}")
    history = c.history
    done = [op for op in history if op.ret is not None]
    writes = [op for op in done if op.input[0] in ("put", "append")]
    expect(len(done) >= 20, f"only {len(done)} client operations completed in {elapsed:.1f} s on "
                            f"real processes: {_states(c)}")
    after = [op for op in done if op.call > new_wall and op.client_id != "final"]
    expect(after, f"after {new} was elected, no client operation completed")
    problems = check_appends([op for op in history if op.input[1] in APPEND_KEYS], final)
    expect(not problems, "the acknowledged writes did not survive the run: " + "; ".join(problems[:3]))
    result = check_linearizable(kv_model(), history, timeout=CHECK_S)
    if result.ok is None:
        expect(False, f"the linearizability checker could not decide the history of {len(history)} "
                      f"operations within {CHECK_S:.0f} s")
    text = result.explain()
    expect(result.ok is True, "the clients' history is not linearizable:\n"
           + (text if len(text) < 1500 else text[:1500] + " …"))
    return {"done": len(done), "writes": len(writes), "seconds": elapsed, "old": old, "new": new,
            "failover": failover, "term": back["term"], "last_index": back["last_index"],
            "history": len(history)}
