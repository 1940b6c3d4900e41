"""Operator views and actions: ``list-workers``, ``info``, ``purge``."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import anyio
import attrs
import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from .._admin import Admin, QueueInfo
from .._client import Client
from .._heartbeat import WorkerInfo
from .._settings import ConnectOptions
from .._time import utcnow
from . import app
from ._common import console, naq_command, print_json

__all__ = ["info", "list_workers", "purge"]

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


def _age(when: datetime) -> str:
    seconds = max(0.0, (utcnow() - when).total_seconds())
    return f"{seconds:.1f}s ago" if seconds < 120 else f"{seconds / 60:.0f}m ago"


def _worker_json(w: WorkerInfo) -> dict:
    data = attrs.asdict(w)
    data["started_at"] = w.started_at.isoformat()
    data["last_heartbeat"] = w.last_heartbeat.isoformat()
    return data


async def _workers(options: ConnectOptions) -> list[WorkerInfo]:
    async with Client(connect_options=options) as client:
        return await Admin(client).workers()


@naq_command(app, "list-workers")
def list_workers(
    options: ConnectOptions,
    queue: Annotated[
        list[str] | None, typer.Option("--queue", "-q", help="Only workers of these queues.")
    ] = None,
    json: JsonOption = False,
) -> None:
    """List live workers: what they consume, what they run, how much they did."""
    workers = anyio.run(_workers, options)
    if queue:
        workers = [w for w in workers if set(queue) & set(w.queues)]
    if json:
        print_json([_worker_json(w) for w in workers])
        return
    if not workers:
        console.print("no live workers")
        return
    table = Table(title=f"{len(workers)} worker(s)")
    table.add_column("id", no_wrap=True)
    for column in ("host", "pid", "queues", "backend"):
        table.add_column(column)
    for column in ("conc.", "running", "done", "failed"):
        table.add_column(column, justify="right")
    table.add_column("state")
    table.add_column("heartbeat", no_wrap=True)
    for w in workers:
        table.add_row(
            w.id,
            w.host,
            str(w.pid),
            ", ".join(w.queues),
            w.backend,
            str(w.concurrency),
            str(w.running),
            str(w.processed),
            str(w.failed),
            w.state,
            _age(w.last_heartbeat),
        )
    console.print(table)


async def _info(
    options: ConnectOptions, queues: list[str] | None
) -> tuple[list[QueueInfo], list[WorkerInfo]]:
    async with Client(connect_options=options) as client:
        admin = Admin(client)
        return await admin.queues(queues), await admin.workers()


@naq_command(app)
def info(
    options: ConnectOptions,
    queues: Annotated[
        list[str] | None, typer.Argument(help="Queues to show (default: all known).")
    ] = None,
    json: JsonOption = False,
) -> None:
    """Show each queue's depth, jobs in progress, recent throughput and workers."""
    queue_infos, workers = anyio.run(_info, options, queues or None)
    if json:
        print_json(
            {
                "queues": [attrs.asdict(q) for q in queue_infos],
                "workers": [_worker_json(w) for w in workers],
            }
        )
        return
    table = Table(title=f"{len(queue_infos)} queue(s), {len(workers)} live worker(s)")
    table.add_column("queue")
    for column in ("pending", "in progress", "jobs/s (1 min)", "workers"):
        table.add_column(column, justify="right")
    for q in queue_infos:
        table.add_row(
            q.name, str(q.pending), str(q.in_progress), f"{q.throughput:g}", str(len(q.workers))
        )
    console.print(table)


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
    queues: Annotated[list[str], typer.Argument(help="Queues to empty.")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    json: JsonOption = False,
) -> None:
    """Remove every queued job of QUEUES (waiting or waiting to retry) and say how many."""
    if not yes:
        typer.confirm(f"Remove all jobs of {', '.join(queues)}?", abort=True, err=True)
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        console=console.__class__(stderr=True),
        transient=True,
    )
    with progress:
        purged = anyio.run(_purge, options, queues, progress)
    if json:
        print_json(purged)
        return
    for queue, count in purged.items():
        console.print(f"purged {count} job(s) from {queue}")
