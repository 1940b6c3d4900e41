"""``NatsTransport``: the one object core code talks to. Everything here runs on an asyncio loop.

Methods are coarse on purpose: each is one crossing from a Trio caller (see ``_bridge``),
so a batch of messages is fetched, kept alive or settled by a single call.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import attrs
import nats
import nats.errors
import nats.js.errors
from loguru import logger
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.js import api

from .._errors import ConfigurationError, NaqConnectionError, NaqError, SerializationError
from .._settings import DEFAULT_TIMEOUT, ConnectOptions
from ._admin import NatsAdmin
from ._connect import nats_connect_kwargs
from ._deliveries import (
    Delivery,
    OutgoingJob,
    Settlement,
    as_delivery,
    message_headers,
    record_too_large,
)
from ._direct_get import dependency_edges
from ._jetstream import ACK_TIMEOUT, JetStream, StoredMessage
from ._link import FIRST_RECHECK, MAX_RECHECK, Link, LinkEvent
from ._locks import Locks
from ._names import (
    DEAD_STREAM,
    DEPS_BUCKET_STREAM,
    JOBS_BUCKET_STREAM,
    JOBS_STREAM,
    any_record_subject,
    cancel_subject,
    consumer_name,
    dead_subject,
    dependency_subject,
    job_subject,
    lane_filters,
    purged_subject,
    queue_filters,
    queued_job_subject,
    record_subject,
    stored_record_subject,
)
from ._publisher import OutgoingMessage, PublishError
from ._pull import PullConsumer
from ._schedule_store import ScheduleStore
from ._settle import settle_and_find_dependents, settle_with
from ._streams import dead_stream, deps_bucket, jobs_bucket, jobs_stream
from ._unreachable import cannot_connect

__all__ = ["DeadLetter", "NatsTransport", "RawEvent"]


@attrs.frozen
class RawEvent:
    """A record write or a queued job message seen by an event subscription."""

    subject: str
    event: str | None
    data: bytes


@attrs.frozen
class DeadLetter:
    """A message kept in the dead-letter stream, with the reason it ended there."""

    sequence: int
    queue: str
    job_id: str
    reason: str
    data: bytes
    time: datetime | None
    attempts: int | None = None
    """The runs the job had (``Naq-Attempts``); None for letters stored before naq wrote it."""


def _dead_letter(msg: Any) -> DeadLetter:
    headers = msg.headers or {}
    _, _, queue, job_id = msg.subject.split(".")
    attempts = headers.get("Naq-Attempts", "")
    return DeadLetter(
        sequence=msg.seq,
        queue=queue,
        job_id=job_id,
        reason=headers.get("Naq-Reason", ""),
        data=msg.data,
        time=msg.time,
        attempts=int(attempts) if attempts.isdigit() else None,
    )


_FIRST_RETRY = 0.25
"""Seconds before the one retry of a first connect (a server just starting gets a chance)."""
_RECONNECT_WAIT = 2.0
"""Seconds between reconnect attempts once connected (nats-py's default)."""


def _nats_msg(delivery: Delivery) -> Msg:
    """The nats-py message of a delivery this transport fetched."""
    msg = delivery.handle
    if not isinstance(msg, Msg):
        raise TypeError(f"job {delivery.job_id} was fetched by naq's wire client, not nats-py")
    return msg


def _publish_failure(url: str, error: BaseException) -> NaqError:
    """A failed publish as the NaqError a caller should see."""
    if isinstance(error, nats.errors.MaxPayloadError):
        return SerializationError(f"job is larger than the server's max_payload: {error}")
    if isinstance(error, PublishError):
        return NaqError(f"JetStream refused the job: {error}")
    return NaqConnectionError(
        f"NATS at {url} did not confirm the job ({error!r}); it may or may not be queued: "
        "enqueue it again with the same job_id to be sure it runs once"
    )


def _consumer_config(lane: str, ack_wait: float) -> api.ConsumerConfig:
    return api.ConsumerConfig(
        durable_name=consumer_name(lane),
        filter_subjects=lane_filters(lane),
        ack_policy=api.AckPolicy.EXPLICIT,
        deliver_policy=api.DeliverPolicy.ALL,
        ack_wait=ack_wait,
        max_deliver=-1,  # naq dead-letters poison messages itself (see Worker.max_deliveries)
        max_ack_pending=-1,
        max_waiting=4096,
    )


class NatsTransport:
    """naq's view of NATS: job streams, records, consumers. Create and use on one asyncio loop.

    The one object core code talks to (through ``Connection.call``). It owns the connection
    (``jetstream``, shared with its stores) and two stores: ``admin`` (heartbeats, queue
    statistics, purge) and ``schedules`` (definitions, server schedules, the naq engine).
    Client calls (enqueue, reads, waits) are bounded by ``timeout`` and ride out a server
    restart through ``Link``; the worker's own calls are not changed by it.
    """

    def __init__(
        self, options: ConnectOptions | str, timeout: float = DEFAULT_TIMEOUT, replicas: int = 1
    ) -> None:
        if isinstance(options, str):
            options = ConnectOptions(servers=options)
        self.options = options
        self.replicas = replicas
        self.url = options.url
        self.timeout = timeout
        self._link = Link(self.url, timeout)
        self._nc: NatsClient | None = None
        self.jetstream = JetStream(replicas)
        self.admin = NatsAdmin(self.jetstream)
        self.schedules = ScheduleStore(self.jetstream)
        self.locks = Locks(self.jetstream)
        self._consumers: dict[str, PullConsumer] = {}
        self._closing = False
        self._connect_errors: list[BaseException] = []
        self._announced: set[str] = set()

    # -- connection -------------------------------------------------------------------------

    async def connect(self) -> None:
        """Connect and make sure naq's streams and bucket exist (idempotent)."""
        connect_kwargs = nats_connect_kwargs(self.options)
        self._connect_errors = []
        try:
            self._nc = await nats.connect(
                **connect_kwargs,
                name="naq",
                max_reconnect_attempts=1,  # a server that is not there fails fast at start:
                reconnect_time_wait=_FIRST_RETRY,  # one retry, soon (nats-py waits 2 s)
                connect_timeout=5,
                allow_reconnect=True,
                error_cb=self._on_error,
                disconnected_cb=self._on_disconnected,
                reconnected_cb=self._on_reconnected,
            )
        except (OSError, nats.errors.Error, TimeoutError) as exc:
            message = cannot_connect(self.url, exc, self._connect_errors)
            raise NaqConnectionError(message) from exc
        finally:
            self._connect_errors = []
        # Once connected, never give up: a restarting server must not strand a worker.
        # nats-py reads this option at each reconnect, and has no other way to set it.
        self.nc.options["max_reconnect_attempts"] = -1
        self.nc.options["reconnect_time_wait"] = _RECONNECT_WAIT
        self._link.connected()
        jetstream = self.jetstream
        await jetstream.attach(self.nc, self.timeout)
        try:
            await jetstream.ensure_stream(jobs_stream(self.replicas))
            await jetstream.ensure_stream(dead_stream(self.replicas))
            await jetstream.ensure_bucket(jobs_bucket(self.replicas))
            await jetstream.ensure_bucket(deps_bucket(self.replicas))
        except (
            nats.js.errors.ServiceUnavailableError,
            nats.errors.NoRespondersError,
            nats.js.errors.NoStreamResponseError,
        ) as exc:
            await self.close()
            raise NaqConnectionError(
                f"JetStream is not enabled on {self.url}; start nats-server with -js"
            ) from exc
        except nats.errors.TimeoutError as exc:
            await self.close()
            raise NaqConnectionError(
                f"JetStream at {self.url} did not answer while naq set up its streams "
                "(is a cluster still electing its leader?)"
            ) from exc
        except nats.js.errors.APIError as exc:
            await self.close()
            raise ConfigurationError(
                f"JetStream at {self.url} refused naq's streams (replicas={self.replicas}): "
                f"{exc.description}"
            ) from exc

    @property
    def max_payload(self) -> int:
        """The largest message the connected server accepts, in bytes."""
        return self.nc.max_payload

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
        self._nc = None
        self.jetstream.detach()
        self.admin.forget()
        self.schedules.forget()  # it holds the parent's bucket and watcher
        self.locks.forget()
        self._consumers = {}
        self._closing = False
        self._link = Link(self.url, self.timeout)

    @property
    def nc(self) -> NatsClient:
        """The connected nats-py client; NaqConnectionError before connecting."""
        if self._nc is None:
            raise NaqConnectionError("not connected to NATS: the transport was never opened")
        return self._nc

    @property
    def _js(self) -> Any:
        """nats-py's JetStream context (tests reach into it)."""
        return self.jetstream.js

    async def _on_error(self, exc: Exception) -> None:
        if self._nc is None:  # connecting: the cause goes into the NaqConnectionError raised
            self._connect_errors.append(exc)
            return
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

    async def enqueue(self, job: OutgoingJob) -> None:
        """Publish the job message (its body is the queued record); confirmed on return.

        One publish per job: a queued job is found by id on its own subject, and only a
        worker writes the job's KV record, once the job leaves the queue. A publish the
        server did not confirm is sent again after a reconnect: its id deduplicates it.
        """
        failed = await self.enqueue_many([job])
        if failed:
            raise failed[0][1]

    async def enqueue_many(self, jobs: Sequence[OutgoingJob]) -> list[tuple[str, NaqError]]:
        """Publish jobs pipelined; the ones not confirmed, each with why.

        Sent once connected (waiting out a reconnect within the timeout). If the connection
        drops while they wait for their acks, jobs with explicit ids are sent again (their
        id deduplicates them); others raise NaqConnectionError, as they may or may not be
        queued. Raises SerializationError, publishing nothing, when a job does not fit in the
        server's ``max_payload`` with the room a worker needs to record it
        (``RECORD_HEADROOM``): such a job could never run to an outcome.
        """
        for job in jobs:
            too_large = record_too_large(job, self.max_payload)
            if too_large is not None:
                raise too_large
        announced = self._announced
        if any(job.lane not in announced for job in jobs):
            await self.announce_queues({job.lane for job in jobs})
        publish = functools.partial(self._enqueue_many_once, jobs)
        retry = all(job.dedupe for job in jobs)
        what = (
            f"enqueue of job {jobs[0].job_id}" if len(jobs) == 1 else f"enqueue of {len(jobs)} jobs"
        )
        return await self._link.call(what, publish, retry=retry)

    async def _enqueue_many_once(self, jobs: Sequence[OutgoingJob]) -> list[tuple[str, NaqError]]:
        publisher = self.jetstream.publisher
        assert publisher is not None
        # No timeout of its own: the Link's deadline bounds the whole call.
        outcomes = await publisher.publish_all(
            [
                OutgoingMessage(
                    job_subject(job.lane, job.job_id),
                    job.record,
                    message_headers(job),
                )
                for job in jobs
            ]
        )
        return [
            (job.job_id, _publish_failure(self.url, outcome))
            for job, outcome in zip(jobs, outcomes, strict=True)
            if outcome is not None
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
        """The KV record and the queued message, read at once (one round trip); the KV is
        read again only when neither was there (see get_record)."""
        stored, queued = await asyncio.gather(
            self.stored_record(job_id), self.queued_message(job_id)
        )
        found = stored or queued or await self.stored_record(job_id)
        return None if found is None else found.data

    async def wait_record(
        self, job_id: str, done: Callable[[bytes], bool], timeout: float | None
    ) -> bytes | None:
        """Wait until the record satisfies ``done``; None if the job has no record.

        Subscribes to the subject where the record is republished once stored, before
        reading it, so an update landing between the read and the wait is still seen: the
        caller is woken by the write, never polls. Updates republished while the connection
        was down are missed, so the record is read again after each reconnect. The first
        read always happens: ``timeout=0`` answers "is it done now?". Raises TimeoutError
        after ``timeout`` seconds, NaqConnectionError if the connection is down by then.

        On a cluster the notification can be lost: the SUB reaches the stream leader's
        server over a route some time after this server took it (no reply tells when), and
        the first read is a direct get that a follower may answer before it applied the
        write the leader already republished. So a wait that sees nothing for
        ``FIRST_RECHECK`` s reads the record from the stream's leader, then again after
        twice as long each time, up to ``MAX_RECHECK`` s apart (``_leader_record``).
        """
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        what = f"waiting for job {job_id}"
        with self._link.watch() as events:
            try:
                sub = await self.nc.subscribe(stored_record_subject("*", job_id), cb=events.put)
            except nats.errors.ConnectionClosedError as exc:
                raise NaqConnectionError(f"{what}: the connection to {self.url} is closed") from exc
            try:
                current = await self.get_record(job_id)
                recheck = FIRST_RECHECK
                while current is not None and not done(current):
                    wake = loop.time() + recheck
                    event = await self._link.next_event(events, what, deadline, wake)
                    if event is None:  # nothing for ``recheck`` s: ask the stream's leader
                        current = await self._leader_record(job_id) or current
                        recheck = min(recheck * 2, MAX_RECHECK)
                    elif event is LinkEvent.READ_AGAIN:
                        current = await self.get_record(job_id)
                        recheck = FIRST_RECHECK  # the SUB is new again on the servers
                    elif event.data:  # a delete or purge marker has no data
                        current = event.data
                return current
            finally:
                if not self.nc.is_closed:
                    await sub.unsubscribe()

    async def _leader_record(self, job_id: str) -> bytes | None:
        """The job's KV record as the stream's leader has it (not a direct get, which any
        replica may answer); None when it has none, or could not be asked (logged: the
        waiter asks again at its next recheck, or reads after the reconnect)."""
        if not self._link.is_up:
            return None
        subject = any_record_subject(job_id)
        try:
            msg = await self.jetstream.js.get_last_msg(JOBS_BUCKET_STREAM, subject, direct=False)
        except nats.js.errors.NotFoundError:
            return None
        except (nats.errors.Error, TimeoutError) as exc:
            logger.warning("could not read job {} from the stream leader: {!r}", job_id, exc)
            return None
        return msg.data or None  # no data: a KV delete or purge marker

    async def announce_queues(self, queues: set[str]) -> None:
        """Make sure each queue has its durable consumer, once per queue and transport.

        Operators find queues by their consumers (``naq info``, the dashboard), so a queue
        nobody consumes yet (a typo in ``queue=``, a worker not started) would hide its jobs.
        One round trip per new queue name, on the first enqueue to it; an existing consumer
        is left as it is (a worker's ``ack_wait`` stays).
        """
        for queue in sorted(queues - self._announced):
            ensure = functools.partial(self._queue_consumer, queue)
            await self._link.call(f"creating queue {queue}", ensure, retry=True)
            self._announced.add(queue)

    async def _queue_consumer(self, queue: str) -> Any:  # nats-py's ConsumerInfo
        try:
            return await self.jetstream.js.consumer_info(JOBS_STREAM, consumer_name(queue))
        except nats.js.errors.NotFoundError:
            return await self.jetstream.js.add_consumer(JOBS_STREAM, _consumer_config(queue, 30.0))

    async def queue_depth(self, queue: str) -> int:
        """Jobs in a queue not yet acknowledged: waiting, running or waiting to retry."""
        count = functools.partial(self._queue_depth, queue)
        return await self._link.call(f"counting queue {queue}", count)

    async def _queue_depth(self, queue: str) -> int:
        # Work-queue retention: a job's message is stored until a worker acks it.
        return await self.jetstream.count_messages(JOBS_STREAM, queue_filters(queue))

    async def dead_letter_count(self, queue: str) -> int:
        """Dead letters kept for a queue."""
        count = functools.partial(self._dead_letter_count, queue)
        return await self._link.call(f"counting dead letters of {queue}", count)

    async def _dead_letter_count(self, queue: str) -> int:
        info = await self.jetstream.js.stream_info(
            DEAD_STREAM, subjects_filter=dead_subject(queue, "*")
        )
        return sum((info.state.subjects or {}).values())

    # -- consuming --------------------------------------------------------------------------

    async def ensure_consumer(self, queue: str, ack_wait: float) -> None:
        """Create or update the queue's durable pull consumer and bind to it."""
        await self.add_queue_consumer(queue, ack_wait)
        consumer = PullConsumer(self.nc, JOBS_STREAM, consumer_name(queue))
        await consumer.start()
        self._consumers[queue] = consumer

    async def add_queue_consumer(self, queue: str, ack_wait: float) -> None:
        """Create or update the queue's durable pull consumer (a worker's settings)."""
        await self.jetstream.js.add_consumer(JOBS_STREAM, _consumer_config(queue, ack_wait))

    async def fetch(self, queue: str, want: int, timeout: float) -> tuple[list[Delivery], int]:
        """Up to ``want`` messages as soon as any arrive, and how many more are owed.

        The caller keeps a worker slot for each owed message: the open pull request may
        still deliver them (see ``_pull``).
        """
        msgs, owed = await self._consumers[queue].fetch(want, timeout)
        return [as_delivery(msg) for msg in msgs], owed

    async def keep_alive(self, deliveries: Sequence[Delivery]) -> None:
        """Tell the server these jobs are still running, so their ack wait restarts."""
        for delivery in deliveries:
            await _nats_msg(delivery).in_progress()

    async def hand_back(self, deliveries: Sequence[Delivery]) -> None:
        """Return messages (and any delivered but not fetched) for immediate redelivery.

        Consumers stop receiving first, so an open pull request cannot take them back.
        """
        buffered = [msg for consumer in self._consumers.values() for msg in await consumer.close()]
        for msg in [_nats_msg(d) for d in deliveries] + buffered:
            try:
                await msg.nak()
            except nats.errors.MsgAlreadyAckdError:
                continue  # settled while the worker was being cancelled: nothing to hand back
        await self.nc.flush()

    async def settle_batch(
        self, settlements: Sequence[Settlement], ended_ids: Sequence[str]
    ) -> tuple[list[BaseException | None], dict[str, list[str]] | BaseException]:
        """:meth:`settle`, then the dependents of the ended jobs whose outcome was stored.

        One call (one crossing from Trio) for the worker's settle loop. A failed lookup is
        returned, not raised: the outcomes are stored and acked whatever it says.
        """
        return await settle_and_find_dependents(
            self.settle, self.dependents_of, settlements, ended_ids
        )

    async def settle(self, settlements: Sequence[Settlement]) -> list[BaseException | None]:
        """Store dead letters, then records, then ack or nak messages (see settle_with)."""
        publisher = self.jetstream.publisher
        assert publisher is not None
        return await settle_with(
            settlements, functools.partial(publisher.publish_all, timeout=ACK_TIMEOUT), _answer
        )

    # -- a job's life beyond the hot path: records, cancel, dependencies, events, letters ---
    # Rare calls: each may take a round trip or two.

    async def stored_record(self, job_id: str) -> StoredMessage | None:
        """The job's KV record with its stream sequence (for compare-and-set writes)."""
        return await self.jetstream.last_message(JOBS_BUCKET_STREAM, any_record_subject(job_id))

    async def queued_message(self, job_id: str) -> StoredMessage | None:
        """The job's message while it waits in its queue."""
        return await self.jetstream.last_message(JOBS_STREAM, queued_job_subject(job_id))

    async def delete_queued(self, sequence: int) -> bool:
        """Remove a job message from its queue; False if a worker already acked it."""
        return await self.jetstream.delete_message(JOBS_STREAM, sequence)

    async def write_record(
        self,
        queue: str,
        job_id: str,
        data: bytes,
        event: str | None,
        ttl: float | None = None,
        expected_sequence: int | None = None,
    ) -> bool:
        """Store a record; with ``expected_sequence``, only if it is still that version."""
        headers = {"Naq-Event": event} if event else {}
        if ttl:
            headers["Nats-TTL"] = str(int(ttl))
        message = OutgoingMessage(record_subject(queue, job_id), data, headers or None)
        if expected_sequence is None:
            await self.jetstream.publish_one(message)
            return True
        return await self.jetstream.compare_and_set(message, expected_sequence) is not None

    async def change_record(self, job_id: str, change: Callable[[bytes], bytes | None]) -> bool:
        """Rewrite a job's record if ``change`` returns new bytes, with compare-and-set
        (read again and retried when another writer got there first)."""
        while True:
            stored = await self.stored_record(job_id)
            if stored is None:
                return False
            new = change(stored.data)
            if new is None:
                return False
            queue = stored.subject.split(".")[2]  # $KV.naq_jobs.<queue>.<job id>
            if await self.write_record(queue, job_id, new, None, None, stored.sequence):
                return True

    async def notify_cancel(self, job_id: str) -> None:
        """Tell every worker that ``job_id`` was cancelled (they stop it if it runs)."""
        await self.nc.publish(cancel_subject(job_id), b"")
        await self.nc.flush()

    async def notify_purged(self, queue: str, at: str) -> None:
        """Tell listeners (the dashboard's recent jobs) that ``queue`` was purged at ``at``."""
        await self.nc.publish(purged_subject(queue), at.encode())
        await self.nc.flush()

    async def open_cancel_notices(self) -> asyncio.Queue[str]:
        """A queue of cancelled job ids as notices arrive (for a worker)."""
        notices: asyncio.Queue[str] = asyncio.Queue()

        async def on_notice(msg: Msg) -> None:
            notices.put_nowait(msg.subject.rsplit(".", 1)[1])

        await self.nc.subscribe(cancel_subject("*"), cb=on_notice)
        return notices

    async def next_cancel_notices(self, notices: asyncio.Queue[str]) -> list[str]:
        """Wait for at least one notice, then take all that are waiting."""
        ids = [await notices.get()]
        while not notices.empty():
            ids.append(notices.get_nowait())
        return ids

    async def add_dependency(self, dependency_ids: Sequence[str], dependent_id: str) -> None:
        """Remember that ``dependent_id`` waits for each of ``dependency_ids``."""
        edges = [
            OutgoingMessage(dependency_subject(dependency_id, dependent_id), b"1")
            for dependency_id in dependency_ids
        ]
        for outcome in await self.jetstream.publish(edges):
            if isinstance(outcome, BaseException):
                raise outcome

    async def dependents_of(self, job_ids: Sequence[str]) -> dict[str, list[str]]:
        """For each job id, the jobs waiting for it (requests for all of them sent at once)."""
        subjects = [dependency_subject(job_id, "*") for job_id in job_ids]
        return dependency_edges(await self.jetstream.direct_get_many(DEPS_BUCKET_STREAM, subjects))

    async def open_events(self, subjects: Sequence[str]) -> asyncio.Queue[RawEvent]:
        """Subscribe to record writes and queued messages; what arrives is queued."""
        events: asyncio.Queue[RawEvent] = asyncio.Queue()

        async def on_message(msg: Msg) -> None:
            headers = msg.headers or {}
            if msg.data:
                events.put_nowait(RawEvent(msg.subject, headers.get("Naq-Event"), msg.data))

        subs = [await self.nc.subscribe(subject, cb=on_message) for subject in subjects]
        await self.nc.flush()
        events.subscriptions = subs  # type: ignore[attr-defined]
        return events

    async def next_events(
        self, events: asyncio.Queue[RawEvent], timeout: float | None
    ) -> list[RawEvent]:
        """At least one event (or none after ``timeout``), and all others already waiting."""
        try:
            async with asyncio.timeout(timeout):
                batch = [await events.get()]
        except TimeoutError:
            return []
        while not events.empty():
            batch.append(events.get_nowait())
        return batch

    async def close_events(self, events: asyncio.Queue[RawEvent]) -> None:
        for sub in getattr(events, "subscriptions", []):
            await sub.unsubscribe()

    async def dead_letters(self, queue: str | None, limit: int) -> list[DeadLetter]:
        """Dead letters, oldest first, of one queue or all."""
        js = self.jetstream.js
        subject = dead_subject(queue or "*", "*")
        info = await js.stream_info(DEAD_STREAM)
        letters: list[DeadLetter] = []
        sequence = info.state.first_seq
        while len(letters) < limit and sequence and sequence <= info.state.last_seq:
            try:
                msg = await js.get_msg(
                    DEAD_STREAM, seq=sequence, subject=subject, next=True, direct=True
                )
            except nats.js.errors.NotFoundError:
                break
            letters.append(_dead_letter(msg))
            sequence = msg.seq + 1
        return letters

    async def dead_letter(self, job_id: str) -> DeadLetter | None:
        """The dead letter of one job, if there is one."""
        try:
            msg = await self.jetstream.js.get_last_msg(
                DEAD_STREAM, dead_subject("*", job_id), direct=True
            )
        except nats.js.errors.NotFoundError:
            return None
        return _dead_letter(msg)

    async def delete_dead_letter(self, sequence: int) -> bool:
        """Drop a dead letter; False if it is gone already."""
        return await self.jetstream.delete_message(DEAD_STREAM, sequence)


async def _answer(delivery: Delivery, nak_delay: float | None) -> None:
    msg = _nats_msg(delivery)
    if nak_delay is None:
        await msg.ack()
    else:
        await msg.nak(delay=nak_delay or None)
