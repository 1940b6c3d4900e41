"""The one place that talks to nats-py. Everything here runs on an asyncio loop.

Methods are coarse on purpose: each is one crossing from a Trio caller (see ``_bridge``),
so a batch of messages is fetched, kept alive or settled by a single call.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Sequence
from typing import Any

import attrs
import nats
import nats.errors
import nats.js.errors
from loguru import logger
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.js import api

from .._errors import NaqConnectionError
from .._settings import DEFAULT_TIMEOUT
from ._link import Link, LinkEvent
from ._names import (
    DEAD_STREAM,
    JOBS_BUCKET,
    JOBS_STREAM,
    consumer_name,
    dead_subject,
    job_subject,
    jobs_stream_subjects,
    queue_filters,
    queued_job_subject,
    record_subject,
)

__all__ = ["Delivery", "NatsTransport", "Settlement"]

_RECHECK_AFTER = 0.5
"""Seconds into a record wait at which the record is read once more (see ``wait_record``)."""
_STREAM_EXISTS = 10058  # JetStream: stream name already in use with a different configuration


@attrs.frozen(eq=False)
class Delivery:
    """One fetched job message. ``handle`` is opaque outside this module."""

    handle: Msg
    data: bytes
    num_delivered: int
    job_id: str


@attrs.frozen
class Settlement:
    """What to do with a job after it ran: store its record, then ack or nak its message.

    The record is stored first and the message is acked only once that store is confirmed,
    so an outcome is never lost (at-least-once). ``delivery=None`` is a record write alone
    (the "started" update). ``dead_reason`` also copies the message to the dead-letter stream.
    """

    job_id: str
    record: bytes | None
    delivery: Delivery | None = None
    record_ttl: float | None = None
    nak_delay: float | None = None
    dead_reason: str | None = None
    queue: str = ""


def _consumer_config(queue: str, ack_wait: float) -> api.ConsumerConfig:
    return api.ConsumerConfig(
        durable_name=consumer_name(queue),
        filter_subjects=queue_filters(queue),
        ack_policy=api.AckPolicy.EXPLICIT,
        deliver_policy=api.DeliverPolicy.ALL,
        ack_wait=ack_wait,
        max_deliver=-1,  # naq dead-letters poison messages itself (see Worker.max_deliveries)
        max_ack_pending=-1,
        max_waiting=4096,
    )


class NatsTransport:
    """naq's view of NATS: job streams, records, consumers. Create and use on one asyncio loop.

    Client calls (enqueue, reads, waits) are bounded by ``timeout`` and ride out a server
    restart through ``Link``; the worker's own calls are not changed by it.
    """

    def __init__(self, url: str, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.url = url
        self.timeout = timeout
        self._link = Link(url, timeout)
        self._nc: NatsClient | None = None
        self._js: Any = None
        self._kv: Any = None
        self._subs: dict[str, Any] = {}
        self._closing = False

    # -- connection -------------------------------------------------------------------------

    async def connect(self) -> None:
        """Connect and make sure naq's streams and bucket exist (idempotent)."""
        try:
            self._nc = await nats.connect(
                self.url,
                name="naq",
                max_reconnect_attempts=1,  # a server that is not there fails fast at start
                connect_timeout=5,
                allow_reconnect=True,
                error_cb=self._on_error,
                disconnected_cb=self._on_disconnected,
                reconnected_cb=self._on_reconnected,
            )
        except (OSError, nats.errors.Error, TimeoutError) as exc:
            raise NaqConnectionError(f"cannot connect to NATS at {self.url}: {exc!r}") from exc
        # Once connected, never give up: a restarting server must not strand a worker.
        # nats-py reads this option at each reconnect, and has no other way to set it.
        self._nc.options["max_reconnect_attempts"] = -1
        self._link.connected()
        self._js = self._nc.jetstream(timeout=self.timeout)
        try:
            await self._ensure_stream(
                api.StreamConfig(
                    name=JOBS_STREAM,
                    subjects=jobs_stream_subjects(),
                    allow_direct=True,
                    retention=api.RetentionPolicy.WORK_QUEUE,
                    storage=api.StorageType.FILE,
                    duplicate_window=120.0,
                )
            )
            await self._ensure_stream(
                api.StreamConfig(
                    name=DEAD_STREAM,
                    subjects=[dead_subject("*")],
                    retention=api.RetentionPolicy.LIMITS,
                    storage=api.StorageType.FILE,
                )
            )
            self._kv = await self._ensure_bucket()
        except (
            nats.js.errors.ServiceUnavailableError,
            nats.errors.NoRespondersError,
            nats.js.errors.NoStreamResponseError,
        ) as exc:
            await self.close()
            raise NaqConnectionError(
                f"JetStream is not enabled on {self.url}; start nats-server with -js"
            ) from exc

    async def close(self) -> int:
        """Let client calls in progress finish (up to the timeout), flush, close.

        Returns how many calls were still unfinished, so the caller can report them.
        """
        self._closing = True
        if self._nc is None or self._nc.is_closed:
            return 0
        unfinished = await self._link.finish_calls()
        await self._nc.close()
        self._link.closed()
        return unfinished

    def abandon(self) -> None:
        """Forget a connection inherited through ``fork()`` without touching it.

        Its socket is the parent's: closing or flushing it from the child would corrupt the
        parent's session. The next :meth:`connect` makes this process's own.
        """
        self._nc = self._js = self._kv = None
        self._subs = {}
        self._closing = False
        self._link = Link(self.url, self.timeout)

    async def _ensure_stream(self, config: api.StreamConfig) -> None:
        """Create the stream, or bring an existing one's settings up to this version's."""
        try:
            await self._js.add_stream(config)
        except nats.js.errors.BadRequestError as exc:
            if exc.err_code != _STREAM_EXISTS:
                raise
            await self._js.update_stream(config)

    async def _ensure_bucket(self) -> Any:
        try:
            return await self._js.create_key_value(
                api.KeyValueConfig(bucket=JOBS_BUCKET, history=1, storage=api.StorageType.FILE)
            )
        except nats.js.errors.BadRequestError as exc:
            if exc.err_code != _STREAM_EXISTS:
                raise
            return await self._js.key_value(JOBS_BUCKET)

    async def _on_error(self, exc: Exception) -> None:
        logger.warning("NATS error on {}: {!r}", self.url, exc)

    async def _on_disconnected(self) -> None:
        if self._closing:
            return
        self._link.disconnected()
        logger.warning("disconnected from NATS at {}; reconnecting", self.url)

    async def _on_reconnected(self) -> None:
        self._link.reconnected()
        logger.info("reconnected to NATS at {}", self.url)

    # -- producing --------------------------------------------------------------------------

    async def enqueue(self, queue: str, job_id: str, record: bytes) -> None:
        """Publish the job message (its body is the queued record); confirmed on return.

        One publish per job: a queued job is found by id on its own subject, and only a
        worker writes the job's KV record, once the job leaves the queue. A publish the
        server did not confirm is sent again after a reconnect: its id deduplicates it.
        """
        publish = functools.partial(
            self._js.publish, job_subject(queue, job_id), record, headers={"Nats-Msg-Id": job_id}
        )
        await self._link.call(f"enqueue of job {job_id}", publish)

    async def enqueue_many(self, jobs: Sequence[tuple[str, str, bytes]]) -> list[str]:
        """Publish many ``(queue, job id, record)`` pipelined; the ids not confirmed."""
        publish = functools.partial(self._publish_many, jobs)
        return await self._link.call(f"enqueue of {len(jobs)} jobs", publish)

    async def _publish_many(self, jobs: Sequence[tuple[str, str, bytes]]) -> list[str]:
        js = self._js
        futures = [
            await js.publish_async(
                job_subject(queue, job_id), record, headers={"Nats-Msg-Id": job_id}
            )
            for queue, job_id, record in jobs
        ]
        try:
            outcomes = await asyncio.gather(*futures, return_exceptions=True)
        finally:
            for future in futures:
                future.cancel()  # abandoned by a drop: give nats-py its pending slots back
        return [
            job_id
            for (_, job_id, _), outcome in zip(jobs, outcomes, strict=True)
            if isinstance(outcome, BaseException)
        ]

    async def get_record(self, job_id: str) -> bytes | None:
        """The current record of a job, or None when there is none.

        The KV record (written by workers) is newest; a job no worker took yet is read from
        its queued message. The KV is read again when the message is gone, because a worker
        may have taken, finished and acked the job between the two reads.
        """
        read = functools.partial(self._read_record, job_id)
        return await self._link.call(f"reading job {job_id}", read)

    async def _read_record(self, job_id: str) -> bytes | None:
        record = await self._stored_record(job_id)
        if record is not None:
            return record
        queued = await self._queued_record(job_id)
        if queued is not None:
            return queued
        return await self._stored_record(job_id)

    async def _stored_record(self, job_id: str) -> bytes | None:
        try:
            entry = await self._kv.get(job_id)
        except nats.js.errors.NotFoundError:  # never written, deleted or purged
            return None
        return entry.value

    async def _queued_record(self, job_id: str) -> bytes | None:
        try:
            msg = await self._js.get_last_msg(JOBS_STREAM, queued_job_subject(job_id), direct=True)
        except nats.js.errors.NotFoundError:
            return None
        return msg.data

    async def wait_record(
        self, job_id: str, done: Callable[[bytes], bool], timeout: float | None
    ) -> bytes | None:
        """Wait until the record satisfies ``done``; None if the job has no record.

        Subscribes to the record's subject before reading it, so an update landing between
        the read and the wait is still seen: the caller is woken by the write, never polls.
        Two reads more close the gaps that a subscription leaves: one ``_RECHECK_AFTER``
        into the wait, for a write the server had fanned out just before the subscription
        but not yet stored when it was read (it happens under load); and one after each
        reconnect, for writes made while the connection was down. The first read always
        happens: ``timeout=0`` answers "is it done now?". Raises TimeoutError after
        ``timeout`` seconds, NaqConnectionError if the connection is down by then.
        """
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        what = f"waiting for job {job_id}"
        with self._link.watch() as events:
            recheck = loop.call_later(_RECHECK_AFTER, events.put_nowait, LinkEvent.READ_AGAIN)
            try:
                sub = await self._nc.subscribe(record_subject(job_id), cb=events.put)
            except nats.errors.ConnectionClosedError as exc:
                raise NaqConnectionError(f"{what}: the connection to {self.url} is closed") from exc
            try:
                current = await self.get_record(job_id)
                while current is not None and not done(current):
                    event = await self._link.next_event(events, what, deadline)
                    if event is LinkEvent.READ_AGAIN:
                        current = await self.get_record(job_id)
                    elif event.data:  # a delete or purge marker has no data
                        current = event.data
                return current
            finally:
                recheck.cancel()
                if not self._nc.is_closed:
                    await sub.unsubscribe()

    async def queue_depth(self, queue: str) -> int:
        """Jobs in a queue not yet acknowledged: waiting, running or waiting to retry."""
        count = functools.partial(self._queue_depth, queue)
        return await self._link.call(f"counting queue {queue}", count)

    async def _queue_depth(self, queue: str) -> int:
        try:
            info = await self._js.consumer_info(JOBS_STREAM, consumer_name(queue))
        except nats.js.errors.NotFoundError:
            # No worker ever consumed this queue: create its consumer to count it.
            info = await self._js.add_consumer(JOBS_STREAM, _consumer_config(queue, 30.0))
        return info.num_pending + info.num_ack_pending

    async def dead_letter_count(self, queue: str) -> int:
        """Dead letters kept for a queue."""
        count = functools.partial(self._dead_letter_count, queue)
        return await self._link.call(f"counting dead letters of {queue}", count)

    async def _dead_letter_count(self, queue: str) -> int:
        subject = dead_subject(queue)
        info = await self._js.stream_info(DEAD_STREAM, subjects_filter=subject)
        return (info.state.subjects or {}).get(subject, 0)

    # -- consuming --------------------------------------------------------------------------

    async def ensure_consumer(self, queue: str, ack_wait: float) -> None:
        """Create or update the queue's durable pull consumer and bind to it."""
        await self._js.add_consumer(JOBS_STREAM, _consumer_config(queue, ack_wait))
        self._subs[queue] = await self._js.pull_subscribe_bind(consumer_name(queue), JOBS_STREAM)

    async def fetch(self, queue: str, batch: int, timeout: float) -> list[Delivery]:
        """Up to ``batch`` messages from the queue, waiting at most ``timeout`` for the first."""
        try:
            msgs = await self._subs[queue].fetch(batch, timeout=timeout)
        except nats.errors.TimeoutError:
            return []
        return [
            Delivery(
                msg,
                msg.data,
                msg.metadata.num_delivered,
                (msg.headers or {}).get("Nats-Msg-Id", ""),
            )
            for msg in msgs
        ]

    async def keep_alive(self, deliveries: Sequence[Delivery]) -> None:
        """Tell the server these jobs are still running, so their ack wait restarts."""
        for delivery in deliveries:
            await delivery.handle.in_progress()

    async def hand_back(self, deliveries: Sequence[Delivery]) -> None:
        """Return messages for immediate redelivery to another worker."""
        for delivery in deliveries:
            await delivery.handle.nak()
        await self._nc.flush()

    async def settle(self, settlements: Sequence[Settlement]) -> list[BaseException | None]:
        """Store dead letters, then records, then ack or nak messages; one error slot each.

        Dead letters are confirmed before any record of the batch is written, so whoever
        sees a job's final record also finds its dead letter. An item whose dead letter or
        record could not be stored is not acknowledged: the server delivers it again.
        """
        js = self._js
        errors: list[BaseException | None] = [None] * len(settlements)
        dead = [
            (i, item)
            for i, item in enumerate(settlements)
            if item.dead_reason is not None and item.delivery is not None
        ]
        if dead:
            futures = [
                await js.publish_async(
                    dead_subject(item.queue),
                    item.delivery.data,
                    headers={"Naq-Reason": item.dead_reason, "Naq-Job-Id": item.job_id},
                )
                for _, item in dead
            ]
            outcomes = await asyncio.gather(*futures, return_exceptions=True)
            for (i, _), outcome in zip(dead, outcomes, strict=True):
                if isinstance(outcome, BaseException):
                    errors[i] = outcome
        stored: list[asyncio.Future[Any] | None] = []
        for item, error in zip(settlements, errors, strict=True):
            if item.record is None or error is not None:
                stored.append(None)
                continue
            stored.append(
                await js.publish_async(
                    record_subject(item.job_id), item.record, msg_ttl=item.record_ttl
                )
            )
        for i, (item, future) in enumerate(zip(settlements, stored, strict=True)):
            if future is not None:
                try:
                    await future
                except Exception as exc:  # noqa: BLE001 - reported to the caller per item
                    errors[i] = exc
            if errors[i] is None and item.delivery is not None:
                if item.nak_delay is None:
                    await item.delivery.handle.ack()
                else:
                    await item.delivery.handle.nak(delay=item.nak_delay or None)
        return errors
