"""Creating and changing schedules: the Client's side.

Order of writes, chosen so a change takes effect before the next due time and nothing
is left half done: a pause or cancel first removes the server schedule, then marks the
definition; a create, resume or reschedule first stores the definition, then (server
engine) sets the server schedule. Every definition write is a compare-and-set.
"""

from __future__ import annotations

import os
from datetime import datetime
from typing import TYPE_CHECKING

import attrs

from .._errors import ConfigurationError, ScheduleNotFound
from .._record import JobRecord, JobStatus, decode_record, encode_record
from .._time import utcnow
from .._transport import ScheduleStore, names
from ._definition import (
    Schedule,
    ScheduleStatus,
    decode_schedule,
    encode_schedule,
    paused,
    rescheduled,
    resumed,
    with_status,
)
from ._timing import Trigger, first_due, server_pattern

if TYPE_CHECKING:
    from .._connection import Connection

__all__ = ["ENGINES", "Scheduling", "engine_setting"]

ENGINES = ("auto", "server", "naq")


def engine_setting(value: str | None) -> str:
    """``auto`` (server schedules when the server has them), ``server`` or ``naq``.

    Defaults to env ``NAQ_SCHEDULER_ENGINE``, else ``auto``.
    """
    engine = value or os.environ.get("NAQ_SCHEDULER_ENGINE") or "auto"
    if engine not in ENGINES:
        raise ConfigurationError(f"scheduler_engine must be one of {ENGINES}, got {engine!r}")
    return engine


class Scheduling:
    """Schedule operations on one connection, with the engine the client was set up with."""

    def __init__(self, connection: Connection, engine: str | None) -> None:
        self._connection = connection
        self.engine = engine_setting(engine)

    async def _store(self) -> tuple[ScheduleStore, bool]:
        store = self._connection.transport.schedules
        return store, await self._connection.call(store.ensure)

    async def _resolve_engine(self) -> tuple[ScheduleStore, str]:
        store, server = await self._store()
        if self.engine == "server" and not server:
            raise ConfigurationError(
                "scheduler_engine='server' needs nats-server 2.14 or later (message schedules)"
            )
        if self.engine == "auto":
            return store, "server" if server else "naq"
        return store, self.engine

    async def create(
        self,
        template: JobRecord,
        trigger: Trigger,
        *,
        repeat: int | None,
        one_off: bool,
        catch_up: bool,
    ) -> Schedule:
        """Store a new schedule (or replace the definition of one with the same id)."""
        now = utcnow()
        if trigger.at is not None and trigger.at < now and not catch_up:
            raise ConfigurationError(
                f"{trigger.at.isoformat()} is in the past; pass catch_up=True to run it now"
            )
        if repeat is not None and (
            isinstance(repeat, bool) or not isinstance(repeat, int) or repeat < 1
        ):
            raise ConfigurationError(f"repeat must be a positive number of runs, got {repeat!r}")
        store, engine = await self._resolve_engine()
        call = self._connection.call
        # Its runs are published by a scheduler or the server: make the queue known now.
        lane = names.lane(template.queue, template.priority)
        await call(self._connection.transport.announce_queues, {lane})
        sid = template.id
        fresh = Schedule(
            id=sid,
            queue=template.queue,
            func_name=template.func_name,
            trigger=trigger,
            engine=engine,
            template=template,
            repeat=repeat,
            one_off=one_off,
            next_run=first_due(trigger, now),
            created_at=now,
            updated_at=now,
        )
        if one_off:  # the job exists, as "scheduled", before anything can run it
            scheduled = template.moved_to(JobStatus.SCHEDULED, now)
            transport = self._connection.transport
            await call(transport.write_record, template.queue, sid, encode_record(scheduled), None)

        def decide(current: bytes | None) -> tuple[bytes, tuple[Schedule, Schedule | None]]:
            if current is None:
                return encode_schedule(fresh), (fresh, None)
            old = decode_schedule(current)
            if one_off or old.one_off:
                raise ConfigurationError(f"a delayed job or schedule {sid!r} already exists")
            kept = attrs.evolve(
                fresh,
                runs=old.runs,
                last_run=old.last_run,
                last_job_id=old.last_job_id,
                created_at=old.created_at,
                claims=old.claims,
            )
            return encode_schedule(kept), (kept, old)

        schedule, old = await call(store.update, sid, decide)
        if old is not None and old.engine == "server" and engine != "server":
            await call(store.remove_server_schedule, sid)
        if engine == "server":
            await self._set_server_schedule(store, schedule)
        return schedule

    async def _set_server_schedule(self, store: ScheduleStore, schedule: Schedule) -> None:
        pattern, timezone = server_pattern(schedule.trigger)
        await self._connection.call(
            store.set_server_schedule,
            schedule.id,
            names.lane(schedule.queue, schedule.template.priority),
            pattern,
            timezone,
            encode_record(schedule.template),
        )

    async def get(self, schedule_id: str) -> Schedule:
        store, _ = await self._store()
        found = await self._connection.call(store.get, schedule_id)
        if found is None:
            raise ScheduleNotFound(f"no schedule or delayed job {schedule_id!r}")
        return decode_schedule(found[0])

    async def list(
        self, status: ScheduleStatus | str | None = None, queue: str | None = None
    ) -> list[Schedule]:
        store, _ = await self._store()
        wanted = ScheduleStatus(status) if status is not None else None
        schedules = [decode_schedule(data) for _, data, _ in await self._connection.call(store.all)]
        far = datetime.max.replace(tzinfo=utcnow().tzinfo)
        return sorted(
            (
                s
                for s in schedules
                if (wanted is None or s.status is wanted) and (queue is None or s.queue == queue)
            ),
            key=lambda s: (s.next_run or far, s.id),
        )

    async def _change(self, schedule_id: str, change: type | object) -> Schedule:
        store, _ = await self._store()

        def decide(current: bytes | None) -> tuple[bytes | None, Schedule]:
            if current is None:
                raise ScheduleNotFound(f"no schedule or delayed job {schedule_id!r}")
            old = decode_schedule(current)
            new = change(old, utcnow())  # type: ignore[operator]
            return (None if new is old else encode_schedule(new)), new

        return await self._connection.call(store.update, schedule_id, decide)

    async def pause(self, schedule_id: str) -> Schedule:
        schedule = await self.get(schedule_id)
        store, _ = await self._store()
        if schedule.engine == "server":
            await self._connection.call(store.remove_server_schedule, schedule_id)
        return await self._change(schedule_id, paused)

    async def resume(self, schedule_id: str) -> Schedule:
        schedule = await self._change(schedule_id, resumed)
        if schedule.engine == "server":
            store, _ = await self._store()
            await self._set_server_schedule(store, schedule)
        return schedule

    async def reschedule(self, schedule_id: str, trigger: Trigger) -> Schedule:
        old = await self.get(schedule_id)
        if old.one_off and trigger.at is None:
            raise ConfigurationError(f"{schedule_id!r} is a delayed job: reschedule it with at=")
        schedule = await self._change(schedule_id, lambda s, now: rescheduled(s, trigger, now))
        if schedule.engine == "server" and schedule.status is ScheduleStatus.ACTIVE:
            store, _ = await self._store()
            await self._set_server_schedule(store, schedule)
        return schedule

    async def cancel(self, schedule_id: str) -> Schedule:
        """Cancel; a delayed job not yet run also gets status ``canceled``."""
        schedule = await self.get(schedule_id)
        store, _ = await self._store()
        if schedule.engine == "server":
            await self._connection.call(store.remove_server_schedule, schedule_id)

        def cancel(s: Schedule, now: datetime) -> Schedule:
            return s if s.status.is_final else with_status(s, ScheduleStatus.CANCELED, now)

        schedule = await self._change(schedule_id, cancel)
        if schedule.one_off and schedule.status is ScheduleStatus.CANCELED:

            def change(data: bytes) -> bytes | None:
                record = decode_record(data)
                if record.status is not JobStatus.SCHEDULED:
                    return None
                return encode_record(
                    attrs.evolve(record, status=JobStatus.CANCELED, ended_at=utcnow())
                )

            await self._connection.call(
                self._connection.transport.change_record, schedule_id, change
            )
        return schedule
