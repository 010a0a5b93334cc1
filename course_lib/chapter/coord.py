"""The chapter's sections 1.1 (ZooKeeper 集成) and 1.2 (分布式鎖), as written — flaws kept.

Fixed only so that the code runs at all, each fix marked ``# FIX:``:

* ``await`` on kazoo's synchronous calls (``create``, ``delete``, ``exists``,
  ``get_children`` return values, not awaitables): the awaits are dropped.  The calls
  still block the event loop, as in the chapter.
* ``DistributedReadWriteLock.acquire_write`` creates its lock at the very path that
  ``ensure_path`` just created as a persistent node, so it can never succeed (and every
  reader then sees a "write lock"): ``ensure_path`` is applied to the parent instead.
* The read-write lock has no way to release: ``release_read`` / ``release_write`` added.
* ``_has_read_locks`` lists a folder that may not exist yet (``NoNodeError`` → caught →
  no writer could ever lock): it returns False when the folder is missing.
* ``watch_services`` uses ``Callable`` without importing it: imported.

Flaws kept, for the lessons to show:

* ``ZKCoordinator.register_service`` passes a full path to ``ensure_path``, which
  prefixes the namespace again (``/ns/ns/services``), so the parent of the service node
  is missing and registration fails; once the parent exists, the service is a single
  ephemeral node, so a second instance cannot register (``NodeExistsError`` → False).
* ``get_services`` returns one instance at most; ``watch_services`` watches that one
  node's *data*, so instances coming and going are not seen.
* ``DistributedLock`` polls ``create`` every ``retry_delay`` seconds: busy polling, no
  fairness (whoever polls first after a release wins), every waiter hammers the server.
  ``attempts`` counts its tries so the lessons can measure it.
* ``DistributedReadWriteLock`` checks, then acts: a reader and a writer can both pass
  their checks before either creates its node.  Worse, a reader's node is created
  *beside* the ``read`` folder that writers list, so writers never see readers at all.
  It never waits (returns False at once, ``timeout`` is ignored), so callers must poll,
  and a steady stream of readers would starve a polling writer.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Callable, Dict, List, Optional  # FIX: Callable was not imported

from kazoo.client import KazooClient
from kazoo.exceptions import NodeExistsError, NoNodeError


class ZKCoordinator:
    """ZooKeeper 協調器 (the chapter's)."""

    def __init__(self, hosts: str, namespace: str, client: Optional[KazooClient] = None):
        # The chapter makes its own client; passing one in lets lessons share theirs.
        self.client = client if client is not None else KazooClient(hosts=hosts)
        self.namespace = namespace
        if client is None:
            self.client.start()

    def ensure_path(self, path: str):
        """確保路徑存在"""
        full_path = f"/{self.namespace}/{path}"
        self.client.ensure_path(full_path)

    async def register_service(self, service_name: str, service_info: Dict) -> bool:
        """註冊服務"""
        try:
            path = f"/{self.namespace}/services/{service_name}"
            self.ensure_path(f"/{self.namespace}/services")
            self.client.create(path, json.dumps(service_info).encode(), ephemeral=True)
            return True
        except NodeExistsError:
            return False

    async def get_services(self, service_name: str) -> List[Dict]:
        """獲取服務列表"""
        try:
            path = f"/{self.namespace}/services/{service_name}"
            if not self.client.exists(path):
                return []
            data, _ = self.client.get(path)
            return [json.loads(data.decode())]
        except NoNodeError:
            return []

    def watch_services(self, service_name: str, callback: Callable):
        """監聽服務變化"""
        path = f"/{self.namespace}/services/{service_name}"

        @self.client.DataWatch(path)
        def watch_handler(data, stat):
            if data:
                service_info = json.loads(data.decode())
                callback(service_info)


class DistributedLock:
    """分布式鎖 (the chapter's): one ephemeral node, taken by polling."""

    def __init__(self, zk: ZKCoordinator, lock_name: str):
        self.zk = zk
        self.lock_path = f"locks/{lock_name}"
        self.lock_id = None
        self.attempts = 0  # instrumentation for the lessons: create() calls made

    async def acquire(self, timeout: Optional[float] = None, retry_delay: float = 0.1) -> bool:
        """獲取鎖"""
        start_time = time.time()
        while True:
            try:
                path = f"/{self.zk.namespace}/{self.lock_path}"
                self.attempts += 1
                self.lock_id = self.zk.client.create(path, ephemeral=True)  # FIX: no await
                return True
            except NodeExistsError:
                if timeout and time.time() - start_time > timeout:
                    return False
                await asyncio.sleep(retry_delay)

    async def release(self):
        """釋放鎖"""
        if self.lock_id:
            try:
                self.zk.client.delete(self.lock_id)  # FIX: no await
                self.lock_id = None
                return True
            except NoNodeError:
                return False
        return False


class DistributedReadWriteLock:
    """分布式讀寫鎖 (the chapter's): check, then create."""

    def __init__(self, zk: ZKCoordinator, lock_name: str):
        self.zk = zk
        self.lock_path = f"rwlocks/{lock_name}"
        self.read_lock_path = f"{self.lock_path}/read"
        self.write_lock_path = f"{self.lock_path}/write"
        self.read_node: Optional[str] = None
        self.write_node: Optional[str] = None

    async def acquire_read(self, timeout: Optional[float] = None) -> bool:
        """獲取讀鎖"""
        try:
            self.zk.ensure_path(self.read_lock_path)
            if await self._has_write_lock():
                return False
            # FIX: no await; the node's path is kept so it can be released.
            self.read_node = self.zk.client.create(self._read_node_prefix(), ephemeral=True,
                                                   sequence=True)
            return True
        except Exception:
            return False

    async def acquire_write(self, timeout: Optional[float] = None) -> bool:
        """獲取寫鎖"""
        try:
            self.zk.ensure_path(self.lock_path)  # FIX: the parent, not the lock node itself
            if await self._has_write_lock() or await self._has_read_locks():
                return False
            path = f"/{self.zk.namespace}/{self.write_lock_path}"
            self.write_node = self.zk.client.create(path, ephemeral=True)  # FIX: no await
            return True
        except Exception:
            return False

    async def release_read(self) -> None:  # FIX: the chapter cannot release
        if self.read_node:
            self.zk.client.delete(self.read_node)
            self.read_node = None

    async def release_write(self) -> None:  # FIX: the chapter cannot release
        if self.write_node:
            self.zk.client.delete(self.write_node)
            self.write_node = None

    def _read_node_prefix(self) -> str:
        # As in the chapter, a reader's node is a *sibling* ("read0000000003") of the
        # "read" folder that _has_read_locks lists, so writers never see readers.
        return f"/{self.zk.namespace}/{self.read_lock_path}"

    async def _has_write_lock(self) -> bool:
        """檢查是否有寫鎖"""
        path = f"/{self.zk.namespace}/{self.write_lock_path}"
        return bool(self.zk.client.exists(path))  # FIX: no await

    async def _has_read_locks(self) -> bool:
        """檢查是否有讀鎖"""
        path = f"/{self.zk.namespace}/{self.read_lock_path}"
        if not self.zk.client.exists(path):  # FIX: else NoNodeError → no writer ever
            return False
        children = self.zk.client.get_children(path)  # FIX: no await
        return len(children) > 0


class ReadWriteLockReadersVisible(DistributedReadWriteLock):
    """The chapter's read-write lock with its path bug fixed, and nothing else: a reader's
    node goes *inside* the ``read`` folder, where writers look.  Still check-then-act,
    still non-blocking — so what is left to see is the race and writer starvation."""

    def _read_node_prefix(self) -> str:
        return f"/{self.zk.namespace}/{self.read_lock_path}/r-"

