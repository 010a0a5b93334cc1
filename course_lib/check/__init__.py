"""Testing distributed systems: histories, linearizability checking, faults, Jepsen-style runs.

The pure checker imports with the standard library alone (DESIGN.md):

- :class:`Operation` — one client call in a history (``ret=None``: outcome unknown);
- :func:`check` — P-compositional Wing & Gong / Lowe checker → :class:`CheckResult`;
- models :func:`register`, :func:`cas_register`, :func:`kv` and the :class:`Model` base;
- :func:`brute_force_linearizable` — the exponential reference the checker is tested against;
- :func:`simulate_history`, the stores and workloads — seeded histories of correct and
  known-bad stores.

Loaded on first use, because they need plotly, ZooKeeper or real processes:

- :func:`plot_history` (plotly) — the history as a timeline, failing operations highlighted;
- :class:`ProcessNemesis`, :func:`random_schedule` — kill -9 / SIGSTOP on real processes;
- :class:`SimNemesis`, :func:`random_sim_schedule` — scheduled faults in the simulator
  (they share the fault records of the process nemesis);
- :func:`run_workload` (plotly) — concurrent clients → history → checker → :class:`RunReport`;
- :func:`stale_read_experiment` (ZooKeeper, plotly) — stale reads from a paused follower.

``from course_lib.check import plot_history`` works as before; it just imports plotly then.
"""

from importlib import import_module
from typing import Any

from .brute import brute_force_linearizable, precedes
from .checker import CheckResult, Evidence, PartitionResult, check
from .history import Operation
from .models import UNKNOWN, KV, CasRegister, Model, Register, cas_register, kv, register
from .simulate import simulate_history
from .stores import LossyKV, MemoryKV, MemoryRegister, StaleRegister
from .workloads import Workload, cas_workload, kv_workload, register_workload

_LAZY = {
    "plot_history": "plot",
    "Fault": "nemesis", "FaultInterval": "nemesis", "ProcessNemesis": "nemesis",
    "random_schedule": "nemesis",
    "SIM_FAULT_KINDS": "sim_nemesis", "SimFault": "sim_nemesis", "SimNemesis": "sim_nemesis",
    "random_sim_schedule": "sim_nemesis",
    "OperationFailed": "runner", "RunReport": "runner", "percentile": "runner",
    "run_workload": "runner",
    "ExperimentResult": "zk_reads", "StaleRead": "zk_reads", "find_stale_reads": "zk_reads",
    "stale_read_experiment": "zk_reads",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "Operation", "check", "CheckResult", "PartitionResult", "Evidence",
    "Model", "Register", "CasRegister", "KV", "register", "cas_register", "kv", "UNKNOWN",
    "plot_history", "brute_force_linearizable", "precedes", "simulate_history",
    "MemoryRegister", "MemoryKV", "StaleRegister", "LossyKV",
    "Workload", "register_workload", "cas_workload", "kv_workload",
    "Fault", "FaultInterval", "ProcessNemesis", "random_schedule",
    "SIM_FAULT_KINDS", "SimFault", "SimNemesis", "random_sim_schedule",
    "OperationFailed", "RunReport", "percentile", "run_workload",
    "ExperimentResult", "StaleRead", "find_stale_reads", "stale_read_experiment",
]
