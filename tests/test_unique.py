"""Unique jobs (``enqueue(..., unique=...)``) on a real server and real workers, both backends:
each mode keeps out exactly what it documents, and concurrent enqueues of one key make one job."""

from __future__ import annotations

import time

import anyio
import pytest

import naq
import naq_sync

from . import jobs
from .conftest import running_worker

pytestmark = pytest.mark.anyio


async def test_queued_keeps_one_job_per_call_while_it_waits(client, nats_url, queue_name):
    first = await client.enqueue(jobs.add, 1, 2, queue=queue_name, unique="queued")
    again = await client.enqueue(jobs.add, 1, 2, queue=queue_name, unique="queued")
    other_args = await client.enqueue(jobs.add, 2, 2, queue=queue_name, unique="queued")
    assert again.id == first.id
    assert other_args.id != first.id
    keyed = await client.enqueue(jobs.add, 5, 5, queue=queue_name, unique="queued", unique_key="k")
    same_key = await client.enqueue(
        jobs.add, 6, 6, queue=queue_name, unique="queued", unique_key="k"
    )
    assert same_key.id == keyed.id  # the key decides, not the arguments
    assert await client.queue(queue_name).count() == 3
    record = await first.refresh()
    assert record.unique == "queued"
    assert record.unique_key is not None and record.unique_key.startswith("tests.jobs:add:")
    assert (await keyed.refresh()).unique_key == "k"

    async with running_worker(nats_url, [queue_name]):
        assert await again.result(timeout=20) == 3
        assert await same_key.result(timeout=20) == 10
        after = await client.enqueue(jobs.add, 1, 2, queue=queue_name, unique="queued")
        assert after.id != first.id  # the first one ended: no longer a duplicate
        assert await after.result(timeout=20) == 3


@pytest.mark.parametrize("mode", ["queued", "active"])
async def test_a_running_job_keeps_duplicates_out_only_when_active(
    client, nats_url, queue_name, mode
):
    async with await anyio.create_tcp_listener(local_host="127.0.0.1") as listeners:
        listener = listeners.listeners[0]  # a job connects to it when it starts
        port = listener.extra(anyio.abc.SocketAttribute.local_port)
        async with running_worker(nats_url, [queue_name]):
            running = await client.enqueue(jobs.wait_for_gate, port, queue=queue_name, unique=mode)
            gates = [await listener.accept()]  # the job runs
            with anyio.fail_after(10):  # and its record says so (what unique= reads)
                while (await running.refresh()).status is not naq.JobStatus.STARTED:
                    await anyio.sleep(0.01)
            second = await client.enqueue(jobs.wait_for_gate, port, queue=queue_name, unique=mode)
            if mode == "active":
                assert second.id == running.id
            else:
                assert second.id != running.id  # the first no longer waits: one may queue
                gates.append(await listener.accept())
            for gate in gates:
                await gate.send(b"x")
            assert await running.result(timeout=20) == "opened"
            assert await second.result(timeout=20) == "opened"
            later = await client.enqueue(jobs.wait_for_gate, port, queue=queue_name, unique=mode)
            assert later.id not in (running.id, second.id)  # they ended
            await (await listener.accept()).send(b"x")
            assert await later.result(timeout=20) == "opened"


async def test_concurrent_enqueues_of_one_key_make_one_job(client, queue_name):
    ids: list[str] = []

    async def enqueue() -> None:
        job = await client.enqueue(jobs.add, 1, 1, queue=queue_name, unique="active")
        ids.append(job.id)

    async with anyio.create_task_group() as tg:
        for _ in range(20):
            tg.start_soon(enqueue)
    assert len(ids) == 20
    assert len(set(ids)) == 1
    assert await client.queue(queue_name).count() == 1


async def test_throttle_admits_one_job_per_period_even_after_it_ran(client, nats_url, queue_name):
    throttle = naq.Unique.throttle(1)
    async with running_worker(nats_url, [queue_name]):
        first = await client.enqueue(jobs.add, 1, 1, queue=queue_name, unique=throttle)
        started = time.monotonic()
        assert await first.result(timeout=20) == 2
        assert (await first.refresh()).unique == "throttle 1s"
        with anyio.fail_after(15):
            while (
                job := await client.enqueue(jobs.add, 1, 1, queue=queue_name, unique=throttle)
            ).id == first.id:
                await anyio.sleep(0.05)
        assert time.monotonic() - started >= 0.9  # the period (the server counts whole seconds)
        assert await job.result(timeout=20) == 2


async def test_debounce_runs_only_the_last_of_a_burst(client, nats_url, queue_name):
    debounce = naq.Unique.debounce(1)
    async with running_worker(nats_url, [queue_name]):
        burst = [
            await client.enqueue(
                jobs.echo, i, queue=queue_name, unique=debounce, unique_key="burst"
            )
            for i in range(5)
        ]
        assert len({job.id for job in burst}) == 5
        last = burst[-1]
        assert await last.result(timeout=30) == {"args": [4], "kwargs": {}}
        for replaced in burst[:-1]:
            assert (await client.fetch_schedule(replaced.id)).status is naq.ScheduleStatus.CANCELED
        assert (await last.refresh()).unique == "debounce 1s"


async def test_bad_unique_options_are_refused(client, queue_name):
    with pytest.raises(naq.ConfigurationError, match="unique must be"):
        await client.enqueue(jobs.add, 1, 1, queue=queue_name, unique="always")
    with pytest.raises(naq.ConfigurationError, match="unique_key goes with unique="):
        await client.enqueue(jobs.add, 1, 1, queue=queue_name, unique_key="k")
    with pytest.raises(naq.ConfigurationError, match="positive seconds"):
        naq.Unique.throttle(0)
    first = await client.enqueue(jobs.add, 1, 1, queue=queue_name)
    with pytest.raises(naq.ConfigurationError, match="debounced job cannot have depends_on"):
        await client.enqueue(
            jobs.add, 1, 1, queue=queue_name, unique=naq.Unique.debounce(1), depends_on=first
        )
    assert await client.queue(queue_name).count() == 1


def test_naq_sync_enqueue_is_unique_too(nats_url, queue_name):
    """From a plain thread (the WSGI case): the enqueue runs in the calling thread."""
    with naq_sync.Client(nats_url) as client:
        first = client.enqueue(jobs.add, 3, 4, queue=queue_name, unique="queued")
        again = client.enqueue(jobs.add, 3, 4, queue=queue_name, unique="queued")
        assert again.id == first.id
        debounced = [
            client.enqueue(
                jobs.add, i, i, queue=queue_name, unique=naq_sync.Unique.debounce(60),
                unique_key="sync-burst",
            )
            for i in range(2)
        ]  # fmt: skip
        assert debounced[0].id != debounced[1].id
        assert client.fetch_schedule(debounced[0].id).status is naq.ScheduleStatus.CANCELED
        assert client.queue(queue_name).count() == 1
