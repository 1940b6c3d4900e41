"""Job commands: ``enqueue`` a call from the shell, show one ``job``."""

from __future__ import annotations

import json as jsonlib
from typing import Annotated, Any

import typer

from .._client import Client
from .._record import JobRecord, JobStatus
from .._settings import ConnectOptions
from .._views import job_view
from . import app
from ._common import SerializerName, check_queues, naq_command, run, usage_error
from ._output import Listing, iso, print_json

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
        raise usage_error(f"--kwarg takes NAME=VALUE, got {text!r}")
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
    func: Annotated[
        str, typer.Argument(metavar="FUNC", help="The job function, as pkg.module:function.")
    ],
    args: Annotated[
        list[str] | None,
        typer.Argument(metavar="ARGS...", help="Arguments: JSON values, else strings."),
    ] = None,
    kwarg: Annotated[
        list[str] | None,
        typer.Option(
            "--kwarg", "-k", metavar="NAME=VALUE", help="A keyword argument (JSON or string)."
        ),
    ] = None,
    queue: Annotated[
        str, typer.Option("--queue", "-q", metavar="QUEUE", help="Queue to put it on.")
    ] = "default",
    job_id: Annotated[
        str | None, typer.Option(metavar="ID", help="Job id (default: generated).")
    ] = None,
    job_timeout: Annotated[
        float | None, typer.Option(metavar="SECONDS", help="Seconds one run may take.")
    ] = None,
    retry: Annotated[
        int | None, typer.Option(min=0, metavar="N", help="Retries after a failure.")
    ] = None,
    result_ttl: Annotated[
        float | None,
        typer.Option(metavar="SECONDS", help="Seconds the result is kept (-1: forever)."),
    ] = None,
    wait: Annotated[
        float | None,
        typer.Option(metavar="SECONDS", help="Wait this long for the result and print it."),
    ] = None,
    serializer: Annotated[
        SerializerName | None,
        typer.Option(envvar="NAQ_SERIALIZER", help="Encoding of the call (default: pickle)."),
    ] = None,
    json: JsonOption = False,
) -> None:
    """Enqueue FUNC(ARGS...) and print the job id.

    With --wait, the result too.
    """
    if ":" not in func:
        raise usage_error(f"give the function as pkg.module:function, got {func!r}")
    check_queues([queue])
    job_options = {
        "queue": queue,
        "job_id": job_id,
        "job_timeout": job_timeout,
        "retry": retry,
        "result_ttl": result_ttl,
    }
    job_id_, result = run(
        _enqueue,
        options,
        serializer.value if serializer else None,
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
    """Show one job: status, attempts, times, result or error."""
    record = run(_fetch, options, job_id)
    if json:
        print_json(job_view(record))
        return
    table = Listing(show_header=False, title=f"job {record.id}")
    table.id_column("field")
    table.text_column("value")
    rows = [
        ("id", record.id),
        ("status", record.status.value),
        ("queue", record.queue),
        ("function", record.func_name),
        ("serializer", record.serializer),
        ("attempts", str(record.attempts)),
        ("enqueued", iso(record.enqueued_at) or ""),
        ("started", iso(record.started_at) or ""),
        ("ended", iso(record.ended_at) or ""),
        ("worker", record.worker_id or ""),
        ("result", _shown(record, record.result)),
    ]
    error = record.error
    if error is not None and record.status is JobStatus.CANCELED:
        why = error.message if error.type == "JobCanceled" else f"{error.type}: {error.message}"
        rows.append(("canceled", why))
    elif error is not None:
        rows.append(("error", f"{error.type}: {error.message}"))
    for name, value in rows:
        if value:
            table.add_row(name, value)
    table.print()
