"""Worker heartbeats: who is working, on what, and how fast, for ``naq list-workers``/``info``.

Each worker writes a small JSON document (``WorkerInfo``) to the KV bucket ``naq_workers``
every ``heartbeat_interval`` seconds, with a per-message TTL of three intervals: a worker
killed with SIGKILL stops renewing it and the server deletes it by itself. A clean exit
deletes it at once. The counters come from ``WorkerStats``, plain integers the job path
bumps; the heartbeat loop reads them on its own schedule, off the hot path.
"""

from __future__ import annotations

import asyncio
import collections
import math
import os
import socket
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

import anyio
import attrs
from anyio.abc import TaskStatus
from cattrs.preconf.json import make_converter
from loguru import logger

from ._errors import SerializationError
from ._time import utcnow
from ._transport import worker_key

if TYPE_CHECKING:
    from ._connection import Connection
    from ._metrics import WorkerMetrics

__all__ = [
    "THROUGHPUT_WINDOW",
    "WorkerInfo",
    "WorkerStats",
    "decode_worker_info",
    "encode_worker_info",
    "heartbeat_loop",
]

THROUGHPUT_WINDOW = 60.0
"""Seconds over which a worker's recent throughput is measured."""
BUSY_BEAT = 0.5
"""Seconds between heartbeats while the worker's counters change (else ``interval``): what
operators see of a busy worker is at most this old, at two small writes a second."""


@attrs.define
class WorkerStats:
    """Counters kept by a Worker: jobs running now, and runs ended (and failed) per queue.

    Read by the heartbeat (``heartbeat_loop``) and the throughput history (``_history``)."""

    running: int = 0
    processed: int = 0
    failed: int = 0
    processed_by_queue: collections.Counter[str] = attrs.Factory(collections.Counter)
    failed_by_queue: collections.Counter[str] = attrs.Factory(collections.Counter)

    def job_ended(self, queue: str, *, ok: bool) -> None:
        """A run ended: ``ok`` when it finished, not when it failed (even if retried)."""
        self.processed += 1
        self.processed_by_queue[queue] += 1
        if not ok:
            self.failed += 1
            self.failed_by_queue[queue] += 1


@attrs.frozen(kw_only=True)
class WorkerInfo:
    """One worker as its last heartbeat described it. ``throughput`` is jobs per second per
    queue over the last minute; ``state`` is ``running`` or ``stopping``; ``parent`` is the
    pid of the supervisor that started it (``naq worker --processes``), else None."""

    id: str
    host: str
    pid: int
    queues: list[str]
    backend: str
    concurrency: int
    running: int
    processed: int
    failed: int
    throughput: dict[str, float]
    state: str
    started_at: datetime
    last_heartbeat: datetime
    heartbeat_interval: float
    parent: int | None = None
    limited_running: dict[str, int] = attrs.Factory(dict)
    """Per limit key (``max_running``), the jobs running here in a slot."""
    limited_waiting: dict[str, int] = attrs.Factory(dict)
    """Per limit key, the jobs this worker sent back to wait on a limit, not yet due back."""


_converter = make_converter()


def encode_worker_info(info: WorkerInfo) -> bytes:
    return _converter.dumps(info).encode()


def decode_worker_info(data: bytes) -> WorkerInfo:
    try:
        return _converter.loads(data, WorkerInfo)
    except Exception as exc:  # any malformed beat is reported the same way
        raise SerializationError(f"undecodable worker heartbeat: {exc!r}") from exc


class _Throughput:
    """Jobs per second per queue over the last ``THROUGHPUT_WINDOW``, from counter samples."""

    def __init__(self) -> None:
        self._samples: collections.deque[tuple[float, dict[str, int]]] = collections.deque()

    def update(self, now: float, counts: collections.Counter[str]) -> dict[str, float]:
        self._samples.append((now, dict(counts)))
        while len(self._samples) > 2 and now - self._samples[1][0] >= THROUGHPUT_WINDOW:
            self._samples.popleft()
        then, old = self._samples[0]
        elapsed = now - then
        if elapsed <= 0:
            return {}
        return {q: round((n - old.get(q, 0)) / elapsed, 3) for q, n in counts.items()}


async def _until_next_beat(stats: WorkerStats, interval: float) -> None:
    """Sleep ``interval``, or only ``BUSY_BEAT`` once jobs started or ended meanwhile."""
    seen = (stats.processed, stats.running)
    waited = 0.0
    while waited < interval:
        step = min(BUSY_BEAT, interval - waited)
        await anyio.sleep(step)
        waited += step
        if (stats.processed, stats.running) != seen:
            return


def _backend() -> str:
    """asyncio, or trio (the only other backend naq runs on; see ``_transport._bridge``)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return "trio"
    return "asyncio"


async def heartbeat_loop(
    connection: Connection,
    *,
    worker_id: str,
    queues: list[str],
    concurrency: int,
    interval: float,
    stats: WorkerStats,
    stopping: Callable[[], bool],
    parent: int | None = None,
    metrics: WorkerMetrics | None = None,
    limit_counts: Callable[[], tuple[dict[str, int], dict[str, int]]] | None = None,
    task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Write the worker's heartbeat every ``interval`` seconds until cancelled, then delete it;
    every ``BUSY_BEAT`` seconds while jobs start or end, so live counters are never staler.

    A failed write is logged and retried at the next beat; the TTL covers two misses.
    ``metrics`` shows the worker up (``naq_worker_up``) while this runs; ``limit_counts``
    gives the jobs running and waiting per limit key.
    """
    admin = connection.transport.admin
    key = worker_key(worker_id)
    ttl = max(1, math.ceil(3 * interval))
    throughput = _Throughput()
    started_at = utcnow()
    base = {
        "id": worker_id,
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "queues": list(queues),
        "backend": _backend(),
        "concurrency": concurrency,
        "started_at": started_at,
        "heartbeat_interval": interval,
        "parent": parent,
    }
    if metrics is not None:
        metrics.worker_up(worker_id, True)
    try:
        while True:
            limited_running, limited_waiting = limit_counts() if limit_counts else ({}, {})
            info = WorkerInfo(
                **base,
                limited_running=limited_running,
                limited_waiting=limited_waiting,
                running=stats.running,
                processed=stats.processed,
                failed=stats.failed,
                throughput=throughput.update(anyio.current_time(), stats.processed_by_queue),
                state="stopping" if stopping() else "running",
                last_heartbeat=utcnow(),
            )
            try:
                await connection.call(admin.put_heartbeat, key, encode_worker_info(info), ttl)
            except Exception as exc:  # noqa: BLE001 - logged; the next beat tries again
                logger.warning("heartbeat of {} failed: {!r}", worker_id, exc)
            task_status.started()
            task_status = anyio.TASK_STATUS_IGNORED
            await _until_next_beat(stats, interval)
    finally:
        if metrics is not None:
            metrics.worker_up(worker_id, False)
        with anyio.CancelScope(shield=True), anyio.move_on_after(5):
            try:
                await connection.call(admin.delete_heartbeat, key)
            except Exception as exc:  # noqa: BLE001 - logged; the TTL removes it anyway
                logger.warning("could not remove heartbeat of {}: {!r}", worker_id, exc)
