"""The learner's state machine as the host's driver sees it."""

from __future__ import annotations


class LearnerKV:
    """Wraps a learner's ``KVStateMachine`` (``apply(cmd)``, ``read(key)``) for the host.

    The course's driver asks ``session_result`` before proposing a client's request, to
    answer a retry without a new log entry; here it always says "not applied", so every
    retry is proposed again and exactly-once rests on the learner's ``apply`` alone.
    """

    def __init__(self, machine) -> None:
        self.machine = machine

    def apply(self, cmd):
        return self.machine.apply(cmd)

    def read(self, key):
        return self.machine.read(key)

    @property
    def data(self) -> dict:
        return getattr(self.machine, "data", {})

    def session_result(self, client_id, seq):
        return False, None

    def snapshot(self):
        return self.machine.snapshot()

    def restore(self, data) -> None:
        self.machine.restore(data)
