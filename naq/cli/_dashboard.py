"""``naq dashboard``: the web dashboard on hypercorn (needs the dashboard extra).

The listening socket is bound and NATS is connected before hypercorn starts, so a taken
port or an unreachable server is one clear line, not a failed ASGI lifespan.
"""

from __future__ import annotations

import functools
import ipaddress
import os
import signal
import socket
from typing import Annotated

import anyio
import typer

from .._client import Client
from .._errors import ConfigurationError
from .._settings import ConnectOptions
from . import BackendOption, app
from ._common import Backend, naq_command, run

__all__ = [
    "bind",
    "dashboard",
    "dashboard_available",
    "dev_dashboard",
    "dev_dashboard_port",
    "run_dashboard",
]


def dev_dashboard_port() -> int:
    """The port ``naq dev`` serves the dashboard on: ``NAQ_DASHBOARD_PORT``, else 8080."""
    return int(os.environ.get("NAQ_DASHBOARD_PORT") or 8080)


def dashboard_available() -> bool:
    """True when the dashboard extra is installed."""
    try:
        import naq.dashboard  # noqa: F401
    except ConfigurationError:
        return False
    return True


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def bind_address(host: str, port: int) -> str:
    return f"[{host.strip('[]')}]:{port}" if ":" in host else f"{host}:{port}"


def bind(host: str, port: int) -> socket.socket:
    """The dashboard's listening socket, or a ConfigurationError saying why not."""
    try:
        return socket.create_server((host.strip("[]"), port))
    except OSError as exc:
        raise ConfigurationError(
            f"the dashboard cannot listen on {bind_address(host, port)}: "
            f"{os.strerror(exc.errno) if exc.errno else exc} (choose another --port)"
        ) from None


async def _until_signalled() -> None:
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for _ in signals:
            return


async def run_dashboard(
    options: ConnectOptions | str | None,
    sock: socket.socket,
    auth: tuple[str, str] | None,
    *,
    stop: anyio.Event | None = None,
    announce: str | None = None,
) -> None:
    """Connect, print ``announce``, then serve the dashboard on ``sock`` until ``stop`` is
    set, or (without one) SIGINT/SIGTERM. The client reconnects by itself once connected."""
    from ..dashboard import create_app, serve

    trigger = _until_signalled if stop is None else stop.wait
    if isinstance(options, ConnectOptions):
        client = Client(connect_options=options)
    else:
        client = Client(options)
    async with client:
        if announce:
            typer.echo(announce)
        app_ = create_app(client, auth=auth)
        await serve(app_, f"fd://{sock.detach()}", shutdown_trigger=trigger)


async def dev_dashboard(url: str, sock: socket.socket, stop: anyio.Event) -> None:
    """``naq dev``'s dashboard on the socket ``naq dev`` bound (and printed)."""
    await run_dashboard(url, sock, None, stop=stop)


@naq_command(app)
def dashboard(
    options: ConnectOptions,
    host: Annotated[str, typer.Option(metavar="ADDRESS", help="Address to listen on.")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option(metavar="PORT", help="Port to listen on.")] = 8080,
    backend: BackendOption = Backend.asyncio,
    auth: Annotated[
        str | None,
        typer.Option(
            metavar="USER:PASSWORD",
            envvar="NAQ_DASHBOARD_AUTH",
            help="user:password for HTTP Basic auth (prefer the env var).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Serve the web dashboard: queues, jobs, workers, schedules.

    Live views of queues, jobs, workers, schedules and dead letters, with their actions.
    """
    if not dashboard_available():
        raise ConfigurationError(
            "the dashboard needs the dashboard extra: pip install 'naq[dashboard]'"
        )
    from ..dashboard._security import parse_auth

    credentials = parse_auth(auth)
    if credentials is None and not is_loopback(host):
        typer.secho(
            f"naq dashboard: WARNING: listening on {host} without --auth: anyone who can "
            "reach it can see and change your jobs",
            fg="yellow",
            err=True,
        )
    sock = bind(host, port)
    announce = f"naq dashboard at http://{bind_address(host, port)}/ (Ctrl-C stops)"
    serve = functools.partial(run_dashboard, options, sock, credentials, announce=announce)
    with sock:  # closed here if serving never took it over (no server at the URL)
        run(serve, backend=backend.value)
