"""Workers for tests: on the test's own event loop, or in a thread for blocking tests."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
from anyio.from_thread import start_blocking_portal

from naq import Worker

__all__ = [
    "STOP_TIMEOUT",
    "importable_rootdir",
    "running_worker",
    "thread_worker",
    "worker_options",
]

STOP_TIMEOUT = 60.0
"""Seconds a worker has to finish its running jobs when the test ends."""


def worker_options(request: pytest.FixtureRequest, url: str) -> dict[str, Any]:
    """``Worker`` arguments from ``@pytest.mark.naq_worker("mail", concurrency=2)``.

    Positional marker arguments are queues (default: ``default``); keyword arguments go to
    :class:`naq.Worker`. A short poll interval keeps the stop at the end of a test quick.
    """
    marker = request.node.get_closest_marker("naq_worker")
    queues = list(marker.args) if marker and marker.args else ["default"]
    options = dict(marker.kwargs) if marker else {}
    return {"queues": queues, "url": url, "poll_interval": 0.1, **options}


def importable_rootdir(request: pytest.FixtureRequest) -> None:
    """Let the worker import job functions by path from the project, as ``naq worker`` does."""
    root = str(Path(request.config.rootpath))
    if root not in sys.path:
        sys.path.append(root)


@asynccontextmanager
async def running_worker(options: dict[str, Any]) -> AsyncIterator[Worker]:
    """A worker task on the current event loop, stopped gracefully when the block ends."""
    worker = Worker(**options)
    async with anyio.create_task_group() as tg:
        await tg.start(worker.run)
        try:
            yield worker
        finally:
            worker.stop()


@contextmanager
def thread_worker(options: dict[str, Any]) -> Iterator[Worker]:
    """A worker on an asyncio loop in its own thread, for tests that block (Django, Flask)."""
    worker = Worker(**options)
    with start_blocking_portal("asyncio") as portal:
        done, _ = portal.start_task(worker.run)
        try:
            yield worker
        finally:
            portal.call(worker.stop)
            done.result(timeout=STOP_TIMEOUT)
