"""The ``naq`` command: thin typer commands that parse options and call the core.

This module holds the app, ``--version`` and the commands that run things (``worker``,
``server``); ``_dev`` has ``naq dev``, ``_ops`` the operator views (``list-workers``,
``info``, ``purge``), ``_jobs`` the job commands (``job``, ``enqueue``). ``_common`` gives
every command the same connection and logging options and the same one-line errors,
``_help`` the same plain help, ``_output`` the same tables.
"""

from __future__ import annotations

import functools
import os
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import anyio
import typer
from anyio.abc import TaskStatus
from loguru import logger

from .. import __version__
from .._errors import NaqError
from .._metrics import WorkerMetrics
from .._processes import (
    RECYCLE_EXIT_CODE,
    Supervisor,
    SupervisorLink,
    naq_worker_command,
    parameters_argv,
    run_child,
)
from .._schedules import Scheduler
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
ProcessesOption = Annotated[
    int,
    typer.Option(
        min=1,
        metavar="N",
        envvar="NAQ_PROCESSES",
        help="Worker processes, run and replaced by a supervisor (1: this process is the worker).",
    ),
]
MaxJobsOption = Annotated[
    int | None,
    typer.Option(
        min=1,
        metavar="N",
        envvar="NAQ_MAX_JOBS_PER_CHILD",
        help="A worker process that took N jobs finishes them, exits and is replaced.",
    ),
]
MaxMemoryOption = Annotated[
    float | None,
    typer.Option(
        min=1,
        metavar="MIB",
        envvar="NAQ_MAX_MEMORY_PER_CHILD",
        help="A worker process whose RSS is over MIB after a job finishes its running jobs, "
        "exits and is replaced (Linux).",
    ),
]
ReloadOption = Annotated[
    bool,
    typer.Option(
        "--reload",
        envvar="NAQ_RELOAD",
        help="Restart the worker processes when a .py file under --path changes "
        "(needs the reload extra).",
    ),
]
MetricsPortOption = Annotated[
    int | None,
    typer.Option(
        min=0,
        max=65535,
        metavar="PORT",
        envvar="NAQ_METRICS_PORT",
        help="Serve Prometheus metrics at http://0.0.0.0:PORT/metrics (needs the metrics "
        "extra); with --processes N, worker process k serves PORT+k-1.",
    ),
]
SUPERVISOR_OPTIONS = frozenset({"processes", "reload", "name"})
"""Options the supervisor itself uses, not passed on to its worker processes."""
DEFAULT_GRACE = 25.0
"""Fits inside Kubernetes' default 30 s between SIGTERM and SIGKILL."""


async def run_until_signalled(
    worker: Worker | Scheduler,
    grace: float = DEFAULT_GRACE,
    *,
    task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Run the worker; the first SIGINT/SIGTERM stops it gracefully (running jobs get
    ``grace`` seconds), a second stops it at once. Either way unfinished jobs are handed
    back for immediate redelivery. ``task_status`` is the worker's (started once it consumes)."""
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
        await worker.run(task_status=task_status)
        tg.cancel_scope.cancel()


def _exit_without_waiting_for_job_threads(code: int = 0) -> None:
    """End the process now if threads are left (sync jobs cancelled at the grace deadline).

    Python cannot stop a thread, and the interpreter would wait for it at exit; but its job
    was handed back and may already run elsewhere, so the process ends without it.
    """
    main_thread = threading.main_thread()
    if any(t is not main_thread and not t.daemon for t in threading.enumerate()):
        logger.complete()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def supervised(
    processes: int, reload: bool, max_jobs: int | None, max_memory: float | None
) -> bool:
    """Whether a command runs its workers as supervised processes: more than one, reloading,
    or recycled by a per-child limit (which only a supervisor can replace)."""
    return processes > 1 or reload or max_jobs is not None or max_memory is not None


def child_command(
    base: Sequence[str], name: str | None, metrics_port: int | None = None
) -> functools.partial[list[str]]:
    """The command of the supervisor's worker process in slot ``k``: ``base`` (starting
    with ``naq_worker_command()``), named
    ``NAME-k`` when the supervisor was given ``--name``, serving its metrics on
    ``metrics_port + k - 1`` when given one (each process has its own counters)."""
    return functools.partial(_child_argv, list(base), name, metrics_port)


def _child_argv(
    base: list[str], name: str | None, metrics_port: int | None, slot: int
) -> list[str]:
    own: list[str] = [] if name is None else ["--name", f"{name}-{slot}"]
    if metrics_port is not None:
        own += ["--metrics-port", str(metrics_port + slot - 1 if metrics_port else 0)]
    # right after ``naq worker``: ``base`` ends with ``-- QUEUE...`` when given queues
    at = len(naq_worker_command())
    return [*base[:at], *own, *base[at:]]


def _run_worker(w: Worker, grace: float, backend: str, link: SupervisorLink | None) -> int:
    """Run ``w`` until signalled (as a supervised child when ``link`` is its supervisor's);
    the exit code: ``RECYCLE_EXIT_CODE`` when it stopped at its job or memory limit."""
    if link is None:
        run(run_until_signalled, w, grace, backend=backend)
    else:
        serve = functools.partial(run_until_signalled, w, grace)
        run(run_child, serve, functools.partial(w.stop, grace), link, backend=backend)
    return RECYCLE_EXIT_CODE if w.limit_reached is not None else 0


@naq_command(app)
def worker(
    ctx: typer.Context,
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
    processes: ProcessesOption = 1,
    max_jobs_per_child: MaxJobsOption = None,
    max_memory_per_child: MaxMemoryOption = None,
    reload: ReloadOption = False,
    metrics_port: MetricsPortOption = None,
) -> None:
    """Run a worker on QUEUES (default: default).

    Env NAQ_SIGNING_KEY makes it refuse pickled jobs not signed with that key.
    With --processes N (or --reload, or a per-child limit) a supervisor runs the workers
    as processes, replaces any that exit, and stops them all on SIGTERM/SIGINT.
    """
    from .._integrations import connect_options_after_setup, prepare_worker

    link = SupervisorLink.from_environment()  # set when a supervisor started this process
    if link is None and supervised(processes, reload, max_jobs_per_child, max_memory_per_child):
        skip = SUPERVISOR_OPTIONS | {"metrics_port"}  # each process gets a port of its own
        base = naq_worker_command() + parameters_argv(ctx, skip=skip)
        supervisor = Supervisor(
            child_command(base, name, metrics_port),
            processes=processes,
            grace=grace,
            burst=burst,
            reload_path=path if reload else None,
        )
        run(supervisor.run)
        return
    sys.path.insert(0, str(path.resolve()))
    worker_hooks = prepare_worker(hooks=hooks or (), django=django, flask=flask)
    options = connect_options_after_setup(options)
    metrics = None
    if metrics_port is not None:
        metrics = WorkerMetrics()
        bound = metrics.serve(metrics_port)
        logger.info("Prometheus metrics on http://0.0.0.0:{}/metrics", bound)
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
        max_jobs=max_jobs_per_child,
        max_memory_mib=max_memory_per_child,
        parent=link.parent if link is not None else None,
        metrics=metrics,
    )
    try:
        code = _run_worker(w, grace, backend.value, link)
    finally:
        if metrics is not None:
            metrics.close()
    _exit_without_waiting_for_job_threads(code)
    if code:
        raise typer.Exit(code)


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


from . import _dashboard, _dead_letters, _dev, _jobs, _ops, _schedule_commands  # noqa: E402, F401 - register their commands


def main() -> None:
    """Entry point: run the app, printing naq's errors as one line instead of a traceback."""
    try:
        app()
    except (NaqError, BaseExceptionGroup) as exc:
        error = naq_error_in(exc)
        if error is None:
            raise
        raise fail(str(error)) from None
