"""``Client`` and ``Queue``: connect to NATS and enqueue jobs from asyncio or Trio code."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import timedelta
from types import TracebackType
from typing import Any, Self

import attrs

from ._connection import Connection
from ._errors import ConfigurationError, EnqueueError
from ._job import Job
from ._record import JobRecord, JobStatus, encode_record
from ._retry import Retry
from ._serializers import Serializer, get_serializer
from ._settings import ConnectOptions, resolve_connect_options
from ._time import utcnow
from ._transport import OutgoingJob, check_job_id, check_queue_name

__all__ = ["Call", "Client", "Queue"]

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


def _outgoing(record: JobRecord, explicit_id: bool) -> OutgoingJob:
    return OutgoingJob(record.queue, record.id, encode_record(record), dedupe=explicit_id)


@attrs.frozen
class Call:
    """One call for :meth:`Client.enqueue_many`: ``naq.Call(send, ("a@b.c",), job_id="x")``."""

    func: Callable[..., Any] | str
    args: Sequence[Any] = ()
    kwargs: Mapping[str, Any] = attrs.Factory(dict)
    job_id: str | None = None


class Client:
    """A connection to NATS for enqueueing jobs and reading them back.

    ``url`` defaults to env ``NAQ_NATS_URL``, else ``nats://127.0.0.1:4222``; ``serializer``
    is ``"pickle"`` (default), ``"json"``, a Serializer, or env ``NAQ_SERIALIZER``.
    ``connect_options`` (a ConnectOptions: servers, credentials, TLS) defaults to the
    ``NAQ_*`` environment; ``url``, when given, replaces its servers. Use it as an async
    context manager; it creates naq's streams and bucket if they are missing.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        serializer: str | Serializer | None = None,
        connect_options: ConnectOptions | None = None,
    ):
        self._connection = Connection(
            resolve_connect_options(url, connect_options), get_serializer(serializer)
        )

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
        await self._connection.call(transport.enqueue, _outgoing(record, job_id is not None))
        return Job(self._connection, record.id, record)

    async def enqueue_many(
        self,
        calls: Iterable[Call],
        *,
        queue: str = "default",
        job_timeout: Seconds | None = None,
        retry: Retry | int | None = None,
        result_ttl: Seconds | None = None,
        meta: Mapping[str, Any] | None = None,
    ) -> list[Job]:
        """Enqueue many calls in one pipelined batch, with the same options for all.

        Every call is encoded before anything is sent, so a bad argument anywhere means
        nothing is published. Raises EnqueueError naming the jobs the server did not confirm.
        """
        calls = list(calls)
        records = [
            self._new_record(
                c.func, c.args, c.kwargs, queue, c.job_id, job_timeout, retry, result_ttl, meta
            )
            for c in calls
        ]
        transport = self._connection.transport
        failed = await self._connection.call(
            transport.enqueue_many,
            [_outgoing(r, c.job_id is not None) for r, c in zip(records, calls, strict=True)],
        )
        if failed:
            raise EnqueueError(failed, len(records))
        return [Job(self._connection, r.id, r) for r in records]

    async def fetch_job(self, job_id: str) -> Job:
        """A handle on an existing job with its current record; raises JobNotFound."""
        job = Job(self._connection, check_job_id(job_id))
        await job.refresh()
        return job

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
            meta=get_serializer("json").encode_value(dict(meta)) if meta else {},
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

    async def enqueue_many(self, calls: Iterable[Call], **options: Any) -> list[Job]:
        """``Client.enqueue_many`` on this queue."""
        return await self.client.enqueue_many(calls, queue=self.name, **options)
