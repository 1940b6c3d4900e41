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
from anyio.abc import TaskStatus
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from loguru import logger

from ._connection import Connection
from ._dispatch import DispatchQueue
from ._errors import ConfigurationError, SerializationError
from ._execution import Outcome, error_info, execute
from ._heartbeat import WorkerStats, heartbeat_loop
from ._record import ErrorInfo, JobRecord, JobStatus, decode_record, encode_record
from ._serializers import Serializer, get_serializer, serializer_for_record
from ._settings import DEFAULT_RESULT_TTL, ConnectOptions, resolve_connect_options
from ._time import utcnow
from ._transport import Delivery, Settlement, check_queue_name

__all__ = ["Worker"]

_SETTLE_BATCH = 512


@attrs.frozen
class _Update:
    """A record to store and what to do with the job's message after: a Settlement to be.

    Records are encoded only when settled, so a "started" record made moot by the same
    job's outcome in the same batch is dropped without ever being encoded or sent.
    """

    record: JobRecord | None
    delivery: Delivery | None = None
    record_ttl: float | None = None
    nak_delay: float | None = None
    dead_reason: str | None = None
    job_id: str = ""
    queue: str = ""

    def settlement(self) -> Settlement:
        record = self.record
        return Settlement(
            record.id if record is not None else self.job_id,
            encode_record(record) if record is not None else None,
            self.delivery,
            record_ttl=self.record_ttl,
            nak_delay=self.nak_delay,
            dead_reason=self.dead_reason,
            queue=record.queue if record is not None else self.queue,
        )


def _settlements(batch: list[_Update]) -> list[Settlement]:
    """Encode a batch, leaving out "started" records superseded within it."""
    ended = {u.record.id for u in batch if u.delivery is not None and u.record is not None}
    return [
        u.settlement()
        for u in batch
        if u.delivery is not None or u.record is None or u.record.id not in ended
    ]


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
    ``connect_options`` (servers, credentials, TLS) defaults to the ``NAQ_*`` environment,
    with ``url`` replacing its servers. Every ``heartbeat_interval`` seconds the worker
    publishes its state and counters (``stats``) for ``naq list-workers``.
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
        connect_options: ConnectOptions | None = None,
        heartbeat_interval: float = 5.0,
    ) -> None:
        if isinstance(queues, str):
            queues = [queues]
        if not queues:
            raise ConfigurationError("a worker needs at least one queue")
        if concurrency < 1:
            raise ConfigurationError(f"concurrency must be >= 1, got {concurrency}")
        if ack_wait < 1:
            raise ConfigurationError(f"ack_wait must be >= 1 second, got {ack_wait}")
        if heartbeat_interval <= 0:
            raise ConfigurationError(f"heartbeat_interval must be > 0, got {heartbeat_interval}")
        self.queues = [check_queue_name(q) for q in queues]
        self.connect_options = resolve_connect_options(url, connect_options)
        self.url = self.connect_options.url
        self.concurrency = concurrency
        self.serializer = get_serializer(serializer)
        self.ack_wait = float(ack_wait)
        self.max_deliveries = max_deliveries
        self.poll_interval = poll_interval
        self.id = name or f"{socket.gethostname()}.{os.getpid()}.{uuid.uuid4().hex[:6]}"
        self.heartbeat_interval = float(heartbeat_interval)
        self.stats = WorkerStats()
        self._jobs_scope: anyio.CancelScope | None = None
        self._grace: float | None = None
        self._in_flight: set[Delivery] = set()
        self._idle_waits: set[anyio.CancelScope] = set()
        self._stop_requested = False
        self._connection: Connection | None = None

    def stop(self, grace: float | None = None) -> None:
        """Stop fetching; jobs already running finish and are settled, then ``run`` returns.

        An open pull request runs out first (within ``poll_interval``) and the jobs it
        brings run too, so no delivered message is left waiting for its ack wait. With
        ``grace``, jobs still running ``grace`` seconds from now are cancelled and their
        messages handed back for immediate redelivery to another worker. Call it from the
        worker's own event loop thread.
        """
        self._stop_requested = True
        for scope in list(self._idle_waits):
            scope.cancel()
        if grace is not None:
            self._grace = grace if self._grace is None else min(self._grace, grace)
            if self._jobs_scope is not None:
                self._set_grace_deadline(self._jobs_scope)

    def _set_grace_deadline(self, scope: anyio.CancelScope) -> None:
        assert self._grace is not None
        scope.deadline = min(scope.deadline, anyio.current_time() + self._grace)

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Process jobs until :meth:`stop` is called or the task is cancelled.

        Calls ``task_status.started()`` once connected and consuming. On cancellation the
        messages of unfinished jobs are handed back for immediate redelivery.
        """
        connection = Connection(self.connect_options, self.serializer)
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
                    logger.info("handing back {} unfinished job(s)", len(self._in_flight))
                    await connection.call(connection.transport.hand_back, list(self._in_flight))
                    self._in_flight.clear()
                await connection.close()
            logger.info("worker {} stopped", self.id)

    async def _serve(self, task_status: TaskStatus[None]) -> None:
        send, receive = anyio.create_memory_object_stream[_Update](math.inf)
        slots = anyio.Semaphore(self.concurrency)
        limiter = anyio.CapacityLimiter(self.concurrency)
        async with anyio.create_task_group() as service:
            service.start_soon(self._keep_alive_loop)
            await service.start(self._heartbeat)
            async with anyio.create_task_group() as core:
                core.start_soon(self._settle_loop, receive)
                # Exits in reverse: fetch loops end and close ``dispatch``, runners finish
                # their jobs, then ``send`` closes and the settle loop drains what is left.
                dispatch = DispatchQueue[tuple[Delivery, str]]()
                async with send, anyio.create_task_group() as runners:
                    self._jobs_scope = runners.cancel_scope  # its deadline is the grace
                    if self._grace is not None:
                        self._set_grace_deadline(runners.cancel_scope)
                    for _ in range(self.concurrency):
                        runners.start_soon(self._runner, dispatch, slots, limiter, send)
                    try:
                        async with anyio.create_task_group() as fetchers:
                            for queue in self.queues:
                                fetchers.start_soon(self._fetch_loop, queue, slots, dispatch)
                            task_status.started()
                    finally:
                        dispatch.close()
            service.cancel_scope.cancel()

    async def _fetch_loop(
        self,
        queue: str,
        slots: anyio.Semaphore,
        dispatch: DispatchQueue[tuple[Delivery, str]],
    ) -> None:
        """Keep a slot for every message asked for; start each job as its message arrives.

        ``reserved`` counts slots held for messages the open pull request may still bring.
        A stop lets that request run out (within ``poll_interval``) and runs what it brings,
        so no delivered message is left waiting for its ack wait.
        """
        connection = self._connection
        assert connection is not None
        reserved = 0
        while True:
            if reserved == 0:
                if self._stop_requested or not await self._wait_for_slot(slots):
                    return
                reserved = 1
            while not self._stop_requested and reserved < self.concurrency and slots.value > 0:
                slots.acquire_nowait()
                reserved += 1
            try:
                deliveries, owed = await connection.call(
                    connection.transport.fetch, queue, reserved, self.poll_interval
                )
            except Exception as exc:  # noqa: BLE001 - logged; nats-py reconnects by itself
                logger.warning("fetch from {} failed, retrying: {!r}", queue, exc)
                deliveries, owed = [], 0
                await anyio.sleep(self.poll_interval)  # back off while NATS reconnects
            reserved -= len(deliveries)
            for delivery in deliveries:
                self._in_flight.add(delivery)
                dispatch.put((delivery, queue))
            for _ in range(reserved - owed):
                slots.release()
            reserved = min(reserved, owed)

    async def _wait_for_slot(self, slots: anyio.Semaphore) -> bool:
        """Take one slot; False when :meth:`stop` interrupted the wait."""
        with anyio.CancelScope() as scope:
            self._idle_waits.add(scope)
            try:
                await slots.acquire()
                return True
            finally:
                self._idle_waits.discard(scope)
        return False

    async def _runner(
        self,
        dispatch: DispatchQueue[tuple[Delivery, str]],
        slots: anyio.Semaphore,
        limiter: anyio.CapacityLimiter,
        send: MemoryObjectSendStream[_Update],
    ) -> None:
        """One of ``concurrency`` long-lived tasks that run jobs (cheaper than a task each)."""
        while True:
            try:
                delivery, queue = await dispatch.get()
            except anyio.EndOfStream:
                return
            self.stats.running += 1
            try:
                update = await self._run(delivery, queue, limiter, send)
            finally:
                slots.release()
                self.stats.running -= 1
            self.stats.job_ended(queue, ok=update.nak_delay is None and update.dead_reason is None)
            send.send_nowait(update)

    async def _run(
        self,
        delivery: Delivery,
        queue: str,
        limiter: anyio.CapacityLimiter,
        send: MemoryObjectSendStream[_Update],
    ) -> _Update:
        try:
            record = decode_record(delivery.data)
        except SerializationError as exc:
            logger.error("dead letter from {}: {}", queue, exc)
            return _Update(
                None,
                delivery,
                dead_reason=f"undecodable message: {exc}",
                job_id=delivery.job_id or "unknown",
                queue=queue,
            )
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
        send.send_nowait(_Update(started))
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
                return _Update(finished, delivery, record_ttl=_record_ttl(record.result_ttl))
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
    ) -> _Update:
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
            return _Update(waiting, delivery, nak_delay=delay)
        failed = attrs.evolve(
            record, status=JobStatus.FAILED, attempts=attempt, ended_at=utcnow(), error=error
        )
        reason = f"failed after {attempt} attempt(s): {error.type}: {error.message}"
        logger.error("job {} {} {}", record.id, record.func_name, reason)
        return _Update(failed, delivery, dead_reason=reason)

    async def _settle_loop(self, receive: MemoryObjectReceiveStream[_Update]) -> None:
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
                settlements = _settlements(batch)
                try:
                    errors = await connection.call(connection.transport.settle, settlements)
                except Exception as exc:  # noqa: BLE001 - logged; the jobs are redelivered
                    logger.error(
                        "could not settle {} jobs, they will be redelivered: {!r}", len(batch), exc
                    )
                    errors = [exc] * len(settlements)
                for item, error in zip(settlements, errors, strict=True):
                    if error is not None:
                        logger.error("could not store outcome of job {}: {!r}", item.job_id, error)
                    if item.delivery is not None:
                        self._in_flight.discard(item.delivery)

    async def _heartbeat(self, *, task_status: TaskStatus[None]) -> None:
        """Publish this worker's state for ``naq list-workers`` (the first beat before start)."""
        assert self._connection is not None
        await heartbeat_loop(
            self._connection,
            worker_id=self.id,
            queues=self.queues,
            concurrency=self.concurrency,
            interval=self.heartbeat_interval,
            stats=self.stats,
            stopping=lambda: self._stop_requested,
            task_status=task_status,
        )

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
