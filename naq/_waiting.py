"""Why a wait for a job ran out: the hint a ``ResultTimeout`` carries.

A job on a queue that no live worker consumes waits forever; a bare "did not end within
10 s" leaves its caller guessing (a typo in ``queue=``, or ``naq dev`` consuming only
``default``). After the wait has already timed out, so at no cost to waits that succeed,
naq reads the job's record and the live workers once and says what it found.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import anyio
from loguru import logger

from ._errors import NaqError
from ._heartbeat import decode_worker_info
from ._record import JobStatus

if TYPE_CHECKING:
    from ._connection import Connection

__all__ = ["why_still_waiting"]

HINT_TIMEOUT = 2.0
"""Seconds the look costs at most (after a timeout, with the server possibly gone)."""


async def why_still_waiting(connection: Connection, job_id: str) -> str | None:
    """A short reason the job has not ended, when one is plain from its record; else None.

    Reading fails quietly on purpose: the caller raises its ResultTimeout either way, and
    this only adds to its message (the failure is logged at debug level).
    """
    with anyio.move_on_after(HINT_TIMEOUT):
        try:
            record = await connection.get_record(job_id)
            if record.status is JobStatus.DEFERRED:
                return "it is deferred until the jobs it depends on finish"
            if record.status is not JobStatus.QUEUED:
                return None
            beats = await connection.call(connection.transport.admin.heartbeats)
            if any(record.queue in decode_worker_info(beat).queues for beat in beats):
                return None
            return (
                f"it is still queued on {record.queue!r}, and no live worker consumes that "
                f"queue (start one: naq worker {record.queue})"
            )
        except NaqError as exc:
            logger.debug("could not tell why job {} is still waiting: {}", job_id, exc)
    return None
