"""The worker's claim of a server-fired run (server engine): its own job id, counted once.

nats-server fires a schedule by producing a job message; every worker that takes one
claims the run with a compare-and-set of the definition, so a run is counted once and a
canceled or finished schedule's message is skipped.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs

from .._record import JobRecord
from .._time import utcnow
from .._transport import ServerFire
from ._definition import ScheduleStatus, claim_server_run, decode_schedule, encode_schedule

if TYPE_CHECKING:
    from .._connection import Connection

__all__ = ["claim_fired_run"]


async def claim_fired_run(
    connection: Connection, record: JobRecord, fire: ServerFire
) -> JobRecord | None:
    """Worker side, server engine: give a server-fired run its own job id and count it.

    Returns the record to run, or None to skip the message (the schedule was canceled
    or has made its ``repeat`` runs). A schedule that just completed is removed from the
    server. A run whose definition is missing still runs, with the stream sequence in its
    job id, so nothing is dropped silently.
    """
    store = connection.transport.schedules
    await connection.call(store.ensure)

    def decide(current: bytes | None) -> tuple[bytes | None, tuple[str | None, bool]]:
        if current is None:
            return None, (f"{fire.schedule_id}-s{fire.seq}", False)
        schedule = decode_schedule(current)
        updated, job_id = claim_server_run(schedule, fire.seq, fire.following, utcnow())
        if updated is None:
            return None, (job_id, False)
        finished = updated.status is ScheduleStatus.COMPLETED and not schedule.one_off
        return encode_schedule(updated), (job_id, finished)

    job_id, finished = await connection.call(store.update, fire.schedule_id, decide)
    if finished:
        await connection.call(store.remove_server_schedule, fire.schedule_id)
    if job_id is None:
        return None
    return attrs.evolve(record, id=job_id, enqueued_at=utcnow())
