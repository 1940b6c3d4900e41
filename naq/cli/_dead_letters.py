"""``naq dead-letters list|requeue|delete``: dead letters from the shell.

``naq failed ...``, the group's old name, is kept as a hidden alias.
"""

from __future__ import annotations

import enum
from typing import Annotated

import typer
from rich.progress import track

from .._client import Client
from .._dead_letters import DeadLetter
from .._settings import ConnectOptions
from .._views import dead_letter_view
from . import app
from ._common import naq_command, run, usage_error
from ._help import NaqGroup
from ._output import Listing, iso, print_json

__all__ = ["dead_letters_app"]

dead_letters_app = typer.Typer(
    cls=NaqGroup,
    help="List, requeue or delete dead letters (jobs failed for good).",
    no_args_is_help=True,
    rich_markup_mode=None,
)

QueueOption = Annotated[
    str | None, typer.Option("--queue", metavar="QUEUE", help="Only this queue.")
]
IdsArgument = Annotated[list[str] | None, typer.Argument(metavar="ID...", help="Job ids.")]
AllOption = Annotated[bool, typer.Option("--all", help="Every dead letter.")]

_COLUMNS = ("job_id", "queue", "function", "attempts", "reason", "time")


async def _letters(options: ConnectOptions, queue: str | None, limit: int) -> list[DeadLetter]:
    async with Client(connect_options=options) as client:
        return await client.dead_letters(queue, limit)


@naq_command(dead_letters_app, "list")
def list_dead_letters(
    options: ConnectOptions,
    queue: QueueOption = None,
    limit: Annotated[int, typer.Option(min=1, metavar="N", help="At most this many.")] = 1000,
    as_json: Annotated[bool, typer.Option("--json", help="JSON for scripts.")] = False,
) -> None:
    """List dead letters, oldest first."""
    letters = run(_letters, options, queue, limit)
    if as_json:
        print_json([dead_letter_view(letter) for letter in letters])
        return
    table = Listing()
    table.id_column("job id")
    for column in _COLUMNS[1:]:
        table.text_column(column)
    for letter in letters:
        row = dead_letter_view(letter)
        row["time"] = iso(letter.time, seconds=True)
        table.add_row(*(str(row[k] if row[k] is not None else "-") for k in _COLUMNS))
    table.print()
    typer.echo(f"{len(letters)} dead letter(s)")


class _Action(enum.Enum):
    """What ``requeue`` and ``delete`` do to each dead letter, and how they report it."""

    requeue = "requeued {} job(s)"
    delete = "deleted {} dead letter(s)"

    async def apply(self, client: Client, job_id: str) -> bool:
        """Act on one dead letter; False when there was none to delete."""
        if self is _Action.requeue:
            await client.requeue_dead_letter(job_id)
            return True
        return await client.delete_dead_letter(job_id)


async def _each(options: ConnectOptions, action: _Action, job_ids: list[str]) -> int:
    done = 0
    async with Client(connect_options=options) as client:
        for job_id in track(job_ids, description=f"{action.name}...", transient=True):
            if await action.apply(client, job_id):
                done += 1
    return done


def _act(
    action: _Action,
    options: ConnectOptions,
    ids: list[str] | None,
    every: bool,
    queue: str | None,
) -> None:
    """The body of ``requeue`` and ``delete``: the named dead letters, or ``--all``."""
    if bool(ids) == every:
        raise usage_error("name job ids, or pass --all (not both)")
    targets = ids or [letter.job_id for letter in run(_letters, options, queue, 1_000_000)]
    typer.echo(action.value.format(run(_each, options, action, targets)))


@naq_command(dead_letters_app, "requeue")
def requeue_dead_letters(
    options: ConnectOptions,
    job_ids: IdsArgument = None,
    every: AllOption = False,
    queue: QueueOption = None,
) -> None:
    """Enqueue dead-lettered jobs again (attempts start over)."""
    _act(_Action.requeue, options, job_ids, every, queue)


@naq_command(dead_letters_app, "delete")
def delete_dead_letters(
    options: ConnectOptions,
    job_ids: IdsArgument = None,
    every: AllOption = False,
    queue: QueueOption = None,
) -> None:
    """Drop dead letters."""
    _act(_Action.delete, options, job_ids, every, queue)


app.add_typer(dead_letters_app, name="dead-letters")
app.add_typer(dead_letters_app, name="failed", hidden=True)  # the old name, still accepted
