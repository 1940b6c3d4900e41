"""JSON views of naq's objects for the dashboard's API; never unpickles anything."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from .._admin import QueueInfo
from .._dead_letters import DeadLetter
from .._heartbeat import WorkerInfo
from .._record import JobRecord
from .._schedules import Schedule
from .._time import as_utc

__all__ = [
    "dead_letter_json",
    "job_json",
    "job_summary",
    "queue_json",
    "schedule_json",
    "worker_json",
]

PICKLED = "(pickled)"


def _time(value: datetime | None) -> str | None:
    """ISO 8601 in UTC, as everywhere in naq's output."""
    return as_utc(value).isoformat() if value is not None else None


def _call(record: JobRecord) -> tuple[Any, Any]:
    """(args, kwargs) to show: the JSON values, or "(pickled)" (never unpickled here)."""
    payload = record.payload
    if record.serializer == "json" and isinstance(payload, dict):
        return payload.get("args", []), payload.get("kwargs", {})
    return PICKLED, PICKLED


def job_summary(record: JobRecord) -> dict[str, Any]:
    """The few fields a job list shows."""
    return {
        "id": record.id,
        "queue": record.queue,
        "func_name": record.func_name,
        "status": record.status.value,
        "attempts": record.attempts,
        "progress": record.progress,
        "enqueued_at": _time(record.enqueued_at),
        "ended_at": _time(record.ended_at),
        "worker_id": record.worker_id,
    }


def job_json(record: JobRecord) -> dict[str, Any]:
    """Everything about one job: call, history, attempts, outcome, meta and progress."""
    args, kwargs = _call(record)
    result: Any = None
    if record.result is not None:
        result = record.result if record.serializer == "json" else PICKLED
    error = record.error
    return {
        **job_summary(record),
        "serializer": record.serializer,
        "args": args,
        "kwargs": kwargs,
        "max_attempts": record.retry.max + 1 if record.retry is not None else 1,
        "started_at": _time(record.started_at),
        "job_timeout": record.job_timeout,
        "depends_on": list(record.depends_on),
        "meta": record.meta,
        "result": result,
        "error": (
            {"type": error.type, "message": error.message, "traceback": error.traceback}
            if error is not None
            else None
        ),
        "history": [{"status": h.status.value, "at": _time(h.at)} for h in record.history],
    }


def queue_json(info: QueueInfo) -> dict[str, Any]:
    return {
        "name": info.name,
        "pending": info.pending,
        "in_progress": info.in_progress,
        "throughput": info.throughput,
        "workers": info.workers,
    }


def worker_json(info: WorkerInfo) -> dict[str, Any]:
    return {
        "id": info.id,
        "host": info.host,
        "pid": info.pid,
        "queues": info.queues,
        "backend": info.backend,
        "concurrency": info.concurrency,
        "running": info.running,
        "processed": info.processed,
        "failed": info.failed,
        "throughput": info.throughput,
        "state": info.state,
        "started_at": _time(info.started_at),
        "last_heartbeat": _time(info.last_heartbeat),
    }


def dead_letter_json(letter: DeadLetter) -> dict[str, Any]:
    record = letter.record
    return {
        "job_id": letter.job_id,
        "queue": letter.queue,
        "reason": letter.reason,
        "time": _time(letter.time),
        "func_name": record.func_name if record is not None else None,
        "attempts": letter.attempts,
        "error": (
            {"type": record.error.type, "message": record.error.message}
            if record is not None and record.error is not None
            else None
        ),
    }


def schedule_json(schedule: Schedule) -> dict[str, Any]:
    return {
        "id": schedule.id,
        "queue": schedule.queue,
        "func_name": schedule.func_name,
        "cron": schedule.cron,
        "interval": schedule.interval,
        "at": _time(schedule.trigger.at),
        "engine": schedule.engine,
        "status": schedule.status.value,
        "one_off": schedule.one_off,
        "repeat": schedule.repeat,
        "runs": schedule.runs,
        "next_run": _time(schedule.next_run),
        "last_run": _time(schedule.last_run),
        "last_job_id": schedule.last_job_id,
    }
