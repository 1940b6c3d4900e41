"""naq_sync's enqueue made in the calling thread, on pooled blocking connections.

``naq_sync.Client.enqueue`` runs ``Client.enqueue`` in the caller's thread
(``naq/_caller_thread.py``): its publish goes out on a blocking connection the thread takes
from the client's pool, and everything else crosses to the loop thread. These tests pin that
it is that path that runs, and that it keeps enqueue's behaviour: idempotent ids,
dependencies, size errors, outages, and being refused inside an event loop.
"""

from __future__ import annotations

import threading
from collections.abc import Generator

import pytest

import naq
import naq_sync
from naq._caller_thread import run_in_caller
from naq._transport._blocking_wire import BlockingPool
from tests import jobs, test_outage, test_sync

sync_client = test_sync.sync_client
background_worker = test_sync.background_worker
server = test_outage.server
"""Fixtures of test_sync (a client, a worker in a thread) and test_outage (a restartable server)."""


def _pool(client: naq_sync.Client) -> BlockingPool:
    """The client's pool of blocking connections (made by its first enqueue from a thread)."""
    caller = client._async._connection._caller
    assert caller is not None, "no enqueue went through the calling thread's path"
    return caller._pool


def test_enqueue_publishes_from_the_calling_thread(sync_client, background_worker, queue_name):
    first = sync_client.enqueue(jobs.add, 2, 3, queue=queue_name)
    pool = _pool(sync_client)
    assert len(pool._idle) == 1  # the connection this thread used, given back
    second = sync_client.enqueue(jobs.add, 4, 5, queue=queue_name)
    assert len(pool._idle) == 1  # taken again, not a new one
    assert first.result(timeout=10) == 5
    assert second.result(timeout=10) == 9


def test_threads_at_once_share_the_pool(sync_client, queue_name):
    count, threads = 40, 6
    go = threading.Barrier(threads)
    ids: list[str] = []

    def produce() -> None:
        go.wait()
        ids.extend(sync_client.enqueue(jobs.add, 1, 1, queue=queue_name).id for _ in range(count))

    workers = [threading.Thread(target=produce) for _ in range(threads)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    assert len(set(ids)) == count * threads
    assert sync_client.queue(queue_name).count() == count * threads
    assert 1 <= len(_pool(sync_client)._idle) <= threads


def test_explicit_job_id_is_idempotent(sync_client, queue_name):
    first = sync_client.enqueue(jobs.add, 1, 2, queue=queue_name, job_id="caller-once")
    again = sync_client.enqueue(jobs.add, 1, 2, queue=queue_name, job_id="caller-once")
    assert again.id == first.id == "caller-once"
    assert sync_client.queue(queue_name).count() == 1


def test_dependencies_from_the_calling_thread(sync_client, background_worker, queue_name):
    first = sync_client.enqueue(jobs.add, 1, 2, queue=queue_name)
    then = sync_client.enqueue(jobs.add, 3, 4, queue=queue_name, depends_on=first)
    assert then.result(timeout=10) == 7
    assert first.get_status() is naq.JobStatus.FINISHED


def test_a_job_too_large_is_refused_before_sending(sync_client, queue_name):
    with pytest.raises(naq.SerializationError, match="max_payload"):
        sync_client.enqueue(jobs.echo, "x" * (2 * 1024 * 1024), queue=queue_name)
    assert sync_client.queue(queue_name).count() == 0


def test_a_pooled_connection_a_restart_closed_is_replaced(server, queue_name):
    with naq_sync.Client(server.url, timeout=30) as client:
        client.enqueue(jobs.add, 1, 1, queue=queue_name)
        (before,) = _pool(client)._idle
        server.stop()
        server.start()
        # The idle connection is dead now: the next enqueue finds out, and gets there anyway.
        job = client.enqueue(jobs.add, 2, 2, queue=queue_name)
        assert job.get_status() is naq.JobStatus.QUEUED
        assert before not in _pool(client)._idle
        assert client.queue(queue_name).count() == 2


class _Suspend:
    def __await__(self) -> Generator[None, None, None]:
        yield None


def test_a_coroutine_that_suspends_is_reported_as_a_naq_bug():
    async def suspends() -> int:
        await _Suspend()
        return 1

    with pytest.raises(RuntimeError, match=r"naq bug: .*suspends.* suspended"):
        run_in_caller(suspends)


@pytest.mark.anyio
async def test_refused_inside_an_event_loop(nats_url, queue_name):
    client = naq_sync.Client(nats_url)  # not entered: the refusal comes first
    with pytest.raises(naq.NaqError, match="would stall the event loop"):
        client.enqueue(jobs.add, 1, 1, queue=queue_name)
