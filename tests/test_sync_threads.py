"""naq_sync from many threads at once, and refused where it would block an event loop."""

from __future__ import annotations

import asyncio
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import anyio
import pytest

import naq
import naq_sync
from naq._loop_thread import shared_loop
from naq_sync import _default
from tests import jobs
from tests.conftest import worker_in_thread

THREADS = 32


def _loop_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "naq-loop"]


def test_32_threads_enqueue_and_wait_at_once(nats_url, queue_name, monkeypatch):
    """All 32 threads' jobs must be waited on at the same time for any of them to end.

    Each job blocks until all 32 jobs run at once, so if one thread's enqueue or wait held
    up another's (a lock held across a call, one call at a time on the loop), the jobs would
    never all start and the barrier would break. The 32 threads also race to create the
    default client: exactly one must come out of it, on the one loop thread.
    """
    monkeypatch.setenv("NAQ_NATS_URL", nats_url)
    _default.close_default_client()  # start as a fresh process does: no default client yet
    key = uuid.uuid4().hex
    start = threading.Barrier(THREADS)

    def enqueue_and_wait(n: int) -> tuple[object, naq_sync.Client]:
        start.wait(timeout=60)
        client = naq_sync.default_client()
        job = naq_sync.enqueue(jobs.rendezvous, key, THREADS, n, queue=queue_name)
        return job.result(timeout=120), client

    with (
        worker_in_thread(nats_url, [queue_name], concurrency=THREADS),
        ThreadPoolExecutor(THREADS) as pool,
    ):
        outcomes = list(pool.map(enqueue_and_wait, range(THREADS)))
    assert [value for value, _ in outcomes] == list(range(THREADS))
    assert len({id(client) for _, client in outcomes}) == 1  # one client, one connection
    assert len(_loop_threads()) == 1


@pytest.mark.anyio
async def test_refused_inside_a_coroutine(nats_url):
    with pytest.raises(naq.NaqError, match="would stall the event loop running in this thread"):
        naq_sync.Client(nats_url).__enter__()
    with pytest.raises(naq.NaqError, match="use the async API"):
        naq_sync.fetch_job("x")
    await anyio.sleep(0)


def test_refused_in_an_asyncio_callback_without_a_task(nats_url):
    """sniffio sees no library in a plain loop callback; the running loop is still there."""
    outcome: list[BaseException] = []

    def callback() -> None:
        try:
            naq_sync.Client(nats_url).__enter__()
        except naq.NaqError as exc:
            outcome.append(exc)
        loop.stop()

    loop = asyncio.new_event_loop()
    try:
        loop.call_soon(callback)
        loop.run_forever()
    finally:
        loop.close()
    assert len(outcome) == 1
    assert "would stall the event loop" in str(outcome[0])


def test_refused_on_naqs_own_loop_thread_instead_of_deadlocking(nats_url):
    async def call_blocking_api() -> None:
        naq_sync.Client(nats_url).__enter__()

    future = asyncio.run_coroutine_threadsafe(call_blocking_api(), shared_loop())
    with pytest.raises(naq.NaqError, match="deadlock"):
        future.result(timeout=30)
