"""``Worker``: fetch jobs in batches, run them under a concurrency limit, store outcomes, ack.

Flow per job: fetched (one crossing per batch) → "started" record → run → outcome record
stored → message acked (or nak'd with the retry delay). All record writes and acks go
through one settle loop that handles whatever has accumulated in one crossing, in order.
While a job runs its message is kept alive, so a long job is never redelivered while its
worker lives; a killed worker's messages are redelivered after the ack wait.
"""

from __future__ import annotations

import math
import os
import socket
import uuid
from collections.abc import Sequence

import anyio
import attrs
from anyio.abc import TaskGroup, TaskStatus
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from loguru import logger

from ._connection import Connection
from ._errors import ConfigurationError, SerializationError
from ._execution import Outcome, error_info, execute
from ._record import ErrorInfo, JobRecord, JobStatus, decode_record, encode_record
from ._scheduling import claim_fired_run
from ._serializers import Serializer, get_serializer, serializer_for_record
from ._settings import DEFAULT_RESULT_TTL, default_url
from ._time import utcnow
from ._transport import Delivery, Settlement, check_queue_name
from ._transport._schedules import server_fire

__all__ = ["Worker"]

_SETTLE_BATCH = 512


def _record_ttl(result_ttl: float | None) -> float | None:
    """Seconds to keep a finished record: default 500, -1 forever, else at least 1 s."""
    if result_ttl is None:
        return DEFAULT_RESULT_TTL
    if result_ttl < 0:
        return None
    return float(max(1, math.ceil(result_ttl)))


class Worker:
    """Runs jobs from one or more queues on the current backend (asyncio or Trio).

    Async job functions run as tasks on the worker's own event loop; sync ones run in
    threads, at most ``concurrency`` jobs at a time in all. ``ack_wait`` is how long the
    server waits before redelivering the job of a silent worker: running jobs are kept
    alive well within it. A message delivered more than ``max_deliveries`` times without
    an outcome (a job that keeps killing its worker) is dead-lettered. ``poll_interval``
    bounds each idle fetch, and so how long :meth:`stop` takes when there is no work.
    """

    def __init__(
        self,
        queues: Sequence[str] = ("default",),
        *,
        url: str | None = None,
        concurrency: int = 10,
        serializer: str | Serializer | None = None,
        ack_wait: float = 30.0,
        max_deliveries: int = 10,
        poll_interval: float = 0.5,
        name: str | None = None,
    ) -> None:
        if isinstance(queues, str):
            queues = [queues]
        if not queues:
            raise ConfigurationError("a worker needs at least one queue")
        if concurrency < 1:
            raise ConfigurationError(f"concurrency must be >= 1, got {concurrency}")
        if ack_wait < 1:
            raise ConfigurationError(f"ack_wait must be >= 1 second, got {ack_wait}")
        self.queues = [check_queue_name(q) for q in queues]
        self.url = url or default_url()
        self.concurrency = concurrency
        self.serializer = get_serializer(serializer)
        self.ack_wait = float(ack_wait)
        self.max_deliveries = max_deliveries
        self.poll_interval = poll_interval
        self.id = name or f"{socket.gethostname()}.{os.getpid()}.{uuid.uuid4().hex[:6]}"
        self._in_flight: set[Delivery] = set()
        self._fetching: anyio.CancelScope | None = None
        self._stop_requested = False
        self._connection: Connection | None = None

    def stop(self) -> None:
        """Stop fetching; jobs already running finish and are settled, then ``run`` returns.

        A fetch already under way completes (within ``poll_interval``) and its jobs run, so
        no message is left waiting in a buffer for its ack wait to expire.
        """
        self._stop_requested = True
        if self._fetching is not None:
            self._fetching.cancel()

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Process jobs until :meth:`stop` is called or the task is cancelled.

        Calls ``task_status.started()`` once connected and consuming. On cancellation the
        messages of unfinished jobs are handed back for immediate redelivery.
        """
        connection = Connection(self.url, self.serializer)
        await connection.open()
        self._connection = connection
        try:
            for queue in self.queues:
                await connection.call(connection.transport.ensure_consumer, queue, self.ack_wait)
            logger.info("worker {} consuming {} from {}", self.id, self.queues, self.url)
            await self._serve(task_status)
        finally:
            with anyio.CancelScope(shield=True), anyio.move_on_after(10):
                if self._in_flight:
                    await connection.call(connection.transport.hand_back, list(self._in_flight))
                    self._in_flight.clear()
                await connection.close()
            logger.info("worker {} stopped", self.id)

    async def _serve(self, task_status: TaskStatus[None]) -> None:
        send, receive = anyio.create_memory_object_stream[Settlement](math.inf)
        slots = anyio.Semaphore(self.concurrency)
        limiter = anyio.CapacityLimiter(self.concurrency)
        async with anyio.create_task_group() as service:
            service.start_soon(self._keep_alive_loop)
            async with anyio.create_task_group() as core:
                core.start_soon(self._settle_loop, receive)
                async with send, anyio.create_task_group() as jobs:
                    self._fetching = anyio.CancelScope()
                    if self._stop_requested:
                        self._fetching.cancel()
                    with self._fetching:
                        async with anyio.create_task_group() as fetchers:
                            for queue in self.queues:
                                fetchers.start_soon(
                                    self._fetch_loop, queue, slots, limiter, jobs, send
                                )
                            task_status.started()
            service.cancel_scope.cancel()

    async def _fetch_loop(
        self,
        queue: str,
        slots: anyio.Semaphore,
        limiter: anyio.CapacityLimiter,
        jobs: TaskGroup,
        send: MemoryObjectSendStream[Settlement],
    ) -> None:
        connection = self._connection
        assert connection is not None
        while True:
            await slots.acquire()
            wanted = 1
            while wanted < self.concurrency and slots.value > 0:
                slots.acquire_nowait()
                wanted += 1
            # Shielded: a stop takes effect after the fetch returns (its server-side pull
            # request expires with it), so every message the server sent gets handled.
            failed = False
            with anyio.CancelScope(shield=True):
                try:
                    deliveries = await connection.call(
                        connection.transport.fetch, queue, wanted, self.poll_interval
                    )
                except Exception as exc:  # noqa: BLE001 - logged; nats-py reconnects by itself
                    logger.warning("fetch from {} failed, retrying: {!r}", queue, exc)
                    deliveries, failed = [], True
            for _ in range(wanted - len(deliveries)):
                slots.release()
            for delivery in deliveries:
                self._in_flight.add(delivery)
                jobs.start_soon(self._process, delivery, queue, slots, limiter, send)
            if failed:
                await anyio.sleep(self.poll_interval)  # back off while NATS reconnects

    async def _process(
        self,
        delivery: Delivery,
        queue: str,
        slots: anyio.Semaphore,
        limiter: anyio.CapacityLimiter,
        send: MemoryObjectSendStream[Settlement],
    ) -> None:
        try:
            settlement = await self._run(delivery, queue, limiter, send)
        finally:
            slots.release()
        send.send_nowait(settlement)

    async def _run(
        self,
        delivery: Delivery,
        queue: str,
        limiter: anyio.CapacityLimiter,
        send: MemoryObjectSendStream[Settlement],
    ) -> Settlement:
        try:
            record = decode_record(delivery.data)
        except SerializationError as exc:
            logger.error("dead letter from {}: {}", queue, exc)
            return Settlement(
                delivery.job_id or "unknown",
                None,
                delivery,
                dead_reason=f"undecodable message: {exc}",
                queue=queue,
            )
        fired = server_fire(delivery)
        if fired is not None:  # a run produced by a server schedule: give it its own job id
            try:
                claimed = await claim_fired_run(self._connection, record, fired)
            except Exception as exc:  # noqa: BLE001 - logged; the message comes back
                logger.warning("could not claim run of schedule {}: {!r}", record.id, exc)
                return Settlement(record.id, None, delivery, nak_delay=1.0)
            if claimed is None:  # the schedule was cancelled or made its runs
                return Settlement(record.id, None, delivery)
            record = claimed
        attempt = delivery.num_delivered
        try:
            serializer = serializer_for_record(record.serializer, self.serializer)
            func, args, kwargs = serializer.decode_call(record.func_name, record.payload)
        except (SerializationError, ConfigurationError) as exc:
            return self._failed(record, attempt, error_info(exc), delivery, retry=False)
        if attempt > self.max_deliveries:
            reason = ErrorInfo(
                type="TooManyDeliveries",
                message=f"delivered {attempt} times without an outcome (did its worker die?)",
                traceback="",
            )
            return self._failed(record, attempt, reason, delivery, retry=False)

        started = attrs.evolve(
            record,
            status=JobStatus.STARTED,
            started_at=utcnow(),
            attempts=attempt,
            worker_id=self.id,
        )
        send.send_nowait(Settlement(record.id, encode_record(started)))
        logger.debug("job {} {} started (attempt {})", record.id, record.func_name, attempt)
        outcome = await execute(func, args, kwargs, timeout=record.job_timeout, limiter=limiter)
        if outcome.error is None:
            try:
                encoded = serializer.encode_value(outcome.value)
            except SerializationError as exc:
                outcome = Outcome(error=error_info(exc))
            else:
                finished = attrs.evolve(
                    started, status=JobStatus.FINISHED, ended_at=utcnow(), result=encoded
                )
                logger.debug("job {} finished", record.id)
                return Settlement(
                    record.id,
                    encode_record(finished),
                    delivery,
                    record_ttl=_record_ttl(record.result_ttl),
                )
        assert outcome.error is not None
        return self._failed(started, attempt, outcome.error, delivery, retry=True)

    def _failed(
        self,
        record: JobRecord,
        attempt: int,
        error: ErrorInfo,
        delivery: Delivery,
        *,
        retry: bool,
    ) -> Settlement:
        """Retry when the policy allows, else fail the job and dead-letter its message."""
        policy = record.retry
        if retry and policy is not None and attempt <= policy.max:
            delay = policy.delay(attempt)
            status = JobStatus.SCHEDULED if delay > 0 else JobStatus.QUEUED
            logger.info(
                "job {} failed ({}: {}); retry {}/{} in {:g} s",
                record.id,
                error.type,
                error.message,
                attempt,
                policy.max,
                delay,
            )
            waiting = attrs.evolve(record, status=status, attempts=attempt, error=error)
            return Settlement(record.id, encode_record(waiting), delivery, nak_delay=delay)
        failed = attrs.evolve(
            record, status=JobStatus.FAILED, attempts=attempt, ended_at=utcnow(), error=error
        )
        reason = f"failed after {attempt} attempt(s): {error.type}: {error.message}"
        logger.error("job {} {} {}", record.id, record.func_name, reason)
        return Settlement(
            record.id, encode_record(failed), delivery, dead_reason=reason, queue=record.queue
        )

    async def _settle_loop(self, receive: MemoryObjectReceiveStream[Settlement]) -> None:
        connection = self._connection
        assert connection is not None
        async with receive:
            async for first in receive:
                batch = [first]
                while len(batch) < _SETTLE_BATCH:
                    try:
                        batch.append(receive.receive_nowait())
                    except (anyio.WouldBlock, anyio.EndOfStream):
                        break
                try:
                    errors = await connection.call(connection.transport.settle, batch)
                except Exception as exc:  # noqa: BLE001 - logged; the jobs are redelivered
                    logger.error(
                        "could not settle {} jobs, they will be redelivered: {!r}", len(batch), exc
                    )
                    errors = [exc] * len(batch)
                for item, error in zip(batch, errors, strict=True):
                    if error is not None:
                        logger.error("could not store outcome of job {}: {!r}", item.job_id, error)
                    if item.delivery is not None:
                        self._in_flight.discard(item.delivery)

    async def _keep_alive_loop(self) -> None:
        connection = self._connection
        assert connection is not None
        while True:
            await anyio.sleep(self.ack_wait / 3)
            if not self._in_flight:
                continue
            try:
                await connection.call(connection.transport.keep_alive, list(self._in_flight))
            except Exception as exc:  # noqa: BLE001 - logged; the next beat tries again
                logger.warning("keep-alive failed: {!r}", exc)
