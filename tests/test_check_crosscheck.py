"""Cross-check: on thousands of small random histories the checker agrees with brute force.

Histories come from a seeded simulation of a correct store (linearizable), then most of
them are perturbed (an output changed, an interval moved) so both verdicts are common.
Times are small integers so equal timestamps — the tricky case — happen often, and some
operations have unknown outcomes.
"""

import random

import pytest

from course_lib.check import (
    MemoryKV, MemoryRegister, Operation, Workload, brute_force_linearizable, cas_register,
    check, kv, precedes, register, simulate_history,
)

VALUES = (0, 1, 2)


def _register_inputs(rng, client, seq):
    return ("read", None) if rng.random() < 0.5 else ("write", rng.choice(VALUES))


def _cas_inputs(rng, client, seq):
    x = rng.random()
    if x < 0.35:
        return ("read", None)
    if x < 0.7:
        return ("cas", (rng.choice((None,) + VALUES), rng.choice(VALUES)))
    return ("write", rng.choice(VALUES))


def _kv_inputs(rng, client, seq):
    key = rng.choice("xy")
    x = rng.random()
    if x < 0.45:
        return ("get", key)
    if x < 0.75:
        return ("append", key, rng.choice("ab"))
    return ("put", key, rng.choice("ab"))


def _perturb(rng, history, model_name):
    ops = list(history)
    i = rng.randrange(len(ops))
    op = ops[i]
    if rng.random() < 0.5 and op.ret is not None:
        if model_name == "kv":
            output = rng.choice(["", "a", "b", "ab", "ba", "aa"]) if op.input[0] == "get" else None
        elif op.input[0] == "cas":
            output = not op.output
        elif op.input[0] == "read":
            output = rng.choice((None,) + VALUES)
        else:
            output = None
        ops[i] = Operation(op.client_id, op.input, op.call, output, op.ret)
    else:
        call = max(0, op.call + rng.randint(-3, 3))
        ret = None if op.ret is None else call + rng.randint(0, 3)
        ops[i] = Operation(op.client_id, op.input, call, op.output, ret)
    return ops


CASES = {
    "register": (register, MemoryRegister, _register_inputs),
    "cas_register": (cas_register, MemoryRegister, _cas_inputs),
    "kv": (kv, MemoryKV, _kv_inputs),
    "kv_unpartitioned": (lambda: kv(partitioned=False), MemoryKV, _kv_inputs),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_checker_agrees_with_brute_force(name):
    make_model, make_store, inputs = CASES[name]
    model = make_model()
    rng = random.Random(f"crosscheck-{name}")
    verdicts = {True: 0, False: 0}
    for trial in range(2500):
        history = simulate_history(
            make_store(), Workload(name, model, inputs), clients=rng.randint(1, 4),
            ops=rng.randint(1, 7), seed=rng.randrange(2**32),
            unknown_rate=rng.choice((0.0, 0.2)), length=(0, 3), gap=(0, 2),
            integer_times=True)
        if rng.random() < 0.6:
            for _ in range(rng.randint(1, 3)):
                history = _perturb(rng, history, "kv" if name.startswith("kv") else name)
        expected = brute_force_linearizable(model, history)
        result = check(model, history)
        assert result.ok is expected, (trial, history, result.explain())
        verdicts[expected] += 1
        if result.ok is False:
            _assert_evidence_is_sound(model, result)
        else:
            _assert_linearization_is_valid(model, history, result)
    assert min(verdicts.values()) > 400, verdicts


def _assert_evidence_is_sound(model, result):
    """The prefix is a valid linearization of its operations and the stuck ones are rejected."""
    for evidence in result.evidence:
        state = model.init()
        for op in evidence.prefix:
            ok, state = model.step(state, op.input, op.output if op.completed else _unknown())
            assert ok
        assert state == evidence.state
        placed = list(evidence.prefix)
        for a_index, a in enumerate(placed):
            for b in placed[:a_index]:
                assert not precedes(a, b)
        assert evidence.stuck
        assert any(op.completed for op in evidence.stuck)
        for op in evidence.stuck:
            ok, _ = model.step(state, op.input, op.output if op.completed else _unknown())
            assert not ok


def _assert_linearization_is_valid(model, history, result):
    """Every completed operation appears once, in real-time order, accepted by the model."""
    for key, order in result.linearization.items():
        state = model.init()
        for op in order:
            ok, state = model.step(state, op.input, op.output if op.completed else _unknown())
            assert ok
        for a_index, a in enumerate(order):
            for b in order[:a_index]:
                assert not precedes(a, b)
    placed = [op for order in result.linearization.values() for op in order]
    assert len({id(op) for op in placed}) == len(placed)
    assert {id(op) for op in history if op.completed} <= {id(op) for op in placed}


def _unknown():
    from course_lib.check import UNKNOWN
    return UNKNOWN


def test_brute_force_reference_on_a_known_case():
    w = Operation(0, ("write", 1), 0, None, 1)
    r_old = Operation(1, ("read", None), 2, None, 3)
    assert brute_force_linearizable(register(), [w, r_old]) is False
    assert brute_force_linearizable(register(), [w, Operation(1, ("read", None), 1, None, 3)]) is False
    assert brute_force_linearizable(register(), [w, Operation(1, ("read", None), 0, None, 3)]) is True
    assert precedes(Operation(0, ("read",), 1, None, 1), Operation(1, ("read",), 1, None, 1)) is False
