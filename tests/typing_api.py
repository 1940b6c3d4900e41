"""What a type checker sees of naq's and naq_sync's key calls: ``assert_type`` on each.

pyright checks this file (``[tool.pyright]`` in pyproject.toml, run by ``.ci/run``; and
tests/test_typing.py). It is never run, and pytest does not collect it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, assert_type

import naq
import naq_sync


def add(a: int, b: int) -> int:
    return a + b


async def async_add(a: int, b: int) -> int:
    return a + b


def shout(text: str, *, times: int = 1) -> str:
    return text.upper() * times


async def async_api(client: naq.Client) -> None:
    job = await client.enqueue(add, 1, 2)
    assert_type(job, naq.Job[int])
    assert_type(await job.result(timeout=1), int)
    assert_type(await (await client.enqueue(async_add, 1, 2)).result(), int)
    assert_type(await client.enqueue("operator:add", 1, 2), naq.Job[Any])  # by name: unknown
    assert_type(await client.enqueue_call(naq.call(add, 1, 2), queue="q"), naq.Job[int])
    assert_type(await client.enqueue_call(naq.call(shout, "a", times=2)), naq.Job[str])
    assert_type(await client.enqueue_call(add, (1, 2)), naq.Job[int])
    assert_type(await client.enqueue_many([naq.call(add, 1, 2)]), list[naq.Job[int]])
    assert_type(await client.enqueue_many([naq.Call(add, (1, 2))]), list[naq.Job[int]])
    assert_type(await client.enqueue_in(5, add, 1, 2), naq.Job[int])
    assert_type(await client.enqueue_at(datetime.now(UTC), add, 1, 2), naq.Job[int])
    assert_type(await client.fetch_job("x"), naq.Job[Any])
    assert_type(await client.requeue_dead_letter("x"), naq.Job[Any])
    assert_type(await client.schedule(add, 1, 2, cron="* * * * *"), naq.Schedule)
    assert_type(await client.dead_letters(), list[naq.DeadLetter])
    queue = client.queue("q")
    assert_type(queue, naq.Queue)
    assert_type(await queue.enqueue(add, 1, 2), naq.Job[int])
    assert_type(await queue.enqueue_call(naq.call(add, 1, 2)), naq.Job[int])
    dependent = await client.enqueue(add, 1, 2, depends_on=[job, "an-id"])
    assert_type(dependent, naq.Job[int])
    async with client.events(queue="q") as events:
        assert_type(events, naq.EventStream)
        async for event in events:
            assert_type(event, naq.Event)
    async with naq.Client() as connected:
        assert_type(connected, naq.Client)
    assert_type(await naq.Admin(client).workers(), list[naq.WorkerInfo])


def sync_api(client: naq_sync.Client) -> None:
    job = naq_sync.enqueue(add, 1, 2)
    assert_type(job, naq_sync.Job[int])
    assert_type(job.result(), int)
    assert_type(naq_sync.enqueue(add, 1, 2).result(timeout=1), int)
    assert_type(naq_sync.enqueue(async_add, 1, 2).result(), int)
    assert_type(naq_sync.enqueue("operator:add", 1, 2), naq_sync.Job[Any])  # by name: unknown
    assert_type(client.enqueue(add, 1, 2), naq_sync.Job[int])
    assert_type(client.enqueue_call(naq_sync.call(add, 1, 2), queue="q"), naq_sync.Job[int])
    assert_type(naq_sync.enqueue_call(naq_sync.call(shout, "a", times=2)), naq_sync.Job[str])
    assert_type(client.enqueue_many([naq_sync.call(add, 1, 2)]), list[naq_sync.Job[int]])
    assert_type(client.enqueue_in(5, add, 1, 2), naq_sync.Job[int])
    assert_type(client.fetch_job("x"), naq_sync.Job[Any])
    assert_type(naq_sync.requeue_dead_letter("x"), naq_sync.Job[Any])
    assert_type(naq_sync.dead_letters(), list[naq.DeadLetter])
    assert_type(client.schedule(add, 1, 2, interval=60), naq.Schedule)
    queue = client.queue("q")
    assert_type(queue, naq_sync.Queue)
    assert_type(queue.client, naq_sync.Client)
    assert_type(queue.enqueue(add, 1, 2), naq_sync.Job[int])
    assert_type(naq_sync.Queue(client, "q"), naq_sync.Queue)
    # naq_sync's objects go wherever naq's do: depends_on, Admin, Queue.
    second = client.enqueue(add, 1, 2, depends_on=job)
    assert_type(client.enqueue(add, 1, 2, depends_on=[job, "an-id", second]), naq_sync.Job[int])
    assert_type(naq_sync.Admin(client).workers(), list[naq.WorkerInfo])
    assert_type(naq.Admin(client), naq.Admin)
    with naq_sync.Client() as connected:
        assert_type(connected, naq_sync.Client)
    with client.events(queue="q") as events:
        assert_type(events, naq_sync.EventStream)
        for event in events:
            assert_type(event, naq.Event)


def inside_a_job() -> None:
    assert_type(naq.current_job().canceled, bool)
