"""``naq dashboard``: the web dashboard on hypercorn (needs the dashboard extra)."""

from __future__ import annotations

import ipaddress
import os
import signal
from typing import Annotated

import anyio
import typer
from loguru import logger

from .._errors import ConfigurationError
from .._settings import ConnectOptions
from . import Backend, app
from ._common import naq_command

__all__ = [
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


async def _until_signalled() -> None:
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for _ in signals:
            return


async def run_dashboard(
    options: ConnectOptions | str | None,
    host: str,
    port: int,
    auth: tuple[str, str] | None,
    *,
    stop: anyio.Event | None = None,
) -> None:
    """Serve the dashboard until ``stop`` is set, or (without one) SIGINT/SIGTERM."""
    from ..dashboard import create_app, serve

    trigger = _until_signalled if stop is None else stop.wait
    await serve(create_app(options, auth=auth), bind_address(host, port), shutdown_trigger=trigger)


async def dev_dashboard(url: str, stop: anyio.Event) -> None:
    """``naq dev``'s dashboard on localhost; a taken port is logged, the rest runs on."""
    try:
        await run_dashboard(url, "127.0.0.1", dev_dashboard_port(), None, stop=stop)
    except OSError as exc:
        logger.error("dashboard not started (set NAQ_DASHBOARD_PORT): {}", exc)


@naq_command(app)
def dashboard(
    options: ConnectOptions,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8080,
    backend: Annotated[
        Backend, typer.Option(envvar="NAQ_BACKEND", help="Event loop for the server.")
    ] = Backend.asyncio,
    auth: Annotated[
        str | None,
        typer.Option(
            envvar="NAQ_DASHBOARD_AUTH",
            help="user:password for HTTP Basic auth (prefer the env var).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Serve the web dashboard: live queues, jobs, workers, schedules and failures."""
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
    shown = "localhost" if is_loopback(host) else host
    typer.echo(f"naq dashboard at http://{bind_address(shown, port)}/ (Ctrl-C stops)")
    anyio.run(run_dashboard, options, host, port, credentials, backend=backend.value)
