"""Limits (``enqueue(..., max_running=N, rate_limit="N/s", limit_key=...)``) on a real server
with two real workers, both backends: each limit holds across workers, waits are not
attempts, and a SIGKILLed worker's slot comes back."""

from __future__ import annotations

import json
import signal
import subprocess
import sys

import anyio
import pytest

import naq

from . import jobs
from .conftest import ROOT, running_worker, start_worker_process
from .dashboardtools import http, running_dashboard

pytestmark = pytest.mark.anyio


async def test_a_limit_of_two_per_key_holds_across_two_workers(client, nats_url, queue_name):
    key, other = f"{queue_name}-tenant-42", f"{queue_name}-tenant-7"
    async with (
        running_worker(nats_url, [queue_name], concurrency=10) as first,
        running_worker(nats_url, [queue_name], concurrency=10) as second,
    ):
        limited = [
            await client.enqueue(
                jobs.limit_probe, key, 0.2, queue=queue_name, max_running=2, limit_key=key
            )
            for _ in range(12)
        ]
        others = [
            await client.enqueue(
                jobs.limit_probe, other, 0.2, queue=queue_name, max_running=2, limit_key=other
            )
            for _ in range(4)
        ]
        for job in [*limited, *others]:
            assert await job.result(timeout=60) in (key, other)
    assert first.processed + second.processed == 16  # all settled once stopped; waits not runs
    assert jobs.probe_most(key) <= 2
    assert jobs.probe_most(other) <= 2
    records = [await job.refresh() for job in limited]
    assert {r.attempts for r in records} == {1}  # waiting is not an attempt
    assert {(r.max_running, r.limit_key) for r in records} == {(2, key)}


async def test_a_rate_limit_of_five_a_second_holds_over_thirty_jobs(client, nats_url, queue_name):
    key = f"{queue_name}-partner-api"
    async with (
        running_worker(nats_url, [queue_name], concurrency=10) as first,
        running_worker(nats_url, [queue_name], concurrency=10) as second,
    ):
        handles = [
            await client.enqueue(jobs.add, i, i, queue=queue_name, rate_limit="5/s", limit_key=key)
            for i in range(30)
        ]
        for i, job in enumerate(handles):
            assert await job.result(timeout=60) == 2 * i
    assert first.processed + second.processed == 30  # all settled once stopped; waits not runs
    records = [await job.refresh() for job in handles]
    starts = sorted(r.started_at for r in records if r.started_at is not None)
    assert len(starts) == 30
    # Any 6 starts in a row span a second at least (less the few ms between a start being
    # counted and its record's started_at, taken just before).
    spans = [(starts[i + 5] - starts[i]).total_seconds() for i in range(len(starts) - 5)]
    assert min(spans) >= 0.9, spans
    assert {r.attempts for r in records} == {1}
    assert {(r.rate_limit, r.limit_key) for r in records} == {("5/s", key)}


async def test_running_and_waiting_jobs_are_shown_per_key(client, nats_url, queue_name):
    """Admin.limits(), naq info --json and the dashboard's overview, from heartbeats."""
    key = f"{queue_name}-shown"
    async with await anyio.create_tcp_listener(local_host="127.0.0.1") as listeners:
        listener = listeners.listeners[0]
        port = listener.extra(anyio.abc.SocketAttribute.local_port)
        async with running_worker(nats_url, [queue_name], heartbeat_interval=0.5) as worker:
            gated = await client.enqueue(
                jobs.wait_for_gate, port, queue=queue_name, max_running=1, limit_key=key
            )
            gate = await listener.accept()
            waiting = [
                await client.enqueue(jobs.add, i, i, queue=queue_name, max_running=1, limit_key=key)
                for i in range(3)
            ]
            expected = naq.LimitInfo(key=key, running=1, waiting=3, workers=[worker.id])
            with anyio.fail_after(20):
                while expected not in await naq.Admin(client).limits():
                    await anyio.sleep(0.05)
            shown = await anyio.to_thread.run_sync(_info_json, nats_url)
            assert {"key": key, "running": 1, "waiting": 3, "workers": [worker.id]} in shown
            async with running_dashboard(client) as base:
                overview = (await http("GET", base + "/api/overview")).json()
            assert key in [limit["key"] for limit in overview["limits"]]
            await gate.send(b"x")
            assert await gated.result(timeout=20) == "opened"
            assert [await job.result(timeout=20) for job in waiting] == [0, 2, 4]


def _info_json(url: str) -> list[dict]:
    result = subprocess.run(
        [sys.executable, "-m", "naq", "info", "--json", "--url", url],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(result.stdout)["limits"]


async def test_the_limit_key_defaults_to_the_function(client, nats_url, queue_name):
    job = await client.enqueue(jobs.add, 1, 2, queue=queue_name, max_running=1)
    assert (await job.refresh()).limit_key == "tests.jobs:add"
    async with running_worker(nats_url, [queue_name]):
        assert await job.result(timeout=20) == 3


async def test_bad_limit_options_are_refused(client, queue_name):
    with pytest.raises(naq.ConfigurationError, match="max_running must be"):
        await client.enqueue(jobs.add, 1, 1, queue=queue_name, max_running=0)
    with pytest.raises(naq.ConfigurationError, match="limit_key goes with max_running="):
        await client.enqueue(jobs.add, 1, 1, queue=queue_name, limit_key="k")
    with pytest.raises(naq.ConfigurationError, match="rate_limit must read like"):
        await client.enqueue(jobs.add, 1, 1, queue=queue_name, rate_limit="5 per second")
    assert await client.queue(queue_name).count() == 0


async def test_a_killed_workers_slot_comes_back(client, nats_url, queue_name):
    key = f"{queue_name}-solo"
    async with await anyio.create_tcp_listener(local_host="127.0.0.1") as listeners:
        listener = listeners.listeners[0]
        port = listener.extra(anyio.abc.SocketAttribute.local_port)
        stuck = await client.enqueue(
            jobs.wait_for_gate, port, queue=queue_name, max_running=1, limit_key=key
        )
        worker = start_worker_process(nats_url, [queue_name], "--ack-wait", "2")
        try:
            gate = await listener.accept()  # the job runs in the worker, holding the slot
            with anyio.fail_after(10):  # and its start is stored (a run counts from there)
                while (await stuck.refresh()).status is not naq.JobStatus.STARTED:
                    await anyio.sleep(0.01)
            worker.send_signal(signal.SIGKILL)
            await anyio.to_thread.run_sync(worker.wait)
        finally:
            if worker.poll() is None:
                worker.kill()
        await gate.aclose()
        after = await client.enqueue(jobs.add, 2, 2, queue=queue_name, max_running=1, limit_key=key)
        # The slot's TTL is the killed worker's ack wait (2 s): both jobs then run, one
        # after the other in either order, the stuck one again (its message comes back
        # after the consumer's ack wait, which this worker sets: 2 s too).
        async with (
            running_worker(nats_url, [queue_name], ack_wait=2),
            anyio.create_task_group() as tg,
        ):
            tg.start_soon(_open_gate, listener)
            assert await after.result(timeout=30) == 4
            assert await stuck.result(timeout=30) == "opened"
        assert (await stuck.refresh()).attempts == 2  # the killed run and this one


async def _open_gate(listener: anyio.abc.SocketListener) -> None:
    """Let the gate job through when it runs again."""
    async with await listener.accept() as gate:
        await gate.send(b"x")


async def test_batches_delayed_and_recurring_jobs_take_limits_too(client, nats_url, queue_name):
    """``enqueue_many``, ``enqueue_at``/``enqueue_in`` and ``schedule`` take the same limits,
    kept in each job's record (a schedule's template) and held by the workers."""
    key = f"{queue_name}-batch"
    calls = [naq.Call(jobs.limit_probe, (key, 0.1)) for _ in range(5)]
    batch = await client.enqueue_many(calls, queue=queue_name, max_running=1, limit_key=key)
    delayed = await client.enqueue_in(
        0, jobs.limit_probe, key, 0.1, queue=queue_name, max_running=1, limit_key=key
    )
    schedule = await client.schedule(
        jobs.add, 1, 1, cron="0 0 1 1 *", queue=queue_name, rate_limit="5/s", limit_key=key
    )
    assert (schedule.template.rate_limit, schedule.template.limit_key) == ("5/s", key)
    await client.cancel_schedule(schedule.id)
    async with (
        running_worker(nats_url, [queue_name], concurrency=10),
        running_worker(nats_url, [queue_name], concurrency=10),
    ):
        for job in [*batch, delayed]:
            assert await job.result(timeout=60) == key
    assert jobs.probe_most(key) <= 1
    records = [await job.refresh() for job in [*batch, delayed]]
    assert {(r.max_running, r.limit_key) for r in records} == {(1, key)}
