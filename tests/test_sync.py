"""naq_sync: the blocking facade, from plain threads, against a real worker."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import anyio
import pytest

import naq
import naq_sync
from tests import jobs
from tests.conftest import worker_in_thread


@pytest.fixture
def background_worker(nats_url: str, queue_name: str) -> Iterator[naq.Worker]:
    with worker_in_thread(nats_url, [queue_name], concurrency=16) as worker:
        yield worker


@pytest.fixture
def sync_client(nats_url: str) -> Iterator[naq_sync.Client]:
    with naq_sync.Client(nats_url) as client:
        yield client


def test_enqueue_and_result(sync_client, background_worker, queue_name):
    job = sync_client.enqueue(jobs.add, 2, 2, queue=queue_name)
    assert isinstance(job, naq_sync.Job)
    assert job.result(timeout=10) == 4
    assert job.get_status() is naq.JobStatus.FINISHED
    assert sync_client.fetch_job(job.id).record.status is naq.JobStatus.FINISHED


def test_failure_raises_job_failed(sync_client, background_worker, queue_name):
    job = sync_client.enqueue(jobs.fail, "sync", queue=queue_name)
    with pytest.raises(naq_sync.JobFailed, match="sync"):
        job.result(timeout=10)


def test_eight_threads_at_once(sync_client, background_worker, queue_name):
    start = threading.Barrier(8)
    used_loop_threads = set()

    def produce(n: int) -> list[int]:
        start.wait()
        handles = [sync_client.enqueue(jobs.add, n, i, queue=queue_name) for i in range(25)]
        used_loop_threads.add(naq._loop_thread.shared_portal())
        return [h.result(timeout=30) for h in handles]

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(produce, range(8)))
    assert results == [[n + i for i in range(25)] for n in range(8)]
    assert len(used_loop_threads) == 1  # one loop thread serves every thread


def test_default_client_from_module_functions(background_worker, queue_name, nats_url, monkeypatch):
    monkeypatch.setenv("NAQ_NATS_URL", nats_url)
    job = naq_sync.enqueue(jobs.add, 40, 2, queue=queue_name)
    assert job.result(timeout=10) == 42
    assert naq_sync.fetch_job(job.id).get_status() is naq.JobStatus.FINISHED
    assert naq_sync.queue(queue_name).enqueue_call(jobs.add, (1, 2)).result(timeout=10) == 3
    assert naq_sync.default_client().url == nats_url


def test_queue_facade(sync_client, queue_name):
    queue = sync_client.queue(queue_name)
    assert isinstance(queue, naq_sync.Queue)
    assert queue.name == queue_name
    assert queue.count() == 0


@pytest.mark.anyio
async def test_blocking_call_inside_event_loop_raises(nats_url):
    with pytest.raises(naq.NaqError, match="would stall the event loop"):
        naq_sync.Client(nats_url).__enter__()
    await anyio.sleep(0)


def test_events_as_a_blocking_iterator(sync_client, background_worker, queue_name):
    with sync_client.events(queue=queue_name) as events:
        assert isinstance(events, naq_sync.EventStream)
        job = sync_client.enqueue(jobs.add, 1, 2, queue=queue_name)
        kinds = []
        for event in events:
            assert event.job_id == job.id
            kinds.append(event.kind)
            if event.kind == "finished":
                break
    assert kinds[0] == "queued"
    assert kinds[-1] == "finished"


def test_admin_from_blocking_code(sync_client, background_worker, queue_name):
    """naq_sync.Admin: the operator views and purge from a script or a Django shell."""
    admin = naq_sync.Admin(sync_client)
    [listed] = [w for w in admin.workers() if w.id == background_worker.id]
    assert listed.queues == [queue_name]
    [info] = admin.queues([queue_name])
    assert isinstance(info, naq.QueueInfo) and info.workers == [background_worker.id]
    idle = queue_name + "-idle"
    sync_client.enqueue(jobs.add, 1, 2, queue=idle)
    assert admin.purge(idle) == 1
    assert admin.queues([idle])[0].pending == 0


def test_depends_on_naq_sync_jobs_and_mixed_lists(sync_client, background_worker, queue_name):
    """``depends_on=`` a naq_sync.Job (it raised "'Job' object is not iterable"), or a list
    mixing naq_sync jobs, ids and naq jobs."""
    a = sync_client.enqueue(jobs.add, 1, 2, queue=queue_name)
    b = sync_client.enqueue(jobs.add, 10, 20, queue=queue_name, depends_on=a)
    d = sync_client.enqueue(jobs.add, 100, 200, queue=queue_name)
    assert b.record is not None and b.record.depends_on == (a.id,)
    mixed = [a, b.id, d._async]  # naq_sync's job, an id, naq's job
    c = sync_client.enqueue(jobs.sum_of_dependencies, queue=queue_name, depends_on=mixed)
    assert c.record is not None and c.record.depends_on == (a.id, b.id, d.id)
    assert c.result(timeout=10) == 333


def test_default_client_depends_on_a_naq_sync_job(
    background_worker, queue_name, nats_url, monkeypatch
):
    monkeypatch.setenv("NAQ_NATS_URL", nats_url)
    first = naq_sync.enqueue(jobs.add, 1, 2, queue=queue_name)
    second = naq_sync.enqueue_call(jobs.add, (3, 4), queue=queue_name, depends_on=[first])
    assert second.result(timeout=10) == 7
    assert second.record is not None and second.record.depends_on == (first.id,)


def test_typed_calls_from_blocking_code(sync_client, background_worker, queue_name):
    job = sync_client.enqueue_call(naq_sync.call(jobs.add, 2, 3), queue=queue_name)
    assert isinstance(job, naq_sync.Job)
    assert job.result(timeout=10) == 5
    many = sync_client.queue(queue_name).enqueue_many(
        [naq_sync.call(jobs.add, 1, 1), naq_sync.call(jobs.echo, "x", k=1)]
    )
    assert [j.result(timeout=10) for j in many] == [2, {"args": ["x"], "kwargs": {"k": 1}}]


def test_queues_dead_letters_and_schedules_give_naq_sync_objects(
    sync_client, background_worker, queue_name, tmp_path
):
    queue = naq_sync.Queue(sync_client, queue_name)  # constructible, like naq.Queue
    assert queue.client._async is sync_client._async
    job = queue.enqueue(jobs.fail_until, str(tmp_path / "calls"), 1)
    with pytest.raises(naq_sync.JobFailed):
        job.result(timeout=20)
    [letter] = sync_client.dead_letters(queue=queue_name)
    requeued = sync_client.requeue_dead_letter(letter.job_id)
    assert isinstance(requeued, naq_sync.Job)
    assert requeued.result(timeout=20) == 2
    delayed = sync_client.enqueue_in(3600, jobs.add, 1, 2, queue=queue_name)
    assert isinstance(delayed, naq_sync.Job)
    assert delayed.get_status() is naq.JobStatus.SCHEDULED
    assert sync_client.cancel_schedule(delayed.id).status is naq.ScheduleStatus.CANCELED
    assert delayed.get_status() is naq.JobStatus.CANCELED
