"""``naq failed list|requeue|delete``: dead letters from the shell."""

from __future__ import annotations

import json
from typing import Annotated

import anyio
import typer
from rich.console import Console
from rich.progress import track
from rich.table import Table

from ._client import Client
from ._dead_letters import DeadLetter
from ._errors import ConfigurationError
from ._settings import DEFAULT_URL

__all__ = ["failed_app"]

failed_app = typer.Typer(
    help="Dead letters: jobs that failed for good or could not run, with the reason.",
    no_args_is_help=True,
)

UrlOption = Annotated[str, typer.Option("--url", envvar="NAQ_NATS_URL", help="NATS server URL.")]
QueueOption = Annotated[str | None, typer.Option("--queue", help="Only this queue.")]


def _as_json(letter: DeadLetter) -> dict[str, object]:
    record = letter.record
    return {
        "job_id": letter.job_id,
        "queue": letter.queue,
        "reason": letter.reason,
        "time": letter.time,
        "function": record.func_name if record else None,
        "attempts": record.attempts if record else None,
    }


async def _letters(url: str, queue: str | None, limit: int) -> list[DeadLetter]:
    async with Client(url) as client:
        return await client.dead_letters(queue, limit)


@failed_app.command("list")
def list_failed(
    url: UrlOption = DEFAULT_URL,
    queue: QueueOption = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many.")] = 1000,
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines for scripts.")] = False,
) -> None:
    """List dead letters, oldest first."""
    letters = anyio.run(_letters, url, queue, limit)
    if as_json:
        typer.echo(json.dumps([_as_json(letter) for letter in letters], indent=2))
        return
    table = Table("job id", "queue", "function", "attempts", "reason", "time (UTC)")
    for letter in letters:
        row = _as_json(letter)
        table.add_row(*(str(row[k] if row[k] is not None else "-") for k in (
            "job_id", "queue", "function", "attempts", "reason", "time",
        )))  # fmt: skip
    Console().print(table)
    typer.echo(f"{len(letters)} dead letter(s)")


def _targets(url: str, ids: list[str] | None, every: bool, queue: str | None) -> list[str]:
    if bool(ids) == every:
        raise ConfigurationError("name job ids, or pass --all (not both)")
    if ids:
        return ids
    return [letter.job_id for letter in anyio.run(_letters, url, queue, 1_000_000)]


async def _each(url: str, action: str, job_ids: list[str]) -> int:
    done = 0
    async with Client(url) as client:
        for job_id in track(job_ids, description=f"{action}...", transient=True):
            if action == "requeue":
                await client.requeue_dead_letter(job_id)
                done += 1
            elif await client.delete_dead_letter(job_id):
                done += 1
    return done


@failed_app.command("requeue")
def requeue_failed(
    job_ids: Annotated[list[str] | None, typer.Argument(help="Job ids.")] = None,
    every: Annotated[bool, typer.Option("--all", help="Every dead letter.")] = False,
    queue: QueueOption = None,
    url: UrlOption = DEFAULT_URL,
) -> None:
    """Enqueue dead-lettered jobs again (attempts start over)."""
    targets = _targets(url, job_ids, every, queue)
    typer.echo(f"requeued {anyio.run(_each, url, 'requeue', targets)} job(s)")


@failed_app.command("delete")
def delete_failed(
    job_ids: Annotated[list[str] | None, typer.Argument(help="Job ids.")] = None,
    every: Annotated[bool, typer.Option("--all", help="Every dead letter.")] = False,
    queue: QueueOption = None,
    url: UrlOption = DEFAULT_URL,
) -> None:
    """Drop dead letters."""
    targets = _targets(url, job_ids, every, queue)
    typer.echo(f"deleted {anyio.run(_each, url, 'delete', targets)} dead letter(s)")
