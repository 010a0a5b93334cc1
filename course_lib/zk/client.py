"""``connect()``: a started kazoo client for the course's ZooKeeper.

Where it connects, first match wins: the ``hosts`` argument, ``$ZK_HOSTS``, the
course's local ensemble (``Ensemble.default()``), started if it is not running.

It never hangs: if nothing listens at any address it fails at once, and if no session
is established within ``connect_timeout`` seconds it fails then, both with
``ZooKeeperUnavailable`` saying what to run.
"""

from __future__ import annotations

import logging
import os
import socket
import time

from kazoo.client import KazooClient
from kazoo.handlers.threading import KazooTimeoutError

from .ensemble import Ensemble
from .errors import ZooKeeperUnavailable

START_HINT = ("Start the course's ensemble with `python -m course_lib.zk start` "
              "(`make lab` does it for you), or set ZK_HOSTS to a running ensemble.")


def parse_hosts(hosts: str) -> list[tuple[str, int]]:
    """``"h1:p1,h2:p2/chroot"`` → ``[("h1", p1), ("h2", p2)]``; ``ValueError`` if malformed."""
    if not isinstance(hosts, str) or not hosts.strip():
        raise ValueError(f"hosts must be a non-empty 'host:port,...' string, not {hosts!r}")
    addresses = []
    for part in hosts.split("/", 1)[0].split(","):
        host, sep, port = part.strip().rpartition(":")
        if not sep:
            host, port = part.strip(), "2181"
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"bad ZooKeeper address {part.strip()!r} in {hosts!r}: expected host:port")
        addresses.append((host, int(port)))
    return addresses


def reachable(hosts: str, timeout: float = 1.0) -> list[tuple[str, int]]:
    """The addresses of ``hosts`` where something accepts a TCP connection."""
    found = []
    for address in parse_hosts(hosts):
        try:
            socket.create_connection(address, timeout=timeout).close()
            found.append(address)
        except OSError:
            pass
    return found


def resolve_hosts(hosts: str | None = None, start: bool = True) -> str:
    """The connection string ``connect()`` uses (see the module docstring)."""
    if hosts is not None:
        parse_hosts(hosts)
        return hosts
    if os.environ.get("ZK_HOSTS"):
        return os.environ["ZK_HOSTS"]
    ensemble = Ensemble.default()
    if start and not ensemble.is_running():
        ensemble.start()
    return ensemble.hosts


def _quiet_kazoo_warnings() -> None:
    """kazoo logs every dropped connection as a warning; with no logging configured,
    Python prints those in red under notebook cells.  Unless the user configured the
    ``kazoo`` logger, keep them out (state changes reach listeners either way)."""
    logger = logging.getLogger("kazoo")
    if not logger.handlers:
        logger.addHandler(logging.NullHandler())
        logger.propagate = False


def connect(hosts: str | None = None, *, timeout: float = 4.0, connect_timeout: float = 8.0,
            start: bool = True, **kazoo_options) -> KazooClient:
    """A started ``KazooClient`` with a ``timeout``-second session.

    ``start=False`` does not start the local ensemble when it is down.  Extra keyword
    arguments go to ``KazooClient``.  Call ``client.stop(); client.close()`` when done.
    """
    if not isinstance(timeout, (int, float)) or not 1 <= timeout <= 30:
        raise ValueError(f"timeout (the session timeout) must be 1 to 30 seconds, not {timeout!r}")
    if not isinstance(connect_timeout, (int, float)) or not 0 < connect_timeout <= 60:
        raise ValueError(f"connect_timeout must be a number of seconds in (0, 60], not {connect_timeout!r}")
    hosts = resolve_hosts(hosts, start)
    began = time.monotonic()
    if not reachable(hosts, timeout=min(1.0, connect_timeout)):
        raise ZooKeeperUnavailable(f"nothing is listening at {hosts}. {START_HINT}")
    _quiet_kazoo_warnings()
    kazoo_options.setdefault("connection_retry", {"max_tries": -1, "delay": 0.1, "max_delay": 1.0})
    client = KazooClient(hosts=hosts, timeout=timeout, **kazoo_options)
    try:
        client.start(timeout=max(0.5, connect_timeout - (time.monotonic() - began)))
    except KazooTimeoutError:
        client.stop()
        client.close()
        raise ZooKeeperUnavailable(
            f"could not open a ZooKeeper session at {hosts} within {connect_timeout:.0f} s: "
            f"the servers answer but none serves (no quorum?). Check with "
            f"`python -m course_lib.zk status`. {START_HINT}") from None
    return client
