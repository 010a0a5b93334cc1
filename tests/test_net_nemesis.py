"""The process-cluster nemesis: seeded faults, each undone, a majority always up."""

import time

import pytest

from course_lib.net import ProcessCluster
from course_lib.net.nemesis import ClusterNemesis


def test_faults_are_recorded_undone_and_leave_a_majority(tmp_path):
    with ProcessCluster(3, data_dir=tmp_path / "d") as c:
        c.start()
        nemesis = ClusterNemesis(c, seed=1, gap=(0.05, 0.15), duration=(0.2, 0.4))
        t0 = time.monotonic()
        nemesis.start(t0)
        faulty_seen = 0
        while time.monotonic() - t0 < 3.0:
            states = c.states()
            faulty_seen = max(faulty_seen, sum(not s["responding"] for s in states.values()))
            time.sleep(0.05)
        intervals = nemesis.stop()
        assert len(intervals) >= 3 and {i.kind for i in intervals} <= {"kill", "pause", "partition"}
        assert all(i.end is not None and 0 <= i.start <= i.end for i in intervals)
        assert faulty_seen <= nemesis.max_faulty == 1           # never more than a minority
        time.sleep(0.5)
        assert all(s["responding"] for s in c.states().values())  # every fault undone
        assert c.wait_for_leader(10) is not None


def test_bad_arguments_are_refused(tmp_path):
    c = ProcessCluster(3, data_dir=tmp_path / "d")
    with pytest.raises(ValueError, match="kinds"):
        ClusterNemesis(c, kinds=("meteor",))
    with pytest.raises(ValueError, match="gap"):
        ClusterNemesis(c, gap=(2, 1))
    nemesis = ClusterNemesis(c, kinds=("pause",))
    nemesis._thread = object()                       # as if it had run
    with pytest.raises(RuntimeError, match="already run"):
        nemesis.start(0.0)
