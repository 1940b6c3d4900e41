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
import weakref
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import attrs
import nats.errors
import nats.js.errors
from loguru import logger
from nats.js import api

from .._errors import ConfigurationError
from ._names import JOBS_STREAM, job_subject, queue_subject, record_subject
from ._nats import Delivery, NatsTransport, stream_sequence

__all__ = [
    "SCHEDULES_BUCKET",
    "Fire",
    "ScheduleStore",
    "ServerFire",
    "check_schedule_id",
    "schedule_store",
    "server_fire",
]

SCHEDULES_BUCKET = "naq_schedules"
"""KV bucket of schedule definitions, keyed by schedule id."""
_SCHED_PREFIX = "naq.sched."
_WRONG_LAST_SEQUENCE = (10071, 10164)
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


def _sched_subject(schedule_id: str) -> str:
    return _SCHED_PREFIX + schedule_id


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
    if not scheduler.startswith(_SCHED_PREFIX):
        return None
    nxt = headers.get("Nats-Schedule-Next", "purge")
    following = None if nxt == "purge" else datetime.fromisoformat(nxt.replace("Z", "+00:00"))
    return ServerFire(scheduler[len(_SCHED_PREFIX) :], stream_sequence(msg), following)


@attrs.frozen
class Fire:
    """naq engine: store ``data`` at ``revision`` (compare-and-set), then enqueue the run."""

    schedule_id: str
    data: bytes
    revision: int
    queue: str
    job_id: str
    record: bytes


class ScheduleStore:
    """The schedules bucket and server schedules, for one transport. See :func:`schedule_store`."""

    def __init__(self, transport: NatsTransport) -> None:
        self._transport = transport
        self._kv: Any = None
        self._server_schedules: bool | None = None
        self._watch: Any = None
        self._watch_task: asyncio.Task[None] | None = None
        self._updates: list[Change] = []
        self._updated = asyncio.Event()
        self._watch_reconnects = -1

    @property
    def _js(self) -> Any:
        return self._transport._js

    @property
    def _nc(self) -> Any:
        return self._transport.nc

    # -- setup ------------------------------------------------------------------------------

    async def ensure(self) -> bool:
        """Create the bucket; enable schedules on the jobs stream if the server has them.

        Returns whether the server can run naq's schedules itself (nats-server 2.14+).
        """
        if self._server_schedules is not None:
            return self._server_schedules
        try:
            self._kv = await self._js.create_key_value(
                api.KeyValueConfig(
                    bucket=SCHEDULES_BUCKET,
                    history=1,
                    storage=api.StorageType.FILE,
                    replicas=self._transport.replicas,
                )
            )
        except nats.js.errors.BadRequestError:
            self._kv = await self._js.key_value(SCHEDULES_BUCKET)
        version = self._nc.connected_server_version
        supported = (version.major, version.minor) >= _MIN_SERVER
        if supported:
            info = await self._js.stream_info(JOBS_STREAM)
            config = info.config
            wanted = _SCHED_PREFIX + "*"
            if wanted not in (config.subjects or []) or not config.allow_msg_schedules:
                config.subjects = [*(config.subjects or []), wanted]
                config.subjects = list(dict.fromkeys(config.subjects))
                config.allow_msg_schedules = True
                await self._js.update_stream(config)
                logger.info("enabled message schedules on stream {}", JOBS_STREAM)
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
        """Every definition (id, data, revision), read through one ordered consumer.

        An ordered consumer that resets (a gap, a slow reader) delivers entries again: keep
        each key once, at its newest revision.
        """
        watcher = await self._kv.watchall(ignore_deletes=True)
        found: dict[str, tuple[str, bytes, int]] = {}
        try:
            async for entry in watcher:
                if entry is None:
                    break
                seen = found.get(entry.key)
                if seen is None or seen[2] < entry.revision:
                    found[entry.key] = (entry.key, entry.value, entry.revision)
        finally:
            await watcher.stop()
        return list(found.values())

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
        self, schedule_id: str, queue: str, pattern: str, timezone: str | None, body: bytes
    ) -> None:
        """Create or replace (the server rolls up the subject) the schedule message."""
        headers = {"Nats-Schedule": pattern, "Nats-Schedule-Target": queue_subject(queue)}
        if timezone is not None:
            headers["Nats-Schedule-Time-Zone"] = timezone
        try:
            await self._js.publish(_sched_subject(schedule_id), body, headers=headers)
        except nats.js.errors.APIError as exc:
            raise ConfigurationError(
                f"nats-server refused schedule {pattern!r} ({timezone or 'UTC'}): {exc.description}"
            ) from exc

    async def remove_server_schedule(self, schedule_id: str) -> None:
        """Delete the schedule message, so the server fires it no more."""
        await self._js.purge_stream(JOBS_STREAM, subject=_sched_subject(schedule_id))

    # -- job records ------------------------------------------------------------------------

    async def update_record(self, job_id: str, change: Callable[[bytes], bytes | None]) -> bool:
        """Rewrite a job record if ``change`` returns new bytes, with compare-and-set."""
        transport = self._transport
        while True:
            stored = await transport.stored_record(job_id)
            if stored is None:
                return False
            new = change(stored.data)
            if new is None:
                return False
            queue = stored.subject.split(".")[2]  # $KV.naq_jobs.<queue>.<job id>
            if await transport.write_record(queue, job_id, new, None, None, stored.sequence):
                return True

    # -- naq engine -------------------------------------------------------------------------

    async def fire(self, fires: Sequence[Fire]) -> list[int | None]:
        """Claim each run (compare-and-set its definition), then enqueue the claimed ones.

        Returns the new revision per item, None where another writer got there first (that
        run is theirs, or the schedule changed). Claiming first means a pause or cancel
        stored before the claim always wins. The job message carries ``Nats-Msg-Id`` = the
        run's job id, so a run re-sent after a crash is stored once.
        """
        js = self._js
        # Awaited publishes, concurrently: a lost race is an expected answer here, which
        # publish_async would also report to the connection's error callback.
        claims = [
            js.publish(
                f"$KV.{SCHEDULES_BUCKET}.{item.schedule_id}",
                item.data,
                headers={"Nats-Expected-Last-Subject-Sequence": str(item.revision)},
            )
            for item in fires
        ]
        outcomes = await asyncio.gather(*claims, return_exceptions=True)
        revisions: list[int | None] = []
        claimed: list[Fire] = []
        failure: BaseException | None = None
        for item, outcome in zip(fires, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                wrong_last = isinstance(outcome, nats.js.errors.APIError) and (
                    outcome.err_code in _WRONG_LAST_SEQUENCE
                )
                failure = failure if wrong_last else outcome
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
        js = self._js
        pending = []
        for item in fires:
            pending.append(
                await js.publish_async(record_subject(item.queue, item.job_id), item.record)
            )
            pending.append(
                await js.publish_async(
                    job_subject(item.queue, item.job_id),
                    item.record,
                    headers={"Nats-Msg-Id": item.job_id},
                )
            )
        await asyncio.gather(*pending)

    async def reenqueue(self, fires: Sequence[Fire]) -> int:
        """Re-send runs that may have been claimed but not enqueued (a crash in between).

        The job message is deduplicated by job id, so a run that was enqueued is not
        stored again (within the stream's 2 minute window); only a run that really was
        lost is enqueued, and its record is written only if it has none yet. Returns the
        number of runs that were lost and are now enqueued.
        """
        js = self._js
        sent = [
            await js.publish_async(
                job_subject(item.queue, item.job_id),
                item.record,
                headers={"Nats-Msg-Id": item.job_id},
            )
            for item in fires
        ]
        acks = await asyncio.gather(*sent)
        lost = [item for item, ack in zip(fires, acks, strict=True) if not ack.duplicate]
        stored = [
            await js.publish_async(
                record_subject(item.queue, item.job_id),
                item.record,
                headers={"Nats-Expected-Last-Subject-Sequence": "0"},
            )
            for item in lost
        ]
        await asyncio.gather(*stored, return_exceptions=True)  # exists already: keep it
        return len(lost)

    async def records(self, job_ids: Sequence[str]) -> list[bytes | None]:
        """The current records of these jobs (None where there is none)."""
        return [await self._transport.get_record(job_id) for job_id in job_ids]

    async def put_record(self, queue: str, job_id: str, record: bytes) -> None:
        """Store a job record without enqueueing anything (a delayed job's "scheduled")."""
        await self._js.publish(record_subject(queue, job_id), record)

    # -- watching ---------------------------------------------------------------------------

    async def watch_updates(self, timeout: float) -> tuple[bool, list[Change]]:
        """Changes to definitions since the last call, waiting up to ``timeout`` for one.

        The first call (and the first after a reconnect, when the watch restarts) returns
        ``(True, every definition)``: the caller replaces its whole view. Later calls return
        ``(False, changes)``; a deleted definition comes with data None.
        """
        reconnects = self._nc.stats["reconnects"]
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


_stores: weakref.WeakKeyDictionary[NatsTransport, ScheduleStore] = weakref.WeakKeyDictionary()


def schedule_store(transport: NatsTransport) -> ScheduleStore:
    """The one ScheduleStore of a transport, made on first use."""
    store = _stores.get(transport)
    if store is None:
        store = _stores[transport] = ScheduleStore(transport)
    return store
