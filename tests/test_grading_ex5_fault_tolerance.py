"""Exercise 5, task 2: a nemesis schedule that makes a deliberately broken failover lose an
acknowledged write, where the course's random schedules find nothing.

- the store (course_lib.recovery.sim_group): the broken manager promotes the first live
  backup in sorted order, the fixed one the most up-to-date; the fixed one loses nothing
  under many random schedules, overlapping ones included; the rules a schedule relies on
  (a cut-off backup falls behind and catches up after the heal, a paused one misses
  nothing, a restarted one is recovering) hold;
- random schedules (one fault at a time) do not find the bug: a measured fact;
- the check accepts the solution (taken from the solution notebook) and rejects a
  library of wrong schedules, each with a message naming what went wrong.
"""

from __future__ import annotations

import json
import random

import nbformat
import pytest

from course_lib.check import SimFault
from course_lib.check.failover_runs import (LAYOUTS, FailoverLayout, KVClient, failover_run,
                                            random_campaign, random_schedule, validate_schedule)
from course_lib.grading import SOLUTIONS, CheckFailed, run_check
from course_lib.grading import ex5
from course_lib.grading.generate import exercise_from_solution
from course_lib.recovery.sim_group import SimReplicaGroup

NOTEBOOK = SOLUTIONS / "ex5_testing_framework.ipynb"


def _cell_function(notebook: dict, name: str):
    source = next(c.source for c in notebook["cells"] if c.cell_type == "code"
                  and c.source.startswith(f"def {name}("))
    namespace = {"SimFault": SimFault}
    exec(compile(source, str(NOTEBOOK), "exec"), namespace)
    return namespace[name]


@pytest.fixture(scope="module")
def solution():
    return _cell_function(nbformat.read(NOTEBOOK, as_version=4), "targeted_schedule")


def passes(schedule_fn) -> str:
    return run_check("2", ex5.fault_tolerance_testing, schedule_fn).raise_for_failure().message


def fails(schedule_fn, match: str) -> str:
    with pytest.raises(CheckFailed, match=match) as info:
        run_check("2", ex5.fault_tolerance_testing, schedule_fn).raise_for_failure()
    assert "Traceback" not in str(info.value)
    return str(info.value)


def cut_off(layout, victim, at=500.0, duration=1000.0) -> SimFault:
    others = tuple(n for n in layout.nodes if n != victim)
    return SimFault(at, "partition", ((victim,), others), duration)


TARGETED = [cut_off(LAYOUTS[0], "n2"), SimFault(1000, "crash", "n1", 600)]


# -- the check: the solution, the untouched stub ----------------------------------------------

def test_the_solution_passes_and_says_what_it_found(solution):
    message = passes(solution)
    assert "lost acknowledged writes on 5/5 seeds over 2 layouts" in message
    assert "random schedules on the same seeds: 0/5" in message
    assert "the fixed store stayed linearizable" in message


def test_the_untouched_stub_is_not_written_yet():
    exercise = nbformat.from_dict(exercise_from_solution(json.loads(NOTEBOOK.read_text("utf-8"))))
    stub = _cell_function(exercise, "targeted_schedule")
    result = run_check("2. Fault-tolerance testing", ex5.fault_tolerance_testing, stub)
    assert not result.passed and "not written yet" in result.message
    assert "which backup does the broken manager promote" in result.message


# -- the check: a library of wrong schedules -------------------------------------------------------

def _random(layout):
    return list(random_schedule(layout, 7))


def _crashes_one_at_a_time(layout):
    return [SimFault(300, "crash", layout.backups[0], 500), SimFault(1200, "crash", layout.primary, 600)]


def _wrong_order(layout):
    return [SimFault(500, "crash", layout.primary, 600), cut_off(layout, layout.backups[0], 1000, 1000)]


def _crash_long_after_the_heal(layout):
    return [cut_off(layout, layout.backups[0], 500, 500), SimFault(1300, "crash", layout.primary, 600)]


def _crash_every_node(layout):
    return [SimFault(100, "crash", n, 2800) for n in layout.nodes]


def _wrong_backup(layout):
    return [cut_off(layout, layout.backups[1]), SimFault(1000, "crash", layout.primary, 600)]


def _pause_instead_of_cut_off(layout):
    return [SimFault(300, "pause", layout.backups[0], 1000), SimFault(800, "crash", layout.primary, 1500)]


def _crash_the_victim_too(layout):
    return [SimFault(300, "crash", layout.backups[0], 1000), SimFault(800, "crash", layout.primary, 1500)]


def _no_primary_fault(layout):
    return [cut_off(layout, layout.backups[0])]


def _past_the_end(layout):
    return [cut_off(layout, layout.backups[0]), SimFault(2800, "crash", layout.primary, 600)]


def _unknown_node(layout):
    return [cut_off(layout, layout.backups[0]), SimFault(1000, "crash", "n4", 600)]


def _hard_coded_names(layout):
    return TARGETED


def _unknown_kind(layout):
    return [SimFault(500, "loss", 0.5, 1000), SimFault(1000, "crash", layout.primary, 600)]


def _partition_as_a_string(layout):
    return [SimFault(500, "partition", "n2", 1000), SimFault(1000, "crash", layout.primary, 600)]


def _not_replayable(layout):
    at = random.uniform(900, 1100)
    return [cut_off(layout, layout.backups[0]), SimFault(at, "crash", layout.primary, 600)]


def _empty(layout):
    return []


WRONG = [
    (_random, r"the broken store stayed linearizable under your schedule"),
    (_crashes_one_at_a_time, r"n2 was 0 acknowledged write\(s\) behind — it had caught up by "
                             r"t=\d+ ms, \d+ ms after the restart at t=800 ms"),
    (_wrong_order, r"when n1 was crashed at t=500 ms, n2 was 0 acknowledged write\(s\) behind"),
    (_crash_long_after_the_heal, r"it had caught up by t=\d+ ms, \d+ ms after the heal at t=1000 ms"),
    (_crash_every_node, r"leaves the fixed store only \d+ completed operations \(a fault-free run "
                        r"completes \d+\)"),
    (_wrong_backup, r"behind then: n3 by \d+ — not the replica the manager promoted"),
    (_pause_instead_of_cut_off, r"a paused replica misses nothing"),
    (_crash_the_victim_too, r"passed over n2, still recovering from a restart"),
    (_no_primary_fault, r"the primary n1 was never replaced"),
    (_past_the_end, r"ends at 3400 ms, after the faults' window of 3000 ms"),
    (_unknown_node, r"unknown node 'n4'; the replicas are n1, n2, n3"),
    (_hard_coded_names, r"replicas a, b, c with b primary.*unknown node 'n2' in a partition group"),
    (_unknown_kind, r"kind 'loss' is not used here; the kinds are crash, pause, partition, isolate"),
    (_partition_as_a_string, r"a partition's target is a tuple of node groups"),
    (_not_replayable, r"different schedule the second time"),
    (_empty, r"the schedule is empty"),
]


@pytest.mark.parametrize("schedule_fn, match", WRONG, ids=[f.__name__.strip("_") for f, _ in WRONG])
def test_a_wrong_schedule_is_rejected_naming_the_problem(schedule_fn, match):
    message = fails(schedule_fn, match)
    if "stayed linearizable" in message:
        assert "replay: failover_run(targeted_schedule(LAYOUTS[0]), seed=0" in message


def test_other_correct_schedules_pass_too():
    def isolate_then_crash(layout):
        return [SimFault(300, "isolate", layout.backups[0], 1000),
                SimFault(800, "crash", layout.primary, 1500)]

    def crash_right_after_the_heal(layout):      # one fault after the other, 0.5 ms apart
        return [cut_off(layout, layout.backups[0], 500, 500),
                SimFault(1000.5, "crash", layout.primary, 600)]

    for fn in (isolate_then_crash, crash_right_after_the_heal):
        assert "5/5 seeds" in passes(fn)


# -- random schedules do not find it ------------------------------------------------------

def test_random_schedules_do_not_find_the_bug_on_50_seeds():
    campaign = random_campaign(tuple(range(50)))
    assert campaign.found == () and campaign.undecided == ()
    assert sum(campaign.failovers) >= 40          # the faults did replace the primary, often
    assert not any(campaign.missing)
    assert campaign.text().startswith("random schedules: 0 of 50 seeds found the bug")


def test_random_schedules_on_the_second_layout_do_not_find_it_either():
    campaign = random_campaign(tuple(range(20)), LAYOUTS[1])
    assert campaign.found == () and sum(campaign.failovers) >= 15


# -- the store ---------------------------------------------------------------------------

def overlapping_schedule(layout: FailoverLayout, seed: int) -> list:
    """Faults of every kind at random times and lengths, overlapping freely (the nemesis
    skips those that cannot start: a second link fault, a fault on a faulted node)."""
    rng = random.Random(seed)
    nodes = sorted(layout.nodes)
    faults = []
    for _ in range(rng.randint(2, 8)):
        kind = rng.choice(("crash", "pause", "partition", "isolate", "crash", "isolate"))
        at = rng.uniform(0, layout.window_ms - 50)
        duration = rng.uniform(1, min(900, layout.window_ms - at))
        if kind == "partition":
            shuffled = rng.sample(nodes, len(nodes))
            k = rng.randint(1, len(nodes) - 1)
            target = (tuple(shuffled[:k]), tuple(shuffled[k:]))
        else:
            target = rng.choice(nodes + [layout.primary] * 2)
        faults.append(SimFault(round(at, 3), kind, target, round(duration, 3)))
    return faults


FIVE = FailoverLayout(("n1", "n2", "n3", "n4", "n5"), "n3")


def test_the_fixed_store_loses_nothing_under_many_random_schedules():
    layouts = (LAYOUTS[0], LAYOUTS[1], FIVE)
    failovers, broken_lost = 0, 0
    for seed in range(60):
        layout = layouts[seed % 3]
        schedule = overlapping_schedule(layout, seed)
        fixed = failover_run(schedule, seed=seed, layout=layout, promote="most_up_to_date")
        assert fixed.result.ok is True, f"seed {seed}: {schedule}: {fixed.diagnosis()}"
        assert fixed.lost_at_failover() == 0
        failovers += len(fixed.failovers)
        if seed % 3 == 0:
            broken_lost += failover_run(schedule, seed=seed, layout=layout).lost_write
    assert failovers >= 60
    assert broken_lost >= 1        # the same schedules are strong enough to catch the bug
    for seed in range(20):         # and the standard one-at-a-time schedules
        run = failover_run(random_schedule(LAYOUTS[0], seed), seed=seed, promote="most_up_to_date")
        assert run.result.ok is True


def test_the_targeted_schedule_loses_writes_only_with_the_broken_rule():
    broken = failover_run(TARGETED, seed=3)
    (f,) = broken.failovers
    assert f.old == "n1" and f.promoted == "n2" and f.lost > 0
    reports = {n: seq for n, _, seq in f.reports}
    assert reports["n2"] < reports["n3"]          # the manager was told, and ignored it
    crash = next(e for e in broken.fault_events if e.action == "crash")
    assert crash.position("n2").missing > 0 and crash.position("n3").missing == 0
    assert broken.result.ok is False
    fixed = failover_run(TARGETED, seed=3, promote="most_up_to_date")
    (g,) = fixed.failovers
    assert g.promoted == "n3" and g.lost == 0 and fixed.result.ok is True


def test_a_cut_off_backup_falls_behind_and_catches_up_within_a_few_ms_of_the_heal():
    run = failover_run([cut_off(LAYOUTS[0], "n2", 500, 500)], seed=1)
    behind = [lags["n2"] for t, lags in run.lag_samples if 900 <= t <= 1000]
    assert min(behind) > 50                                     # 400 ms of entries
    caught = next(t for t, lags in run.lag_samples if t >= 1000 and lags["n2"] == 0)
    assert caught - 1000 <= 10
    assert not run.failovers and run.result.ok is True


def _group_with_a_client(seed: int) -> SimReplicaGroup:
    group = SimReplicaGroup(seed=seed)
    group.sim.add(KVClient(0, 1, group, [], (0.0, 5.0), 1000.0))
    return group


def test_a_paused_backup_misses_nothing():
    group = _group_with_a_client(2)
    group.run_for(100)
    group.pause("n2")
    group.run_for(300)                 # the primary commits with n3 meanwhile
    before = {p.node: p for p in group.positions()}
    assert before["n2"].paused and before["n2"].missing > 10
    group.resume("n2")                 # no time passes: the queued messages are delivered
    after = {p.node: p for p in group.positions()}
    assert after["n2"].missing == 0 and after["n2"].last_seq >= before["n1"].last_seq - 3


def test_a_restarted_backup_is_recovering_until_it_caught_up():
    group = _group_with_a_client(4)
    group.run_for(50)
    group.crash("n2")
    group.run_for(200)
    group.restart("n2")
    assert group.hosts["n2"].recovering and group.positions()[1].missing > 5
    group.run_for(10)                  # it asked its primary at once (no need to wait for the manager)
    assert not group.hosts["n2"].recovering and group.positions()[1].missing == 0


def test_same_seed_same_run_and_another_seed_another():
    a, b = (failover_run(TARGETED, seed=5) for _ in range(2))
    assert a.history == b.history and a.digest == b.digest and a.failovers == b.failovers
    c = failover_run(TARGETED, seed=6)
    assert c.history != a.history


# -- bad input -------------------------------------------------------------------------------

@pytest.mark.parametrize("schedule, problem", [
    (SimFault(1, "crash", "n1", 1), "not one SimFault"),
    ("crash n1", "a list of SimFault"),
    ([("crash", "n1")], "is not a SimFault"),
    ([SimFault(0, "skew", ("n1", 2.0), 10)], "kind 'skew' is not used here"),
    ([SimFault(0, "isolate", "manager", 10)], "unknown node 'manager'"),
    ([SimFault(0, "partition", (("n1",),), 10)], "at least two groups"),
    ([SimFault(0, "partition", (("n1", "n2"), ("n2", "n3")), 10)], "in two partition groups"),
    ([SimFault(0, "partition", (("n1",), ()), 10)], "group is empty"),
    ([SimFault(0, "partition", ("n1", ("n2",)), 10)], "not a bare string"),
    ([SimFault(2999, "pause", "n1", 2)], "ends at 3001 ms"),
])
def test_validate_schedule_names_the_problem(schedule, problem):
    with pytest.raises(ValueError, match=problem):
        validate_schedule(schedule, LAYOUTS[0])


@pytest.mark.parametrize("kwargs, problem", [
    (dict(nodes=("n1", "n2")), "at least 3 distinct"),
    (dict(nodes=("n1", "n1", "n2")), "at least 3 distinct"),
    (dict(nodes=("manager", "n2", "n3")), "are taken"),
    (dict(primary="n9"), "not one of the nodes"),
    (dict(promote="random"), "promote must be one of"),
    (dict(detect_ms=0), "detect_ms must be a positive"),
])
def test_the_group_rejects_bad_arguments(kwargs, problem):
    with pytest.raises(ValueError, match=problem):
        SimReplicaGroup(**kwargs)


def test_a_fault_on_an_unknown_node_is_refused():
    group = SimReplicaGroup()
    with pytest.raises(ValueError, match="unknown node 'n7'"):
        group.crash("n7")
    with pytest.raises(ValueError, match="unknown node 'manager'"):
        group.partition(("manager",), ("n1", "n2", "n3"))
