"""A real Apache ZooKeeper ensemble on loopback, one JVM process per server.

Layout under the ensemble's folder (git-ignored ``.zk/`` at the repository root by
default; ``$COURSE_ZK_DIR`` overrides it)::

    ensemble.json          servers, base_port, tick_ms, heap_mb
    server1/zoo.cfg        generated config        server1/data/myid   the server's id
    server1/server.log     the JVM's output        server1/pid         its process id

Ports, from ``base_port`` (``$COURSE_ZK_PORT``, default 2181): server *i* serves clients
on ``base_port + i - 1`` and talks to its peers on ``base_port + 1000 + i`` (quorum)
and ``base_port + 2000 + i`` (leader election).

Timings are short, to teach with: a tick is 250 ms, sessions may be as short as 1 s,
a follower more than 2 s behind is dropped.  Each JVM gets a 64 MB heap: a 3-server
ensemble fits in ~250 MB, well inside Binder's budget.

Killing a server is killing its real process (SIGKILL): no goodbye to its peers or its
clients, exactly like a crash.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

from .errors import ZooKeeperError, ZooKeeperUnavailable
from .fourletter import WORDS, server_mode
from .install import find_installation

DEFAULT_BASE_PORT = 2181
SERVING_MODES = ("leader", "follower", "standalone")


def default_dir() -> Path:
    """``$COURSE_ZK_DIR``, else ``.zk/`` beside ``course_lib`` in a source checkout,
    else ``~/.course_lib/zk``."""
    if os.environ.get("COURSE_ZK_DIR"):
        return Path(os.environ["COURSE_ZK_DIR"]).expanduser()
    root = Path(__file__).resolve().parents[2]
    if (root / "pyproject.toml").exists() and os.access(root, os.W_OK):
        return root / ".zk"
    return Path.home() / ".course_lib" / "zk"


def default_port() -> int:
    raw = os.environ.get("COURSE_ZK_PORT", str(DEFAULT_BASE_PORT))
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"COURSE_ZK_PORT must be a port number, not {raw!r}") from None


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_base_port(servers: int = 3, start: int = 22181, step: int = 10, tries: int = 200) -> int:
    """The first base port from ``start`` (in steps of ``step``) whose client, quorum
    and election ports for ``servers`` servers are all free on 127.0.0.1."""
    for base in range(start, start + step * tries, step):
        ports = [base + i - 1 for i in range(1, servers + 1)]
        ports += [base + offset + i for offset in (1000, 2000) for i in range(1, servers + 1)]
        if all(_port_free(p) for p in ports):
            return base
    raise ZooKeeperError(f"no free ports for {servers} ZooKeeper servers from {start} on")


@dataclass(frozen=True)
class ServerStatus:
    """One server as seen by ``Ensemble.status()``.

    ``mode`` is what the server itself says (``leader`` / ``follower`` / ``standalone``
    / ``not serving``), or ``down`` when its process is not running.
    """

    id: int
    client_port: int
    pid: Optional[int]
    mode: str

    @property
    def alive(self) -> bool:
        return self.pid is not None

    @property
    def serving(self) -> bool:
        return self.mode in SERVING_MODES


# Servers this interpreter started, so their exit is noticed (and reaped) at once.
_CHILDREN: dict[int, subprocess.Popen] = {}


class Ensemble:
    """A ZooKeeper ensemble of ``servers`` JVMs on 127.0.0.1 (see the module docstring).

    ``start()`` returns once a quorum serves; ``kill(i)`` / ``restart(i)`` act on one
    server's process; ``status()`` asks every server for its mode.  Several
    ``Ensemble`` objects over the same folder see the same servers (pids are kept on
    disk), so the CLI, a notebook and a test agree on what runs.
    """

    def __init__(self, servers: int = 3, *, base_dir: str | os.PathLike | None = None,
                 base_port: int | None = None, tick_ms: int = 250, heap_mb: int = 64):
        if not isinstance(servers, int) or not 1 <= servers <= 9:
            raise ValueError(f"servers must be an integer from 1 to 9, not {servers!r}")
        base_port = default_port() if base_port is None else base_port
        if not isinstance(base_port, int) or not 1024 <= base_port <= 65535 - 2100:
            raise ValueError(f"base_port must be an integer from 1024 to 63435, not {base_port!r}")
        if not isinstance(tick_ms, int) or not 50 <= tick_ms <= 2000:
            raise ValueError(f"tick_ms must be an integer from 50 to 2000, not {tick_ms!r}")
        if not isinstance(heap_mb, int) or not 32 <= heap_mb <= 4096:
            raise ValueError(f"heap_mb must be an integer from 32 to 4096, not {heap_mb!r}")
        self.servers = servers
        self.base_dir = Path(base_dir).expanduser() if base_dir is not None else default_dir()
        self.base_port = base_port
        self.tick_ms = tick_ms
        self.heap_mb = heap_mb

    @classmethod
    def default(cls) -> "Ensemble":
        """The ensemble at ``default_dir()``, with the settings it was last started
        with (3 servers on ``default_port()`` if it never was)."""
        base_dir = default_dir()
        saved = cls._read_settings(base_dir)
        if saved:
            return cls(saved["servers"], base_dir=base_dir, base_port=saved["base_port"],
                       tick_ms=saved["tick_ms"], heap_mb=saved["heap_mb"])
        return cls(base_dir=base_dir)

    # -- addresses ---------------------------------------------------------------

    @property
    def ids(self) -> list[int]:
        return list(range(1, self.servers + 1))

    def client_port(self, server_id: int) -> int:
        self._check_id(server_id)
        return self.base_port + server_id - 1

    @property
    def hosts(self) -> str:
        """The kazoo connection string, e.g. ``127.0.0.1:2181,127.0.0.1:2182,...``."""
        return ",".join(f"127.0.0.1:{self.client_port(i)}" for i in self.ids)

    @property
    def quorum(self) -> int:
        return self.servers // 2 + 1

    def __repr__(self) -> str:
        return f"Ensemble(servers={self.servers}, hosts={self.hosts!r}, base_dir='{self.base_dir}')"

    # -- lifecycle ---------------------------------------------------------------

    def start(self, timeout: float = 60.0) -> "Ensemble":
        """Start every server that is not running, then wait until a quorum serves
        (and, up to 10 s more, until every server serves).

        Raises ``ZooKeeperNotInstalled`` (what to install), ``ZooKeeperError`` when the
        folder holds a running ensemble of another size, ``ZooKeeperUnavailable`` when
        no quorum forms within ``timeout`` seconds (with the servers' last log lines).
        """
        saved = self._read_settings(self.base_dir)
        if saved and saved != self._settings() and self._running_ids():
            raise ZooKeeperError(
                f"an ensemble with other settings ({saved}) is running in {self.base_dir}; "
                "stop it first: python -m course_lib.zk stop")
        installation = find_installation()
        with self._starting():
            self._write_configs()
            for server_id in self.ids:
                if self.pid(server_id) is None:
                    self._check_port_free(server_id)
                    self._spawn(server_id, installation)
        self.wait_until(lambda st: self._has_quorum(st), timeout, "a quorum to serve")
        try:  # the stragglers usually join within a second: show a complete ensemble
            self.wait_until(lambda st: all(s.serving for s in st), 10.0, "every server to serve")
        except ZooKeeperUnavailable:
            pass
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop every server (SIGTERM, then SIGKILL after ``timeout`` seconds)."""
        for server_id in self._running_ids():
            self._signal(server_id, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while self._running_ids() and time.monotonic() < deadline:
            time.sleep(0.05)
        for server_id in self._running_ids():
            self._signal(server_id, signal.SIGKILL)
            self._wait_gone(server_id, 5.0)

    def kill(self, server_id: int) -> None:
        """Crash server ``server_id``: SIGKILL its process.  ``ValueError`` if it is
        already down."""
        self._check_id(server_id)
        if self.pid(server_id) is None:
            raise ValueError(f"ZooKeeper server {server_id} is already down")
        self._signal(server_id, signal.SIGKILL)
        self._wait_gone(server_id, 5.0)

    def restart(self, server_id: int, timeout: float = 30.0, wait: bool = True) -> None:
        """Start server ``server_id`` again and, with ``wait``, wait until it serves (it
        rejoins as a follower, or leads if the others need it).  ``ValueError`` if it
        is running."""
        self._check_id(server_id)
        with self._starting():
            if self.pid(server_id) is not None:
                raise ValueError(f"ZooKeeper server {server_id} is already running")
            self._check_port_free(server_id)
            self._spawn(server_id, find_installation())
        if wait:
            self.wait_until(lambda st: st[server_id - 1].serving, timeout,
                            f"server {server_id} to serve")

    # -- observation -------------------------------------------------------------

    def status(self, timeout: float = 1.0) -> list[ServerStatus]:
        """Each server's process and mode, asked of the server itself (``srvr``)."""
        result = []
        for server_id in self.ids:
            pid = self.pid(server_id)
            mode = server_mode("127.0.0.1", self.client_port(server_id), timeout) if pid else "down"
            if pid and mode == "down":
                mode = "starting"
            result.append(ServerStatus(server_id, self.client_port(server_id), pid, mode))
        return result

    def leader(self) -> Optional[int]:
        """The id of the server that says it leads (or the standalone one), or None."""
        for st in self.status():
            if st.mode in ("leader", "standalone"):
                return st.id
        return None

    def is_running(self) -> bool:
        return bool(self._running_ids())

    def wait_until(self, predicate: Callable[[list[ServerStatus]], bool], timeout: float,
                   what: str = "the ensemble") -> list[ServerStatus]:
        """Poll ``status()`` until ``predicate(statuses)`` holds; raise
        ``ZooKeeperUnavailable`` after ``timeout`` seconds, with the log tails."""
        deadline = time.monotonic() + timeout
        while True:
            statuses = self.status(timeout=0.5)
            if predicate(statuses):
                return statuses
            if time.monotonic() > deadline:
                modes = ", ".join(f"server {s.id}: {s.mode}" for s in statuses)
                raise ZooKeeperUnavailable(
                    f"timed out after {timeout:.0f} s waiting for {what} ({modes}).\n"
                    f"{self._log_tails()}")
            time.sleep(0.1)

    def pid(self, server_id: int) -> Optional[int]:
        """The process id of server ``server_id`` if it is running, else None."""
        self._check_id(server_id)
        path = self._server_dir(server_id) / "pid"
        try:
            pid = int(path.read_text())
        except (OSError, ValueError):
            return None
        return pid if self._is_our_process(pid, server_id) else None

    def log_path(self, server_id: int) -> Path:
        self._check_id(server_id)
        return self._server_dir(server_id) / "server.log"

    # -- internals ---------------------------------------------------------------

    def _check_id(self, server_id) -> None:
        if not isinstance(server_id, int) or server_id not in self.ids:
            raise ValueError(f"no ZooKeeper server {server_id!r}: this ensemble has servers "
                             f"{', '.join(map(str, self.ids))}")

    def _server_dir(self, server_id: int) -> Path:
        return self.base_dir / f"server{server_id}"

    def _settings(self) -> dict:
        return {"servers": self.servers, "base_port": self.base_port,
                "tick_ms": self.tick_ms, "heap_mb": self.heap_mb}

    @staticmethod
    def _read_settings(base_dir: Path) -> Optional[dict]:
        try:
            return json.loads((base_dir / "ensemble.json").read_text())
        except (OSError, ValueError):
            return None

    def _check_port_free(self, server_id: int) -> None:
        port = self.client_port(server_id)
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        except OSError:
            return
        raise ZooKeeperError(
            f"port {port} (server {server_id}) is used by a process this ensemble did not start "
            f"(another ZooKeeper?). Stop it, or choose other ports with --port / COURSE_ZK_PORT.")

    def _has_quorum(self, statuses: list[ServerStatus]) -> bool:
        serving = [s for s in statuses if s.serving]
        return len(serving) >= self.quorum and any(
            s.mode in ("leader", "standalone") for s in serving)

    def _config(self, server_id: int) -> str:
        lines = [
            f"tickTime={self.tick_ms}",
            "initLimit=20",
            "syncLimit=8",
            f"dataDir={self._server_dir(server_id) / 'data'}",
            f"clientPort={self.client_port(server_id)}",
            "clientPortAddress=127.0.0.1",
            "minSessionTimeout=1000",
            "maxSessionTimeout=30000",
            "maxClientCnxns=0",
            f"4lw.commands.whitelist={','.join(WORDS)}",
            "admin.enableServer=false",
            "autopurge.snapRetainCount=3",
            "autopurge.purgeInterval=1",
        ]
        if self.servers > 1:
            lines += [f"server.{i}=127.0.0.1:{self.base_port + 1000 + i}:{self.base_port + 2000 + i}"
                      for i in self.ids]
        return "\n".join(lines) + "\n"

    def _write_configs(self) -> None:
        self.base_dir.mkdir(parents=True, exist_ok=True)
        (self.base_dir / "ensemble.json").write_text(json.dumps(self._settings()) + "\n")
        for server_id in self.ids:
            data = self._server_dir(server_id) / "data"
            data.mkdir(parents=True, exist_ok=True)
            (data / "myid").write_text(f"{server_id}\n")
            (self._server_dir(server_id) / "zoo.cfg").write_text(self._config(server_id))

    @contextlib.contextmanager
    def _starting(self):
        """Hold the folder's start lock: two starts at once (Binder's ``start`` script
        and a lesson's first cell, say) must not both spawn a server, or one copy dies
        on a taken port and its pid file may name the dead one."""
        self.base_dir.mkdir(parents=True, exist_ok=True)
        with open(self.base_dir / "start.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _spawn(self, server_id: int, installation) -> None:
        server_dir = self._server_dir(server_id)
        cfg = server_dir / "zoo.cfg"
        if not cfg.exists():
            self._write_configs()
        command = [
            installation.java,
            f"-Xmx{self.heap_mb}m", "-Xms16m", "-Xss512k", "-XX:+UseSerialGC",
            "-XX:TieredStopAtLevel=1", "-Djava.net.preferIPv4Stack=true",
            "-Dzookeeper.admin.enableServer=false",
            # Peers that died are given up on after 1 s, not 5: elections stay quick.
            "-Dzookeeper.cnxTimeout=1000",
            "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn",
            "-cp", installation.classpath,
            "org.apache.zookeeper.server.quorum.QuorumPeerMain", str(cfg),
        ]
        with open(server_dir / "server.log", "ab") as log:
            log.write(f"--- starting server {server_id} at {time.ctime()}\n".encode())
            log.flush()
            process = subprocess.Popen(command, cwd=server_dir, stdin=subprocess.DEVNULL,
                                       stdout=log, stderr=subprocess.STDOUT,
                                       start_new_session=True)
        _CHILDREN[process.pid] = process
        (server_dir / "pid").write_text(f"{process.pid}\n")

    def _is_our_process(self, pid: int, server_id: int) -> bool:
        child = _CHILDREN.get(pid)
        if child is not None and child.poll() is not None:
            del _CHILDREN[pid]
            return False
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass
        cmdline = _cmdline(pid)
        # The pid file may outlive its process and the pid be reused: check it is ours.
        return cmdline is None or str(self._server_dir(server_id) / "zoo.cfg") in cmdline

    def _running_ids(self) -> list[int]:
        return [i for i in self.ids if self.pid(i) is not None]

    def _signal(self, server_id: int, sig: int) -> None:
        pid = self.pid(server_id)
        if pid is not None:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass

    def _wait_gone(self, server_id: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while self.pid(server_id) is not None:
            if time.monotonic() > deadline:
                raise ZooKeeperError(f"server {server_id} did not exit within {timeout} s")
            time.sleep(0.02)

    def _log_tails(self, lines: int = 5) -> str:
        parts = []
        for server_id in self.ids:
            try:
                tail = self.log_path(server_id).read_text(errors="replace").splitlines()[-lines:]
            except OSError:
                tail = ["(no log)"]
            parts.append(f"server {server_id} ({self.log_path(server_id)}):\n  " + "\n  ".join(tail))
        return "\n".join(parts)


def _cmdline(pid: int) -> Optional[str]:
    """The process's command line; '' for a zombie; None where it cannot be read."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            if f.read().rsplit(b")", 1)[-1].split()[0] == b"Z":
                return ""
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        pass
    if sys.platform == "linux":
        return ""
    try:
        out = subprocess.run(["ps", "-p", str(pid), "-o", "stat=,command="],
                             capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return "" if not out or out.startswith("Z") else out
