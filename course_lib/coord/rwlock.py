"""``DistributedReadWriteLock``: readers share, writers exclude everyone, in arrival order.

Layout: ``/NAMESPACE/rwlocks/NAME/<guid>__read__<seq>`` and ``...__write__<seq>`` in one
queue.  A reader waits for the nearest *writer* ahead of it; a writer waits for the
nearest entry of any kind ahead of it.  Because a reader that arrives after a waiting
writer queues behind that writer, a stream of readers cannot starve writers (the
chapter's check-then-act version lets them, and lets a reader and a writer in together).
Same queue as kazoo's ``ReadLock``/``WriteLock``; what it adds is what
``DistributedLock`` adds (fencing tokens, suspended/lost signals, wake-up counts).
"""

from __future__ import annotations

from typing import Optional

from .lock import DistributedLock
from .paths import check_name


class ReadLock(DistributedLock):
    _folder = "rwlocks"
    _kind = "read"
    _blocked_by = frozenset({"write"})


class WriteLock(DistributedLock):
    _folder = "rwlocks"
    _kind = "write"
    _blocked_by = frozenset({"read", "write"})


class DistributedReadWriteLock:
    """``rw = DistributedReadWriteLock(zk, "catalog")``; ``with rw.read_lock: ...`` /
    ``with rw.write_lock: ...``.  Each side is a lock object with ``acquire(timeout)``,
    ``release()``, ``held`` and ``fencing_token``; one object per thread or process."""

    def __init__(self, zk, name: str, identifier: str = "", namespace: Optional[str] = None,
                 op_timeout: float = 10.0):
        check_name(name, "lock name")
        self.name = name
        self.read_lock = ReadLock(zk, name, identifier, namespace, op_timeout=op_timeout)
        self.write_lock = WriteLock(zk, name, identifier, namespace, op_timeout=op_timeout)

    def acquire_read(self, timeout: Optional[float] = None) -> bool:
        return self.read_lock.acquire(timeout)

    def acquire_write(self, timeout: Optional[float] = None) -> bool:
        return self.write_lock.acquire(timeout)

    def release_read(self) -> None:
        self.read_lock.release()

    def release_write(self) -> None:
        self.write_lock.release()
