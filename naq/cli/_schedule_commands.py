"""``naq scheduler``, ``naq list-scheduled`` and ``naq job-control``."""

from __future__ import annotations

import enum
import json
from datetime import datetime
from typing import Annotated

import typer

from .._client import Client
from .._errors import ScheduleNotFound
from .._schedules import Schedule, Scheduler, ScheduleStatus
from .._settings import ConnectOptions
from .._views import schedule_view
from . import BackendOption, DjangoOption, app, run_until_signalled
from ._common import Backend, naq_command, run, usage_error
from ._output import iso

__all__ = ["Action", "schedules_table"]


class Action(enum.StrEnum):
    """What ``naq job-control ID ACTION`` does."""

    cancel = "cancel"
    pause = "pause"
    resume = "resume"
    reschedule = "reschedule"


def _when(value: datetime | None) -> str:
    return iso(value, seconds=True) or "-"


def schedules_table(schedules: list[Schedule]) -> str:
    """A plain-text table: id, function, schedule, next run (UTC), status, runs."""
    header = ("ID", "FUNCTION", "SCHEDULE", "NEXT RUN", "STATUS", "RUNS")
    rows = [header] + [
        (s.id, s.func_name, s.describe(), _when(s.next_run), s.status.value, str(s.runs))
        for s in schedules
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


async def _list_scheduled(
    options: ConnectOptions, status: ScheduleStatus | None, queue: str | None, as_json: bool
) -> str:
    async with Client(connect_options=options) as client:
        schedules = await client.list_schedules(status=status, queue=queue)
    if as_json:
        return json.dumps([schedule_view(s) for s in schedules], indent=2)
    return schedules_table(schedules)


async def _job_control(
    options: ConnectOptions,
    target: str,
    action: Action,
    cron: str | None,
    interval: float | None,
    at: datetime | None,
) -> str:
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
        _when(schedule.next_run) if schedule.next_run else "none"
    )


@naq_command(app)
def scheduler(
    options: ConnectOptions,
    backend: BackendOption = Backend.asyncio,
    django: DjangoOption = None,
) -> None:
    """Run the naq scheduling engine (safe to run many).

    Needed on servers without message schedules (nats-server before 2.14).
    """
    from .._integrations import connect_options_after_setup, setup_django

    setup_django(django)
    options = connect_options_after_setup(options)
    run(run_until_signalled, Scheduler(connect_options=options), backend=backend.value)


@naq_command(app, "list-scheduled")
def list_scheduled(
    options: ConnectOptions,
    status: Annotated[ScheduleStatus | None, typer.Option(help="Only this status.")] = None,
    queue: Annotated[str | None, typer.Option(metavar="QUEUE", help="Only this queue.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON instead of a table.")] = False,
) -> None:
    """List schedules and delayed jobs.

    Id, function, schedule, next run (UTC), status, runs.
    """
    typer.echo(run(_list_scheduled, options, status, queue, as_json))


@naq_command(app, "job-control")
def job_control(
    options: ConnectOptions,
    target: Annotated[str, typer.Argument(metavar="ID", help="Schedule id or job id.")],
    action: Annotated[
        Action, typer.Argument(metavar="ACTION", help="cancel, pause, resume or reschedule.")
    ],
    cron: Annotated[str | None, typer.Option(metavar="EXPR", help="New cron expression.")] = None,
    interval: Annotated[
        float | None, typer.Option(metavar="SECONDS", help="New interval in seconds.")
    ] = None,
    at: Annotated[
        datetime | None, typer.Option(metavar="TIME", help="New time (ISO 8601; naive is UTC).")
    ] = None,
) -> None:
    """Cancel, pause, resume or reschedule; or cancel a job."""
    if action is not Action.reschedule and (cron or interval or at):
        raise usage_error("--cron, --interval and --at go with 'reschedule' only")
    typer.echo(run(_job_control, options, target, action, cron, interval, at))
