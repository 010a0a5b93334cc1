"""The randomized fault campaign: 1,000 seeds by default (RAFT_CAMPAIGN_SEEDS for more).

Each seed draws a cluster (3 or 5 servers), 2-3 concurrent clients and faults of every
kind; Raft's invariants are checked after every event, and each run's history is
checked for linearizability with ``course_lib.check`` (``check(kv(), history).ok`` must
be True).  A failure prints its seed and the command that replays it.

    RAFT_CAMPAIGN_SEEDS=10000 RAFT_CAMPAIGN_START=0 pytest tests/test_raft_campaign.py
"""

from __future__ import annotations

import os

import pytest

from course_lib.raft.campaign import replay_command, run_seed

SEEDS = int(os.environ.get("RAFT_CAMPAIGN_SEEDS", "1000"))
START = int(os.environ.get("RAFT_CAMPAIGN_START", "0"))
CHUNKS = 4


def _chunk(i: int) -> range:
    per = -(-SEEDS // CHUNKS)
    lo = START + i * per
    return range(lo, min(START + SEEDS, lo + per))


def test_linearizability_checker_is_available():
    from course_lib.check import check, kv        # noqa: F401  (the campaign relies on it)


@pytest.mark.parametrize("chunk", range(CHUNKS))
def test_randomized_campaign(chunk):
    failures = []
    for seed in _chunk(chunk):
        r = run_seed(seed)
        if not r.ok:
            failures.append(f"{r.summary()}\n    replay: {replay_command(seed)}")
    assert not failures, f"{len(failures)} failing seed(s):\n" + "\n".join(failures[:20])
