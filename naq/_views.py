"""One JSON view per object: what ``naq ... --json`` prints and the dashboard's API returns.

Each view is a plain dict of JSON values, so the CLI and the dashboard show the same keys for
the same fields. The keys are the object's attribute names, with one exception: the job's
function (``func_name`` in a record and a schedule, the stored field) is ``function``, the
word the CLI's tables, the dashboard and the docs use. Times are ISO 8601 in UTC. Nothing is
ever unpickled here: a pickled call or result is shown as ``"(pickled)"``.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from ._admin import LimitInfo, QueueInfo
from ._dead_letters import DeadLetter
from ._heartbeat import WorkerInfo
from ._record import ErrorInfo, JobRecord
from ._retry import Retry
from ._schedules import Schedule
from ._time import as_utc

if TYPE_CHECKING:
    from ._history import Bucket

__all__ = [
    "PICKLED",
    "dead_letter_view",
    "history_view",
    "iso_time",
    "job_summary_view",
    "job_view",
    "limit_view",
    "queue_view",
    "schedule_view",
    "worker_view",
]

PICKLED = "(pickled)"
"""Shown in place of a pickled call or result, which is never unpickled to be shown."""


def iso_time(value: datetime | None) -> str | None:
    """A time as ISO 8601 in UTC (``2026-11-30T08:23:41.602422+00:00``), or None."""
    return as_utc(value).isoformat() if value is not None else None


def _call(record: JobRecord) -> tuple[Any, Any]:
    """(args, kwargs) to show: the JSON values, or "(pickled)" for both."""
    payload = record.payload
    if record.serializer == "json" and isinstance(payload, dict):
        return payload.get("args", []), payload.get("kwargs", {})
    return PICKLED, PICKLED


def _retry(retry: Retry | None) -> dict[str, Any] | None:
    if retry is None:
        return None
    interval = retry.interval
    return {
        "max": retry.max,
        "interval": list(interval) if isinstance(interval, tuple) else interval,
        "backoff": retry.backoff,
        "max_interval": retry.max_interval,
        "jitter": retry.jitter,
    }


def _error(error: ErrorInfo | None, *, traceback: bool) -> dict[str, Any] | None:
    if error is None:
        return None
    view: dict[str, Any] = {"type": error.type, "message": error.message}
    if traceback:
        view["traceback"] = error.traceback
    return view


def history_view(bucket: Bucket) -> dict[str, Any]:
    """One minute of history: when it starts, and the runs that finished and failed in it."""
    return {"start": iso_time(bucket.start), "finished": bucket.finished, "failed": bucket.failed}


def job_summary_view(record: JobRecord) -> dict[str, Any]:
    """The fields a list of jobs shows; :func:`job_view` has these and the rest."""
    return {
        "id": record.id,
        "queue": record.queue,
        "function": record.func_name,
        "status": record.status.value,
        "attempts": record.attempts,
        "progress": record.progress,
        "enqueued_at": iso_time(record.enqueued_at),
        "ended_at": iso_time(record.ended_at),
        "worker_id": record.worker_id,
    }


def job_view(record: JobRecord) -> dict[str, Any]:
    """One job: its call, options (limits and uniqueness too), attempts, outcome, meta,
    progress and history."""
    args, kwargs = _call(record)
    result: Any = None
    if record.result is not None:
        result = record.result if record.serializer == "json" else PICKLED
    return {
        **job_summary_view(record),
        "serializer": record.serializer,
        "args": args,
        "kwargs": kwargs,
        "max_attempts": record.retry.max + 1 if record.retry is not None else 1,
        "started_at": iso_time(record.started_at),
        "job_timeout": record.job_timeout,
        "retry": _retry(record.retry),
        "result_ttl": record.result_ttl,
        "failure_ttl": record.failure_ttl,
        "ttl": record.ttl,
        "depends_on": list(record.depends_on),
        "allow_dependency_failures": record.allow_dependency_failures,
        "meta": record.meta,
        "unique": record.unique,
        "unique_key": record.unique_key,
        "max_running": record.max_running,
        "rate_limit": record.rate_limit,
        "limit_key": record.limit_key,
        "priority": record.priority,
        "result": result,
        "error": _error(record.error, traceback=True),
        "history": [{"status": h.status.value, "at": iso_time(h.at)} for h in record.history],
    }


def limit_view(info: LimitInfo) -> dict[str, Any]:
    """One limit key: jobs running in a slot, jobs waiting on a limit, reporting workers."""
    return {
        "key": info.key,
        "running": info.running,
        "waiting": info.waiting,
        "workers": list(info.workers),
    }


def queue_view(info: QueueInfo) -> dict[str, Any]:
    """One queue: pending, in progress, jobs per second (last minute), its workers' ids."""
    return {
        "name": info.name,
        "pending": info.pending,
        "in_progress": info.in_progress,
        "throughput": info.throughput,
        "workers": list(info.workers),
    }


def worker_view(info: WorkerInfo) -> dict[str, Any]:
    """One live worker, as its last heartbeat described it."""
    return {
        "id": info.id,
        "host": info.host,
        "pid": info.pid,
        "parent": info.parent,
        "queues": list(info.queues),
        "backend": info.backend,
        "concurrency": info.concurrency,
        "running": info.running,
        "processed": info.processed,
        "failed": info.failed,
        "throughput": dict(info.throughput),
        "state": info.state,
        "started_at": iso_time(info.started_at),
        "last_heartbeat": iso_time(info.last_heartbeat),
        "heartbeat_interval": info.heartbeat_interval,
    }


def dead_letter_view(letter: DeadLetter) -> dict[str, Any]:
    """One dead letter: which job, why, when, after how many runs, and its error."""
    record = letter.record
    return {
        "job_id": letter.job_id,
        "queue": letter.queue,
        "reason": letter.reason,
        "time": iso_time(letter.time),
        "function": record.func_name if record is not None else None,
        "attempts": letter.attempts,
        "error": _error(record.error if record is not None else None, traceback=False),
    }


def schedule_view(schedule: Schedule) -> dict[str, Any]:
    """One schedule or delayed job (``one_off``): its trigger, state and runs."""
    return {
        "id": schedule.id,
        "queue": schedule.queue,
        "function": schedule.func_name,
        "schedule": schedule.describe(),
        "cron": schedule.cron,
        "interval": schedule.interval,
        "at": iso_time(schedule.at),
        "timezone": schedule.timezone,
        "repeat": schedule.repeat,
        "engine": schedule.engine,
        "one_off": schedule.one_off,
        "status": schedule.status.value,
        "runs": schedule.runs,
        "next_run": iso_time(schedule.next_run),
        "last_run": iso_time(schedule.last_run),
        "last_job_id": schedule.last_job_id,
    }
