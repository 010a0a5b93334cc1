"""Real heartbeat senders: one OS process per node, UDP on loopback.

``ProcessCluster`` starts ``python -m course_lib.detect.heartbeat send ...`` for every
node and a :class:`~course_lib.detect.heartbeat.HeartbeatReceiver` thread that feeds
each arrival (``time.monotonic()``) into the detector.  Faults are real:

- ``kill``: SIGKILL (a crash; also works on a stopped process);
- ``pause`` / ``resume``: SIGSTOP / SIGCONT (the process is frozen, as in a long GC
  pause or a VM migration);
- ``set_jitter`` / ``set_delay``: a control datagram to the sender's socket, applied
  by the sender at once (a paused sender applies it when continued); its heartbeats
  echo the settings, visible in ``info(node)``;
- ``restart``: a new process for a dead node (a new incarnation: datagrams from the
  old process are ignored, the detector's history starts afresh).

Clean-up: ``close()`` (also at garbage collection and at interpreter exit) stops the
receiver, SIGKILLs every sender and reaps it; senders also die with their parent
(see ``heartbeat``).  Nothing here blocks for more than ``start_timeout``.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
import weakref
from typing import Optional

from .cluster import HeartbeatCluster, NodeStatus
from .heartbeat import Heartbeat, HeartbeatReceiver, encode_control
from .phi import PhiAccrualDetector


def _reap(procs: dict, receiver: HeartbeatReceiver) -> None:
    """Stop the receiver and SIGKILL + wait every sender (idempotent)."""
    receiver.close()
    for proc in list(procs.values()):
        if proc.poll() is None:
            try:
                proc.kill()
            except ProcessLookupError:
                pass
        try:
            proc.wait(timeout=5.0)
        except subprocess.TimeoutExpired:
            pass
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
    procs.clear()


class ProcessCluster(HeartbeatCluster):
    """Real sender processes for ``nodes``, started at construction."""

    kind = "processes"

    def __init__(
        self,
        nodes=("a", "b", "c"),
        interval: float = 0.1,
        jitter: float = 0.0,
        delay: float = 0.0,
        seed: Optional[int] = None,
        detector: Optional[PhiAccrualDetector] = None,
        start_timeout: float = 10.0,
    ) -> None:
        super().__init__(nodes, interval, jitter, delay, detector)
        self._seed = seed
        self._start_timeout = start_timeout
        self._procs: dict[str, subprocess.Popen] = {}
        self._control_port: dict[str, int] = {}
        self._incarnation = {n: 0 for n in self.nodes}
        self.receiver = HeartbeatReceiver(self._on_heartbeat)
        self._finalizer = weakref.finalize(self, _reap, self._procs, self.receiver)
        try:
            started = {n: self._spawn(n) for n in self.nodes}
            for node, proc in started.items():
                self._control_port[node] = self._await_ready(node, proc)
        except BaseException:
            self.close()
            raise

    def now(self) -> float:
        return time.monotonic()

    def advance(self, dt: float) -> None:
        """Real time passes by itself; nothing to do."""

    def pid(self, node: str) -> int:
        self._check_node(node)
        return self._procs[node].pid

    def status(self, node: str) -> NodeStatus:
        status = super().status(node)
        proc = self._procs.get(node)
        if status is not NodeStatus.DEAD and proc is not None and proc.poll() is not None:
            self._status[node] = status = NodeStatus.DEAD
        return status

    def _spawn(self, node: str) -> subprocess.Popen:
        self._incarnation[node] += 1
        seed = None if self._seed is None else self._seed * 1_000_003 + self.nodes.index(node) \
            + 7919 * self._incarnation[node]
        cmd = [
            sys.executable, "-m", "course_lib.detect.heartbeat", "send",
            "--port", str(self.receiver.port), "--node-id", node,
            "--interval", repr(self.interval), "--jitter", repr(self._jitter[node]),
            "--delay", repr(self._delay[node]), "--parent-pid", str(os.getpid()),
        ]
        if seed is not None:
            cmd += ["--seed", str(seed)]
        proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            start_new_session=True)
        self._procs[node] = proc
        return proc

    def _await_ready(self, node: str, proc: subprocess.Popen) -> int:
        """Read the sender's ``ready <port>`` line, within ``start_timeout``."""
        deadline = time.monotonic() + self._start_timeout
        line = b""
        fd = proc.stdout.fileno()
        while not line.endswith(b"\n"):
            remaining = deadline - time.monotonic()
            ready = select.select([fd], [], [], max(0.0, remaining))[0] if remaining > 0 else []
            if not ready:
                raise RuntimeError(f"sender {node!r} did not start within {self._start_timeout} s")
            chunk = os.read(fd, 64)
            if not chunk:
                proc.wait(timeout=5.0)
                err = proc.stderr.read().decode(errors="replace").strip()
                raise RuntimeError(f"sender {node!r} exited with {proc.returncode}: {err}")
            line += chunk
        word, _, port = line.decode().strip().partition(" ")
        if word != "ready":
            raise RuntimeError(f"sender {node!r} said {line!r} instead of 'ready <port>'")
        return int(port)

    def _on_heartbeat(self, hb: Heartbeat) -> None:
        with self.lock:
            node = hb.node_id
            if self.closed or self._control_port.get(node) != hb.sender[1]:
                return
            self.detector.heartbeat(node, hb.arrival)
            self._count[node] += 1
            self._jitter[node] = hb.jitter
            self._delay[node] = hb.delay

    def _signal(self, node: str, sig: int) -> None:
        try:
            os.kill(self._procs[node].pid, sig)
        except ProcessLookupError:
            self._status[node] = NodeStatus.DEAD
            raise ValueError(f"node {node!r}'s process has already exited") from None

    def _kill(self, node: str) -> None:
        proc = self._procs[node]
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=5.0)

    def _pause(self, node: str) -> None:
        self._signal(node, signal.SIGSTOP)
        self._await_state(node, stopped=True)

    def _resume(self, node: str) -> None:
        self._signal(node, signal.SIGCONT)
        self._await_state(node, stopped=False)

    def _await_state(self, node: str, stopped: bool, timeout: float = 1.0) -> None:
        """Signals are delivered asynchronously: wait (up to ``timeout``) until the
        process is (or is no longer) stopped, so the caller sees the state it asked
        for.  Reads ``/proc``; where there is none, returns at once."""
        path = f"/proc/{self._procs[node].pid}/stat"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with open(path) as f:
                    state = f.read().rpartition(")")[2].split()[0]
            except (OSError, IndexError):
                return
            if (state in ("T", "t")) == stopped:
                return
            time.sleep(0.002)

    def _restart(self, node: str) -> None:
        old = self._procs[node]
        for stream in (old.stdout, old.stderr):
            stream.close()
        proc = self._spawn(node)
        try:
            port = self._await_ready(node, proc)
        except BaseException:
            proc.kill()
            proc.wait(timeout=5.0)
            raise
        with self.lock:
            self._control_port[node] = port
            self.detector.remove(node)

    def _set(self, node: str, jitter: Optional[float] = None, delay: Optional[float] = None) -> None:
        self.receiver.send_control(self._control_port[node], encode_control(jitter, delay))

    def close(self) -> None:
        """Stop the receiver and kill every sender; safe to call twice."""
        with self.lock:
            self.closed = True
        self._finalizer()
