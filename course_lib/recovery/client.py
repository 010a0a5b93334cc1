"""``RecoveryClient``: talks to whichever process is primary, found through ZooKeeper.

The primary record ``/NAMESPACE/recovery/GROUP/primary`` (see :mod:`.server`) names the
primary's address; its znode version is the epoch.  A request that fails because the
process is gone or no longer primary is retried against the record as it is then,
until ``timeout`` seconds have passed: then ``TimeoutError`` says what was last seen.
``put`` returns only once the write is acknowledged (durable on the primary and its
backups); an error means *not acknowledged*, whose outcome may still be either.
"""

from __future__ import annotations

import json
import socket
import time
from typing import Any, Optional

from course_lib.zk import connect

from .records import NotEnoughReplicas, ReplicationError, check_json_value, check_key, finite_number
from .server import primary_path

_RETRIED = {"NotPrimary", "Deposed"}  # ask the primary record again


class RecoveryClient:
    def __init__(self, group: str, hosts: Optional[str] = None, namespace: str = "course",
                 timeout: float = 10.0, zk=None):
        self.group = group
        self.namespace = namespace
        self.timeout = finite_number("timeout", timeout)
        self._own_zk = zk is None
        self.zk = connect(hosts) if zk is None else zk
        self.path = primary_path(namespace, group)
        self._sock: Optional[socket.socket] = None
        self._file = None
        self._address: Optional[str] = None
        self.primary: Optional[str] = None
        self.epoch = 0

    def primary_record(self) -> tuple[Optional[dict], int]:
        """The primary record and its version (the epoch); (None, 0) if there is none."""
        try:
            data, stat = self.zk.get_async(self.path).get(timeout=2.0)
        except Exception:  # no such znode, no connection, no answer in time: none known now
            return None, 0
        return (json.loads(data) if data else None), stat.version

    def put(self, key: str, value: Any) -> int:
        """Write ``key = value``; its sequence number once acknowledged."""
        check_key(key)
        check_json_value(value)
        return self._call({"op": "put", "key": key, "value": value})["seq"]

    def get(self, key: str) -> Any:
        return self._call({"op": "get", "key": check_key(key)})["value"]

    def dump(self) -> dict:
        """The primary's role, epoch, sequence numbers and committed state.  A server
        that answers but is not primary (the record moved on, or it is not promoted
        yet) is skipped: asked again through the record, as for a ``NotPrimary``."""
        return self._call({"op": "dump"})

    def backup(self) -> dict:
        return self._call({"op": "backup"})

    def _call(self, request: dict) -> dict:
        deadline = time.monotonic() + self.timeout
        last = "no primary record yet"
        while True:
            try:
                self._connect()
                reply = self._request(request)
                if reply["ok"] and request["op"] == "dump" and reply.get("role") != "primary":
                    reply = {"ok": False, "kind": "NotPrimary",
                             "error": f"{reply.get('node')} is {reply.get('role')}, not primary"}
                if reply["ok"]:
                    return reply
                if reply["kind"] == "NotEnoughReplicas":
                    raise NotEnoughReplicas(reply["error"])
                if reply["kind"] not in _RETRIED:
                    raise (ValueError if reply["kind"] in ("ValueError", "KeyError")
                           else ReplicationError)(reply["error"])
                last = reply["error"]
                self._disconnect()
            except (OSError, ConnectionError, LookupError) as error:
                last = f"{self._address or 'primary'}: {error}"
                self._disconnect()
            if time.monotonic() >= deadline:
                raise TimeoutError(f"no primary of group {self.group!r} answered within "
                                   f"{self.timeout:g} s; last: {last}")
            time.sleep(0.05)

    def _connect(self) -> None:
        if self._sock is not None:
            return
        record, version = self.primary_record()
        if record is None:
            raise LookupError("no primary record yet")
        host, port = record["address"].rsplit(":", 1)
        self._sock = socket.create_connection((host, int(port)), timeout=1.0)
        self._sock.settimeout(max(self.timeout, 6.0))
        self._file = self._sock.makefile("rwb")
        self._address, self.primary, self.epoch = record["address"], record["id"], version

    def _request(self, request: dict) -> dict:
        self._file.write(json.dumps(request).encode() + b"\n")
        self._file.flush()
        line = self._file.readline()
        if not line:
            raise ConnectionError("the server closed the connection")
        return json.loads(line)

    def _disconnect(self) -> None:
        if self._sock is not None:
            try:
                self._file.close()
                self._sock.close()
            except OSError:
                pass
        self._sock = self._file = None

    def close(self) -> None:
        self._disconnect()
        if self._own_zk:
            self.zk.stop()
            self.zk.close()
