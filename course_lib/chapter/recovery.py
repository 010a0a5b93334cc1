"""Section 3.2 自動恢復 (automatic recovery) of the chapter, reproduced with its flaws.

The classes below are the chapter's, line for line, except:

- ``Any`` was not imported (``StateReplicator.update_state`` raised ``NameError``);
- the chapter leaves ``_fetch_state`` and ``_replicate_state`` empty ("實現...邏輯"); they
  are filled minimally, in the chapter's spirit, over an injected ``transport`` (added
  keyword argument): the receiving node stores what arrives, as it arrives.

Flaws kept on purpose (see ``course_lib.recovery`` for the working versions):

- ``update_state`` changes the local state *before* replicating and keeps the change
  when replication fails: it returns False, yet the value is visible here and on some
  replicas, not on others — nobody can tell which;
- a crash in the middle of ``update_state`` leaves the replicas different for good:
  there is no log, no sequence number a replica could notice a gap with, no catch-up;
- ``version`` is a per-node counter: two nodes writing concurrently both send "version
  1", replicas apply whatever arrives last, and they diverge;
- ``recover_state`` adopts the state of the first node that answers, not the newest
  (and skips a node whose state is empty, ``if state:``);
- ``handle_failure`` silently ignores an event nobody registered a handler for, and
  nothing calls it: no failure detector drives the manager.

:class:`SimulatedTransport` (not in the chapter) delivers in a seeded order and can
crash a node after a number of messages.
"""

from typing import Any, Callable, Dict, List, Optional  # fixed: Any was missing
import asyncio
import random


class NodeCrashed(RuntimeError):
    """The sending node crashed (the simulated transport's crash_after)."""


class SimulatedTransport:
    """An in-process network for the chapter's classes (added, not the chapter's).

    Each delivery first yields to the event loop a seeded number of times (0 to
    ``max_delay``), so concurrent updates interleave in a seeded, reproducible order.
    """

    def __init__(self, seed: int = 0, max_delay: int = 3):
        self.rng = random.Random(seed)
        self.max_delay = max_delay
        self.nodes: Dict[str, Any] = {}
        self.down: set = set()
        self._budget: Dict[str, int] = {}
        self.log: List[tuple] = []

    def register(self, node_object) -> None:
        self.nodes[node_object.node_id] = node_object

    def crash_after(self, node: str, messages: int) -> None:
        """``node`` crashes once it has sent ``messages`` more messages."""
        self._budget[node] = messages

    async def replicate(self, sender: str, node: str, key: str, value: Any, version: int) -> bool:
        for _ in range(self.rng.randint(0, self.max_delay)):
            await asyncio.sleep(0)
        if sender in self.down:
            raise NodeCrashed(f"{sender} crashed")
        if sender in self._budget:
            if self._budget[sender] <= 0:
                self.down.add(sender)
                raise NodeCrashed(f"{sender} crashed in the middle of an update")
            self._budget[sender] -= 1
        if node in self.down or node not in self.nodes:
            self.log.append((sender, node, key, value, version, "lost"))
            return False
        target = self.nodes[node]
        target.state[key] = value
        target.version = version
        self.log.append((sender, node, key, value, version, "applied"))
        return True

    async def fetch_state(self, node: str) -> Optional[Dict]:
        await asyncio.sleep(0)
        if node in self.down or node not in self.nodes:
            return None
        return dict(self.nodes[node].state)


class RecoveryManager:
    """恢復管理器"""
    def __init__(self,
                 node_id: str,
                 nodes: List[str],
                 transport: Optional[SimulatedTransport] = None):  # added: transport
        self.node_id = node_id
        self.nodes = nodes
        self.state: Dict = {}
        self.handlers: Dict[str, Callable] = {}
        self.transport = transport

    def register_handler(self,
                        event_type: str,
                        handler: Callable):
        """註冊處理器"""
        self.handlers[event_type] = handler

    async def handle_failure(self,
                           failed_node: str,
                           event_type: str):
        """處理故障"""
        if event_type in self.handlers:
            await self.handlers[event_type](failed_node)

    async def recover_state(self) -> bool:
        """恢復狀態"""
        try:
            # 從其他節點獲取狀態
            for node in self.nodes:
                if node != self.node_id:
                    state = await self._fetch_state(node)
                    if state:
                        self.state = state
                        return True
            return False
        except Exception:
            return False

    async def _fetch_state(self,
                          node: str) -> Optional[Dict]:
        """獲取狀態"""
        # 實現狀態獲取邏輯 (filled: ask the node over the transport)
        return await self.transport.fetch_state(node)


class StateReplicator:
    """狀態複製器"""
    def __init__(self,
                 node_id: str,
                 nodes: List[str],
                 transport: Optional[SimulatedTransport] = None):  # added: transport
        self.node_id = node_id
        self.nodes = nodes
        self.state: Dict = {}
        self.version = 0
        self.transport = transport
        if transport is not None:
            transport.register(self)

    async def update_state(self,
                          key: str,
                          value: Any) -> bool:
        """更新狀態"""
        # 更新本地狀態
        self.state[key] = value
        self.version += 1

        # 複製到其他節點
        tasks = [
            self._replicate_state(node, key, value, self.version)
            for node in self.nodes
            if node != self.node_id
        ]

        # 等待確認
        results = await asyncio.gather(*tasks)
        return all(results)

    async def _replicate_state(self,
                             node: str,
                             key: str,
                             value: Any,
                             version: int) -> bool:
        """複製狀態"""
        # 實現狀態複製邏輯 (filled: send it; the receiver stores it as it arrives)
        return await self.transport.replicate(self.node_id, node, key, value, version)
