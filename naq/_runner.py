"""One delivered message in, one record update out: decode, guard, run, record the outcome.

The worker's loops (``_worker``) move messages and updates around; everything that decides
what happens to a single job lives here: cancellation, ttl expiry, poison messages, retries,
progress from inside the job, and the final record.
"""

from __future__ import annotations

import collections
import contextvars
import functools
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeAlias

import anyio
import attrs
from loguru import logger

from . import _tracing
from ._context import JobContext
from ._errors import ConfigurationError, SerializationError
from ._execution import execute, is_async_callable
from ._hooks import JobHooks
from ._job_threads import JobThreads, ThreadJob
from ._limits import JobLimits
from ._metrics import UNKNOWN_FUNCTION, Series, WorkerMetrics
from ._outcome import Outcome, error_info
from ._record import (
    ErrorInfo,
    JobRecord,
    JobStatus,
    decode_record,
    encode_record,
    keep_for,
)
from ._serializers import Serializer, serializer_for_record
from ._settings import DEFAULT_RESULT_TTL
from ._time import utcnow
from ._transport import (
    RECORD_HEADROOM,
    Delivery,
    ServerFire,
    Settlement,
    delivery_headers,
    server_fire,
)

__all__ = ["JobRunner", "StartedJob", "Update", "settlements"]


@attrs.define
class Update:
    """A record to store and what to do with the job's message after: a Settlement to be.

    Records are encoded only when settled, so a "started" or progress record made moot by
    the same job's outcome in the same batch is dropped without being encoded or sent.
    """

    record: JobRecord | None
    delivery: Delivery | None = None
    record_ttl: float | None = None
    nak_delay: float | None = None
    dead_reason: str | None = None
    event: str | None = None
    job_id: str = ""
    queue: str = ""
    prompt: bool = False
    """Store it without waiting for the job's outcome: the first record by which the job can
    be found (a run fired by a server schedule has no queued message of its id)."""
    waiting: bool = False
    """The job did not run: over its limit, its message goes back to wait (not a run)."""

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
            event=self.event,
        )


def settlements(batch: list[Update]) -> list[Settlement]:
    """Encode a batch, leaving out interim records superseded within it."""
    ended = {u.record.id for u in batch if u.delivery is not None and u.record is not None}
    return [
        u.settlement()
        for u in batch
        if u.delivery is not None or u.record is None or u.record.id not in ended
    ]


@attrs.define(eq=False)
class StartedJob:
    """A job past its checks, ready to run; an async job's "started" record is published."""

    delivery: Delivery
    queue: str
    record: JobRecord
    context: JobContext
    func: Callable[..., Any]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    serializer: Serializer
    is_async: bool
    announce: Callable[[], object] | None = None
    """A def job's: publishes its "started" record, called when a job thread takes it."""
    scope: anyio.CancelScope | None = None

    def cancel(self) -> None:
        # An async job is interrupted; a sync one cannot be, and sees ``cancelled`` instead.
        self.context._cancel()
        if self.is_async and self.scope is not None:
            self.scope.cancel()


class _RecentIds:
    """The last ``size`` ids seen, for membership tests."""

    def __init__(self, size: int = 10_000) -> None:
        self._order: collections.deque[str] = collections.deque(maxlen=size)
        self._set: set[str] = set()

    def add(self, item: str) -> None:
        if item in self._set:
            return
        if len(self._order) == self._order.maxlen:
            self._set.discard(self._order[0])
        self._order.append(item)
        self._set.add(item)

    def __contains__(self, item: str) -> bool:
        return item in self._set


_Began: TypeAlias = "tuple[Series, float] | None"
"""A running job's metrics series and when it began, when the worker has metrics."""

DependencyResults = Callable[[JobRecord], Awaitable[dict[str, object]]]
ClaimFiredRun = Callable[[JobRecord, ServerFire], Awaitable[JobRecord | None]]


class JobRunner:
    """Runs jobs for one worker and knows which of them are running, to cancel them."""

    def __init__(
        self,
        worker_id: str,
        serializer: Serializer,
        max_deliveries: int,
        dependency_results: DependencyResults,
        claim_fired_run: ClaimFiredRun,
        threads: JobThreads,
    ) -> None:
        self.worker_id = worker_id
        self.threads = threads
        self.serializer = serializer
        self.max_deliveries = max_deliveries
        self._dependency_results = dependency_results
        self._claim_fired_run = claim_fired_run
        self._running: dict[str, StartedJob] = {}
        self.max_payload: int | None = None
        """The server's max_payload, set once connected: larger results fail the job."""
        self._cancelled = _RecentIds()
        self.hooks: JobHooks | None = None
        """The worker's job hooks, if it has any (None costs the hot path one test)."""
        self.metrics: WorkerMetrics | None = None
        """Counts starts, outcomes and run/wait times when the worker has metrics."""
        self.limits: JobLimits | None = None
        """The worker's side of limits (``max_running``, ``rate_limit``), set once connected."""

    @property
    def running_count(self) -> int:
        return len(self._running)

    def cancel(self, job_id: str) -> None:
        """A cancel notice: stop the job if it runs here, skip it if it arrives later."""
        self._cancelled.add(job_id)
        running = self._running.get(job_id)
        if running is not None:
            running.cancel()

    async def start(
        self, delivery: Delivery, queue: str, publish: Callable[[Update], None]
    ) -> StartedJob | Update:
        """Decode and check a delivery: a job to :meth:`execute`, or its final Update now."""
        try:
            record = decode_record(delivery.data)
        except SerializationError as exc:
            logger.error("dead letter from {}: {}", queue, exc)
            if self.metrics is not None:
                self.metrics.ended(queue, UNKNOWN_FUNCTION, None, dead=True)
            return Update(
                None,
                delivery,
                dead_reason=f"undecodable message: {exc}",
                job_id=delivery.job_id or f"unknown-{uuid.uuid4().hex}",
                queue=queue,
            )
        fired = server_fire(delivery)
        if fired is not None:  # a run produced by a server schedule: give it its own job id
            try:
                claimed = await self._claim_fired_run(record, fired)
            except Exception as exc:  # noqa: BLE001 - logged; the message comes back
                logger.warning("could not claim run of schedule {}: {!r}", record.id, exc)
                return Update(None, delivery, nak_delay=1.0, job_id=record.id, queue=queue)
            if claimed is None:  # the schedule was cancelled or made its runs
                return Update(None, delivery, job_id=record.id, queue=queue)
            record = claimed
        now = utcnow()
        attempt = delivery.num_delivered
        if record.id in self._cancelled or record.status is JobStatus.CANCELED:
            why = ErrorInfo("JobCanceled", "canceled before it started", "")
            return self._canceled(record, why, delivery)
        if record.ttl is not None and (now - record.enqueued_at).total_seconds() > record.ttl:
            why = ErrorInfo("JobExpired", f"not started within its ttl of {record.ttl:g} s", "")
            return self._canceled(record, why, delivery, dead=True)
        try:
            serializer = serializer_for_record(record.serializer, self.serializer)
            func, args, kwargs = serializer.decode_call(record.func_name, record.payload)
        except (SerializationError, ConfigurationError) as exc:
            return self._failed(record, attempt, error_info(exc), delivery, retry=False)
        limits = self.limits if record.limit_key is not None else None
        if limits is not None:
            wait = await limits.admit(record)
            if wait is not None:
                return Update(
                    None, delivery, nak_delay=wait, job_id=record.id, queue=queue, waiting=True
                )
            if attempt > 1:  # waits raise num_delivered: count the runs it had instead
                attempt = await limits.runs_before(record.id) + 1
        if attempt > self.max_deliveries:
            if limits is not None:
                limits.release(record.id)
            why = ErrorInfo(
                "TooManyDeliveries",
                f"delivered {attempt} times without an outcome (did its worker die?)",
                "",
            )
            return self._failed(record, attempt, why, delivery, retry=False)

        started = record.moved_to(
            JobStatus.STARTED, now, started_at=now, attempts=attempt, worker_id=self.worker_id
        )
        is_async = is_async_callable(func)
        announce: Callable[[], object] | None = functools.partial(
            publish, Update(started, event="started", prompt=fired is not None)
        )
        if is_async:
            announce()
            announce = None
        # else a def job is "started" once a job thread takes it: a quick one's outcome then
        # reaches the settle loop with its "started" record, which is never written
        results = await self._dependency_results(record) if record.depends_on else {}
        if self.metrics is not None:
            wait = (now - record.enqueued_at).total_seconds() if attempt == 1 else None
            self.metrics.started(record.queue, record.func_name, wait)
        context = JobContext(
            started,
            lambda r: publish(Update(r, event="progress")),
            results,
            self.threads.call_in_loop,
            is_async=is_async,
        )
        return StartedJob(
            delivery, queue, record, context, func, args, kwargs, serializer, is_async, announce
        )

    async def execute(self, job: StartedJob, scope: anyio.CancelScope) -> Update:
        """Run the job's function and return its outcome as an Update.

        ``scope`` is the caller's, entered around this call: a cancel notice for this job
        cancels it, and the Cancelled exception propagates out of here. The caller then
        records the job with :meth:`interrupted` (one scope per runner task, renewed after a
        cancel, costs less than a scope per job). With tracing on, the run is a consumer span.
        """
        try:
            tracing = _tracing.tracing()
            if tracing is None:
                return await self._execute(job, scope)
            record, delivery = job.record, job.delivery
            with tracing.running(
                delivery_headers(delivery),
                record.queue,
                record.id,
                record.func_name,
                job.context.record.attempts,
            ) as span:
                update = await self._execute(job, scope)
                ended = update.record
                tracing.ended(span, update.event, ended.error if ended is not None else None)
            return update
        finally:
            self._release_limit(job)

    async def _execute(self, job: StartedJob, scope: anyio.CancelScope) -> Update:
        if job.record.id in self._cancelled:  # the notice came while it waited to start
            return self._canceled_before_start(job)
        job.scope = scope
        began = self._began(job)
        try:
            token = job.context.activate()
            try:
                hooks = self.hooks  # their run is execute() with the hooks around the function
                run = execute if hooks is None else functools.partial(hooks.run, job.context)
                outcome = await run(
                    job.func,
                    job.args,
                    job.kwargs,
                    is_async=job.is_async,
                    timeout=job.record.job_timeout,
                    threads=self.threads,
                    on_start=job.announce,
                )
            finally:
                job.context.deactivate(token)
        finally:
            self._stopped(job, began)
        return self._outcome_update(job, outcome)

    def can_submit(self, job: StartedJob) -> bool:
        """Whether ``job`` can run through :meth:`submit`: a ``def`` job with no timeout, and
        neither job hooks nor tracing to wrap around its run."""
        return (
            not job.is_async
            and job.record.job_timeout is None
            and self.hooks is None
            and _tracing.tracing() is None
        )

    def submit(self, job: StartedJob, done: Callable[[Update], None]) -> ThreadJob | None:
        """Start a :meth:`can_submit` job in a job thread without waiting for it.

        ``done(update)`` is called on the event loop with its outcome, as :meth:`execute`
        would return it; at once when it was cancelled before it started (then None is
        returned). Otherwise the ThreadJob is returned, for :meth:`abandon`.
        """
        if job.record.id in self._cancelled:
            done(self._canceled_before_start(job))
            self._release_limit(job)
            return None
        began = self._began(job)
        token = job.context.activate()
        try:
            context = contextvars.copy_context()
        finally:
            job.context.deactivate(token)

        def finished(thread_job: ThreadJob) -> None:
            self._stopped(job, began)
            assert thread_job.outcome is not None
            update = self._outcome_update(job, thread_job.outcome)
            self._release_limit(job)
            done(update)

        thread_job = ThreadJob(job.func, job.args, job.kwargs, context, job.announce)
        self.threads.submit(thread_job, finished)
        return thread_job

    def abandon(self, job: StartedJob, thread_job: ThreadJob) -> None:
        """Give up on a submitted job (the worker is cancelled): its outcome is dropped."""
        self.threads.abandon(thread_job)
        self._running.pop(job.record.id, None)
        self._release_limit(job)

    def _release_limit(self, job: StartedJob) -> None:
        if self.limits is not None and job.record.max_running is not None:
            self.limits.release(job.record.id)

    def _canceled_before_start(self, job: StartedJob) -> Update:
        why = ErrorInfo("JobCanceled", "canceled before it started", "")
        return self._canceled(job.context.record, why, job.delivery)

    def _began(self, job: StartedJob) -> _Began:
        """The job runs: cancel notices find it, and the metrics (if any) count it."""
        self._running[job.record.id] = job
        if self.metrics is None:
            return None
        series = self.metrics.series(job.record.queue, job.record.func_name)
        series.in_progress += 1
        return series, time.perf_counter()

    def _stopped(self, job: StartedJob, began: _Began) -> None:
        """The job's function returned."""
        del self._running[job.record.id]
        if began is not None:
            series, at = began
            series.in_progress -= 1
            series.run.observe(time.perf_counter() - at)

    def _outcome_update(self, job: StartedJob, outcome: Outcome) -> Update:
        """The Update a run's outcome makes: finished, retried, failed, or canceled."""
        record = job.record
        current = job.context.record
        if job.context.cancelled:
            return self.interrupted(job)
        if outcome.error is None:
            try:
                encoded = job.serializer.encode_value(outcome.value)
                self._check_fits(job.delivery, encoded)
            except SerializationError as exc:
                outcome = Outcome(error=error_info(exc))
            else:
                ended = utcnow()
                finished = current.moved_to(
                    JobStatus.FINISHED, ended, ended_at=ended, result=encoded
                )
                ttl = keep_for(record.result_ttl, DEFAULT_RESULT_TTL)
                if self.metrics is not None:
                    self.metrics.ended(record.queue, record.func_name, "finished", dead=False)
                return Update(finished, job.delivery, record_ttl=ttl, event="finished")
        assert outcome.error is not None
        return self._failed(current, current.attempts, outcome.error, job.delivery, retry=True)

    def interrupted(self, job: StartedJob) -> Update:
        """The Update of a job cancelled while it ran."""
        self._release_limit(job)
        why = ErrorInfo("JobCanceled", "canceled while it ran", "")
        return self._canceled(job.context.record, why, job.delivery)

    def _check_fits(self, delivery: Delivery, result: object) -> None:
        """Refuse a result whose record the server could never store.

        Unstored, the message would not be acked and the job would run again and again.
        """
        if self.max_payload is None:
            return
        size = len(result) if isinstance(result, str) else len(json.dumps(result))
        if len(delivery.data) + size + RECORD_HEADROOM > self.max_payload:
            raise SerializationError(
                f"the result is {size} bytes encoded: with the job's record it exceeds the "
                f"server's max_payload of {self.max_payload} bytes"
            )

    def _canceled(
        self, record: JobRecord, why: ErrorInfo, delivery: Delivery, *, dead: bool = False
    ) -> Update:
        now = utcnow()
        canceled = record.moved_to(JobStatus.CANCELED, now, ended_at=now, error=why)
        if self.metrics is not None:
            self.metrics.ended(record.queue, record.func_name, "canceled", dead=dead)
        return Update(
            canceled,
            delivery,
            record_ttl=keep_for(record.failure_ttl, None),
            dead_reason=f"{why.type}: {why.message}" if dead else None,
            event="canceled",
        )

    def _failed(
        self,
        record: JobRecord,
        attempt: int,
        error: ErrorInfo,
        delivery: Delivery,
        *,
        retry: bool,
    ) -> Update:
        """Retry when the policy allows, else fail the job and dead-letter its message."""
        policy = record.retry
        now = utcnow()
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
            waiting = record.moved_to(status, now, attempts=attempt, error=error)
            if self.metrics is not None:
                self.metrics.ended(record.queue, record.func_name, "retrying", dead=False)
            return Update(waiting, delivery, nak_delay=delay, event="retrying")
        failed = record.moved_to(JobStatus.FAILED, now, attempts=attempt, ended_at=now, error=error)
        reason = f"failed after {attempt} attempt(s): {error.type}: {error.message}"
        logger.error("job {} {} {}", record.id, record.func_name, reason)
        if self.metrics is not None:
            self.metrics.ended(record.queue, record.func_name, "failed", dead=True)
        return Update(
            failed,
            delivery,
            record_ttl=keep_for(record.failure_ttl, None),
            dead_reason=reason,
            event="failed",
        )
