"""A real nats-server restarted under a client: calls wait for it, or fail clearly, then work.

Each test has its own server with a fixed store directory, stopped and started again on the
same port, so JetStream comes back with its streams and the clients reconnect by themselves.
"""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import anyio
import anyio.to_thread
import pytest

import naq
import naq_sync
from naq.server import EmbeddedServer
from tests import jobs
from tests.conftest import start_worker_process


class RestartableServer:
    """An EmbeddedServer that can be stopped and started again on its port and store."""

    def __init__(self, store: Path) -> None:
        self.store = store
        self.port = -1
        self.url = ""
        self._server: EmbeddedServer | None = None

    def start(self) -> None:
        self._server = EmbeddedServer(port=self.port, store_dir=self.store)
        self.url = self._server.start()
        self.port = self._server.port

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RestartableServer]:
    restartable = RestartableServer(tmp_path / "store")
    restartable.start()
    try:
        yield restartable
    finally:
        restartable.stop()


@pytest.fixture
def worker_processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Worker subprocesses a test starts, stopped (or killed) whatever the test's outcome."""
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.mark.anyio
async def test_calls_during_a_restart_wait_for_the_server(server, queue_name, worker_processes):
    async with naq.Client(server.url, timeout=60) as client:
        # A job no worker has taken yet; its waiter will wait across the restart.
        first = await client.enqueue(jobs.add, 1, 2, queue=queue_name)
        server.stop()
        results: dict[str, object] = {}

        async def wait_for_first() -> None:
            results["first"] = await first.result(timeout=90)

        async def enqueue_while_down() -> None:
            # An explicit id makes it safe to send again if the drop interrupts the first try.
            job = await client.enqueue(jobs.add, 2, 3, queue=queue_name, job_id=uuid.uuid4().hex)
            results["second"] = await job.result(timeout=90)

        async with anyio.create_task_group() as tg:
            tg.start_soon(wait_for_first)
            tg.start_soon(enqueue_while_down)
            await anyio.wait_all_tasks_blocked()
            await anyio.to_thread.run_sync(server.start)
            # The worker starts only now, so it runs both jobs after the restart.
            worker_processes.append(start_worker_process(server.url, [queue_name]))
        assert results == {"first": 3, "second": 5}
        # Back to normal, with the same client.
        job = await client.enqueue(jobs.add, 3, 4, queue=queue_name)
        assert await job.result(timeout=60) == 7


def test_call_while_down_raises_a_clear_error_then_works_again(server, queue_name):
    # 3 s: more than nats-py's time between reconnect attempts (2 s + 0.1 s jitter), so a
    # call made as the server comes back waits for the reconnect rather than failing.
    with naq_sync.Client(server.url, timeout=3) as client:
        job = client.enqueue(jobs.add, 1, 1, queue=queue_name)
        server.stop()
        started = time.monotonic()
        with pytest.raises(naq.NaqConnectionError) as raised:
            client.enqueue(jobs.add, 2, 2, queue=queue_name)
        assert time.monotonic() - started < 20  # its 3 s timeout, nowhere near forever
        message = str(raised.value)
        assert message.startswith("enqueue of job ")
        assert f"NATS at {server.url} is disconnected and reconnecting (timeout 3 s)" in message
        server.start()
        # The same client, without restarting anything: this call waits for the reconnect.
        assert job.get_status() is naq.JobStatus.QUEUED
        assert client.enqueue(jobs.add, 3, 3, queue=queue_name).get_status() is (
            naq.JobStatus.QUEUED
        )
