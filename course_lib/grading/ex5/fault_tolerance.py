"""Check 2, fault-tolerance testing: ``targeted_schedule(layout) -> list[SimFault]``, a
nemesis schedule that makes a deliberately broken failover lose an acknowledged write.

The store is :class:`course_lib.recovery.sim_group.SimReplicaGroup`: a primary and two
backups, writes acknowledged by a majority, a failover manager that promotes — the bug —
the first live backup in sorted order instead of the most up-to-date one.  The course's
standard random schedules (one fault at a time) almost never find it; a schedule that
leaves the backup the manager will promote behind *at the moment of the failover* finds
it every time.  The check, over seeded runs of
:func:`course_lib.check.failover_runs.failover_run` on two layouts (other node names,
another primary, so that the schedule is reasoned out, not hard-coded):

- the schedule is valid (kinds, targets, times within the window) and replayable (the
  same layout gives the same schedule);
- under it the **fixed** store stays linearizable and still completes at least half of
  what a fault-free run completes — a schedule that stops everything proves nothing;
- under it the **broken** store loses an acknowledged write (the checker says "not
  linearizable") on every seed; when it does not, the message says what the replicas'
  positions were at the failover, from what the store recorded.
"""

from __future__ import annotations

from typing import Callable, Sequence

from ...check.failover_runs import (LAYOUTS, FailoverLayout, FailoverRun, failover_run,
                                    random_schedule, validate_schedule)
from .. import expect

_MIN_SHARE = 0.5          # of a fault-free run's completed operations


def _replay(layout_index: int, seed: int, promote: str = "lowest_id") -> str:
    return (f"replay: failover_run(targeted_schedule(LAYOUTS[{layout_index}]), seed={seed}, "
            f"layout=LAYOUTS[{layout_index}], promote={promote!r}), from "
            f"course_lib.check.failover_runs")


def _schedule_for(targeted_schedule: Callable, layout: FailoverLayout) -> tuple:
    schedule = targeted_schedule(layout)
    expect(schedule is not None, "targeted_schedule returned None: return the list of SimFault")
    try:
        checked = validate_schedule(schedule, layout)
    except ValueError as problem:
        expect(False, f"your schedule for {layout}: {problem}")
    again = targeted_schedule(layout)
    try:
        same = validate_schedule(again, layout) == checked
    except ValueError:
        same = False
    expect(same, f"targeted_schedule returned a different schedule the second time for {layout}: "
                 f"a test must replay — same layout, same schedule (no unseeded randomness)")
    return checked


def fault_tolerance_testing(targeted_schedule: Callable, seeds: Sequence[int] = range(5)) -> str:
    lost, completed, baselines, random_found = [], [], [], 0
    layouts_used = set()
    for i, seed in enumerate(seeds):
        index = i % len(LAYOUTS)
        layout = LAYOUTS[index]
        layouts_used.add(index)
        schedule = _schedule_for(targeted_schedule, layout)
        where = f"seed {seed}, {layout}"

        fixed = failover_run(schedule, seed=seed, layout=layout, promote="most_up_to_date")
        calm = failover_run((), seed=seed, layout=layout, promote="most_up_to_date")
        expect(fixed.completed >= _MIN_SHARE * calm.completed,
               f"{where}: your schedule leaves the fixed store only {fixed.completed} completed "
               f"operations (a fault-free run completes {calm.completed}): a test that stops "
               f"everything proves nothing — leave a majority of the replicas working most of "
               f"the time ({_replay(index, seed, 'most_up_to_date')})")
        expect(fixed.result.ok is True,
               f"{where}: the fixed store was not linearizable under your schedule "
               f"({fixed.diagnosis()}) — that is a bug in the course, not in your schedule: "
               f"please report the schedule {list(schedule)}")

        broken = failover_run(schedule, seed=seed, layout=layout, promote="lowest_id")
        expect(broken.result.ok is not None,
               f"{where}: the checker could not decide within its time limit — make the run "
               f"simpler (fewer, longer faults) ({_replay(index, seed)})")
        expect(broken.lost_write,
               f"{where}: the broken store stayed linearizable under your schedule — "
               f"{_why_not(broken)} ({_replay(index, seed)})")
        lost.append(broken.lost_at_failover())
        completed.append(fixed.completed)
        baselines.append(calm.completed)
        random_found += failover_run(random_schedule(layout, seed), seed=seed, layout=layout,
                                     promote="lowest_id").lost_write
    index = 0
    layout = LAYOUTS[index]
    twice = [failover_run(_schedule_for(targeted_schedule, layout), seed=seeds[0], layout=layout)
             for _ in range(2)]
    expect(twice[0].history == twice[1].history and twice[0].digest == twice[1].digest,
           f"seed {seeds[0]}: two runs of your schedule gave different histories — the run must "
           f"be replayable from its seed")
    n = len(seeds)
    return (f"your schedule lost acknowledged writes on {n}/{n} seeds over {len(layouts_used)} "
            f"layouts (the broken manager promoted a backup lacking {min(lost)}–{max(lost)} of "
            f"them); random schedules on the same seeds: {random_found}/{n}; the fixed store "
            f"stayed linearizable under it, completing ≥ {min(completed)} operations per seed "
            f"(fault-free: ≥ {min(baselines)}); same seed, same history")


def _why_not(run: FailoverRun) -> str:
    text = run.diagnosis()
    if not run.failovers:
        return text
    return (f"{text}. The broken manager loses writes only when the backup it promotes is "
            f"behind at that moment")
