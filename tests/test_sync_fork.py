"""naq_sync across os.fork(): children make their own loop thread and connection.

The parent's loop thread and connection are live when it forks. A child that used them
would hang (the loop thread does not exist in the child) or write on the parent's socket,
corrupting the parent's session; the parent is checked to still work after its children.
"""

from __future__ import annotations

import multiprocessing
import threading
from collections.abc import Iterator

import pytest

import naq_sync
from naq._loop_thread import shared_loop
from tests import jobs
from tests.conftest import worker_in_thread

_inherited: dict[str, object] = {}
"""What the parent had when it forked, as the children see it."""


@pytest.fixture
def worker(nats_url: str, queue_name: str) -> Iterator[None]:
    with worker_in_thread(nats_url, [queue_name]):
        yield


def _naq_loop_thread_id() -> int | None:
    threads = [t for t in threading.enumerate() if t.name == "naq-loop"]
    return threads[0].native_id if len(threads) == 1 else None


def _round_trip_with_default_client(queue: str, n: int) -> dict[str, object]:
    job = naq_sync.enqueue(jobs.add, n, n, queue=queue)
    return {
        "result": job.result(timeout=60),
        "own_client": naq_sync.default_client() is not _inherited["client"],
        "own_loop": shared_loop() is not _inherited["loop"],
        "loop_thread": _naq_loop_thread_id(),
    }


def _round_trip_with_inherited_client(queue: str, n: int) -> dict[str, object]:
    client = _inherited["client"]
    job = client.enqueue(jobs.add, n, 1, queue=queue)
    return {
        "result": job.result(timeout=60),
        "own_connection": client._async._connection.transport._nc is not _inherited["nc"],
        "schedules": [s.id for s in client.list_schedules(queue=queue)],
    }


def _pool_map(fn, queue: str, count: int) -> list[dict[str, object]]:
    with multiprocessing.get_context("fork").Pool(3) as pool:
        return pool.starmap(fn, [(queue, n) for n in range(count)], chunksize=1)


def test_children_get_their_own_default_client_and_loop(nats_url, queue_name, worker, monkeypatch):
    monkeypatch.setenv("NAQ_NATS_URL", nats_url)
    parent_client = naq_sync.default_client()
    assert naq_sync.enqueue(jobs.add, 1, 1, queue=queue_name).result(timeout=30) == 2
    _inherited.update(client=parent_client, loop=shared_loop())
    parent_loop_thread = _naq_loop_thread_id()

    reports = _pool_map(_round_trip_with_default_client, queue_name, 6)

    assert [r["result"] for r in reports] == [n + n for n in range(6)]
    assert all(r["own_client"] and r["own_loop"] for r in reports)
    assert parent_loop_thread not in {r["loop_thread"] for r in reports}
    # The parent's own connection came through its children's lives untouched.
    assert naq_sync.default_client() is parent_client
    assert naq_sync.enqueue(jobs.add, 2, 2, queue=queue_name).result(timeout=30) == 4


def test_client_opened_before_fork_connects_anew_in_the_child(nats_url, queue_name, worker):
    with naq_sync.Client(nats_url) as client:
        assert client.enqueue(jobs.add, 1, 2, queue=queue_name).result(timeout=30) == 3
        # The parent also uses schedules, whose store keeps its own handle on the bucket.
        schedule = client.schedule(jobs.add, 1, 1, interval=3600, queue=queue_name)
        _inherited.update(client=client, nc=client._async._connection.transport._nc)

        reports = _pool_map(_round_trip_with_inherited_client, queue_name, 6)

        client.cancel_schedule(schedule.id)
        assert [r["result"] for r in reports] == [n + 1 for n in range(6)]
        assert all(r["own_connection"] for r in reports)
        assert all(r["schedules"] == [schedule.id] for r in reports), reports
        assert client._async._connection.transport._nc is _inherited["nc"]
        assert client.enqueue(jobs.add, 5, 5, queue=queue_name).result(timeout=30) == 10
