"""Section 2.1 Raft 實現 (Raft implementation) of the chapter, reproduced with its flaws.

The code below is the chapter's, line for line, with only these changes:

- ``import asyncio`` was missing (``start`` raised ``NameError`` at the first sleep);
- the clock, the sleep and the random source are injectable (``clock=time.time``,
  ``sleep=asyncio.sleep``, ``rng=random`` by default, as in the chapter), so a lesson can
  run it under a :class:`FakeClock` deterministically and instantly.

Flaws kept on purpose (``course_lib.raft`` is the working version):

- **units**: ``election_timeout = random.randint(150, 300)`` is meant as milliseconds,
  but ``time.time()`` counts seconds, so a follower waits 150-300 *seconds* before it
  campaigns;
- **no RPCs**: ``_request_vote`` and ``_append_entries`` are ``pass``, they return
  ``None``: a candidate in a cluster of more than one never gets a vote and never
  leads, and a leader's "heartbeats" reach nobody;
- **nothing receives**: there is no handler for RequestVote or AppendEntries, so
  ``last_heartbeat`` is never refreshed: after the first timeout the node campaigns
  again at once, for ever, in a loop that never awaits anything that suspends, so it
  starves the event loop while its term climbs;
- **no log**: ``self.log`` is never appended to (there is no ``propose``), no entry is
  replicated, ``commit_index`` never moves;
- **next_index starts at 0** (and for the node itself): Raft's logs are 1-based and a
  new leader sets ``nextIndex`` to its last log index + 1 (Figure 2); with 0 the first
  AppendEntries would carry ``prevLogIndex = -1``.
"""

import asyncio  # fixed: missing in the chapter
from enum import Enum
from typing import Callable, Dict, List, Optional
import random
import time


class NodeState(Enum):
    """節點狀態"""
    FOLLOWER = 1
    CANDIDATE = 2
    LEADER = 3


class RaftNode:
    """Raft 節點"""
    def __init__(self,
                 node_id: str,
                 nodes: List[str],
                 clock: Callable[[], float] = time.time,      # added: injectable clock
                 sleep: Callable = asyncio.sleep,             # added: injectable sleep
                 rng=random):                                  # added: injectable randomness
        self.node_id = node_id
        self.nodes = nodes
        self.state = NodeState.FOLLOWER
        self.clock = clock
        self.sleep = sleep

        # 持久化狀態
        self.current_term = 0
        self.voted_for = None
        self.log = []

        # 易失性狀態
        self.commit_index = 0
        self.last_applied = 0

        # 領導人狀態
        self.next_index = {node: 0 for node in nodes}
        self.match_index = {node: 0 for node in nodes}

        # 選舉超時
        self.election_timeout = rng.randint(150, 300)
        self.last_heartbeat = self.clock()

    async def start(self):
        """啟動節點"""
        while True:
            if self.state == NodeState.FOLLOWER:
                await self._run_follower()
            elif self.state == NodeState.CANDIDATE:
                await self._run_candidate()
            elif self.state == NodeState.LEADER:
                await self._run_leader()

    async def _run_follower(self):
        """運行跟隨者邏輯"""
        while self.state == NodeState.FOLLOWER:
            # 檢查是否超時
            if self.clock() - self.last_heartbeat > self.election_timeout:
                self.state = NodeState.CANDIDATE
                break

            await self.sleep(0.1)

    async def _run_candidate(self):
        """運行候選人邏輯"""
        # 增加任期
        self.current_term += 1
        self.voted_for = self.node_id
        votes = 1

        # 發送請求投票 RPC
        for node in self.nodes:
            if node != self.node_id:
                vote_granted = await self._request_vote(node)
                if vote_granted:
                    votes += 1

        # 檢查是否獲得多數票
        if votes > len(self.nodes) // 2:
            self.state = NodeState.LEADER
        else:
            self.state = NodeState.FOLLOWER

    async def _run_leader(self):
        """運行領導者邏輯"""
        while self.state == NodeState.LEADER:
            # 發送心跳
            for node in self.nodes:
                if node != self.node_id:
                    await self._append_entries(node)

            await self.sleep(0.05)

    async def _request_vote(self,
                            node: str) -> bool:
        """請求投票"""
        # 實現請求投票 RPC
        pass

    async def _append_entries(self,
                              node: str) -> bool:
        """追加日誌"""
        # 實現追加日誌 RPC
        pass


class FakeClock:
    """Virtual seconds for running the chapter's node instantly and deterministically:
    ``clock()`` reads the time; ``await clock.sleep(dt)`` moves it forward by ``dt``
    and suspends the coroutine once, as a real sleep would; ``sleeps`` counts them."""

    def __init__(self, now: float = 0.0) -> None:
        self.now = float(now)
        self.sleeps = 0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, dt: float) -> None:
        if dt < 0:
            raise ValueError(f"cannot sleep a negative time: {dt!r}")
        self.sleeps += 1
        self.now += dt
        await _Suspend()


class _Suspend:
    """One suspension of the coroutine (what a real sleep does), without an event loop."""

    def __await__(self):
        yield


class Stop(Exception):
    """Raised by :func:`run_until` to end a run of the chapter's endless ``start()``."""


def run_until(node: RaftNode, stop: Callable[[RaftNode], bool],
              max_rounds: int = 1_000_000) -> int:
    """Run ``node.start()`` until ``stop(node)`` holds, checking after every state
    handler; returns how many handlers ran.  Raises ``RuntimeError`` after
    ``max_rounds`` (the chapter's loop has no end of its own).

    The coroutine is driven by hand (no event loop, so this works inside a running
    one, e.g. a Jupyter kernel): the node must sleep with a :class:`FakeClock`.  A
    leader's handler never returns (it heartbeats for ever), so stop on becoming
    leader, not after."""
    if not isinstance(getattr(node.sleep, "__self__", None), FakeClock):
        raise ValueError("run_until drives the node by hand: build it with sleep=FakeClock().sleep")
    rounds = 0
    handlers = {}
    for name in ("_run_follower", "_run_candidate", "_run_leader"):
        original = getattr(node, name)

        async def wrapped(original=original):
            nonlocal rounds
            await original()
            rounds += 1
            if stop(node):
                raise Stop
            if rounds >= max_rounds:
                raise RuntimeError(f"no stop after {max_rounds} rounds")
        handlers[name] = wrapped
    for name, fn in handlers.items():
        setattr(node, name, fn)
    coroutine = node.start()
    try:
        while True:
            if coroutine.send(None) is not None:
                raise ValueError("run_until drives the node by hand: give it sleep=FakeClock().sleep")
    except Stop:
        pass
    finally:
        coroutine.close()
        for name in handlers:
            delattr(node, name)
    return rounds
