"""Job lifecycle: dependencies, progress and meta, events, cancellation, dead letters, ttl."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

import naq
from tests import jobs
from tests.conftest import run_signals, running_worker

pytestmark = pytest.mark.anyio


def _runs(marker: Path) -> int:
    return len(marker.read_text().splitlines()) if marker.exists() else 0


async def test_chain_passes_results_along(client, nats_url, queue_name):
    async with running_worker(nats_url, [queue_name]):
        a = await client.enqueue(jobs.add, 1, 2, queue=queue_name)
        b = await client.enqueue(jobs.sum_of_dependencies, 10, queue=queue_name, depends_on=a)
        c = await client.enqueue(
            jobs.sum_of_dependencies, 100, queue=queue_name, depends_on=[a, b.id]
        )
        assert await c.result(timeout=20) == 3 + (3 + 10) + 100
    assert c.record.depends_on == (a.id, b.id)


async def test_dependent_waits_deferred(client, queue_name):
    a = await client.enqueue(jobs.add, 1, 2, queue=queue_name)
    b = await client.enqueue(jobs.add, 3, 4, queue=queue_name, depends_on=a)
    assert await b.get_status() is naq.JobStatus.DEFERRED
    assert await client.queue(queue_name).count() == 1  # only a is queued


async def test_failed_dependency_cancels_the_chain(client, nats_url, queue_name):
    async with running_worker(nats_url, [queue_name]):
        a = await client.enqueue(jobs.fail, "root cause", queue=queue_name)
        b = await client.enqueue(jobs.add, 1, 1, queue=queue_name, depends_on=a)
        c = await client.enqueue(jobs.add, 2, 2, queue=queue_name, depends_on=b)
        for job, cause in ((b, a), (c, b)):
            with pytest.raises(naq.JobCanceled) as info:
                await job.result(timeout=20)
            assert info.value.exc_type == "DependencyFailed"
            assert cause.id in info.value.message
    assert await b.get_status() is naq.JobStatus.CANCELED


async def test_allow_dependency_failures(client, nats_url, queue_name):
    async with running_worker(nats_url, [queue_name]):
        a = await client.enqueue(jobs.fail, queue=queue_name)
        b = await client.enqueue(
            jobs.sum_of_dependencies, 5, queue=queue_name, depends_on=a,
            allow_dependency_failures=True,
        )  # fmt: skip
        assert await b.result(timeout=20) == 5  # a failed: no result to add


async def test_dependency_ending_while_dependents_enqueue_never_strands_them(
    client, nats_url, queue_name
):
    pairs = 40
    dependents: list[naq.Job] = []
    async with running_worker(nats_url, [queue_name], concurrency=20):

        async def pair(i: int) -> None:
            first = await client.enqueue(jobs.add, i, 0, queue=queue_name)
            dependents.append(
                await client.enqueue(
                    jobs.sum_of_dependencies, 0, queue=queue_name, depends_on=first
                )
            )

        async with anyio.create_task_group() as tg:
            for i in range(pairs):
                tg.start_soon(pair, i)
        results = sorted([await job.result(timeout=30) for job in dependents])
    assert results == list(range(pairs))


async def test_unknown_dependency_is_refused(client, queue_name):
    with pytest.raises(naq.JobNotFound):
        await client.enqueue(jobs.add, 1, 2, queue=queue_name, depends_on="no-such-job")


async def test_progress_meta_and_history(client, nats_url, queue_name):
    async with running_worker(nats_url, [queue_name]):
        job = await client.enqueue(jobs.report_progress, 4, queue=queue_name, meta={"by": "t"})
        assert await job.result(timeout=20) == {"by": "t", "step": 4}
        sync_job = await client.enqueue(jobs.sync_report_progress, 3, queue=queue_name)
        assert await sync_job.result(timeout=20) == 3
    record = job.record
    assert record.progress == 1.0
    assert record.meta == {"by": "t", "step": 4}
    assert [step.status for step in record.history] == ["queued", "started", "finished"]
    assert all(step.at.utcoffset().total_seconds() == 0 for step in record.history)
    assert sync_job.record.progress == 1.0


async def test_events_follow_a_job(client, nats_url, queue_name):
    async with running_worker(nats_url, [queue_name]), client.events(queue=queue_name) as events:
        job = await client.enqueue(jobs.report_progress, 3, queue=queue_name)
        seen = []
        with anyio.fail_after(20):
            async for event in events:
                assert event.job_id == job.id
                seen.append(event.kind)
                if event.kind == "finished":
                    break
    assert seen[0] == "queued"
    assert "started" in seen
    assert seen.count("progress") >= 1
    assert seen[-1] == "finished"


async def test_events_of_one_job_include_retrying_and_failed(client, nats_url, queue_name):
    job_id = f"{queue_name}-j"
    async with client.events(job_id=job_id) as events, running_worker(nats_url, [queue_name]):
        await client.enqueue(
            jobs.fail, queue=queue_name, job_id=job_id, retry=naq.Retry(1, interval=0.05)
        )
        kinds = []
        with anyio.fail_after(20):
            async for event in events:
                kinds.append(event.kind)
                if event.kind == "failed":
                    break
    assert kinds[0] == "queued"
    assert "retrying" in kinds


async def test_cancel_queued_job_never_runs(client, nats_url, queue_name, tmp_path):
    marker = tmp_path / "runs"
    job = await client.enqueue(jobs.record_run, str(marker), queue=queue_name)
    assert await client.cancel(job.id) is True
    assert await job.get_status() is naq.JobStatus.CANCELED
    assert await client.queue(queue_name).count() == 0
    async with running_worker(nats_url, [queue_name]):
        probe = await client.enqueue(jobs.add, 1, 1, queue=queue_name)
        assert await probe.result(timeout=20) == 2  # the worker ran what came after
    assert _runs(marker) == 0
    with pytest.raises(naq.JobCanceled) as canceled:
        await job.result(timeout=5)
    assert str(canceled.value) == f"job {job.id} was canceled: canceled on request"
    assert await client.cancel(job.id) is False  # already ended


async def test_cancel_deferred_job(client, queue_name):
    a = await client.enqueue(jobs.add, 1, 2, queue=queue_name)
    b = await client.enqueue(jobs.add, 1, 2, queue=queue_name, depends_on=a)
    assert await b.cancel() is True
    assert await b.get_status() is naq.JobStatus.CANCELED


async def test_cancel_running_async_job_within_a_second(client, nats_url, queue_name):
    async with run_signals() as runs, running_worker(nats_url, [queue_name]):
        job = await client.enqueue(jobs.async_signal_and_wait, runs.port, queue=queue_name)
        await runs.wait_for(1)
        await client.cancel(job.id)  # returns once the workers have been told
        with anyio.fail_after(1):  # the worker stops the job and records it within a second
            assert await job.wait_until(naq.JobStatus.CANCELED) is naq.JobStatus.CANCELED
    assert job.record.error.message == "canceled while it ran"


async def test_a_runner_goes_on_after_its_job_was_cancelled(client, nats_url, queue_name):
    """Jobs share their runner's cancel scope: after a cancel, that runner still runs jobs."""
    async with run_signals() as runs, running_worker(nats_url, [queue_name], concurrency=1):
        job = await client.enqueue(jobs.async_signal_and_wait, runs.port, queue=queue_name)
        await runs.wait_for(1)
        await client.cancel(job.id)
        assert await job.wait_until(naq.JobStatus.CANCELED, timeout=10) is naq.JobStatus.CANCELED
        after = [await client.enqueue(jobs.add, n, 1, queue=queue_name) for n in range(3)]
        assert [await j.result(timeout=20) for j in after] == [1, 2, 3]


async def test_cancel_running_sync_job_sets_its_flag(client, nats_url, queue_name):
    async with run_signals() as runs, running_worker(nats_url, [queue_name]):
        job = await client.enqueue(jobs.sync_until_cancelled, runs.port, queue=queue_name)
        await runs.wait_for(1)
        await client.cancel(job.id)
        with pytest.raises(naq.JobCanceled):
            await job.result(timeout=20)
    assert job.record.status is naq.JobStatus.CANCELED


async def test_cancel_unknown_job(client):
    with pytest.raises(naq.JobNotFound):
        await client.cancel("nobody-here")


async def test_dead_letters_list_requeue_delete(client, nats_url, queue_name, tmp_path):
    marker = str(tmp_path / "calls")
    async with running_worker(nats_url, [queue_name]):
        job = await client.enqueue(jobs.fail_until, marker, 1, queue=queue_name)
        with pytest.raises(naq.JobFailed):
            await job.result(timeout=20)
        letters = await client.dead_letters(queue=queue_name)
        assert [letter.job_id for letter in letters] == [job.id]
        assert "RuntimeError: failure 1" in letters[0].reason
        assert letters[0].record.func_name == "tests.jobs:fail_until"

        requeued = await client.requeue_dead_letter(job.id)
        assert requeued.id == job.id
        assert await requeued.result(timeout=20) == 2  # the second call succeeds
        assert await client.dead_letters(queue=queue_name) == []

        doomed = await client.enqueue(jobs.fail, queue=queue_name)
        with pytest.raises(naq.JobFailed):
            await doomed.result(timeout=20)
    assert await client.delete_dead_letter(doomed.id) is True
    assert await client.delete_dead_letter(doomed.id) is False
    assert await client.dead_letters(queue=queue_name) == []


async def test_explicit_job_id_runs_once(client, nats_url, queue_name, tmp_path):
    marker = tmp_path / "runs"
    job_id = f"{queue_name}-once"
    first = await client.enqueue(jobs.record_run, str(marker), queue=queue_name, job_id=job_id)
    second = await client.enqueue(jobs.record_run, str(marker), queue=queue_name, job_id=job_id)
    assert second.id == first.id
    async with running_worker(nats_url, [queue_name]):
        assert await first.result(timeout=20) == "done"
        third = await client.enqueue(jobs.record_run, str(marker), queue=queue_name, job_id=job_id)
        assert await third.result(timeout=20) == "done"
    assert _runs(marker) == 1


async def test_job_ttl_expires_before_start(client, nats_url, queue_name, tmp_path):
    marker = tmp_path / "runs"
    job = await client.enqueue(jobs.record_run, str(marker), queue=queue_name, ttl=0.2)
    await anyio.sleep(0.4)  # let the ttl pass while no worker runs: time itself is the subject
    async with running_worker(nats_url, [queue_name]):
        with pytest.raises(naq.JobCanceled) as info:
            await job.result(timeout=20)
    assert info.value.exc_type == "JobExpired"
    assert _runs(marker) == 0
    assert [letter.job_id for letter in await client.dead_letters(queue=queue_name)] == [job.id]


async def test_result_ttl_removes_the_record(client, nats_url, queue_name):
    async with running_worker(nats_url, [queue_name]):
        job = await client.enqueue(jobs.add, 1, 2, queue=queue_name, result_ttl=1)
        assert await job.result(timeout=20) == 3
    with anyio.fail_after(15):
        while True:  # per-message TTL: the server removes the record after about a second
            try:
                await job.refresh()
            except naq.JobNotFound:
                break
            await anyio.sleep(0.2)


async def test_deleting_a_message_already_gone_is_not_an_error(client, nats_url, queue_name):
    # cancel() reads the queued message, then deletes it: a worker may ack it in between.
    job = await client.enqueue(jobs.add, 1, 1, queue=queue_name)
    transport = client._connection.transport
    queued = await client._connection.call(transport.queued_message, job.id)
    assert await client.drain(queue_name) == 1
    assert await client._connection.call(transport.delete_queued, queued.sequence) is False
