"""OpenTelemetry tracing: the enqueue's producer span and the run's consumer span of one job in
one trace, seen by the SDK's in-memory exporter, on real workers and the real server."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import nats
import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

import naq
import naq_sync
from naq._transport import names

from . import jobs
from .conftest import running_worker, worker_in_thread

_exporter = InMemorySpanExporter()
_provider = TracerProvider()
_provider.add_span_processor(SimpleSpanProcessor(_exporter))
"""One provider for the module, passed to naq.enable_tracing: the global one stays unset."""


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """Tracing on for one test, the exporter emptied first; off again after it."""
    _exporter.clear()
    naq.enable_tracing(_provider)
    try:
        yield _exporter
    finally:
        naq.disable_tracing()


def of_job(exporter: InMemorySpanExporter, job_id: str, kind: SpanKind) -> list[ReadableSpan]:
    found = [
        span
        for span in exporter.get_finished_spans()
        if span.kind is kind and (span.attributes or {}).get("messaging.message.id") == job_id
    ]
    return sorted(found, key=lambda span: int(str((span.attributes or {}).get("naq.attempt", 0))))


def check_one_trace(producer: ReadableSpan, consumer: ReadableSpan) -> None:
    assert producer.context is not None and consumer.context is not None
    assert consumer.context.trace_id == producer.context.trace_id
    assert consumer.parent is not None
    assert consumer.parent.span_id == producer.context.span_id


def stored_headers(url: str, queue: str, job_id: str) -> dict[str, str]:
    """The headers of a queued job's message, as stored in the jobs stream."""

    async def read() -> dict[str, str]:
        nc = await nats.connect(url)
        try:
            msg = await nc.jetstream().get_msg(
                names.JOBS_STREAM, subject=names.job_subject(queue, job_id)
            )
            return dict(msg.headers or {})
        finally:
            await nc.close()

    return asyncio.run(read())


@pytest.mark.anyio
async def test_enqueue_and_run_are_one_trace(spans, nats_url, queue_name):
    async with naq.Client(nats_url) as client, running_worker(nats_url, [queue_name]):
        job = await client.enqueue(jobs.add, 2, 3, queue=queue_name)
        assert await job.result(timeout=20) == 5
    [producer] = of_job(spans, job.id, SpanKind.PRODUCER)
    [consumer] = of_job(spans, job.id, SpanKind.CONSUMER)
    check_one_trace(producer, consumer)
    assert producer.name == f"publish {queue_name}"
    assert consumer.name == f"process {queue_name}"
    assert dict(consumer.attributes or {}) == {
        "messaging.system": "nats",
        "messaging.operation.type": "process",
        "messaging.destination.name": queue_name,
        "messaging.message.id": job.id,
        "naq.function": "tests.jobs:add",
        "naq.attempt": 1,
        "naq.outcome": "finished",
    }
    assert consumer.status.status_code is StatusCode.UNSET


@pytest.mark.anyio
async def test_a_failure_is_recorded_and_retries_share_the_trace(spans, nats_url, queue_name):
    async with naq.Client(nats_url) as client, running_worker(nats_url, [queue_name]):
        failing = await client.enqueue(jobs.fail, "kaput", queue=queue_name)
        retried = await client.enqueue(
            jobs.async_fail, "again", queue=queue_name, retry=naq.Retry(max=1, interval=0.05)
        )
        for job in (failing, retried):
            with pytest.raises(naq.JobFailed):
                await job.result(timeout=20)
    [producer] = of_job(spans, failing.id, SpanKind.PRODUCER)
    [consumer] = of_job(spans, failing.id, SpanKind.CONSUMER)
    check_one_trace(producer, consumer)
    assert consumer.status.status_code is StatusCode.ERROR
    [event] = consumer.events
    assert event.name == "exception"
    attributes = dict(event.attributes or {})
    assert attributes["exception.type"] == "ValueError"
    assert "kaput" in str(attributes["exception.message"])
    assert (consumer.attributes or {})["naq.outcome"] == "failed"

    [producer] = of_job(spans, retried.id, SpanKind.PRODUCER)
    first, second = of_job(spans, retried.id, SpanKind.CONSUMER)
    for run in (first, second):
        check_one_trace(producer, run)
        assert run.status.status_code is StatusCode.ERROR
    assert [(run.attributes or {})["naq.attempt"] for run in (first, second)] == [1, 2]
    assert [(run.attributes or {})["naq.outcome"] for run in (first, second)] == [
        "retrying",
        "failed",
    ]


@pytest.mark.anyio
async def test_a_job_released_by_its_dependency_joins_its_enqueuers_trace(
    spans, nats_url, queue_name
):
    """The dependent's message is published by the worker that ran its dependency; it
    carries the context of the dependent's own enqueue, kept in its record meanwhile."""
    async with naq.Client(nats_url) as client:
        first = await client.enqueue(jobs.add, 1, 1, queue=queue_name)
        then = await client.enqueue(
            jobs.sum_of_dependencies, 0, queue=queue_name, depends_on=[first]
        )
        assert (await then.refresh()).status is naq.JobStatus.DEFERRED
        async with running_worker(nats_url, [queue_name]):
            assert await then.result(timeout=20) == 2
    [producer] = of_job(spans, then.id, SpanKind.PRODUCER)
    [consumer] = of_job(spans, then.id, SpanKind.CONSUMER)
    check_one_trace(producer, consumer)
    assert (producer.attributes or {})["naq.deferred"] is True
    [first_producer] = of_job(spans, first.id, SpanKind.PRODUCER)
    assert first_producer.context is not None and producer.context is not None
    assert first_producer.context.trace_id != producer.context.trace_id  # two enqueues


@pytest.mark.anyio
async def test_enqueue_many_traces_each_job(spans, nats_url, queue_name):
    async with naq.Client(nats_url) as client, running_worker(nats_url, [queue_name]):
        batch = await client.enqueue_many(
            [naq.call(jobs.add, i, 1) for i in range(3)], queue=queue_name
        )
        assert [await job.result(timeout=20) for job in batch] == [1, 2, 3]
    traces = set()
    for job in batch:
        [producer] = of_job(spans, job.id, SpanKind.PRODUCER)
        [consumer] = of_job(spans, job.id, SpanKind.CONSUMER)
        check_one_trace(producer, consumer)
        assert producer.context is not None
        traces.add(producer.context.trace_id)
    assert len(traces) == 3  # no current span: each job a trace of its own


def test_naq_sync_enqueue_from_the_calling_thread_carries_the_context(spans, nats_url, queue_name):
    with naq_sync.Client(nats_url) as client:
        tracer = _provider.get_tracer("test")
        with tracer.start_as_current_span("request") as request:
            queued = client.enqueue(jobs.add, 1, 1, queue=queue_name, job_id=f"{queue_name}-a")
        assert client._async._connection._caller is not None  # the calling-thread path
        headers = stored_headers(nats_url, queue_name, queued.id)
        assert headers["Nats-Msg-Id"] == queued.id  # merged with the trace context
        assert headers["traceparent"].split("-")[1] == f"{request.get_span_context().trace_id:032x}"
        with worker_in_thread(nats_url, [queue_name]):
            assert queued.result(timeout=20) == 2
    [producer] = of_job(spans, queued.id, SpanKind.PRODUCER)
    [consumer] = of_job(spans, queued.id, SpanKind.CONSUMER)
    check_one_trace(producer, consumer)
    assert producer.parent is not None
    assert producer.parent.span_id == request.get_span_context().span_id


def test_tracing_off_adds_no_headers_and_no_spans(nats_url, queue_name):
    _exporter.clear()
    with naq_sync.Client(nats_url) as client:
        queued = client.enqueue(jobs.add, 1, 1, queue=queue_name)
        assert stored_headers(nats_url, queue_name, queued.id) == {}
        with worker_in_thread(nats_url, [queue_name]):
            assert queued.result(timeout=20) == 2
    assert _exporter.get_finished_spans() == ()


def test_enable_tracing_without_the_extra(monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "opentelemetry", None)
    with pytest.raises(naq.ConfigurationError, match="naq\\[tracing\\]"):
        naq.enable_tracing()
