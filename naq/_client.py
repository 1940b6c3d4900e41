"""``Client`` and ``Queue``: connect to NATS and enqueue jobs from asyncio or Trio code."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any, Self

import attrs

from ._connection import Connection
from ._errors import ConfigurationError
from ._job import Job
from ._record import JobRecord, JobStatus, encode_record
from ._retry import Retry
from ._schedule import make_trigger
from ._schedules import Schedule, ScheduleStatus
from ._scheduling import Scheduling
from ._serializers import Serializer, get_serializer
from ._settings import default_url
from ._time import as_utc, utcnow
from ._transport import check_job_id, check_queue_name
from ._transport._schedules import check_schedule_id

__all__ = ["Client", "Queue"]

Seconds = float | timedelta


def _seconds(name: str, value: Seconds | None, *, allow_never: bool = False) -> float | None:
    if value is None:
        return None
    seconds = value.total_seconds() if isinstance(value, timedelta) else value
    if not isinstance(seconds, int | float) or isinstance(seconds, bool):
        raise ConfigurationError(f"{name} must be seconds or a timedelta, got {value!r}")
    if allow_never and seconds == -1:
        return -1.0
    if seconds < 0 or (seconds == 0 and not allow_never):
        raise ConfigurationError(f"{name} must be positive, got {value!r}")
    return float(seconds)


def _retry(value: Retry | int | None) -> Retry | None:
    if value is None or isinstance(value, Retry):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return Retry(max=value)
    raise ConfigurationError(f"retry must be a naq.Retry or a number of retries, got {value!r}")


class Client:
    """A connection to NATS for enqueueing jobs and reading them back.

    ``url`` defaults to env ``NAQ_NATS_URL``, else ``nats://127.0.0.1:4222``; ``serializer``
    is ``"pickle"`` (default), ``"json"``, a Serializer, or env ``NAQ_SERIALIZER``. Use it
    as an async context manager; it creates naq's streams and bucket if they are missing.
    ``scheduler_engine`` picks who fires schedules: ``"auto"`` (default, env
    ``NAQ_SCHEDULER_ENGINE``: the server when it has message schedules), ``"server"`` or
    ``"naq"`` (a ``naq scheduler`` process).
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        serializer: str | Serializer | None = None,
        scheduler_engine: str | None = None,
    ):
        self._connection = Connection(url or default_url(), get_serializer(serializer))
        self._scheduling = Scheduling(self._connection, scheduler_engine)

    @property
    def url(self) -> str:
        return self._connection.url

    @property
    def serializer(self) -> Serializer:
        return self._connection.serializer

    async def __aenter__(self) -> Self:
        await self._connection.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._connection.close()

    def queue(self, name: str = "default") -> Queue:
        """A handle on one queue, with the same enqueue methods."""
        return Queue(self, name)

    async def enqueue(
        self,
        func: Callable[..., Any] | str,
        /,
        *args: Any,
        queue: str = "default",
        job_id: str | None = None,
        job_timeout: Seconds | None = None,
        retry: Retry | int | None = None,
        result_ttl: Seconds | None = None,
        meta: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> Job:
        """Enqueue ``func(*args, **kwargs)``; ``func`` is a callable or ``"pkg.mod:func"``.

        Returns once the job is stored on the server. ``job_timeout`` bounds one run,
        ``retry`` is a naq.Retry (or a number of retries), ``result_ttl`` is how long the
        outcome is kept (-1: forever; default 500 s), ``meta`` is free-form JSON.
        """
        return await self.enqueue_call(
            func,
            args,
            kwargs,
            queue=queue,
            job_id=job_id,
            job_timeout=job_timeout,
            retry=retry,
            result_ttl=result_ttl,
            meta=meta,
        )

    async def enqueue_call(
        self,
        func: Callable[..., Any] | str,
        args: Sequence[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        *,
        queue: str = "default",
        job_id: str | None = None,
        job_timeout: Seconds | None = None,
        retry: Retry | int | None = None,
        result_ttl: Seconds | None = None,
        meta: Mapping[str, Any] | None = None,
    ) -> Job:
        """Like :meth:`enqueue`, with args and kwargs passed explicitly (no name clashes)."""
        record = self._new_record(
            func, args, kwargs or {}, queue, job_id, job_timeout, retry, result_ttl, meta
        )
        transport = self._connection.transport
        await self._connection.call(
            transport.enqueue, record.queue, record.id, encode_record(record)
        )
        return Job(self._connection, record.id, record)

    async def fetch_job(self, job_id: str) -> Job:
        """A handle on an existing job with its current record; raises JobNotFound."""
        job = Job(self._connection, check_job_id(job_id))
        await job.refresh()
        return job

    # -- delayed and recurring jobs (naq/_scheduling.py does the work) ----------------------

    async def enqueue_at(
        self,
        when: datetime,
        func: Callable[..., Any] | str,
        /,
        *args: Any,
        catch_up: bool = False,
        queue: str = "default",
        job_id: str | None = None,
        job_timeout: Seconds | None = None,
        retry: Retry | int | None = None,
        result_ttl: Seconds | None = None,
        meta: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> Job:
        """Enqueue ``func(*args, **kwargs)`` at ``when`` (naive: UTC; aware: converted).

        The job is ``scheduled`` until then and can be cancelled with
        :meth:`cancel_schedule` (its id). A time in the past raises ConfigurationError
        unless ``catch_up=True``, which runs it at once.
        """
        if not isinstance(when, datetime):
            raise ConfigurationError(f"when must be a datetime, got {when!r}")
        job_id = check_schedule_id(job_id) if job_id is not None else uuid.uuid4().hex
        record = self._new_record(
            func, args, kwargs, queue, job_id, job_timeout, retry, result_ttl, meta
        )
        trigger = make_trigger(at=as_utc(when))
        await self._scheduling.create(record, trigger, repeat=None, one_off=True, catch_up=catch_up)
        return Job(self._connection, record.id, attrs.evolve(record, status=JobStatus.SCHEDULED))

    async def enqueue_in(
        self, delay: Seconds, func: Callable[..., Any] | str, /, *args: Any, **options: Any
    ) -> Job:
        """:meth:`enqueue_at` ``delay`` (seconds or a timedelta) from now."""
        seconds = delay.total_seconds() if isinstance(delay, timedelta) else delay
        if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds < 0:
            raise ConfigurationError(f"delay must be seconds >= 0 or a timedelta, got {delay!r}")
        when = utcnow() + timedelta(seconds=seconds)
        return await self.enqueue_at(when, func, *args, catch_up=True, **options)

    async def schedule(
        self,
        func: Callable[..., Any] | str,
        /,
        *args: Any,
        cron: str | None = None,
        interval: Seconds | None = None,
        repeat: int | None = None,
        schedule_id: str | None = None,
        timezone: str = "UTC",
        queue: str = "default",
        job_timeout: Seconds | None = None,
        retry: Retry | int | None = None,
        result_ttl: Seconds | None = None,
        meta: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> Schedule:
        """Run ``func(*args, **kwargs)`` on a ``cron`` expression or every ``interval``.

        Each run is a job of its own (id ``<schedule_id>-<due time>``). ``repeat`` stops
        after that many runs. Calling it again with the same ``schedule_id`` replaces the
        definition (keeping its run count): declare schedules at start-up freely.
        """
        schedule_id = (
            check_schedule_id(schedule_id) if schedule_id is not None else uuid.uuid4().hex
        )
        trigger = make_trigger(cron=cron, interval=interval, timezone=timezone)
        record = self._new_record(
            func, args, kwargs, queue, schedule_id, job_timeout, retry, result_ttl, meta
        )
        return await self._scheduling.create(
            record, trigger, repeat=repeat, one_off=False, catch_up=False
        )

    async def fetch_schedule(self, schedule_id: str) -> Schedule:
        """The current definition of a schedule or delayed job; raises ScheduleNotFound."""
        return await self._scheduling.get(check_schedule_id(schedule_id))

    async def list_schedules(
        self, status: ScheduleStatus | str | None = None, queue: str | None = None
    ) -> list[Schedule]:
        """Schedules and delayed jobs, soonest first, optionally by status and queue."""
        return await self._scheduling.list(status, queue)

    async def cancel_schedule(self, schedule_id: str) -> Schedule:
        """Stop a schedule for good; a delayed job not yet run becomes ``canceled``."""
        return await self._scheduling.cancel(check_schedule_id(schedule_id))

    async def pause_schedule(self, schedule_id: str) -> Schedule:
        """No runs until :meth:`resume_schedule`."""
        return await self._scheduling.pause(check_schedule_id(schedule_id))

    async def resume_schedule(self, schedule_id: str) -> Schedule:
        """Run again; a repeating schedule restarts from now (missed runs are not replayed)."""
        return await self._scheduling.resume(check_schedule_id(schedule_id))

    async def reschedule(
        self,
        schedule_id: str,
        *,
        cron: str | None = None,
        interval: Seconds | None = None,
        at: datetime | None = None,
        timezone: str | None = None,
    ) -> Schedule:
        """Give a schedule a new ``cron``, ``interval`` or ``at``; effective at once."""
        current = await self.fetch_schedule(schedule_id)
        trigger = make_trigger(
            cron=cron, interval=interval, at=at, timezone=timezone or current.timezone
        )
        if trigger.at is not None and trigger.at < utcnow():
            raise ConfigurationError(f"{trigger.at.isoformat()} is in the past")
        return await self._scheduling.reschedule(schedule_id, trigger)

    def _new_record(
        self,
        func: Callable[..., Any] | str,
        args: Sequence[Any],
        kwargs: Mapping[str, Any],
        queue: str,
        job_id: str | None,
        job_timeout: Seconds | None,
        retry: Retry | int | None,
        result_ttl: Seconds | None,
        meta: Mapping[str, Any] | None,
    ) -> JobRecord:
        serializer = self.serializer
        func_name, payload = serializer.encode_call(func, args, kwargs)
        return JobRecord(
            id=check_job_id(job_id) if job_id is not None else uuid.uuid4().hex,
            queue=check_queue_name(queue),
            func_name=func_name,
            serializer=serializer.name,
            payload=payload,
            status=JobStatus.QUEUED,
            enqueued_at=utcnow(),
            job_timeout=_seconds("job_timeout", job_timeout),
            retry=_retry(retry),
            result_ttl=_seconds("result_ttl", result_ttl, allow_never=True),
            meta=get_serializer("json").encode_value(dict(meta or {})),
        )


class Queue:
    """One named queue of a Client: ``client.queue("mail").enqueue(send, to)``."""

    def __init__(self, client: Client, name: str) -> None:
        self.client = client
        self.name = check_queue_name(name)

    def __repr__(self) -> str:
        return f"<naq.Queue {self.name}>"

    async def count(self) -> int:
        """Jobs in this queue not yet acknowledged by a worker (waiting or running)."""
        connection = self.client._connection
        return await connection.call(connection.transport.queue_depth, self.name)

    async def enqueue(self, func: Callable[..., Any] | str, /, *args: Any, **kwargs: Any) -> Job:
        """``Client.enqueue`` on this queue; job options are taken from ``kwargs`` as there."""
        return await self.client.enqueue(func, *args, queue=self.name, **kwargs)

    async def enqueue_call(
        self,
        func: Callable[..., Any] | str,
        args: Sequence[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> Job:
        """``Client.enqueue_call`` on this queue."""
        return await self.client.enqueue_call(func, args, kwargs, queue=self.name, **options)
