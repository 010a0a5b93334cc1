"""Checks of exercise 5, "Testing framework" (開發測試框架).

The learner writes the five parts of a small Jepsen-style framework; each check runs them
on seeded inputs whose right answer is known, and every failure names the seed.

1. :func:`consistency_testing` — ``is_linearizable(history)`` for a read/write register,
   by search: hand-made cases, then cross-checked against the course's checker
   (:func:`course_lib.check.check`) on hundreds of random small histories.
2. :func:`fault_tolerance_testing` — ``targeted_schedule(layout)``: a schedule of
   :class:`~course_lib.check.SimFault` s under which the broken failover of
   :class:`~course_lib.recovery.sim_group.SimReplicaGroup` (it promotes the first live
   backup, not the most up-to-date) loses an acknowledged write, which random schedules
   of one fault at a time do not find, while the fixed store stays linearizable and
   available.
3. :func:`performance_testing` — ``performance_summary(history, duration)``: exact latency
   percentiles and throughput of recorded runs; then ``open_loop(service, rate_per_s,
   duration_ms, seed)``: an open-loop load generator on :class:`StallingService` (a
   seeded service that freezes once) that keeps its Poisson schedule through the freeze
   and measures from the scheduled time, so it does not hide the freeze the way
   :func:`closed_loop` does (coordinated omission).
4. :func:`stress_testing` — ``find_knee(service, slo_p99_ms)`` on :class:`SimulatedService`
   (a closed-loop queue with a known capacity): the highest concurrency meeting the SLO,
   within a tolerance of the true knee, found by a ramp rather than a full scan.
5. :func:`fault_injection` — a seeded ``FaultInjector`` against
   :class:`course_lib.raft.SimCluster`: crashes, partitions and pauses; the same seed
   replays the same trace digest, and the faults really cause leader changes.

Modules, one per check: :mod:`.consistency`, :mod:`.fault_tolerance`, :mod:`.performance`,
:mod:`.stress`, :mod:`.injection`.
"""

from .consistency import consistency_testing
from .fault_tolerance import fault_tolerance_testing
from .injection import fault_injection
from .performance import PerfSummary, performance_testing
from .stress import SimulatedService, stress_testing

__all__ = [
    "PerfSummary", "SimulatedService", "consistency_testing", "fault_injection",
    "fault_tolerance_testing", "performance_testing", "stress_testing",
]
