"""``client.events()``: live lifecycle events of jobs, woken by the writes themselves.

Events are not a separate stream of messages: they are the writes naq makes anyway (a job
message when a job is queued, a record write at every later step, tagged ``Naq-Event``),
seen through plain NATS subscriptions. They cost the hot path nothing, and a listener sees
what happens from the moment it subscribes (it is a live tail, not a history; the job's
record keeps the history). A job whose outcome is stored in the same batch as its start
reports no separate ``started`` event; its ``finished`` event carries ``started_at``.
"""

from __future__ import annotations

import collections
from types import TracebackType
from typing import TYPE_CHECKING, Self

import attrs

from ._errors import SerializationError
from ._record import JobRecord, JobStatus, decode_record
from ._transport import names

if TYPE_CHECKING:
    from ._connection import Connection
    from ._transport import RawEvent

__all__ = ["Event", "EventStream", "EventSubscription"]

_KIND_OF_STATUS = {
    JobStatus.QUEUED: "queued",
    JobStatus.SCHEDULED: "retrying",
    JobStatus.DEFERRED: "deferred",
    JobStatus.STARTED: "started",
    JobStatus.FINISHED: "finished",
    JobStatus.FAILED: "failed",
    JobStatus.CANCELED: "canceled",
}


@attrs.frozen
class Event:
    """One step in a job's life: ``kind`` is queued, deferred, started, progress, retrying,
    finished, failed or canceled; ``record`` is the job's record as of that step."""

    kind: str
    job_id: str
    queue: str
    record: JobRecord

    @property
    def status(self) -> JobStatus:
        return self.record.status


class EventSubscription:
    """Plain NATS subscriptions to ``subjects``, read in batches of raw messages (one
    crossing per call): what :class:`EventStream` and the purge notices read."""

    def __init__(self, connection: Connection, subjects: list[str]) -> None:
        self._connection = connection
        self._subjects = subjects
        self._handle: object | None = None

    async def open(self) -> None:
        """Subscribe (once); messages from this moment on are delivered."""
        if self._handle is None:
            transport = self._connection.transport
            self._handle = await self._connection.call(transport.open_events, self._subjects)

    async def next(self) -> list[RawEvent]:
        """The messages that arrived since the last call; waits for at least one."""
        await self.open()
        transport = self._connection.transport
        return await self._connection.call(transport.next_events, self._handle, None)

    async def close(self) -> None:
        """Unsubscribe."""
        if self._handle is not None:
            handle, self._handle = self._handle, None
            await self._connection.call(self._connection.transport.close_events, handle)


class EventStream:
    """An async iterator of :class:`Event`; use ``async with client.events(...) as events``."""

    def __init__(self, connection: Connection, job_id: str | None, queue: str | None) -> None:
        subjects = [
            names.stored_record_subject(queue or "*", job_id or "*"),
            *names.queued_subjects(queue, job_id or "*"),
        ]
        self._subscription = EventSubscription(connection, subjects)
        self._buffer: collections.deque[Event] = collections.deque()

    async def open(self) -> None:
        """Subscribe; events from this moment on are delivered."""
        await self._subscription.open()

    async def aclose(self) -> None:
        """Unsubscribe."""
        await self._subscription.close()

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> Event:
        while not self._buffer:
            raw = await self._subscription.next()
            self._buffer.extend(e for e in map(_event, raw) if e is not None)
        return self._buffer.popleft()


def _event(raw: RawEvent) -> Event | None:
    try:
        record = decode_record(raw.data)
    except SerializationError:
        return None  # not a job (e.g. garbage published on a queue subject)
    if raw.subject.startswith("naq.jobs."):
        kind = "queued"  # the job message itself
    elif raw.event == "queued":
        return None  # a release's record write; its job message is the "queued" event
    else:
        kind = raw.event or _KIND_OF_STATUS[record.status]
    return Event(kind, record.id, record.queue, record)
