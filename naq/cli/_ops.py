"""Operator views and actions: ``list-workers``, ``info``, ``purge``."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from .._admin import Admin, LimitInfo, QueueInfo, limits_of
from .._client import Client
from .._heartbeat import WorkerInfo
from .._settings import ConnectOptions
from .._time import utcnow
from .._views import limit_view, queue_view, worker_view
from . import app
from ._common import check_queues, naq_command, run
from ._output import Listing, console, print_json

__all__ = ["info", "list_workers", "purge"]

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


def _age(when: datetime) -> str:
    seconds = max(0.0, (utcnow() - when).total_seconds())
    return f"{seconds:.1f}s ago" if seconds < 120 else f"{seconds / 60:.0f}m ago"


async def _workers(options: ConnectOptions) -> list[WorkerInfo]:
    async with Client(connect_options=options) as client:
        return await Admin(client).workers()


@naq_command(app, "list-workers")
def list_workers(
    options: ConnectOptions,
    queue: Annotated[
        list[str] | None,
        typer.Option("--queue", "-q", metavar="QUEUE", help="Only workers of these queues."),
    ] = None,
    json: JsonOption = False,
) -> None:
    """List live workers: queues, running and done jobs."""
    workers = run(_workers, options)
    if queue:
        workers = [w for w in workers if set(queue) & set(w.queues)]
    if json:
        print_json([worker_view(w) for w in workers])
        return
    if not workers:
        console.print("no live workers")
        return
    table = Listing(title=f"{len(workers)} worker(s)")
    table.id_column("id")
    for column in ("host", "pid", "parent", "queues", "backend"):
        table.text_column(column)
    for column in ("conc.", "running", "done", "failed"):
        table.text_column(column, right=True)
    table.text_column("state")
    table.text_column("heartbeat")
    for w in workers:
        table.add_row(
            w.id,
            w.host,
            str(w.pid),
            "" if w.parent is None else str(w.parent),
            ", ".join(w.queues),
            w.backend,
            str(w.concurrency),
            str(w.running),
            str(w.processed),
            str(w.failed),
            w.state,
            _age(w.last_heartbeat),
        )
    table.print()


async def _info(
    options: ConnectOptions, queues: list[str] | None
) -> tuple[list[QueueInfo], list[WorkerInfo], list[LimitInfo]]:
    async with Client(connect_options=options) as client:
        admin = Admin(client)
        workers = await admin.workers()
        return await admin.queues(queues), workers, limits_of(workers)


@naq_command(app)
def info(
    options: ConnectOptions,
    queues: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="QUEUE...",
            callback=check_queues,
            help="Queues to show (default: every queue with a worker or a job).",
        ),
    ] = None,
    json: JsonOption = False,
) -> None:
    """Show each queue: pending, in progress, jobs/s, workers; and each limit key with jobs
    running in a slot or waiting on a limit."""
    queue_infos, workers, limits = run(_info, options, queues or None)
    if json:
        print_json(
            {
                "queues": [queue_view(q) for q in queue_infos],
                "workers": [worker_view(w) for w in workers],
                "limits": [limit_view(limit) for limit in limits],
            }
        )
        return
    table = Listing(title=f"{len(queue_infos)} queue(s), {len(workers)} live worker(s)")
    table.id_column("queue")
    for column in ("pending", "in progress", "jobs/s (1 min)", "workers"):
        table.text_column(column, right=True)
    for q in queue_infos:
        table.add_row(
            q.name, str(q.pending), str(q.in_progress), f"{q.throughput:g}", str(len(q.workers))
        )
    table.print()
    if limits:
        limit_table = Listing(title=f"{len(limits)} limit key(s) in use")
        limit_table.id_column("limit key")
        for column in ("running", "waiting", "workers"):
            limit_table.text_column(column, right=True)
        for limit in limits:
            limit_table.add_row(
                limit.key, str(limit.running), str(limit.waiting), str(len(limit.workers))
            )
        limit_table.print()


async def _purge(options: ConnectOptions, queues: list[str], progress: Progress) -> dict[str, int]:
    purged: dict[str, int] = {}
    async with Client(connect_options=options) as client:
        admin = Admin(client)
        task = progress.add_task("purging", total=len(queues))
        for queue in queues:
            progress.update(task, description=f"purging {queue}")
            purged[queue] = await admin.purge(queue)
            progress.advance(task)
    return purged


@naq_command(app)
def purge(
    options: ConnectOptions,
    queues: Annotated[
        list[str],
        typer.Argument(metavar="QUEUE...", callback=check_queues, help="Queues to empty."),
    ],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    json: JsonOption = False,
) -> None:
    """Remove the queued jobs of QUEUES and say how many.

    Jobs waiting, or waiting to retry, are removed; running ones finish.
    """
    if not yes:
        typer.confirm(f"Remove all jobs of {', '.join(queues)}?", abort=True, err=True)
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        console=Console(stderr=True),
        transient=True,
    )
    with progress:
        purged = run(_purge, options, queues, progress)
    if json:
        print_json(purged)
        return
    for queue, count in purged.items():
        console.print(f"purged {count} job(s) from {queue}")
