"""naq's paths through its public API, on whichever anyio backend runs them.

Every measurement uses a fresh queue, so nothing left over from another one is in the way.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from typing import Any

import anyio
import anyio.to_thread

import naq

from ._drain import wait_drained
from ._jobs import noop, sync_noop

__all__ = [
    "drain_queue",
    "enqueue_awaited",
    "enqueue_many",
    "fill_queue",
    "fresh_queue",
    "latency",
    "purge_queue",
]

_BATCH = 1_000
"""Calls per ``enqueue_many`` batch, like the pipelined floor's window."""

_FILLERS = 64
"""Concurrent enqueues while filling a queue before a worker run (that part is not timed)."""
_CHECKED = 20
"""Jobs whose stored result is read back after a worker run, as a sanity check."""
_WARMUP = 20


def fresh_queue(kind: str) -> str:
    return f"bench-{kind}-{uuid.uuid4().hex[:8]}"


async def purge_queue(url: str, queue: str) -> None:
    """Drop what an enqueue measurement left queued (untimed), as the floors delete their
    stream: every run then starts from the same stream state instead of a growing one."""
    async with naq.Client(url) as client:
        await naq.Admin(client).purge(queue)


async def enqueue_awaited(url: str, n: int) -> float:
    """``client.enqueue(noop)`` awaited one at a time (nobody consumes them): ops/s."""
    queue = fresh_queue("enqueue")
    async with naq.Client(url) as client:
        for _ in range(_WARMUP):
            await client.enqueue(noop, queue=queue)
        started = time.perf_counter()
        for _ in range(n):
            await client.enqueue(noop, queue=queue)
        rate = n / (time.perf_counter() - started)
        await naq.Admin(client).purge(queue)
        return rate


async def enqueue_many(url: str, n: int) -> float:
    """``client.enqueue_many`` in batches of ``_BATCH`` noop calls (nobody consumes): ops/s."""
    queue = fresh_queue("many")
    async with naq.Client(url) as client:
        await client.enqueue_many([naq.Call(noop)] * _WARMUP, queue=queue)
        started = time.perf_counter()
        for done in range(0, n, _BATCH):
            batch = [naq.Call(noop) for _ in range(min(_BATCH, n - done))]
            await client.enqueue_many(batch, queue=queue)
        rate = n / (time.perf_counter() - started)
        await naq.Admin(client).purge(queue)
        return rate


async def fill_queue(
    url: str, n: int, sync_jobs: bool = False, **options: Any
) -> tuple[str, list[str]]:
    """Enqueue ``n`` noop jobs on a fresh queue over concurrent tasks: the queue and job ids.

    The jobs are ``async def`` noops, or ``def`` ones with ``sync_jobs``; ``options`` are
    the enqueue's (``max_running=`` for ``benchmarks.limits``).

    This is setup for :func:`drain_queue`, not a measurement. Run it on asyncio: on Trio
    every enqueue crosses into naq's loop thread and filling takes several times longer.
    """
    queue = fresh_queue("work")
    ids: list[str] = []
    func = sync_noop if sync_jobs else noop

    async def filler(count: int) -> None:
        for _ in range(count):
            ids.append((await client.enqueue(func, queue=queue, **options)).id)  # noqa: PERF401 - awaited

    async with naq.Client(url) as client, anyio.create_task_group() as tg:
        for index in range(_FILLERS):
            tg.start_soon(filler, n // _FILLERS + (index < n % _FILLERS))
    return queue, ids


async def drain_queue(
    url: str,
    queue: str,
    job_ids: list[str],
    concurrency: int,
    metrics: naq.WorkerMetrics | None = None,
    history_interval: float | None = None,
    all_lanes: bool = False,
) -> float:
    """Jobs per second for one Worker to run a filled queue's jobs and store their results.

    The clock starts once the worker is connected and consuming and stops when the queue's
    consumer has every message acked, which naq does only after the job's outcome is stored.
    A sample of the results is then read back through naq, untimed. ``metrics``: the
    worker counts its jobs for Prometheus; ``history_interval``: how often it stores its
    throughput history (default: every 10 s; both for ``benchmarks.metrics``);
    ``all_lanes``: the jobs have priorities (``benchmarks.priorities``).
    """
    history = {} if history_interval is None else {"history_interval": history_interval}
    worker = naq.Worker([queue], url=url, concurrency=concurrency, metrics=metrics, **history)
    abandon = threading.Event()
    async with anyio.create_task_group() as tg:
        await tg.start(worker.run)
        started = time.perf_counter()
        try:
            drained = await anyio.to_thread.run_sync(
                wait_drained,
                url,
                queue,
                60.0 + len(job_ids) / 50,
                abandon,
                all_lanes,
                abandon_on_cancel=True,
            )
        finally:
            abandon.set()  # if the worker failed, the watcher thread stops at its next tick
        worker.stop()
    await _check_results(url, job_ids)
    return len(job_ids) / (drained - started)


async def latency(url: str, samples: int) -> list[float]:
    """Enqueue-to-result times in ms, one job at a time, with a worker already waiting."""
    queue = fresh_queue("latency")
    async with naq.Client(url) as client:
        worker = naq.Worker([queue], url=url)
        async with anyio.create_task_group() as tg:
            await tg.start(worker.run)
            for _ in range(_WARMUP):
                await _round_trip(client, queue)
            times = [await _round_trip(client, queue) for _ in range(samples)]
            worker.stop()
    return times


async def _round_trip(client: naq.Client, queue: str) -> float:
    started = time.perf_counter()
    job = await client.enqueue(noop, queue=queue)
    await job.result(timeout=10)
    return (time.perf_counter() - started) * 1000.0


async def _check_results(url: str, job_ids: list[str]) -> None:
    """Read back a sample of results; a job that failed raises naq.JobFailed here."""
    sample = job_ids[:5] + job_ids[-5:] + random.sample(job_ids, min(len(job_ids), _CHECKED - 10))
    async with naq.Client(url) as client:
        for job_id in sample:
            job = await client.fetch_job(job_id)
            if await job.result(timeout=10) is not None:
                raise RuntimeError(f"job {job_id} returned something other than None")
