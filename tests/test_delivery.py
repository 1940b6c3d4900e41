"""At-least-once delivery with real processes: kills, long jobs, a Trio-only job via the CLI."""

from __future__ import annotations

import signal
from pathlib import Path

import anyio
import pytest

import naq
from tests import jobs
from tests.conftest import run_signals, running_worker, start_worker_process

pytestmark = pytest.mark.anyio


def _runs(marker: Path) -> int:
    return len(marker.read_text().splitlines()) if marker.exists() else 0


async def test_job_longer_than_ack_wait_runs_exactly_once(client, nats_url, queue_name, tmp_path):
    async_marker, sync_marker = tmp_path / "async", tmp_path / "sync"
    # ack_wait 1 s, jobs 3.5 s: without keep-alive both would be redelivered (and run) again.
    async with running_worker(nats_url, [queue_name], ack_wait=1):
        async_job = await client.enqueue(
            jobs.async_record_run, str(async_marker), 3.5, queue=queue_name
        )
        sync_job = await client.enqueue(jobs.record_run, str(sync_marker), 3.5, queue=queue_name)
        assert await async_job.result(timeout=20) == "done"
        assert await sync_job.result(timeout=20) == "done"
    assert _runs(async_marker) == 1
    assert _runs(sync_marker) == 1
    assert async_job.record.attempts == 1
    assert sync_job.record.attempts == 1


async def test_killed_workers_job_is_finished_by_another(client, nats_url, queue_name):
    doomed = start_worker_process(nats_url, [queue_name], "--ack-wait", "2")
    async with run_signals() as runs:
        try:
            job = await client.enqueue(jobs.signal_run, runs.port, 2.0, "second", queue=queue_name)
            await runs.wait_for(1)  # the job body is running in the doomed worker
            doomed.send_signal(signal.SIGKILL)
            assert await anyio.to_thread.run_sync(doomed.wait) == -signal.SIGKILL
        finally:
            if doomed.poll() is None:
                doomed.kill()
        async with running_worker(nats_url, [queue_name], ack_wait=2):
            assert await job.result(timeout=30) == "second"
        assert runs.count == 2  # once in the killed worker, once to completion
    assert job.record.attempts == 2


async def test_trio_only_job_under_cli_backend_trio(client, nats_url, queue_name):
    worker = start_worker_process(nats_url, [queue_name], "--backend", "trio")
    try:
        job = await client.enqueue(jobs.trio_only, queue=queue_name)
        assert await job.result(timeout=30) == "trio True"
    finally:
        worker.send_signal(signal.SIGTERM)
        exit_code = await anyio.to_thread.run_sync(worker.wait)
    assert exit_code == 0  # SIGTERM is a graceful stop


async def test_trio_only_job_fails_on_asyncio_worker(client, nats_url, queue_name):
    worker = start_worker_process(nats_url, [queue_name], "--backend", "asyncio")
    try:
        job = await client.enqueue(jobs.trio_only, queue=queue_name)
        with pytest.raises(naq.JobFailed):
            await job.result(timeout=30)
    finally:
        worker.send_signal(signal.SIGTERM)
        await anyio.to_thread.run_sync(worker.wait)


async def test_cli_burst_worker_exits_when_done(client, nats_url, queue_name):
    handles = [await client.enqueue(jobs.add, i, 2, queue=queue_name) for i in range(3)]
    worker = start_worker_process(nats_url, [queue_name], "--burst")
    with anyio.fail_after(60):
        assert await anyio.to_thread.run_sync(worker.wait) == 0
    assert [await h.result(timeout=1) for h in handles] == [2, 3, 4]
