"""``Scheduler``: the naq engine, enqueueing due runs of schedules on servers without
JetStream message schedules (or when forced with ``scheduler_engine="naq"``).

It keeps every ``naq``-engine definition in memory, kept current by a KV watch, in a heap by
due time, and sleeps until the earliest is due (or a definition changes). Each due run is
*claimed* by a compare-and-set of its definition (runs + 1, next due time) on the revision
it read, and only a successful claim enqueues the run, with ``Nats-Msg-Id`` = the run's job
id. So any number of schedulers can run at once: for each run exactly one claim succeeds,
and a pause or cancel stored before the claim always wins. There is no leader to elect and
no lock to expire.

A scheduler that dies between a claim and its enqueue leaves a claimed run unsent; every
scheduler re-sends the last run of each definition claimed in the past ``RECOVERY_WINDOW``
seconds when it (re)starts its view, and the stream's dedupe window drops the copies of
runs that did go out.
"""

from __future__ import annotations

import heapq
import os
import socket
import uuid
from datetime import datetime, timedelta

import anyio
import attrs
from anyio.abc import TaskStatus
from loguru import logger

from .._connection import Connection
from .._record import JobStatus, encode_record
from .._serializers import get_serializer
from .._settings import ConnectOptions, resolve_connect_options
from .._time import utcnow
from .._transport import Fire, ScheduleStore
from ._definition import Schedule, ScheduleStatus, decode_schedule, encode_schedule, fire

__all__ = ["RECOVERY_WINDOW", "Scheduler"]

RECOVERY_WINDOW = 110.0
"""Seconds within which a claimed run is re-sent on restart (inside the 120 s dedupe)."""


class Scheduler:
    """Enqueues the due runs of ``naq``-engine schedules; safe to run several at once.

    ``await scheduler.run()`` from code (asyncio or Trio), or ``naq scheduler``. ``batch``
    bounds the runs claimed in one round trip; ``max_wait`` bounds each idle wait, and so
    how long :meth:`stop` takes.
    """

    def __init__(
        self,
        *,
        url: str | None = None,
        name: str | None = None,
        batch: int = 512,
        max_wait: float = 0.5,
        connect_options: ConnectOptions | None = None,
    ) -> None:
        self.connect_options = resolve_connect_options(url, connect_options)
        self.url = self.connect_options.url
        self.id = name or f"{socket.gethostname()}.{os.getpid()}.{uuid.uuid4().hex[:6]}"
        self.batch = batch
        self.max_wait = max_wait
        self._stop = False
        self._known: dict[str, tuple[Schedule, int]] = {}
        self._heap: list[tuple[datetime, str, int]] = []
        self.fired = 0
        """Runs this scheduler enqueued (claims it won)."""

    def stop(self) -> None:
        """Stop after the current round (within ``max_wait``)."""
        self._stop = True

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Fire due runs until :meth:`stop`; ``task_status.started()`` once it has its view."""
        connection = Connection(self.connect_options, get_serializer("json"))
        await connection.open()
        store = connection.transport.schedules
        try:
            await connection.call(store.ensure)
            await self._refresh(connection, store, timeout=0)
            logger.info("scheduler {} running on {}", self.id, self.url)
            task_status.started()
            while not self._stop:
                await self._fire_due(connection, store)
                await self._refresh(connection, store, timeout=self._until_next_due())
        finally:
            with anyio.CancelScope(shield=True), anyio.move_on_after(10):
                await connection.call(store.stop_watch)
                await connection.close()
            logger.info("scheduler {} stopped", self.id)

    def _until_next_due(self) -> float:
        if not self._heap:
            return self.max_wait
        wait = (self._heap[0][0] - utcnow()).total_seconds()
        return max(0.0, min(wait, self.max_wait))

    async def _refresh(self, connection: Connection, store: ScheduleStore, timeout: float) -> None:
        """Apply definition changes (waiting up to ``timeout`` for one)."""
        full, changes = await connection.call(store.watch_updates, timeout)
        if full:
            self._known.clear()
            self._heap.clear()
        for schedule_id, data, revision in changes:
            known = self._known.get(schedule_id)
            if known is not None and revision <= known[1]:
                continue  # our own write, already applied
            if data is None:
                self._known.pop(schedule_id, None)
                continue
            schedule = decode_schedule(data)
            self._track(schedule, revision)
        if full:
            await self._recover(connection, store)

    def _track(self, schedule: Schedule, revision: int) -> None:
        self._known[schedule.id] = (schedule, revision)
        if (
            schedule.engine == "naq"
            and schedule.status is ScheduleStatus.ACTIVE
            and schedule.next_run is not None
        ):
            heapq.heappush(self._heap, (schedule.next_run, schedule.id, revision))

    async def _recover(self, connection: Connection, store: ScheduleStore) -> None:
        """Re-send runs claimed recently, in case their scheduler died before sending them."""
        horizon = utcnow() - timedelta(seconds=RECOVERY_WINDOW)
        runs = []
        for schedule, _ in self._known.values():
            if schedule.engine != "naq" or schedule.last_job_id is None:
                continue
            if schedule.last_run is None or schedule.last_run < horizon:
                continue
            record = attrs.evolve(
                schedule.template,
                id=schedule.last_job_id,
                status=JobStatus.QUEUED,
                enqueued_at=utcnow(),
            )
            runs.append(
                Fire(
                    schedule.id,
                    b"",
                    0,
                    schedule.queue,
                    record.id,
                    encode_record(record),
                    record.priority,
                )
            )
        if runs:
            lost = await connection.call(store.reenqueue, runs)
            if lost:
                logger.warning("scheduler {} re-sent {} claimed but unsent runs", self.id, lost)

    async def _fire_due(self, connection: Connection, store: ScheduleStore) -> None:
        now = utcnow()
        batch: list[tuple[Fire, Schedule]] = []
        while self._heap and self._heap[0][0] <= now and len(batch) < self.batch:
            _, schedule_id, revision = heapq.heappop(self._heap)
            known = self._known.get(schedule_id)
            if known is None or known[1] != revision:
                continue  # superseded by a later definition
            updated, record = fire(known[0], now)
            item = Fire(
                schedule_id,
                encode_schedule(updated),
                revision,
                updated.queue,
                record.id,
                encode_record(record),
                record.priority,
            )
            batch.append((item, updated))
        if not batch:
            return
        with anyio.CancelScope(shield=True):  # a claimed run is always sent
            try:
                revisions = await connection.call(store.fire, [item for item, _ in batch])
            except Exception as exc:  # noqa: BLE001 - logged; a full resync recovers
                logger.error("scheduler {} could not fire {} runs: {!r}", self.id, len(batch), exc)
                await connection.call(store.stop_watch)  # next refresh re-reads and recovers
                await anyio.sleep(self.max_wait)
                return
            # In the scope so a type checker sees ``revisions`` bound (a scope's __exit__ may
            # swallow exceptions, for all it knows); nothing below awaits.
            for (item, updated), revision in zip(batch, revisions, strict=True):
                if revision is None:
                    continue  # another scheduler claimed it, or the schedule changed: the watch
                    # brings the newer definition
                self.fired += 1
                logger.debug(
                    "scheduler {} enqueued {} ({})", self.id, item.job_id, item.schedule_id
                )
                self._track(updated, revision)
