"""A seeded discrete-event simulator for distributed protocols.

Virtual time in ms; a ``(time, seq)`` event heap; seeded random streams per purpose; a
network with per-link delay, loss, duplication, long reordering and (one-way) cuts;
crash / restart / pause / clock skew per node; and a trace of every event.  The same
seed and the same calls give the same trace (:meth:`Simulation.trace_digest`).

Protocols plug in as :class:`Process` objects; see ``course_lib.raft.SimCluster``.
"""

from .nemesis import Nemesis
from .network import InFlight, Network
from .process import Process
from .rand import RandomStreams
from .scheduler import Scheduler
from .simulation import Simulation
from .system import SimulatedSystem
from .trace import Trace, TraceEvent

__all__ = [
    "InFlight", "Nemesis", "Network", "Process", "RandomStreams", "Scheduler", "SimulatedSystem", "Simulation",
    "Trace", "TraceEvent",
]
