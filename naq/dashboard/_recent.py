"""Recent jobs: a live tail of job events kept in memory for the overview and queue views.

naq keeps no index of jobs by queue, so the dashboard remembers the last jobs it saw
change (from ``client.events()``) since it started; a job's own page reads its record.
A purge removes job messages without a write to their records, so it sends a notice of
its own (``Admin.purge``): on it, the queue's jobs still shown waiting are forgotten.
"""

from __future__ import annotations

from collections import OrderedDict
from datetime import datetime

import anyio
from loguru import logger

from .._admin import PurgeNotices
from .._client import Client
from .._errors import NaqError
from .._record import JobRecord, JobStatus

__all__ = ["RecentJobs"]

_WAITING = frozenset({JobStatus.QUEUED, JobStatus.SCHEDULED})
"""What a purge removes: jobs waiting on the queue, or waiting there to be retried."""


class RecentJobs:
    """The ``size`` jobs most recently seen changing, newest first."""

    def __init__(self, size: int = 200) -> None:
        self._size = size
        self._jobs: OrderedDict[str, JobRecord] = OrderedDict()

    def add(self, record: JobRecord) -> None:
        self._jobs.pop(record.id, None)
        self._jobs[record.id] = record
        while len(self._jobs) > self._size:
            self._jobs.popitem(last=False)

    def forget_purged(self, queue: str, at: datetime) -> None:
        """Drop the jobs of ``queue`` that waited there when it was purged at ``at``."""
        for job_id, record in list(self._jobs.items()):
            if record.queue != queue or record.status not in _WAITING:
                continue
            last = record.history[-1].at if record.history else record.enqueued_at
            if last <= at:
                del self._jobs[job_id]

    def list(self, queue: str | None = None, limit: int = 50) -> list[JobRecord]:
        jobs = [r for r in reversed(self._jobs.values()) if queue is None or r.queue == queue]
        return jobs[:limit]

    async def follow(
        self, client: Client, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Record every job event and purge until cancelled (subscribed before
        ``task_status``)."""
        async with anyio.create_task_group() as tg:
            await tg.start(self._follow_purges, client)
            await self._follow_events(client, task_status=task_status)

    async def _follow_purges(
        self, client: Client, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        while True:
            try:
                async with PurgeNotices(client) as notices:
                    task_status.started()
                    task_status = anyio.TASK_STATUS_IGNORED
                    while True:
                        for notice in await notices.next():
                            self.forget_purged(notice.queue, notice.at)
            except NaqError as exc:
                logger.warning("dashboard: purge notices interrupted ({}); resubscribing", exc)
                await anyio.sleep(1)

    async def _follow_events(
        self, client: Client, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        while True:
            try:
                async with client.events() as events:
                    task_status.started()
                    task_status = anyio.TASK_STATUS_IGNORED
                    async for event in events:
                        self.add(event.record)
            except NaqError as exc:
                logger.warning("dashboard: job events interrupted ({}); resubscribing", exc)
                await anyio.sleep(1)
