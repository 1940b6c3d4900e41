"""Job commands: ``enqueue`` a call from the shell, show one ``job``."""

from __future__ import annotations

import json as jsonlib
from typing import Annotated, Any

import anyio
import typer
from rich.table import Table

from .._client import Client
from .._errors import ConfigurationError
from .._record import JobRecord, encode_record
from .._settings import ConnectOptions
from . import app
from ._common import console, naq_command, print_json

__all__ = ["enqueue", "job", "parse_value"]

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


def parse_value(text: str) -> Any:
    """A shell argument as a JSON value when it is one (``1``, ``true``, ``[1,2]``,
    ``'"1"'``), else as the string itself (``a@b.c``)."""
    try:
        return jsonlib.loads(text)
    except ValueError:
        return text


def _kwarg(text: str) -> tuple[str, Any]:
    name, sep, value = text.partition("=")
    if not sep or not name.isidentifier():
        raise ConfigurationError(f"--kwarg takes NAME=VALUE, got {text!r}")
    return name, parse_value(value)


async def _enqueue(
    options: ConnectOptions,
    serializer: str | None,
    func: str,
    args: list[Any],
    kwargs: dict[str, Any],
    wait: float | None,
    job_options: dict[str, Any],
) -> tuple[str, Any]:
    async with Client(connect_options=options, serializer=serializer) as client:
        job = await client.enqueue_call(func, args, kwargs, **job_options)
        return job.id, (await job.result(timeout=wait) if wait is not None else None)


@naq_command(app)
def enqueue(
    options: ConnectOptions,
    func: Annotated[str, typer.Argument(help="The job function, as pkg.module:function.")],
    args: Annotated[
        list[str] | None, typer.Argument(help="Arguments: JSON values, else strings.")
    ] = None,
    kwarg: Annotated[
        list[str] | None, typer.Option("--kwarg", "-k", help="A keyword argument NAME=VALUE.")
    ] = None,
    queue: Annotated[str, typer.Option("--queue", "-q", help="Queue to put it on.")] = "default",
    job_id: Annotated[str | None, typer.Option(help="Job id (default: generated).")] = None,
    job_timeout: Annotated[float | None, typer.Option(help="Seconds one run may take.")] = None,
    retry: Annotated[int | None, typer.Option(min=0, help="Retries after a failure.")] = None,
    result_ttl: Annotated[
        float | None, typer.Option(help="Seconds the result is kept (-1: forever).")
    ] = None,
    wait: Annotated[
        float | None, typer.Option(help="Wait this many seconds for the result and print it.")
    ] = None,
    serializer: Annotated[
        str | None, typer.Option(envvar="NAQ_SERIALIZER", help="pickle or json.")
    ] = None,
    json: JsonOption = False,
) -> None:
    """Enqueue FUNC(ARGS...) and print the job id (and, with --wait, the result)."""
    if ":" not in func:
        raise ConfigurationError(f"give the function as pkg.module:function, got {func!r}")
    job_options = {
        "queue": queue,
        "job_id": job_id,
        "job_timeout": job_timeout,
        "retry": retry,
        "result_ttl": result_ttl,
    }
    job_id_, result = anyio.run(
        _enqueue,
        options,
        serializer,
        func,
        [parse_value(a) for a in args or []],
        dict(_kwarg(k) for k in kwarg or []),
        wait,
        job_options,
    )
    if json:
        print_json({"id": job_id_, **({"result": result} if wait is not None else {})})
    elif wait is not None:
        typer.echo(job_id_)
        typer.echo(result if isinstance(result, str) else jsonlib.dumps(result, default=repr))
    else:
        typer.echo(job_id_)


async def _fetch(options: ConnectOptions, job_id: str) -> JobRecord:
    async with Client(connect_options=options) as client:
        found = await client.fetch_job(job_id)
        assert found.record is not None
        return found.record


def _shown(record: JobRecord, value: Any) -> str:
    if value is None:
        return ""
    if record.serializer != "json":
        return f"(pickled, {len(str(value))} characters of base64)"
    return jsonlib.dumps(value, default=repr)


@naq_command(app)
def job(
    options: ConnectOptions,
    job_id: Annotated[str, typer.Argument(metavar="ID", help="The job id.")],
    json: JsonOption = False,
) -> None:
    """Show one job: status, function, attempts, times, result or error."""
    record = anyio.run(_fetch, options, job_id)
    if json:
        print_json(jsonlib.loads(encode_record(record)))
        return
    table = Table(show_header=False, title=f"job {record.id}")
    table.add_column("field", style="bold")
    table.add_column("value")
    rows = [
        ("status", record.status.value),
        ("queue", record.queue),
        ("function", record.func_name),
        ("serializer", record.serializer),
        ("attempts", str(record.attempts)),
        ("enqueued", record.enqueued_at.isoformat()),
        ("started", record.started_at.isoformat() if record.started_at else ""),
        ("ended", record.ended_at.isoformat() if record.ended_at else ""),
        ("worker", record.worker_id or ""),
        ("result", _shown(record, record.result)),
    ]
    if record.error is not None:
        rows.append(("error", f"{record.error.type}: {record.error.message}"))
    for name, value in rows:
        if value:
            table.add_row(name, value)
    console.print(table)
