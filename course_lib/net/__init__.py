"""The real runtime for the Raft core: one OS process per node, asyncio over TCP.

The *same* sans-I/O :class:`course_lib.raft.RaftNode` the simulator drives, hosted by a
real driver (DESIGN.md: "two drivers host the same core").  Modules, one job each:

- ``codec``    length-prefixed frames of JSON (a whitelist of message dataclasses)
- ``wal``      ``WALStorage``: append-only WAL with CRC-32 records, group commit, fsync
               before send, torn-tail truncation, atomic snapshots
- ``node``     ``python -m course_lib.net.node``: ``NetNode``, a ``RaftDriver`` on asyncio
- ``client``   ``NetClient``: blocking put/get/append with a session, one per thread
- ``cluster``  ``ProcessCluster``: SimCluster's method names over real processes
- ``bench``    committed writes/s of a fresh cluster (``python -m course_lib.net bench``)
- ``__main__`` the CLI: ``python -m course_lib.net start --nodes 3 | status | kill n1 | add n4 | ...``

Standard library only.
"""

from .client import NetClient
from .cluster import ProcessCluster
from .codec import FrameError
from .wal import CorruptDataDir, WALStorage

__all__ = ["CorruptDataDir", "FrameError", "NetClient", "ProcessCluster", "WALStorage"]
