"""Serving the dashboard in tests: real HTTP over a socket bound before the server starts."""

from __future__ import annotations

import functools
import json
import re
import socket
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio

from naq.dashboard import create_app, serve


def bound_socket() -> tuple[int, int]:
    """A listening socket on a free loopback port: (fd for hypercorn's ``fd://``, port).

    Connections made before the server runs wait in its backlog: no readiness polling."""
    sock = socket.create_server(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    return sock.detach(), port


@asynccontextmanager
async def running_dashboard(client_or_url: Any, **options: Any) -> AsyncIterator[str]:
    """The dashboard app on hypercorn in this test's event loop; yields its base URL."""
    fd, port = bound_socket()
    app = create_app(client_or_url, **options)
    stop = anyio.Event()
    async with anyio.create_task_group() as tg:
        tg.start_soon(functools.partial(serve, app, f"fd://{fd}", shutdown_trigger=stop.wait))
        yield f"http://127.0.0.1:{port}"
        stop.set()  # a graceful stop: the app's shutdown closes its client


class Reply:
    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    @property
    def text(self) -> str:
        return self.body.decode()

    def json(self) -> Any:
        return json.loads(self.body)


def _request(method: str, url: str, headers: dict[str, str]) -> Reply:
    request = urllib.request.Request(url, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=20) as response:
            return Reply(response.status, dict(response.headers), response.read())
    except urllib.error.HTTPError as exc:
        return Reply(exc.code, dict(exc.headers), exc.read())


async def http(method: str, url: str, headers: dict[str, str] | None = None) -> Reply:
    """One real HTTP request (urllib in a worker thread, so the server keeps running)."""
    return await anyio.to_thread.run_sync(_request, method, url, headers or {})


def csrf_token(page_html: str) -> str:
    match = re.search(r'<meta name="csrf-token" content="([^"]+)">', page_html)
    assert match, "no CSRF token in the page"
    return match.group(1)
