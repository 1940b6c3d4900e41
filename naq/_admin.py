"""``Admin``: what operators ask of naq: live workers, queue statistics, purge.

It works over a connected Client (``naq.Admin(client)``), so it needs no connection of its
own. The CLI's ``list-workers``, ``info`` and ``purge`` are thin layers over it.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs
from loguru import logger

from ._client import ClientRef
from ._errors import SerializationError
from ._heartbeat import WorkerInfo, decode_worker_info
from ._transport import check_queue_name
from ._transport._admin import NatsAdmin
from ._twin import unwrap

__all__ = ["Admin", "QueueInfo"]


@attrs.frozen(kw_only=True)
class QueueInfo:
    """One queue now: ``pending`` jobs wait (or wait to retry), ``in_progress`` were handed to
    a worker and not yet acknowledged, ``throughput`` is jobs per second over the last minute
    (from the workers' heartbeats), ``workers`` are the ids of live workers consuming it."""

    name: str
    pending: int
    in_progress: int
    throughput: float
    workers: list[str]


class Admin:
    """Operator views and actions over a connected client (naq's, or a naq_sync.Client)."""

    def __init__(self, client: ClientRef) -> None:
        self._connection = unwrap(client)._connection
        self._ops = NatsAdmin(self._connection.transport)

    async def workers(self) -> list[WorkerInfo]:
        """Live workers, by id; a worker whose heartbeat expired (killed) is not listed."""
        values = await self._connection.call(self._ops.heartbeats)
        workers = []
        for value in values:
            try:
                workers.append(decode_worker_info(value))
            except SerializationError as exc:
                logger.warning("skipping a worker heartbeat: {}", exc)
        return sorted(workers, key=lambda w: w.id)

    async def queues(self, names: Sequence[str] | None = None) -> list[QueueInfo]:
        """The named queues, or every queue that has had a worker, with their live workers."""
        wanted = None if names is None else [check_queue_name(n) for n in names]
        stats = await self._connection.call(self._ops.queue_stats, wanted)
        workers = await self.workers()
        known = {s.queue for s in stats}
        if wanted is None:  # a queue whose workers have not created its consumer yet
            extra = sorted({q for w in workers for q in w.queues} - known)
            if extra:
                stats += await self._connection.call(self._ops.queue_stats, extra)
        return [
            QueueInfo(
                name=s.queue,
                pending=s.pending,
                in_progress=s.in_progress,
                throughput=round(sum(w.throughput.get(s.queue, 0.0) for w in workers), 3),
                workers=[w.id for w in workers if s.queue in w.queues],
            )
            for s in stats
        ]

    async def purge(self, queue: str) -> int:
        """Remove every job message of ``queue`` (waiting, running, waiting to retry).

        Returns how many messages the server removed. A job already running keeps running;
        its outcome is still recorded.
        """
        return await self._connection.call(self._ops.purge, check_queue_name(queue))
