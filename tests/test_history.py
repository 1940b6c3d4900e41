"""Throughput history (``naq/_history.py``): samples the workers store in ``NAQ_STATS``, read
back per minute by ``Admin.throughput_history`` from any connection, on asyncio and Trio."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import anyio
import pytest
from loguru import logger

import naq
from naq._heartbeat import WorkerStats
from naq._history import (
    Bucket,
    Sample,
    _History,
    decode_sample,
    encode_sample,
    per_minute,
)
from naq._time import utcnow
from tests import jobs
from tests.conftest import running_worker


def _minute(at: datetime) -> datetime:
    return at.replace(second=0, microsecond=0)


def _totals(buckets: list[Bucket]) -> tuple[int, int]:
    return sum(b.finished for b in buckets), sum(b.failed for b in buckets)


async def _run_jobs(client: naq.Client, queue: str, finished: int, failed: int) -> None:
    """Enqueue jobs that finish and jobs that fail (no retries) and wait for their ends."""
    ok = [await client.enqueue(jobs.add, i, 1, queue=queue) for i in range(finished)]
    bad = [await client.enqueue(jobs.fail, "kaput", queue=queue) for _ in range(failed)]
    assert [await job.result(timeout=20) for job in ok] == [i + 1 for i in range(finished)]
    for job in bad:
        with pytest.raises(naq.JobFailed):
            await job.result(timeout=20)


@pytest.mark.anyio
async def test_a_stopped_workers_runs_are_in_the_history_of_any_connection(
    client, nats_url, queue_name
):
    """The default interval is 10 s: what shows here was stored by the worker's last sample,
    written when it stopped."""
    async with running_worker(nats_url, [queue_name]):
        await _run_jobs(client, queue_name, finished=3, failed=2)
    before = _minute(utcnow())
    buckets = await naq.Admin(client).throughput_history(queue=queue_name)
    assert len(buckets) == 60
    assert buckets[-1].start in (before, _minute(utcnow()))  # the current minute is last
    assert _totals(buckets) == (3, 2)
    assert sum(b.processed for b in buckets) == 5
    async with naq.Client(nats_url) as other:  # a new connection: a dashboard restarted
        assert _totals(await naq.Admin(other).throughput_history(queue=queue_name)) == (3, 2)
        mine = await naq.Admin(other).throughput_history(queue=f"{queue_name}-none")
        assert _totals(mine) == (0, 0)


@pytest.mark.anyio
async def test_a_busy_worker_writes_samples_while_it_runs_and_counts_each_run_once(
    client, nats_url, queue_name
):
    admin = naq.Admin(client)
    async with running_worker(nats_url, [queue_name], history_interval=0.1):
        await _run_jobs(client, queue_name, finished=2, failed=1)
        with anyio.fail_after(10):  # the worker still runs: only its samples can show them
            while _totals(await admin.throughput_history(queue=queue_name)) != (2, 1):
                await anyio.sleep(0.05)
        await _run_jobs(client, queue_name, finished=1, failed=0)
    # Stopped: its last sample holds only what its earlier ones did not.
    assert _totals(await admin.throughput_history(minutes=5, queue=queue_name)) == (3, 1)


@pytest.mark.anyio
async def test_a_malformed_sample_is_skipped_with_a_warning(client, queue_name):
    connection = client._connection
    admin = connection.transport.admin
    good = Sample(utcnow(), "x", {queue_name: 4}, {queue_name: 1})
    seen: list[str] = []
    logger.enable("naq._history")
    handler = logger.add(seen.append, level="WARNING", format="{message}")
    try:
        await connection.call(admin.publish_sample, "x", b"{not json")
        await connection.call(admin.publish_sample, "x", b'{"at": "yesterday"}')
        await connection.call(admin.publish_sample, "x", encode_sample(good))
        buckets = await naq.Admin(client).throughput_history(minutes=2, queue=queue_name)
    finally:
        logger.remove(handler)
        logger.disable("naq._history")
    assert _totals(buckets) == (4, 1)
    assert sum("skipping a throughput sample" in line for line in seen) >= 2


@pytest.mark.anyio
async def test_history_arguments_are_checked(client):
    admin = naq.Admin(client)
    with pytest.raises(naq.ConfigurationError, match="minutes"):
        await admin.throughput_history(minutes=0)
    with pytest.raises(naq.ConfigurationError, match="queue name"):
        await admin.throughput_history(queue="a.b")
    assert len(await admin.throughput_history(minutes=3)) == 3


def test_worker_refuses_a_history_interval_that_is_not_positive():
    with pytest.raises(naq.ConfigurationError, match="history_interval"):
        naq.Worker(["q"], url="nats://localhost:1", history_interval=0)


def _at(minute: int, second: float = 0.0) -> datetime:
    return datetime(2030, 1, 2, 12, 0, tzinfo=UTC) + timedelta(minutes=minute, seconds=second)


def test_per_minute_zero_fills_filters_queues_and_keeps_to_minute_boundaries():
    samples = [
        Sample(_at(-1, 59.999999), "w1", {"a": 100}, {}),  # before since's minute
        Sample(_at(0), "w1", {"a": 1, "b": 10}, {"a": 2}),  # since's minute, before since
        Sample(_at(1, 59.999999), "w2", {"a": 3}, {"b": 20}),
        Sample(_at(3), "w1", {"b": 30}, {"a": 4}),
        Sample(_at(3, 59.5), "w2", {"a": 5}, {}),  # after until, in its minute
        Sample(_at(4), "w1", {"a": 100}, {"a": 100}),  # after until's minute
    ]
    since, until = _at(0, 30), _at(3, 10)
    starts = [_at(0), _at(1), _at(2), _at(3)]
    assert per_minute(samples, since=since, until=until) == [
        Bucket(starts[0], 11, 2),
        Bucket(starts[1], 3, 20),
        Bucket(starts[2], 0, 0),
        Bucket(starts[3], 35, 4),
    ]
    assert per_minute(samples, since=since, until=until, queue="a") == [
        Bucket(starts[0], 1, 2),
        Bucket(starts[1], 3, 0),
        Bucket(starts[2], 0, 0),
        Bucket(starts[3], 5, 4),
    ]
    assert per_minute(samples, since=since, until=until, queue="c") == [
        Bucket(start, 0, 0) for start in starts
    ]
    plus_two = timezone(timedelta(hours=2))  # any zone is read as the same instant in UTC
    local = per_minute(samples, since=since.astimezone(plus_two), until=until, queue="a")
    assert local == per_minute(samples, since=since, until=until, queue="a")
    assert local[0].start.tzinfo is UTC
    assert per_minute(samples, since=until, until=since) == []
    assert per_minute([], since=since, until=since) == [Bucket(starts[0], 0, 0)]


def test_samples_round_trip_and_malformed_ones_raise():
    sample = Sample(_at(0, 1.5), "host.1.abc", {"a": 3}, {"b": 1})
    assert decode_sample(encode_sample(sample)) == sample
    naive = encode_sample(Sample(_at(0).replace(tzinfo=None), "w", {}, {}))
    assert decode_sample(naive).at == _at(0)  # a naive time is taken as UTC
    for bad in (b"", b"[]", b"{not json", b'{"at": "x", "worker_id": "w"}', b"\xff"):
        with pytest.raises(naq.SerializationError):
            decode_sample(bad)


def test_a_sample_not_stored_is_sent_again_as_it_was_and_later_runs_go_in_the_next():
    stats = WorkerStats()
    stats.job_ended("a", ok=True)  # before the loop started: not its run's
    history = _History("w", stats)
    history.take()
    assert history.pending is None  # nothing ended: nothing to write
    stats.job_ended("a", ok=True)
    stats.job_ended("a", ok=False)
    stats.job_ended("b", ok=False)
    history.take()
    assert history.pending is not None
    first = history.pending[0]
    assert (first.finished, first.failed) == ({"a": 1}, {"a": 1, "b": 1})
    stats.job_ended("b", ok=True)  # while the first sample is not stored (a failed publish)
    history.take()
    assert history.pending[0] is first  # sent again byte for byte: deduplicated if stored
    history.stored()
    history.take()
    assert history.pending is not None
    assert (history.pending[0].finished, history.pending[0].failed) == ({"b": 1}, {})
    history.stored()
    history.take()
    assert history.pending is None
