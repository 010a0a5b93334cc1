"""Exercise 2's grader against classic wrong Raft nodes.

Each wrong solution is the worked solution (loaded from the solution notebook, so the two
cannot drift apart) with one classic bug; the grader must reject it with a message that
names the problem.  Where a scenario test can find the bug on its own (not only the rule
test written for it), that is checked too: the suite finds it in a seeded run and the
report names the test, the seed and the replay.
"""

from __future__ import annotations

import pytest

from course_lib.grading import CheckFailed, load_solution, run_check
from course_lib.grading import ex2
from course_lib.grading.ex2 import (FOLLOWER, LEADER, AppendEntriesResponse, ConfChange, Entry, EntryKind,
                                    NotLeader, RequestVoteResponse)
from course_lib.grading.ex2.suite import TESTS, run_one


@pytest.fixture(scope="module")
def s2() -> dict:
    return load_solution("ex2_consensus_protocol")


def fails(check, *args, match: str, **kwargs) -> str:
    with pytest.raises(CheckFailed, match=match) as info:
        run_check("task", check, *args, **kwargs).raise_for_failure()
    return str(info.value)


def found_by(test: str, node, kv=None, seeds=range(8)) -> str:
    """The report of the first seed on which ``test`` rejects ``node`` (AssertionError if none)."""
    for seed in seeds:
        report = run_one(TESTS[test], node, kv, seed)
        if report is not None:
            assert f"{test} failed (seed {seed})" in report and "replay: ex2.run_test(" in report
            return report
    raise AssertionError(f"{test} accepted the wrong node on seeds {list(seeds)}")


def test_the_worked_solution_passes_the_whole_suite(s2):
    run_check("suite", ex2.suite, s2["MyRaftNode"], s2["KVStateMachine"],
              seeds=range(3)).raise_for_failure()


def test_voting_for_two_candidates_in_one_term_is_rejected(s2):
    class TwoVotes(s2["ElectionNode"]):
        def handle_request_vote(self, m):
            granted = m.term == self.current_term      # forgets voted_for
            if granted:
                self.voted_for = m.src
                self.reset_election_timer()
                self.persist()
            self.send(RequestVoteResponse(self.current_term, self.id, m.src, granted))

    fails(ex2.leader_election, TwoVotes, match="at most one candidate per term")
    report = found_by("ManyElections", TwoVotes, seeds=range(20))
    assert "at most one vote per term" in report or "election safety" in report, report


def test_election_timeouts_that_are_not_randomized_are_rejected(s2):
    class FixedTimeout(s2["ElectionNode"]):
        def reset_election_timer(self):
            self.election_elapsed = 0
            self.election_timeout = self.config.election_ticks[1]

    fails(ex2.leader_election, FixedTimeout, match="is each election timeout drawn at random")


def test_counting_a_late_vote_of_an_earlier_term_is_rejected(s2):
    class StaleVotes(s2["ElectionNode"]):
        def handle_vote_response(self, m):
            if self.state.name != "CANDIDATE" or not m.granted:     # forgets m.term
                return
            self.votes.add(m.src)
            if self.has_majority(self.votes):
                self.become_leader()

    fails(ex2.leader_election, StaleVotes, match="count a vote only if the reply's term is your current term")


def test_a_leader_that_ignores_a_higher_term_in_a_reply_is_rejected(s2):
    class Deaf(s2["ElectionNode"]):
        def step(self, m):
            if type(m) is AppendEntriesResponse:         # the term rule, skipped for replies
                return self.handle_append_response(m)
            return super().step(m)

    fails(ex2.leader_election, Deaf, match="makes a server a follower of that term")


def test_a_vote_for_a_less_up_to_date_log_is_rejected(s2):
    class NoRestriction(s2["ReplicationNode"]):
        def handle_request_vote(self, m):
            granted = False
            if m.term == self.current_term and self.voted_for in (None, m.src):   # no §5.4.1
                granted = True
                self.voted_for = m.src
                self.reset_election_timer()
                self.persist()
            self.send(RequestVoteResponse(self.current_term, self.id, m.src, granted))

    fails(ex2.log_replication, NoRestriction, match=r"at least as up to date")


def test_replying_before_persisting_is_rejected(s2):
    class Forgetful(s2["MyRaftNode"]):
        def handle_request_vote(self, m):
            granted = False
            if m.term == self.current_term and self.voted_for in (None, m.src):
                granted = True
                self.voted_for = m.src              # ... and no persist()
                self.reset_election_timer()
            self.send(RequestVoteResponse(self.current_term, self.id, m.src, granted))

    fails(ex2.failure_recovery, Forgetful, s2["KVStateMachine"],
          match=r"persist \(term 5, voted_for n2\) before the reply leaves")
    report = found_by("InitialElection", Forgetful)
    assert "was not on stable storage: call self.persist()" in report, report


def test_committing_an_old_term_entry_by_counting_replicas_is_rejected(s2):
    class CountsOldTerms(s2["ReplicationNode"]):
        def maybe_commit(self):
            for n in range(self.log.last_index, self.commit_index, -1):
                have = {p for p, i in self.match_index.items() if i >= n} | {self.id}
                if self.has_majority(have):
                    self.commit_index = n
                    break

    fails(ex2.log_replication, CountsOldTerms, match=r"Count replicas only for entries of the "
                                                     r"current term \(§5\.4\.2\)")
    mine = type("CountsOldTerms", (CountsOldTerms, s2["MyRaftNode"]), {})
    report = found_by("Figure8", mine, s2["KVStateMachine"], seeds=range(30))
    assert "commits by counting replicas only entries of its current term" in report, report


def test_a_leader_without_next_index_back_off_is_rejected(s2):
    class NoBackoff(s2["ReplicationNode"]):
        def handle_append_response(self, m):
            if self.state is not LEADER or m.term != self.current_term:
                return
            if m.success:
                super().handle_append_response(m)
            else:
                self.send_append(m.src)             # retries at the same place

    fails(ex2.log_replication, NoBackoff, match="decrement nextIndex")
    report = found_by("Backup", NoBackoff, seeds=range(3))
    assert "did not converge" in report or "was not committed" in report, report


def test_truncating_the_log_on_every_append_entries_is_rejected(s2):
    class Truncating(s2["ReplicationNode"]):
        def handle_append_entries(self, m):
            if m.term >= self.current_term and m.prev_log_index <= self.log.last_index \
                    and self.log.term_at(m.prev_log_index) == m.prev_log_term \
                    and m.prev_log_index < self.log.last_index \
                    and m.prev_log_index >= self.commit_index:
                self.log.truncate_from(m.prev_log_index + 1)    # drops what follows prev
            super().handle_append_entries(m)

    fails(ex2.log_replication, Truncating, match="never on every AppendEntries")


def test_applying_a_retried_command_twice_is_rejected(s2):
    class NoSessions(s2["KVStateMachine"]):
        def apply(self, cmd):
            op = cmd.op
            if op[0] == "put":
                self.data[op[1]] = op[2]
            elif op[0] == "append":
                self.data[op[1]] = self.data.get(op[1], "") + op[2]
            else:
                return self.data.get(op[1], "")
            return None

    fails(ex2.state_machine_replication, s2["ReplicationNode"], NoSessions,
          match="must not have been applied twice")
    report = found_by("ClientRetries", s2["ReplicationNode"], NoSessions, seeds=range(5))
    assert "exactly-once" in report and "appended more than once" in report, report


def test_adding_two_servers_at_once_is_rejected(s2):
    class Hasty(s2["MembershipNode"]):
        def propose_conf_change(self, cc):
            if self.state is not LEADER:
                raise NotLeader(self.id, self.leader_id)
            voters = set(self.voters)
            if cc.op == "add":
                if cc.node in voters:
                    raise ValueError(f"{cc.node!r} is already a member")
                voters.add(cc.node)
            else:
                if cc.node not in voters:
                    raise ValueError(f"{cc.node!r} is not a member")
                voters.discard(cc.node)
            entry = Entry(self.current_term, self.log.last_index + 1,
                          ConfChange(cc.op, cc.node, tuple(sorted(voters))), EntryKind.CONFIG)
            self.log.append(entry)
            self.persist()
            self.pending_conf_index = entry.index
            self.broadcast_append()
            return entry.index, entry.term

    fails(ex2.membership_management, Hasty, s2["KVStateMachine"],
          match="accepted a second membership change")


def test_a_failure_report_names_the_test_the_seed_and_the_replay_and_shows_the_servers(s2):
    class Silent(s2["ElectionNode"]):                # a leader that never sends heartbeats
        def broadcast_append(self):
            pass

    text = fails(ex2.leader_election, Silent, match="InitialElection failed")
    assert "replay: ex2.run_test('InitialElection', ElectionNode, seed=0)" in text
    assert "servers:" in text and "term=" in text and "log:" in text
    assert "last messages sent:" in text and "RequestVote" in text
    assert "heartbeats" in text


def test_replay_prints_the_report_or_passed(s2, capsys):
    ex2.run_test("BasicAgree", s2["ReplicationNode"], seed=4)
    assert capsys.readouterr().out.strip() == "BasicAgree passed on seed 4"
    with pytest.raises(ValueError, match="no test"):
        ex2.run_test("Nope", s2["ReplicationNode"])


def test_the_untouched_node_is_not_written_yet():
    class Untouched(ex2.RaftBase):
        pass

    result = run_check("1", ex2.leader_election, Untouched)
    assert not result.passed and "not written yet" in result.message, result.message


def test_a_seed_replays_the_same_run(s2):
    class Forgetful(s2["ElectionNode"]):
        def become_follower(self, term, leader):
            if term > self.current_term:
                self.current_term, self.voted_for = term, None   # no persist()
            self.state, self.leader_id = FOLLOWER, leader

    first = run_one(TESTS["ReElection"], Forgetful, None, 3)
    assert first is not None and "was not on stable storage" in first
    assert run_one(TESTS["ReElection"], Forgetful, None, 3) == first


def test_a_leader_that_never_sends_its_snapshot_is_rejected(s2):
    class NoSnapshots(s2["MyRaftNode"]):
        def send_append(self, peer):
            s2["ReplicationNode"].send_append(self, peer)

    fails(ex2.failure_recovery, NoSnapshots, s2["KVStateMachine"], tests=["SnapshotInstall"],
          match="SnapshotInstall failed")
