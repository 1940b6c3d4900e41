"""The ``naq`` command: thin typer commands that parse options and call the core.

This module holds the app and the commands that run things (``worker``, ``server``,
``dev``); ``_ops`` has the operator views (``list-workers``, ``info``, ``purge``) and
``_jobs`` the job commands (``job``, ``enqueue``). ``_common`` gives every command the
same connection and logging options and the same one-line errors.
"""

from __future__ import annotations

import enum
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Annotated

import anyio
import typer
from loguru import logger

from .._errors import NaqError
from .._scheduler import Scheduler
from .._settings import ConnectOptions
from .._worker import Worker
from ..server import EmbeddedServer, find_nats_server
from ._common import fail, naq_command

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


QueuesArgument = Annotated[
    list[str] | None, typer.Argument(help="Queues to consume (default: default).")
]
ConcurrencyOption = Annotated[
    int, typer.Option(min=1, envvar="NAQ_CONCURRENCY", help="Jobs run at once.")
]
SyncThreadsOption = Annotated[
    int | None,
    typer.Option(
        min=1,
        envvar="NAQ_SYNC_THREADS",
        help="Threads for def jobs, started as needed (default: the concurrency).",
    ),
]
GraceOption = Annotated[
    float,
    typer.Option(
        min=0,
        envvar="NAQ_GRACE",
        help="Seconds running jobs get to finish after SIGTERM/SIGINT before they are "
        "handed back to another worker.",
    ),
]
HeartbeatOption = Annotated[
    float,
    typer.Option(
        min=0.1,
        envvar="NAQ_HEARTBEAT_INTERVAL",
        help="Seconds between heartbeats; a silent worker is dropped after three.",
    ),
]
DEFAULT_GRACE = 25.0
"""Fits inside Kubernetes' default 30 s between SIGTERM and SIGKILL."""


async def run_until_signalled(worker: Worker | Scheduler, grace: float = DEFAULT_GRACE) -> None:
    """Run the worker; the first SIGINT/SIGTERM stops it gracefully (running jobs get
    ``grace`` seconds), a second stops it at once. Either way unfinished jobs are handed
    back for immediate redelivery."""
    async with anyio.create_task_group() as tg:

        async def watch_signals() -> None:
            with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                async for _ in signals:
                    if not worker_stopping:
                        worker_stopping.append(True)
                        logger.info(
                            "stopping: running jobs get {:g} s to finish (signal again to quit)",
                            grace,
                        )
                        if isinstance(worker, Worker):
                            worker.stop(grace=grace)
                        else:
                            worker.stop()
                    else:
                        logger.warning("stopping now; unfinished jobs are handed back")
                        tg.cancel_scope.cancel()

        worker_stopping: list[bool] = []
        tg.start_soon(watch_signals)
        await worker.run()
        tg.cancel_scope.cancel()


def _exit_without_waiting_for_job_threads() -> None:
    """End the process now if threads are left (sync jobs cancelled at the grace deadline).

    Python cannot stop a thread, and the interpreter would wait for it at exit; but its job
    was handed back and may already run elsewhere, so the process ends without it.
    """
    main_thread = threading.main_thread()
    if any(t is not main_thread and not t.daemon for t in threading.enumerate()):
        logger.complete()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)


@naq_command(app)
def worker(
    options: ConnectOptions,
    queues: QueuesArgument = None,
    backend: Annotated[
        Backend, typer.Option(envvar="NAQ_BACKEND", help="Event loop for the worker.")
    ] = Backend.asyncio,
    concurrency: ConcurrencyOption = 10,
    sync_threads: SyncThreadsOption = None,
    ack_wait: Annotated[
        float,
        typer.Option(
            min=1,
            envvar="NAQ_ACK_WAIT",
            help="Seconds before a silent worker's job is redelivered.",
        ),
    ] = 30.0,
    grace: GraceOption = DEFAULT_GRACE,
    heartbeat_interval: HeartbeatOption = 5.0,
    name: Annotated[str | None, typer.Option(help="Worker id (default: host.pid.random).")] = None,
    serializer: Annotated[
        str | None, typer.Option(envvar="NAQ_SERIALIZER", help="pickle or json.")
    ] = None,
    path: Annotated[
        Path, typer.Option(help="Directory added to sys.path to import job functions.")
    ] = Path("."),
    burst: Annotated[
        bool, typer.Option(help="Run what is queued, then exit (like RQ's and arq's burst).")
    ] = False,
    allow: Annotated[
        list[str] | None,
        typer.Option(
            help="Module JSON jobs may name (repeatable; default: the modules in --path)."
        ),
    ] = None,
) -> None:
    """Run a worker that processes jobs from QUEUES (default: default).

    Env NAQ_SIGNING_KEY makes it refuse pickled jobs not signed with that key.
    """
    sys.path.insert(0, str(path.resolve()))
    w = Worker(
        queues or ["default"],
        connect_options=options,
        concurrency=concurrency,
        sync_threads=sync_threads,
        serializer=serializer,
        ack_wait=ack_wait,
        heartbeat_interval=heartbeat_interval,
        name=name,
        burst=burst,
        allowed_modules=allow or None,
    )
    anyio.run(run_until_signalled, w, grace, backend=backend.value)
    _exit_without_waiting_for_job_threads()


@naq_command(app, connects=False)
def server(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 4222,
    store_dir: Annotated[Path, typer.Option(help="JetStream storage directory.")] = Path(
        ".naq-data"
    ),
    config: Annotated[
        Path | None,
        typer.Option(help="nats-server configuration file (auth, TLS...), passed as -c."),
    ] = None,
) -> None:
    """Run nats-server with JetStream in the foreground (from the server extra)."""
    binary = find_nats_server()
    store_dir.mkdir(parents=True, exist_ok=True)
    args = [binary, "-a", host, "-p", str(port), "-js", "-sd", str(store_dir)]
    if config is not None:
        args += ["-c", str(config)]
    typer.echo(f"nats-server with JetStream on nats://{host}:{port}, storing in {store_dir}")
    os.execv(binary, args)


def _dev_extras(url: str) -> list[tuple[str, str]]:
    """Hook for ``naq dev``: (name, where) of the optional services it also runs.

    Start them in ``_dev_services`` beside the worker and describe them here.
    """
    del url
    from ._dashboard import dashboard_available, dev_dashboard_port

    if dashboard_available():
        return [("dashboard", f"http://localhost:{dev_dashboard_port()}/")]
    return []


async def _dev_services(worker: Worker, grace: float) -> None:
    """Everything ``naq dev`` runs on one event loop; Ctrl-C stops all of it."""
    from ._dashboard import dashboard_available, dev_dashboard

    if not dashboard_available():
        await run_until_signalled(worker, grace)
        return
    stop = anyio.Event()
    async with anyio.create_task_group() as tg:
        tg.start_soon(dev_dashboard, worker.url, stop)
        await run_until_signalled(worker, grace)
        stop.set()


@naq_command(app, connects=False)
def dev(
    queues: QueuesArgument = None,
    port: Annotated[int, typer.Option(help="Port for the embedded server (-1: any).")] = 4222,
    store_dir: Annotated[Path, typer.Option(help="JetStream storage directory.")] = Path(
        ".naq-data"
    ),
    concurrency: ConcurrencyOption = 10,
    sync_threads: SyncThreadsOption = None,
    grace: GraceOption = 5.0,
    heartbeat_interval: HeartbeatOption = 5.0,
) -> None:
    """Run an embedded nats-server, a worker (and what else naq has) together. Ctrl-C stops."""
    sys.path.insert(0, str(Path(".").resolve()))
    with EmbeddedServer(port=port, store_dir=store_dir) as embedded:
        os.environ["NAQ_NATS_URL"] = embedded.url
        names = queues or ["default"]
        typer.echo(f"naq dev: nats-server at {embedded.url} (data in {store_dir})")
        typer.echo(f"naq dev: worker on {', '.join(names)} (concurrency {concurrency})")
        for service, where in _dev_extras(embedded.url):
            typer.echo(f"naq dev: {service} at {where}")
        typer.echo("naq dev: Ctrl-C stops everything")
        typer.echo(
            "try it:  NAQ_NATS_URL=" + embedded.url + ' python -c "import naq_sync; '
            "print(naq_sync.enqueue('operator:add', 1, 2).result(timeout=5))\""
        )
        typer.echo(f"         NAQ_NATS_URL={embedded.url} naq list-workers")
        w = Worker(
            names,
            url=embedded.url,
            concurrency=concurrency,
            sync_threads=sync_threads,
            heartbeat_interval=heartbeat_interval,
        )
        anyio.run(_dev_services, w, grace)
    _exit_without_waiting_for_job_threads()


from . import _dashboard, _failed, _jobs, _ops, _schedules  # noqa: E402, F401 - register their commands


def main() -> None:
    """Entry point: run the app, printing naq's errors as one line instead of a traceback."""
    try:
        app()
    except NaqError as exc:
        raise fail(str(exc)) from None
