"""Helpers for CLI tests: typer's runner, a blocking run signal, heartbeat watches."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Callable

import anyio
from loguru import logger
from typer.testing import CliRunner

import naq
from naq._heartbeat import WorkerInfo, decode_worker_info
from naq.cli import app
from tests.conftest import ROOT


def invoke(*args: str, env: dict[str, str] | None = None, input: str | None = None):
    """Run ``naq ARGS`` in-process with typer's runner; loguru is left as the suite had it."""
    try:
        return CliRunner().invoke(app, list(args), env=env, input=input)
    finally:
        logger.remove()
        logger.add(sys.stderr)
        logger.disable("naq")


def invoke_json(*args: str, env: dict[str, str] | None = None):
    result = invoke(*args, "--json", env=env)
    assert result.exit_code == 0, result.output + result.stderr
    return json.loads(result.stdout)


def naq_process(*args: str, env: dict[str, str] | None = None, **popen) -> subprocess.Popen:
    """``python -m naq ARGS`` in a real subprocess, from the repo root."""
    return subprocess.Popen(
        [sys.executable, "-m", "naq", *args],
        cwd=ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
        **popen,
    )


class RunSignal:
    """A listener the job ``tests.jobs.signal_*`` connects to when its body starts."""

    def __init__(self) -> None:
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]

    def wait(self, timeout: float = 30) -> None:
        self._server.settimeout(timeout)
        conn, _ = self._server.accept()
        with conn:
            conn.recv(16)

    def close(self) -> None:
        self._server.close()


Seen = Callable[[str, WorkerInfo | None], bool]


def wait_heartbeat(url: str, seen: Seen, timeout: float = 30) -> tuple[str, WorkerInfo | None]:
    """Watch ``naq_workers`` until ``seen(key, info)`` (info None: the key was deleted).

    Woken by each heartbeat write or expiry, not polled.
    """

    async def watch() -> tuple[str, WorkerInfo | None]:
        async with naq.Client(url) as client:
            connection = client._connection
            admin = connection.transport.admin

            async def on_loop() -> tuple[str, WorkerInfo | None]:
                kv = await admin._workers()
                watcher = await kv.watch(">")
                try:
                    while True:
                        entry = await watcher.updates(timeout=timeout)
                        if entry is None:
                            continue
                        info = decode_worker_info(entry.value) if entry.value else None
                        if seen(entry.key, info):
                            return entry.key, info
                finally:
                    await watcher.stop()

            with anyio.fail_after(timeout):
                return await connection.call(on_loop)

    return anyio.run(watch)
