"""``Client`` and ``Queue``: connect to NATS and enqueue jobs from asyncio or Trio code."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any, Generic, ParamSpec, Self, TypeAlias, overload

import attrs
from loguru import logger
from typing_extensions import TypeVar

from . import _tracing
from ._caller_thread import runs_in_caller
from ._connection import Connection
from ._dead_letters import (
    DeadLetter,
    delete_dead_letter,
    list_dead_letters,
    requeue_dead_letter,
)
from ._errors import ConfigurationError, EnqueueError, NaqConnectionError, ScheduleNotFound
from ._events import EventStream
from ._ids import new_job_id
from ._job import Job, R_co
from ._lifecycle import cancel, defer
from ._limits import check_limits
from ._record import JobRecord, JobStatus, StatusChange, decode_record, encode_record
from ._retry import Retry
from ._schedules import Schedule, ScheduleStatus, Scheduling, make_trigger
from ._serializers import Serializer, get_serializer
from ._settings import DEFAULT_TIMEOUT, ConnectOptions, resolve_connect_options
from ._time import as_utc, utcnow
from ._transport import (
    OutgoingJob,
    check_job_id,
    check_priority,
    check_queue_name,
    check_schedule_id,
    names,
)
from ._twin import Twin, unwrap
from ._unique import Unique, admit, default_unique_key, give_back, unique_option

__all__ = ["Call", "Client", "ClientRef", "Dependencies", "JobFunction", "Queue", "call"]

R = TypeVar("R", default=Any)
"""The result type of the job being enqueued (``Any`` when ``func`` is a ``"pkg.mod:func"``)."""
P = ParamSpec("P")

Seconds: TypeAlias = float | timedelta
JobFunction: TypeAlias = Callable[..., Awaitable[R]] | Callable[..., R]
"""A job's function, async or not: its jobs are ``Job[R]``."""
JobRef: TypeAlias = Job[Any] | Twin[Job[Any]] | str
"""A job (naq's, or a twin such as naq_sync's) or a job id."""
Dependencies: TypeAlias = JobRef | Sequence[JobRef] | None


@overload
def _seconds(name: str, value: Seconds, *, allow_never: bool = False) -> float: ...
@overload
def _seconds(name: str, value: Seconds | None, *, allow_never: bool = False) -> float | None: ...


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


def _outgoing(record: JobRecord, explicit_id: bool) -> OutgoingJob:
    lane = names.lane(record.queue, record.priority)
    return OutgoingJob(lane, record.id, encode_record(record), dedupe=explicit_id)


@attrs.frozen
class Call(Generic[R_co]):
    """One call: ``naq.Call(send, ("a@b.c",), job_id="x")``, for :meth:`Client.enqueue_many`
    and :meth:`Client.enqueue_call`. :func:`call` makes one whose arguments are type-checked.
    """

    func: JobFunction[R_co] | str
    args: Sequence[Any] = ()
    kwargs: Mapping[str, Any] = attrs.Factory(dict)
    job_id: str | None = None


def call(
    func: Callable[P, Awaitable[R]] | Callable[P, R], /, *args: P.args, **kwargs: P.kwargs
) -> Call[R]:
    """``func(*args, **kwargs)`` as a :class:`Call`, with the arguments checked against ``func``.

    The typed way to enqueue: ``await client.enqueue_call(naq.call(add, 1, 2), queue="math")``
    is a ``Job[int]`` for ``def add(a: int, b: int) -> int``, and a type checker reports
    ``naq.call(add, 1, "2")``. Every keyword goes to ``func``: none is taken as a job option.
    """
    return Call(func, args, kwargs)


class Client:
    """A connection to NATS for enqueueing jobs and reading them back.

    ``url`` defaults to env ``NAQ_NATS_URL``, else ``nats://127.0.0.1:4222``; ``serializer``
    is ``"pickle"`` (default), ``"json"``, a Serializer, or env ``NAQ_SERIALIZER``. Use it
    as an async context manager; it creates naq's streams and bucket if they are missing.
    ``connect_options`` (a ConnectOptions: servers, credentials, TLS) defaults to the
    ``NAQ_*`` environment; ``url``, when given, replaces its servers.
    ``scheduler_engine`` picks who fires schedules: ``"auto"`` (default, env
    ``NAQ_SCHEDULER_ENGINE``: the server when it has message schedules), ``"server"`` or
    ``"naq"`` (a ``naq scheduler`` process). ``timeout`` bounds each call's wait for NATS,
    a reconnect included (NaqConnectionError). ``signing_key`` (else env
    ``NAQ_SIGNING_KEY``) signs pickled jobs and checks pickled results; ``replicas`` (else
    env ``NAQ_REPLICAS``) is used when it creates naq's streams and buckets (3 on a cluster).
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        serializer: str | Serializer | None = None,
        scheduler_engine: str | None = None,
        connect_options: ConnectOptions | None = None,
        timeout: Seconds = DEFAULT_TIMEOUT,
        signing_key: str | bytes | None = None,
        replicas: int | None = None,
    ):
        self._connection = Connection(
            resolve_connect_options(url, connect_options),
            get_serializer(serializer, signing_key=signing_key),
            _seconds("timeout", timeout),
            replicas,
        )
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
        unfinished = await self._connection.close()
        if unfinished and exc_type is None:
            raise NaqConnectionError(
                f"closed the connection to {self.url} with {unfinished} call(s) unfinished; "
                "jobs they were enqueueing may not be stored (enqueue again with the same job_id)"
            )

    def queue(self, name: str = "default") -> Queue:
        """A handle on one queue, with the same enqueue methods."""
        return Queue(self, name)

    @runs_in_caller
    async def enqueue(
        self,
        func: JobFunction[R] | str,
        /,
        *args: Any,
        queue: str = "default",
        job_id: str | None = None,
        job_timeout: Seconds | None = None,
        retry: Retry | int | None = None,
        result_ttl: Seconds | None = None,
        failure_ttl: Seconds | None = None,
        ttl: Seconds | None = None,
        depends_on: Dependencies = None,
        allow_dependency_failures: bool = False,
        meta: Mapping[str, Any] | None = None,
        unique: Unique | str | None = None,
        unique_key: str | None = None,
        max_running: int | None = None,
        rate_limit: str | None = None,
        limit_key: str | None = None,
        priority: int = 0,
        **kwargs: Any,
    ) -> Job[R]:
        """Enqueue ``func(*args, **kwargs)``; ``func`` is a callable or ``"pkg.mod:func"``.

        Returns once the job is stored on the server. ``job_timeout`` bounds one run;
        ``retry`` is a naq.Retry (or a number of retries); ``result_ttl`` keeps a finished
        job's record (default 500 s, -1 forever), ``failure_ttl`` a failed or canceled one
        (default forever); ``ttl`` cancels the job if no worker starts it in time;
        ``depends_on`` (jobs, naq's or naq_sync's, or ids) defers it until they all finished;
        ``priority`` (-2 to 2, default 0) starts it before lower ones of its queue; ``meta`` is
        JSON. An explicit ``job_id`` makes the enqueue idempotent: a second one
        returns the first. ``Job[R]``: ``result()`` is typed as ``func``'s return value.
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
            failure_ttl=failure_ttl,
            ttl=ttl,
            depends_on=depends_on,
            allow_dependency_failures=allow_dependency_failures,
            meta=meta,
            unique=unique,
            unique_key=unique_key,
            max_running=max_running,
            rate_limit=rate_limit,
            limit_key=limit_key,
            priority=priority,
        )

    @runs_in_caller
    async def enqueue_call(
        self,
        func: JobFunction[R] | Call[R] | str,
        args: Sequence[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        *,
        queue: str = "default",
        job_id: str | None = None,
        job_timeout: Seconds | None = None,
        retry: Retry | int | None = None,
        result_ttl: Seconds | None = None,
        failure_ttl: Seconds | None = None,
        ttl: Seconds | None = None,
        depends_on: Dependencies = None,
        allow_dependency_failures: bool = False,
        meta: Mapping[str, Any] | None = None,
        unique: Unique | str | None = None,
        unique_key: str | None = None,
        max_running: int | None = None,
        rate_limit: str | None = None,
        limit_key: str | None = None,
        priority: int = 0,
    ) -> Job[R]:
        """Like :meth:`enqueue`, with args and kwargs passed explicitly (no name clashes).

        ``func`` may also be a whole call, its arguments type-checked:
        ``enqueue_call(naq.call(add, 1, 2), queue="math")`` (a Call's ``job_id``, if set,
        is used when ``job_id`` is not given).
        """
        if isinstance(func, Call):
            if args or kwargs:
                raise ConfigurationError("pass the arguments in the naq.Call, not beside it")
            func, args, kwargs, job_id = func.func, func.args, func.kwargs, job_id or func.job_id
        options = _Options.build(
            queue=queue,
            job_timeout=job_timeout,
            retry=retry,
            result_ttl=result_ttl,
            failure_ttl=failure_ttl,
            ttl=ttl,
            depends_on=depends_on,
            allow_dependency_failures=allow_dependency_failures,
            meta=meta,
            unique=unique,
            unique_key=unique_key,
            max_running=max_running,
            rate_limit=rate_limit,
            limit_key=limit_key,
            priority=priority,
        )
        record = self._new_record(func, args, kwargs or {}, job_id, options)
        connection = self._connection
        if job_id is not None:
            existing = await connection.call(connection.transport.get_record, record.id)
            if existing is not None:  # idempotent: this job was enqueued before
                return Job(connection, record.id, decode_record(existing))
        if options.unique is None:
            return await self._store_new(record, job_id is not None)
        return await self._store_unique(record, job_id is not None, options.unique)

    async def _store_unique(self, record: JobRecord, explicit_id: bool, unique: Unique) -> Job[R]:
        """Store a unique job once it holds its lock; else hand back the job that holds it."""
        connection = self._connection
        if unique.mode == "debounce" and record.depends_on:
            raise ConfigurationError("a debounced job cannot have depends_on")
        admitted = await admit(connection, record, unique)
        if isinstance(admitted, str):
            return Job(connection, admitted)
        try:
            if unique.mode == "debounce":
                assert unique.period is not None
                job: Job[R] = await self._store_delayed(record, unique.period)
            else:
                job = await self._store_new(record, explicit_id)
        except Exception:
            await give_back(connection, admitted)
            raise
        if unique.mode == "debounce" and admitted.replaced is not None:
            await self._cancel_debounced(admitted.replaced)
        return job

    async def _store_delayed(self, record: JobRecord, delay: float) -> Job[R]:
        trigger = make_trigger(at=utcnow() + timedelta(seconds=delay))
        await self._scheduling.create(record, trigger, repeat=None, one_off=True, catch_up=True)
        return Job(self._connection, record.id, attrs.evolve(record, status=JobStatus.SCHEDULED))

    async def _cancel_debounced(self, job_id: str) -> None:
        """Cancel the job a debounced enqueue replaced, if it still waits for its time."""
        try:
            await self._scheduling.cancel(job_id)
        except ScheduleNotFound:
            logger.warning(
                "debounce: the job it replaced, {}, was being enqueued at the same time and "
                "could not be canceled: both run",
                job_id,
            )

    async def _store_new(self, record: JobRecord, explicit_id: bool) -> Job[R]:
        """Publish a new job, or store it deferred when it waits for dependencies."""
        connection = self._connection
        if record.depends_on:
            tracing = _tracing.tracing()
            if tracing is not None:
                record.trace = tracing.deferring(record.queue, record.id, record.func_name)
            if not await defer(connection, record):
                return await self.fetch_job(record.id)
            return Job(connection, record.id, record)
        outgoing = _outgoing(record, explicit_id)
        tracing = _tracing.tracing()
        if tracing is None:
            await connection.call(connection.transport.enqueue, outgoing)
        else:
            with tracing.publishing([(outgoing, record.func_name)]) as publishing:
                await connection.call(connection.transport.enqueue, publishing.jobs[0])
        return Job(connection, record.id, record)

    async def enqueue_many(
        self,
        calls: Iterable[Call[R]],
        *,
        queue: str = "default",
        job_timeout: Seconds | None = None,
        retry: Retry | int | None = None,
        result_ttl: Seconds | None = None,
        failure_ttl: Seconds | None = None,
        ttl: Seconds | None = None,
        meta: Mapping[str, Any] | None = None,
        max_running: int | None = None,
        rate_limit: str | None = None,
        limit_key: str | None = None,
        priority: int = 0,
    ) -> list[Job[R]]:
        """Enqueue many calls in one pipelined batch, with the same options for all.

        Every call is encoded before anything is sent, so a bad argument anywhere means
        nothing is published. Raises EnqueueError naming the jobs the server did not confirm.
        (Dependencies and idempotent ids take a lookup each: use :meth:`enqueue` for them.)
        """
        options = _Options.build(
            queue=queue,
            job_timeout=job_timeout,
            retry=retry,
            result_ttl=result_ttl,
            failure_ttl=failure_ttl,
            ttl=ttl,
            meta=meta,
            max_running=max_running,
            rate_limit=rate_limit,
            limit_key=limit_key,
            priority=priority,
        )
        calls = list(calls)
        records = [self._new_record(c.func, c.args, c.kwargs, c.job_id, options) for c in calls]
        transport = self._connection.transport
        outgoing = [_outgoing(r, c.job_id is not None) for r, c in zip(records, calls, strict=True)]
        tracing = _tracing.tracing()
        if tracing is None:
            failed = await self._connection.call(transport.enqueue_many, outgoing)
        else:
            pairs = [(job, r.func_name) for job, r in zip(outgoing, records, strict=True)]
            with tracing.publishing(pairs) as publishing:
                failed = await self._connection.call(transport.enqueue_many, publishing.jobs)
                publishing.failed(failed)
        if failed:
            raise EnqueueError(failed, len(records))
        return [Job(self._connection, r.id, r) for r in records]

    async def fetch_job(self, job_id: str) -> Job[Any]:
        """A handle on an existing job with its current record; raises JobNotFound."""
        job: Job[Any] = Job(self._connection, check_job_id(job_id))
        await job.refresh()
        return job

    async def drain(self, queue: str = "default", *, concurrency: int = 10) -> int:
        """Run every job queued (or released meanwhile) on ``queue`` here, then return.

        A burst worker in this task, on this backend: handy in tests and scripts. Returns
        how many jobs it handled.
        """
        from ._worker import Worker

        worker = Worker(
            [queue],
            connect_options=self._connection.options,
            serializer=self.serializer,
            concurrency=concurrency,
            poll_interval=0.1,
            burst=True,
        )
        await worker.run()
        return worker.processed

    async def cancel(self, job_id: str) -> bool:
        """Cancel a job: queued or deferred, it never runs; running, it is stopped.

        An async job is canceled in its worker at once; a sync job cannot be interrupted,
        so ``naq.current_job().canceled`` turns true for it to check. Jobs that depend on
        it are canceled too. False if the job had already ended; JobNotFound if unknown.
        """
        return await cancel(self._connection, check_job_id(job_id))

    def events(self, job_id: str | None = None, queue: str | None = None) -> EventStream:
        """Live lifecycle events of one job, one queue or all: ``async with`` / ``async for``."""
        return EventStream(
            self._connection,
            check_job_id(job_id) if job_id is not None else None,
            check_queue_name(queue) if queue is not None else None,
        )

    async def dead_letters(self, queue: str | None = None, limit: int = 1000) -> list[DeadLetter]:
        """Jobs that ended in the dead-letter stream (oldest first), with the reason."""
        return await list_dead_letters(self._connection, queue, limit)

    async def requeue_dead_letter(self, job_id: str) -> Job[Any]:
        """Enqueue a dead-lettered job again (attempts start over) and drop the dead letter."""
        return Job(self._connection, *await requeue_dead_letter(self._connection, job_id))

    async def delete_dead_letter(self, job_id: str) -> bool:
        """Drop a dead letter; False if there was none for that job."""
        return await delete_dead_letter(self._connection, job_id)

    # -- delayed and recurring jobs (naq/_scheduling.py does the work) ----------------------

    async def enqueue_at(
        self,
        when: datetime,
        func: JobFunction[R] | str,
        /,
        *args: Any,
        catch_up: bool = False,
        queue: str = "default",
        job_id: str | None = None,
        job_timeout: Seconds | None = None,
        retry: Retry | int | None = None,
        result_ttl: Seconds | None = None,
        failure_ttl: Seconds | None = None,
        meta: Mapping[str, Any] | None = None,
        max_running: int | None = None,
        rate_limit: str | None = None,
        limit_key: str | None = None,
        priority: int = 0,
        **kwargs: Any,
    ) -> Job[R]:
        """Enqueue ``func(*args, **kwargs)`` at ``when`` (naive: UTC; aware: converted).

        The job is ``scheduled`` until then and can be canceled with
        :meth:`cancel_schedule` (its id). A time in the past raises ConfigurationError
        unless ``catch_up=True``, which runs it at once.
        """
        if not isinstance(when, datetime):
            raise ConfigurationError(f"when must be a datetime, got {when!r}")
        job_id = check_schedule_id(job_id) if job_id is not None else uuid.uuid4().hex
        options = _Options.build(
            queue=queue,
            job_timeout=job_timeout,
            retry=retry,
            result_ttl=result_ttl,
            failure_ttl=failure_ttl,
            meta=meta,
            max_running=max_running,
            rate_limit=rate_limit,
            limit_key=limit_key,
            priority=priority,
        )
        record = self._new_record(func, args, kwargs, job_id, options)
        trigger = make_trigger(at=as_utc(when))
        await self._scheduling.create(record, trigger, repeat=None, one_off=True, catch_up=catch_up)
        return Job(self._connection, record.id, attrs.evolve(record, status=JobStatus.SCHEDULED))

    async def enqueue_in(
        self, delay: Seconds, func: JobFunction[R] | str, /, *args: Any, **options: Any
    ) -> Job[R]:
        """:meth:`enqueue_at` ``delay`` (seconds or a timedelta) from now."""
        seconds = delay.total_seconds() if isinstance(delay, timedelta) else delay
        if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds < 0:
            raise ConfigurationError(f"delay must be seconds >= 0 or a timedelta, got {delay!r}")
        when = utcnow() + timedelta(seconds=seconds)
        return await self.enqueue_at(when, func, *args, catch_up=True, **options)

    async def schedule(
        self,
        func: JobFunction[Any] | str,
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
        failure_ttl: Seconds | None = None,
        meta: Mapping[str, Any] | None = None,
        max_running: int | None = None,
        rate_limit: str | None = None,
        limit_key: str | None = None,
        priority: int = 0,
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
        options = _Options.build(
            queue=queue,
            job_timeout=job_timeout,
            retry=retry,
            result_ttl=result_ttl,
            failure_ttl=failure_ttl,
            meta=meta,
            max_running=max_running,
            rate_limit=rate_limit,
            limit_key=limit_key,
            priority=priority,
        )
        record = self._new_record(func, args, kwargs, schedule_id, options)
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
        func: JobFunction[Any] | str,
        args: Sequence[Any],
        kwargs: Mapping[str, Any],
        job_id: str | None,
        options: _Options,
    ) -> JobRecord:
        serializer = self.serializer
        func_name, payload = serializer.encode_call(func, args, kwargs)
        now = utcnow()
        status = JobStatus.DEFERRED if options.depends_on else JobStatus.QUEUED
        return JobRecord(
            id=check_job_id(job_id) if job_id is not None else new_job_id(),
            queue=options.queue,
            func_name=func_name,
            serializer=serializer.name,
            payload=payload,
            status=status,
            enqueued_at=now,
            job_timeout=options.job_timeout,
            retry=options.retry,
            result_ttl=options.result_ttl,
            failure_ttl=options.failure_ttl,
            ttl=options.ttl,
            depends_on=options.depends_on,
            allow_dependency_failures=options.allow_dependency_failures,
            meta=options.meta,
            history=(StatusChange(status, now),),
            unique=None if options.unique is None else str(options.unique),
            unique_key=None
            if options.unique is None
            else options.unique_key or default_unique_key(func_name, payload),
            max_running=options.max_running,
            rate_limit=options.rate_limit,
            limit_key=options.limit_key or func_name
            if options.max_running is not None or options.rate_limit is not None
            else None,
            priority=options.priority,
        )


ClientRef: TypeAlias = Client | Twin[Client]
"""A naq.Client, or a twin of one (a naq_sync.Client)."""


@attrs.frozen
class _Options:
    """The job options, validated: what every enqueue method puts in its jobs' records.

    :meth:`build` is the one definition of the options a caller gives (name, type, default,
    validation). Each public method takes the ones that apply to it as keyword parameters of
    the same name, type and default, spelled out rather than ``**options: Unpack[...]``:
    ``enqueue``, ``enqueue_at`` and ``schedule`` also take the job's own ``**kwargs``, so
    they could not use ``Unpack``, and spelled-out parameters show in every editor, in
    ``help()`` and in naq_sync's generated twins. tests/test_typing.py holds each public
    signature equal to :meth:`build`'s.
    """

    queue: str
    job_timeout: float | None
    retry: Retry | None
    result_ttl: float | None
    failure_ttl: float | None
    ttl: float | None
    depends_on: tuple[str, ...]
    allow_dependency_failures: bool
    meta: dict[str, Any]
    unique: Unique | None
    unique_key: str | None
    max_running: int | None
    rate_limit: str | None
    limit_key: str | None
    priority: int

    @classmethod
    def build(
        cls,
        *,
        queue: str = "default",
        job_timeout: Seconds | None = None,
        retry: Retry | int | None = None,
        result_ttl: Seconds | None = None,
        failure_ttl: Seconds | None = None,
        ttl: Seconds | None = None,
        depends_on: Dependencies = None,
        allow_dependency_failures: bool = False,
        meta: Mapping[str, Any] | None = None,
        unique: Unique | str | None = None,
        unique_key: str | None = None,
        max_running: int | None = None,
        rate_limit: str | None = None,
        limit_key: str | None = None,
        priority: int = 0,
    ) -> _Options:
        """Check and convert the options a caller gave; the ones not given are defaults."""
        return cls(
            queue=check_queue_name(queue),
            job_timeout=_seconds("job_timeout", job_timeout),
            retry=_retry(retry),
            result_ttl=_seconds("result_ttl", result_ttl, allow_never=True),
            failure_ttl=_seconds("failure_ttl", failure_ttl, allow_never=True),
            ttl=_seconds("ttl", ttl),
            depends_on=_dependency_ids(depends_on),
            allow_dependency_failures=bool(allow_dependency_failures),
            meta=get_serializer("json").encode_value(dict(meta)) if meta else {},
            unique=unique_option(unique),
            unique_key=_unique_key(unique, unique_key),
            max_running=check_limits(max_running, rate_limit, limit_key),
            rate_limit=rate_limit,
            limit_key=limit_key,
            priority=check_priority(priority),
        )


def _unique_key(unique: object, key: str | None) -> str | None:
    if key is None:
        return None
    if unique is None:
        raise ConfigurationError("unique_key goes with unique=")
    if not isinstance(key, str) or not key:
        raise ConfigurationError(f"unique_key must be a non-empty string, got {key!r}")
    return key


def _dependency_ids(depends_on: Dependencies) -> tuple[str, ...]:
    if depends_on is None:
        return ()
    if isinstance(depends_on, str) or not isinstance(depends_on, Iterable):
        return (_job_id(depends_on),)  # one job or id
    return tuple(_job_id(item) for item in depends_on)


def _job_id(ref: object) -> str:
    """The id of a job (naq's or a twin's, such as a naq_sync.Job) or of a job id."""
    job = unwrap(ref)
    if isinstance(job, Job):
        return job.id
    if isinstance(job, str):
        return check_job_id(job)
    raise ConfigurationError(f"depends_on takes jobs or job ids, got {ref!r}")


class Queue:
    """One named queue of a Client: ``client.queue("mail").enqueue(send, to)``."""

    client: Client
    name: str

    def __init__(self, client: ClientRef, name: str) -> None:
        self.client = unwrap(client)
        self.name = check_queue_name(name)

    def __repr__(self) -> str:
        return f"<naq.Queue {self.name}>"

    async def count(self) -> int:
        """Jobs in this queue not yet acknowledged by a worker (waiting or running)."""
        connection = self.client._connection
        return await connection.call(connection.transport.queue_depth, self.name)

    @runs_in_caller
    async def enqueue(self, func: JobFunction[R] | str, /, *args: Any, **kwargs: Any) -> Job[R]:
        """``Client.enqueue`` on this queue; job options are taken from ``kwargs`` as there."""
        return await self.client.enqueue(func, *args, queue=self.name, **kwargs)

    @runs_in_caller
    async def enqueue_call(
        self,
        func: JobFunction[R] | Call[R] | str,
        args: Sequence[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> Job[R]:
        """``Client.enqueue_call`` on this queue."""
        return await self.client.enqueue_call(func, args, kwargs, queue=self.name, **options)

    async def enqueue_many(self, calls: Iterable[Call[R]], **options: Any) -> list[Job[R]]:
        """``Client.enqueue_many`` on this queue."""
        return await self.client.enqueue_many(calls, queue=self.name, **options)
