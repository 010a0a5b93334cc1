"""Real heartbeat senders (OS processes, UDP on loopback) feeding a phi detector."""

import subprocess
import sys
import textwrap
import time

import pytest

from course_lib.detect import NodeStatus
from course_lib.detect.heartbeat import (
    decode_heartbeat, encode_control, encode_heartbeat, _parse_control,
)
from course_lib.detect.processes import ProcessCluster


def process_state(pid):
    """The /proc state letter (R, S, T, Z, ...) or None once the process is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("State:"):
                    return line.split()[1]
    except FileNotFoundError:
        return None


def gone(pid):
    return process_state(pid) in (None, "Z", "X")


def wait_until(predicate, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def test_wire_format_round_trips_and_rejects_garbage():
    assert decode_heartbeat(encode_heartbeat("n-1", 7, 0.02, 0.0)) == ("n-1", 7, 0.02, 0.0)
    for junk in (b"", b"hb", b"hb a b c d", b"xx a 1 0 0", b"\xff\xfe", b"hb a b 1 0 0 0"):
        assert decode_heartbeat(junk) is None
    assert _parse_control(encode_control(jitter=0.05, delay=0.2)) == {"jitter": 0.05, "delay": 0.2}
    assert _parse_control(b"set jitter=-1") is None and _parse_control(b"stop") == {"stop": True}
    with pytest.raises(ValueError, match="jitter"):
        encode_control(jitter=-1.0)


@pytest.fixture
def cluster():
    c = ProcessCluster(("a", "b", "c"), interval=0.05, seed=1)
    yield c
    c.close()


def test_real_senders_kill_pause_jitter_restart(cluster):
    c = cluster
    assert wait_until(lambda: all(c.info(n).heartbeats >= 10 for n in c.nodes))
    assert c.sample().suspected == frozenset()

    c.kill("b")
    assert c.status("b") is NodeStatus.DEAD
    assert wait_until(lambda: "b" in c.sample().suspected, timeout=3.0)

    pid = c.pid("c")
    c.pause("c")
    assert process_state(pid) == "T"
    before = c.info("c").heartbeats
    time.sleep(0.3)
    assert c.info("c").heartbeats <= before + 1
    with pytest.raises(ValueError, match="cannot pause node 'c': it is paused"):
        c.pause("c")
    c.resume("c")
    assert wait_until(lambda: c.info("c").heartbeats > before + 2)

    c.set_jitter("a", 0.01)
    c.set_delay("a", 0.02)
    assert wait_until(lambda: (c.info("a").jitter, c.info("a").delay) == (0.01, 0.02))

    with pytest.raises(ValueError, match="it is dead"):
        c.set_jitter("b", 0.01)
    c.restart("b")
    assert c.pid("b") != pid and c.status("b") is NodeStatus.ALIVE
    assert wait_until(lambda: c.info("b").heartbeats >= 3 and "b" not in c.sample().suspected)


def test_close_kills_every_sender_even_a_stopped_one():
    c = ProcessCluster(("a", "b"), interval=0.05)
    pids = [c.pid("a"), c.pid("b")]
    c.pause("a")
    c.close()
    c.close()
    assert all(gone(p) for p in pids)
    assert not c.receiver.running
    with pytest.raises(ValueError, match="closed"):
        c.kill("b")


def test_senders_die_with_their_parent():
    script = textwrap.dedent("""
        import os
        from course_lib.detect.processes import ProcessCluster
        c = ProcessCluster(("a", "b"), interval=0.05)
        c.pause("b")
        print(c.pid("a"), c.pid("b"), flush=True)
        os._exit(0)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=30, check=True).stdout
    pids = [int(p) for p in out.split()]
    assert len(pids) == 2
    assert wait_until(lambda: all(gone(p) for p in pids), timeout=5.0)


def test_a_sender_that_cannot_start_is_reported():
    with pytest.raises(ValueError, match="interval"):
        ProcessCluster(("a",), interval=0.0)
