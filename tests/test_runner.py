"""The Jepsen-style runner: threaded clients → history → checker → report, with a nemesis."""

import json
import socket
import subprocess
import sys
import threading
import time

import plotly.graph_objects as go
import pytest

from course_lib.check import (
    Fault, MemoryKV, MemoryRegister, OperationFailed, ProcessNemesis, cas_workload,
    kv_workload, percentile, register_workload, run_workload,
)


class StaleByOne:
    """Known-bad, thread-safe: every read returns the value before the latest write."""

    def __init__(self):
        self.value = self.previous = None
        self.lock = threading.Lock()

    def __call__(self, input):
        with self.lock:
            if input[0] == "write":
                self.previous, self.value = self.value, input[1]
                return None
            return self.previous


def test_a_correct_register_under_threads_is_linearizable():
    report = run_workload(MemoryRegister(), register_workload(), clients=4, ops=2000, seed=1)
    assert report.ok is True
    assert report.counts() == {"ok": 2000, "fail": 0, "unknown": 0}
    assert {op.client_id for op in report.history} == {0, 1, 2, 3}
    p = report.latency_percentiles()
    assert list(p) == [50, 90, 99, 99.9, 100] and p[50] <= p[99] <= p[100]
    total = sum(rate for _, rate in report.throughput(bucket=0.01)) * 0.01
    assert total == pytest.approx(2000)
    assert "linearizable" in report.summary()


def test_correct_kv_and_cas_stores_are_linearizable():
    assert run_workload(MemoryKV(), kv_workload(keys=3), clients=4, ops=1000).ok is True
    assert run_workload(MemoryRegister(), cas_workload(), clients=4, ops=1000).ok is True


def test_a_register_serving_stale_reads_is_caught():
    report = run_workload(StaleByOne(), register_workload(), clients=3, ops=300, seed=2)
    assert report.ok is False
    assert report.result.failing_operations


def test_definite_failures_leave_the_history_and_errors_become_unknown_outcomes():
    calls = []

    def flaky(input):
        calls.append(input)
        if len(calls) % 3 == 0:
            raise OperationFailed("rejected")
        if len(calls) % 5 == 0:
            raise ConnectionError("connection reset")
        return MemoryRegister.apply(store, input)

    store = MemoryRegister()
    report = run_workload(flaky, register_workload(), clients=1, ops=30)
    counts = report.counts()
    assert counts["fail"] == 10 and counts["unknown"] == 4 and counts["ok"] == 16
    unknown = [op for op in report.history if op.ret is None]
    assert [op.client_id for op in unknown] == [0, 1, 2, 3]
    assert len(report.errors) == 4 and "connection reset" in report.errors[0]
    assert report.ok is True


def test_a_call_past_op_timeout_is_an_unknown_outcome():
    store = MemoryRegister()

    def slow_writes(input):
        if input[0] == "write":
            time.sleep(0.2)
        return store(input)

    report = run_workload(slow_writes, register_workload(), clients=2, ops=10,
                          op_timeout=0.05)
    unknown = [op for op in report.history if op.ret is None]
    assert unknown and all(op.input[0] == "write" for op in unknown)
    assert report.ok is True


def test_a_run_bounded_by_duration_and_one_client_object_each():
    made = []

    class Client:
        def __init__(self, worker):
            self.closed = False
            made.append(self)

        def __call__(self, input):
            return None if input[0] == "write" else shared.value

        def close(self):
            self.closed = True

    shared = MemoryRegister()
    report = run_workload(None, register_workload(read_fraction=1.0), client_factory=Client,
                          clients=3, duration=0.1, think_time=0.001, check_history=False)
    assert 0.1 <= report.duration < 1.0
    assert len(made) == 3 and all(c.closed for c in made)
    assert report.result is None and report.ok is None and report.history


def test_runs_are_reproducible_in_what_they_ask():
    a = run_workload(MemoryKV(), kv_workload(), clients=3, ops=60, seed=5)
    b = run_workload(MemoryKV(), kv_workload(), clients=3, ops=60, seed=5)
    by_client = lambda r: sorted((op.client_id, op.input) for op in r.history)  # noqa: E731
    assert by_client(a) == by_client(b)


def test_bad_arguments_raise_value_error():
    with pytest.raises(ValueError, match="exactly one"):
        run_workload(None, register_workload(), ops=1)
    with pytest.raises(ValueError, match="bound the run"):
        run_workload(MemoryRegister(), register_workload())
    with pytest.raises(ValueError, match="clients"):
        run_workload(MemoryRegister(), register_workload(), clients=0, ops=1)
    with pytest.raises(ValueError, match="nemesis"):
        run_workload(MemoryRegister(), register_workload(), ops=1, nemesis=object())
    with pytest.raises(ValueError, match="percentiles"):
        percentile([1.0], [101])


def test_percentile_interpolates():
    assert percentile([4, 1, 3, 2], [0, 50, 100]) == {0: 1, 50: 2.5, 100: 4}
    assert percentile([], [50]) == {}


def test_report_plots():
    report = run_workload(MemoryRegister(), register_workload(), clients=2, ops=100)
    fig = report.plot()
    assert isinstance(fig, go.Figure)
    assert {t.name for t in fig.data} >= {"read ok", "write ok", "ok ops/s"}
    assert isinstance(report.plot_history(), go.Figure)


# ---------------------------------------------------------------- a real process

SERVER = r"""
import json, socketserver, sys, threading
value, lock = None, threading.Lock()
class Handler(socketserver.StreamRequestHandler):
    def handle(self):
        global value
        for line in self.rfile:
            kind, arg = json.loads(line)
            with lock:
                if kind == "write":
                    value, out = arg, None
                else:
                    out = value
            self.wfile.write((json.dumps(out) + "\n").encode())
socketserver.ThreadingTCPServer.daemon_threads = True
server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
"""


class Connection:
    """One client's connection; any error or timeout drops it (the reply may come later)."""

    def __init__(self, port):
        self.port = port
        self.sock = None

    def __call__(self, input):
        try:
            if self.sock is None:
                self.sock = socket.create_connection(("127.0.0.1", self.port), timeout=0.2)
                self.reader = self.sock.makefile("rb")
            self.sock.sendall((json.dumps(list(input)) + "\n").encode())
            line = self.reader.readline()
            if not line:
                raise ConnectionError("server closed the connection")
            return json.loads(line)
        except BaseException:
            self.close()
            raise

    def close(self):
        if self.sock is not None:
            self.sock.close()
            self.sock = None


def test_a_real_server_paused_by_the_nemesis_stays_linearizable():
    server = subprocess.Popen([sys.executable, "-c", SERVER], stdout=subprocess.PIPE)
    try:
        port = int(server.stdout.readline())
        nemesis = ProcessNemesis({"server": server}, [Fault(0.3, "pause", "server", 0.4)])
        report = run_workload(None, register_workload(), client_factory=lambda w: Connection(port),
                              clients=3, duration=1.2, think_time=0.002, nemesis=nemesis,
                              op_timeout=0.25)
    finally:
        server.kill()
        server.wait()
    (fault,) = report.faults
    assert fault.kind == "pause" and 0.3 <= fault.start < 0.5 and 0.7 <= fault.end < 1.2
    unknown = [op for op in report.history if op.ret is None]
    assert unknown and all(fault.start - 0.3 <= op.call <= fault.end for op in unknown)
    assert report.counts()["ok"] > 20
    assert report.ok is True, report.summary()
    assert report.plot().layout.shapes
