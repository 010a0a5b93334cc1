"""Worker processes for the lock lessons and tests: real OS processes contending for a lock.

``python -m course_lib.coord.worker counter --hosts H --name L --count 200 --id w1``
acquires lock ``L`` ``count`` times and, holding it, increments a counter znode with a
plain read-modify-write (``get`` then ``set``, no version check): without mutual
exclusion, updates are lost.  ``--recipe`` picks the lock: ``ours``
(:class:`~course_lib.coord.DistributedLock`), ``kazoo`` (kazoo's ``Lock``), ``chapter``
(the chapter's polling lock) or ``none``.

``python -m course_lib.coord.worker fenced --hosts H --name L --storage HOST:PORT --id w1``
takes the lock once and writes to a :class:`~course_lib.coord.FencedStorage` with its
fencing token every ``--every`` seconds for ``--seconds`` seconds.

Both print one JSON object per line: ``{"event": "connected"}`` once the session is
open (counter mode), ``{"event": "held", "worker", "acquired",
"released", "token"}`` per acquisition (times from ``time.time()``, comparable across
processes), ``{"event": "write", ...}`` per fenced write, and a final ``{"event":
"done", "wakeups": ..., "attempts": ...}``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time

from course_lib.zk import connect

from .base import Recipe
from .fencing import FencedStorageClient, StaleToken
from .lock import DistributedLock


def emit(**fields) -> None:
    print(json.dumps(fields), flush=True)


class _ChapterLockAdapter:
    """The chapter's async polling lock behind a synchronous acquire/release."""

    def __init__(self, client, namespace: str, name: str):
        from course_lib.chapter.coord import DistributedLock as ChapterLock
        from course_lib.chapter.coord import ZKCoordinator as ChapterCoordinator

        coordinator = ChapterCoordinator("", namespace, client=client)
        client.ensure_path(f"/{namespace}/locks")
        self.lock = ChapterLock(coordinator, name)
        self.fencing_token = None

    def acquire(self) -> bool:
        return asyncio.run(self.lock.acquire(retry_delay=0.01))

    def release(self) -> None:
        asyncio.run(self.lock.release())


def make_lock(recipe: str, client, namespace: str, name: str, worker: str):
    if recipe == "ours":
        return DistributedLock(client, name, worker, namespace=namespace, op_timeout=30)
    if recipe == "kazoo":
        return client.Lock(f"/{namespace}/kazoo-locks/{name}", worker)
    if recipe == "chapter":
        return _ChapterLockAdapter(client, namespace, name)
    if recipe == "none":
        return None
    raise ValueError(f"unknown recipe {recipe!r}: use ours, kazoo, chapter or none")


def run_counter(args) -> None:
    client = connect(args.hosts, timeout=args.session_timeout, connect_timeout=30)
    emit(event="connected", worker=args.id)
    lock = make_lock(args.recipe, client, args.namespace, args.name, args.id)
    counter = Recipe(client, args.namespace, op_timeout=30)
    path = f"/{args.namespace}/counters/{args.name}"
    counter.call("ensure_path", path)
    for _ in range(args.count):
        if lock is not None:
            lock.acquire()
        acquired = time.time()
        value = int(counter.call("get", path)[0] or b"0")
        if args.hold_ms:
            time.sleep(args.hold_ms / 1000)
        counter.call("set", path, str(value + 1).encode())
        released = time.time()
        token = getattr(lock, "fencing_token", None) if args.recipe == "ours" else None
        if lock is not None:
            lock.release()
        if args.trace:
            emit(event="held", worker=args.id, acquired=acquired, released=released, token=token)
    emit(event="done", worker=args.id, wakeups=getattr(lock, "wakeups", None),
         attempts=getattr(getattr(lock, "lock", None), "attempts", None))
    client.stop()
    client.close()


def run_fenced(args) -> None:
    client = connect(args.hosts, timeout=args.session_timeout, connect_timeout=30)
    lock = DistributedLock(client, args.name, args.id, namespace=args.namespace, op_timeout=30)
    host, port = args.storage.rsplit(":", 1)
    storage = FencedStorageClient((host, int(port)), writer=args.id)
    lock.acquire()
    emit(event="acquired", worker=args.id, token=lock.fencing_token, time=time.time())
    until = time.time() + args.seconds
    while time.time() < until:
        try:
            storage.write("balance", f"written by {args.id}", lock.fencing_token)
            emit(event="write", worker=args.id, token=lock.fencing_token, accepted=True,
                 time=time.time(), lost=lock.lost)
        except StaleToken as error:
            emit(event="write", worker=args.id, token=lock.fencing_token, accepted=False,
                 time=time.time(), lost=lock.lost, error=str(error))
            break
        time.sleep(args.every)
    emit(event="done", worker=args.id, lost=lock.lost)
    storage.close()
    client.stop()
    client.close()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course_lib.coord.worker")
    parser.add_argument("mode", choices=["counter", "fenced"])
    parser.add_argument("--hosts", required=True)
    parser.add_argument("--name", required=True, help="lock name")
    parser.add_argument("--id", required=True, help="worker identifier")
    parser.add_argument("--namespace", default="course")
    parser.add_argument("--recipe", default="ours", choices=["ours", "kazoo", "chapter", "none"])
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--hold-ms", type=float, default=0.0)
    parser.add_argument("--trace", action="store_true", help="print one line per acquisition")
    parser.add_argument("--session-timeout", type=float, default=10.0)
    parser.add_argument("--storage", help="HOST:PORT of a FencedStorage (fenced mode)")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--every", type=float, default=0.2)
    args = parser.parse_args(argv)
    if args.mode == "fenced" and not args.storage:
        parser.error("fenced mode needs --storage HOST:PORT")
    (run_counter if args.mode == "counter" else run_fenced)(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
