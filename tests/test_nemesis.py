"""The process nemesis: kill -9 and SIGSTOP/SIGCONT on real processes, from a seeded schedule."""

import subprocess
import sys
import time

import pytest

from course_lib.check import Fault, FaultInterval, ProcessNemesis, random_schedule

SLEEPER = [sys.executable, "-c", "import time; time.sleep(60)"]


def _state(pid):
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0]


@pytest.fixture
def procs():
    started = [subprocess.Popen(SLEEPER) for _ in range(2)]
    yield started
    for p in started:
        if p.poll() is None:
            p.kill()
            p.wait()


def test_random_schedule_is_seeded_and_stays_within_the_run():
    a = random_schedule(["n1", "n2"], seed=3, duration=20)
    assert a == random_schedule(["n1", "n2"], seed=3, duration=20)
    assert a != random_schedule(["n1", "n2"], seed=4, duration=20)
    assert len(a) > 5
    assert {f.kind for f in a} == {"pause", "kill"} and {f.target for f in a} == {"n1", "n2"}
    for f, g in zip(a, a[1:]):
        assert f.at + f.duration <= g.at
    assert a[-1].at + a[-1].duration <= 20
    assert {f.kind for f in random_schedule([0], seed=1, duration=20, kinds=["pause"])} == {"pause"}


def test_bad_schedules_and_faults_are_rejected():
    with pytest.raises(ValueError, match="unknown fault kind"):
        Fault(0, "explode", "n1", 1)
    with pytest.raises(ValueError, match=">= 0"):
        Fault(-1, "pause", "n1", 1)
    with pytest.raises(ValueError, match="at least one target"):
        random_schedule([], seed=0, duration=5)
    with pytest.raises(ValueError, match="unknown fault kind"):
        random_schedule([1], seed=0, duration=5, kinds=["partition"])
    with pytest.raises(ValueError, match="unknown process"):
        ProcessNemesis({"a": 1}, [Fault(0, "pause", "b", 1)])
    with pytest.raises(ValueError, match="pid or a subprocess.Popen"):
        ProcessNemesis({"a": "not a pid"})


def test_pause_stops_the_process_and_resume_continues_it(procs):
    nemesis = ProcessNemesis({"n1": procs[0], "n2": procs[1]})
    nemesis.pause("n1")
    assert _state(procs[0].pid) == "T" and nemesis.paused("n1")
    assert _state(procs[1].pid) != "T"
    with pytest.raises(ValueError, match="already paused"):
        nemesis.pause("n1")
    nemesis.resume("n1")
    assert _state(procs[0].pid) != "T" and not nemesis.paused("n1")
    with pytest.raises(ValueError, match="not paused"):
        nemesis.resume("n1")
    (interval,) = nemesis.intervals
    assert interval.kind == "pause" and interval.target == "n1"
    assert 0 <= interval.start <= interval.end
    assert interval.label == "pause n1"


def test_kill_is_sigkill_and_a_dead_process_cannot_be_faulted(procs):
    nemesis = ProcessNemesis([procs[0]])
    nemesis.pause(0)
    nemesis.kill(0)
    assert procs[0].returncode == -9
    assert not nemesis.alive(0) and not nemesis.paused(0)
    kinds = [(i.kind, i.end is None) for i in nemesis.intervals]
    assert kinds == [("pause", False), ("kill", True)]
    for action in (nemesis.pause, nemesis.kill):
        with pytest.raises(ValueError, match="not running"):
            action(0)
    with pytest.raises(ValueError, match="no restart callable"):
        nemesis.restart(0)
    with pytest.raises(ValueError, match="unknown process"):
        nemesis.kill(7)


def test_processes_given_by_pid(procs):
    nemesis = ProcessNemesis({"n1": procs[0].pid})
    nemesis.pause("n1")
    assert _state(procs[0].pid) == "T"
    nemesis.resume("n1")
    nemesis.kill("n1")
    assert not nemesis.alive("n1")


def test_restart_replaces_a_killed_process(procs):
    spawned = []

    def restart(name):
        spawned.append(subprocess.Popen(SLEEPER))
        return spawned[-1]

    nemesis = ProcessNemesis({"n1": procs[0]}, restart=restart)
    with pytest.raises(ValueError, match="running"):
        nemesis.restart("n1")
    nemesis.kill("n1")
    nemesis.restart("n1")
    try:
        assert nemesis.alive("n1") and nemesis.pid("n1") == spawned[0].pid
        (interval,) = nemesis.intervals
        assert interval.end is not None
    finally:
        for p in spawned:
            p.kill()
            p.wait()


def test_schedule_plays_in_the_background_and_records_intervals(procs):
    spawned = []

    def restart(name):
        spawned.append(subprocess.Popen(SLEEPER))
        return spawned[-1]

    schedule = [Fault(0.05, "pause", "a", 0.15), Fault(0.1, "kill", "b", 0.1),
                Fault(0.12, "pause", "a", 0.05)]
    nemesis = ProcessNemesis({"a": procs[0], "b": procs[1]}, schedule, restart=restart)
    t0 = time.monotonic()
    nemesis.start(t0)
    while not nemesis.paused("a") and time.monotonic() - t0 < 2:
        time.sleep(0.005)
    assert _state(procs[0].pid) == "T"
    time.sleep(0.3)
    try:
        intervals = nemesis.stop()
        assert [(i.kind, i.target) for i in intervals] == [("pause", "a"), ("kill", "b")]
        pause, kill = intervals
        assert 0.05 <= pause.start < 0.15 and 0.2 <= pause.end < 0.5
        assert 0.1 <= kill.start < 0.2 and 0.2 <= kill.end < 0.5
        assert nemesis.skipped == [schedule[2]]
        assert _state(procs[0].pid) != "T" and nemesis.alive("b") and procs[1].returncode == -9
    finally:
        for p in spawned:
            p.kill()
            p.wait()


def test_stop_heals_an_open_pause(procs):
    nemesis = ProcessNemesis({"a": procs[0]}, [Fault(0.0, "pause", "a", 30.0)])
    with nemesis:
        nemesis.start()
        time.sleep(0.05)
        assert _state(procs[0].pid) == "T"
    assert _state(procs[0].pid) != "T"
    (interval,) = nemesis.intervals
    assert isinstance(interval, FaultInterval) and interval.end < 1.0
