"""The one place that talks to nats-py. Everything here runs on an asyncio loop.

Methods are coarse on purpose: each is one crossing from a Trio caller (see ``_bridge``),
so a batch of messages is fetched, kept alive or settled by a single call.
"""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

import attrs
import nats
import nats.errors
import nats.js.errors
from loguru import logger
from nats.aio.msg import Msg
from nats.js import api

from .._errors import ConfigurationError, NaqConnectionError, NaqError, SerializationError
from .._settings import DEFAULT_TIMEOUT, ConnectOptions
from ._connect import nats_connect_kwargs
from ._lifecycle import LifecycleMixin
from ._link import Link, LinkEvent
from ._names import (
    DEAD_STREAM,
    DEPS_BUCKET,
    JOBS_BUCKET,
    JOBS_STREAM,
    STORED_RECORDS,
    consumer_name,
    dead_subject,
    job_subject,
    jobs_stream_subjects,
    queue_filters,
    record_subject,
    stored_record_subject,
)
from ._publisher import AckedPublisher, OutgoingMessage, PublishError
from ._pull import PullConsumer
from ._unreachable import cannot_connect

if TYPE_CHECKING:
    from ._wire_protocol import Msg as WireMsg

__all__ = [
    "ACK_TIMEOUT",
    "RECORD_HEADROOM",
    "Delivery",
    "NatsTransport",
    "OutgoingJob",
    "Settlement",
    "as_delivery",
    "dead_letter_messages",
    "record_messages",
    "settle_and_find_dependents",
    "settle_with",
    "stream_sequence",
]

ACK_TIMEOUT = 10.0
"""Seconds to wait for JetStream to confirm a publish before counting it as failed."""

RECORD_HEADROOM = 2048
"""Bytes of ``max_payload`` a queued job leaves for what a worker adds to its record (status,
times, history, worker id) and for message headers."""

_STREAM_EXISTS = 10058  # JetStream: stream name already in use with a different configuration


@attrs.define(eq=False)
class Delivery:
    """One fetched job message. ``handle`` is the message object of the client that fetched
    it (nats-py's, or the wire client's on Trio), opaque outside ``naq/_transport/``."""

    handle: Msg | WireMsg
    data: bytes
    num_delivered: int
    job_id: str


class OutgoingJob(NamedTuple):
    """A job to enqueue. ``dedupe`` (for ids the caller chose) makes JetStream drop a second
    publish of the same id within its duplicate window; generated ids are unique already,
    and skipping the check makes an enqueue a quarter cheaper for the server and client."""

    queue: str
    job_id: str
    record: bytes
    dedupe: bool


@attrs.define
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
    event: str | None = None


_FIRST_RETRY = 0.25
"""Seconds before the one retry of a first connect (a server just starting gets a chance)."""
_RECONNECT_WAIT = 2.0
"""Seconds between reconnect attempts once connected (nats-py's default)."""


def _dead_letter_headers(item: Settlement, reason: str) -> dict[str, str]:
    """Why the job ended in the dead-letter stream, and after how many runs.

    The letter keeps the message as it was enqueued (attempts 0); the count comes from
    the record stored with it. Dead letters are rare, so parsing that record here is cheap.
    """
    headers = {"Naq-Reason": reason, "Naq-Job-Id": item.job_id}
    if item.record is not None:
        try:
            attempts = json.loads(item.record).get("attempts", 0)
        except ValueError:
            attempts = None
        if type(attempts) is int:
            headers["Naq-Attempts"] = str(attempts)
    return headers


def _delivery_count(msg: Msg | WireMsg) -> int:
    """How often this message was delivered, read from its ack subject.

    ``$JS.ACK.<stream>.<consumer>.<delivered>.…`` (9 tokens), or the 12-token form with
    domain and account hash; nats-py's ``metadata`` parses all of it, which costs more.
    """
    tokens = msg.reply.split(".")
    return int(tokens[4] if len(tokens) == 9 else tokens[6])


def as_delivery(msg: Msg | WireMsg) -> Delivery:
    """A fetched job message, of either client, as the worker sees it."""
    return Delivery(msg, msg.data, _delivery_count(msg), _job_id_of(msg))


def stream_sequence(msg: Msg | WireMsg) -> int:
    """The message's sequence in its stream, read from its ack subject (see _delivery_count)."""
    tokens = msg.reply.split(".")
    return int(tokens[5] if len(tokens) == 9 else tokens[7])


def _job_id_of(msg: Msg | WireMsg) -> str:
    """The job id a message names: its subject's last token, else its Nats-Msg-Id."""
    tokens = msg.subject.split(".")
    if len(tokens) == 4:
        return tokens[3]
    return (msg.headers or {}).get("Nats-Msg-Id", "")


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


class NatsTransport(LifecycleMixin):
    """naq's view of NATS: job streams, records, consumers. Create and use on one asyncio loop.

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
        self._nc = None
        self._js: Any = None
        self._publisher: AckedPublisher | None = None
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
        self._js = self.nc.jetstream(timeout=self.timeout)
        self._publisher = AckedPublisher(self.nc)
        await self._publisher.start()
        try:
            await self._ensure_stream(
                api.StreamConfig(
                    name=JOBS_STREAM,
                    subjects=jobs_stream_subjects(),
                    allow_direct=True,
                    retention=api.RetentionPolicy.WORK_QUEUE,
                    storage=api.StorageType.FILE,
                    duplicate_window=120.0,
                    num_replicas=self.replicas,
                )
            )
            await self._ensure_stream(
                api.StreamConfig(
                    name=DEAD_STREAM,
                    subjects=[dead_subject("*", "*")],
                    allow_direct=True,
                    retention=api.RetentionPolicy.LIMITS,
                    storage=api.StorageType.FILE,
                    num_replicas=self.replicas,
                )
            )
            await self._ensure_bucket(
                self._file_bucket(
                    JOBS_BUCKET,
                    # Waiters and event listeners hear of a record write only once it is
                    # stored, so a read that follows a wake-up never sees an older record.
                    api.RePublish(src=f"$KV.{JOBS_BUCKET}.>", dest=f"{STORED_RECORDS}.>"),
                )
            )
            await self._ensure_bucket(self._file_bucket(DEPS_BUCKET))
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
        from ._schedules import _stores  # here: that module imports this one

        self._nc = self._js = self._publisher = None
        self._consumers = {}
        self._closing = False
        self._link = Link(self.url, self.timeout)
        _stores.pop(self, None)  # its schedule store holds the parent's bucket and watcher

    async def _ensure_stream(self, config: api.StreamConfig) -> None:
        """Create the stream, or add what this version needs to an existing one.

        An existing stream keeps its other settings and subjects (the scheduler adds its
        own, and message schedules cannot be turned off again).
        """
        try:
            await self._js.add_stream(config)
        except nats.js.errors.BadRequestError as exc:
            if exc.err_code != _STREAM_EXISTS:
                raise
            current = (await self._js.stream_info(config.name)).config
            subjects = list(current.subjects or [])
            missing = [s for s in config.subjects or [] if s not in subjects]
            if missing or (config.allow_direct and not current.allow_direct):
                await self._js.update_stream(
                    current.evolve(
                        subjects=subjects + missing,
                        allow_direct=current.allow_direct or config.allow_direct,
                    )
                )

    def _file_bucket(
        self, bucket: str, republish: api.RePublish | None = None
    ) -> api.KeyValueConfig:
        """The configuration of one of naq's durable buckets (jobs, dependencies)."""
        return api.KeyValueConfig(
            bucket=bucket,
            history=1,
            storage=api.StorageType.FILE,
            direct=True,
            republish=republish,
            replicas=self.replicas,
        )

    async def _ensure_bucket(self, config: api.KeyValueConfig) -> None:
        """Create a KV bucket, or bring an existing one up to date: direct get on (naq reads
        buckets by wildcard subject) and ``config``'s republish; its other settings kept."""
        try:
            await self._js.create_key_value(config.evolve(direct=True))
        except nats.js.errors.BadRequestError as exc:
            if exc.err_code != _STREAM_EXISTS:
                raise
            republish = config.republish
            current = (await self._js.stream_info(f"KV_{config.bucket}")).config
            if not current.allow_direct or (republish and current.republish is None):
                await self._js.update_stream(
                    current.evolve(allow_direct=True, republish=republish or current.republish)
                )

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
        limit = self.max_payload - RECORD_HEADROOM
        for job in jobs:
            if len(job.record) > limit:
                raise SerializationError(
                    f"job {job.job_id} is {len(job.record)} bytes encoded; the server's "
                    f"max_payload of {self.max_payload} bytes allows {limit} (it keeps "
                    f"{RECORD_HEADROOM} for the worker's additions); pass large data by reference"
                )
        announced = self._announced
        if any(job.queue not in announced for job in jobs):
            await self.announce_queues({job.queue for job in jobs})
        publish = functools.partial(self._enqueue_many_once, jobs)
        retry = all(job.dedupe for job in jobs)
        what = (
            f"enqueue of job {jobs[0].job_id}" if len(jobs) == 1 else f"enqueue of {len(jobs)} jobs"
        )
        return await self._link.call(what, publish, retry=retry)

    async def _enqueue_many_once(self, jobs: Sequence[OutgoingJob]) -> list[tuple[str, NaqError]]:
        assert self._publisher is not None
        # No timeout of its own: the Link's deadline bounds the whole call.
        outcomes = await self._publisher.publish_all(
            [
                OutgoingMessage(
                    job_subject(job.queue, job.job_id),
                    job.record,
                    {"Nats-Msg-Id": job.job_id} if job.dedupe else None,
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
        for read in (self.stored_record, self.queued_message, self.stored_record):
            found = await read(job_id)
            if found is not None:
                return found.data
        return None

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
                while current is not None and not done(current):
                    event = await self._link.next_event(events, what, deadline)
                    if event is LinkEvent.READ_AGAIN:
                        current = await self.get_record(job_id)
                    elif event.data:  # a delete or purge marker has no data
                        current = event.data
                return current
            finally:
                if not self.nc.is_closed:
                    await sub.unsubscribe()

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
            return await self._js.consumer_info(JOBS_STREAM, consumer_name(queue))
        except nats.js.errors.NotFoundError:
            return await self._js.add_consumer(JOBS_STREAM, _consumer_config(queue, 30.0))

    async def queue_depth(self, queue: str) -> int:
        """Jobs in a queue not yet acknowledged: waiting, running or waiting to retry."""
        count = functools.partial(self._queue_depth, queue)
        return await self._link.call(f"counting queue {queue}", count)

    async def _queue_depth(self, queue: str) -> int:
        info = await self._queue_consumer(queue)  # created if no one enqueued or consumed yet
        return info.num_pending + info.num_ack_pending

    async def dead_letter_count(self, queue: str) -> int:
        """Dead letters kept for a queue."""
        count = functools.partial(self._dead_letter_count, queue)
        return await self._link.call(f"counting dead letters of {queue}", count)

    async def _dead_letter_count(self, queue: str) -> int:
        info = await self._js.stream_info(DEAD_STREAM, subjects_filter=dead_subject(queue, "*"))
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
        await self._js.add_consumer(JOBS_STREAM, _consumer_config(queue, ack_wait))

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
        publisher = self._publisher
        assert publisher is not None
        return await settle_with(
            settlements, functools.partial(publisher.publish_all, timeout=ACK_TIMEOUT), _answer
        )


async def _answer(delivery: Delivery, nak_delay: float | None) -> None:
    msg = _nats_msg(delivery)
    if nak_delay is None:
        await msg.ack()
    else:
        await msg.nak(delay=nak_delay or None)


PublishAll = Callable[[Sequence[OutgoingMessage]], Awaitable[list[BaseException | None]]]
"""Publish messages to streams together: None or the error, for each."""
Answer = Callable[[Delivery, "float | None"], Awaitable[None]]
"""Ack a delivery (``nak_delay`` None), or nak it for redelivery after ``nak_delay`` s."""


async def settle_with(
    settlements: Sequence[Settlement], publish_all: PublishAll, answer: Answer
) -> list[BaseException | None]:
    """Store dead letters, then records, then ack or nak messages; one error slot each.

    Dead letters are confirmed before any record of the batch is written, so whoever
    sees a job's final record also finds its dead letter. An item whose dead letter or
    record could not be stored is not acknowledged: the server delivers it again.
    """
    errors: list[BaseException | None] = [None] * len(settlements)
    for messages in (dead_letter_messages, record_messages):
        indexes, outgoing = messages(settlements, errors)
        if outgoing:
            for i, error in zip(indexes, await publish_all(outgoing), strict=True):
                errors[i] = error
    for item, error in zip(settlements, errors, strict=True):
        if error is None and item.delivery is not None:
            await answer(item.delivery, item.nak_delay)
    return errors


async def settle_and_find_dependents(
    settle: Callable[[Sequence[Settlement]], Awaitable[list[BaseException | None]]],
    dependents_of: Callable[[Sequence[str]], Awaitable[dict[str, list[str]]]],
    settlements: Sequence[Settlement],
    ended_ids: Sequence[str],
) -> tuple[list[BaseException | None], dict[str, list[str]] | BaseException]:
    """``settle``, then the dependents of the ended jobs whose outcome was stored.

    A failed lookup is returned, not raised: the outcomes are stored and acked whatever it says.
    """
    errors = await settle(settlements)
    unsaved = {item.job_id for item, error in zip(settlements, errors, strict=True) if error}
    stored = [job_id for job_id in ended_ids if job_id not in unsaved]
    try:
        edges = await dependents_of(stored) if stored else {}
    except Exception as exc:  # noqa: BLE001 - returned to the caller, which logs it
        return errors, exc
    return errors, edges


def dead_letter_messages(
    settlements: Sequence[Settlement], errors: Sequence[BaseException | None]
) -> tuple[list[int], list[OutgoingMessage]]:
    """The dead letters a batch stores first: each one's index in the batch, and the letter.

    A letter keeps the job message as it was delivered, with why and after how many runs.
    """
    indexes: list[int] = []
    letters: list[OutgoingMessage] = []
    for i, item in enumerate(settlements):
        delivery, reason = item.delivery, item.dead_reason
        if reason is not None and delivery is not None and errors[i] is None:
            indexes.append(i)
            letters.append(
                OutgoingMessage(
                    dead_subject(item.queue, item.job_id),
                    delivery.data,
                    _dead_letter_headers(item, reason),
                )
            )
    return indexes, letters


def record_messages(
    settlements: Sequence[Settlement], errors: Sequence[BaseException | None]
) -> tuple[list[int], list[OutgoingMessage]]:
    """The record writes of a batch whose dead letter (if any) was stored: index, message."""
    indexes: list[int] = []
    records: list[OutgoingMessage] = []
    for i, item in enumerate(settlements):
        if item.record is not None and errors[i] is None:
            headers = {"Naq-Event": item.event} if item.event else {}
            if item.record_ttl:
                headers["Nats-TTL"] = str(int(item.record_ttl))
            indexes.append(i)
            records.append(
                OutgoingMessage(
                    record_subject(item.queue, item.job_id), item.record, headers or None
                )
            )
    return indexes, records
