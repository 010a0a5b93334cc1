"""The linearizability checker on hand-made histories, per model, with unknown outcomes."""

import time

import pytest

from course_lib.check import (
    UNKNOWN, CheckResult, LossyKV, MemoryKV, MemoryRegister, Model, Operation,
    StaleRegister, cas_register, cas_workload, check, kv, kv_workload, register,
    register_workload, simulate_history,
)

O = Operation


def W(client, v, call, ret):
    return O(client, ("write", v), call, None, ret)


def R(client, v, call, ret):
    return O(client, ("read", None), call, v, ret)


def CAS(client, expected, new, ok, call, ret):
    return O(client, ("cas", (expected, new)), call, ok, ret)


# ---------------------------------------------------------------- register

def test_empty_history_is_linearizable():
    assert check(register(), []).ok is True


def test_sequential_write_then_read_is_linearizable():
    assert check(register(), [W(0, 1, 0, 1), R(1, 1, 2, 3)]).ok is True


def test_read_of_initial_value_after_a_completed_write_is_not_linearizable():
    result = check(register(), [W(0, 1, 0, 1), R(1, None, 2, 3)])
    assert result.ok is False
    (evidence,) = result.evidence
    assert [op.input for op in evidence.prefix] == [("write", 1)]
    assert evidence.state == 1
    assert [op.output for op in evidence.stuck] == [None]


def test_read_concurrent_with_a_write_may_see_either_value():
    for seen in (None, 1):
        assert check(register(), [W(0, 1, 0, 10), R(1, seen, 2, 3)]).ok is True


def test_register_initial_value_is_configurable():
    assert check(register(initial=0), [R(0, 0, 0, 1)]).ok is True
    assert check(register(initial=0), [R(0, None, 0, 1)]).ok is False


def test_reads_must_not_go_back_in_time():
    """r1 sees the new value and returns before r2 starts: r2 must see it too."""
    history = [W(0, 1, 0, 10), R(1, 1, 1, 2), R(2, None, 3, 4)]
    result = check(register(), history)
    assert result.ok is False
    assert result.failing_operations == (history[2],)


def test_two_writers_and_readers_agreeing_on_an_order():
    history = [W(0, 1, 0, 5), W(1, 2, 0, 5), R(2, 2, 6, 7), R(3, 2, 8, 9)]
    assert check(register(), history).ok is True
    history = [W(0, 1, 0, 5), W(1, 2, 0, 5), R(2, 2, 6, 7), R(3, 1, 8, 9)]
    assert check(register(), history).ok is False


def test_concurrent_reads_that_disagree_on_the_order_of_two_writes():
    """Two writes overlap; reader A sees 1 then 2, reader B sees 2 then 1: impossible."""
    history = [
        W(0, 1, 0, 10), W(1, 2, 0, 10),
        R(2, 1, 1, 2), R(2, 2, 3, 4),
        R(3, 2, 1, 2), R(3, 1, 3, 4),
    ]
    assert check(register(), history).ok is False


def test_history_order_in_the_input_does_not_matter():
    history = [R(1, 1, 2, 3), W(0, 1, 0, 1)]
    assert check(register(), history).ok is True


def test_linearization_is_a_valid_order_when_ok():
    history = [W(0, 1, 0, 10), R(1, None, 1, 2), R(2, 1, 3, 4)]
    result = check(register(), history)
    assert result.ok is True
    order = result.linearization[None]
    assert [op.input[0] for op in order] == ["read", "write", "read"]


# ------------------------------------------------------- equal timestamps

def test_return_at_the_same_instant_as_a_call_happens_before_it():
    """w returns at 1 and r is called at 1: w precedes r, so r cannot see the old value."""
    assert check(register(), [W(0, 1, 0, 1), R(1, None, 1, 2)]).ok is False
    assert check(register(), [W(0, 1, 0, 1), R(1, 1, 1, 2)]).ok is True


def test_zero_length_operations_at_one_instant_are_concurrent():
    assert check(register(), [W(0, 1, 1, 1), R(1, None, 1, 1)]).ok is True
    assert check(register(), [W(0, 1, 1, 1), R(1, 1, 1, 1)]).ok is True


def test_zero_length_operation_is_ordered_against_others_at_its_instant():
    """a = [0, 5], b = [5, 5], c = [5, 9]: a precedes b precedes c."""
    history = [W(0, 1, 0, 5), W(1, 2, 5, 5), R(2, 1, 5, 9)]
    assert check(register(), history).ok is False
    history = [W(0, 1, 0, 5), W(1, 2, 5, 5), R(2, 2, 5, 9)]
    assert check(register(), history).ok is True


# ------------------------------------------------------- unknown outcomes

def test_unknown_write_may_have_taken_effect():
    assert check(register(), [O(0, ("write", 1), 0), R(1, 1, 5, 6)]).ok is True


def test_unknown_write_may_not_have_taken_effect():
    assert check(register(), [O(0, ("write", 1), 0), R(1, None, 5, 6)]).ok is True


def test_unknown_write_takes_effect_at_most_once_and_not_before_its_call():
    assert check(register(), [R(1, 1, 0, 1), O(0, ("write", 1), 2)]).ok is False
    history = [O(0, ("write", 1), 0), R(1, 1, 5, 6), W(2, 2, 7, 8), R(1, 1, 9, 10)]
    assert check(register(), history).ok is False


def test_unknown_write_can_take_effect_late():
    """The write never returned, so it may land after a later read and before another."""
    history = [O(0, ("write", 1), 0), R(1, None, 5, 6), R(1, 1, 7, 8)]
    assert check(register(), history).ok is True


def test_history_of_only_unknown_operations_is_linearizable():
    assert check(register(), [O(0, ("write", 1), 0), O(1, ("read", None), 1)]).ok is True


def test_unknown_read_constrains_nothing():
    history = [W(0, 1, 0, 1), O(1, ("read", None), 2), R(2, 1, 3, 4)]
    assert check(register(), history).ok is True


def test_unknown_operations_do_not_rescue_an_impossible_read():
    history = [O(0, ("write", 1), 0), W(1, 2, 1, 2), R(2, 3, 3, 4)]
    result = check(register(), history)
    assert result.ok is False
    assert history[2] in result.failing_operations


# ------------------------------------------------------- cas register

def test_cas_succeeds_on_the_expected_value():
    history = [W(0, 1, 0, 1), CAS(1, 1, 2, True, 2, 3), R(2, 2, 4, 5)]
    assert check(cas_register(), history).ok is True


def test_cas_initial_value_is_none():
    assert check(cas_register(), [CAS(0, None, 1, True, 0, 1), R(0, 1, 2, 3)]).ok is True
    assert check(cas_register(), [CAS(0, 0, 1, True, 0, 1)]).ok is False


def test_cas_failure_is_consistent_only_with_a_different_value():
    assert check(cas_register(), [W(0, 1, 0, 1), CAS(1, 1, 2, False, 2, 3)]).ok is False
    assert check(cas_register(), [W(0, 1, 0, 1), CAS(1, 5, 2, False, 2, 3)]).ok is True


def test_two_concurrent_cas_on_the_same_value_cannot_both_succeed():
    history = [W(0, 0, 0, 1), CAS(1, 0, 1, True, 2, 5), CAS(2, 0, 2, True, 2, 5)]
    assert check(cas_register(), history).ok is False
    history = [W(0, 0, 0, 1), CAS(1, 0, 1, True, 2, 5), CAS(2, 0, 2, False, 2, 5)]
    assert check(cas_register(), history).ok is True


def test_unknown_cas_may_or_may_not_have_swapped():
    for seen in (0, 1):
        history = [W(0, 0, 0, 1), O(1, ("cas", (0, 1)), 2), R(2, seen, 5, 6)]
        assert check(cas_register(), history).ok is True
    history = [W(0, 0, 0, 1), O(1, ("cas", (0, 1)), 2), R(2, 2, 5, 6)]
    assert check(cas_register(), history).ok is False


def test_cas_chain_against_lost_update():
    """Two increments by cas from 0: both succeed only if one saw the other's result."""
    history = [CAS(0, None, 0, True, 0, 1),
               CAS(1, 0, 1, True, 2, 4), CAS(2, 0, 1, True, 3, 5), R(0, 1, 6, 7)]
    assert check(cas_register(), history).ok is False


# ------------------------------------------------------- kv

def GET(client, k, v, call, ret):
    return O(client, ("get", k), call, v, ret)


def PUT(client, k, v, call, ret):
    return O(client, ("put", k, v), call, None, ret)


def APP(client, k, v, call, ret):
    return O(client, ("append", k, v), call, None, ret)


def test_kv_get_of_a_missing_key_is_the_empty_string():
    assert check(kv(), [GET(0, "x", "", 0, 1)]).ok is True
    assert check(kv(), [GET(0, "x", None, 0, 1)]).ok is False


def test_kv_put_append_get():
    history = [PUT(0, "x", "a", 0, 1), APP(1, "x", "b", 2, 3), GET(2, "x", "ab", 4, 5)]
    assert check(kv(), history).ok is True
    history[-1] = GET(2, "x", "ba", 4, 5)
    assert check(kv(), history).ok is False


def test_kv_concurrent_appends_may_land_in_either_order():
    for seen in ("ab", "ba"):
        history = [APP(0, "x", "a", 0, 5), APP(1, "x", "b", 0, 5), GET(2, "x", seen, 6, 7)]
        assert check(kv(), history).ok is True
    history = [APP(0, "x", "a", 0, 5), APP(1, "x", "b", 0, 5), GET(2, "x", "a", 6, 7)]
    assert check(kv(), history).ok is False


def test_kv_is_checked_key_by_key():
    history = [PUT(0, "x", "1", 0, 1), PUT(0, "y", "2", 2, 3),
               GET(1, "x", "1", 4, 5), GET(1, "y", "", 6, 7)]
    result = check(kv(), history)
    assert result.ok is False
    assert [p.key for p in result.partitions] == ["x", "y"]
    assert [p.ok for p in result.partitions] == [True, False]
    (evidence,) = result.evidence
    assert evidence.key == "y"
    assert evidence.state == (("y", "2"),)
    assert result.failing_operations == (history[3],)


def test_kv_unpartitioned_gives_the_same_verdict():
    history = [PUT(0, "x", "1", 0, 4), PUT(1, "y", "2", 0, 4),
               GET(2, "x", "1", 5, 6), GET(2, "y", "2", 7, 8)]
    assert check(kv(partitioned=False), history).ok is True
    assert len(check(kv(partitioned=False), history).partitions) == 1
    history[-1] = GET(2, "y", "", 7, 8)
    assert check(kv(partitioned=False), history).ok is False


def test_kv_unknown_put_may_land_late():
    history = [O(0, ("put", "x", "a"), 0), GET(1, "x", "", 2, 3), GET(1, "x", "a", 4, 5)]
    assert check(kv(), history).ok is True
    history.append(GET(1, "x", "", 6, 7))
    assert check(kv(), history).ok is False


def test_kv_unknown_append_applies_at_most_once():
    history = [PUT(0, "x", "", 0, 1), O(1, ("append", "x", "a"), 2), GET(2, "x", "aa", 5, 6)]
    assert check(kv(), history).ok is False


# ------------------------------------------------------- a learner's own model

class Counter(Model):
    """A counter: ("inc",) returns the new value, ("get",) returns it."""

    def init(self):
        return 0

    def apply(self, state, input):
        if input[0] == "inc":
            return state + 1, state + 1
        return state, state


def test_a_model_written_with_apply_only():
    history = [O(0, ("inc",), 0, 1, 5), O(1, ("inc",), 0, 2, 5), O(2, ("get",), 6, 2, 7)]
    assert check(Counter(), history).ok is True
    history = [O(0, ("inc",), 0, 1, 5), O(1, ("inc",), 0, 1, 5)]
    assert check(Counter(), history).ok is False
    assert check(Counter(), [O(0, ("inc",), 0), O(1, ("get",), 5, 1, 6)]).ok is True


def test_default_step_treats_unknown_as_matching():
    assert Counter().step(0, ("inc",), UNKNOWN) == (True, 1)
    assert Counter().step(0, ("inc",), 5) == (False, 0)


def test_unhashable_model_state_is_reported():
    class ListModel(Counter):
        def init(self):
            return []

    with pytest.raises(ValueError, match="hashable"):
        check(ListModel(), [O(0, ("get",), 0, [], 1)])


# ------------------------------------------------------- errors and results

def test_items_that_are_not_operations_are_rejected():
    with pytest.raises(ValueError, match=r"history\[1\].*not an Operation"):
        check(register(), [W(0, 1, 0, 1), ("write", 1)])


def test_unknown_operation_kinds_are_rejected():
    with pytest.raises(ValueError, match=r"history\[0\].*unknown operation kind 'delete'"):
        check(kv(), [O(0, ("delete", "x"), 0, None, 1)])
    with pytest.raises(ValueError, match="unknown operation kind 'cas'"):
        check(register(), [CAS(0, 1, 2, True, 0, 1)])
    with pytest.raises(ValueError, match="tuple"):
        check(register(), [O(0, "read", 0, None, 1)])
    with pytest.raises(ValueError, match="cas"):
        check(cas_register(), [O(0, ("cas", 1), 0, True, 1)])
    with pytest.raises(ValueError, match="append takes a str"):
        check(kv(), [APP(0, "x", 1, 0, 1)])


def test_return_before_call_is_rejected():
    with pytest.raises(ValueError, match="before"):
        Operation(0, ("read", None), 5, 1, 4)
    bad = W(0, 1, 0, 1)
    object.__setattr__(bad, "ret", -1)
    with pytest.raises(ValueError, match="before its call"):
        check(register(), [bad])


def test_non_numeric_times_are_rejected():
    with pytest.raises(ValueError, match="finite number"):
        check(register(), [O(0, ("read", None), float("nan"), None, 1)])


def test_result_has_no_truth_value():
    result = check(register(), [])
    with pytest.raises(TypeError, match="ok is True"):
        bool(result)
    assert isinstance(result, CheckResult)


def test_explain_names_the_failing_operations():
    result = check(register(), [W(0, 1, 0, 1), R(7, 3, 2, 3)])
    text = result.explain()
    assert "NOT linearizable" in text and "client 7" in text and "r → 3" in text


def _hard_appends(key, n=40):
    """n concurrent appends of distinct values to one key and a read nobody can explain:
    every order gives a distinct state, so the search must rule out n! / ... orders."""
    history = [APP(c, key, f"{c};", 0, 100) for c in range(n)]
    return history + [GET(99, key, "nope", 0, 100)]


def test_timeout_gives_an_undecided_result():
    started = time.monotonic()
    result = check(kv(), _hard_appends("a"), timeout=0.3)
    assert time.monotonic() - started < 2.0
    assert result.ok is None
    assert result.partitions[0].ok is None
    assert result.partitions[0].method == "timeout"
    assert result.partitions[0].explored > 0
    assert "undecided" in result.explain()
    for bad in (-1, float("nan"), "1", True):
        with pytest.raises(ValueError, match="timeout"):
            check(register(), [], timeout=bad)


def test_forty_concurrent_writes_and_an_impossible_read_need_no_search():
    """The same shape on a register of distinct values: the zone conditions decide it."""
    history = [W(c, c, 0, 100) for c in range(40)] + [R(99, -1, 0, 100)]
    started = time.monotonic()
    result = check(register(), history, timeout=5)
    assert time.monotonic() - started < 1.0
    assert result.ok is False
    assert result.partitions[0].method == "unique values"
    assert result.evidence[0].failed is history[-1]


def test_a_failing_partition_decides_even_if_another_times_out():
    slow = _hard_appends("a")
    result = check(kv(), slow + [PUT(0, "b", "1", 0, 1), GET(0, "b", "2", 2, 3)], timeout=0.3,
                   all_partitions=True)
    assert result.ok is False
    assert {p.key: p.ok for p in result.partitions} == {"a": None, "b": False}
    assert {p.key: p.method for p in result.partitions} == {"a": "timeout",
                                                          "b": "unique values"}


def test_the_check_stops_at_the_first_failing_partition():
    """Without all_partitions, a hard partition is left unchecked once another fails."""
    history = _hard_appends("a") + [APP(0, "b", "1", 0, 1), GET(0, "b", "2", 2, 3)]
    started = time.monotonic()
    result = check(kv(), history, timeout=30)
    assert time.monotonic() - started < 2.0
    assert result.ok is False
    assert {p.key: (p.ok, p.method) for p in result.partitions} == {
        "a": (None, "not checked"), "b": (False, "search")}
    assert "not checked" in result.explain()


# ------------------------------------------------------- known-bad implementations

def test_a_correct_register_simulation_is_linearizable():
    for seed in range(5):
        history = simulate_history(MemoryRegister(), register_workload(), clients=5,
                                   ops=300, seed=seed, unknown_rate=0.05)
        assert check(register(), history).ok is True


def test_a_correct_kv_simulation_is_linearizable():
    for seed in range(5):
        history = simulate_history(MemoryKV(), kv_workload(keys=3), clients=8, ops=500,
                                   seed=seed, unknown_rate=0.05)
        assert check(kv(), history).ok is True


def test_a_correct_cas_simulation_is_linearizable():
    for seed in range(5):
        history = simulate_history(MemoryRegister(), cas_workload(), clients=5, ops=300,
                                   seed=seed, unknown_rate=0.05)
        assert check(cas_register(), history).ok is True


@pytest.mark.parametrize("seed", range(5))
def test_a_register_returning_stale_values_is_caught(seed):
    store = StaleRegister(p=0.05, seed=seed)
    history = simulate_history(store, register_workload(), clients=5, ops=300, seed=seed)
    result = check(register(), history)
    assert result.ok is False
    assert all(op.input[0] == "read" for op in result.failing_operations)


@pytest.mark.parametrize("seed", range(5))
def test_a_kv_store_losing_a_write_is_caught(seed):
    store = LossyKV(p=0.02, seed=seed)
    history = simulate_history(store, kv_workload(keys=3), clients=5, ops=500, seed=seed)
    assert store.lost
    result = check(kv(), history)
    assert result.ok is False
    assert result.evidence[0].key in {input[1] for input in store.lost}


def test_a_partition_function_must_return_key_operation_pairs():
    class Porcupine(Counter):
        def partition(self, history):
            return [list(history)]

    with pytest.raises(ValueError, match=r"\(key, operations\) pairs"):
        check(Porcupine(), [O(0, ("inc",), 0, 1, 5), O(1, ("inc",), 0, 2, 5)])
