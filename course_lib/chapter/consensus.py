"""Section 2.2 共識協議 (consensus protocol) of the chapter, reproduced with its flaws.

The chapter's ``ConsensusProtocol`` is an ``asyncio`` class whose ``_send_proposal`` is a
stub (``pass``): nothing is ever sent and ``propose`` cannot run.  Here it is a sans-I/O
core that a driver (``course_lib.consensus.ChapterCluster``) runs in the simulator.
Fixed only so that it runs, each fix marked ``# FIX:``:

* ``_send_proposal`` puts a :class:`Proposal` message in :attr:`outbox`; the receiver's
  driver calls ``receive_proposal`` and sends its boolean back as a
  :class:`ProposalResponse`.
* ``await asyncio.gather(*tasks)`` becomes a record of the pending proposal: it
  completes, as ``gather`` does, once *every* other node has answered (the first answer
  per node counts, as one RPC gets one reply), and then the chapter's own last two lines
  run in :meth:`finish_proposal`.  Its outcome is stored in :attr:`outcomes`.
* ``async`` is dropped: a sans-I/O core has no event loop.

Decision rules kept exactly as written, and with them the flaws the lesson shows:

* a receiver "decides" when ``len(self.values[key]) > len(self.nodes) // 2``: it counts
  the distinct *values* it has seen, not the nodes that voted for one, and it decides
  the value it has just received, whatever it is.  Two concurrent proposals on three
  nodes already make nodes decide different values;
* a single uncontested proposal is never decided by anyone (one value is never "more
  than half" of the nodes);
* the proposer returns ``accept_count > len(self.nodes) // 2`` without deciding
  anything itself, and receivers answer ``True`` for a value they decide, so two
  proposers can both be told "consensus" for different values;
* nothing is persisted, and ``gather`` has no timeout: one lost message or one crashed
  node and ``propose`` never returns.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional, Set


@dataclass(frozen=True, slots=True)
class Proposal:
    """``_send_proposal``'s request: "accept ``value`` for ``key``" (proposal ``pid``)."""
    pid: int
    key: str
    value: str


@dataclass(frozen=True, slots=True)
class ProposalResponse:
    """``receive_proposal``'s return value, travelling back to the proposer."""
    pid: int
    key: str
    value: str
    accepted: bool


class ConsensusProtocol:
    """共識協議"""
    def __init__(self,
                 node_id: str,
                 nodes: List[str]):
        self.node_id = node_id
        self.nodes = nodes
        self.values: Dict[str, Set[str]] = {}
        self.decided: Dict[str, str] = {}
        # FIX: what asyncio did for the chapter, as state the driver can see
        self.outbox: List[tuple] = []                 # (destination, message) to send
        self._pending: Dict[int, dict] = {}           # pid -> {node: response}
        self._proposals: Dict[int, tuple] = {}        # pid -> (key, value)
        self.outcomes: Dict[int, bool] = {}           # pid -> what propose returned
        self._next_pid = 0

    def propose(self,
                key: str,
                value: str) -> int:  # FIX: returns the proposal id; the outcome comes later
        """提議值"""
        # 初始化提議
        if key not in self.values:
            self.values[key] = set()

        # 添加提議值
        self.values[key].add(value)

        # FIX: a proposal id to match responses to this call
        self._next_pid += 1
        pid = self._next_pid
        self._proposals[pid] = (key, value)
        self._pending[pid] = {}

        # 廣播提議
        for node in self.nodes:
            if node != self.node_id:
                self._send_proposal(node, key, value, pid)

        # FIX: "responses = await asyncio.gather(*tasks)" continues in handle_response
        if len(self.nodes) == 1:
            self.finish_proposal(pid)
        return pid

    def _send_proposal(self,
                       node: str,
                       key: str,
                       value: str,
                       pid: int) -> None:  # FIX: pid, so the reply finds its call
        """發送提議"""
        # FIX: the chapter's body was "pass"; now the proposal is a message
        self.outbox.append((node, Proposal(pid, key, value)))

    def handle_response(self, node: str, msg: ProposalResponse) -> Optional[bool]:
        """FIX: one reply of the gather; returns propose's result once all have come."""
        answers = self._pending.get(msg.pid)
        if answers is None or node in answers or node == self.node_id:
            return None                               # late, duplicated, or not ours
        answers[node] = msg.accepted
        if len(answers) < len(self.nodes) - 1:
            return None
        return self.finish_proposal(msg.pid)

    def finish_proposal(self, pid: int) -> bool:
        """The rest of the chapter's ``propose`` after ``gather`` returned."""
        answers = self._pending.pop(pid)
        responses = [answers[n] for n in self.nodes if n in answers]

        # 檢查是否達成共識
        accept_count = sum(1 for r in responses if r)
        result = accept_count > len(self.nodes) // 2
        self.outcomes[pid] = result                   # FIX: kept for the driver
        return result

    def receive_proposal(self,
                         node: str,
                         key: str,
                         value: str) -> bool:
        """接收提議"""
        # 檢查是否已經決定
        if key in self.decided:
            return False

        # 添加提議值
        if key not in self.values:
            self.values[key] = set()
        self.values[key].add(value)

        # 檢查是否可以決定
        if len(self.values[key]) > len(self.nodes) // 2:
            self.decided[key] = value
            return True

        return False

    def handle_proposal(self, node: str, msg: Proposal) -> bool:
        """FIX: the receiving side of ``_send_proposal``: run the chapter's rule, reply."""
        accepted = self.receive_proposal(node, msg.key, msg.value)
        self.outbox.append((node, ProposalResponse(msg.pid, msg.key, msg.value, accepted)))
        return accepted

    def take_outbox(self) -> List[tuple]:
        """FIX: hand the driver what to send (and forget it)."""
        out, self.outbox = self.outbox, []
        return out

    def proposal(self, pid: int) -> tuple:
        """FIX: ``(key, value)`` of proposal ``pid`` (for the driver's records)."""
        return self._proposals[pid]
