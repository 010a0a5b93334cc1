"""The checker's fast paths against brute force and against its own search (issue 13).

- the unique-values path (zones) on registers and put/get KV partitions, forced on and
  off (a model whose ``register_view`` is None always goes to the search);
- unknown-outcome operations: read-only ones and unobserved writes are dropped;
- evidence as data: prefix ids, the operation that cannot be placed, the state before it;
- the pure checker imports with the standard library alone.

Times are small integers so equal timestamps happen often; every history is seeded.
"""

import random
import subprocess
import sys

import pytest

from course_lib.check import (
    KV, UNKNOWN, MemoryKV, MemoryRegister, Operation, Register, StaleRegister, Workload,
    brute_force_linearizable, check, kv, precedes, register, register_workload,
    simulate_history,
)
from course_lib.check.zones import unique_writes, zone_order


class SearchRegister(Register):
    """The same register without its register view: always decided by the search."""

    def register_view(self, input):
        return None


class SearchKV(KV):
    def register_view(self, input):
        return None


def _unique_register_inputs(rng, client, seq):
    return ("read", None) if rng.random() < 0.5 else ("write", seq * 10 + client)


def _unique_kv_inputs(rng, client, seq):
    key = rng.choice("xy")
    return ("get", key) if rng.random() < 0.5 else ("put", key, f"{client}.{seq}")


def _perturb(rng, ops, values):
    i = rng.randrange(len(ops))
    op = ops[i]
    if rng.random() < 0.5 and op.ret is not None and op.input[0] in ("read", "get"):
        ops[i] = Operation(op.client_id, op.input, op.call, rng.choice(values), op.ret)
    else:
        call = max(0, op.call + rng.randint(-3, 3))
        ret = None if op.ret is None else call + rng.randint(0, 3)
        ops[i] = Operation(op.client_id, op.input, call, op.output, ret)


def _random_history(rng, store, name, model, inputs, max_ops):
    history = simulate_history(
        store, Workload(name, model, inputs), clients=rng.randint(1, 4),
        ops=rng.randint(1, max_ops), seed=rng.randrange(2**32),
        unknown_rate=rng.choice((0.0, 0.2, 0.4)), length=(0, 3), gap=(0, 2),
        integer_times=True)
    if rng.random() < 0.8:
        written = [op.input[-1] for op in history if op.input[0] in ("write", "put")]
        values = written + [None, "", -1, "nobody"]
        for _ in range(rng.randint(1, 3)):
            _perturb(rng, history, values)
    return history


def _methods(result):
    return {p.method for p in result.partitions}


UNIQUE_CASES = {
    "register": (register, SearchRegister, MemoryRegister, _unique_register_inputs),
    "kv_put_get": (kv, SearchKV, MemoryKV, _unique_kv_inputs),
}


@pytest.mark.parametrize("name", sorted(UNIQUE_CASES))
def test_unique_values_path_agrees_with_brute_force_and_the_search(name):
    make_model, make_search_model, make_store, inputs = UNIQUE_CASES[name]
    model, search_model = make_model(), make_search_model()
    rng = random.Random(f"unique-{name}")
    verdicts = {True: 0, False: 0}
    unique = 0
    for trial in range(2500):
        history = _random_history(rng, make_store(), name, model, inputs, 7)
        expected = brute_force_linearizable(model, history)
        fast = check(model, history, all_partitions=True)
        slow = check(search_model, history, all_partitions=True)
        assert fast.ok is expected, (trial, history, fast.explain())
        assert slow.ok is expected, (trial, history, slow.explain())
        assert _methods(slow) <= {"search"}
        unique += "unique values" in _methods(fast)
        verdicts[expected] += 1
        for result in (fast, slow):
            if result.ok is False:
                assert_evidence_is_sound(model, history, result)
            else:
                assert_linearization_is_valid(model, history, result)
    assert min(verdicts.values()) > 500, verdicts
    assert unique > 1500, unique


def test_unique_values_path_agrees_with_the_search_on_longer_histories():
    """Up to 60 operations, 2–6 clients, stale reads and unknown outcomes: too long for
    brute force, so the two exact deciders check each other."""
    rng = random.Random("unique-vs-search")
    verdicts = {True: 0, False: 0}
    for trial in range(300):
        seed = rng.randrange(2**32)
        store = StaleRegister(p=rng.choice((0.05, 0.2)), seed=seed) \
            if rng.random() < 0.5 else MemoryRegister()
        history = simulate_history(store, register_workload(), clients=rng.randint(2, 6),
                                   ops=rng.randint(10, 60), seed=seed,
                                   unknown_rate=rng.choice((0.0, 0.1)), length=(0, 6),
                                   gap=(0, 3), integer_times=True)
        fast = check(register(), history)
        slow = check(SearchRegister(), history, timeout=30)
        assert fast.partitions[0].method == "unique values"
        assert fast.ok is slow.ok, (trial, seed, fast.explain(), slow.explain())
        verdicts[fast.ok] += 1
        if fast.ok is False:
            assert_evidence_is_sound(register(), history, fast)
            assert_evidence_is_sound(register(), history, slow)
    assert min(verdicts.values()) > 60, verdicts


def test_duplicate_or_initial_values_go_to_the_search():
    w = lambda c, v, t: Operation(c, ("write", v), t, None, t + 1)  # noqa: E731
    twice = [w(0, 1, 0), w(1, 1, 2), Operation(2, ("read", None), 4, 1, 5)]
    assert check(register(), twice).partitions[0].method == "search"
    initial = [w(0, None, 0), Operation(1, ("read", None), 2, None, 3)]
    assert check(register(), initial).partitions[0].method == "search"
    unhashable = [w(0, [1], 0), Operation(1, ("read", None), 2, [1], 3)]
    assert check(SearchRegister(), [unhashable[1]]).ok is False
    assert unique_writes([("write", [1])], None) is None
    appends = [Operation(0, ("append", "x", "a"), 0, None, 1), Operation(1, ("get", "x"), 2, "a", 3)]
    assert check(kv(), appends).partitions[0].method == "search"
    assert check(kv(partitioned=False), [appends[1]]).partitions[0].method == "search"


def test_a_register_subclass_with_its_own_step_gets_no_shortcut():
    class Sticky(Register):
        """Keeps the first value written: a different object, same inputs."""

        def step(self, state, input, output):
            if input[0] == "write":
                return True, input[1] if state is None else state
            return output is UNKNOWN or output == state, state

    history = [Operation(0, ("write", 1), 0, None, 1), Operation(0, ("write", 2), 2, None, 3),
               Operation(1, ("read", None), 4, 1, 5)]
    result = check(Sticky(), history)
    assert result.ok is True and result.partitions[0].method == "search"
    assert check(register(), history).ok is False


def test_zone_conditions_by_name():
    """One history per way to fail, each decided without search."""
    W = lambda c, v, a, b: Operation(c, ("write", v), a, None, b)  # noqa: E731
    R = lambda c, v, a, b: Operation(c, ("read", None), a, v, b)  # noqa: E731
    cases = {
        "a value nobody wrote": ([R(0, 7, 0, 1)], False),
        "a read before its write": ([R(0, 1, 0, 1), W(1, 1, 2, 3)], False),
        "two forward zones overlap": (
            [W(0, 1, 0, 10), W(1, 2, 0, 10), R(2, 1, 1, 2), R(2, 2, 3, 4),
             R(3, 2, 1, 2), R(3, 1, 5, 6)], False),
        "a backward zone inside a forward one": (
            [W(0, 1, 0, 1), R(1, 1, 8, 9), W(2, 2, 3, 6), R(3, 2, 4, 5)], False),
        "a backward zone next to a forward one": (
            [W(0, 1, 0, 1), R(1, 1, 4, 9), W(2, 2, 3, 6), R(3, 2, 4, 5)], True),
        "the initial value read late": ([W(0, 1, 0, 10), R(1, None, 8, 9)], True),
        "the initial value read after a write": ([W(0, 1, 0, 1), R(1, None, 2, 3)], False),
    }
    for name, (history, expected) in cases.items():
        result = check(register(), history)
        assert result.partitions[0].method == "unique values", name
        assert result.ok is expected, name
        assert brute_force_linearizable(register(), history) is expected, name


def test_an_unread_unknown_write_never_took_effect_and_a_read_one_did():
    w_unknown = Operation(0, ("write", 5), 0)
    w = Operation(1, ("write", 1), 1, None, 2)
    r1 = Operation(2, ("read", None), 3, 1, 4)
    for model in (register(), SearchRegister()):
        result = check(model, [w_unknown, w, r1])
        assert result.ok is True
        assert w_unknown not in result.linearization[None]
        r5 = Operation(3, ("read", None), 5, 5, 6)
        result = check(model, [w_unknown, w, r1, r5])
        assert result.ok is True
        assert list(result.linearization[None]) == [w, r1, w_unknown, r5]


def test_unobserved_is_what_the_models_say():
    reads = [(("read", None), 1), (("write", 2), None)]
    assert register().unobserved([("write", 1), ("write", 2), ("write", 3)], reads) == \
        [False, True, True]
    cas = [(("cas", (0, 1)), True)]
    assert Register().unobserved([("write", 3)], cas) == [False]
    gets = [(("get", "x"), "a;b;"), (("get", "y"), "c;")]
    assert kv().unobserved([("put", "x", "a;"), ("append", "x", "b;"), ("append", "x", "c;"),
                            ("put", "z", "a;")], gets) == [False, False, True, True]


def test_a_model_whose_unobserved_hook_is_malformed_is_reported():
    class Broken(Register):
        def unobserved(self, unknown, completed):
            return [True]

    history = [Operation(0, ("write", 1), 0), Operation(1, ("write", 2), 0)]
    with pytest.raises(ValueError, match="one bool per unknown"):
        check(Broken(), history)


def test_all_partitions_must_be_a_bool():
    with pytest.raises(ValueError, match="all_partitions"):
        check(register(), [], all_partitions="yes")


def test_evidence_carries_ids_the_failed_operation_and_the_state_before_it():
    history = [Operation(9, ("get", "y"), 20, "", 21),
               Operation(0, ("put", "x", "1"), 0, None, 1),
               Operation(0, ("append", "y", "a"), 2, None, 3),
               Operation(1, ("get", "y"), 4, "b", 5),
               Operation(1, ("get", "x"), 6, "1", 7)]
    result = check(kv(), history, all_partitions=True)
    (evidence,) = result.evidence
    assert evidence.key == "y"
    assert evidence.prefix_ids == (2,)
    assert evidence.failed is history[3] and evidence.failed_id == 3
    assert evidence.state == (("y", "a"),)
    assert evidence.stuck == (history[3],)
    assert "cannot be placed next" in evidence.describe() and "'b'" in evidence.describe()


def test_checker_never_gives_up_on_registers_with_many_operations_in_flight():
    """20 and 50 concurrent operations on one register, linearizable and not: decided."""
    for clients in (20, 50):
        history = simulate_history(MemoryRegister(), register_workload(), clients=clients,
                                   ops=1000, seed=clients, gap=(0, 0.3))
        assert check(register(), history, timeout=60).ok is True
        stale = simulate_history(StaleRegister(p=0.01, seed=clients), register_workload(),
                                 clients=clients, ops=1000, seed=clients, gap=(0, 0.3))
        result = check(register(), stale, timeout=60)
        assert result.ok is False
        assert_evidence_is_sound(register(), stale, result)


def test_zone_order_is_none_exactly_when_the_cut_history_fails():
    """The cut used for evidence: the prefix before it passes, the one after fails."""
    history = simulate_history(StaleRegister(p=0.1, seed=3), register_workload(), clients=4,
                               ops=80, seed=3)
    result = check(register(), history)
    assert result.ok is False
    evidence = result.evidence[0]
    before = [op for op in history if op.call < evidence.failed.ret]
    assert evidence.failed.input[0] == "read"
    assert check(SearchRegister(), [op if op.ret is None or op.ret < evidence.failed.ret
                                    else Operation(op.client_id, op.input, op.call)
                                    for op in before]).ok is True
    assert check(SearchRegister(), [op if op.ret is None or op.ret <= evidence.failed.ret
                                    else Operation(op.client_id, op.input, op.call)
                                    for op in before]).ok is False
    views = [("write", 1), ("read", 1)]
    assert zone_order(views, [True, True], [0, 2], [1, 3], {1: 0}, None) == [0, 1]


def test_the_pure_checker_and_raft_import_with_the_standard_library_alone():
    code = ("import sys, course_lib.check, course_lib.check.checker, course_lib.raft\n"
            "heavy = sorted({m.split('.')[0] for m in sys.modules} & "
            "{'plotly', 'numpy', 'kazoo', 'ipywidgets', 'pandas'})\n"
            "print(','.join(heavy))\n"
            "from course_lib.check import plot_history\n"
            "print('plotly' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split("\n")
    assert out[0] == "", f"imported: {out[0]}"
    assert out[1] == "True"       # the lazy names still work


# ------------------------------------------------------------ shared soundness checks

def _has(ops, op):
    return any(x is op for x in ops)


def _out(op):
    return op.output if op.completed else UNKNOWN


def assert_evidence_is_sound(model, history, result):
    """The prefix is a valid order ending in ``state``; ``failed`` is completed, unplaced,
    rejected in ``state``, the first unplaced operation to return; ids point into the
    history; every stuck operation is allowed next by real time and rejected."""
    for evidence in result.evidence:
        state = model.init()
        for op in evidence.prefix:
            ok, state = model.step(state, op.input, _out(op))
            assert ok
        assert state == evidence.state
        placed = list(evidence.prefix)
        for a_index, a in enumerate(placed):
            for b in placed[:a_index]:
                assert not precedes(a, b)
        assert all(history[i] is op for i, op in zip(evidence.prefix_ids, placed, strict=True))
        failed = evidence.failed
        assert history[evidence.failed_id] is failed
        assert failed.completed and not _has(placed, failed) and _has(evidence.stuck, failed)
        assert not model.step(state, failed.input, failed.output)[0]
        partition = [op for p in result.partitions if p.key == evidence.key
                     for op in p.operations]
        unplaced = [op for op in partition if op.completed and not _has(placed, op)]
        assert failed.ret == min(op.ret for op in unplaced)
        for op in evidence.stuck:
            assert not _has(placed, op)
            assert not precedes(failed, op)
            assert not model.step(state, op.input, _out(op))[0]


def assert_linearization_is_valid(model, history, result):
    for order in result.linearization.values():
        state = model.init()
        for op in order:
            ok, state = model.step(state, op.input, _out(op))
            assert ok
        for a_index, a in enumerate(order):
            for b in order[:a_index]:
                assert not precedes(a, b)
    placed = [op for order in result.linearization.values() for op in order]
    assert len({id(op) for op in placed}) == len(placed)
    assert {id(op) for op in history if op.completed} <= {id(op) for op in placed}
