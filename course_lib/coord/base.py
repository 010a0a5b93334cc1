"""What every recipe shares: the client, the namespace, bounded retries.

Every ZooKeeper call of the recipes goes through :meth:`Recipe.call`: a call that hits
``ConnectionLoss`` (a server died, the client is reconnecting) is retried, and after
``op_timeout`` seconds :class:`CoordinationTimeout` is raised — never an endless wait.
(kazoo's own synchronous calls wait for ever while no server answers: the recipes use
its ``*_async`` calls with a timeout.)  A lost session (``SessionExpiredError``) is not retried: what the
session owned (ephemeral nodes, locks) is gone, and the caller must know.
"""

from __future__ import annotations

import time
from typing import Callable, Optional

from kazoo.client import KazooClient
from kazoo.exceptions import ConnectionLoss, OperationTimeoutError, SessionExpiredError

from .paths import check_name, join


class CoordinationError(RuntimeError):
    """Base class of the recipes' errors."""


class CoordinationTimeout(CoordinationError, TimeoutError):
    """ZooKeeper did not answer in time (no server reachable, or no quorum)."""


class SessionLost(CoordinationError):
    """The ZooKeeper session expired: its ephemeral nodes (and locks) are gone."""


def client_and_namespace(zk, namespace: str | None) -> tuple[KazooClient, str]:
    """Accept a ``KazooClient`` or anything with ``.client`` and ``.namespace`` (a
    ``ZKCoordinator``, as in the chapter) and return the client and root path."""
    client = getattr(zk, "client", zk)
    if not isinstance(client, KazooClient):
        raise ValueError(f"expected a KazooClient or a ZKCoordinator, not {type(zk).__name__}")
    if namespace is None:
        namespace = getattr(zk, "namespace", "course")
    return client, join(check_name(namespace, "namespace"))


class Recipe:
    """Base of the recipes: ``self.client``, ``self.root`` and :meth:`call`."""

    def __init__(self, zk, namespace: str | None = None, op_timeout: float = 10.0):
        if isinstance(op_timeout, bool) or not isinstance(op_timeout, (int, float)) or op_timeout <= 0:
            raise ValueError(f"op_timeout must be a positive number of seconds, not {op_timeout!r}")
        self.client, self.root = client_and_namespace(zk, namespace)
        self.op_timeout = float(op_timeout)

    def call(self, method: str, *args, on_late: Optional[Callable] = None,
             retry: bool = True, **kwargs):
        """``client.<method>(*args, **kwargs)``, bounded by ``op_timeout`` seconds.

        A request made while the client is reconnecting waits in kazoo's queue; a
        request in flight when the connection drops fails with ``ConnectionLoss`` and
        is retried (unless ``retry=False``: then ``ConnectionLoss`` is raised, for
        callers that must check what the lost attempt did).  When the time is up,
        ``CoordinationTimeout``; ``on_late(value)`` is then called if the abandoned
        request succeeds later, so the caller can undo it.
        """
        call_async = getattr(self.client, f"{method}_async")
        deadline = time.monotonic() + self.op_timeout
        delay = 0.05
        while True:
            try:
                return self.outcome(call_async(*args, **kwargs), deadline, on_late)
            except (ConnectionLoss, OperationTimeoutError):
                if not retry or time.monotonic() + delay >= deadline:
                    raise
                time.sleep(delay)
                delay = min(delay * 1.5, 0.5)

    def outcome(self, result, deadline: float, on_late: Optional[Callable] = None):
        """The value of a request already sent (a kazoo ``*_async`` result), waiting
        until ``deadline`` (a ``time.monotonic()`` value) at most.

        This is how a recipe pipelines: send several requests, then collect their
        outcomes in turn.  ``CoordinationTimeout`` when the deadline passes
        (``on_late(value)`` is called if the request succeeds later); ``SessionLost``
        for an expired session; every other error (``ConnectionLoss`` included) as
        kazoo raised it.
        """
        try:
            return result.get(timeout=max(0.0, deadline - time.monotonic()))
        except self.client.handler.timeout_exception:
            if on_late is not None:
                result.rawlink(lambda r: r.successful() and on_late(r.value))
            raise CoordinationTimeout(
                f"ZooKeeper did not answer within {self.op_timeout:.0f} s (is a quorum up? "
                "check with `python -m course_lib.zk status`)") from None
        except SessionExpiredError:
            raise SessionLost("the ZooKeeper session expired; its ephemeral nodes and locks "
                              "are gone — open a new client") from None
