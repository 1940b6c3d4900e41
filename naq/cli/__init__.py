"""The ``naq`` command: thin typer commands that parse options and call the core.

This module holds the app, ``--version`` and the commands that run things (``worker``,
``server``); ``_dev`` has ``naq dev``, ``_ops`` the operator views (``list-workers``,
``info``, ``purge``), ``_jobs`` the job commands (``job``, ``enqueue``). ``_common`` gives
every command the same connection and logging options and the same one-line errors,
``_help`` the same plain help, ``_output`` the same tables.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from pathlib import Path
from typing import Annotated

import anyio
import typer
from loguru import logger

from .. import __version__
from .._errors import NaqError
from .._scheduler import Scheduler
from .._settings import ConnectOptions
from .._worker import Worker
from ..server import check_port_free, find_nats_server, lock_store
from ._common import Backend, SerializerName, check_queues, fail, naq_command, naq_error_in, run
from ._help import NaqGroup

__all__ = ["app", "main"]

app = typer.Typer(
    name="naq",
    cls=NaqGroup,
    help="naq: background jobs on NATS JetStream.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"naq {__version__}")
        raise typer.Exit()


@app.callback()
def _naq(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_show_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """naq: background jobs on NATS JetStream."""


QueuesArgument = Annotated[
    list[str] | None,
    typer.Argument(
        metavar="QUEUE...", callback=check_queues, help="Queues to consume (default: default)."
    ),
]
ConcurrencyOption = Annotated[
    int, typer.Option(min=1, metavar="N", envvar="NAQ_CONCURRENCY", help="Jobs run at once.")
]
SyncThreadsOption = Annotated[
    int | None,
    typer.Option(
        min=1,
        metavar="N",
        envvar="NAQ_SYNC_THREADS",
        help="Threads for def jobs, started as needed (default: the concurrency).",
    ),
]
HooksOption = Annotated[
    list[str] | None,
    typer.Option(
        "--hooks",
        metavar="PKG.MOD:NAME",
        envvar="NAQ_HOOKS",
        help="naq.WorkerHooks (or a function returning them) run around every job; repeatable.",
    ),
]
DjangoOption = Annotated[
    bool | None,
    typer.Option(
        "--django/--no-django",
        envvar="NAQ_DJANGO",
        help="Set Django up (default: when DJANGO_SETTINGS_MODULE is set).",
    ),
]
FlaskOption = Annotated[
    str | None,
    typer.Option(
        "--flask", metavar="MODULE:APP", envvar="NAQ_FLASK", help="Run jobs in this Flask app."
    ),
]
GraceOption = Annotated[
    float,
    typer.Option(
        min=0,
        metavar="SECONDS",
        envvar="NAQ_GRACE",
        help="Seconds running jobs get to finish after SIGTERM/SIGINT before they are "
        "handed back to another worker.",
    ),
]
HeartbeatOption = Annotated[
    float,
    typer.Option(
        min=0.1,
        metavar="SECONDS",
        envvar="NAQ_HEARTBEAT_INTERVAL",
        help="Seconds between heartbeats; a silent worker is dropped after three.",
    ),
]
BackendOption = Annotated[Backend, typer.Option(envvar="NAQ_BACKEND", help="Event loop to run on.")]
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
    backend: BackendOption = Backend.asyncio,
    concurrency: ConcurrencyOption = 10,
    sync_threads: SyncThreadsOption = None,
    ack_wait: Annotated[
        float,
        typer.Option(
            min=1,
            metavar="SECONDS",
            envvar="NAQ_ACK_WAIT",
            help="Seconds before a silent worker's job is redelivered.",
        ),
    ] = 30.0,
    grace: GraceOption = DEFAULT_GRACE,
    heartbeat_interval: HeartbeatOption = 5.0,
    name: Annotated[
        str | None, typer.Option(metavar="ID", help="Worker id (default: host.pid.random).")
    ] = None,
    serializer: Annotated[
        SerializerName | None,
        typer.Option(envvar="NAQ_SERIALIZER", help="Encoding of new results (default: pickle)."),
    ] = None,
    path: Annotated[
        Path, typer.Option(metavar="DIR", help="Directory added to sys.path to import jobs.")
    ] = Path("."),
    burst: Annotated[
        bool,
        typer.Option("--burst", help="Run what is queued, then exit (like RQ's and arq's)."),
    ] = False,
    allow: Annotated[
        list[str] | None,
        typer.Option(
            metavar="MODULE",
            help="Module JSON jobs may name (default: the modules in --path).",
        ),
    ] = None,
    hooks: HooksOption = None,
    django: DjangoOption = None,
    flask: FlaskOption = None,
) -> None:
    """Run a worker on QUEUES (default: default).

    Env NAQ_SIGNING_KEY makes it refuse pickled jobs not signed with that key.
    """
    from .._integrations import connect_options_after_setup, prepare_worker

    sys.path.insert(0, str(path.resolve()))
    worker_hooks = prepare_worker(hooks=hooks or (), django=django, flask=flask)
    options = connect_options_after_setup(options)
    w = Worker(
        queues or [os.environ.get("NAQ_QUEUE") or "default"],
        connect_options=options,
        hooks=worker_hooks,
        concurrency=concurrency,
        sync_threads=sync_threads,
        serializer=serializer.value if serializer else None,
        ack_wait=ack_wait,
        heartbeat_interval=heartbeat_interval,
        name=name,
        burst=burst,
        allowed_modules=allow or None,
    )
    run(run_until_signalled, w, grace, backend=backend.value)
    _exit_without_waiting_for_job_threads()


@naq_command(app, connects=False)
def server(
    host: Annotated[str, typer.Option(metavar="ADDRESS", help="Address to listen on.")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option(metavar="PORT", help="Port to listen on.")] = 4222,
    store_dir: Annotated[
        Path, typer.Option(metavar="DIR", help="JetStream storage directory.")
    ] = Path(".naq-data"),
    config: Annotated[
        Path | None,
        typer.Option(
            metavar="FILE", help="nats-server configuration file (auth, TLS...), passed as -c."
        ),
    ] = None,
) -> None:
    """Run nats-server with JetStream (from the server extra).

    It runs in the foreground; the store directory is locked against a second one.
    """
    binary = find_nats_server()
    check_port_free(host, port)
    lock = lock_store(store_dir, inheritable=True)  # open through exec: nats-server holds it
    args = [binary, "-a", host, "-p", str(port), "-js", "-sd", str(store_dir)]
    if config is not None:
        args += ["-c", str(config)]
    typer.echo(f"nats-server with JetStream on nats://{host}:{port}, storing in {store_dir}")
    os.execv(binary, args)
    del lock  # not reached: execv replaced this process


from . import _dashboard, _dev, _failed, _jobs, _ops, _schedules  # noqa: E402, F401 - register their commands


def main() -> None:
    """Entry point: run the app, printing naq's errors as one line instead of a traceback."""
    try:
        app()
    except (NaqError, BaseExceptionGroup) as exc:
        error = naq_error_in(exc)
        if error is None:
            raise
        raise fail(str(error)) from None
