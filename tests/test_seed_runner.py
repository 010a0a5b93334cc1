"""The seed runner (course_lib.check.seeds): many seeds across processes, failures with
one-line replay commands, failure rates per scenario."""

from __future__ import annotations

import pytest

from course_lib.check.seeds import main, replay_command, run_seeds

FLAKY = "course_lib.check.seeds:demo_flaky"


def test_planted_failing_seeds_are_reported_with_replay_commands_and_the_rate():
    r = run_seeds(FLAKY, range(30), workers=2, progress=False)
    assert r.runs == 30 and r.workers == 2
    assert [f.seed for f in r.failures] == [0, 7, 14, 21, 28]
    assert r.rate() == pytest.approx(5 / 30) and r.stats["default"].rate == pytest.approx(5 / 30)
    assert r.failures[1].replay == f"python -m course_lib.check.seeds {FLAKY} --seed 7"
    assert "5 failed" in r.text() and "replay:" in r.text()


def test_rates_per_scenario_and_an_exception_counts_as_a_failure():
    seen = []
    r = run_seeds(FLAKY, range(10), workers=1, progress=lambda done, total, failed: seen.append(done),
                  scenarios={"every7": {}, "every5": {"every": 5, "crash_on": 3}})
    assert r.stats["every7"].failures == 2 and r.stats["every5"].failures == 3      # 0, 5 and 3
    assert r.rate("every5") == pytest.approx(0.3)
    crash = [f for f in r.failures if f.seed == 3]
    assert crash and "RuntimeError: bug hit on seed 3" in crash[0].problem
    assert "--kwargs" in crash[0].replay and "crash_on" in crash[0].replay
    assert seen[-1] == 20


def test_the_replay_command_runs_the_seed_alone(capsys):
    assert main([FLAKY, "--seed", "7"]) == 1
    assert "seed 7: FAILED" in capsys.readouterr().out
    assert main([FLAKY, "--seed", "8"]) == 0
    assert main([FLAKY, "--seed", "3", "--kwargs", '{"every": 5, "crash_on": 4}']) == 0


def test_cli_runs_seeds_and_exits_nonzero_on_failures(capsys):
    assert main([FLAKY, "--seeds", "8", "--first", "1", "--workers", "2", "--no-progress"]) == 1
    out = capsys.readouterr().out
    assert "8 runs" in out and "seed 7" in out


def test_a_campaign_with_its_own_replay_command():
    assert replay_command("course_lib.raft.campaign:run_seed", 12) == "python -m course_lib.raft.campaign --seed 12 --verbose"
    r = run_seeds("course_lib.consensus.campaign:run_seed", range(2), workers=2, progress=False)
    assert r.runs == 2 and r.ok


def test_bad_targets_and_arguments():
    with pytest.raises(ValueError, match="module:function"):
        run_seeds("nonsense", range(2))
    with pytest.raises(ValueError, match="no function"):
        run_seeds("course_lib.check.seeds:nothing_here", range(2))
    with pytest.raises(ValueError, match="workers"):
        run_seeds(FLAKY, range(2), workers=0)
