"""``Job``: a handle on one enqueued job, to read its status and wait for its result."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Generic

from typing_extensions import TypeVar

from ._errors import JobCanceled, JobFailed, ResultTimeout
from ._record import ErrorInfo, JobRecord, JobStatus
from ._serializers import serializer_for_record
from ._waiting import why_still_waiting

if TYPE_CHECKING:
    from ._connection import Connection

__all__ = ["Job", "R_co"]

R_co = TypeVar("R_co", covariant=True, default=Any)
"""What a job's function returns: ``Job[int]`` is a job whose ``result()`` is an int. Unknown
(``Any``) for a job enqueued by name (``"pkg.mod:func"``) or read back by id."""


class Job(Generic[R_co]):
    """A handle on a job by id. ``record`` is the last snapshot read, if any.

    Generic in the result of the job's function: ``await job.result()`` is typed as that.
    """

    id: str
    record: JobRecord | None

    def __init__(self, connection: Connection, job_id: str, record: JobRecord | None = None):
        self._connection = connection
        self.id = job_id
        self.record = record

    def __repr__(self) -> str:
        status = self.record.status.value if self.record else "?"
        return f"<naq.Job {self.id} {status}>"

    async def refresh(self) -> JobRecord:
        """Read the job's current record (raises JobNotFound when it has none)."""
        self.record = await self._connection.get_record(self.id)
        return self.record

    async def get_status(self) -> JobStatus:
        """The job's current status."""
        return (await self.refresh()).status

    async def wait_until(self, *statuses: JobStatus, timeout: float | None = None) -> JobStatus:
        """Wait until the job reaches one of ``statuses`` (default: any end) and return it.

        Woken by the record's updates, like :meth:`result`; raises ResultTimeout.
        """
        wanted = frozenset(JobStatus(s) for s in statuses) if statuses else None
        self.record = await self._wait(wanted, timeout)
        return self.record.status

    async def _wait(self, wanted: frozenset[JobStatus] | None, timeout: float | None) -> JobRecord:
        try:
            return await self._connection.wait_status(self.id, wanted, timeout)
        except ResultTimeout as exc:
            if not timeout:  # timeout=0 is a poll ("is it done?"): keep it one read
                raise
            hint = await why_still_waiting(self._connection, self.id)
            if hint is None:
                raise
            raise ResultTimeout(f"{exc}: {hint}") from None

    async def cancel(self) -> bool:
        """Cancel this job (see :meth:`naq.Client.cancel`); False if it had ended."""
        from ._lifecycle import cancel

        return await cancel(self._connection, self.id)

    async def result(self, timeout: float | None = None) -> R_co:
        """Wait for the job to end and return its value, or raise JobFailed with the remote error.

        Raises ResultTimeout (a TimeoutError) when ``timeout`` seconds pass first, saying why
        when it is plain (no live worker consumes the job's queue). The wait is woken by the
        worker's write of the outcome; nothing polls.
        """
        record = await self._wait(None, timeout)
        self.record = record
        if record.status is JobStatus.FINISHED:
            serializer = serializer_for_record(record.serializer, self._connection.serializer)
            return serializer.decode_value(record.result)
        error = record.error or ErrorInfo("JobCanceled", f"job ended {record.status.value}", "")
        if record.status is JobStatus.CANCELED:
            raise JobCanceled(self.id, error.type, error.message, error.traceback)
        raise JobFailed(self.id, error.type, error.message, error.traceback)
