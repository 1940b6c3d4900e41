"""Recent jobs: a live tail of job events kept in memory for the overview and queue views.

naq keeps no index of jobs by queue, so the dashboard remembers the last jobs it saw
change (from ``client.events()``) since it started; a job's own page reads its record.
"""

from __future__ import annotations

from collections import OrderedDict

import anyio
from loguru import logger

from .._client import Client
from .._errors import NaqError
from .._record import JobRecord

__all__ = ["RecentJobs"]


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

    def list(self, queue: str | None = None, limit: int = 50) -> list[JobRecord]:
        jobs = [r for r in reversed(self._jobs.values()) if queue is None or r.queue == queue]
        return jobs[:limit]

    async def follow(
        self, client: Client, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Record every job event until cancelled (subscribed before ``task_status``)."""
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
