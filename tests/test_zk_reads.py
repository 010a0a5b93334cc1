"""ZooKeeper reads on the real ensemble: plain reads from a follower can be stale (not
linearizable); ``sync()`` + read is linearizable in the same setting (no leader change).

The experiments pause a follower's JVM, so each test gets an ensemble of its own."""

from __future__ import annotations

import pytest

from course_lib.check import Operation, check, register
from course_lib.check.zk_reads import find_stale_reads, stale_read_experiment

ATTEMPTS = 5  # a stale read shows up in the first run in practice; the rest is margin


def process_state(pid: int) -> str:
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0]


def test_a_read_that_misses_a_completed_write_is_stale():
    history = [
        Operation("w", ("write", 1), 0.0, None, 1.0),
        Operation("w", ("write", 2), 1.5, None, 2.0),
        Operation("r1", ("read", None), 2.5, 1, 3.0),     # w 2 returned before: stale
        Operation("r2", ("read", None), 1.2, 1, 1.8),     # concurrent with w 2: fine
        Operation("r3", ("read", None), 2.6),             # unknown outcome: not judged
        Operation("w'", ("write", 3), 3.5),               # unknown write: never "missed"
        Operation("r1", ("read", None), 4.0, 2, 4.5),
    ]
    stale = find_stale_reads(history)
    assert [(s.read.client_id, s.read.output, s.missed.input[1]) for s in stale] == [("r1", 1, 2)]
    assert stale[0].behind == 1 and stale[0].age == pytest.approx(0.5)
    assert check(register(0), history).ok is False


def test_bad_arguments_are_refused_before_anything_runs(session_ensemble):
    with pytest.raises(ValueError, match="rounds"):
        stale_read_experiment(session_ensemble, sync_reads=False, rounds=0)
    with pytest.raises(ValueError, match="pause"):
        stale_read_experiment(session_ensemble, sync_reads=False, pause=(0.1, 3.0))
    with pytest.raises(ValueError, match="needs its process"):
        stale_read_experiment(session_ensemble.hosts, sync_reads=False)
    with pytest.raises(ValueError, match="not a follower"):
        stale_read_experiment(session_ensemble, sync_reads=False,
                              follower=session_ensemble.leader())


def test_plain_reads_from_a_paused_follower_are_stale_and_not_linearizable(private_ensemble):
    for seed in range(ATTEMPTS):
        run = stale_read_experiment(private_ensemble, sync_reads=False, rounds=300, seed=seed,
                                    time_limit=8.0)
        if run.stale_reads:
            break
    assert run.stale_reads, f"no stale read in {ATTEMPTS} runs:\n{run.summary()}"
    assert run.ok is False, run.summary()
    assert run.faults, "the follower should have been paused"
    for stale in run.stale_reads:  # a completed write, returned before the read began
        assert stale.missed.ret <= stale.read.call and stale.read.output < stale.missed.input[1]
    # The checker's counterexample is one of those stale reads.
    assert {s.read for s in run.stale_reads} & set(run.result.failing_operations), \
        run.result.explain()
    fig = run.plot()
    names = {trace.name for trace in fig.data}
    assert {"stale read", "cannot be placed"} <= names
    assert "NOT linearizable" in fig.layout.title.text
    follower = next(s for s in private_ensemble.status()
                    if run.follower.endswith(f":{s.client_port}"))
    assert process_state(follower.pid) not in ("T", "t"), "the follower must be resumed"


def test_sync_then_read_is_linearizable_under_the_same_pauses(private_ensemble):
    run = stale_read_experiment(private_ensemble, sync_reads=True, rounds=300, seed=0,
                                time_limit=8.0)
    assert run.ok is True, run.summary()
    assert run.stale_reads == ()
    assert run.faults and len(run.reads) > 50
    during_pauses = [op for op in run.reads
                     if any(f.start <= op.call <= f.end for f in run.faults)]
    assert during_pauses, "some reads should have been issued while the follower was paused"
    assert all(s.serving for s in private_ensemble.status())
