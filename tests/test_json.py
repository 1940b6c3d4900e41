"""JSON mode: plain values only, functions by import path, never unpickles."""

from __future__ import annotations

import pytest

import naq
from tests import jobs
from tests.conftest import running_worker

pytestmark = pytest.mark.anyio


@pytest.fixture
async def json_client(nats_url):
    async with naq.Client(nats_url, serializer="json") as c:
        yield c


async def test_json_round_trip(json_client, nats_url, queue_name):
    async with running_worker(nats_url, [queue_name], serializer="json"):
        job = await json_client.enqueue(
            jobs.echo,
            1,
            "two",
            [3.5, None],
            flag=True,
            nested={"a": [1, {"b": "c"}]},
            queue=queue_name,
        )
        assert await job.result(timeout=10) == {
            "args": [1, "two", [3.5, None]],
            "kwargs": {"flag": True, "nested": {"a": [1, {"b": "c"}]}},
        }
    record = job.record
    assert record.serializer == "json"
    assert record.payload["args"] == [1, "two", [3.5, None]]  # readable without unpickling


@pytest.mark.parametrize("bad", [{1, 2}, b"bytes", object(), float("nan")])
async def test_json_refuses_non_json_argument(json_client, queue_name, bad):
    with pytest.raises(naq.SerializationError):
        await json_client.enqueue(jobs.add, bad, 1, queue=queue_name)
    assert await json_client.queue(queue_name).count() == 0


async def test_json_refuses_functions_a_worker_cannot_import(json_client, queue_name):
    with pytest.raises(naq.ConfigurationError):
        await json_client.enqueue(lambda: 1, queue=queue_name)
    with pytest.raises(naq.ConfigurationError):
        await json_client.enqueue("no_colon_here", queue=queue_name)
    assert await json_client.queue(queue_name).count() == 0


async def test_json_worker_refuses_pickled_job(client, nats_url, queue_name):
    async with running_worker(nats_url, [queue_name], serializer="json"):
        job = await client.enqueue(jobs.add, 1, 2, queue=queue_name)
        with pytest.raises(naq.JobFailed) as info:
            await job.result(timeout=10)
    assert info.value.exc_type == "SerializationError"
    assert "only accepts 'json'" in info.value.message


async def test_json_worker_fails_unknown_function(json_client, nats_url, queue_name):
    async with running_worker(nats_url, [queue_name], serializer="json"):
        job = await json_client.enqueue("tests.jobs:does_not_exist", queue=queue_name)
        with pytest.raises(naq.JobFailed) as info:
            await job.result(timeout=10)
    assert info.value.exc_type == "ConfigurationError"
    assert "does_not_exist" in info.value.message


async def test_json_client_refuses_to_unpickle_a_result(client, json_client, nats_url, queue_name):
    async with running_worker(nats_url, [queue_name]):
        job = await client.enqueue(jobs.add, 1, 2, queue=queue_name)
        assert await job.result(timeout=10) == 3
    seen_by_json = await json_client.fetch_job(job.id)
    with pytest.raises(naq.SerializationError):
        await seen_by_json.result(timeout=10)
