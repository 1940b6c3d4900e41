"""What ``naq list-scheduled`` and ``naq job-control`` do, kept out of cli.py's parsing."""

from __future__ import annotations

import json
from datetime import datetime

from ._client import Client
from ._errors import ConfigurationError, ScheduleNotFound
from ._schedules import Schedule
from ._time import as_utc

__all__ = ["ACTIONS", "job_control", "list_scheduled", "schedules_table"]

ACTIONS = ("cancel", "pause", "resume", "reschedule")


def _when(value: datetime | None) -> str:
    return f"{as_utc(value):%Y-%m-%d %H:%M:%S}" if value is not None else "-"


def schedules_table(schedules: list[Schedule]) -> str:
    """A plain-text table: id, function, schedule, next run (UTC), status, runs."""
    header = ("ID", "FUNCTION", "SCHEDULE", "NEXT RUN (UTC)", "STATUS", "RUNS")
    rows = [header] + [
        (s.id, s.func_name, s.describe(), _when(s.next_run), s.status.value, str(s.runs))
        for s in schedules
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


def _as_json(schedule: Schedule) -> dict[str, object]:
    return {
        "id": schedule.id,
        "function": schedule.func_name,
        "queue": schedule.queue,
        "schedule": schedule.describe(),
        "cron": schedule.cron,
        "interval": schedule.interval,
        "at": schedule.at.isoformat() if schedule.at else None,
        "timezone": schedule.timezone,
        "repeat": schedule.repeat,
        "engine": schedule.engine,
        "next_run": schedule.next_run.isoformat() if schedule.next_run else None,
        "status": schedule.status.value,
        "runs": schedule.runs,
        "last_job_id": schedule.last_job_id,
        "delayed_job": schedule.one_off,
    }


async def list_scheduled(url: str, status: str | None, queue: str | None, as_json: bool) -> str:
    async with Client(url) as client:
        schedules = await client.list_schedules(status=status, queue=queue)
    if as_json:
        return json.dumps([_as_json(s) for s in schedules], indent=2)
    return schedules_table(schedules)


async def job_control(
    url: str,
    target: str,
    action: str,
    cron: str | None,
    interval: float | None,
    at: datetime | None,
) -> str:
    if action not in ACTIONS:
        raise ConfigurationError(f"unknown action {action!r}: use one of {', '.join(ACTIONS)}")
    if action != "reschedule" and (cron or interval or at):
        raise ConfigurationError("--cron, --interval and --at go with 'reschedule' only")
    async with Client(url) as client:
        if action == "cancel":
            try:
                schedule = await client.cancel_schedule(target)
            except ScheduleNotFound:  # not a schedule: an ordinary job
                if await client.cancel(target):
                    return f"job {target}: canceled"
                return f"job {target}: had already ended"
        elif action == "pause":
            schedule = await client.pause_schedule(target)
        elif action == "resume":
            schedule = await client.resume_schedule(target)
        else:
            schedule = await client.reschedule(target, cron=cron, interval=interval, at=at)
    return f"{schedule.id}: {schedule.status.value}, {schedule.describe()}, next run " + (
        _when(schedule.next_run) + " UTC" if schedule.next_run else "none"
    )
