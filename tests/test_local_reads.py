"""The read path broken on purpose is caught by the checker; the correct one is not."""

import random

import pytest

from course_lib.check import check, kv
from course_lib.raft import SimCluster
from course_lib.raft.client import APPEND_KEYS, PUT_KEY, ClosedLoopClients
from course_lib.raft.local_reads import LocalReads


def run(seed, local):
    c = SimCluster(3, seed=seed, trace_level="summary")
    c.run_until(lambda: c.leader() is not None, 1000)
    clients = ClosedLoopClients(c, 3, random.Random(seed))
    reader = LocalReads(c, APPEND_KEYS + (PUT_KEY,), random.Random(seed)) if local else None
    c.run_for(1500)
    clients.running = False
    if reader:
        reader.running = False
    c.run_for(500)
    return c.history + (reader.history if reader else []), reader


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_reads_from_a_servers_own_copy_are_not_linearizable(seed):
    history, reader = run(seed, local=True)
    assert len(reader.history) > 100
    assert {op.client_id.split("@")[1] for op in reader.history} == {"n1", "n2", "n3"}
    assert check(kv(), history).ok is False
    assert check(kv(), run(seed, local=False)[0]).ok is True


def test_bad_arguments():
    c = SimCluster(3, seed=0)
    with pytest.raises(ValueError, match="key"):
        LocalReads(c, [], random.Random(0))
    with pytest.raises(ValueError, match="every_ms"):
        LocalReads(c, ["a"], random.Random(0), every_ms=0)
