"""``ReplicaGroup``: replica server processes to start, kill, pause and restart.

Each replica is ``python -m course_lib.recovery.server`` (a real OS process, started in
its own session, SIGKILLed with its parent).  A reader thread per process collects the
JSON events it prints; ``wait_for`` blocks until one arrives or a timeout passes, with
an error that quotes the process's last output.  ``close()`` (also at exit) kills every
process and removes nothing from disk: the folders are the replicas' disks.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
import weakref
from pathlib import Path
from typing import Optional

from course_lib.zk import resolve_hosts

from .client import RecoveryClient
from .records import check_count, finite_number


def _kill_all(procs: dict) -> None:
    for proc in procs.values():
        if proc.poll() is None:
            proc.kill()
        try:
            proc.wait(timeout=5.0)
        except subprocess.TimeoutExpired:
            pass


class ReplicaGroup:
    """``nodes`` replica processes with data folders under ``folder``.

    Nothing starts at construction; ``start(node)`` launches one.  ``acks`` is passed to
    every server (1 for a primary and one hot standby).
    """

    def __init__(self, folder, nodes=("a", "b"), *, acks: int = 1, session_timeout: float = 2.0,
                 hosts: Optional[str] = None, namespace: str = "course",
                 group: Optional[str] = None) -> None:
        self.nodes = tuple(nodes)
        if not self.nodes or len(set(self.nodes)) != len(self.nodes):
            raise ValueError(f"nodes must be distinct and at least one, not {self.nodes!r}")
        self.folder = Path(folder)
        self.acks = check_count("acks", acks, minimum=1)
        self.session_timeout = finite_number("session_timeout", session_timeout)
        if not 1 <= self.session_timeout <= 30:
            raise ValueError(f"session_timeout must be 1 to 30 seconds, not {session_timeout!r}")
        self.hosts = resolve_hosts(hosts)
        self.namespace = namespace
        self.group = group or f"g{uuid.uuid4().hex[:8]}"
        self.procs: dict[str, subprocess.Popen] = {}
        self.events: list[dict] = []
        self._cond = threading.Condition()
        self._tails: dict[str, list[str]] = {n: [] for n in self.nodes}
        self._finalizer = weakref.finalize(self, _kill_all, self.procs)

    def data_dir(self, node: str) -> Path:
        return self.folder / self._check(node)

    def start(self, node: str, restore: Optional[str] = None, timeout: float = 15.0,
              self_fencing: bool = True) -> dict:
        """Launch ``node``'s process; returns its ``ready`` event.  ``self_fencing=False``
        passes ``--no-self-fencing`` (see :mod:`.server`: only epoch fencing then stops a
        replaced primary)."""
        if self.is_running(node):
            raise ValueError(f"cannot start {node!r}: it is running (pid {self.procs[node].pid})")
        since = len(self.events)
        cmd = [sys.executable, "-m", "course_lib.recovery.server", "--id", node,
               "--data", str(self.data_dir(node)), "--group", self.group, "--hosts", self.hosts,
               "--namespace", self.namespace, "--acks", str(self.acks),
               "--session-timeout", str(self.session_timeout), "--parent-pid", str(os.getpid())]
        if restore is not None:
            cmd += ["--restore", str(restore)]
        if not self_fencing:
            cmd.append("--no-self-fencing")
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, start_new_session=True)
        self.procs[node] = proc
        threading.Thread(target=self._read, args=(node, proc), daemon=True,
                         name=f"replica-{node}").start()
        return self.wait_for("ready", node, timeout=timeout, since=since)

    def kill(self, node: str) -> float:
        """SIGKILL ``node``'s process (a crash); returns the time (``time.monotonic()``)."""
        proc = self._running(node, "kill")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5.0)
        return time.monotonic()

    def pause(self, node: str) -> None:
        """SIGSTOP: the process freezes (a long GC pause); its session may expire."""
        os.kill(self._running(node, "pause").pid, signal.SIGSTOP)

    def resume(self, node: str) -> None:
        os.kill(self._running(node, "resume").pid, signal.SIGCONT)

    def is_running(self, node: str) -> bool:
        proc = self.procs.get(self._check(node))
        return proc is not None and proc.poll() is None

    def wait_for(self, event: str, node: Optional[str] = None, timeout: float = 15.0,
                 since: int = 0) -> dict:
        """The first event ``event`` (from ``node``, if given) at index >= ``since``."""
        deadline = time.monotonic() + finite_number("timeout", timeout)
        with self._cond:
            while True:
                for e in self.events[since:]:
                    if e.get("event") == event and (node is None or e.get("node") == node):
                        return e
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    tails = {n: t[-3:] for n, t in self._tails.items() if t}
                    raise TimeoutError(f"no {event!r} event from {node or 'any replica'} within "
                                       f"{timeout:g} s; last output: {tails}")
                self._cond.wait(min(remaining, 0.5))

    def port(self, node: str) -> int:
        """The TCP port of ``node``'s latest process."""
        with self._cond:
            ports = [e["port"] for e in self.events if e.get("event") == "ready" and e["node"] == node]
        if not ports:
            raise ValueError(f"{node!r} was never started")
        return ports[-1]

    def request(self, node: str, request: dict, timeout: float = 5.0) -> dict:
        """Send one request straight to ``node`` (bypassing discovery): e.g. ``{"op":
        "dump"}`` to look at a backup, or a put to a primary that may be deposed."""
        with socket.create_connection(("127.0.0.1", self.port(node)), timeout=timeout) as sock:
            sock.sendall(json.dumps(request).encode() + b"\n")
            line = sock.makefile("rb").readline()
        if not line:
            raise ConnectionError(f"{node!r} closed the connection without answering")
        return json.loads(line)

    def client(self, timeout: float = 10.0) -> RecoveryClient:
        return RecoveryClient(self.group, self.hosts, self.namespace, timeout=timeout)

    def close(self) -> None:
        _kill_all(self.procs)

    def _read(self, node: str, proc: subprocess.Popen) -> None:
        for raw in proc.stdout:
            line = raw.decode(errors="replace").rstrip()
            with self._cond:
                self._tails[node] = (self._tails[node] + [line])[-20:]
                try:
                    event = json.loads(line)
                except ValueError:
                    continue
                if isinstance(event, dict):
                    event["node"] = event.get("node", node)
                    event["received"] = time.monotonic()
                    self.events.append(event)
                    self._cond.notify_all()
        proc.stdout.close()

    def _check(self, node: str) -> str:
        if node not in self.nodes:
            raise ValueError(f"unknown node {node!r}; nodes are {', '.join(self.nodes)}")
        return node

    def _running(self, node: str, action: str) -> subprocess.Popen:
        if not self.is_running(node):
            raise ValueError(f"cannot {action} {node!r}: it is not running")
        return self.procs[node]
