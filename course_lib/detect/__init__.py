"""Failure detectors (section 3.1 of the chapter, 故障檢測).

- :class:`FailureDetector` -- the chapter's fixed heartbeat timeout, made to work.
- :class:`PhiAccrualDetector` -- phi accrual (Hayashibara et al. 2004) with a normal,
  logistic (Akka) or exponential (Cassandra) interval model; O(1) per call.
- ``trace`` / ``tradeoff`` -- seeded heartbeat traces and the detection-time vs
  wrong-suspicion trade-off they give.
- ``SimulatedCluster`` / ``ProcessCluster`` -- heartbeat senders to watch live
  (simulated, or real processes over UDP on loopback), the models behind
  ``course_lib.viz.phi_widget``.

Every method takes ``now`` in seconds (default ``time.monotonic()``) so simulations
and tests inject time.  The chapter's flawed versions are in
``course_lib.chapter.detector``.
"""

from . import tails
from .cluster import HeartbeatCluster, NodeInfo, NodeStatus, PhiSample
from .phi import IntervalStats, PhiAccrualDetector
from .simulated import SimulatedCluster
from .timeout import FailureDetector
from .trace import HeartbeatTrace, generate_trace
from .tradeoff import TradeoffPoint, phi_tradeoff, timeout_tradeoff


def __getattr__(name):
    # ProcessCluster pulls in subprocess handling; imported on first use.
    if name == "ProcessCluster":
        from .processes import ProcessCluster

        return ProcessCluster
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "FailureDetector", "PhiAccrualDetector", "IntervalStats", "tails",
    "HeartbeatCluster", "NodeInfo", "NodeStatus", "PhiSample",
    "SimulatedCluster", "ProcessCluster",
    "HeartbeatTrace", "generate_trace", "TradeoffPoint", "phi_tradeoff", "timeout_tradeoff",
]
