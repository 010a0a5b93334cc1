"""Testing distributed systems: histories, linearizability checking, faults, Jepsen-style runs.

- :class:`Operation` — one client call in a history (``ret=None``: outcome unknown);
- :func:`check` — Wing & Gong / Lowe linearizability checker → :class:`CheckResult`;
- models :func:`register`, :func:`cas_register`, :func:`kv` and the :class:`Model` base;
- :func:`plot_history` — the history as a plotly timeline, failing operations highlighted;
- :func:`brute_force_linearizable` — the exponential reference the checker is tested against;
- :func:`simulate_history` and the stores — seeded histories of correct and known-bad stores;
- :class:`ProcessNemesis`, :func:`random_schedule` — kill -9 / SIGSTOP on real processes;
- :class:`SimNemesis`, :func:`random_sim_schedule` — scheduled faults in the simulator;
- :func:`run_workload` — concurrent clients → history → checker → :class:`RunReport`.
"""

from .brute import brute_force_linearizable, precedes
from .checker import CheckResult, Evidence, PartitionResult, check
from .history import Operation
from .models import UNKNOWN, KV, CasRegister, Model, Register, cas_register, kv, register
from .nemesis import Fault, FaultInterval, ProcessNemesis, random_schedule
from .sim_nemesis import SIM_FAULT_KINDS, SimFault, SimNemesis, random_sim_schedule
from .plot import plot_history
from .runner import OperationFailed, RunReport, percentile, run_workload
from .simulate import simulate_history
from .stores import LossyKV, MemoryKV, MemoryRegister, StaleRegister
from .workloads import Workload, cas_workload, kv_workload, register_workload
from .zk_reads import ExperimentResult, StaleRead, find_stale_reads, stale_read_experiment

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
