"""Delayed and recurring jobs against a real server, on both engines and both backends.

``engine`` runs each test with JetStream message schedules ("server") and with naq's own
scheduler ("naq") on the same server; ``anyio_backend`` runs it on asyncio and Trio.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime, timedelta

import anyio
import pytest

import naq
from naq._schedules._timing import run_job_id
from naq._time import utcnow
from tests import jobs
from tests.conftest import run_signals, running_worker

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["server", "naq"])
def engine(request: pytest.FixtureRequest) -> str:
    return request.param


@asynccontextmanager
async def scheduling(url: str, engine: str, queue: str) -> AsyncIterator[naq.Client]:
    """A client on ``engine``, with a naq scheduler running when the engine is naq.

    Schedules left active in ``queue`` are cancelled at the end.
    """
    async with (
        naq.Client(url, scheduler_engine=engine) as client,
        anyio.create_task_group() as tg,
    ):
        scheduler = naq.Scheduler(url=url, max_wait=0.2) if engine == "naq" else None
        if scheduler is not None:
            await tg.start(scheduler.run)
        try:
            yield client
        finally:
            with anyio.CancelScope(shield=True):
                for schedule in await client.list_schedules(queue=queue):
                    if not schedule.status.is_final:
                        await client.cancel_schedule(schedule.id)
                if scheduler is not None:
                    scheduler.stop()


async def until(check: Callable[[], object], timeout: float = 30) -> None:
    """Re-check a condition read from the server until it holds (each check is a read)."""
    with anyio.fail_after(timeout):
        while not await check():
            await anyio.sleep(0.1)


async def _exists(client: naq.Client, job_id: str) -> bool:
    try:
        await client.fetch_job(job_id)
    except naq.JobNotFound:
        return False
    return True


def _sid() -> str:
    return f"s{uuid.uuid4().hex[:12]}"


async def test_delayed_job_is_scheduled_until_due(nats_url, queue_name, engine):
    async with scheduling(nats_url, engine, queue_name) as client:
        job = await client.enqueue_in(1.5, jobs.add, 1, 2, queue=queue_name)
        assert await job.get_status() is naq.JobStatus.SCHEDULED
        async with running_worker(nats_url, [queue_name]):
            assert await job.result(timeout=30) == 3
        schedule = await client.fetch_schedule(job.id)
        assert (schedule.status, schedule.runs) == (naq.ScheduleStatus.COMPLETED, 1)


async def test_cancelled_delayed_job_never_runs(nats_url, queue_name, engine):
    async with scheduling(nats_url, engine, queue_name) as client, run_signals() as signals:
        job = await client.enqueue_in(1, jobs.signal_run, signals.port, queue=queue_name)
        sentinel = await client.enqueue_in(2, jobs.add, 1, 1, queue=queue_name)
        await client.cancel_schedule(job.id)
        async with running_worker(nats_url, [queue_name]):
            assert await sentinel.result(timeout=30) == 2  # past the cancelled job's time
        assert signals.count == 0
        assert await job.get_status() is naq.JobStatus.CANCELED


async def test_repeat_stops_after_n_runs_each_with_its_own_job(nats_url, queue_name, engine):
    async with (
        scheduling(nats_url, engine, queue_name) as client,
        run_signals() as signals,
        running_worker(nats_url, [queue_name]),
    ):
        schedule = await client.schedule(
            jobs.signal_run, signals.port, interval=1, repeat=3, queue=queue_name
        )
        first = schedule.next_run
        await signals.wait_for(3)

        async def completed() -> bool:
            current = await client.fetch_schedule(schedule.id)
            return current.status is naq.ScheduleStatus.COMPLETED

        await until(completed)
        ids = [run_job_id(schedule.id, first + timedelta(seconds=k)) for k in range(3)]
        for job_id in ids:
            # A fired run is found by its "started" record, stored just after the run began
            # (its signal can come first).
            await until(lambda job_id=job_id: _exists(client, job_id))
            assert await (await client.fetch_job(job_id)).result(timeout=30) == "done"
        # A sentinel due after the slot a fourth run would have had.
        sentinel = await client.enqueue_at(first + timedelta(seconds=4.5), jobs.add, 2, 2,
                                           queue=queue_name)  # fmt: skip
        assert await sentinel.result(timeout=30) == 4
        assert signals.count == 3
        assert (await client.fetch_schedule(schedule.id)).runs == 3


async def test_pause_resume_reschedule_cancel(nats_url, queue_name, engine):
    async with (
        scheduling(nats_url, engine, queue_name) as client,
        run_signals() as signals,
        running_worker(nats_url, [queue_name]),
    ):
        schedule = await client.schedule(
            jobs.signal_run, signals.port, interval=1, queue=queue_name, schedule_id=_sid()
        )
        await signals.wait_for(1)
        paused = await client.pause_schedule(schedule.id)
        count = signals.count
        assert paused.status is naq.ScheduleStatus.PAUSED and paused.next_run is None
        sentinel = await client.enqueue_in(2.5, jobs.add, 0, 1, queue=queue_name)
        assert await sentinel.result(timeout=30) == 1
        assert signals.count == count  # no run while paused

        resumed = await client.resume_schedule(schedule.id)
        assert resumed.status is naq.ScheduleStatus.ACTIVE
        await signals.wait_for(count + 1)

        moved = await client.reschedule(schedule.id, cron="*/2 * * * * *")
        assert moved.cron == "*/2 * * * * *" and moved.next_run.second % 2 == 0
        await signals.wait_for(count + 2)

        await client.cancel_schedule(schedule.id)
        count = signals.count
        sentinel = await client.enqueue_in(2.5, jobs.add, 0, 2, queue=queue_name)
        assert await sentinel.result(timeout=30) == 2
        assert signals.count == count
        listed = await client.list_schedules(status="canceled", queue=queue_name)
        assert [s.id for s in listed] == [schedule.id]


async def test_bad_input_is_refused(nats_url, queue_name, engine):
    async with scheduling(nats_url, engine, queue_name) as client:
        with pytest.raises(naq.ConfigurationError, match="in the past"):
            await client.enqueue_at(utcnow() - timedelta(minutes=1), jobs.add, 1, 2)
        with pytest.raises(naq.ConfigurationError, match="invalid cron"):
            await client.schedule(jobs.add, 1, 2, cron="every tuesday")
        with pytest.raises(naq.ScheduleNotFound):
            await client.pause_schedule("no-such-schedule")
        late = await client.enqueue_at(
            datetime.now() - timedelta(hours=3),  # naive: taken as UTC
            jobs.add,
            1,
            2,
            catch_up=True,
            queue=queue_name,
        )
        async with running_worker(nats_url, [queue_name]):
            assert await late.result(timeout=30) == 3


async def test_two_schedulers_enqueue_each_run_once(nats_url, queue_name):
    """Two naq schedulers race for every run of 10 schedules: each run is enqueued once."""
    async with scheduling(nats_url, "naq", queue_name) as client:
        async with anyio.create_task_group() as tg:
            second = naq.Scheduler(url=nats_url, max_wait=0.2)
            await tg.start(second.run)
            ids = [
                (await client.schedule(jobs.add, k, 1, interval=1, repeat=3, queue=queue_name)).id
                for k in range(10)
            ]

            async def all_completed() -> bool:
                listed = await client.list_schedules(queue=queue_name)
                return all(s.status is naq.ScheduleStatus.COMPLETED for s in listed)

            async def enqueued_all() -> bool:  # a run is claimed first, then enqueued
                return await client.queue(queue_name).count() >= 30

            await until(all_completed)
            await until(enqueued_all)
            second.stop()
        # Both schedulers are idle (every schedule completed) or stopped: nothing in flight.
        assert await client.queue(queue_name).count() == 30  # no worker: every run waits
        assert {(await client.fetch_schedule(i)).runs for i in ids} == {3}
