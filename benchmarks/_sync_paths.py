"""Enqueue from blocking code (naq_sync, from threads) and from concurrent async tasks.

Both are measured beside ``naq enqueue awaited (asyncio)`` in the same run, which is the
rate they are compared with.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import anyio

import naq
import naq_sync

from ._jobs import noop
from ._naq_paths import fresh_queue, purge_queue

__all__ = ["enqueue_from_tasks", "enqueue_from_threads"]

_WARMUP = 20


def _shares(n: int, parts: int) -> list[int]:
    return [n // parts + (i < n % parts) for i in range(parts)]


def enqueue_from_threads(url: str, n: int, threads: int) -> float:
    """``naq_sync`` enqueues of ``noop`` from ``threads`` threads at once, ``n`` in all: ops/s.

    One client shared by all threads (as in a WSGI process); the clock runs from the moment
    all threads are released together until the last enqueue returned.
    """
    queue = fresh_queue("sync")
    with naq_sync.Client(url) as client:
        for _ in range(_WARMUP):
            client.enqueue(noop, queue=queue)
        go = threading.Barrier(threads + 1)

        def produce(count: int) -> None:
            go.wait()
            for _ in range(count):
                client.enqueue(noop, queue=queue)

        with ThreadPoolExecutor(threads) as pool:
            futures = [pool.submit(produce, share) for share in _shares(n, threads)]
            go.wait()
            started = time.perf_counter()
            for future in futures:
                future.result()
            rate = n / (time.perf_counter() - started)
    anyio.run(purge_queue, url, queue)
    return rate


async def enqueue_from_tasks(url: str, n: int, tasks: int) -> float:
    """``await client.enqueue(noop)`` from ``tasks`` concurrent tasks, ``n`` in all: ops/s."""
    queue = fresh_queue("tasks")

    async def produce(count: int) -> None:
        for _ in range(count):
            await client.enqueue(noop, queue=queue)

    async with naq.Client(url) as client:
        for _ in range(_WARMUP):
            await client.enqueue(noop, queue=queue)
        started = time.perf_counter()
        async with anyio.create_task_group() as tg:
            for share in _shares(n, tasks):
                tg.start_soon(produce, share)
        rate = n / (time.perf_counter() - started)
        await naq.Admin(client).purge(queue)
        return rate
