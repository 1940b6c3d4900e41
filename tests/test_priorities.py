"""Priorities (``enqueue(..., priority=N)``, -2 to 2) on a real server, both backends: a
queue's higher-priority jobs start first across two real workers, delayed and recurring
jobs keep their priority, and a worker consuming an idle queue or lane keeps full speed."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

import naq
import naq_sync

from . import jobs
from .conftest import running_worker, worker_in_thread

pytestmark = pytest.mark.anyio


def _starts(path: Path) -> list[str]:
    """The jobs' lines in the order they started (``append_line`` writes one per start)."""
    return [line.split(" ", 1)[1] for line in path.read_text().splitlines()]


async def test_a_high_priority_job_behind_500_low_ones_starts_among_the_first_few(
    client, nats_url, queue_name, tmp_path, counts
):
    path = tmp_path / "starts"
    low = [naq.Call(jobs.append_line, (str(path), f"low-{i}")) for i in range(500)]
    await client.enqueue_many(low, queue=queue_name)
    high = await client.enqueue(jobs.append_line, str(path), "high", queue=queue_name, priority=2)
    assert high.record is not None and high.record.priority == 2
    async with (
        running_worker(nats_url, [queue_name], concurrency=4) as first,
        running_worker(nats_url, [queue_name], concurrency=4) as second,
    ):
        assert await high.result(timeout=60) == "high"
        with anyio.fail_after(60):
            while first.processed + second.processed < 501:
                await anyio.sleep(0.05)
    starts = _starts(path)
    assert sorted(starts) == sorted(["high", *(f"low-{i}" for i in range(500))])
    position = starts.index("high")
    counts(enqueued_low=500, high_started_at=position + 1)
    # Each worker may already have a low job from its first ask when the high one arrives.
    assert position < 4, starts[:10]
    assert (await high.refresh()).priority == 2


async def test_each_priority_runs_before_the_ones_below_it(client, nats_url, queue_name, tmp_path):
    """One slot, busy with a first job while 3 jobs of each priority arrive: each idle
    lane's bell brings one of them at once (they run next, as they came), then the lanes
    take the slot highest first, until a lower lane has been passed over PASSES times."""
    path = tmp_path / "starts"
    async with running_worker(nats_url, [queue_name], concurrency=1) as worker:
        first = await client.enqueue(jobs.append_line, str(path), "first", 1.0, queue=queue_name)
        await first.wait_until(naq.JobStatus.STARTED, timeout=30)
        for priority in range(-2, 3):
            calls = [naq.Call(jobs.append_line, (str(path), str(priority))) for _ in range(3)]
            await client.enqueue_many(calls, queue=queue_name, priority=priority)
        with anyio.fail_after(60):
            while worker.processed < 16:
                await anyio.sleep(0.05)
    starts = _starts(path)
    assert starts[0] == "first"
    # Lane 0 brought "first" and waits for the slot; the other four lanes' bells rang.
    rung = [int(line) for line in starts[1:5]]
    assert sorted(rung) == [-2, -1, 1, 2], starts
    later = [int(line) for line in starts[5:]]
    assert later[:7] == [2, 2, 1, 1, 0, 0, 0], starts
    assert sorted(later) == [-2, -2, -1, -1, 0, 0, 0, 1, 1, 2, 2]


async def test_delayed_and_recurring_jobs_keep_their_priority(
    client, nats_url, queue_name, tmp_path
):
    path = tmp_path / "starts"
    low = [naq.Call(jobs.append_line, (str(path), "low")) for _ in range(30)]
    await client.enqueue_many(low, queue=queue_name)
    delayed = await client.enqueue_in(
        0.1, jobs.append_line, str(path), "delayed", queue=queue_name, priority=2
    )
    recurring = await client.schedule(
        jobs.append_line, str(path), "recurring", interval=1, repeat=1, queue=queue_name,
        priority=1,
    )  # fmt: skip
    assert recurring.template.priority == 1
    with anyio.fail_after(30):
        while await client.queue(queue_name).count() < 32:  # both runs are queued
            await anyio.sleep(0.05)
    async with running_worker(nats_url, [queue_name], concurrency=1) as worker:
        with anyio.fail_after(60):
            while worker.processed < 32:
                await anyio.sleep(0.05)
    starts = _starts(path)
    assert sorted(starts[:3]) in (["delayed", "low", "recurring"], ["delayed", "recurring"]), starts
    assert {"delayed", "recurring"} <= set(starts[:3]), starts
    assert (await delayed.refresh()).priority == 2


async def test_a_retried_job_keeps_its_priority(client, nats_url, queue_name, tmp_path):
    marker = str(tmp_path / "calls")
    job = await client.enqueue(
        jobs.fail_until, marker, 1, queue=queue_name, priority=-2, retry=naq.Retry(max=1)
    )
    async with running_worker(nats_url, [queue_name]):
        assert await job.result(timeout=30) == 2
    record = await job.refresh()
    assert (record.priority, record.attempts) == (-2, 2)


async def test_an_idle_queue_does_not_slow_a_busy_one(client, nats_url, queue_name):
    """One slot, two queues, one of them idle: the idle one's ask holds no slot (it would
    hold it for its poll interval, and the busy queue would run one job per interval)."""
    idle = f"{queue_name}-idle"
    handles = [await client.enqueue(jobs.add, i, 1, queue=queue_name) for i in range(50)]
    async with running_worker(nats_url, [idle, queue_name], concurrency=1, poll_interval=1.0):
        with anyio.fail_after(20):  # 50 poll intervals would be 50 s
            for i, job in enumerate(handles):
                assert await job.result(timeout=20) == i + 1


async def test_priority_out_of_range_is_refused(client, queue_name):
    for bad in (3, -3, 1.5, True, "1"):
        with pytest.raises(naq.ConfigurationError, match="priority must be a whole number"):
            await client.enqueue(jobs.add, 1, 1, queue=queue_name, priority=bad)
    assert await client.queue(queue_name).count() == 0


async def test_a_queue_counts_and_purges_all_its_lanes(client, queue_name):
    for priority in (-2, 0, 2):
        await client.enqueue(jobs.add, 1, 1, queue=queue_name, priority=priority)
    assert await client.queue(queue_name).count() == 3
    admin = naq.Admin(client)
    (info,) = await admin.queues([queue_name])
    assert (info.name, info.pending) == (queue_name, 3)
    assert await admin.purge(queue_name) == 3
    assert await client.queue(queue_name).count() == 0


def test_naq_sync_enqueues_with_a_priority_too(nats_url, queue_name, tmp_path):
    """From a plain thread (the WSGI case), a def job on a worker thread: the high one runs
    among the first though enqueued last."""
    path = tmp_path / "starts"
    with naq_sync.Client(nats_url) as client:
        client.enqueue_many(
            [naq.Call(jobs.append_line, (str(path), "low")) for _ in range(50)], queue=queue_name
        )
        high = client.enqueue(jobs.append_line, str(path), "high", queue=queue_name, priority=2)
        with worker_in_thread(nats_url, [queue_name], concurrency=1):
            assert high.result(timeout=30) == "high"
        assert high.refresh().priority == 2
    assert "high" in _starts(path)[:2]


async def test_slots_go_to_the_highest_waiting_priority_and_none_waits_forever():
    """``Slots``, the rule the worker follows: highest priority first, first come among
    equals, and a waiter passed over PASSES times in a row is served next."""
    from naq._slots import PASSES, Slots

    slots = Slots(1)
    await slots.acquire()
    served: list[str] = []

    async def wait(name: str, priority: int) -> None:
        await slots.acquire(priority)
        served.append(name)

    async with anyio.create_task_group() as tg:
        for name, priority in [("low", -1), ("high-a", 2), ("mid", 0), ("high-b", 2)]:
            tg.start_soon(wait, name, priority)
            await anyio.wait_all_tasks_blocked()
        for _ in range(4):
            slots.release()
            await anyio.wait_all_tasks_blocked()
    assert served == ["high-a", "high-b", "mid", "low"]

    served.clear()
    async with anyio.create_task_group() as tg:
        tg.start_soon(wait, "low", -2)
        await anyio.wait_all_tasks_blocked()
        for i in range(PASSES + 1):
            tg.start_soon(wait, f"high-{i}", 2)
            await anyio.wait_all_tasks_blocked()
            slots.release()
            await anyio.wait_all_tasks_blocked()
        slots.release()
    assert served == [*(f"high-{i}" for i in range(PASSES)), "low", f"high-{PASSES}"]


async def test_a_slot_handed_to_a_waiter_cancelled_meanwhile_is_not_lost():
    """Released to a waiter that is cancelled before it wakes: the slot is either taken by
    it (the wait had ended) or passed on to the next waiter, never lost nor doubled."""
    from naq._slots import Slots

    slots = Slots(1)
    await slots.acquire()
    got: list[str] = []
    scopes: dict[str, anyio.CancelScope] = {}

    async def wait(name: str) -> None:
        with anyio.CancelScope() as scope:
            scopes[name] = scope
            await slots.acquire()
            got.append(name)

    async with anyio.create_task_group() as tg:
        tg.start_soon(wait, "first")
        await anyio.wait_all_tasks_blocked()
        tg.start_soon(wait, "second")
        await anyio.wait_all_tasks_blocked()
        slots.release()  # to "first", which is cancelled before it runs
        scopes["first"].cancel()
        await anyio.wait_all_tasks_blocked()
        assert len(got) == 1 and slots.value == 0, got
        if got == ["first"]:
            scopes["second"].cancel()
    assert slots.value == 0


async def test_every_queue_is_listed_past_the_servers_page_of_256_consumers(client, queue_name):
    """Five lanes a queue make many consumers: the listing reads every page of them."""
    names = [f"{queue_name}-{i}" for i in range(260)]
    for name in names:
        await client.enqueue(jobs.add, 1, 1, queue=name, priority=1)
    listed = {q.name: q.pending for q in await naq.Admin(client).queues()}
    assert {name: listed.get(name) for name in names} == dict.fromkeys(names, 1)


def test_lane_names_round_trip_and_never_clash_with_a_queue():
    from naq._transport import names

    assert names.lanes("emails") == ["emails~2", "emails~1", "emails", "emails~-1", "emails~-2"]
    for priority in names.PRIORITIES:
        lane = names.lane("emails", priority)
        assert names.lane_priority(lane) == ("emails", priority)
        assert names.lane_of_consumer(names.consumer_name(lane)) == lane
    for not_ours in ("naq_emails~3", "naq_emails~x", "naq_", "other_emails", "naq_a.b"):
        assert names.lane_of_consumer(not_ours) is None
    with pytest.raises(naq.ConfigurationError):
        naq.Client("nats://127.0.0.1:1").queue("emails~2")  # a lane is not a queue name
