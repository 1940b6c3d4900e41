"""``naq failed list|requeue|delete``: dead letters from the shell."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.progress import track

from .._client import Client
from .._dead_letters import DeadLetter
from .._settings import ConnectOptions
from . import app
from ._common import naq_command, run, usage_error
from ._help import NaqGroup
from ._output import Listing, iso, print_json

__all__ = ["failed_app"]

failed_app = typer.Typer(
    cls=NaqGroup,
    help="Dead letters: list, requeue or delete failed jobs.",
    no_args_is_help=True,
    rich_markup_mode=None,
)

QueueOption = Annotated[
    str | None, typer.Option("--queue", metavar="QUEUE", help="Only this queue.")
]


def _as_json(letter: DeadLetter) -> dict[str, object]:
    record = letter.record
    return {
        "job_id": letter.job_id,
        "queue": letter.queue,
        "reason": letter.reason,
        "time": iso(letter.time),
        "function": record.func_name if record else None,
        "attempts": letter.attempts,
    }


async def _letters(options: ConnectOptions, queue: str | None, limit: int) -> list[DeadLetter]:
    async with Client(connect_options=options) as client:
        return await client.dead_letters(queue, limit)


@naq_command(failed_app, "list")
def list_failed(
    options: ConnectOptions,
    queue: QueueOption = None,
    limit: Annotated[int, typer.Option(min=1, metavar="N", help="At most this many.")] = 1000,
    as_json: Annotated[bool, typer.Option("--json", help="JSON for scripts.")] = False,
) -> None:
    """List dead letters, oldest first."""
    letters = run(_letters, options, queue, limit)
    if as_json:
        print_json([_as_json(letter) for letter in letters])
        return
    table = Listing()
    table.id_column("job id")
    for column in ("queue", "function", "attempts", "reason", "time"):
        table.text_column(column)
    for letter in letters:
        row = _as_json(letter)
        row["time"] = iso(letter.time, seconds=True)
        table.add_row(*(str(row[k] if row[k] is not None else "-") for k in (
            "job_id", "queue", "function", "attempts", "reason", "time",
        )))  # fmt: skip
    table.print()
    typer.echo(f"{len(letters)} dead letter(s)")


def _targets(
    options: ConnectOptions, ids: list[str] | None, every: bool, queue: str | None
) -> list[str]:
    if bool(ids) == every:
        raise usage_error("name job ids, or pass --all (not both)")
    if ids:
        return ids
    return [letter.job_id for letter in run(_letters, options, queue, 1_000_000)]


async def _each(options: ConnectOptions, action: str, job_ids: list[str]) -> int:
    done = 0
    async with Client(connect_options=options) as client:
        for job_id in track(job_ids, description=f"{action}...", transient=True):
            if action == "requeue":
                await client.requeue_dead_letter(job_id)
                done += 1
            elif await client.delete_dead_letter(job_id):
                done += 1
    return done


@naq_command(failed_app, "requeue")
def requeue_failed(
    options: ConnectOptions,
    job_ids: Annotated[list[str] | None, typer.Argument(metavar="ID...", help="Job ids.")] = None,
    every: Annotated[bool, typer.Option("--all", help="Every dead letter.")] = False,
    queue: QueueOption = None,
) -> None:
    """Enqueue dead-lettered jobs again (attempts start over)."""
    targets = _targets(options, job_ids, every, queue)
    typer.echo(f"requeued {run(_each, options, 'requeue', targets)} job(s)")


@naq_command(failed_app, "delete")
def delete_failed(
    options: ConnectOptions,
    job_ids: Annotated[list[str] | None, typer.Argument(metavar="ID...", help="Job ids.")] = None,
    every: Annotated[bool, typer.Option("--all", help="Every dead letter.")] = False,
    queue: QueueOption = None,
) -> None:
    """Drop dead letters."""
    targets = _targets(options, job_ids, every, queue)
    typer.echo(f"deleted {run(_each, options, 'delete', targets)} dead letter(s)")


app.add_typer(failed_app, name="failed")
