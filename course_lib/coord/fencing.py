"""Fencing tokens: a storage service that refuses writes from a lock holder that lost the lock.

A lock alone cannot stop a holder that was paused (a GC pause, SIGSTOP) past its session
timeout: ZooKeeper gave the lock to someone else, but the paused process wakes up
believing it still holds it and writes.  The cure (Kleppmann, "How to do distributed
locking", 2016) is in the *storage*: each write carries the lock's fencing token, and the
storage refuses any token lower than the highest it has seen.

``FencedStorage`` is such a service: a real TCP server on 127.0.0.1 (a thread of the
process that starts it) speaking one JSON object per line, so worker processes write to
it through ``FencedStorageClient``.  It keeps the log of every write, accepted or not.
"""

from __future__ import annotations

import json
import socket
import socketserver
import threading
import time
from dataclasses import dataclass
from typing import Any, Optional


class StaleToken(RuntimeError):
    """The storage refused a write: its fencing token is older than one already seen."""


@dataclass(frozen=True)
class WriteRecord:
    time: float
    key: str
    value: Any
    token: int
    writer: str
    accepted: bool


class FencedStorage:
    """Key-value storage that refuses stale fencing tokens (see the module docstring).

    ``start()`` serves it on ``address``; ``write`` / ``read`` also work in-process.
    """

    def __init__(self) -> None:
        self.data: dict[str, Any] = {}
        self.highest_token = -1
        self.log: list[WriteRecord] = []
        self._lock = threading.Lock()
        self._server: Optional[socketserver.ThreadingTCPServer] = None

    def write(self, key: str, value: Any, token: int, writer: str = "") -> None:
        if not isinstance(key, str) or isinstance(token, bool) or not isinstance(token, int):
            raise ValueError(f"write needs a string key and an integer token, not {key!r}, {token!r}")
        with self._lock:
            accepted = token >= self.highest_token
            self.log.append(WriteRecord(time.monotonic(), key, value, token, writer, accepted))
            if not accepted:
                raise StaleToken(f"write by {writer or 'a client'} with token {token} refused: "
                                 f"token {self.highest_token} was already seen")
            self.highest_token = token
            self.data[key] = value

    def read(self, key: str) -> Any:
        with self._lock:
            return self.data.get(key)

    @property
    def address(self) -> tuple[str, int]:
        if self._server is None:
            raise RuntimeError("the storage is not serving: call start() first")
        return self._server.server_address

    def start(self) -> "FencedStorage":
        storage = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                for line in self.rfile:
                    self.wfile.write((json.dumps(storage._serve(line)) + "\n").encode())

        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True,
                         name="fenced-storage").start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def _serve(self, line: bytes) -> dict:
        try:
            request = json.loads(line)
            if request.get("op") == "write":
                self.write(request["key"], request["value"], request["token"], request.get("writer", ""))
                return {"ok": True}
            if request.get("op") == "read":
                return {"ok": True, "value": self.read(request["key"])}
            return {"ok": False, "error": f"unknown op {request.get('op')!r}"}
        except StaleToken as error:
            return {"ok": False, "stale": True, "error": str(error)}
        except (ValueError, KeyError, TypeError) as error:
            return {"ok": False, "error": f"bad request: {error}"}


class FencedStorageClient:
    """Talks to a ``FencedStorage`` over TCP; ``write`` raises ``StaleToken`` if refused."""

    def __init__(self, address: tuple[str, int], writer: str = "", timeout: float = 5.0):
        self.writer = writer
        self._sock = socket.create_connection(tuple(address), timeout=timeout)
        self._file = self._sock.makefile("rwb")

    def write(self, key: str, value: Any, token: int, writer: Optional[str] = None) -> None:
        """As :meth:`FencedStorage.write`; ``writer`` defaults to the client's."""
        reply = self._request({"op": "write", "key": key, "value": value, "token": token,
                               "writer": self.writer if writer is None else writer})
        if reply.get("stale"):
            raise StaleToken(reply["error"])

    def read(self, key: str) -> Any:
        return self._request({"op": "read", "key": key})["value"]

    def close(self) -> None:
        self._file.close()
        self._sock.close()

    def _request(self, request: dict) -> dict:
        self._file.write((json.dumps(request) + "\n").encode())
        self._file.flush()
        line = self._file.readline()
        if not line:
            raise ConnectionError("the storage service closed the connection")
        reply = json.loads(line)
        if not reply["ok"] and not reply.get("stale"):
            raise ValueError(reply["error"])
        return reply
