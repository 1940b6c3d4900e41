"""The dashboard's job lists: every stored job, summarized, kept current by job events.

naq keeps no index of jobs by queue or state, so the dashboard builds one: at start it reads
every job naq still stores (``Admin.stored_jobs``: records and queued messages), then
follows ``client.events()`` for every change. Lists therefore show the same jobs whenever
the dashboard started. A purge removes job messages without a write to their records, so
it sends a notice of its own (``Admin.purge``): on it, the queue's waiting jobs are dropped.
The index holds at most ``size`` jobs, the most recently changed.
"""

from __future__ import annotations

import math
from collections import Counter, OrderedDict
from datetime import datetime
from typing import Any

import anyio
import attrs
from loguru import logger

from .._admin import Admin, PurgeNotices
from .._client import Client
from .._errors import NaqError
from .._record import JobRecord, JobStatus
from .._views import job_summary_view

__all__ = ["JobIndex", "JobPage"]

_WAITING = frozenset({JobStatus.QUEUED, JobStatus.SCHEDULED})
"""What a purge removes: jobs waiting on the queue, or waiting there to be retried."""


@attrs.frozen
class _Entry:
    updated: datetime
    queue: str
    status: JobStatus
    function: str
    view: dict[str, Any]


def _entry(record: JobRecord) -> _Entry:
    updated = record.history[-1].at if record.history else record.enqueued_at
    view = job_summary_view(record)
    return _Entry(updated, record.queue, record.status, record.func_name, view)


@attrs.frozen
class JobPage:
    """One page of a job list, newest change first; ``counts`` are per state for the same
    queue and function filter (every state), so a view can show its tabs with numbers."""

    jobs: list[dict[str, Any]]
    total: int
    page: int
    pages: int
    counts: dict[str, int]


class JobIndex:
    """Summaries of stored jobs by id, most recently changed last."""

    def __init__(self, size: int = 50_000) -> None:
        self._size = size
        self._jobs: OrderedDict[str, _Entry] = OrderedDict()

    def add(self, record: JobRecord) -> None:
        """Take a job as of a change (an event): it replaces what was known."""
        self._put(record.id, _entry(record))

    def add_stored(self, record: JobRecord) -> None:
        """Take a job as read from storage: kept only if no newer change was seen."""
        entry = _entry(record)
        known = self._jobs.get(record.id)
        if known is None or known.updated < entry.updated:
            self._put(record.id, entry)

    def _put(self, job_id: str, entry: _Entry) -> None:
        self._jobs.pop(job_id, None)
        self._jobs[job_id] = entry
        while len(self._jobs) > self._size:
            self._jobs.popitem(last=False)

    def forget_purged(self, queue: str, at: datetime) -> None:
        """Drop the jobs of ``queue`` that waited there when it was purged at ``at``."""
        for job_id, entry in list(self._jobs.items()):
            if entry.queue == queue and entry.status in _WAITING and entry.updated <= at:
                del self._jobs[job_id]

    def page(
        self,
        *,
        queue: str | None = None,
        status: str | None = None,
        function: str | None = None,
        page: int = 1,
        per_page: int = 50,
    ) -> JobPage:
        """Jobs of a queue (or all), in a state (or all), whose function name contains
        ``function`` (any case), newest change first."""
        needle = (function or "").lower()
        matching = [
            entry
            for entry in reversed(self._jobs.values())  # ties: the later taken first
            if (queue is None or entry.queue == queue) and needle in entry.function.lower()
        ]
        counts = Counter(entry.status.value for entry in matching)
        if status is not None:
            matching = [entry for entry in matching if entry.status.value == status]
        matching.sort(key=lambda entry: entry.updated, reverse=True)
        pages = max(1, math.ceil(len(matching) / per_page))
        page = min(max(page, 1), pages)
        shown = matching[(page - 1) * per_page : page * per_page]
        return JobPage([e.view for e in shown], len(matching), page, pages, dict(counts))

    async def follow(
        self, client: Client, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Follow every job event and purge, then read what is stored; report started once
        the stored jobs are in; run until cancelled."""
        async with anyio.create_task_group() as tg:
            await tg.start(self._follow_purges, client)
            await tg.start(self._follow_events, client)
            await self._load(client)
            task_status.started()

    async def _load(self, client: Client) -> None:
        """Read every stored job (retried until it succeeds: lists are empty until then)."""
        while True:
            try:
                stored = await Admin(client).stored_jobs(queued_limit=self._size)
            except NaqError as exc:
                logger.warning("dashboard: could not read the stored jobs ({}); retrying", exc)
                await anyio.sleep(1)
                continue
            for record in stored:
                self.add_stored(record)
            return

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
