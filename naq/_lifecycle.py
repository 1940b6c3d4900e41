"""Cancellation and dependencies: the protocols over NATS that outlive a single run.

Both are built so that two parties acting at the same moment cannot lose a job:

- **Dependencies.** A dependent is stored ``deferred``, then its edges are written, then its
  dependencies are checked. A worker stores a job's outcome, then looks for edges. Whichever
  happens second sees the other's write, so a dependency ending at the moment its dependent
  is enqueued never strands it. Both sides may try to release it: the job message carries
  its id as ``Nats-Msg-Id`` (JetStream drops the duplicate) and the ``queued`` record is a
  compare-and-set on the ``deferred`` one, so it is released once.
- **Cancellation.** Workers are told first (a worker holding the message skips or stops
  it), then the message is taken out of its queue, then the record is set ``canceled`` with
  a compare-and-set, so an outcome a worker stored meanwhile is never overwritten.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ._connection import Connection
from ._errors import JobNotFound
from ._record import ErrorInfo, JobRecord, JobStatus, decode_record, encode_record, keep_for
from ._serializers import serializer_for_record
from ._time import utcnow
from ._transport import OutgoingJob, names

__all__ = ["cancel", "defer", "dependency_results", "jobs_ended"]


async def cancel(connection: Connection, job_id: str) -> bool:
    """Cancel a job that has not ended; False if it had ended already."""
    transport = connection.transport
    stored = await connection.call(transport.stored_record, job_id)
    queued = await connection.call(transport.queued_message, job_id)
    if stored is None and queued is None:
        raise JobNotFound(f"no job {job_id!r} (it never existed or its record expired)")
    current = decode_record((stored or queued).data)  # type: ignore[union-attr]
    if current.status.is_terminal:
        return False
    await connection.call(transport.notify_cancel, job_id)
    if queued is not None:
        await connection.call(transport.delete_queued, queued.sequence)
    now = utcnow()
    why = ErrorInfo("JobCanceled", "canceled on request", "")
    canceled = current.moved_to(JobStatus.CANCELED, now, ended_at=now, error=why)
    written = await connection.call(
        transport.write_record,
        current.queue,
        job_id,
        encode_record(canceled),
        "canceled",
        keep_for(current.failure_ttl, None),
        stored.sequence if stored is not None else 0,
    )
    if written:
        await jobs_ended(connection, [canceled])
    # Not written: a worker holds the job; the notice makes it record the cancellation.
    return True


async def defer(connection: Connection, record: JobRecord) -> bool:
    """Store a job that waits for ``record.depends_on``, and release it if they ended.

    False when a record with this id exists already (the enqueue was a repeat).
    """
    transport = connection.transport
    for dependency_id in record.depends_on:
        if await connection.call(transport.get_record, dependency_id) is None:
            raise JobNotFound(f"dependency {dependency_id!r} does not exist")
    created = await connection.call(
        transport.write_record, record.queue, record.id, encode_record(record), "deferred", None, 0
    )
    if not created:
        return False
    await connection.call(transport.add_dependency, record.depends_on, record.id)
    await _try_release(connection, record.id)
    return True


async def jobs_ended(
    connection: Connection,
    ended: Sequence[JobRecord],
    edges: Mapping[str, Sequence[str]] | None = None,
) -> None:
    """After these jobs' outcomes are stored: release or cancel whatever waits for them.

    ``edges`` (job id to the ids waiting for it) is looked up unless the caller has it.
    """
    if not ended:
        return
    if edges is None:
        edges = await connection.call(connection.transport.dependents_of, [r.id for r in ended])
    for record in ended:
        for dependent_id in edges.get(record.id, ()):
            await _try_release(connection, dependent_id)


async def dependency_results(connection: Connection, record: JobRecord) -> dict[str, Any]:
    """The results of ``record``'s finished dependencies, by job id."""
    results: dict[str, Any] = {}
    for dependency_id in record.depends_on:
        data = await connection.call(connection.transport.get_record, dependency_id)
        if data is None:
            continue
        dependency = decode_record(data)
        if dependency.status is JobStatus.FINISHED:
            serializer = serializer_for_record(dependency.serializer, connection.serializer)
            results[dependency_id] = serializer.decode_value(dependency.result)
    return results


async def _try_release(connection: Connection, dependent_id: str) -> None:
    transport = connection.transport
    stored = await connection.call(transport.stored_record, dependent_id)
    if stored is None:
        return
    dependent = decode_record(stored.data)
    if dependent.status is not JobStatus.DEFERRED:
        return
    dependencies = []
    for dependency_id in dependent.depends_on:
        data = await connection.call(transport.get_record, dependency_id)
        if data is None:
            continue  # its record expired after it finished (failures are kept)
        dependency = decode_record(data)
        if not dependency.status.is_terminal:
            return
        dependencies.append(dependency)
    now = utcnow()
    failed = [d for d in dependencies if d.status is not JobStatus.FINISHED]
    if failed and not dependent.allow_dependency_failures:
        why = ErrorInfo(
            "DependencyFailed", f"dependency {failed[0].id} ended {failed[0].status.value}", ""
        )
        canceled = dependent.moved_to(JobStatus.CANCELED, now, ended_at=now, error=why)
        written = await connection.call(
            transport.write_record,
            dependent.queue,
            dependent.id,
            encode_record(canceled),
            "canceled",
            keep_for(dependent.failure_ttl, None),
            stored.sequence,
        )
        if written:
            await jobs_ended(connection, [canceled])
        return
    queued = encode_record(dependent.moved_to(JobStatus.QUEUED, now))
    await connection.call(
        transport.enqueue,
        OutgoingJob(
            names.lane(dependent.queue, dependent.priority),
            dependent.id,
            queued,
            dedupe=True,
            headers=dependent.trace or None,
        ),
    )
    await connection.call(
        transport.write_record, dependent.queue, dependent.id, queued, "queued", None,
        stored.sequence,
    )  # fmt: skip
