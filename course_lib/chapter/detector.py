"""Section 3.1 故障檢測 (failure detection) of the chapter, reproduced with its flaws.

The code below is the chapter's, line for line, with two changes only:

- ``import math`` was missing (``PhiAccrualDetector.phi`` raised ``NameError``);
- the clock is injectable (``clock=time.time`` by default, as in the chapter) so a
  lesson can replay a run deterministically.

Flaws kept on purpose (see ``course_lib.detect`` for the working versions):

- ``PhiAccrualDetector._probability`` is a logistic *CDF*, P(heartbeat arrived by
  now); ``phi = -log10(CDF)`` therefore *falls* towards 0 as a node stays silent, so a
  dead node is never suspected.  The tail, 1 - CDF, is what phi needs.
- ``threshold`` is stored but never used: nothing ever decides a suspicion.
- ``phi`` re-sums the whole window twice per call, and ``heartbeat`` pops from the
  front of a list: O(window) per call.
- ``math.exp(-y)`` overflows (``OverflowError``) when a heartbeat is checked well
  before its mean interval under a small standard deviation.
- ``FailureDetector`` uses the wall clock, and a node never heard from counts as
  "last heartbeat at time 0", so it is suspected at once.
"""

import math  # fixed: missing in the chapter
from typing import Callable, Dict, List, Optional, Set
import time


class FailureDetector:
    """故障檢測器"""
    def __init__(self,
                 node_id: str,
                 nodes: List[str],
                 timeout: float = 1.0,
                 clock: Callable[[], float] = time.time):  # added: injectable clock
        self.node_id = node_id
        self.nodes = nodes
        self.timeout = timeout
        self.heartbeats: Dict[str, float] = {}
        self.suspected: Set[str] = set()
        self.clock = clock

    def heartbeat(self, node: str):
        """接收心跳"""
        self.heartbeats[node] = self.clock()
        if node in self.suspected:
            self.suspected.remove(node)

    def check_nodes(self) -> Set[str]:
        """檢查節點狀態"""
        current_time = self.clock()

        # 檢查每個節點
        for node in self.nodes:
            if node == self.node_id:
                continue

            # 檢查最後心跳時間
            last_heartbeat = self.heartbeats.get(node, 0)
            if current_time - last_heartbeat > self.timeout:
                self.suspected.add(node)
            elif node in self.suspected:
                self.suspected.remove(node)

        return self.suspected.copy()


class PhiAccrualDetector:
    """Phi 累積故障檢測器"""
    def __init__(self,
                 threshold: float = 8.0,
                 window_size: int = 1000,
                 clock: Callable[[], float] = time.time):  # added: injectable clock
        self.threshold = threshold
        self.window_size = window_size
        self.intervals: Dict[str, List[float]] = {}
        self.last_heartbeat: Dict[str, float] = {}
        self.clock = clock

    def heartbeat(self, node: str):
        """接收心跳"""
        current_time = self.clock()

        if node in self.last_heartbeat:
            # 計算時間間隔
            interval = current_time - self.last_heartbeat[node]

            # 更新間隔窗口
            if node not in self.intervals:
                self.intervals[node] = []
            self.intervals[node].append(interval)

            # 保持窗口大小
            if len(self.intervals[node]) > self.window_size:
                self.intervals[node].pop(0)

        self.last_heartbeat[node] = current_time

    def phi(self, node: str) -> float:
        """計算 phi 值"""
        if node not in self.last_heartbeat:
            return float('inf')

        current_time = self.clock()
        time_diff = current_time - self.last_heartbeat[node]

        if not self.intervals.get(node):
            return float('inf')

        # 計算均值和標準差
        mean = sum(self.intervals[node]) / len(self.intervals[node])
        variance = sum((x - mean) ** 2 for x in self.intervals[node]) / len(self.intervals[node])
        std_dev = variance ** 0.5

        # 計算 phi 值
        if std_dev == 0:
            return 0.0 if time_diff <= mean else float('inf')

        return -math.log10(self._probability(time_diff, mean, std_dev))

    def _probability(self,
                    time_diff: float,
                    mean: float,
                    std_dev: float) -> float:
        """計算概率"""
        y = (time_diff - mean) / std_dev
        return 1.0 / (1.0 + math.exp(-y))


class ManualClock:
    """A settable clock for replaying the chapter's detectors: ``clock()`` returns
    ``clock.now``; ``advance(dt)`` moves it forward."""

    def __init__(self, now: float = 0.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, dt: float) -> float:
        if dt < 0:
            raise ValueError(f"dt must be >= 0, got {dt!r}")
        self.now += dt
        return self.now
