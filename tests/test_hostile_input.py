"""Hostile and bad input: each ends as a clear error or a dead letter with a reason.

Messages are published raw onto queue subjects, as anyone with publish rights on NATS could;
after each batch a good job still runs, so the worker is shown unharmed. Workers run with
``concurrency=1``: messages are then settled in order, and the good job's result proves every
earlier dead letter is stored. Counts go to the "naq job counts" summary.
(Invalid queue names, an unpicklable result and a JSON worker refusing pickled jobs are in
test_core.py and test_json.py.)
"""

from __future__ import annotations

import base64
import builtins
import pickle
import random
import uuid
from pathlib import Path

import anyio
import cloudpickle
import pytest

import naq
from naq._record import JobRecord, JobStatus, encode_record
from naq._time import utcnow
from naq.server import EmbeddedServer
from tests import jobs
from tests.conftest import running_worker, start_worker_process

pytestmark = pytest.mark.anyio

KEY = "test-signing-key-0123456789"


class _Evil:
    """Unpickling this creates ``marker``: proof that a payload was unpickled."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (builtins.open, (self.marker, "w"))


async def _publish_raw(client: naq.Client, subject: str, data: bytes) -> None:
    transport = client._connection.transport

    async def publish() -> None:
        await transport._js.publish(subject, data)

    await client._connection.call(publish)


def _raw_record(queue: str, func_name: str, serializer: str, payload: object) -> JobRecord:
    now = utcnow()
    return JobRecord(
        id=uuid.uuid4().hex,
        queue=queue,
        func_name=func_name,
        serializer=serializer,
        payload=payload,
        status=JobStatus.QUEUED,
        enqueued_at=now,
        retry=naq.Retry(max=3),  # must not matter: bad input is never retried
    )


async def _dead_letter_reasons(client: naq.Client, queue: str) -> dict[str, str]:
    return {letter.job_id: letter.reason for letter in await client.dead_letters(queue)}


async def test_garbage_and_wrong_shapes_are_dead_lettered(client, nats_url, queue_name, counts):
    rng = random.Random(9)
    garbage = [rng.randbytes(rng.randint(1, 512)) for _ in range(20)]
    garbage.append(pickle.dumps(_Evil("never-created")))  # a raw pickle is not a record
    wrong_shapes = [b"[]", b"1", b'"job"', b"null", b"{}", b'{"id": "x", "queue": 3}']
    wrong_shapes.append(b'{"id": "x", "queue": "q", "status": "bogus"}')
    # Decodable records that cannot run: they fail (no retry) and are dead-lettered too.
    bad_records = [
        _raw_record(queue_name, "tests.jobs:add", "pickle", [1, 2]),
        _raw_record(queue_name, "tests.jobs:add", "yaml", {}),
        _raw_record(queue_name, "no colon", "json", {"args": [], "kwargs": {}}),
        _raw_record(queue_name, "tests.jobs:add", "json", {"args": "1, 2"}),
        _raw_record(queue_name, "tests.jobs:add", "pickle", {"args": "not base64 pickle"}),
    ]
    async with running_worker(nats_url, [queue_name], concurrency=1):
        for data in garbage + wrong_shapes:
            await _publish_raw(client, f"naq.jobs.{queue_name}", data)
        for record in bad_records:
            await _publish_raw(client, f"naq.jobs.{queue_name}.{record.id}", encode_record(record))
        good = await client.enqueue(jobs.add, 1, 1, queue=queue_name)
        assert await good.result(timeout=30) == 2
        reasons = await _dead_letter_reasons(client, queue_name)
    sent = len(garbage) + len(wrong_shapes) + len(bad_records)
    assert len(reasons) == sent
    assert all(reason for reason in reasons.values())
    undecodable = [r for r in reasons.values() if r.startswith("undecodable message")]
    assert len(undecodable) == len(garbage) + len(wrong_shapes)
    for record in bad_records:
        failed = await client.fetch_job(record.id)
        assert failed.record.status is naq.JobStatus.FAILED
        assert failed.record.attempts == 1  # not retried, whatever its retry policy says
        assert "failed after 1 attempt(s)" in reasons[record.id]
    assert await client.queue(queue_name).count() == 0
    assert not Path("never-created").exists()
    counts(published_bad=sent, dead_lettered=len(reasons), finished=1, lost=0)


async def test_signing_worker_refuses_unsigned_and_forged_pickles(
    nats_url, queue_name, tmp_path, counts
):
    marker = tmp_path / "unpickled"
    evil = base64.b64encode(cloudpickle.dumps(_Evil(str(marker)))).decode()
    forged_args = base64.b64encode(cloudpickle.dumps(((_Evil(str(marker)),), {}))).decode()
    async with naq.Client(nats_url, signing_key=KEY) as client:
        signed = await client.enqueue(jobs.add, 2, 3, queue=queue_name)
        # The signature covers the function name: pointing a signed call elsewhere breaks it.
        redirected = attrs_evolve(signed.record, id=uuid.uuid4().hex, func_name="tests.jobs:fail")
        bad = [
            _raw_record(queue_name, "x", "pickle", {"call": evil}),  # unsigned
            _raw_record(queue_name, "tests.jobs:add", "pickle", {"args": forged_args}),
            _raw_record(queue_name, "x", "pickle", {"call": evil, "sig": "0" * 64}),  # forged
            redirected,
        ]
        async with running_worker(nats_url, [queue_name], concurrency=1, signing_key=KEY):
            assert await signed.result(timeout=30) == 5
            for record in bad:
                data = encode_record(record)
                await _publish_raw(client, f"naq.jobs.{queue_name}.{record.id}", data)
            good = await client.enqueue(jobs.add, 1, 1, queue=queue_name)
            assert await good.result(timeout=30) == 2
            reasons = await _dead_letter_reasons(client, queue_name)
        for record in bad:
            with pytest.raises(naq.JobFailed) as info:
                await (await client.fetch_job(record.id)).result(timeout=5)
            assert info.value.exc_type == "SerializationError"
            assert "signature" in info.value.message or "unsigned" in info.value.message
            assert "SerializationError" in reasons[record.id]
    assert not marker.exists(), "a refused payload was unpickled"
    counts(published_bad=len(bad), dead_lettered=len(reasons), finished=2, unpickled=0)


def attrs_evolve(record: JobRecord, **changes: object) -> JobRecord:
    import attrs

    return attrs.evolve(record, **changes)


async def test_signed_results_are_checked_by_the_client(nats_url, queue_name):
    async with (
        naq.Client(nats_url, signing_key=KEY) as signing,
        naq.Client(nats_url) as plain,
        running_worker(nats_url, [queue_name]),  # no key: its results are unsigned
    ):
        job = await plain.enqueue(jobs.add, 1, 2, queue=queue_name)
        assert await job.result(timeout=30) == 3
        with pytest.raises(naq.SerializationError, match="unsigned"):
            await (await signing.fetch_job(job.id)).result(timeout=5)


async def test_unsigned_producer_is_refused_by_a_signing_worker(
    client, nats_url, queue_name, counts
):
    async with running_worker(nats_url, [queue_name], signing_key=KEY):
        job = await client.enqueue(jobs.add, 1, 2, queue=queue_name)
        with pytest.raises(naq.JobFailed, match="unsigned"):
            await job.result(timeout=30)
    assert job.record.attempts == 1
    counts(
        enqueued=1,
        dead_lettered=await client._connection.call(
            client._connection.transport.dead_letter_count, queue_name
        ),
    )


@pytest.mark.parametrize(
    "path",
    [
        "os:system",
        "subprocess:getoutput",
        "builtins:eval",
        "posix:system",
        "tests.jobs:os.system",  # os.system reached through an allowed module
        "tests.jobs:time.sleep",
        "tests.jobs:add.__globals__",
    ],
)
async def test_json_worker_imports_only_allowed_modules(nats_url, queue_name, tmp_path, path):
    marker = tmp_path / "ran"
    async with (
        naq.Client(nats_url, serializer="json") as client,
        running_worker(nats_url, [queue_name], serializer="json"),
    ):
        job = await client.enqueue(path, f"touch {marker}", queue=queue_name, retry=3)
        with pytest.raises(naq.JobFailed, match="refused") as info:
            await job.result(timeout=30)
        reasons = await _dead_letter_reasons(client, queue_name)
    assert info.value.exc_type == "ConfigurationError"
    assert job.record.attempts == 1
    assert "refused" in reasons[job.id]
    assert not marker.exists()


async def test_allowlist_option_replaces_the_default(nats_url, queue_name):
    async with (
        naq.Client(nats_url, serializer="json") as client,
        running_worker(nats_url, [queue_name], serializer="json", allowed_modules=["operator"]),
    ):
        assert (
            await (await client.enqueue("operator:add", 2, 3, queue=queue_name)).result(timeout=30)
            == 5
        )
        job = await client.enqueue(jobs.add, 2, 3, queue=queue_name)
        with pytest.raises(naq.JobFailed, match="not an allowed module"):
            await job.result(timeout=30)


@pytest.mark.parametrize("path", ["tests.jobs:no_such_function", "no_such_module:func"])
async def test_unknown_function_fails_once_without_retry(client, nats_url, queue_name, path):
    async with running_worker(nats_url, [queue_name]):
        job = await client.enqueue(path, queue=queue_name, retry=naq.Retry(max=5))
        with pytest.raises(naq.JobFailed, match="cannot import") as info:
            await job.result(timeout=30)
    assert info.value.exc_type == "ConfigurationError"
    assert job.record.attempts == 1
    assert await client.queue(queue_name).count() == 0


async def test_payload_over_max_payload_is_refused_at_enqueue(client, queue_name, counts):
    limit = client._connection.transport.max_payload
    with pytest.raises(naq.SerializationError, match="max_payload"):
        await client.enqueue(jobs.echo, "x" * limit, queue=queue_name)
    calls = [naq.Call(jobs.add, (i, i)) for i in range(10)]
    calls.append(naq.Call(jobs.echo, ("x" * limit,)))
    with pytest.raises(naq.SerializationError, match="max_payload"):
        await client.enqueue_many(calls, queue=queue_name)
    assert await client.queue(queue_name).count() == 0  # nothing of either was published
    counts(refused=2, published=0)


async def test_result_over_max_payload_fails_once(client, nats_url, queue_name, tmp_path):
    """A result too large to store fails the job at once: not stored, redelivered, rerun."""
    marker = tmp_path / "runs"
    limit = client._connection.transport.max_payload
    async with running_worker(nats_url, [queue_name], ack_wait=2):
        job = await client.enqueue(jobs.big_result, limit, str(marker), queue=queue_name, retry=1)
        with pytest.raises(naq.JobFailed, match="max_payload") as info:
            await job.result(timeout=30)
    assert info.value.exc_type == "SerializationError"
    assert job.record.attempts == 2  # its one retry, then failed: not redelivered for ever
    assert len(marker.read_text().splitlines()) == 2


async def test_non_json_result_fails_the_job(nats_url, queue_name):
    async with (
        naq.Client(nats_url, serializer="json") as client,
        running_worker(nats_url, [queue_name], serializer="json"),
    ):
        job = await client.enqueue(jobs.set_result, queue=queue_name)
        with pytest.raises(naq.JobFailed, match="not JSON-serializable") as info:
            await job.result(timeout=30)
    assert info.value.exc_type == "SerializationError"


@pytest.mark.parametrize("name", ["a.b", "*", ">", "a b", "", "x" * 65, "naq.jobs"])
def test_invalid_queue_names_are_refused_everywhere(name):
    with pytest.raises(naq.ConfigurationError, match="invalid queue name"):
        naq.Worker([name])
    with pytest.raises(naq.ConfigurationError, match="invalid queue name"):
        naq.Client("nats://127.0.0.1:1").queue(name)


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_cli_allow_option(nats_url, queue_name):
    """``naq worker --allow`` replaces the default allowlist (asyncio: one subprocess is enough)."""
    worker = start_worker_process(
        nats_url, [queue_name], "--serializer", "json", "--allow", "operator"
    )
    try:
        async with naq.Client(nats_url, serializer="json") as client:
            allowed = await client.enqueue("operator:mul", 6, 7, queue=queue_name)
            assert await allowed.result(timeout=30) == 42
            refused = await client.enqueue("os:getcwd", queue=queue_name)
            with pytest.raises(naq.JobFailed, match="not an allowed module"):
                await refused.result(timeout=30)
    finally:
        worker.terminate()
        await anyio.to_thread.run_sync(worker.wait)


async def test_nats_user_and_password_in_url(queue_name):
    """Auth is NATS's own: credentials in the URL work, wrong ones are a clear error."""
    with EmbeddedServer(extra_args=["--user", "naq", "--pass", "s3cret"]) as server:
        good = server.url.replace("nats://", "nats://naq:s3cret@")
        async with naq.Client(good) as client, running_worker(good, [queue_name]):
            assert (
                await (await client.enqueue(jobs.add, 1, 2, queue=queue_name)).result(timeout=30)
                == 3
            )
        with pytest.raises(naq.NaqConnectionError, match="cannot connect"):
            async with naq.Client(server.url.replace("nats://", "nats://naq:wrong@")):
                pass
