"""``ZKCoordinator``: service registry and discovery, configuration, event notification.

Layout under ``/NAMESPACE`` (default ``/course``)::

    services/SERVICE/instance-0000000007   ephemeral sequential, JSON data: one per live instance
    config/KEY                             persistent, JSON data; its version is the CAS token
    events/TOPIC/event-0000000042          persistent sequential, JSON data: an ordered log

Why this shape (and not the chapter's): an instance is an *ephemeral sequential* child,
so any number of instances of a service register side by side and each vanishes with its
owner's session; discovery lists the children, so it sees all of them; the watch is on
the children, so it sees instances come and go, not just one node's data.

Values are JSON.  Every call is bounded (``op_timeout``, see :mod:`.base`).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from typing import Any, Callable, Optional

from kazoo.exceptions import BadVersionError, NodeExistsError, NoNodeError
from kazoo.recipe.watchers import ChildrenWatch, DataWatch

from course_lib.zk import connect

from .base import CoordinationError, Recipe
from .paths import check_name, join, sequence_of


class ConfigConflict(CoordinationError):
    """A compare-and-set lost: the value changed since the version you read."""


@dataclass(frozen=True)
class ServiceInstance:
    service: str
    path: str
    info: dict


class Subscription:
    """A running watch; ``stop()`` ends it (kazoo watchers stop on a falsy return)."""

    def __init__(self) -> None:
        self.active = True

    def stop(self) -> None:
        self.active = False


class ZKCoordinator(Recipe):
    """The chapter's coordinator, working.

    ``zk`` is either a hosts string, as in the chapter (``ZKCoordinator("127.0.0.1:2181",
    "myapp")``): the coordinator then opens its own client (``course_lib.zk.connect``)
    and owns it, so :meth:`close` (or leaving a ``with`` block) ends its session; or a
    started ``KazooClient`` (``course_lib.zk.connect()``), shared with the caller, which
    the coordinator never closes."""

    def __init__(self, zk, namespace: str = "course", op_timeout: float = 10.0):
        self.owns_client = isinstance(zk, str)
        if self.owns_client:
            if not zk.strip():
                raise ValueError("hosts must name at least one server, e.g. '127.0.0.1:2181'")
            zk = connect(zk)
        try:
            super().__init__(zk, namespace, op_timeout)
        except ValueError:
            if self.owns_client:
                zk.stop()
                zk.close()
            raise
        self.namespace = namespace

    def close(self) -> None:
        """End the session of a client this coordinator opened (its ephemeral nodes,
        its registered instances, go with it).  A shared client is left as it is."""
        if self.owns_client:
            self.client.stop()
            self.client.close()

    def __enter__(self) -> "ZKCoordinator":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def ensure_path(self, path: str) -> str:
        """Create ``/NAMESPACE/path`` and its parents if missing; return it.  (The
        chapter prefixes the namespace twice when callers pass a full path.)"""
        full = join(self.root, path)
        self.call("ensure_path", full)
        return full

    # -- service registry and discovery -----------------------------------------

    def register_service(self, service_name: str, service_info: dict) -> str:
        """Register one live instance; returns its path (pass it to ``deregister``).
        The instance disappears when this client's session ends."""
        check_name(service_name, "service name")
        data = _encode(service_info, "service_info")
        return self.call("create", join(self.root, "services", service_name, "instance-"),
                         data, ephemeral=True, sequence=True, makepath=True)

    def deregister(self, instance_path: str) -> None:
        try:
            self.call("delete", instance_path)
        except NoNodeError:
            pass

    def get_services(self, service_name: str) -> list[dict]:
        """The info of every live instance, oldest first."""
        return [i.info for i in self.get_instances(service_name)]

    def get_instances(self, service_name: str) -> list[ServiceInstance]:
        parent = join(self.root, "services", check_name(service_name, "service name"))
        try:
            children = self.call("get_children", parent)
        except NoNodeError:
            return []
        return self._read_instances(service_name, children)

    def watch_services(self, service_name: str,
                       callback: Callable[[list[dict]], None]) -> Subscription:
        """Call ``callback(infos)`` now and after every change in the instances."""
        check_name(service_name, "service name")
        parent = self.ensure_path(join("services", service_name))
        subscription = Subscription()

        def on_children(children):
            if not subscription.active:
                return False
            callback([i.info for i in self._read_instances(service_name, children)])
            return True

        ChildrenWatch(self.client, parent, on_children)
        return subscription

    def _read_instances(self, service_name: str, children: list[str]) -> list[ServiceInstance]:
        parent = join(self.root, "services", service_name)
        found = []
        for child in sorted(children, key=sequence_of):
            try:
                data, _ = self.call("get", f"{parent}/{child}")
            except NoNodeError:
                continue  # gone between the listing and the read
            found.append(ServiceInstance(service_name, f"{parent}/{child}", json.loads(data)))
        return found

    # -- configuration -------------------------------------------------------------

    def get_config(self, key: str, default: Any = None) -> tuple[Any, int]:
        """``(value, version)``; ``(default, -1)`` when the key was never set."""
        try:
            data, stat = self.call("get", self._config_path(key))
        except NoNodeError:
            return default, -1
        return json.loads(data), stat.version

    def set_config(self, key: str, value: Any, expected_version: Optional[int] = None) -> int:
        """Set ``key`` and return its new version.

        With ``expected_version`` this is a compare-and-set: it succeeds only if the
        stored version is still that one (``-1``: the key must not exist yet), else it
        raises ``ConfigConflict`` and changes nothing.
        """
        if expected_version is not None and (isinstance(expected_version, bool) or
                                             not isinstance(expected_version, int) or
                                             expected_version < -1):
            raise ValueError(f"expected_version must be None or an int >= -1, not {expected_version!r}")
        path, data = self._config_path(key), _encode(value, "value")
        if expected_version == -1:
            try:
                self.call("create", path, data, makepath=True)
                return 0
            except NodeExistsError:
                raise ConfigConflict(f"config {key!r} already exists") from None
        try:
            stat = self.call("set", path, data,
                             -1 if expected_version is None else expected_version)
            return stat.version
        except BadVersionError:
            raise ConfigConflict(f"config {key!r} changed since version {expected_version}") from None
        except NoNodeError:
            if expected_version is not None:
                raise ConfigConflict(f"config {key!r} does not exist (expected version "
                                     f"{expected_version})") from None
            try:
                self.call("create", path, data, makepath=True)
                return 0
            except NodeExistsError:  # created concurrently: last writer wins, as asked
                return self.set_config(key, value)

    def update_config(self, key: str, change: Callable[[Any], Any], default: Any = None,
                      attempts: int = 100) -> tuple[Any, int]:
        """Read-modify-write without lost updates: ``change(old) -> new``, retried on
        conflict.  Returns ``(new value, version)``."""
        for _ in range(attempts):
            value, version = self.get_config(key, default)
            new = change(value)
            try:
                return new, self.set_config(key, new, expected_version=version)
            except ConfigConflict:
                continue
        raise ConfigConflict(f"config {key!r}: {attempts} conflicting updates in a row")

    def watch_config(self, key: str, callback: Callable[[Any, int], None]) -> Subscription:
        """Call ``callback(value, version)`` now and after every change
        (``(None, -1)`` while the key does not exist)."""
        subscription = Subscription()

        def on_data(data, stat):
            if not subscription.active:
                return False
            callback(json.loads(data) if data else None, stat.version if stat else -1)
            return True

        DataWatch(self.client, self._config_path(key), on_data)
        return subscription

    def _config_path(self, key: str) -> str:
        return join(self.root, "config", check_name(key, "config key"))

    # -- event notification -------------------------------------------------------

    def publish(self, topic: str, event: Any) -> int:
        """Append ``event`` to ``topic``; returns its sequence number (the order every
        subscriber sees)."""
        path = self.call("create", join(self.root, "events", check_name(topic, "topic"), "event-"),
                         _encode(event, "event"), sequence=True, makepath=True)
        return sequence_of(path)

    def subscribe(self, topic: str, callback: Callable[[int, Any], None],
                  from_start: bool = False) -> Subscription:
        """Call ``callback(sequence, event)`` once per event published on ``topic``,
        in order — only later ones unless ``from_start``."""
        parent = self.ensure_path(join("events", check_name(topic, "topic")))
        subscription = Subscription()
        seen = {"last": -1 if from_start else None}
        lock = threading.Lock()

        def on_children(children):
            if not subscription.active:
                return False
            with lock:
                numbers = sorted(sequence_of(c) for c in children)
                if seen["last"] is None:  # first call: start after what exists now
                    seen["last"] = numbers[-1] if numbers else -1
                    return True
                for number in numbers:
                    if number > seen["last"]:
                        try:
                            data, _ = self.call("get", f"{parent}/event-{number:010d}")
                        except NoNodeError:
                            continue  # trimmed before we read it
                        seen["last"] = number
                        callback(number, json.loads(data))
            return True

        ChildrenWatch(self.client, parent, on_children)
        return subscription

    def trim(self, topic: str, keep: int = 1000) -> int:
        """Delete all but the newest ``keep`` events of ``topic``; returns how many went."""
        parent = join(self.root, "events", check_name(topic, "topic"))
        try:
            children = sorted(self.call("get_children", parent), key=sequence_of)
        except NoNodeError:
            return 0
        old = children[:-keep] if keep > 0 else children
        for child in old:
            try:
                self.call("delete", f"{parent}/{child}")
            except NoNodeError:
                pass
        return len(old)


def _encode(value: Any, what: str) -> bytes:
    try:
        return json.dumps(value, sort_keys=True).encode()
    except (TypeError, ValueError) as error:
        raise ValueError(f"{what} must be JSON-serialisable: {error}") from None
