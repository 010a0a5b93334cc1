"""Automatic recovery (section 3.2 of the chapter, 自動恢復).

- :class:`Replica` (``core``) -- primary-backup replication as a sans-I/O state machine:
  sequence numbers, acknowledged writes, catch-up by snapshot + log, epoch fencing.
- :class:`StateReplicator` (``replicator``) -- the chapter's class, working: replicas in
  one process on a seeded network, crashes included.
- :class:`RecoveryManager` (``manager``) -- the chapter's class, working: handlers per
  failure type, driven by a failure detector.
- ``write_backup`` / ``read_backup`` (``backup``) -- consistent snapshots to a file, with
  a checksum.
- the real runtime: ``python -m course_lib.recovery.server`` (one replica per process,
  hot standby by ZooKeeper election, fsync), :class:`ReplicaGroup` to run them and
  :class:`RecoveryClient` to use them;
- :class:`~.failover.FailoverModel` (``failover``) -- such a group sampled over time (roles,
  epochs, log positions, fail-overs, client writes): the model of the fail-over widget.

The chapter's versions, with their flaws, are in :mod:`course_lib.chapter.recovery`.
"""

from .backup import BackupCorrupted, read_backup, write_backup
from .core import Replica
from .log import ReplicaLog
from .manager import NODE_CRASHED, NODE_RECOVERED, RecoveryManager, RecoveryRecord
from .records import (Ack, CatchUp, Deposed, LogEntry, NotEnoughReplicas, NotPrimary, Ready, Refuse,
                      Replicate, ReplicationError, Role, Snapshot)
from .replicator import MemoryDisk, NotReplicated, PrimaryCrashed, StateReplicator


def __getattr__(name):
    # The process runtime pulls in kazoo and subprocess handling: imported on first use.
    if name in ("ReplicaGroup", "RecoveryClient"):
        from .client import RecoveryClient
        from .processes import ReplicaGroup

        return {"ReplicaGroup": ReplicaGroup, "RecoveryClient": RecoveryClient}[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "Ack", "BackupCorrupted", "CatchUp", "Deposed", "LogEntry", "MemoryDisk", "NODE_CRASHED",
    "NODE_RECOVERED", "NotEnoughReplicas", "NotPrimary", "NotReplicated", "PrimaryCrashed",
    "Ready", "RecoveryClient", "RecoveryManager", "RecoveryRecord", "Refuse", "Replica",
    "ReplicaGroup", "ReplicaLog", "Replicate", "ReplicationError", "Role", "Snapshot",
    "StateReplicator", "read_backup", "write_backup",
]
