"""Prometheus metrics: a worker's /metrics (in process and `naq worker --metrics-port`) and the
dashboard's, read over real HTTP after real jobs."""

from __future__ import annotations

import signal
import socket
import sys
import urllib.error
import urllib.request

import anyio
import pytest
from prometheus_client.parser import text_string_to_metric_families

import naq
from naq import _metrics
from naq._metrics import MAX_FUNCTIONS, OTHER_FUNCTION, WorkerMetrics

from . import jobs
from .conftest import run_signals, running_worker, start_worker_process
from .dashboardtools import http, running_dashboard

pytestmark = pytest.mark.anyio

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.status == 200
        return response.read().decode()


def parse(text: str) -> Samples:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def scrape(url: str) -> Samples:
    return parse(await anyio.to_thread.run_sync(_get, url))


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


def job_counts(samples: Samples, queue: str, function: str) -> dict[str, float]:
    labels = {"queue": queue, "function": function}
    names = ["started", "finished", "failed", "retried", "canceled", "dead_lettered"]
    counts = {n: value(samples, f"naq_jobs_{n}_total", **labels) for n in names}
    counts["in_progress"] = value(samples, "naq_jobs_in_progress", **labels)
    counts["runs"] = value(samples, "naq_job_run_seconds_count", **labels)
    counts["waits"] = value(samples, "naq_job_wait_seconds_count", **labels)
    return counts


def counts_of(
    started=0, finished=0, failed=0, retried=0, canceled=0, dead_lettered=0, runs=0, waits=0
) -> dict[str, float]:
    return {
        "started": started,
        "finished": finished,
        "failed": failed,
        "retried": retried,
        "canceled": canceled,
        "dead_lettered": dead_lettered,
        "in_progress": 0,
        "runs": runs,
        "waits": waits,
    }


async def run_the_jobs(client: naq.Client, queue: str) -> naq.Job:
    """Three that finish, one that fails, one retried once then dead-lettered, one canceled
    while it runs; returns the canceled one."""
    done = [await client.enqueue(jobs.add, i, 1, queue=queue) for i in range(3)]
    assert [await job.result(timeout=20) for job in done] == [1, 2, 3]
    failing = await client.enqueue(jobs.fail, "kaput", queue=queue)
    retried = await client.enqueue(
        jobs.async_fail, "again", queue=queue, retry=naq.Retry(max=1, interval=0.05)
    )
    for job in (failing, retried):
        with pytest.raises(naq.JobFailed):
            await job.result(timeout=20)
    async with run_signals() as runs:
        canceled = await client.enqueue(jobs.async_signal_and_wait, runs.port, queue=queue)
        await runs.wait_for(1)
        await client.cancel(canceled.id)
        with anyio.fail_after(10):
            assert await canceled.wait_until(naq.JobStatus.CANCELED) is naq.JobStatus.CANCELED
    return canceled


def check_job_counts(samples: Samples, queue: str) -> None:
    assert job_counts(samples, queue, "tests.jobs:add") == counts_of(
        started=3, finished=3, runs=3, waits=3
    )
    assert job_counts(samples, queue, "tests.jobs:fail") == counts_of(
        started=1, failed=1, dead_lettered=1, runs=1, waits=1
    )
    # two runs, the second a retry (its wait is not observed: it includes the retry delay)
    assert job_counts(samples, queue, "tests.jobs:async_fail") == counts_of(
        started=2, failed=1, retried=1, dead_lettered=1, runs=2, waits=1
    )
    assert job_counts(samples, queue, "tests.jobs:async_signal_and_wait") == counts_of(
        started=1, canceled=1, runs=1, waits=1
    )
    labels = {"queue": queue, "function": "tests.jobs:add"}
    buckets = value(samples, "naq_job_run_seconds_bucket", le="+Inf", **labels)
    assert buckets == 3
    assert value(samples, "naq_job_run_seconds_sum", **labels) > 0
    # no job id anywhere: labels are the queue, the function, the worker, le
    keys = {key for _, labels in samples for key, _ in labels}
    assert keys <= {"queue", "function", "worker", "le"}


async def test_worker_metrics_after_real_jobs(client, nats_url, queue_name):
    metrics = WorkerMetrics()
    port = metrics.serve(0, "127.0.0.1")
    url = f"http://127.0.0.1:{port}/metrics"
    try:
        async with running_worker(nats_url, [queue_name], metrics=metrics) as worker:
            samples = await scrape(url)
            assert value(samples, "naq_worker_up", worker=worker.id) == 1
            await run_the_jobs(client, queue_name)
            samples = await scrape(url)
            check_job_counts(samples, queue_name)
            assert ("process_resident_memory_bytes", frozenset()) in samples
        samples = await scrape(url)
        assert value(samples, "naq_worker_up", worker=worker.id) == 0
    finally:
        metrics.close()
    with pytest.raises(urllib.error.URLError):
        _get(url)  # closed: nothing listens any more


def test_function_labels_are_bounded():
    metrics = WorkerMetrics(process_metrics=False)
    for i in range(MAX_FUNCTIONS + 5):
        metrics.started("q", f"mod:f{i}", 0.01)
    samples = parse(_generate(metrics))
    functions = {dict(labels)["function"] for name, labels in samples if name.startswith("naq_")}
    assert len(functions) == MAX_FUNCTIONS + 1
    assert value(samples, "naq_jobs_started_total", queue="q", function=OTHER_FUNCTION) == 5
    assert value(samples, "naq_job_wait_seconds_bucket", queue="q", function="mod:f0", le="0.01")
    assert not value(
        samples, "naq_job_wait_seconds_bucket", queue="q", function="mod:f0", le="0.005"
    )


def _generate(metrics: WorkerMetrics) -> str:
    from prometheus_client import generate_latest

    return generate_latest(metrics.registry).decode()


def test_missing_extra_is_named(monkeypatch):
    monkeypatch.setitem(sys.modules, "prometheus_client", None)  # import raises ImportError
    with pytest.raises(naq.ConfigurationError, match=r"pip install 'naq\[metrics\]'"):
        _metrics.WorkerMetrics()


def test_a_taken_port_is_a_clear_error():
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        metrics = WorkerMetrics(process_metrics=False)
        with pytest.raises(naq.ConfigurationError, match=f"cannot serve metrics on .*:{port}"):
            metrics.serve(port, "127.0.0.1")


def _free_port() -> int:
    with socket.create_server(("127.0.0.1", 0)) as sock:
        return sock.getsockname()[1]


def _two_free_ports_in_a_row() -> int:
    """A port P such that P and P + 1 are both free now (held together while chosen)."""
    for _ in range(100):
        with socket.create_server(("127.0.0.1", 0)) as first:
            port = first.getsockname()[1]
            try:
                with socket.create_server(("127.0.0.1", port + 1)):
                    return port
            except OSError:
                continue  # P + 1 is taken: try another P
    raise RuntimeError("no two free ports in a row on 127.0.0.1")


async def _wait_for_metrics(url: str) -> Samples:
    """Scrape until the worker serves and shows itself up (it binds before it connects)."""
    with anyio.fail_after(30):
        while True:
            try:
                samples = await scrape(url)
            except OSError:  # not listening yet (URLError), or reset while it starts
                samples = {}
            if any(n == "naq_worker_up" and v == 1 for (n, _), v in samples.items()):
                return samples
            await anyio.sleep(0.05)


async def _stop(process) -> None:
    process.send_signal(signal.SIGTERM)
    assert await anyio.to_thread.run_sync(process.wait, 30) == 0


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_cli_worker_serves_metrics(client, nats_url, queue_name):
    port = _free_port()
    url = f"http://127.0.0.1:{port}/metrics"
    process = start_worker_process(
        nats_url, [queue_name], "--name", queue_name, "--metrics-port", str(port)
    )
    try:
        samples = await _wait_for_metrics(url)
        assert value(samples, "naq_worker_up", worker=queue_name) == 1
        await run_the_jobs(client, queue_name)
        check_job_counts(await scrape(url), queue_name)
    finally:
        await _stop(process)


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_each_worker_process_serves_its_own_port(client, nats_url, queue_name):
    """--processes 2 with NAQ_METRICS_PORT=P: process 1 on P, process 2 on P+1."""
    port = _two_free_ports_in_a_row()
    process = start_worker_process(
        nats_url,
        [queue_name],
        "--processes",
        "2",
        "--name",
        queue_name,
        env={"NAQ_METRICS_PORT": str(port)},
    )
    try:
        for slot in (1, 2):
            samples = await _wait_for_metrics(f"http://127.0.0.1:{port + slot - 1}/metrics")
            assert [labels for name, labels in samples if name == "naq_worker_up"] == [
                frozenset({("worker", f"{queue_name}-{slot}")})
            ]
        done = [await client.enqueue(jobs.add, i, 1, queue=queue_name) for i in range(10)]
        assert [await job.result(timeout=20) for job in done] == list(range(1, 11))
        finished = 0.0
        for slot in (1, 2):
            samples = await scrape(f"http://127.0.0.1:{port + slot - 1}/metrics")
            labels = {"queue": queue_name, "function": "tests.jobs:add"}
            finished += samples.get(("naq_jobs_finished_total", frozenset(labels.items())), 0)
        assert finished == 10
    finally:
        await _stop(process)


async def test_dashboard_metrics_after_real_jobs(client, nats_url, queue_name):
    idle = f"{queue_name}-idle"  # a queue no worker consumes: its jobs wait
    async with running_dashboard(client) as base:
        url = base + "/metrics"
        async with running_worker(nats_url, [queue_name], heartbeat_interval=0.2) as worker:
            done = [await client.enqueue(jobs.add, i, 1, queue=queue_name) for i in range(3)]
            assert [await job.result(timeout=20) for job in done] == [1, 2, 3]
            failing = await client.enqueue(jobs.fail, "kaput", queue=queue_name)
            with pytest.raises(naq.JobFailed):
                await failing.result(timeout=20)
            for i in range(2):
                await client.enqueue(jobs.add, i, 1, queue=idle)
            with anyio.fail_after(20):  # until a heartbeat carries the 4 runs
                while True:
                    reply = await http("GET", url)
                    assert reply.status == 200
                    assert reply.headers["content-type"].startswith("text/plain; version=0.0.4")
                    samples = parse(reply.text)
                    key = ("naq_worker_jobs_processed_total", frozenset({("worker", worker.id)}))
                    if samples.get(key) == 4:
                        break
                    await anyio.sleep(0.05)
            assert value(samples, "naq_worker_jobs_failed_total", worker=worker.id) == 1
            assert value(samples, "naq_worker_jobs_running", worker=worker.id) == 0
            assert value(samples, "naq_queue_workers", queue=queue_name) == 1
            assert value(samples, "naq_queue_workers", queue=idle) == 0
            assert value(samples, "naq_queue_jobs_pending", queue=idle) == 2
            assert value(samples, "naq_queue_jobs_pending", queue=queue_name) == 0
            assert value(samples, "naq_queue_jobs_in_progress", queue=queue_name) == 0
            assert value(samples, "naq_queue_dead_letters", queue=queue_name) == 1
            assert value(samples, "naq_queue_dead_letters", queue=idle) == 0
            assert value(samples, "naq_workers") >= 1
        await naq.Admin(client).purge(idle)  # leave nothing queued for other tests
