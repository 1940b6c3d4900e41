"""Test harness: one real nats-server per session, every async test on asyncio and Trio."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import anyio
import anyio.abc
import pytest
from anyio.from_thread import start_blocking_portal

import naq
from naq.server import EmbeddedServer
from tests._counts import counts, pytest_terminal_summary  # noqa: F401 - fixture, hook
from tests._order import spread_longest_first

ROOT = Path(__file__).resolve().parent.parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Longest tests first, spread over the xdist workers (see tests/_order.py)."""
    workerinput = getattr(config, "workerinput", None)  # set in xdist's workers, which collect
    if workerinput is not None:
        items[:] = spread_longest_first(items, int(workerinput["workercount"]))


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--dashboard-screenshot",
        metavar="PATH",
        default=None,
        help="Save the browser test's screenshot of the dashboard here (docs/dashboard.png "
        "for the README); by default it goes to the test's temporary directory.",
    )


@pytest.fixture(scope="session")
def nats_url() -> Iterator[str]:
    """A real nats-server with JetStream (or ``NAQ_TEST_NATS_URL``) for the whole session."""
    existing = os.environ.get("NAQ_TEST_NATS_URL")
    if existing:
        yield existing
        return
    with EmbeddedServer() as server:
        yield server.url


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    """Run every async test on both backends; trio is a dev dependency, never skipped."""
    return request.param


@pytest.fixture
def queue_name() -> str:
    """A queue of this test's own, so tests pass in any order."""
    return f"t{uuid.uuid4().hex[:12]}"


@pytest.fixture
async def client(nats_url: str) -> AsyncIterator[naq.Client]:
    async with naq.Client(nats_url) as c:
        yield c


@asynccontextmanager
async def running_worker(url: str, queues: list[str], **options) -> AsyncIterator[naq.Worker]:
    """A worker on the test's backend, stopped gracefully when the block ends.

    A short poll interval keeps the graceful stop (which waits out an idle fetch) quick.
    """
    worker = naq.Worker(queues, url=url, **{"poll_interval": 0.1, **options})
    async with anyio.create_task_group() as tg:
        await tg.start(worker.run)
        yield worker
        worker.stop()


@contextmanager
def worker_in_thread(url: str, queues: list[str], **options) -> Iterator[naq.Worker]:
    """A worker on its own event loop thread, for tests written in blocking style."""
    worker = naq.Worker(queues, url=url, **{"poll_interval": 0.1, **options})
    with start_blocking_portal() as portal:
        future, _ = portal.start_task(worker.run)
        yield worker
        portal.call(worker.stop)
        future.result(timeout=30)


def start_worker_process(
    url: str, queues: list[str], *options: str, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """``naq worker`` in a real subprocess, importing job functions from the repo root."""
    return subprocess.Popen(
        [sys.executable, "-m", "naq", "worker", *queues, "--url", url, *options],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
    )


class RunSignals:
    """Counts job bodies that started, as events: jobs.signal_run connects here when it runs."""

    def __init__(self) -> None:
        self.port = 0
        self.count = 0
        self._changed = anyio.Event()

    async def wait_for(self, count: int, timeout: float = 30) -> None:
        with anyio.fail_after(timeout):
            while self.count < count:
                await self._changed.wait()

    async def _serve(self, listener, *, task_status=anyio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        await listener.serve(self._on_connect)

    async def _on_connect(self, stream) -> None:
        async with stream:
            await stream.receive()
        self.count += 1
        self._changed.set()
        self._changed = anyio.Event()


@asynccontextmanager
async def run_signals() -> AsyncIterator[RunSignals]:
    signals = RunSignals()
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    signals.port = listener.extra(anyio.abc.SocketAttribute.local_port)
    async with listener, anyio.create_task_group() as tg:
        await tg.start(signals._serve, listener)
        yield signals
        tg.cancel_scope.cancel()
