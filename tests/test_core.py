"""The core path against a real server: enqueue → worker → result, on asyncio and Trio."""

from __future__ import annotations

import anyio
import pytest

import naq
from tests import jobs
from tests.conftest import running_worker

pytestmark = pytest.mark.anyio


async def test_sync_function_result(client, nats_url, queue_name):
    async with running_worker(nats_url, [queue_name]):
        job = await client.enqueue(jobs.add, 2, 3, queue=queue_name)
        assert await job.result(timeout=10) == 5
        assert await job.get_status() is naq.JobStatus.FINISHED


async def test_async_function_result(client, nats_url, queue_name):
    async with running_worker(nats_url, [queue_name]):
        job = await client.enqueue(jobs.async_add, 20, 22, queue=queue_name)
        assert await job.result(timeout=10) == 42


async def test_function_by_import_path(client, nats_url, queue_name):
    async with running_worker(nats_url, [queue_name]):
        job = await client.enqueue("tests.jobs:add", "a", "b", queue=queue_name)
        assert await job.result(timeout=10) == "ab"


async def test_queued_job_record_and_status(client, queue_name):
    job = await client.enqueue(jobs.add, 1, 1, queue=queue_name, meta={"who": "test"})
    fetched = await client.fetch_job(job.id)
    record = fetched.record
    assert record.status is naq.JobStatus.QUEUED
    assert record.queue == queue_name
    assert record.func_name == "tests.jobs:add"
    assert record.meta == {"who": "test"}
    assert record.enqueued_at.utcoffset().total_seconds() == 0
    assert await client.queue(queue_name).count() == 1


async def test_enqueue_call_passes_option_names_as_kwargs(client, nats_url, queue_name):
    async with running_worker(nats_url, [queue_name]):
        job = await client.enqueue_call(
            jobs.echo, args=(1,), kwargs={"queue": "q", "job_id": "j"}, queue=queue_name
        )
        assert await job.result(timeout=10) == {
            "args": [1],
            "kwargs": {"queue": "q", "job_id": "j"},
        }


async def test_queue_handle(client, nats_url, queue_name):
    queue = client.queue(queue_name)
    async with running_worker(nats_url, [queue_name]):
        job = await queue.enqueue(jobs.add, 4, 5)
        assert await job.result(timeout=10) == 9
        job = await queue.enqueue_call(jobs.add, (6, 7))
        assert await job.result(timeout=10) == 13


async def test_unknown_job(client):
    with pytest.raises(naq.JobNotFound):
        await client.fetch_job("no-such-job")


async def test_result_wait_times_out_without_worker(client, nats_url, queue_name):
    """The timeout says why when it is plain: no live worker consumes the job's queue."""
    job = await client.enqueue(jobs.add, 1, 2, queue=queue_name)
    async with running_worker(nats_url, [f"{queue_name}-other"]):  # a worker, elsewhere
        with pytest.raises(naq.ResultTimeout) as info:
            await job.result(timeout=0.2)
    assert isinstance(info.value, TimeoutError)
    assert str(info.value) == (
        f"job {job.id} did not end within 0.2 s: it is still queued on {queue_name!r}, and no "
        f"live worker consumes that queue (start one: naq worker {queue_name})"
    )
    with pytest.raises(naq.ResultTimeout, match="no live worker consumes"):
        await job.wait_until(naq.JobStatus.STARTED, timeout=0.1)
    with pytest.raises(naq.ResultTimeout) as polled:
        await job.result(timeout=0)  # a poll stays one read, without the look around
    assert str(polled.value) == f"job {job.id} did not end within 0 s"
    assert await job.get_status() is naq.JobStatus.QUEUED


async def test_timeout_with_a_busy_worker_has_no_hint(client, nats_url, queue_name):
    async with running_worker(nats_url, [queue_name], concurrency=1):
        busy = await client.enqueue(jobs.async_sleep, 2, queue=queue_name)
        await busy.wait_until(naq.JobStatus.STARTED, timeout=20)
        job = await client.enqueue(jobs.add, 1, 2, queue=queue_name)
        with pytest.raises(naq.ResultTimeout) as info:
            await job.result(timeout=0.2)
        assert str(info.value) == f"job {job.id} did not end within 0.2 s"
        busy_worker_cancel = await client.cancel(busy.id)
    assert busy_worker_cancel is True


async def test_retried_then_succeeds(client, nats_url, queue_name, tmp_path):
    marker = str(tmp_path / "calls")
    async with running_worker(nats_url, [queue_name]):
        job = await client.enqueue(
            jobs.fail_until, marker, 2, queue=queue_name, retry=naq.Retry(max=3, interval=0.05)
        )
        assert await job.result(timeout=10) == 3
        assert job.record.attempts == 3


async def test_retries_exhausted_fail_with_remote_traceback(client, nats_url, queue_name):
    async with running_worker(nats_url, [queue_name]):
        job = await client.enqueue(
            jobs.fail, "kaput", queue=queue_name, retry=naq.Retry(max=2, interval=[0.05, 0.1])
        )
        with pytest.raises(naq.JobFailed) as info:
            await job.result(timeout=10)
    error = info.value
    assert error.exc_type == "ValueError"
    assert error.message == "kaput"
    assert "tests/jobs.py" in error.traceback
    assert "raise ValueError(message)" in error.traceback
    record = job.record
    assert record.status is naq.JobStatus.FAILED
    assert record.attempts == 3
    assert record.ended_at >= record.started_at >= record.enqueued_at


async def test_failure_without_retry_is_final(client, nats_url, queue_name):
    async with running_worker(nats_url, [queue_name]):
        job = await client.enqueue(jobs.fail, queue=queue_name)
        with pytest.raises(naq.JobFailed):
            await job.result(timeout=10)
    assert job.record.attempts == 1


async def test_async_job_timeout(client, nats_url, queue_name):
    async with running_worker(nats_url, [queue_name]):
        job = await client.enqueue(jobs.async_sleep, 30, queue=queue_name, job_timeout=0.3)
        with pytest.raises(naq.JobFailed) as info:
            await job.result(timeout=10)
    assert info.value.exc_type == "JobTimeout"
    assert "cancelled" in info.value.message


async def test_sync_job_timeout(client, nats_url, queue_name):
    async with running_worker(nats_url, [queue_name]):
        job = await client.enqueue(jobs.sync_sleep, 1.5, queue=queue_name, job_timeout=0.3)
        with pytest.raises(naq.JobFailed) as info:
            await job.result(timeout=10)
    assert info.value.exc_type == "JobTimeout"
    assert "thread was left running" in info.value.message


async def test_unserializable_result_fails_the_job(client, nats_url, queue_name):
    async with running_worker(nats_url, [queue_name]):
        job = await client.enqueue(jobs.unpicklable_result, queue=queue_name)
        with pytest.raises(naq.JobFailed) as info:
            await job.result(timeout=10)
    assert info.value.exc_type == "SerializationError"


async def test_unpicklable_argument_refused_at_enqueue(client, queue_name):
    import threading

    with pytest.raises(naq.SerializationError):
        await client.enqueue(jobs.add, threading.Lock(), 1, queue=queue_name)
    assert await client.queue(queue_name).count() == 0


@pytest.mark.parametrize(
    "options",
    [
        {"queue": "bad.name"},
        {"queue": ""},
        {"queue": "a b"},
        {"job_id": "has space"},
        {"job_timeout": -1},
        {"retry": "3"},
        {"result_ttl": -5},
    ],
)
async def test_bad_options_are_clear_errors(client, options):
    with pytest.raises(naq.ConfigurationError):
        await client.enqueue(jobs.add, 1, 2, **options)


async def test_explicit_job_id(client, nats_url, queue_name):
    async with running_worker(nats_url, [queue_name]):
        job = await client.enqueue(jobs.add, 1, 2, queue=queue_name, job_id=f"id-{queue_name}")
        assert job.id == f"id-{queue_name}"
        assert await job.result(timeout=10) == 3


async def test_worker_serves_several_queues(client, nats_url, queue_name):
    other = queue_name + "b"
    async with running_worker(nats_url, [queue_name, other], concurrency=2):
        first = await client.enqueue(jobs.add, 1, 2, queue=queue_name)
        second = await client.enqueue(jobs.add, 3, 4, queue=other)
        assert [await first.result(timeout=10), await second.result(timeout=10)] == [3, 7]


async def test_garbage_message_becomes_a_dead_letter(client, nats_url, queue_name):
    transport = client._connection.transport

    async def publish_raw(data: bytes) -> None:
        await transport._js.publish(f"naq.jobs.{queue_name}", data)

    async with running_worker(nats_url, [queue_name]):
        await client._connection.call(publish_raw, b"\x00\xffnot a job")
        await client._connection.call(publish_raw, b'{"id": "x", "queue": 3}')
        # The worker is unharmed: a real job after the garbage still runs.
        job = await client.enqueue(jobs.add, 1, 1, queue=queue_name)
        assert await job.result(timeout=10) == 2
        dead = await client._connection.call(transport.dead_letter_count, queue_name)
    assert dead == 2
    assert await client.queue(queue_name).count() == 0


async def test_exhausted_job_is_dead_lettered(client, nats_url, queue_name):
    transport = client._connection.transport
    async with running_worker(nats_url, [queue_name]):
        job = await client.enqueue(jobs.fail, queue=queue_name)
        with pytest.raises(naq.JobFailed):
            await job.result(timeout=10)
        # Dead letters are stored before the final record that wakes the waiter.
        assert await client._connection.call(transport.dead_letter_count, queue_name) == 1


async def test_no_server_is_a_clear_connection_error():
    with pytest.raises(naq.NaqConnectionError, match="cannot connect to NATS"):
        async with naq.Client("nats://127.0.0.1:1"):
            pass


async def test_enqueue_many(client, nats_url, queue_name):
    calls = [naq.Call(jobs.add, (i, i)) for i in range(50)]
    calls.append(naq.Call(jobs.echo, kwargs={"queue": "not an option"}, job_id=f"{queue_name}-x"))
    handles = await client.enqueue_many(calls, queue=queue_name, retry=1)
    assert handles[-1].id == f"{queue_name}-x"
    assert await client.queue(queue_name).count() == 51
    async with running_worker(nats_url, [queue_name]):
        results = [await job.result(timeout=20) for job in handles]
    assert results[:50] == [2 * i for i in range(50)]
    assert results[50] == {"args": [], "kwargs": {"queue": "not an option"}}


async def test_enqueue_many_publishes_nothing_when_one_call_is_bad(client, queue_name):
    import threading

    calls = [naq.Call(jobs.add, (1, 2)), naq.Call(jobs.add, (threading.Lock(), 2))]
    with pytest.raises(naq.SerializationError):
        await client.queue(queue_name).enqueue_many(calls)
    assert await client.queue(queue_name).count() == 0


async def test_burst_worker_runs_what_is_queued_then_returns(client, nats_url, queue_name):
    handles = [await client.enqueue(jobs.add, i, i, queue=queue_name) for i in range(5)]
    chained = await client.enqueue(
        jobs.sum_of_dependencies, 0, queue=queue_name, depends_on=handles
    )
    worker = naq.Worker([queue_name], url=nats_url, burst=True, poll_interval=0.1)
    with anyio.fail_after(30):
        await worker.run()
    assert worker.processed == 6  # including the job released by the others
    assert await chained.get_status() is naq.JobStatus.FINISHED
    assert await chained.result(timeout=1) == sum(2 * i for i in range(5))


async def test_drain_runs_a_queue_in_process(client, queue_name):
    handles = await client.enqueue_many([naq.Call(jobs.add, (i, 1)) for i in range(20)],
                                        queue=queue_name)  # fmt: skip
    assert await client.drain(queue_name) == 20
    assert [await h.result(timeout=1) for h in handles] == [i + 1 for i in range(20)]
    assert await client.drain(queue_name) == 0


async def test_status_read_after_result_is_never_older(client, nats_url, queue_name):
    # A waiter is woken only once the outcome is stored, so a read right after agrees.
    async with running_worker(nats_url, [queue_name], concurrency=20):
        handles = await client.enqueue_many([naq.Call(jobs.add, (i, i)) for i in range(100)],
                                            queue=queue_name)  # fmt: skip
        for job in handles:
            await job.result(timeout=20)
            assert await job.get_status() is naq.JobStatus.FINISHED


async def test_a_lost_notification_is_caught_by_reading_the_leader(
    nats_url, queue_name, monkeypatch
):
    # On a cluster the republished write can miss the waiter (its SUB not yet known where
    # the stream leader republishes) while its first read came from a follower that had
    # not applied the write yet. Forced here on one server: the waiters listen where nothing
    # is republished, and the outcome is stored only after their first read. They must
    # still see it, from the stream leader, within the first recheck (both clients: nats-py
    # on asyncio, the wire client on Trio).
    from naq._transport import _link, _native, _nats

    monkeypatch.setattr(_nats, "stored_record_subject", lambda q, j: f"naq.nowhere.{j}")
    monkeypatch.setattr(_native, "stored_record_subject", lambda q, j: f"naq.nowhere.{j}")
    first_reads = anyio.Event()
    reads = 0

    def counted(get_record):
        async def read(self, job_id):
            nonlocal reads
            found = await get_record(self, job_id)
            reads += 1
            if reads == 3:
                first_reads.set()
            return found

        return read

    monkeypatch.setattr(_nats.NatsTransport, "get_record", counted(_nats.NatsTransport.get_record))
    monkeypatch.setattr(_native.NativeCalls, "get_record", counted(_native.NativeCalls.get_record))
    async with naq.Client(nats_url) as client:
        handles = await client.enqueue_many([naq.Call(jobs.add, (i, 1)) for i in range(3)],
                                            queue=queue_name)  # fmt: skip
        results: dict[int, object] = {}
        all_done = anyio.Event()
        async with anyio.create_task_group() as tg:

            async def wait(i: int, job: naq.Job) -> None:
                results[i] = await job.result(timeout=_link.FIRST_RECHECK + 10)
                if len(results) == len(handles):
                    all_done.set()

            for i, job in enumerate(handles):
                tg.start_soon(wait, i, job)
            with anyio.fail_after(10):
                await first_reads.wait()  # each waiter read "queued": no worker yet
            started = anyio.current_time()
            async with running_worker(nats_url, [queue_name]):
                with anyio.fail_after(_link.FIRST_RECHECK + 10):
                    await all_done.wait()
        assert results == {i: i + 1 for i in range(3)}
        # Seen at the first recheck, not at the timeout.
        assert anyio.current_time() - started < _link.FIRST_RECHECK + 5
