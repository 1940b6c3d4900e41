"""Schedules across restarts: real ``naq scheduler`` processes killed and restarted, and a
server stopped and started again on the same store; plus the schedule CLI commands."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from datetime import timedelta

import anyio
import pytest

import naq
from naq._schedules._timing import run_job_id
from naq._time import utcnow
from naq.server import EmbeddedServer
from tests import jobs
from tests.conftest import ROOT, running_worker
from tests.test_schedules import scheduling, until

pytestmark = pytest.mark.anyio


def _scheduler_process(url: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "naq", "scheduler", "--url", url, "--log-level", "WARNING"],
        cwd=ROOT,
        env=os.environ.copy(),
    )


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_scheduler_processes_killed_and_restarted(nats_url, queue_name):
    """Two ``naq scheduler`` processes; one is SIGKILLed mid-way and replaced: every run of
    every schedule is still enqueued exactly once."""
    processes = [_scheduler_process(nats_url), _scheduler_process(nats_url)]
    try:
        async with naq.Client(nats_url, scheduler_engine="naq") as client:
            ids = [
                (await client.schedule(jobs.add, k, 1, interval=1, repeat=5, queue=queue_name)).id
                for k in range(5)
            ]

            async def runs_at_least(n: int) -> bool:
                runs = [(await client.fetch_schedule(i)).runs for i in ids]
                return min(runs) >= n

            await until(lambda: runs_at_least(2))
            processes[0].send_signal(signal.SIGKILL)
            processes[0].wait()
            processes[0] = _scheduler_process(nats_url)
            await until(lambda: runs_at_least(5))

            async def enqueued_all() -> bool:  # a run is claimed first, then enqueued
                return await client.queue(queue_name).count() >= 25

            await until(enqueued_all)
            for process in processes:  # stop them, so nothing is left in flight
                process.terminate()
                process.wait(timeout=30)
            assert await client.queue(queue_name).count() == 25
            assert {(await client.fetch_schedule(i)).status for i in ids} == {
                naq.ScheduleStatus.COMPLETED
            }
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=30)


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
@pytest.mark.parametrize("engine", ["server", "naq"])
async def test_run_missed_while_server_down_fires_once(tmp_path, queue_name, engine):
    server = EmbeddedServer(store_dir=tmp_path / "store")
    url = server.start()
    try:
        async with (
            scheduling(url, engine, queue_name) as client,
            running_worker(url, [queue_name]),
        ):
            schedule = await client.schedule(jobs.add, 1, 1, interval=1, queue=queue_name)
            first = schedule.next_run

            async def runs_at_least(n: int) -> bool:
                return (await client.fetch_schedule(schedule.id)).runs >= n

            await until(lambda: runs_at_least(2))
            server.stop()
            down_at = utcnow()  # surely down from here (stopping can take a while under load)
            await anyio.sleep(3.5)  # the outage itself: three slots pass with nothing up
            up_at = utcnow()  # surely still down until here
            server.start()
            before = (await client.fetch_schedule(schedule.id)).runs
            await until(lambda: runs_at_least(before + 2), timeout=60)
            # A run is counted when a worker claims it, before its record is written: wait
            # until the last one counted has finished (the worker's settle loop may be
            # catching up on the restart), so every run before it has its record too.
            last = (await client.fetch_schedule(schedule.id)).last_job_id
            assert last is not None

            async def finished(job_id: str) -> bool:
                try:
                    job = await client.fetch_job(job_id)
                except naq.JobNotFound:
                    return False
                return job.record is not None and job.record.status is naq.JobStatus.FINISHED

            await until(lambda: finished(last), timeout=60)
            await client.cancel_schedule(schedule.id)
            # Every slot up to now: the runs after the outage may come later than a few
            # seconds after the restart on a loaded machine (the wait above allows 60 s).
            span = int((utcnow() - first).total_seconds()) + 2
            ran = []
            for due in (first + timedelta(seconds=k) for k in range(span)):
                try:
                    await client.fetch_job(run_job_id(schedule.id, due))
                except naq.JobNotFound:
                    continue
                ran.append(due)
            missed = [d for d in ran if down_at + timedelta(seconds=1) < d < up_at]
            assert len(missed) <= 1, f"missed slots fired more than once: {missed}"
            assert len(ran) >= before + 2  # and it carries on after the outage
    finally:
        server.stop()


def test_cli_list_scheduled_and_job_control(nats_url, queue_name):
    async def create() -> tuple[str, str]:
        async with naq.Client(nats_url, scheduler_engine="naq") as client:
            schedule = await client.schedule(
                jobs.add, 1, 2, cron="0 3 * * *", queue=queue_name, schedule_id=queue_name
            )
            job = await client.enqueue_in(3600, jobs.add, 1, 2, queue=queue_name)
            return schedule.id, job.id

    schedule_id, job_id = anyio.run(create)

    def naq_cli(*args: str) -> str:
        result = subprocess.run(
            [sys.executable, "-m", "naq", *args, "--url", nats_url],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout

    table = naq_cli("list-scheduled", "--queue", queue_name)
    assert table.splitlines()[0].split()[:3] == ["ID", "FUNCTION", "SCHEDULE"]
    assert schedule_id in table and "cron 0 0 3 * * *" in table and "tests.jobs:add" in table
    assert "paused" in naq_cli("job-control", schedule_id, "pause")
    assert "every 60s" in naq_cli("job-control", schedule_id, "reschedule", "--interval", "60")
    assert "active" in naq_cli("job-control", schedule_id, "resume")
    assert "canceled" in naq_cli("job-control", job_id, "cancel")
    listed = json.loads(naq_cli("list-scheduled", "--queue", queue_name, "--json"))
    assert {item["id"]: item["status"] for item in listed} == {
        schedule_id: "active",
        job_id: "canceled",
    }
    naq_cli("job-control", schedule_id, "cancel")
