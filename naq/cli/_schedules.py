"""``naq scheduler``, ``naq list-scheduled`` and ``naq job-control``."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated

import anyio
import typer

from .._client import Client
from .._errors import ConfigurationError, ScheduleNotFound
from .._scheduler import Scheduler
from .._schedules import Schedule
from .._settings import ConnectOptions
from .._time import as_utc
from . import Backend, app, run_until_signalled
from ._common import naq_command

__all__ = ["ACTIONS", "schedules_table"]

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


async def _list_scheduled(
    options: ConnectOptions, status: str | None, queue: str | None, as_json: bool
) -> str:
    async with Client(connect_options=options) as client:
        schedules = await client.list_schedules(status=status, queue=queue)
    if as_json:
        return json.dumps([_as_json(s) for s in schedules], indent=2)
    return schedules_table(schedules)


async def _job_control(
    options: ConnectOptions,
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
    async with Client(connect_options=options) as client:
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


@naq_command(app)
def scheduler(
    options: ConnectOptions,
    backend: Annotated[Backend, typer.Option(help="Event loop to run on.")] = Backend.asyncio,
) -> None:
    """Enqueue due runs of schedules on servers without message schedules (safe to run many)."""
    anyio.run(run_until_signalled, Scheduler(connect_options=options), backend=backend.value)


@naq_command(app, "list-scheduled")
def list_scheduled(
    options: ConnectOptions,
    status: Annotated[
        str | None, typer.Option(help="active, paused, completed or canceled.")
    ] = None,
    queue: Annotated[str | None, typer.Option(help="Only this queue.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON instead of a table.")] = False,
) -> None:
    """List schedules and delayed jobs: id, function, schedule, next run, status, runs."""
    typer.echo(anyio.run(_list_scheduled, options, status, queue, as_json))


@naq_command(app, "job-control")
def job_control(
    options: ConnectOptions,
    target: Annotated[str, typer.Argument(help="Schedule id or job id.")],
    action: Annotated[str, typer.Argument(help="cancel, pause, resume or reschedule.")],
    cron: Annotated[str | None, typer.Option(help="New cron expression.")] = None,
    interval: Annotated[float | None, typer.Option(help="New interval in seconds.")] = None,
    at: Annotated[datetime | None, typer.Option(help="New time (ISO 8601; naive is UTC).")] = None,
) -> None:
    """Cancel, pause, resume or reschedule a schedule; or cancel a job."""
    typer.echo(anyio.run(_job_control, options, target, action, cron, interval, at))
