"""ProcessCluster: a Raft cluster of real OS processes, with SimCluster's method names.

    with ProcessCluster(5, data_dir="/tmp/raft") as c:    # nodes n1..n5, one process each
        c.start()                                          # returns once a leader exists
        k = c.client("alice"); k.put("x", "1"); k.get("x")
        c.crash(c.leader()); c.restart("n1")               # SIGKILL; a new process, same data
        c.pause("n2"); c.resume("n2")                      # SIGSTOP / SIGCONT
        c.partition({"n1", "n2"}, {"n3", "n4", "n5"}); c.heal()
        c.add_server("n6"); c.remove_server("n2")         # one server at a time (§4.2.1)
        history = c.history                                # course_lib.check Operations

Each node is ``python -m course_lib.net.node`` (see :mod:`.node`) with its own data
directory ``data_dir/<id>`` (a WAL, fsynced before it sends) and TCP port; its stderr
goes to ``data_dir/<id>.log``.  Nodes die with this process (``PR_SET_PDEATHSIG`` and a
parent-pid watchdog).  Linux signals a child when the *thread* that forked it ends, so
every node is forked by one thread of the cluster's own, which lives until ``stop()``:
``crash``/``restart`` may be called from any thread (a nemesis's, a widget's worker).

Partitions are done by the nodes themselves: a node told it is cut off from some peers
drops every frame to and from them.  The cluster remembers the cuts and hands them to a
node that restarts or resumes.  Times in :attr:`history` are wall-clock seconds
(``time.time()``); an operation that timed out has ``ret=None``.

Membership: :meth:`ProcessCluster.add_server` starts the new server's process with no
configuration (``--join``), gives every running node its address (a control request;
a paused one gets it on resume, a down one at restart) and has the leader propose the
change; :meth:`ProcessCluster.remove_server` has the leader propose the removal (of
itself too: it steps down once it is committed) and then stops the removed process.
Both return once the change is committed, and update :attr:`members`.

Another core: ``ProcessCluster(3, data_dir=..., core_class=MyRaftNode,
kv_factory=...)`` runs a class with :class:`~course_lib.raft.RaftNode`'s host interface
(exercise 2's learner-written node, often defined in a notebook cell, so in
``__main__``, which a fresh ``python -m course_lib.net.node`` cannot import) in every
node process.  The classes travel by value: the cluster pickles them with
``cloudpickle`` at construction (a class that is not one, or cannot be pickled, is a
``ValueError`` there), writes the pickle to ``data_dir/core.pickle`` and passes its path
with ``--core``.  ``read_mode`` (SimCluster's) defaults to ``"read_index"`` for the
course's core and ``"log"`` for another (the lab's base serves reads through the log).
Left ``None``, nothing is pickled and every command is exactly the default one.

A node whose core (or driver) raised exits with its traceback in ``data_dir/<id>.log``
(:func:`.node.fatal`): :meth:`ProcessCluster.start`, :meth:`wait_for_leader` and a
client operation then raise :class:`NodeCrashed` at once with that traceback's tail and
the log's path, instead of waiting for a timeout.

Bad input raises ``ValueError`` naming the problem (unknown node id, a port already in
use, a corrupt data dir, a node already down); no method ever deletes data.
"""

from __future__ import annotations

import atexit
import concurrent.futures
import json
import os
import re
import select
import signal
import socket
import subprocess
import sys
import threading
import time
import weakref
from pathlib import Path
from typing import Iterable, Optional

from ..raft.client import ClientTimeout
from . import codec
from .client import NetClient, NodeCrashed

_ID = re.compile(r"[A-Za-z0-9_.-]{1,32}")
CORE_FILE = "core.pickle"           # in data_dir: another core, for the nodes (--core)
# Modules sent by value with a core instead of imported by each node: the lab's plumbing
# (exercise 2's RaftBase, LearnerKV) lives in the grading package, whose import (it reads
# notebooks: nbformat, jsonschema, and the whole suite) costs a node process a second of
# CPU — ten on a busy machine, measured — for a few hundred lines it needs.
BY_VALUE = ("course_lib.grading.",)
# what a core class needs for RaftDriver to host it (RaftNode's host interface)
CORE_METHODS = ("tick", "step", "propose", "propose_many", "propose_conf_change",
                "has_ready", "ready", "advance", "compact")
_ROOT = str(Path(__file__).resolve().parents[2])          # the folder holding course_lib
_LIVE: "weakref.WeakSet[ProcessCluster]" = weakref.WeakSet()


@atexit.register
def _stop_all() -> None:
    for c in list(_LIVE):
        c.stop()


def pickle_core(core_class, kv_factory) -> bytes:
    """``{"core_class", "kv_factory", "sources"}`` pickled for :mod:`.node` ``--core``;
    ``ValueError`` naming the problem for what is not a core class or cannot be pickled.

    cloudpickle sends classes and functions defined in a notebook or a function by
    value, and those of importable modules by reference (the node imports them) —
    except the modules under :data:`BY_VALUE`, sent by value too.  ``sources``:
    :func:`cell_sources`."""
    if core_class is not None:
        if not isinstance(core_class, type):
            raise ValueError(f"core_class must be a class with RaftNode's host interface (e.g. "
                             f"a subclass of course_lib.grading.ex2.RaftBase), got {core_class!r:.100}")
        missing = [m for m in CORE_METHODS if not callable(getattr(core_class, m, None))]
        if missing:
            raise ValueError(f"core_class {core_class.__qualname__} lacks {', '.join(missing)}: "
                             f"a core needs RaftNode's host interface ({', '.join(CORE_METHODS)})")
    if kv_factory is not None and not callable(kv_factory):
        raise ValueError(f"kv_factory must be a callable that returns a state machine, got "
                         f"{kv_factory!r:.100}")
    try:
        import cloudpickle
    except ImportError:
        raise ValueError("core_class / kv_factory need cloudpickle (pip install "
                         "cloudpickle==3.1.2, see requirements.txt)") from None
    classes, functions = _reachable(core_class, kv_factory)
    by_value = sorted({sys.modules[m] for m in {x.__module__ for x in classes | functions}
                       if m.startswith(BY_VALUE) and m in sys.modules}, key=lambda m: m.__name__)
    try:
        for module in by_value:
            cloudpickle.register_pickle_by_value(module)
        try:
            return cloudpickle.dumps({"core_class": core_class, "kv_factory": kv_factory,
                                      "sources": cell_sources(functions)})
        finally:
            for module in by_value:
                cloudpickle.unregister_pickle_by_value(module)
    except Exception as e:
        what = " and ".join(f"{name} {obj!r:.80}" for name, obj in
                            (("core_class", core_class), ("kv_factory", kv_factory)) if obj is not None)
        raise ValueError(f"cannot send {what} to the node processes: cloudpickle cannot pickle "
                         f"it ({type(e).__name__}: {e})") from None


def _reachable(*objs) -> tuple:
    """``(classes, functions)`` reachable from ``objs``: classes along their MRO, their
    methods, the classes and functions those use (module globals), a callable object's
    class and attributes (a factory's) — three levels deep."""
    import types

    classes: set = set()
    functions: set = set()
    seen: set = set()

    def names(code) -> set:
        out = set(code.co_names)
        for c in code.co_consts:
            if isinstance(c, types.CodeType):
                out |= names(c)
        return out

    def function(x, depth: int = 0) -> None:
        if isinstance(x, (staticmethod, classmethod)):
            x = x.__func__
        if isinstance(x, property):
            for f in (x.fget, x.fset, x.fdel):
                function(f, depth)
        elif isinstance(x, types.FunctionType) and x not in functions:
            functions.add(x)
            for name in names(x.__code__):           # the classes and functions it uses
                g = x.__globals__.get(name)
                if isinstance(g, (type, types.FunctionType)):
                    visit(g, depth + 1)

    def visit(x, depth: int = 0) -> None:
        if x is None or id(x) in seen or depth > 3:
            return
        seen.add(id(x))
        if isinstance(x, type):
            for cls in x.__mro__:
                classes.add(cls)
                for v in list(vars(cls).values()):
                    function(v, depth)
            return
        function(x, depth)
        if not isinstance(x, types.FunctionType):
            visit(type(x), depth + 1)
        for v in list(getattr(x, "__dict__", {}).values()):
            if isinstance(v, type) or callable(v):
                visit(v, depth + 1)

    for obj in objs:
        visit(obj)
    return classes, functions


def cell_sources(functions) -> dict:
    """``{filename: linecache entry}`` for the code of ``functions`` whose file is not on
    disk: a notebook cell's, which IPython keeps in :mod:`linecache` only.  Sent with the
    pickle, so that a node's traceback shows the lines of a class defined in a notebook."""
    import linecache

    out: dict = {}
    for f in functions:
        filename = f.__code__.co_filename
        if filename in out or os.path.exists(filename):
            continue
        entry = linecache.cache.get(filename)
        if entry is not None and len(entry) == 4 and entry[2]:
            out[filename] = (entry[0], None, list(entry[2]), entry[3])
    return out


def port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def free_ports(host: str, n: int) -> list:
    socks, ports = [], []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((host, 0))
            socks.append(s)
            ports.append(s.getsockname()[1])
    finally:
        for s in socks:
            s.close()
    return ports


class ProcessCluster:
    """``n`` Raft servers ``n1..nn``, each an OS process on ``host``."""

    def __init__(self, n: int = 3, data_dir=None, base_port: Optional[int] = None, *,
                 host: str = "127.0.0.1", tick_ms: float = 10,
                 election_timeout_ms: tuple = (300, 600), heartbeat_ms: float = 50,
                 fsync: bool = True, snapshot_threshold: Optional[int] = 1000,
                 client_retry_ms: float = 500, client_timeout_ms: float = 5000,
                 start_timeout_s: float = 15, core_class=None, kv_factory=None,
                 read_mode: Optional[str] = None) -> None:
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise ValueError(f"cluster size must be an int >= 1, got {n!r}")
        if data_dir is None:
            raise ValueError("data_dir is required: the nodes' WALs live there (it is never deleted)")
        self.data_dir = Path(data_dir).absolute()   # the nodes run with another cwd
        if self.data_dir.exists() and not self.data_dir.is_dir():
            raise ValueError(f"data_dir {self.data_dir} exists and is not a directory")
        lo, hi = election_timeout_ms
        if not (0 < heartbeat_ms < lo <= hi):
            raise ValueError(f"need 0 < heartbeat_ms < election lo <= hi, got {heartbeat_ms}, "
                             f"{election_timeout_ms}")
        if read_mode is None:
            read_mode = "read_index" if core_class is None else "log"
        if read_mode not in ("read_index", "log"):
            raise ValueError(f"read_mode must be 'read_index' or 'log', got {read_mode!r}")
        self.read_mode = read_mode
        self.core_class = core_class
        self.kv_factory = kv_factory
        # pickled now, so a class that cannot travel fails here, not in the children
        self._core_pickle: Optional[bytes] = (
            None if core_class is None and kv_factory is None else pickle_core(core_class, kv_factory))
        self._core_written = False
        self.members: tuple = tuple(f"n{i}" for i in range(1, n + 1))
        self.host = host
        if base_port is None:
            ports = free_ports(host, n)
        else:
            if not isinstance(base_port, int) or not 1024 <= base_port <= 65535 - n:
                raise ValueError(f"base_port must be an int in [1024, {65535 - n}], got {base_port!r}")
            ports = [base_port + i for i in range(n)]
        self.ports = dict(zip(self.members, ports))
        self.tick_ms = tick_ms
        self.election_timeout_ms = (lo, hi)
        self.heartbeat_ms = heartbeat_ms
        self.fsync = fsync
        self.snapshot_threshold = snapshot_threshold
        self.client_retry_ms = client_retry_ms
        self.client_timeout_ms = client_timeout_ms
        self.start_timeout_s = start_timeout_s
        self.procs: dict[str, Optional[subprocess.Popen]] = {m: None for m in self.members}
        self._paused: set = set()
        self._cuts: dict[str, set] = {m: set() for m in self.members}
        # each node's bootstrap configuration (() for one added later: it joins) and
        # the ids removed from the cluster (their processes stopped, their data kept)
        self._bootstrap: dict[str, tuple] = {m: self.members for m in self.members}
        self._removed: set = set()
        self._last: dict[str, dict] = {}
        self.clients: dict[str, NetClient] = {}
        self._ops: list = []
        self._lock = threading.Lock()
        self._pool = concurrent.futures.ThreadPoolExecutor(max(2, n), thread_name_prefix="status")
        # the one thread that forks the nodes (see the module docstring): it must outlive them
        self._forker = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="raft-forker")
        self.started = False
        self.torn: dict = {}                 # node -> torn WAL tail truncated at its last start
        self._started_pids: set = set()      # processes that printed their ready line
        _LIVE.add(self)

    # -- checks ------------------------------------------------------------------------------
    def _check(self, nid) -> str:
        if isinstance(nid, str) and nid in self._removed:
            raise ValueError(f"node {nid} was removed from the cluster; nodes: {list(self.members)}")
        if not isinstance(nid, str) or nid not in self.members:
            raise ValueError(f"unknown node {nid!r}; nodes: {list(self.members)}")
        return nid

    def _alive(self, nid: str) -> bool:
        p = self.procs[nid]
        return p is not None and p.poll() is None

    def address(self, nid: str) -> tuple:
        return (self.host, self.ports[self._check(nid)])

    # -- processes -------------------------------------------------------------------------------
    def _command(self, nid: str) -> list:
        peers = ",".join(f"{m}={self.host}:{p}" for m, p in self.ports.items()
                         if m not in self._removed)
        lo, hi = self.election_timeout_ms
        cmd = [sys.executable, "-m", "course_lib.net.node", "--id", nid, "--peers", peers,
               "--data", str(self.data_dir / nid), "--tick-ms", str(self.tick_ms),
               "--election-ms", f"{lo},{hi}", "--heartbeat-ms", str(self.heartbeat_ms),
               "--snapshot-threshold", str(self.snapshot_threshold or 0),
               "--parent-pid", str(os.getpid())]
        if self._cuts[nid]:
            cmd += ["--cut", ",".join(sorted(self._cuts[nid]))]
        boot = self._bootstrap[nid]
        cmd += ["--voters", ",".join(boot)] if boot else ["--join"]
        if not self.fsync:
            cmd.append("--no-fsync")
        if self._core_pickle is not None:
            cmd += ["--core", str(self.data_dir / CORE_FILE)]
        if self.read_mode != "read_index":
            cmd += ["--read-mode", self.read_mode]
        return cmd

    def _write_core(self) -> None:
        """Write the pickled core for the nodes, once.  Loading it in a node is safe: this
        process wrote it, for its own children, in its own data dir; it never comes from
        the network (frames are JSON of whitelisted types, :mod:`.codec`)."""
        if self._core_pickle is None or self._core_written:
            return
        path = self.data_dir / CORE_FILE
        tmp = path.with_name(CORE_FILE + ".tmp")
        tmp.write_bytes(self._core_pickle)
        os.replace(tmp, path)
        self._core_written = True

    def _spawn(self, nid: str) -> subprocess.Popen:
        port = self.ports[nid]
        if not port_free(self.host, port):
            raise ValueError(f"port {port} (for node {nid}) is already in use on {self.host}")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._write_core()
        env = dict(os.environ)
        env["PYTHONPATH"] = _ROOT + os.pathsep + env.get("PYTHONPATH", "")
        command = self._command(nid)

        def fork() -> subprocess.Popen:
            with open(self.data_dir / f"{nid}.log", "ab") as log:
                return subprocess.Popen(command, stdin=subprocess.DEVNULL,
                                        stdout=subprocess.PIPE, stderr=log, env=env, cwd=_ROOT)

        p = self._forker.submit(fork).result()
        self.procs[nid] = p
        return p

    def _await_ready(self, nid: str, deadline: float) -> None:
        p = self.procs[nid]
        line = b""
        while time.monotonic() < deadline:
            r, _, _ = select.select([p.stdout], [], [], max(0.0, min(0.2, deadline - time.monotonic())))
            if r:
                line = p.stdout.readline()
                if line:
                    break
            if p.poll() is not None:
                break
        if line:
            info = json.loads(line)
            if info.get("torn"):
                self.torn[nid] = info["torn"]
            self._started_pids.add(p.pid)
            return
        code = p.poll()
        if code is None:
            self._kill(nid)
            raise RuntimeError(f"node {nid} did not start within the timeout")
        tail = self._traceback_tail(nid)
        if tail:                      # the exception's line first, then where it was raised
            raise ValueError(f"node {nid} failed to start (exit {code}): {tail.splitlines()[-1]}\n"
                             f"{tail}\n(the node's log: {self.data_dir / f'{nid}.log'})")
        raise ValueError(f"node {nid} failed to start (exit {code}): {self._log_error(nid)}")

    def _log_error(self, nid: str) -> str:
        try:
            lines = (self.data_dir / f"{nid}.log").read_text(errors="replace").strip().splitlines()
        except OSError:
            return "(no log)"
        errs = [x for x in lines if x.startswith(("error:", "fatal:"))]
        return (errs or lines or ["(empty log)"])[-1]

    def _traceback_tail(self, nid: str, lines: int = 14) -> str:
        """The last traceback in ``nid``'s log (its ``fatal:`` line first, if any), cut to
        its last ``lines`` lines; "" if the log holds none."""
        try:
            text = (self.data_dir / f"{nid}.log").read_text(errors="replace").rstrip().splitlines()
        except OSError:
            return ""
        start = max((i for i, x in enumerate(text) if x.startswith("Traceback")), default=None)
        if start is None:
            return ""
        head = [text[start - 1]] if start > 0 and text[start - 1].startswith("fatal:") else []
        body = text[start:]
        if len(body) > lines:
            body = [body[0], "  ..."] + body[-(lines - 2):]
        return "\n".join(head + body)

    def crashed(self) -> dict:
        """``{node: exit status}`` of the node processes that started and then exited by
        themselves with an error (a core or driver that raised: :func:`.node.fatal`);
        nodes this cluster killed or stopped are not in it."""
        out = {}
        for nid, p in self.procs.items():
            if p is not None and p.pid in self._started_pids:
                code = p.poll()
                if code is not None and code > 0:
                    out[nid] = code
        return out

    def raise_for_crashed(self) -> None:
        """:class:`NodeCrashed` naming the first crashed node (:meth:`crashed`), with its
        traceback's tail and its log's path; nothing if none crashed."""
        dead = self.crashed()
        if not dead:
            return
        nid, code = next(iter(dead.items()))
        tail = self._traceback_tail(nid) or self._log_error(nid)
        others = [n for n in dead if n != nid]
        raise NodeCrashed(f"node {nid} crashed (exit status {code}): its core or driver raised"
                          + (f" (and {', '.join(others)} too)" if others else "")
                          + f"; the end of its log ({self.data_dir / f'{nid}.log'}):\n{tail}")

    def _kill(self, nid: str) -> None:
        p = self.procs[nid]
        if p is None:
            return
        if p.poll() is None:
            p.send_signal(signal.SIGKILL)
        p.wait()
        if p.stdout is not None:
            p.stdout.close()
        self._paused.discard(nid)

    # -- lifecycle ----------------------------------------------------------------------------------
    def start(self) -> "ProcessCluster":
        """Start every node; return once one is leader (``TimeoutError`` after
        ``start_timeout_s``, naming what each node reports)."""
        if self.started:
            raise ValueError("cluster already started")
        for nid, port in self.ports.items():
            if not port_free(self.host, port):
                raise ValueError(f"port {port} (for node {nid}) is already in use on {self.host}")
        self.started = True
        deadline = time.monotonic() + self.start_timeout_s
        try:
            for nid in self.members:
                self._spawn(nid)
            for nid in self.members:
                self._await_ready(nid, deadline)
        except BaseException:
            self.stop()
            raise
        try:
            lid = self.wait_for_leader(max(0.0, deadline - time.monotonic()))
        except NodeCrashed:
            self.stop()
            raise
        if not lid:
            states = {n: (s["state"], s["term"]) for n, s in self.states().items()}
            self.stop()
            raise TimeoutError(f"no leader within {self.start_timeout_s} s; nodes report {states}")
        return self

    def wait_for_leader(self, timeout_s: float, other_than: Optional[str] = None) -> Optional[str]:
        """Poll until a leader (not ``other_than``) exists; its id, or None
        (:class:`NodeCrashed` at once if a node's core raised)."""
        deadline = time.monotonic() + timeout_s
        while True:
            self.raise_for_crashed()
            lid = self.leader()
            if lid is not None and lid != other_than:
                return lid
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.05)

    def stop(self) -> None:
        """Stop every node (SIGTERM, SIGKILL after 3 s); idempotent.  Data stays."""
        for nid in self.procs:
            p = self.procs.get(nid)
            if p is not None and p.poll() is None:
                if nid in self._paused:
                    p.send_signal(signal.SIGCONT)
                p.send_signal(signal.SIGTERM)
        end = time.monotonic() + 3
        for nid in self.procs:
            p = self.procs.get(nid)
            if p is None:
                continue
            try:
                p.wait(max(0.0, end - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            self._kill(nid)
        for k in self.clients.values():
            k.close()
        self._paused.clear()
        _LIVE.discard(self)

    def __enter__(self) -> "ProcessCluster":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
        self._pool.shutdown(wait=False)
        self._forker.shutdown(wait=False)

    # -- views ------------------------------------------------------------------------------------
    def status(self, nid: str, timeout: float = 1.0) -> Optional[dict]:
        """What node ``nid`` reports now (:meth:`.node.NetNode.status`), or None if it is
        down, paused or does not answer within ``timeout`` s."""
        s = self._control(self._check(nid), ("status",), timeout)
        if s is not None:
            self._last[nid] = s
        return s

    def _statuses(self) -> dict:
        return dict(zip(self.members, self._pool.map(self.status, self.members)))

    def leader(self) -> Optional[str]:
        """The responding leader with the highest term, or None."""
        best, term = None, -1
        for nid, s in self._statuses().items():
            if s is not None and s["state"] == "leader" and s["term"] > term:
                best, term = nid, s["term"]
        return best

    def states(self) -> dict:
        """Per-node summary, SimCluster's keys (plus ``pid``, ``port``, ``responding``,
        ``term_runs``: the terms of the log's last entries, :func:`.node.term_runs`);
        a paused node shows what it last reported."""
        out = {}
        for nid, s in self._statuses().items():
            alive = self._alive(nid)
            last = s if s is not None else (self._last.get(nid) if alive else None)
            row = {"alive": alive, "paused": nid in self._paused, "responding": s is not None,
                   "pid": self.procs[nid].pid if alive else None, "port": self.ports[nid],
                   "member": True, "cut": tuple(sorted(self._cuts[nid]))}
            for k in ("state", "term", "voted_for", "leader_id", "last_index", "commit_index",
                      "last_applied", "snapshot_index", "term_runs"):
                row[k] = None if last is None else last[k]
            out[nid] = row
        return out

    @property
    def nodes(self) -> dict:
        return {nid: self.procs[nid] for nid in self.members}

    # -- faults -----------------------------------------------------------------------------------
    def crash(self, nid: str) -> None:
        """SIGKILL: the node keeps only what its WAL holds."""
        self._check(nid)
        if not self._alive(nid):
            raise ValueError(f"node {nid} is already down")
        self._kill(nid)

    def restart(self, nid: str, timeout_s: float = 10) -> None:
        """A new process for a crashed node, from its data dir."""
        self._check(nid)
        if not self.started:
            raise ValueError("cluster not started; call start()")
        if self._alive(nid):
            raise ValueError(f"node {nid} is running; crash it first")
        self._kill(nid)                       # reap a process that died by itself
        self._spawn(nid)
        self._await_ready(nid, time.monotonic() + timeout_s)

    def pause(self, nid: str) -> None:
        """SIGSTOP: a process frozen (a long GC pause, a stalled VM)."""
        self._check(nid)
        if not self._alive(nid):
            raise ValueError(f"node {nid} is down; it cannot be paused")
        if nid in self._paused:
            raise ValueError(f"node {nid} is already paused")
        self.procs[nid].send_signal(signal.SIGSTOP)
        self._paused.add(nid)

    def resume(self, nid: str) -> None:
        self._check(nid)
        if nid not in self._paused:
            raise ValueError(f"node {nid} is not paused")
        self._paused.discard(nid)
        if self._alive(nid):
            self.procs[nid].send_signal(signal.SIGCONT)
            self._push_cuts(nid)
            self._push_peers(nid)            # servers added while it was stopped

    def timeout_now(self, nid: str) -> None:
        """Make ``nid`` campaign now (TimeoutNow, thesis §3.10), as SimCluster's."""
        self._check(nid)
        if not self._alive(nid):
            raise ValueError(f"cannot force an election on {nid}: it is down")
        if nid in self._paused:
            raise ValueError(f"cannot force an election on {nid}: it is paused")
        answer = self._control(nid, ("timeout_now",))
        if answer is None:
            raise ValueError(f"{nid} did not answer the request to campaign")
        if not answer.get("ok"):
            raise ValueError(answer.get("error") or f"{nid} refused to campaign")

    def partition(self, *groups: Iterable[str]) -> None:
        """Cut every link between nodes of different groups, both ways (nodes named in
        no group keep their links)."""
        if len(groups) < 2:
            raise ValueError("partition needs at least two groups")
        seen: dict = {}
        clean = []
        for i, g in enumerate(groups):
            if isinstance(g, str):
                raise ValueError(f"partition group {g!r} must be a set of node ids, not a str")
            g = {self._check(x) for x in g}
            if not g:
                raise ValueError("partition groups must not be empty")
            for x in g:
                if x in seen:
                    raise ValueError(f"node {x} is in two partition groups")
                seen[x] = i
            clean.append(g)
        for g in clean:
            for x in g:
                self._cuts[x] |= {y for h in clean if h is not g for y in h}
        for nid in self.members:
            self._push_cuts(nid)

    def isolate(self, nid: str) -> None:
        self._check(nid)
        self.partition({nid}, set(self.members) - {nid})

    def heal(self) -> None:
        for nid in self.members:
            self._cuts[nid] = set()
            self._push_cuts(nid)

    def _push_cuts(self, nid: str) -> None:
        """Tell a running node its cuts (a paused or down one learns them later)."""
        if not self._alive(nid) or nid in self._paused:
            return
        try:
            with socket.create_connection(self.address(nid), timeout=2) as sock:
                sock.settimeout(2)
                codec.send_frame(sock, ("control",))
                codec.send_frame(sock, ("cut", tuple(sorted(self._cuts[nid]))))
                codec.recv_frame(sock)
        except (OSError, ValueError) as e:
            raise RuntimeError(f"could not tell node {nid} its partition: {e}") from None

    # -- membership (thesis §4.2.1: one server at a time) ---------------------------------------
    def add_server(self, nid: str, timeout_s: float = 10) -> None:
        """Start server ``nid`` (an empty log, in no configuration yet), tell the running
        nodes its address, and have the leader add it; returns once the change is
        committed (it then counts in the quorum; it catches up from the leader's log, or
        a snapshot).  ``ValueError`` for a bad or existing id, ``ClientTimeout`` if the
        change does not commit within ``timeout_s``."""
        if not self.started:
            raise ValueError("cluster not started; call start()")
        if not isinstance(nid, str) or not _ID.fullmatch(nid):
            raise ValueError(f"server id must be 1-32 letters, digits, '_', '-' or '.', got {nid!r}")
        if nid in self.members:
            raise ValueError(f"{nid!r} is already a member")
        if nid in self._removed:
            raise ValueError(f"{nid!r} was removed from this cluster; add a server with a new id")
        if nid in self.clients:
            raise ValueError(f"{nid!r} is a client id")
        if not isinstance(timeout_s, (int, float)) or isinstance(timeout_s, bool) or timeout_s <= 0:
            raise ValueError(f"timeout_s must be > 0, got {timeout_s!r}")
        deadline = time.monotonic() + timeout_s
        if nid not in self.procs or not self._alive(nid):
            if nid not in self.ports:
                self.ports[nid] = free_ports(self.host, 1)[0]
            self.procs.setdefault(nid, None)
            self._cuts.setdefault(nid, set())
            self._bootstrap[nid] = ()
            for m in self.members:
                self._push_peers(m)
            self._spawn(nid)
            self._await_ready(nid, deadline)
        self._change_membership("add", nid, deadline)

    def remove_server(self, nid: str, timeout_s: float = 10) -> None:
        """Have the leader remove server ``nid`` (the leader itself too: it steps down
        once the change is committed), then stop its process; its data dir stays.
        ``ValueError`` for an unknown id or the last member, ``ClientTimeout`` if the
        change does not commit within ``timeout_s``."""
        self._check(nid)
        if not self.started:
            raise ValueError("cluster not started; call start()")
        if len(self.members) == 1:
            raise ValueError(f"cannot remove {nid!r}: it is the last member")
        if not isinstance(timeout_s, (int, float)) or isinstance(timeout_s, bool) or timeout_s <= 0:
            raise ValueError(f"timeout_s must be > 0, got {timeout_s!r}")
        self._change_membership("remove", nid, time.monotonic() + timeout_s)
        self._removed.add(nid)
        p = self.procs.get(nid)
        if p is not None and p.poll() is None:
            if nid in self._paused:
                p.send_signal(signal.SIGCONT)
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(3)
            except subprocess.TimeoutExpired:
                pass
        self._kill(nid)

    def _change_membership(self, op: str, nid: str, deadline: float) -> None:
        """Propose ``op nid`` at the leader until it is committed there (a lost leader or
        a change still in progress is retried), then update :attr:`members`."""
        last = "no leader"
        while time.monotonic() < deadline:
            lid = self.leader()
            if lid is None:
                time.sleep(0.05)
                continue
            r = self._control(lid, ("conf_change", op, nid))
            if r is None or not r.get("ok"):
                if r is not None and not r.get("retry"):
                    s = self.status(lid) or {}
                    if self._settled(s, op, nid):
                        return self._note_members(s["committed_voters"])   # a retry after success
                    raise ValueError(f"{op} {nid}: {r.get('error')}")
                last = (r or {}).get("error", f"{lid} did not answer")
                time.sleep(0.05)
                continue
            index, term = r["index"], r["term"]
            while time.monotonic() < deadline:
                s = self.status(lid)
                if s is None or s["term"] != term:
                    break                            # the leader went away: try again
                if s["commit_index"] >= index:
                    if self._settled(s, op, nid):
                        return self._note_members(s["committed_voters"])
                    break
                time.sleep(0.02)
            last = f"proposed at index {index} in term {term} on {lid}, not committed"
        raise ClientTimeout(f"membership change {op} {nid!r} not committed in time ({last})")

    @staticmethod
    def _settled(status: dict, op: str, nid: str) -> bool:
        return (nid in status.get("committed_voters", ())) == (op == "add")

    def _note_members(self, voters) -> None:
        voters = tuple(voters)
        self.members = tuple(m for m in self.members if m in voters) + \
            tuple(v for v in voters if v not in self.members)

    def _control(self, nid: str, req, timeout: float = 2.0) -> Optional[dict]:
        """One control request to a running node; its answer, or None if it does not answer."""
        if not self._alive(nid) or nid in self._paused:
            return None
        try:
            with socket.create_connection((self.host, self.ports[nid]), timeout=timeout) as sock:
                sock.settimeout(timeout)
                codec.send_frame(sock, ("control",))
                codec.send_frame(sock, req)
                return codec.recv_frame(sock)
        except (OSError, ValueError):
            return None

    def _push_peers(self, nid: str) -> None:
        """Give a running node the address of every server (it learns the new ones)."""
        book = tuple((m, self.host, p) for m, p in self.ports.items() if m not in self._removed)
        self._control(nid, ("peers", book))

    # -- clients --------------------------------------------------------------------------------------
    def client(self, client_id: str) -> NetClient:
        """The client ``client_id`` (created on first use); use each from one thread."""
        if not isinstance(client_id, str) or not client_id:
            raise ValueError(f"client id must be a non-empty str, got {client_id!r}")
        if client_id in self.procs:
            raise ValueError(f"{client_id!r} is a server id")
        with self._lock:
            k = self.clients.get(client_id)
            if k is None:
                k = NetClient(client_id, self, retry_ms=self.client_retry_ms,
                              timeout_ms=self.client_timeout_ms)
                self.clients[client_id] = k
        return k

    def _record(self, op) -> None:
        with self._lock:
            self._ops.append(op)

    @property
    def history(self) -> list:
        """Every client operation, as ``course_lib.check.history.Operation`` records."""
        with self._lock:
            return list(self._ops)

    def __repr__(self) -> str:
        up = sum(self._alive(n) for n in self.members)
        return f"<ProcessCluster {len(self.members)} nodes, {up} up, data {self.data_dir}>"


__all__ = ["ProcessCluster", "ClientTimeout", "NodeCrashed"]
