"""``Admin``: what operators ask of naq: live workers, queue statistics, throughput history,
purge.

It works over a connected Client (``naq.Admin(client)``), so it needs no connection of its
own. The CLI's ``list-workers``, ``info`` and ``purge`` are thin layers over it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from types import TracebackType
from typing import Self

import attrs
from loguru import logger

from ._client import ClientRef
from ._errors import ConfigurationError, SerializationError
from ._events import EventSubscription
from ._heartbeat import WorkerInfo, decode_worker_info
from ._history import Bucket, per_minute, read_samples
from ._record import JobRecord, decode_record
from ._time import utcnow
from ._transport import check_queue_name, names, stored_jobs
from ._twin import unwrap

__all__ = ["Admin", "LimitInfo", "PurgeNotice", "PurgeNotices", "QueueInfo", "limits_of"]


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


@attrs.frozen(kw_only=True)
class LimitInfo:
    """One limit key now, from the live workers' heartbeats: ``running`` jobs hold a slot
    (``max_running``), ``waiting`` jobs were sent back to wait on a limit and are not due
    back yet; ``workers`` are the ids of the workers that reported them."""

    key: str
    running: int
    waiting: int
    workers: list[str]


def limits_of(workers: Sequence[WorkerInfo]) -> list[LimitInfo]:
    """The limit keys these workers report, their counts added up (``Admin.limits``; for a
    caller that has read the workers already)."""
    running: dict[str, int] = {}
    waiting: dict[str, int] = {}
    reporters: dict[str, list[str]] = {}
    for worker in workers:
        for counts, into in (
            (worker.limited_running, running),
            (worker.limited_waiting, waiting),
        ):
            for key, count in counts.items():
                into[key] = into.get(key, 0) + count
                if worker.id not in reporters.setdefault(key, []):
                    reporters[key].append(worker.id)
    return [
        LimitInfo(
            key=key,
            running=running.get(key, 0),
            waiting=waiting.get(key, 0),
            workers=reporters[key],
        )
        for key in sorted(reporters)
    ]


class Admin:
    """Operator views and actions over a connected client (naq's, or a naq_sync.Client)."""

    def __init__(self, client: ClientRef) -> None:
        self._connection = unwrap(client)._connection
        self._ops = self._connection.transport.admin

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

    async def limits(self) -> list[LimitInfo]:
        """Limit keys with jobs running in a slot or waiting on a limit, by key (as fresh as
        the workers' heartbeats)."""
        return limits_of(await self.workers())

    async def queues(self, names: Sequence[str] | None = None) -> list[QueueInfo]:
        """The named queues, or every queue that ever had a job or a worker, with their
        live workers (a queue is known once a job is enqueued to it or a worker consumes it).
        """
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

    async def throughput_history(self, minutes: int = 60, queue: str | None = None) -> list[Bucket]:
        """Runs ended per minute over the last ``minutes`` minutes, oldest first, the last
        bucket being the current minute (so far); of every queue, or of ``queue``.

        From the samples every worker stores while its jobs end (at most ``history_interval``
        seconds late, or when it stops), kept a day in JetStream: any process sees them,
        also after a restart. A minute without samples is a bucket of zeros.
        """
        if isinstance(minutes, bool) or minutes < 1:
            raise ConfigurationError(f"minutes must be >= 1, got {minutes!r}")
        if queue is not None:
            check_queue_name(queue)
        until = utcnow()
        since = until.replace(second=0, microsecond=0) - timedelta(minutes=minutes - 1)
        samples = await read_samples(self._connection, since)
        return per_minute(samples, since=since, until=until, queue=queue)

    async def stored_jobs(
        self, queue: str | None = None, *, queued_limit: int = 10_000
    ) -> list[JobRecord]:
        """Every job naq still stores, of every queue or of ``queue``: the records of jobs
        that started (kept until their ``keep_for`` ends), and up to ``queued_limit`` queued
        jobs, oldest first (a queued job is stored only as its message). One pass over
        storage, for listings; a job that cannot be decoded is skipped with a warning.
        """
        if queue is not None:
            check_queue_name(queue)
        stored = await self._connection.call(
            stored_jobs, self._connection.transport.jetstream, queue, queued_limit
        )
        if stored.more_queued:
            logger.warning("listing jobs: only the oldest {} queued jobs were read", queued_limit)
        records = []
        for data in [*stored.records, *stored.queued]:
            try:
                records.append(decode_record(data))
            except SerializationError as exc:
                logger.warning("listing jobs: skipping an undecodable job: {}", exc)
        return records

    async def purge(self, queue: str) -> int:
        """Remove every job message of ``queue`` (waiting, running, waiting to retry).

        Returns how many messages the server removed. A job already running keeps running;
        its outcome is still recorded. Listeners (the dashboard) are told, so they stop
        showing the removed jobs as queued.
        """
        purged = await self._connection.call(self._ops.purge, check_queue_name(queue))
        transport = self._connection.transport
        await self._connection.call(transport.notify_purged, queue, utcnow().isoformat())
        return purged


@attrs.frozen
class PurgeNotice:
    """``queue`` was purged at ``at`` (the purging process's clock, UTC)."""

    queue: str
    at: datetime


class PurgeNotices:
    """Purges as they happen, from any process: ``async with PurgeNotices(client) as n``,
    then ``await n.next()`` for the notices that arrived (at least one)."""

    def __init__(self, client: ClientRef) -> None:
        self._subscription = EventSubscription(
            unwrap(client)._connection, [names.purged_subject("*")]
        )

    async def __aenter__(self) -> Self:
        await self._subscription.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._subscription.close()

    async def next(self) -> list[PurgeNotice]:
        notices = []
        for event in await self._subscription.next():
            try:
                at = datetime.fromisoformat(event.data.decode())
            except ValueError:
                logger.warning("ignoring a malformed purge notice on {}", event.subject)
                continue
            notices.append(PurgeNotice(event.subject.rsplit(".", 1)[1], at))
        return notices
