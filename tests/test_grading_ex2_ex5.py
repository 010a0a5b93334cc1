"""The checkers of exercises 2 and 5 accept the solutions and reject wrong implementations
with a message in the learner's terms.

The correct pieces come from the solution notebooks themselves (their code cells, check
cells left out), so these tests and the notebooks cannot drift apart; each wrong piece is
one deliberate bug on top of them.
"""

from __future__ import annotations

import random

import pytest

from course_lib.grading import CheckFailed, load_solution, run_check
from course_lib.grading import ex2, ex5
from course_lib.raft.errors import ConfChangeInProgress



@pytest.fixture(scope="module")
def s2() -> dict:
    return load_solution("ex2_consensus_protocol")


@pytest.fixture(scope="module")
def s5() -> dict:
    return load_solution("ex5_testing_framework")


def passes(title, check, *args, **kwargs) -> None:
    run_check(title, check, *args, **kwargs).raise_for_failure()


def fails(check, *args, match: str, **kwargs) -> str:
    with pytest.raises(CheckFailed, match=match) as info:
        run_check("task", check, *args, **kwargs).raise_for_failure()
    return str(info.value)


# -- exercise 2 ------------------------------------------------------------------------------

def test_ex2_solutions_pass_with_few_seeds(s2):
    passes("1", ex2.consensus_algorithm, s2["PaxosAcceptor"], s2["choose_value"], seeds=range(10))
    passes("2", ex2.log_replication, s2["append_entries"], seeds=range(10))
    passes("3", ex2.state_machine_replication, s2["KVStateMachine"], seeds=range(10))
    passes("4", ex2.membership_management, s2["Membership"], seeds=range(5))
    passes("5", ex2.failure_recovery, s2["RaftVoter"], seeds=range(10))


def test_an_acceptor_that_accepts_lower_ballots_is_rejected(s2):
    class Lax(s2["PaxosAcceptor"]):
        def on_accept(self, ballot, value):
            self.accepted_ballot, self.accepted_value = max(ballot, self.accepted_ballot), value
            return True
    fails(ex2.consensus_algorithm, Lax, s2["choose_value"], match="on_accept.*must return False")


def test_ignoring_p2c_is_rejected_and_the_campaign_alone_finds_disagreement(s2):
    def mine(promises, my_value):
        return my_value
    fails(ex2.consensus_algorithm, s2["PaxosAcceptor"], mine, match="P2c")
    broken = [problems for seed in range(30)
              if (problems := ex2.PaxosHarness(s2["PaxosAcceptor"], mine, seed).run())]
    assert broken and "agreement broken" in broken[0][0]


def test_append_entries_that_always_truncates_is_rejected(s2):
    def truncating(log, prev_index, prev_term, entries):
        if prev_index > 0 and (len(log) < prev_index or log[prev_index - 1].term != prev_term):
            return False, log
        return True, list(log[:prev_index]) + list(entries)
    fails(ex2.log_replication, truncating, match="must not truncate")
    problems = [p for seed in range(60) if (p := ex2._replication_run(truncating, seed))]
    assert problems and any("Leader Completeness" in p for p in problems)


def test_append_entries_that_modifies_its_input_is_rejected(s2):
    def in_place(log, prev_index, prev_term, entries):
        ok, new = s2["append_entries"](log, prev_index, prev_term, entries)
        log[:] = new
        return ok, log
    fails(ex2.log_replication, in_place, match="must not modify the log")


def test_a_state_machine_that_applies_a_retry_twice_is_rejected(s2):
    class NoSessions(s2["KVStateMachine"]):
        def apply(self, cmd):
            self.sessions.pop(cmd.client_id, None)
            return super().apply(cmd)
    fails(ex2.state_machine_replication, NoSessions, match="must not have been applied twice")


def test_membership_that_allows_two_pending_changes_is_rejected(s2):
    class Hasty(s2["Membership"]):
        def propose(self, op, node):
            self.pending = False
            return super().propose(op, node)
    fails(ex2.membership_management, Hasty, match="must raise ConfChangeInProgress")


def test_membership_with_a_minority_quorum_is_rejected(s2):
    class Half(s2["Membership"]):
        def is_quorum(self, nodes):
            return 2 * len(set(nodes) & self.voters) >= len(self.voters)
    fails(ex2.membership_management, Half, match="not a majority")
    with pytest.raises(ConfChangeInProgress):
        m = s2["Membership"]({"n1"})
        m.propose("add", "n2")
        m.propose("add", "n3")


def test_a_voter_that_forgets_its_vote_after_a_crash_is_rejected(s2):
    class Forgetful(s2["RaftVoter"]):
        def __init__(self, node_id, storage):
            super().__init__(node_id, storage)
            self.voted_for = None
    fails(ex2.failure_recovery, Forgetful, match="already voted for n3 in term 3")
    problems = [p for seed in range(40) if (p := ex2.ElectionHarness(Forgetful, seed).run())]
    assert problems and "voted twice" in problems[0][0]


def test_a_voter_that_replies_before_persisting_is_rejected(s2):
    class Lazy(s2["RaftVoter"]):
        def handle_request_vote(self, term, candidate, last_log_index, last_log_term):
            saved = self.storage.save
            self.storage.save = lambda state: None
            try:
                return super().handle_request_vote(term, candidate, last_log_index, last_log_term)
            finally:
                self.storage.save = saved
    fails(ex2.failure_recovery, Lazy, match="persist the new term before you reply")


# -- exercise 5 ------------------------------------------------------------------------------

def test_ex5_solutions_pass(s5):
    passes("1", ex5.consistency_testing, s5["is_linearizable"], seeds=range(50))
    passes("2", ex5.fault_tolerance_testing, s5["fault_tolerance_test"], seeds=range(2))
    passes("3", ex5.performance_testing, s5["performance_summary"], seeds=range(5))
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


def test_a_fault_tolerance_test_without_a_nemesis_is_rejected(s5):
    from course_lib.check import check, simulate_history

    def calm(store, workload, seed):
        history = simulate_history(store, workload, clients=5, ops=200, seed=seed)
        return check(workload.model, history).ok is True, history
    fails(ex5.fault_tolerance_testing, calm, match="nemesis must crash clients")


def test_a_fault_tolerance_test_that_never_fails_is_rejected(s5):
    def lenient(store, workload, seed):
        return True, s5["fault_tolerance_test"](store, workload, seed)[1]
    fails(ex5.fault_tolerance_testing, lenient, match="passed a known-bad store")


def test_nearest_rank_percentiles_are_rejected(s5):
    def nearest(history, duration):
        s = s5["performance_summary"](history, duration)
        xs = sorted(op.ret - op.call for op in history if op.ret is not None)
        return ex5.PerfSummary(xs[len(xs) // 2], s.p90, s.p99, s.max, s.throughput,
                               s.completed, s.unknown)
    fails(ex5.performance_testing, nearest, match="p50 should be")


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
