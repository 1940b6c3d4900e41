"""NATS side of schedules: the ``naq_schedules`` bucket and JetStream message schedules.

Runs on the transport's asyncio loop like ``NatsTransport``; every method is one crossing
for a Trio caller, so the scheduler fires a whole batch of due runs in one call.

Server engine: a schedule is one message on ``naq.sched.<id>`` in the jobs stream with
``Nats-Schedule`` and ``Nats-Schedule-Target: naq.jobs.<queue>``; the server produces the
job messages itself, adding ``Nats-Scheduler`` and ``Nats-Schedule-Next``. Workers'
consumers filter ``naq.jobs.<queue>``, so they never see (or ack away) a schedule.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import attrs
import nats.errors
import nats.js.errors
from loguru import logger

from .._errors import ConfigurationError
from ._deliveries import Delivery, stream_sequence
from ._jetstream import JetStream, lost_race
from ._names import (
    JOBS_STREAM,
    SCHEDULE_PREFIX,
    SCHEDULES_BUCKET_STREAM,
    job_subject,
    lane,
    queue_subject,
    record_subject,
    schedule_definition_subject,
    schedule_subject,
)
from ._publisher import OutgoingMessage, PublishError
from ._streams import scheduled_jobs_stream, schedules_bucket

__all__ = [
    "Fire",
    "ScheduleStore",
    "ServerFire",
    "check_schedule_id",
    "server_fire",
]

Change = tuple[str, bytes | None, int]
"""A definition changed: (schedule id, data or None when deleted, revision)."""
_SCHEDULE_ID = re.compile(r"^[A-Za-z0-9_-]{1,100}$")
_MIN_SERVER = (2, 14)  # @every, cron and time zones (ADR-51); 2.12 has @at only


def check_schedule_id(schedule_id: str) -> str:
    """A schedule id is a job id with room for a run suffix: at most 100 characters."""
    if not isinstance(schedule_id, str) or not _SCHEDULE_ID.match(schedule_id):
        raise ConfigurationError(
            f"invalid schedule id {schedule_id!r}: use 1-100 letters, digits, '_' or '-'"
        )
    return schedule_id


@attrs.frozen
class ServerFire:
    """A job message produced by a server schedule, as the worker sees it."""

    schedule_id: str
    seq: int
    following: datetime | None
    """The server's ``Nats-Schedule-Next``; None when the schedule purged itself."""


def server_fire(delivery: Delivery) -> ServerFire | None:
    """The schedule that produced this delivery, or None for an ordinary job message."""
    msg = delivery.handle
    headers = msg.headers or {}
    scheduler = headers.get("Nats-Scheduler", "")
    if not scheduler.startswith(SCHEDULE_PREFIX):
        return None
    nxt = headers.get("Nats-Schedule-Next", "purge")
    following = None if nxt == "purge" else datetime.fromisoformat(nxt.replace("Z", "+00:00"))
    return ServerFire(scheduler[len(SCHEDULE_PREFIX) :], stream_sequence(msg), following)


@attrs.frozen
class Fire:
    """naq engine: store ``data`` at ``revision`` (compare-and-set), then enqueue the run."""

    schedule_id: str
    data: bytes
    revision: int
    queue: str
    job_id: str
    record: bytes
    priority: int = 0
    """The run's priority: its job message goes to that lane of ``queue``."""


def _run_subject(item: Fire) -> str:
    """Where a run's job message goes: its job's subject in the lane of its priority."""
    return job_subject(lane(item.queue, item.priority), item.job_id)


class ScheduleStore:
    """The schedules bucket and server schedules; owned by a transport (``.schedules``)."""

    def __init__(self, jetstream: JetStream) -> None:
        self._jetstream = jetstream
        self._kv: Any = None
        self._server_schedules: bool | None = None
        self._watch: Any = None
        self._watch_task: asyncio.Task[None] | None = None
        self._updates: list[Change] = []
        self._updated = asyncio.Event()
        self._watch_reconnects = -1

    def forget(self) -> None:
        """Drop the bucket and watch of a connection inherited through ``fork()``, unused."""
        self._kv = self._server_schedules = self._watch = self._watch_task = None
        self._updates = []
        self._updated = asyncio.Event()
        self._watch_reconnects = -1

    # -- setup ------------------------------------------------------------------------------

    async def ensure(self) -> bool:
        """Create the bucket; enable schedules on the jobs stream if the server has them.

        Returns whether the server can run naq's schedules itself (nats-server 2.14+).
        """
        if self._server_schedules is not None:
            return self._server_schedules
        jetstream = self._jetstream
        self._kv = await jetstream.open_bucket(schedules_bucket(jetstream.replicas))
        version = jetstream.nc.connected_server_version
        supported = (version.major, version.minor) >= _MIN_SERVER
        if supported:
            await jetstream.ensure_stream(scheduled_jobs_stream(jetstream.replicas))
        self._server_schedules = supported
        return supported

    # -- definitions ------------------------------------------------------------------------

    async def get(self, schedule_id: str) -> tuple[bytes, int] | None:
        """A definition and its revision, or None."""
        try:
            entry = await self._kv.get(schedule_id)
        except nats.js.errors.NotFoundError:
            return None
        return entry.value, entry.revision

    async def put(self, schedule_id: str, data: bytes, revision: int | None) -> int | None:
        """Store a definition if its revision is still ``revision`` (None: if it is new).

        Returns the new revision, or None when someone else changed it first.
        """
        try:
            if revision is None:
                return await self._kv.create(schedule_id, data)
            return await self._kv.update(schedule_id, data, last=revision)
        except nats.js.errors.KeyWrongLastSequenceError:
            return None

    async def all(self) -> list[tuple[str, bytes, int]]:
        """Every definition (id, data, revision)."""
        msgs = await self._jetstream.latest_per_subject(
            SCHEDULES_BUCKET_STREAM, schedule_definition_subject("*")
        )
        return [
            (msg.subject.rsplit(".", 1)[1], msg.data, msg.metadata.sequence.stream)
            for msg in msgs
            if msg.data  # empty: a delete or purge marker
        ]

    async def update(
        self, schedule_id: str, decide: Callable[[bytes | None], tuple[bytes | None, Any]]
    ) -> Any:
        """Read-decide-write with compare-and-set, retried until it sticks.

        ``decide`` gets the current definition (None if missing) and returns what to store
        (None: nothing) and a result handed back to the caller.
        """
        while True:
            current = await self.get(schedule_id)
            data, result = decide(current[0] if current else None)
            if data is None:
                return result
            if await self.put(schedule_id, data, current[1] if current else None) is not None:
                return result

    # -- server schedules -------------------------------------------------------------------

    async def set_server_schedule(
        self, schedule_id: str, lane: str, pattern: str, timezone: str | None, body: bytes
    ) -> None:
        """Create or replace (the server rolls up the subject) the schedule message, which
        the server publishes to ``lane`` (a queue, or one of its priority lanes) when due."""
        headers = {"Nats-Schedule": pattern, "Nats-Schedule-Target": queue_subject(lane)}
        if timezone is not None:
            headers["Nats-Schedule-Time-Zone"] = timezone
        try:
            await self._jetstream.publish_one(
                OutgoingMessage(schedule_subject(schedule_id), body, headers)
            )
        except PublishError as exc:
            raise ConfigurationError(
                f"nats-server refused schedule {pattern!r} ({timezone or 'UTC'}): {exc}"
            ) from exc

    async def remove_server_schedule(self, schedule_id: str) -> None:
        """Delete the schedule message, so the server fires it no more."""
        await self._jetstream.js.purge_stream(JOBS_STREAM, subject=schedule_subject(schedule_id))

    # -- naq engine -------------------------------------------------------------------------

    async def fire(self, fires: Sequence[Fire]) -> list[int | None]:
        """Claim each run (compare-and-set its definition), then enqueue the claimed ones.

        Returns the new revision per item, None where another writer got there first (that
        run is theirs, or the schedule changed). Claiming first means a pause or cancel
        stored before the claim always wins. The job message carries ``Nats-Msg-Id`` = the
        run's job id, so a run re-sent after a crash is stored once.
        """
        claims = [
            OutgoingMessage(
                schedule_definition_subject(item.schedule_id),
                item.data,
                {"Nats-Expected-Last-Subject-Sequence": str(item.revision)},
            )
            for item in fires
        ]
        outcomes = await self._jetstream.publish(claims)
        revisions: list[int | None] = []
        claimed: list[Fire] = []
        failure: BaseException | None = None
        for item, outcome in zip(fires, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                failure = failure if lost_race(outcome) else outcome
                revisions.append(None)
            else:
                revisions.append(outcome.seq)
                claimed.append(item)
        await self.enqueue_runs(claimed)  # the claimed runs first, whatever else failed
        if failure is not None:
            raise failure
        return revisions

    async def enqueue_runs(self, fires: Sequence[Fire]) -> None:
        """Store each run's record, then publish its job message (deduplicated by job id).

        Both go out back to back on one connection, record first, so a worker's "started"
        write always lands after the "queued" one.
        """
        messages: list[OutgoingMessage] = []
        for item in fires:
            messages.append(OutgoingMessage(record_subject(item.queue, item.job_id), item.record))
            messages.append(
                OutgoingMessage(_run_subject(item), item.record, {"Nats-Msg-Id": item.job_id})
            )
        for outcome in await self._jetstream.publish(messages):
            if isinstance(outcome, BaseException):
                raise outcome

    async def reenqueue(self, fires: Sequence[Fire]) -> int:
        """Re-send runs that may have been claimed but not enqueued (a crash in between).

        The job message is deduplicated by job id, so a run that was enqueued is not
        stored again (within the stream's 2 minute window); only a run that really was
        lost is enqueued, and its record is written only if it has none yet. Returns the
        number of runs that were lost and are now enqueued.
        """
        jetstream = self._jetstream
        sent = await jetstream.publish(
            [
                OutgoingMessage(_run_subject(item), item.record, {"Nats-Msg-Id": item.job_id})
                for item in fires
            ]
        )
        lost: list[Fire] = []
        for item, outcome in zip(fires, sent, strict=True):
            if isinstance(outcome, BaseException):
                raise outcome
            if not outcome.duplicate:
                lost.append(item)
        records = [  # only where it has none: a record that exists already is kept
            OutgoingMessage(
                record_subject(item.queue, item.job_id),
                item.record,
                {"Nats-Expected-Last-Subject-Sequence": "0"},
            )
            for item in lost
        ]
        for item, outcome in zip(lost, await jetstream.publish(records), strict=True):
            if isinstance(outcome, BaseException) and not lost_race(outcome):
                # The run is enqueued; its worker writes the record it lacks.
                logger.warning(
                    "could not store the queued record of {}: {!r}", item.job_id, outcome
                )
        return len(lost)

    # -- watching ---------------------------------------------------------------------------

    async def watch_updates(self, timeout: float) -> tuple[bool, list[Change]]:
        """Changes to definitions since the last call, waiting up to ``timeout`` for one.

        The first call (and the first after a reconnect, when the watch restarts) returns
        ``(True, every definition)``: the caller replaces its whole view. Later calls return
        ``(False, changes)``; a deleted definition comes with data None.
        """
        reconnects = self._jetstream.nc.stats["reconnects"]
        if self._watch_task is None or reconnects != self._watch_reconnects:
            await self.stop_watch()
            snapshot = await self._start_watch()
            self._watch_reconnects = reconnects
            return True, snapshot
        if not self._updates:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(timeout, 0)):
                    await self._updated.wait()
        updates, self._updates = self._updates, []
        self._updated.clear()
        return False, updates

    async def _start_watch(self) -> list[Change]:
        self._watch = await self._kv.watchall()
        snapshot: list[Change] = []
        async for entry in self._watch:
            if entry is None:
                break
            snapshot.append(_change(entry))
        self._updates = []
        self._updated.clear()
        self._watch_task = asyncio.create_task(self._drain_watch(self._watch))
        return snapshot

    async def _drain_watch(self, watch: Any) -> None:
        async for entry in watch:
            if entry is None:
                continue
            self._updates.append(_change(entry))
            self._updated.set()

    async def stop_watch(self) -> None:
        task, self._watch_task = self._watch_task, None
        watch, self._watch = self._watch, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if watch is not None:
            with contextlib.suppress(nats.errors.Error):
                await watch.stop()


def _change(entry: Any) -> Change:
    deleted = entry.operation in ("DEL", "PURGE")
    return entry.key, None if deleted else entry.value, entry.revision
