"""Coordination recipes on kazoo, against the course's real ZooKeeper ensemble.

- :class:`ZKCoordinator`: service registry + discovery, configuration with
  compare-and-set, event notification (the chapter's class, working).
- :class:`DistributedLock`: fair lock, one wake-up per release, fencing tokens.
- :class:`DistributedReadWriteLock`: shared readers, exclusive writers, arrival order.
- :class:`LeaderElection`: candidates, current leader, callback on winning, resignation.
- :class:`FencedStorage`: a storage service that refuses writes with stale tokens.

The chapter's own versions, with their flaws, are in :mod:`course_lib.chapter.coord`.
"""

from .base import CoordinationError, CoordinationTimeout, SessionLost
from .coordinator import ConfigConflict, ServiceInstance, Subscription, ZKCoordinator
from .election import LeaderElection
from .fencing import FencedStorage, FencedStorageClient, StaleToken
from .lock import DistributedLock, LockLost, ReleaseFailed
from .rwlock import DistributedReadWriteLock, ReadLock, WriteLock

__all__ = [
    "ConfigConflict", "CoordinationError", "CoordinationTimeout", "DistributedLock",
    "DistributedReadWriteLock", "FencedStorage", "FencedStorageClient", "LeaderElection",
    "LockLost", "ReadLock", "ReleaseFailed", "ServiceInstance", "SessionLost", "StaleToken",
    "Subscription", "WriteLock", "ZKCoordinator",
]
