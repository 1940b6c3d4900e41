"""``def`` jobs in a real worker, on both backends: the job threads and what jobs see there."""

from __future__ import annotations

import gc

import anyio
import pytest

import naq
from tests import jobs
from tests.conftest import run_signals, running_worker

pytestmark = pytest.mark.anyio


async def test_def_job_sees_current_job_in_a_naq_job_thread(client, nats_url, queue_name):
    async with running_worker(nats_url, [queue_name]):
        job = await client.enqueue(jobs.whoami, queue=queue_name)
        seen = await job.result(timeout=20)
    assert seen["job_id"] == job.id
    assert seen["thread"].startswith("naq-job")
    assert seen["daemon"] is True  # a job left running never keeps the process alive


@pytest.mark.parametrize("func", [jobs.add, jobs.async_add], ids=["def", "async_def"])
async def test_jobs_leave_no_cyclic_garbage(client, nats_url, queue_name, func):
    """A job's objects, the client's and the worker's, are freed when it ends, not left for
    the cyclic GC: a reference cycle per def job (34 objects each) once cost the worker
    more than the job's hand-over to its thread."""
    count = 200

    async def run_batch() -> None:
        calls = [naq.Call(func, (i, 1)) for i in range(count)]
        batch = await client.enqueue_many(calls, queue=queue_name)
        assert [await job.result(timeout=30) for job in batch] == list(range(1, count + 1))
        for i in range(20):  # one at a time too: enqueue, then wait for the result
            assert await (await client.enqueue(func, i, 2, queue=queue_name)).result(10) == i + 2

    async with running_worker(nats_url, [queue_name], concurrency=20):
        await run_batch()  # warm: what the first jobs set up once is not counted
        gc.collect()
        gc.disable()
        try:
            await run_batch()
            garbage = gc.collect()
        finally:
            gc.enable()
    assert garbage < count // 4, f"{garbage} objects in reference cycles after {count} jobs"


async def test_sync_threads_bounds_the_threads_def_jobs_use(client, nats_url, queue_name):
    async with running_worker(nats_url, [queue_name], concurrency=10, sync_threads=2) as worker:
        assert worker.sync_threads == 2
        batch = [
            await client.enqueue(jobs.thread_ident_after, 0.05, queue=queue_name) for _ in range(12)
        ]
        idents = {await job.result(timeout=30) for job in batch}
    assert 1 <= len(idents) <= 2


async def test_sync_threads_default_and_validation(monkeypatch, nats_url):
    assert naq.Worker(url=nats_url, concurrency=7).sync_threads == 7
    monkeypatch.setenv("NAQ_SYNC_THREADS", "3")
    assert naq.Worker(url=nats_url, concurrency=7).sync_threads == 3
    assert naq.Worker(url=nats_url, sync_threads=5).sync_threads == 5
    for bad in (0, -1):
        with pytest.raises(naq.ConfigurationError, match="sync_threads"):
            naq.Worker(url=nats_url, sync_threads=bad)
    monkeypatch.setenv("NAQ_SYNC_THREADS", "many")
    with pytest.raises(naq.ConfigurationError, match="sync_threads"):
        naq.Worker(url=nats_url)


async def test_after_a_def_job_timed_out_its_thread_is_replaced(client, nats_url, queue_name):
    """One job thread, stuck in a timed-out job: the next def job still runs at once."""
    async with running_worker(nats_url, [queue_name], sync_threads=1):
        stuck = await client.enqueue(jobs.sync_sleep, 5, queue=queue_name, job_timeout=0.2)
        with pytest.raises(naq.JobFailed) as info:
            await stuck.result(timeout=10)
        assert info.value.exc_type == "JobTimeout"
        with anyio.fail_after(3):  # well before the stuck job's thread is free again
            assert await (await client.enqueue(jobs.add, 2, 3, queue=queue_name)).result() == 5


async def test_grace_deadline_hands_back_a_running_def_job(client, nats_url, queue_name):
    """A def job outliving the grace is handed back, and the worker returns meanwhile."""
    async with run_signals() as runs:
        worker = naq.Worker([queue_name], url=nats_url, poll_interval=0.1, ack_wait=60)
        job = await client.enqueue(jobs.signal_run, runs.port, 30, queue=queue_name)
        with anyio.fail_after(20):
            async with anyio.create_task_group() as tg:
                await tg.start(worker.run)
                await runs.wait_for(1)
                worker.stop(grace=0.2)
    # handed back (not left for the 60 s ack wait): the next worker gets it at once
    record = await job.refresh()
    assert record.status is naq.JobStatus.STARTED
    assert await client.queue(queue_name).count() == 1


async def test_def_jobs_hold_their_worker_slots_until_they_end(client, nats_url, queue_name):
    """A runner does not wait for a ``def`` job, but the job keeps its slot while it runs."""
    key = f"{queue_name}-slots"
    async with running_worker(nats_url, [queue_name], concurrency=3, sync_threads=8):
        batch = [
            await client.enqueue(jobs.sync_limit_probe, key, 0.2, queue=queue_name)
            for _ in range(9)
        ]
        assert [await job.result(timeout=30) for job in batch] == [key] * 9
    assert 2 <= jobs.probe_most(key) <= 3


async def test_a_max_running_limit_holds_for_def_jobs(client, nats_url, queue_name):
    """The limit's unit is given back when a ``def`` job ends, not when it is handed over."""
    key = f"{queue_name}-limited"
    async with running_worker(nats_url, [queue_name], concurrency=10):
        batch = [
            await client.enqueue(
                jobs.sync_limit_probe, key, 0.1, queue=queue_name, max_running=2, limit_key=key
            )
            for _ in range(8)
        ]
        assert [await job.result(timeout=60) for job in batch] == [key] * 8
    assert jobs.probe_most(key) <= 2


async def test_stop_waits_for_the_running_def_jobs_and_settles_them(client, nats_url, queue_name):
    async with run_signals() as runs:
        worker = naq.Worker([queue_name], url=nats_url, poll_interval=0.1)
        job = await client.enqueue(jobs.signal_run, runs.port, 0.5, queue=queue_name)
        with anyio.fail_after(20):
            async with anyio.create_task_group() as tg:
                await tg.start(worker.run)
                await runs.wait_for(1)
                worker.stop()  # no grace: the job runs to its end
    assert worker.processed == 1
    assert (await job.refresh()).status is naq.JobStatus.FINISHED
    assert await client.queue(queue_name).count() == 0
