"""Check 2, fault-tolerance testing: ``fault_tolerance_test(store, workload, seed)`` must
pass the correct stores and catch the known-bad ones, with crashed clients."""

from __future__ import annotations

from typing import Callable, Sequence

from ...check import (
    LossyKV,
    MemoryKV,
    MemoryRegister,
    Operation,
    StaleRegister,
    kv_workload,
    register_workload,
)
from .. import expect


def fault_tolerance_testing(fault_tolerance_test: Callable, seeds: Sequence[int] = range(5)) -> str:
    cases = [
        ("MemoryKV", lambda s: MemoryKV(), kv_workload, True),
        ("MemoryRegister", lambda s: MemoryRegister(), register_workload, True),
        ("StaleRegister(p=0.2)", lambda s: StaleRegister(p=0.2, seed=s), register_workload, False),
        ("LossyKV(p=0.05)", lambda s: LossyKV(p=0.05, seed=s), kv_workload, False),
    ]
    for name, make, workload, correct in cases:
        for seed in seeds:
            result = fault_tolerance_test(make(seed), workload(), seed)
            expect(isinstance(result, tuple) and len(result) == 2 and isinstance(result[0], bool)
                   and isinstance(result[1], list),
                   f"fault_tolerance_test must return (passed: bool, history: list); got {result!r:.200}")
            passed, history = result
            expect(all(isinstance(op, Operation) for op in history),
                   f"the history must be a list of Operation; got {history[:3]!r:.200}")
            expect(len(history) >= 100, f"{name}, seed {seed}: only {len(history)} operations — "
                                        f"run at least 100 to give faults a chance to show")
            unknown = sum(op.ret is None for op in history)
            expect(unknown > 0, f"{name}, seed {seed}: no operation has an unknown outcome — the "
                                f"nemesis must crash clients (unknown_rate > 0)")
            where = (f"{name}, seed {seed} (replay: fault_tolerance_test({name.split('(')[0]}(...), "
                     f"..., {seed}))")
            if correct:
                expect(passed, f"{where}: a correct store failed your test — a false alarm")
            else:
                expect(not passed, f"{where}: your test passed a known-bad store — it must catch it")
            again = fault_tolerance_test(make(seed), workload(), seed)
            expect(again[1] == history and again[0] == passed,
                   f"{where}: two runs with the same seed gave different histories or verdicts — "
                   f"draw everything from the seed")
    return (f"passed MemoryKV and MemoryRegister, caught StaleRegister and LossyKV on all "
            f"{len(seeds)} seeds each, with crashed clients, replayable from the seed")
