"""A real Apache ZooKeeper ensemble for the course, and ``connect()`` to it.

    python -m course_lib.zk start [--servers N]   # returns once a quorum serves
    python -m course_lib.zk status                # each server's mode
    python -m course_lib.zk kill 2                # SIGKILL server 2's JVM
    python -m course_lib.zk restart 2
    python -m course_lib.zk stop

    from course_lib.zk import connect
    zk = connect()                                # a started kazoo client
"""

from .client import connect, parse_hosts, reachable, resolve_hosts
from .ensemble import Ensemble, ServerStatus, default_dir, default_port, free_base_port
from .errors import ZooKeeperError, ZooKeeperNotInstalled, ZooKeeperUnavailable
from .fourletter import four_letter_word, parse_mntr, server_mode

__all__ = [
    "Ensemble", "ServerStatus", "connect", "default_dir", "default_port", "four_letter_word",
    "free_base_port",
    "parse_hosts", "parse_mntr", "reachable", "resolve_hosts", "server_mode",
    "ZooKeeperError", "ZooKeeperNotInstalled", "ZooKeeperUnavailable",
]
