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
import time
import uuid
from collections.abc import Sequence

import anyio
import anyio.lowlevel
from anyio.abc import TaskStatus
from loguru import logger

from ._connection import Connection
from ._dispatch import BatchQueue, DispatchQueue
from ._errors import ConfigurationError
from ._heartbeat import WorkerStats, heartbeat_loop
from ._history import HISTORY_INTERVAL, history_loop
from ._hooks import JobHooks, WorkerHooks, combine_hooks, run_shutdown, run_startup
from ._job_threads import JobThreads, ThreadJob
from ._lifecycle import dependency_results, jobs_ended
from ._limits import JobLimits
from ._metrics import WorkerMetrics
from ._processes._memory import check_memory_limit, rss_mib
from ._record import JobRecord
from ._runner import JobRunner, StartedJob, Update, settlements
from ._schedules import claim_fired_run
from ._serializers import Serializer, worker_serializer
from ._settings import (
    ConnectOptions,
    default_replicas,
    default_sync_threads,
    resolve_connect_options,
)
from ._slots import Slots
from ._transport import Delivery, Settlement, check_queue_name, names, transient_settle_error

__all__ = ["Worker"]

_SETTLE_BATCH = 512
_INTERIM_GRACE = 0.005
"""Seconds a batch of interim records waits for an outcome that would make them moot: a
job that ends within it never has its "started" record written (one publish fewer, and its
outcome is not queued behind that publish); a longer one's shows this much later."""
SETTLE_RETRY_PAUSES = (0.1, 2.0)
"""Seconds between tries to store outcomes that failed for a passing reason (a leader
election, a restart): the first pause, doubling up to the second."""
SETTLE_RETRY_FOR = 60.0
"""Seconds a batch's outcomes are tried again before their messages are left to be
redelivered; meanwhile the keep-alive loop keeps those messages from being redelivered."""
SLOW_SETTLE = 0.05
"""Seconds a settle call may take before the fetch loop stops taking jobs while
``concurrency`` ended ones wait to be settled (see ``Worker._settling_slowly``)."""
ASK_EXPIRY = 0.05
"""Seconds a lane's request for jobs it holds slots for stays open: a busy lane's request is
answered at once, and one that ran dry gives its slots back this soon (then it rings, for
up to ``poll_interval``, holding none) instead of keeping them from the other lanes."""
MEMORY_CHECK_INTERVAL = 0.1
"""Seconds between RSS reads for ``max_memory_mib`` (read when a job ends, at most this often)."""


class Worker:
    """Runs jobs from one or more queues on the current backend (asyncio or Trio).

    Async job functions run as tasks on the worker's own event loop; sync (``def``) ones
    run in at most ``sync_threads`` long-lived job threads (default: ``concurrency``, else
    env ``NAQ_SYNC_THREADS``); at most ``concurrency`` jobs run at a time in all.
    ``ack_wait`` is how long the server waits before redelivering the job of a silent
    worker: running jobs are kept alive well within it. A message delivered more than
    ``max_deliveries`` times without an outcome (a job that keeps killing its worker) is
    dead-lettered. ``poll_interval``
    bounds each idle fetch, and so how long :meth:`stop` takes when there is no work.
    ``connect_options`` (servers, credentials, TLS) defaults to the ``NAQ_*`` environment,
    with ``url`` replacing its servers. Every ``heartbeat_interval`` seconds the worker
    publishes its state and counters (``stats``) for ``naq list-workers``; every
    ``history_interval`` seconds while its jobs end, the runs that ended (and failed) per
    queue, for ``Admin.throughput_history`` (and once more when it stops).
    ``signing_key`` (else env ``NAQ_SIGNING_KEY``) makes the worker refuse pickled jobs not
    signed with it; ``allowed_modules`` limits where functions named in JSON records come
    from (default: the modules in the directory it was started from, see ``_allowlist``);
    ``replicas`` (else env ``NAQ_REPLICAS``) is used when it creates naq's streams.
    With ``burst=True`` the worker runs what is queued, including jobs that become due or
    are released by the ones it runs, and returns once its queues and itself are idle.
    ``hooks`` (a :class:`naq.WorkerHooks`, or several, nested in order) run at startup and
    shutdown and around every job.
    ``max_jobs`` and ``max_memory_mib`` make the worker stop taking jobs once it took that
    many jobs, or once its RSS, read when a job ends, is over that many MiB (Linux): it
    finishes the running ones and ``run`` returns, as a burst ends, with ``limit_reached``
    saying why (``naq worker --max-jobs-per-child`` then replaces the process). ``parent``
    is the pid of the process supervising this worker, shown by ``naq list-workers``.
    ``metrics`` (a :class:`naq.WorkerMetrics`) counts its jobs for Prometheus.
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
        burst: bool = False,
        connect_options: ConnectOptions | None = None,
        heartbeat_interval: float = 5.0,
        history_interval: float = HISTORY_INTERVAL,
        signing_key: str | bytes | None = None,
        allowed_modules: Sequence[str] | None = None,
        replicas: int | None = None,
        sync_threads: int | None = None,
        hooks: WorkerHooks | Sequence[WorkerHooks] | None = None,
        max_jobs: int | None = None,
        max_memory_mib: float | None = None,
        parent: int | None = None,
        metrics: WorkerMetrics | None = None,
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
        if history_interval <= 0:
            raise ConfigurationError(f"history_interval must be > 0, got {history_interval}")
        if max_jobs is not None and (isinstance(max_jobs, bool) or max_jobs < 1):
            raise ConfigurationError(f"max_jobs must be >= 1, got {max_jobs!r}")
        self.max_memory_mib = check_memory_limit(max_memory_mib)
        self.max_jobs = max_jobs
        self.parent = parent
        self.metrics = metrics
        self.limit_reached: str | None = None
        """Why the worker stopped taking jobs, when ``max_jobs`` or ``max_memory_mib`` did it."""
        self._job_budget = max_jobs  # jobs it may still fetch (None: no limit)
        self._budget_held = 0  # units of it taken for asks still open (spent or given back)
        self._budget_back: anyio.Event | None = None  # set when units come back
        self._memory_checked = -math.inf
        self.sync_threads = default_sync_threads(sync_threads, concurrency)
        self.queues = [check_queue_name(q) for q in queues]
        self.connect_options = resolve_connect_options(url, connect_options)
        self.url = self.connect_options.url
        self.concurrency = concurrency
        self.serializer = worker_serializer(serializer, signing_key, allowed_modules)
        self.replicas = default_replicas(replicas)
        self.ack_wait = float(ack_wait)
        self.max_deliveries = max_deliveries
        self.poll_interval = poll_interval
        self._ask_expiry = min(poll_interval, ASK_EXPIRY)
        self.burst = burst
        self.processed = 0
        self.id = name or f"{socket.gethostname()}.{os.getpid()}.{uuid.uuid4().hex[:6]}"
        self.heartbeat_interval = float(heartbeat_interval)
        self.history_interval = float(history_interval)
        self.stats = WorkerStats()
        self.hooks = combine_hooks(hooks)
        self._jobs_scope: anyio.CancelScope | None = None
        self._grace: float | None = None
        self._in_flight: set[Delivery] = set()
        self._submitted: dict[StartedJob, ThreadJob] = {}
        """``def`` jobs running in job threads that no runner waits for (``_submit``)."""
        self._submitted_idle: anyio.Event | None = None
        self._unsettled = 0  # jobs ended whose outcome the settle loop has yet to store and ack
        self._settled_some: anyio.Event | None = None  # the fetch loop waits for settling
        self._settling_since: float | None = None  # when the settle call under way began
        self._idle_waits: set[anyio.CancelScope] = set()
        self._borrowed = 0  # jobs delivered to a lane that asked without a slot (see _ring)
        self._updates: BatchQueue[Update] | None = None  # to the settle loop, while serving
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
        hooks = self.hooks
        if hooks is None:
            await self._run(task_status)
            return
        await run_startup(hooks, self)  # raises before anything connects
        try:
            await self._run(task_status)
        finally:
            await run_shutdown(hooks, self)

    async def _run(self, task_status: TaskStatus[None]) -> None:
        connection = Connection(self.connect_options, self.serializer, replicas=self.replicas)
        await connection.open()
        self._connection = connection
        threads = JobThreads(self.sync_threads)
        self._jobs = JobRunner(
            self.id,
            self.serializer,
            self.max_deliveries,
            lambda record: dependency_results(connection, record),
            lambda record, fired: claim_fired_run(connection, record, fired),
            threads,
        )
        self._jobs.max_payload = connection.transport.max_payload
        self._jobs.metrics = self.metrics
        if self.hooks is not None and self.hooks.has_job_hooks:
            self._jobs.hooks = JobHooks(self.hooks)
        try:
            for lane in self._lanes():
                await connection.call(connection.transport.ensure_consumer, lane, self.ack_wait)
            logger.info("worker {} consuming {} from {}", self.id, self.queues, self.url)
            await self._serve(task_status)
        finally:
            threads.close()
            with anyio.CancelScope(shield=True), anyio.move_on_after(10):
                if self._in_flight:
                    logger.info("handing back {} unfinished job(s)", len(self._in_flight))
                    await connection.call(connection.transport.hand_back, list(self._in_flight))
                    self._in_flight.clear()
                await connection.close()
            logger.info("worker {} stopped", self.id)

    async def _serve(self, task_status: TaskStatus[None]) -> None:
        updates = BatchQueue[Update]()
        self._updates = updates
        slots = Slots(self.concurrency)
        async with anyio.create_task_group() as service:
            service.start_soon(self._keep_alive_loop)
            service.start_soon(self._cancel_notice_loop)
            await service.start(self._heartbeat)
            await service.start(self._history)
            assert self._connection is not None
            limits = JobLimits(self._connection, self.id, self.ack_wait)
            await service.start(limits.run)
            self._jobs.limits = limits
            async with anyio.create_task_group() as core:
                core.start_soon(self._settle_loop, updates)
                # Exits in reverse: fetch loops end and close ``dispatch``, runners finish
                # their jobs, then ``updates`` closes and the settle loop drains what is left.
                dispatch = DispatchQueue[tuple[Delivery, str]]()
                async with updates, anyio.create_task_group() as runners:
                    self._jobs_scope = runners.cancel_scope  # its deadline is the grace
                    if self._grace is not None:
                        self._set_grace_deadline(runners.cancel_scope)
                    for _ in range(self.concurrency):
                        runners.start_soon(self._run_jobs, dispatch, slots, updates)
                    try:
                        async with anyio.create_task_group() as fetchers:
                            for lane in self._lanes():
                                fetchers.start_soon(self._fetch_loop, lane, slots, dispatch)
                            task_status.started()
                    finally:
                        dispatch.close()
            service.cancel_scope.cancel()

    def _lanes(self) -> list[str]:
        """What the worker consumes: each queue's lanes, one per priority."""
        return [lane for queue in self.queues for lane in names.lanes(queue)]

    async def _fetch_loop(
        self, lane: str, slots: Slots, dispatch: DispatchQueue[tuple[Delivery, str]]
    ) -> None:
        """Keep a slot for every message asked for; start each job as its message arrives.

        ``reserved`` counts slots held for messages the open pull request may still bring.
        A stop lets that request run out (within ``ASK_EXPIRY``, or ``poll_interval`` for a
        bell) and runs what it brings, so no delivered message is left waiting for its ack
        wait.

        Lanes take turns for slots by priority (``Slots``). A lane that found nothing in
        its last request (or has not asked yet) holds no slot while it waits for work: it
        rings (``_ring``), so an idle lane never keeps slots from a busy one, and takes
        slots again once its bell brings a job.
        """
        queue, priority = names.lane_priority(lane)
        ringing = True  # until the lane shows it has jobs
        reserved = 0
        while True:
            if ringing:
                await anyio.lowlevel.checkpoint()  # a stop called meanwhile is seen first
                if self._stop_requested:
                    return
                ringing = not await self._ring(lane, queue, slots, dispatch)
                if self.burst and ringing and not self._in_flight:
                    return  # burst: this lane is empty and nothing runs that could add to it
                continue
            if reserved == 0:
                await self._jobs_left()
                if self._stop_requested or not await self._wait_for_slot(slots, priority):
                    return
                if self._stop_requested or self._job_budget == 0:
                    self._free_slot(slots)  # stopped (or another lane took the last job)
                    continue
                self._take_budget()
                reserved = 1
            while (
                not self._stop_requested
                and reserved < self.concurrency
                and slots.value > 0
                and self._job_budget != 0
            ):
                slots.acquire_nowait()
                self._take_budget()
                reserved += 1
            if self._unsettled >= self.concurrency and self._settling_slowly():
                await self._wait_for_settling()
            deliveries, owed = await self._ask(lane, reserved, self._ask_expiry)
            reserved -= len(deliveries)
            self._spend_budget(len(deliveries))
            self._hand_out(deliveries, queue, dispatch)
            for _ in range(reserved - owed):
                self._free_slot(slots)
            self._give_back_budget(reserved - owed)  # asked for, not delivered
            reserved = min(reserved, owed)
            if not deliveries and not owed:
                if self.burst and not self._in_flight:
                    return  # burst: this lane is empty and nothing runs that could add to it
                ringing = True

    async def _ring(
        self,
        lane: str,
        queue: str,
        slots: Slots,
        dispatch: DispatchQueue[tuple[Delivery, str]],
    ) -> bool:
        """Ask an idle lane for one job without holding a slot; whether one came.

        The job takes a free slot if there is one; else it is borrowed (``_borrowed``): it
        waits for a runner, and the next slot freed is its own. At most one job per lane is
        borrowed, since a lane rings again only after it took slots and found nothing. A
        bell holds no unit of ``max_jobs``: its job spends one when it comes, or, when none
        is left, goes back to its queue unrun.
        """
        if not await self._jobs_left():
            return False
        deliveries, _ = await self._ask(lane, 1, self.poll_interval)
        if not deliveries:
            return False
        if self._job_budget is not None:
            if self._job_budget == 0:  # other lanes took the rest of max_jobs meanwhile
                for delivery in deliveries:
                    self._hand_back_unrun(delivery, queue)
                return False
            self._job_budget -= len(deliveries)
        if slots.value > 0:
            slots.acquire_nowait()
        else:
            self._borrowed += 1
        self._hand_out(deliveries, queue, dispatch)
        return True

    async def _ask(self, lane: str, want: int, expiry: float) -> tuple[list[Delivery], int]:
        """Up to ``want`` of the lane's jobs as they come, and how many more its request may
        bring; none after a failure (logged), once ``poll_interval`` has passed."""
        connection = self._connection
        assert connection is not None
        try:
            return await connection.call(connection.transport.fetch, lane, want, expiry)
        except Exception as exc:  # noqa: BLE001 - logged; nats-py reconnects by itself
            logger.warning("fetch from {} failed, retrying: {!r}", lane, exc)
            await anyio.sleep(self.poll_interval)  # back off while NATS reconnects
            return [], 0

    def _hand_out(
        self,
        deliveries: list[Delivery],
        queue: str,
        dispatch: DispatchQueue[tuple[Delivery, str]],
    ) -> None:
        """Start the delivered jobs: in flight until settled, queued for the runners."""
        for delivery in deliveries:
            self._in_flight.add(delivery)
            dispatch.put((delivery, queue))

    def _hand_back_unrun(self, delivery: Delivery, queue: str) -> None:
        """Send a job back to its queue at once, not run and not counted as an attempt."""
        assert self._updates is not None
        self._in_flight.add(delivery)
        update = Update(
            None, delivery, nak_delay=0.0, job_id=delivery.job_id, queue=queue, waiting=True
        )
        self._job_ended(queue, update, self._updates)

    def _free_slot(self, slots: Slots) -> None:
        """A slot is free: it pays for a borrowed job first, else it goes back to ``slots``."""
        if self._borrowed:
            self._borrowed -= 1
        else:
            slots.release()

    def _settling_slowly(self) -> bool:
        """Whether ended jobs pile up: a settle batch's worth wait, or the settle call under
        way has taken over ``SLOW_SETTLE`` s (a healthy one takes a few ms)."""
        if self._unsettled >= _SETTLE_BATCH:
            return True
        since = self._settling_since
        return since is not None and anyio.current_time() - since > SLOW_SETTLE

    async def _wait_for_settling(self) -> None:
        """Back-pressure: no new jobs while ``concurrency`` ended ones wait to be settled
        and settling is slow (``_settling_slowly``).

        A settle loop that cannot store outcomes or ack (a failover, a restart) would
        otherwise let ended but unacknowledged jobs pile up, and each one of them runs again
        if its ack is lost. Healthy, the fetch loop does not wait for it: quick jobs end
        faster than a settle round trip.
        """
        while self._unsettled >= self.concurrency:
            if self._settled_some is None:
                self._settled_some = anyio.Event()
            await self._settled_some.wait()

    def _take_budget(self) -> None:
        """One job of ``max_jobs`` for an ask: spent if a job comes, else given back."""
        if self._job_budget is not None:
            self._job_budget -= 1
            self._budget_held += 1

    def _spend_budget(self, jobs: int) -> None:
        if self._job_budget is not None:
            self._budget_held -= jobs

    def _give_back_budget(self, jobs: int) -> None:
        if self._job_budget is not None and jobs:
            self._job_budget += jobs
            self._budget_held -= jobs
            if self._budget_back is not None:
                self._budget_back.set()
                self._budget_back = None

    async def _jobs_left(self) -> bool:
        """Whether ``max_jobs`` leaves a job to ask for; all spent, the worker stops."""
        if self._job_budget == 0 and await self._budget_spent():
            self._reach_limit(f"took {self.max_jobs} job(s) (max_jobs)")
            return False
        return True

    async def _budget_spent(self) -> bool:
        """With none of ``max_jobs`` left: whether it is all spent, once the asks still open
        (other lanes') have brought their jobs or given their units back."""
        while self._job_budget == 0 and self._budget_held:
            if self._budget_back is None:
                self._budget_back = anyio.Event()
            await self._budget_back.wait()
        return self._job_budget == 0

    def _reach_limit(self, reason: str) -> None:
        """Stop taking jobs because of ``max_jobs``/``max_memory_mib``; running ones finish."""
        if self.limit_reached is None:
            self.limit_reached = reason
            logger.info("worker {} stops taking jobs: {}; running jobs finish", self.id, reason)
        self.stop()

    def _check_memory(self, limit: float) -> None:
        now = time.monotonic()
        if now - self._memory_checked < MEMORY_CHECK_INTERVAL:
            return
        self._memory_checked = now
        rss = rss_mib()
        if rss > limit:
            self._reach_limit(f"RSS {rss:.0f} MiB is over {limit:g} MiB (max_memory_mib)")

    async def _wait_for_slot(self, slots: Slots, priority: int) -> bool:
        """Take one slot; False when :meth:`stop` interrupted the wait."""
        with anyio.CancelScope() as scope:
            self._idle_waits.add(scope)
            try:
                await slots.acquire(priority)
                return True
            finally:
                self._idle_waits.discard(scope)
        return False

    async def _run_jobs(
        self,
        dispatch: DispatchQueue[tuple[Delivery, str]],
        slots: Slots,
        updates: BatchQueue[Update],
    ) -> None:
        """One of ``concurrency`` long-lived tasks that run jobs (cheaper than a task each).

        Its jobs run under one cancel scope, which a cancel notice for the running job
        cancels; a new scope is made only after that.
        """
        try:
            await self._take_jobs(dispatch, slots, updates)
        except BaseException:
            self._abandon_submitted()  # cancelled: the grace ran out, or the worker's task
            raise

    async def _take_jobs(
        self,
        dispatch: DispatchQueue[tuple[Delivery, str]],
        slots: Slots,
        updates: BatchQueue[Update],
    ) -> None:
        while True:
            job: StartedJob | None = None
            with anyio.CancelScope() as scope:
                while not scope.cancel_called:
                    try:
                        delivery, queue = await dispatch.get()
                    except anyio.EndOfStream:
                        await self._submitted_done()
                        return
                    self.stats.running += 1
                    submitted = False
                    try:
                        started = await self._jobs.start(delivery, queue, updates.put)
                        if isinstance(started, Update):
                            update = started
                        elif self._jobs.can_submit(started):
                            self._submit(started, slots, updates)
                            submitted = True
                            continue
                        else:
                            job = started
                            update = await self._jobs.execute(job, scope)
                            job = None
                    finally:
                        if not submitted:
                            self._free_slot(slots)
                            self.stats.running -= 1
                    self._job_ended(queue, update, updates)
            if job is not None:  # the scope stopped this job: it was cancelled
                self._job_ended(job.queue, self._jobs.interrupted(job), updates)

    def _submit(self, job: StartedJob, slots: Slots, updates: BatchQueue[Update]) -> None:
        """Run a plain ``def`` job in a job thread; the runner goes on to its next job.

        Its outcome ends it on the loop (a callback, no task switch), where an awaited run
        would have resumed the runner: a runner hands a burst of ``def`` jobs to the threads
        without waiting, and their outcomes come back in batches.
        """

        def done(update: Update) -> None:
            self._submitted.pop(job, None)
            self._free_slot(slots)
            self.stats.running -= 1
            self._job_ended(job.queue, update, updates)
            if not self._submitted and self._submitted_idle is not None:
                self._submitted_idle.set()
                self._submitted_idle = None

        thread_job = self._jobs.submit(job, done)
        if thread_job is not None:
            self._submitted[job] = thread_job

    async def _submitted_done(self) -> None:
        """Wait until every submitted job has ended (the runners are stopping)."""
        while self._submitted:
            if self._submitted_idle is None:
                self._submitted_idle = anyio.Event()
            await self._submitted_idle.wait()

    def _abandon_submitted(self) -> None:
        """Give up on submitted jobs: their messages are handed back with the in-flight ones."""
        submitted, self._submitted = self._submitted, {}
        for job, thread_job in submitted.items():
            self._jobs.abandon(job, thread_job)
            self.stats.running -= 1

    def _job_ended(self, queue: str, update: Update, updates: BatchQueue[Update]) -> None:
        if not update.waiting:  # a job over its limit did not run: no run ended
            ok = update.nak_delay is None and update.dead_reason is None
            self.stats.job_ended(queue, ok=ok)
        if update.delivery is not None:
            self._unsettled += 1
        updates.put(update)
        if self.max_memory_mib is not None:
            self._check_memory(self.max_memory_mib)

    async def _settle_loop(self, updates: BatchQueue[Update]) -> None:
        connection = self._connection
        assert connection is not None
        while True:
            try:
                batch = await updates.get_batch(_SETTLE_BATCH)
            except anyio.EndOfStream:
                return
            if not any(_settle_now(update) for update in batch):
                # Only interim records ("started", progress): a quick job's outcome, due any
                # moment, makes them moot (see ``settlements``), so give it a moment to come.
                await updates.wait_for(_settle_now, _INTERIM_GRACE)
                batch += updates.take(_SETTLE_BATCH - len(batch))
            self._settling_since = anyio.current_time()
            await self._settle(settlements(batch), batch)
            self._settling_since = None
            # Only now are these jobs done: their dependents are queued (a burst worker
            # checks for an idle moment by this).
            for update in batch:
                if update.delivery is not None:
                    self._in_flight.discard(update.delivery)
                    self.processed += not update.waiting  # a wait is no run
                    self._unsettled -= 1
            if self._settled_some is not None and self._unsettled < self.concurrency:
                self._settled_some.set()
                self._settled_some = None

    async def _settle(self, items: list[Settlement], batch: list[Update]) -> None:
        """Store a batch's outcomes and ack its messages, trying again what failed for a
        passing reason (``transient_settle_error``) with a growing pause, for up to
        ``SETTLE_RETRY_FOR`` s: the messages stay in flight meanwhile (kept alive), so a
        failover does not hand them to another worker. What still fails is left unacked,
        to be delivered again.
        """
        terminal = {
            u.record.id: u.record
            for u in batch
            if u.delivery is not None and u.record is not None and u.record.status.is_terminal
        }
        pause, longest = SETTLE_RETRY_PAUSES
        give_up = anyio.current_time() + SETTLE_RETRY_FOR
        while True:
            failed = await self._settle_once(items, terminal)  # drops what it released
            again = [(item, error) for item, error in failed if transient_settle_error(error)]
            if not again or anyio.current_time() + pause > give_up:
                for item, error in failed:
                    _log_unsettled(item, error)
                return
            for item, error in failed:
                if not transient_settle_error(error):
                    _log_unsettled(item, error)  # a refusal: it would be refused again
            logger.warning(
                "could not store the outcomes of {} job(s) ({!r}); trying again in {:g} s",
                len(again),
                again[0][1],
                pause,
            )
            await anyio.sleep(pause)
            pause = min(pause * 2, longest)
            items = [item for item, _ in again]

    async def _settle_once(
        self, items: list[Settlement], terminal: dict[str, JobRecord]
    ) -> list[tuple[Settlement, BaseException]]:
        """One try at ``settle_batch``; the items not stored, each with why.

        The dependents of the ended jobs whose outcome is now stored are released, and
        those jobs leave ``terminal``.
        """
        connection = self._connection
        assert connection is not None
        try:
            errors, edges = await connection.call(
                connection.transport.settle_batch, items, list(terminal)
            )
        except Exception as exc:  # noqa: BLE001 - returned: tried again or redelivered
            errors, edges = [exc] * len(items), {}
        failed = [
            (item, error) for item, error in zip(items, errors, strict=True) if error is not None
        ]
        unsaved = {item.job_id for item, _ in failed}
        ended = [terminal.pop(job_id) for job_id in list(terminal) if job_id not in unsaved]
        await self._release_dependents(ended, edges)
        return failed

    async def _release_dependents(
        self, ended: list[JobRecord], edges: dict[str, list[str]] | BaseException
    ) -> None:
        """Hand ended jobs to the dependency protocol; its errors must not stop settling."""
        connection = self._connection
        assert connection is not None
        try:
            if isinstance(edges, BaseException):
                raise edges
            await jobs_ended(connection, ended, edges)
        except Exception as exc:  # noqa: BLE001 - logged; waiting jobs stay deferred
            logger.error("could not release the dependents of {} jobs: {!r}", len(ended), exc)

    async def _cancel_notice_loop(self) -> None:
        """Apply cancel notices: running jobs are stopped, later deliveries skipped."""
        connection = self._connection
        assert connection is not None
        transport = connection.transport
        notices = await connection.call(transport.open_cancel_notices)
        while True:
            for job_id in await connection.call(transport.next_cancel_notices, notices):
                self._jobs.cancel(job_id)

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
            parent=self.parent,
            metrics=self.metrics,
            limit_counts=self._limit_counts,
            task_status=task_status,
        )

    def _limit_counts(self) -> tuple[dict[str, int], dict[str, int]]:
        limits = self._jobs.limits
        return limits.counts() if limits is not None else ({}, {})

    async def _history(self, *, task_status: TaskStatus[None]) -> None:
        """Store the runs ended per queue for ``Admin.throughput_history`` (counted from
        here on: it starts before any job)."""
        assert self._connection is not None
        await history_loop(
            self._connection,
            worker_id=self.id,
            stats=self.stats,
            interval=self.history_interval,
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


def _settle_now(update: Update) -> bool:
    """Whether the update settles a job's message (its outcome), or is an interim record
    that must not wait for one (``Update.prompt``)."""
    return update.delivery is not None or update.prompt


def _log_unsettled(item: Settlement, error: BaseException) -> None:
    logger.error(
        "could not store outcome of job {}, it will be redelivered: {!r}", item.job_id, error
    )
