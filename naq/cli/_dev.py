"""``naq dev``: an embedded nats-server, a worker and the dashboard in one process.

Everything it prints is true before it is printed: the server's port and store are
checked (``EmbeddedServer``), and the dashboard's socket is bound first, on
``NAQ_DASHBOARD_PORT`` (default 8080) or, when that port is taken, on a free one, so the
address shown is the dashboard's own. The example commands name this interpreter by its
full path, so they work from another terminal without an activated virtual environment.

With ``--processes N`` (or ``--reload``, or a per-child limit) the workers are ``naq worker``
processes under a supervisor (see ``naq._processes``), connected to the embedded server; the
server and the dashboard stay in this process.
"""

from __future__ import annotations

import os
import shlex
import socket
import sys
from pathlib import Path
from typing import Annotated

import anyio
import typer

from .._metrics import WorkerMetrics
from .._processes import Supervisor, naq_worker_command, parameters_argv
from .._worker import Worker
from ..server import EmbeddedServer
from . import (
    SUPERVISOR_OPTIONS,
    ConcurrencyOption,
    DjangoOption,
    FlaskOption,
    GraceOption,
    HeartbeatOption,
    HooksOption,
    MaxJobsOption,
    MaxMemoryOption,
    MetricsPortOption,
    ProcessesOption,
    QueuesArgument,
    ReloadOption,
    SyncThreadsOption,
    _exit_without_waiting_for_job_threads,
    app,
    child_command,
    run_until_signalled,
    supervised,
)
from ._common import naq_command, run

__all__ = ["DevDashboard", "bind_dev_dashboard", "dev", "try_it_lines"]

DASHBOARD_HOST = "127.0.0.1"


class DevDashboard:
    """The dashboard's bound socket: where it listens, and why there if not where asked."""

    def __init__(self, sock: socket.socket, asked: int) -> None:
        self.sock = sock
        self.port: int = sock.getsockname()[1]
        self.note = "" if self.port == asked else f" (port {asked} is in use)"

    @property
    def url(self) -> str:
        return f"http://{DASHBOARD_HOST}:{self.port}/"


def bind_dev_dashboard(port: int) -> DevDashboard | None:
    """Bind the dashboard's port now (a free one if ``port`` is taken); None without the
    dashboard extra."""
    from ._dashboard import dashboard_available

    if not dashboard_available():
        return None
    try:
        sock = socket.create_server((DASHBOARD_HOST, port))
    except OSError:
        sock = socket.create_server((DASHBOARD_HOST, 0))
    return DevDashboard(sock, port)


async def _dev_services(worker: Worker, grace: float, dashboard: DevDashboard | None) -> None:
    """Everything ``naq dev`` runs on one event loop; Ctrl-C stops all of it."""
    if dashboard is None:
        await run_until_signalled(worker, grace)
        return
    from ._dashboard import dev_dashboard

    stop = anyio.Event()
    async with anyio.create_task_group() as tg:
        tg.start_soon(dev_dashboard, worker.url, dashboard.sock, stop)
        await run_until_signalled(worker, grace)
        stop.set()


async def _dev_supervised(supervisor: Supervisor, url: str, dashboard: DevDashboard | None) -> None:
    """``naq dev`` with worker processes: the supervisor handles the signals."""
    if dashboard is None:
        await supervisor.run()
        return
    from ._dashboard import dev_dashboard

    stop = anyio.Event()
    async with anyio.create_task_group() as tg:
        tg.start_soon(dev_dashboard, url, dashboard.sock, stop)
        try:
            await supervisor.run()
        finally:
            stop.set()


def try_it_lines(url: str) -> list[str]:
    """Commands to paste into another terminal: this interpreter by its full path."""
    enqueue = "import naq_sync; print(naq_sync.enqueue('operator:add', 1, 2).result(timeout=5))"
    python = shlex.quote(sys.executable)
    return [
        f'try it:  NAQ_NATS_URL={url} {python} -c "{enqueue}"',  # nothing in it a shell expands
        f"         NAQ_NATS_URL={url} {python} -m naq list-workers",
    ]


_DEV_ONLY = frozenset({"port", "store_dir"})
"""``naq dev`` options its worker processes do not take."""


@naq_command(app, connects=False)
def dev(
    ctx: typer.Context,
    queues: QueuesArgument = None,
    port: Annotated[
        int, typer.Option(metavar="PORT", help="Port for the embedded server (-1: any).")
    ] = 4222,
    store_dir: Annotated[
        Path, typer.Option(metavar="DIR", help="JetStream storage directory.")
    ] = Path(".naq-data"),
    concurrency: ConcurrencyOption = 10,
    sync_threads: SyncThreadsOption = None,
    grace: GraceOption = 5.0,
    heartbeat_interval: HeartbeatOption = 5.0,
    hooks: HooksOption = None,
    django: DjangoOption = None,
    flask: FlaskOption = None,
    processes: ProcessesOption = 1,
    max_jobs_per_child: MaxJobsOption = None,
    max_memory_per_child: MaxMemoryOption = None,
    reload: ReloadOption = False,
    metrics_port: MetricsPortOption = None,
) -> None:
    """Run nats-server, a worker and the dashboard together.

    Ctrl-C stops all of it.
    The dashboard (with the dashboard extra) listens on NAQ_DASHBOARD_PORT (default 8080),
    or on a free port when that one is taken.
    """
    from .._integrations import prepare_worker
    from ._dashboard import dev_dashboard_port

    supervisor: Supervisor | None = None
    if supervised(processes, reload, max_jobs_per_child, max_memory_per_child):
        names = queues or ["default"]
        child = parameters_argv(
            ctx,
            skip=SUPERVISOR_OPTIONS | _DEV_ONLY | {"metrics_port"},  # a port per process
            only_given=False,
            values={"queues": names},
        )
        supervisor = Supervisor(
            # The URL comes from NAQ_NATS_URL; process k serves metrics on metrics_port + k - 1.
            child_command(naq_worker_command() + child, None, metrics_port),
            processes=processes,
            grace=grace,
            reload_path=Path(".") if reload else None,
        )
        worker_hooks = None
    else:
        sys.path.insert(0, str(Path(".").resolve()))
        worker_hooks = prepare_worker(hooks=hooks or (), django=django, flask=flask)
    with EmbeddedServer(port=port, store_dir=store_dir) as embedded:
        os.environ["NAQ_NATS_URL"] = embedded.url
        names = queues or ["default"]
        dashboard = bind_dev_dashboard(dev_dashboard_port())
        typer.echo(f"naq dev: nats-server at {embedded.url} (data in {store_dir})")
        workers = "worker" if supervisor is None else f"{processes} worker process(es)"
        typer.echo(
            f"naq dev: {workers} on {', '.join(names)} (concurrency {concurrency}); "
            "other queues: naq dev QUEUE..."
        )
        if reload:
            typer.echo("naq dev: restarting the workers when a .py file here changes")
        if dashboard is not None:
            typer.echo(f"naq dev: dashboard at {dashboard.url}{dashboard.note}")
        metrics: WorkerMetrics | None = None  # with a supervisor, its processes serve them
        try:
            if metrics_port is not None and supervisor is None:
                metrics = WorkerMetrics()
                bound = metrics.serve(metrics_port)
                typer.echo(f"naq dev: Prometheus metrics at http://127.0.0.1:{bound}/metrics")
            typer.echo("naq dev: Ctrl-C stops everything")
            for line in try_it_lines(embedded.url):
                typer.echo(line)
            if supervisor is not None:
                run(_dev_supervised, supervisor, embedded.url, dashboard)
            else:
                w = Worker(
                    names,
                    url=embedded.url,
                    concurrency=concurrency,
                    sync_threads=sync_threads,
                    heartbeat_interval=heartbeat_interval,
                    hooks=worker_hooks,
                    metrics=metrics,
                )
                run(_dev_services, w, grace, dashboard)
        finally:
            if metrics is not None:
                metrics.close()
            if dashboard is not None:
                dashboard.sock.close()  # a no-op once the dashboard took it over
    _exit_without_waiting_for_job_threads()
