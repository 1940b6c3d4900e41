"""The ``naq`` command: thin typer commands that parse options and call the core."""

from __future__ import annotations

import enum
import os
import signal
import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated

import anyio
import typer
from loguru import logger

from . import _cli_schedules
from ._errors import NaqError
from ._scheduler import Scheduler
from ._settings import DEFAULT_URL
from ._worker import Worker
from .server import EmbeddedServer, find_nats_server

__all__ = ["app", "main"]

app = typer.Typer(
    name="naq",
    help="naq: background jobs on NATS JetStream.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


class Backend(enum.StrEnum):
    asyncio = "asyncio"
    trio = "trio"


UrlOption = Annotated[str, typer.Option("--url", envvar="NAQ_NATS_URL", help="NATS server URL.")]
LogLevelOption = Annotated[
    str, typer.Option("--log-level", envvar="NAQ_LOG_LEVEL", help="DEBUG, INFO, WARNING...")
]


def _setup_logging(level: str) -> None:
    logger.remove()
    logger.add(sys.stderr, level=level.upper())
    logger.enable("naq")


async def _run_until_signalled(worker: Worker | Scheduler) -> None:
    """Run the worker; the first SIGINT/SIGTERM stops it gracefully, a second at once."""
    async with anyio.create_task_group() as tg:

        async def watch_signals() -> None:
            with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                async for signum in signals:
                    if not worker_stopping:
                        worker_stopping.append(signum)
                        logger.info("stopping: running jobs finish first (signal again to quit)")
                        worker.stop()
                    else:
                        logger.warning("stopping now; unfinished jobs are handed back")
                        tg.cancel_scope.cancel()

        worker_stopping: list[int] = []
        tg.start_soon(watch_signals)
        await worker.run()
        tg.cancel_scope.cancel()


@app.command()
def worker(
    queues: Annotated[list[str] | None, typer.Argument(help="Queues to consume.")] = None,
    url: UrlOption = DEFAULT_URL,
    backend: Annotated[Backend, typer.Option(help="Event loop for the worker.")] = Backend.asyncio,
    concurrency: Annotated[int, typer.Option(min=1, help="Jobs run at once.")] = 10,
    ack_wait: Annotated[
        float, typer.Option(min=1, help="Seconds before a silent worker's job is redelivered.")
    ] = 30.0,
    serializer: Annotated[
        str | None, typer.Option(envvar="NAQ_SERIALIZER", help="pickle or json.")
    ] = None,
    path: Annotated[
        Path, typer.Option(help="Directory added to sys.path to import job functions.")
    ] = Path("."),
    allow: Annotated[
        list[str] | None,
        typer.Option(
            help="Module JSON jobs may name (repeatable; default: the modules in --path)."
        ),
    ] = None,
    log_level: LogLevelOption = "INFO",
) -> None:
    """Run a worker that processes jobs from QUEUES (default: default).

    Env NAQ_SIGNING_KEY makes it refuse pickled jobs not signed with that key.
    """
    _setup_logging(log_level)
    sys.path.insert(0, str(path.resolve()))
    w = Worker(
        queues or ["default"],
        url=url,
        concurrency=concurrency,
        serializer=serializer,
        ack_wait=ack_wait,
        allowed_modules=allow or None,
    )
    anyio.run(_run_until_signalled, w, backend=backend.value)


@app.command()
def server(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 4222,
    store_dir: Annotated[Path, typer.Option(help="JetStream storage directory.")] = Path(
        ".naq-data"
    ),
) -> None:
    """Run nats-server with JetStream in the foreground (from the server extra)."""
    binary = find_nats_server()
    store_dir.mkdir(parents=True, exist_ok=True)
    args = [binary, "-a", host, "-p", str(port), "-js", "-sd", str(store_dir)]
    typer.echo(f"nats-server with JetStream on nats://{host}:{port}, storing in {store_dir}")
    os.execv(binary, args)


@app.command()
def dev(
    port: Annotated[int, typer.Option(help="Port for the embedded server.")] = 4222,
    store_dir: Annotated[Path, typer.Option(help="JetStream storage directory.")] = Path(
        ".naq-data"
    ),
    queues: Annotated[list[str] | None, typer.Argument(help="Queues to consume.")] = None,
    concurrency: Annotated[int, typer.Option(min=1)] = 10,
    log_level: LogLevelOption = "INFO",
) -> None:
    """Run an embedded nats-server and a worker together: all a laptop needs. Ctrl-C stops."""
    _setup_logging(log_level)
    sys.path.insert(0, str(Path(".").resolve()))
    with EmbeddedServer(port=port, store_dir=store_dir) as embedded:
        os.environ["NAQ_NATS_URL"] = embedded.url
        typer.echo(f"naq dev: nats-server at {embedded.url} (data in {store_dir})")
        typer.echo(f"naq dev: worker on {queues or ['default']}; Ctrl-C stops both")
        typer.echo(
            "try it:  NAQ_NATS_URL=" + embedded.url + ' python -c "import naq_sync; '
            "print(naq_sync.enqueue('operator:add', 1, 2).result(timeout=5))\""
        )
        w = Worker(queues or ["default"], url=embedded.url, concurrency=concurrency)
        anyio.run(_run_until_signalled, w)


# -- schedules (naq/_cli_schedules.py does the work) ---------------------------------------


@app.command()
def scheduler(
    url: UrlOption = DEFAULT_URL,
    backend: Annotated[Backend, typer.Option(help="Event loop to run on.")] = Backend.asyncio,
    log_level: LogLevelOption = "INFO",
) -> None:
    """Enqueue due runs of schedules on servers without message schedules (safe to run many)."""
    _setup_logging(log_level)
    anyio.run(_run_until_signalled, Scheduler(url=url), backend=backend.value)


@app.command("list-scheduled")
def list_scheduled(
    url: UrlOption = DEFAULT_URL,
    status: Annotated[
        str | None, typer.Option(help="active, paused, completed or canceled.")
    ] = None,
    queue: Annotated[str | None, typer.Option(help="Only this queue.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON instead of a table.")] = False,
) -> None:
    """List schedules and delayed jobs: id, function, schedule, next run, status, runs."""
    typer.echo(anyio.run(_cli_schedules.list_scheduled, url, status, queue, as_json))


@app.command("job-control")
def job_control(
    target: Annotated[str, typer.Argument(help="Schedule id or delayed job id.")],
    action: Annotated[str, typer.Argument(help="cancel, pause, resume or reschedule.")],
    url: UrlOption = DEFAULT_URL,
    cron: Annotated[str | None, typer.Option(help="New cron expression.")] = None,
    interval: Annotated[float | None, typer.Option(help="New interval in seconds.")] = None,
    at: Annotated[datetime | None, typer.Option(help="New time (ISO 8601; naive is UTC).")] = None,
) -> None:
    """Cancel, pause, resume or reschedule a schedule, or cancel a delayed job."""
    typer.echo(anyio.run(_cli_schedules.job_control, url, target, action, cron, interval, at))


def main() -> None:
    """Entry point: run the app, printing naq's errors as one line instead of a traceback."""
    try:
        app()
    except NaqError as exc:
        typer.secho(f"naq: {exc}", fg=typer.colors.RED, err=True)
        raise SystemExit(1) from None
