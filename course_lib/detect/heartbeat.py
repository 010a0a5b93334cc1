"""Heartbeats over UDP on loopback: the wire format, the sender process, the receiver.

Wire format (ASCII datagrams):

- heartbeat, sender -> receiver: ``hb <node_id> <seq> <jitter> <delay>``; the last two
  echo the sender's current settings, so the receiver can see a change took effect;
- control, anyone -> sender's socket: ``set jitter=<s>``, ``set delay=<s>`` (either or
  both, seconds), or ``stop``.

The sender (``python -m course_lib.detect.heartbeat send --port P --node-id X
--interval 0.1``) prints ``ready <control_port>`` on stdout once its socket is bound,
then ticks every ``interval`` seconds.  Each heartbeat is held back ``delay +
|N(0, jitter)|`` seconds before it is sent (a slow, jittery network, as netem would
add).  After a stop (SIGSTOP, a "GC pause") it skips the ticks it missed and resumes
the schedule from the moment it runs again.  It exits on ``stop``, on SIGTERM/SIGKILL,
and when its parent dies (``PR_SET_PDEATHSIG`` on Linux, plus a check of its parent
pid twice a second), so no sender outlives the notebook that started it.

The receiver is a thread with a UDP socket bound to ``127.0.0.1:0`` that calls
``on_heartbeat(Heartbeat)`` for every well-formed datagram and ignores the rest.
"""

from __future__ import annotations

import argparse
import heapq
import math
import os
import random
import re
import select
import signal
import socket
import sys
import threading
import time
from dataclasses import dataclass
from typing import Callable, Optional

HOST = "127.0.0.1"
NODE_ID = re.compile(r"[A-Za-z0-9_.\-]{1,64}")
_MAX_DATAGRAM = 512


@dataclass(frozen=True)
class Heartbeat:
    """One received heartbeat; ``arrival`` is the receiver's ``time.monotonic()``."""

    node_id: str
    seq: int
    jitter: float
    delay: float
    arrival: float
    sender: tuple[str, int]


def check_node_id(node_id: str) -> str:
    if not isinstance(node_id, str) or not NODE_ID.fullmatch(node_id):
        raise ValueError(
            f"node_id must be 1-64 characters from [A-Za-z0-9_.-], got {node_id!r}")
    return node_id


def check_seconds(name: str, value: float, *, positive: bool = False) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value < 0 or (positive and value == 0):
        bound = "> 0" if positive else ">= 0"
        raise ValueError(f"{name} must be a finite number of seconds {bound}, got {value!r}")
    return float(value)


def encode_heartbeat(node_id: str, seq: int, jitter: float, delay: float) -> bytes:
    return f"hb {node_id} {seq} {jitter!r} {delay!r}".encode("ascii")


def decode_heartbeat(data: bytes) -> Optional[tuple[str, int, float, float]]:
    """``(node_id, seq, jitter, delay)``, or ``None`` for anything malformed."""
    try:
        kind, node_id, seq, jitter, delay = data.decode("ascii").split(" ")
        if kind != "hb" or not NODE_ID.fullmatch(node_id):
            return None
        return node_id, int(seq), float(jitter), float(delay)
    except (UnicodeDecodeError, ValueError):
        return None


def encode_control(jitter: Optional[float] = None, delay: Optional[float] = None) -> bytes:
    parts = ["set"]
    if jitter is not None:
        parts.append(f"jitter={check_seconds('jitter', jitter)!r}")
    if delay is not None:
        parts.append(f"delay={check_seconds('delay', delay)!r}")
    if len(parts) == 1:
        raise ValueError("a control message needs jitter or delay")
    return " ".join(parts).encode("ascii")


STOP = b"stop"


def _parse_control(data: bytes) -> Optional[dict]:
    try:
        words = data.decode("ascii").split()
    except UnicodeDecodeError:
        return None
    if words == ["stop"]:
        return {"stop": True}
    if not words or words[0] != "set":
        return None
    settings = {}
    for word in words[1:]:
        key, _, value = word.partition("=")
        if key not in ("jitter", "delay"):
            return None
        try:
            settings[key] = check_seconds(key, float(value))
        except ValueError:
            return None
    return settings


def _die_with_parent(parent_pid: Optional[int]) -> None:
    """Ask Linux to SIGKILL us when the parent dies; then close the race where it
    already died before the request."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            pr_set_pdeathsig = 1
            libc.prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):
            pass
    if parent_pid is not None and os.getppid() != parent_pid:
        sys.exit(0)


def run_sender(
    port: int,
    node_id: str,
    interval: float,
    jitter: float = 0.0,
    delay: float = 0.0,
    seed: Optional[int] = None,
    parent_pid: Optional[int] = None,
) -> None:
    """Send heartbeats to ``127.0.0.1:port`` until stopped (see the module docstring)."""
    check_node_id(node_id)
    interval = check_seconds("interval", interval, positive=True)
    jitter = check_seconds("jitter", jitter)
    delay = check_seconds("delay", delay)
    _die_with_parent(parent_pid)
    rng = random.Random(seed)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.bind((HOST, 0))
        print(f"ready {sock.getsockname()[1]}", flush=True)
        seq = 0
        pending: list[tuple[float, int]] = []
        next_tick = time.monotonic()
        next_parent_check = next_tick
        while True:
            now = time.monotonic()
            if now >= next_tick:
                heapq.heappush(pending, (now + delay + abs(rng.gauss(0.0, jitter)), seq))
                seq += 1
                next_tick += interval
                if next_tick <= now:
                    next_tick = now + interval
            while pending and pending[0][0] <= now:
                _, n = heapq.heappop(pending)
                sock.sendto(encode_heartbeat(node_id, n, jitter, delay), (HOST, port))
            if now >= next_parent_check:
                if parent_pid is not None and os.getppid() != parent_pid:
                    return
                next_parent_check = now + 0.5
            wake = min(next_tick, pending[0][0]) if pending else next_tick
            ready, _, _ = select.select([sock], [], [], max(0.0, min(wake - now, 0.5)))
            if ready:
                data = sock.recv(_MAX_DATAGRAM)
                control = _parse_control(data)
                if control is None:
                    continue
                if control.get("stop"):
                    return
                jitter = control.get("jitter", jitter)
                delay = control.get("delay", delay)
    finally:
        sock.close()


class HeartbeatReceiver:
    """A thread receiving heartbeats on ``127.0.0.1:port`` (``port`` is chosen by the
    OS unless given).  ``on_heartbeat`` runs on the receiver thread.  ``send_control``
    sends a datagram from the same socket.  ``close()`` stops the thread and closes
    the socket; it returns within about ``poll`` seconds.
    """

    def __init__(
        self,
        on_heartbeat: Callable[[Heartbeat], None],
        port: int = 0,
        poll: float = 0.05,
    ) -> None:
        self._on_heartbeat = on_heartbeat
        self._poll = poll
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind((HOST, port))
        self.port: int = self._sock.getsockname()[1]
        self.errors: list[BaseException] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"heartbeat-receiver-{self.port}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        sock = self._sock
        while not self._stop.is_set():
            try:
                ready, _, _ = select.select([sock], [], [], self._poll)
                if not ready:
                    continue
                data, sender = sock.recvfrom(_MAX_DATAGRAM)
            except (OSError, ValueError):
                return
            arrival = time.monotonic()
            decoded = decode_heartbeat(data)
            if decoded is None:
                continue
            try:
                self._on_heartbeat(Heartbeat(*decoded, arrival=arrival, sender=sender))
            except Exception as exc:  # keep receiving; the owner inspects .errors
                self.errors.append(exc)

    def send_control(self, port: int, message: bytes) -> None:
        self._sock.sendto(message, (HOST, port))

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def close(self) -> None:
        self._stop.set()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout=5 * self._poll + 1.0)
        self._sock.close()


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course_lib.detect.heartbeat")
    sub = parser.add_subparsers(dest="command", required=True)
    send = sub.add_parser("send", help="send heartbeats to 127.0.0.1:PORT over UDP")
    send.add_argument("--port", type=int, required=True)
    send.add_argument("--node-id", required=True)
    send.add_argument("--interval", type=float, default=0.1)
    send.add_argument("--jitter", type=float, default=0.0)
    send.add_argument("--delay", type=float, default=0.0)
    send.add_argument("--seed", type=int, default=None)
    send.add_argument("--parent-pid", type=int, default=None)
    args = parser.parse_args(argv)
    try:
        run_sender(args.port, args.node_id, args.interval, args.jitter, args.delay,
                   args.seed, args.parent_pid)
    except ValueError as exc:
        parser.error(str(exc))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
