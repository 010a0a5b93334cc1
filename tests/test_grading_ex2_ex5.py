"""The checkers of exercise 5 accept the solutions and reject wrong implementations
with a message in the learner's terms (exercise 2's Raft lab: test_grading_ex2_mutants.py;
exercise 5's task 2, its wrong schedules included: test_grading_ex5_fault_tolerance.py).

The correct pieces come from the solution notebooks themselves (their code cells, check
cells left out), so these tests and the notebooks cannot drift apart; each wrong piece is
one deliberate bug on top of them.
"""

from __future__ import annotations

import random

import pytest

from course_lib.grading import CheckFailed, load_solution, run_check
from course_lib.grading import ex5


@pytest.fixture(scope="module")
def s5() -> dict:
    return load_solution("ex5_testing_framework")


def passes(title, check, *args, **kwargs) -> None:
    run_check(title, check, *args, **kwargs).raise_for_failure()


def fails(check, *args, match: str, **kwargs) -> str:
    with pytest.raises(CheckFailed, match=match) as info:
        run_check("task", check, *args, **kwargs).raise_for_failure()
    return str(info.value)


# -- exercise 5 ------------------------------------------------------------------------------

def test_ex5_solutions_pass(s5):
    passes("1", ex5.consistency_testing, s5["is_linearizable"], seeds=range(50))
    passes("2", ex5.fault_tolerance_testing, s5["targeted_schedule"], seeds=range(2))
    passes("3", ex5.performance_testing, s5["performance_summary"], s5["open_loop"], seeds=range(5))
    passes("4", ex5.stress_testing, s5["find_knee"])
    passes("5", ex5.fault_injection, s5["FaultInjector"], seeds=(1, 2))


def test_a_checker_that_ignores_real_time_is_rejected(s5):
    def any_order(history, initial=None):
        # drop real time: every operation is concurrent with every other
        from course_lib.check import Operation
        loose = [Operation(op.client_id, op.input, 0, op.output, None if op.ret is None else 10**6)
                 for op in history]
        return s5["is_linearizable"](loose, initial)
    fails(ex5.consistency_testing, any_order, match="expected False")


def _checker(*, strict_ties=False):
    """The worked solution's search, with one classic mistake that can be switched on."""
    from course_lib.check import precedes

    def is_linearizable(history, initial=None):
        ops = list(history)
        must = [i for i, op in enumerate(ops) if op.ret is not None]
        if strict_ties:           # a return at t and a call at t taken as concurrent
            before = [[j for j, o in enumerate(ops) if o.ret is not None and o.ret < op.call]
                      for op in ops]
        else:
            before = [[j for j, o in enumerate(ops) if precedes(o, op)] for op in ops]
        failed = set()

        def search(placed, value):
            if all(i in placed for i in must):
                return True
            if (placed, value) in failed:
                return False
            for i, op in enumerate(ops):
                if i in placed or any(j not in placed for j in before[i]):
                    continue
                kind, arg = op.input
                if kind == "write":
                    new = arg
                elif op.ret is not None and op.output != value:
                    continue
                else:
                    new = value
                if search(placed | {i}, new):
                    return True
            failed.add((placed, value))
            return False

        return search(frozenset(), initial)
    return is_linearizable


def test_the_checker_mutant_differs_from_the_solution_only_where_named(s5):
    passes("1", ex5.consistency_testing, _checker(), seeds=range(50))


def test_a_checker_that_treats_a_return_and_a_call_at_the_same_instant_as_concurrent_is_rejected(s5):
    fails(ex5.consistency_testing, _checker(strict_ties=True), match="write.2. is later")


def test_a_full_scan_for_the_knee_is_rejected(s5):
    def scan(service, slo, max_concurrency=256):
        return s5["find_knee"](service, slo, max_concurrency) if service.measure(1) and all(
            service.measure(c) for c in range(1, 40)) else 0
    fails(ex5.stress_testing, scan, match="ramp up")


def test_a_knee_that_is_far_off_is_rejected(s5):
    def double(service, slo, max_concurrency=256):
        return 2 * s5["find_knee"](service, slo, max_concurrency)
    fails(ex5.stress_testing, double, match="tolerance")


def test_a_fault_injector_using_the_global_random_is_rejected(s5):
    class Global(s5["FaultInjector"]):
        def plan(self, duration_ms):
            saved, self.seed = self.seed, random.randrange(10**9)
            try:
                return super().plan(duration_ms)
            finally:
                self.seed = saved
    fails(ex5.fault_injection, Global, match="different schedule the second time")


def test_a_fault_injector_that_leaves_nodes_down_is_rejected(s5):
    class Careless(s5["FaultInjector"]):
        def run(self, duration_ms):
            applied = super().run(duration_ms)
            self.cluster.crash(sorted(self.cluster.members)[0])
            return applied
    fails(ex5.fault_injection, Careless, match="still crashed or paused")
