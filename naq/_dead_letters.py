"""Dead letters: jobs that could not run or exhausted their retries, kept with the reason.

Each is the job's original message in ``NAQ_DEAD`` under ``naq.dead.<queue>.<job id>``.
Requeueing enqueues the job again (attempts start over) and then drops the dead letter.
"""

from __future__ import annotations

from datetime import datetime

import attrs

from ._connection import Connection
from ._errors import JobNotFound, SerializationError
from ._record import JobRecord, JobStatus, decode_record, encode_record
from ._time import utcnow
from ._transport import OutgoingJob, RawDeadLetter, names

__all__ = ["DeadLetter", "delete_dead_letter", "list_dead_letters", "requeue_dead_letter"]


@attrs.frozen(repr=False)
class DeadLetter:
    """One dead letter: which job, why, when (UTC), after how many runs (``attempts``,
    None if unknown); ``record`` is the job as enqueued, None if it was undecodable."""

    job_id: str
    queue: str
    reason: str
    time: datetime | None
    record: JobRecord | None
    attempts: int | None = None

    def __repr__(self) -> str:
        return f"<naq.DeadLetter {self.job_id} on {self.queue}: {self.reason[:60]!r}>"


def _public(raw: RawDeadLetter) -> DeadLetter:
    try:
        record: JobRecord | None = decode_record(raw.data)
    except SerializationError:
        record = None
    return DeadLetter(raw.job_id, raw.queue, raw.reason, raw.time, record, raw.attempts)


async def list_dead_letters(
    connection: Connection, queue: str | None, limit: int
) -> list[DeadLetter]:
    raw = await connection.call(connection.transport.dead_letters, queue, limit)
    return [_public(letter) for letter in raw]


async def _find(connection: Connection, job_id: str) -> RawDeadLetter:
    letter = await connection.call(connection.transport.dead_letter, job_id)
    if letter is None:
        raise JobNotFound(f"no dead letter for job {job_id!r}")
    return letter


async def requeue_dead_letter(connection: Connection, job_id: str) -> tuple[str, JobRecord]:
    """Enqueue the job again as new; returns its id and queued record."""
    transport = connection.transport
    letter = await _find(connection, job_id)
    try:
        old = decode_record(letter.data)
    except SerializationError as exc:
        raise SerializationError(
            f"dead letter {job_id} is not a job, it cannot run: {exc}"
        ) from exc
    now = utcnow()
    record = old.moved_to(
        JobStatus.QUEUED,
        now,
        attempts=0,
        started_at=None,
        ended_at=None,
        worker_id=None,
        result=None,
        error=None,
        progress=None,
    )
    data = encode_record(record)
    # The record goes first: until a worker takes the job, it must not read as failed.
    await connection.call(transport.write_record, record.queue, record.id, data, "queued")
    lane = names.lane(record.queue, record.priority)
    await connection.call(transport.enqueue, OutgoingJob(lane, record.id, data, False))
    await connection.call(transport.delete_dead_letter, letter.sequence)
    return record.id, record


async def delete_dead_letter(connection: Connection, job_id: str) -> bool:
    letter = await connection.call(connection.transport.dead_letter, job_id)
    if letter is None:
        return False
    return await connection.call(connection.transport.delete_dead_letter, letter.sequence)
