"""Operating naq from the CLI against the test server: workers, info, purge, jobs, shutdown."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import anyio
import pytest
from loguru import logger

import naq
import naq_sync
from tests import jobs
from tests.clitools import RunSignal, invoke, invoke_json, naq_process, wait_heartbeat
from tests.conftest import ROOT, running_worker

GRACE = 1.0


def test_operating_a_worker_from_the_cli(nats_url, queue_name):
    """enqueue, job, list-workers, info on a live worker; SIGKILL drops it within its TTL."""
    name = f"{queue_name}-a-worker-named-at-length-like-a-long-host-name.12345"
    worker = naq_process(
        "worker", queue_name, "--url", nats_url, "--heartbeat-interval", "0.5",
        "--log-format", "json", "--name", name,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    runs = RunSignal()
    try:
        first_log = json.loads(worker.stderr.readline())  # --log-format json: one object a line
        assert "consuming" in first_log["record"]["message"]
        url = ["--url", nats_url]

        result = invoke("enqueue", "tests.jobs:add", "1", "2", "-q", queue_name, "--wait", "30",
                        "--serializer", "json", *url)  # fmt: skip
        assert result.exit_code == 0, result.output
        job_id, value = result.stdout.split()
        assert value == "3"
        shown = invoke_json("job", job_id, *url)
        assert (shown["status"], shown["result"], shown["queue"]) == ("finished", 3, queue_name)
        assert "finished" in invoke("job", job_id, *url).stdout

        long_job = invoke("enqueue", "tests.jobs:signal_run", str(runs.port), "60",
                          "-q", queue_name, *url)  # fmt: skip
        assert long_job.exit_code == 0, long_job.output
        runs.wait()
        key, _ = wait_heartbeat(
            nats_url,
            lambda k, w: w is not None and w.queues == [queue_name] and w.running == 1,
        )

        [listed] = invoke_json("list-workers", "--queue", queue_name, *url)
        assert listed["pid"] == worker.pid
        assert listed["queues"] == [queue_name]
        assert (listed["backend"], listed["concurrency"], listed["state"]) == (
            "asyncio", 10, "running"
        )  # fmt: skip
        assert (listed["running"], listed["processed"], listed["failed"]) == (1, 1, 0)
        assert listed["last_heartbeat"] and listed["host"]
        assert listed["id"] == name
        # Not a terminal (a pipe): the table is as wide as it needs, nothing cut or wrapped.
        table = invoke("list-workers", "--queue", queue_name, *url).stdout
        assert "…" not in table
        header = next(line for line in table.splitlines() if " id " in line)
        for column in ("host", "pid", "queues", "backend", "running", "done", "heartbeat"):
            assert f" {column} " in header, table
        [row] = [line for line in table.splitlines() if name in line]
        assert queue_name in row and str(worker.pid) in row and "running" in row

        info = invoke_json("info", queue_name, *url)
        [queue] = info["queues"]
        assert (queue["pending"], queue["in_progress"]) == (0, 1)
        assert queue["workers"] == [listed["id"]]
        assert queue["throughput"] > 0  # one job done within the last minute
        assert queue_name in invoke("info", *url).stdout

        killed_at = time.monotonic()
        worker.kill()
        worker.wait(timeout=30)
        wait_heartbeat(nats_url, lambda k, w: k == key and w is None)
        assert time.monotonic() - killed_at < 3 * 0.5 + 5  # the TTL, plus a shared machine
        assert invoke_json("list-workers", "--queue", queue_name, *url) == []
    finally:
        runs.close()
        if worker.poll() is None:
            worker.kill()
        worker.wait()
        worker.stderr.close()


def test_purge_asks_first_then_reports_the_count(nats_url, queue_name):
    with naq_sync.Client(nats_url) as client:
        for n in range(3):
            client.enqueue("tests.jobs:add", n, n, queue=queue_name)
    url = ["--url", nats_url]
    refused = invoke("purge", queue_name, *url, input="n\n")
    assert refused.exit_code == 1
    assert invoke_json("info", queue_name, *url)["queues"][0]["pending"] == 3
    assert invoke_json("purge", queue_name, "--yes", *url) == {queue_name: 3}
    assert invoke_json("info", queue_name, *url)["queues"][0]["pending"] == 0
    said = invoke("purge", queue_name, "-y", *url)
    assert said.exit_code == 0
    assert f"purged 0 job(s) from {queue_name}" in said.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["job", "nosuchjob"], "no job 'nosuchjob'"),
        (["job", "bad.id"], "invalid job id 'bad.id'"),
        (["info", "--tls-cert", "c.pem"], "tls_cert and tls_key go together"),
        (["info", "--user", "u", "--token", "t"], "choose one way to authenticate"),
    ],
)
def test_errors_are_one_line(nats_url, args, message):
    result = invoke(*args, "--url", nats_url)
    assert result.exit_code == 1
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("naq: ")
    assert message in result.stderr
    assert "Traceback" not in result.output + result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["purge", "bad.queue", "--yes"], "invalid queue name 'bad.queue'"),
        (["enqueue", "nocolon"], "give the function as pkg.module:function"),
        (["enqueue", "tests.jobs:add", "-k", "1=2"], "--kwarg takes NAME=VALUE"),
        (["enqueue", "tests.jobs:add", "--queue", "a.b"], "invalid queue name 'a.b'"),
    ],
)
def test_bad_usage_exits_2_before_connecting(args, message):
    result = invoke(*args, "--url", "nats://127.0.0.1:1")  # nothing listens there
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert "Traceback" not in result.output + result.stderr


def test_connection_failure_is_one_line_from_a_real_process():
    result = subprocess.run(
        [sys.executable, "-m", "naq", "list-workers", "--url", "nats://127.0.0.1:1"],
        capture_output=True, text=True, timeout=60, cwd=ROOT,
    )  # fmt: skip
    assert result.returncode == 1
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("naq: cannot connect to NATS at nats://127.0.0.1:1: connection refused.")
    assert "`naq dev` or `naq server` starts one" in line


def test_a_queue_no_worker_consumes_is_shown_and_named_on_timeout(nats_url, queue_name):
    """A typo in a queue name hides nothing: info lists the queue, a wait says why it ran out."""
    typo = f"{queue_name}-high_1"
    url = ["--url", nats_url]
    waited = invoke("enqueue", "tests.jobs:add", "1", "2", "-q", typo, "--wait", "0.3", *url)
    assert waited.exit_code == 1
    [line] = waited.stderr.strip().splitlines()
    assert line.endswith(
        f"did not end within 0.3 s: it is still queued on {typo!r}, and no live worker "
        f"consumes that queue (start one: naq worker {typo})"
    )
    [queue] = [q for q in invoke_json("info", *url)["queues"] if q["name"] == typo]
    assert (queue["pending"], queue["in_progress"], queue["workers"]) == (1, 0, [])
    assert typo in invoke("info", *url).stdout


def test_cli_option_beats_env_beats_default(nats_url, queue_name):
    bad = {"NAQ_NATS_URL": "nats://127.0.0.1:1"}
    assert invoke("info", queue_name, "--url", nats_url, env=bad).exit_code == 0
    assert invoke("info", queue_name, env={"NAQ_NATS_URL": nats_url}).exit_code == 0
    assert invoke("info", queue_name, env=bad).exit_code == 1
    options = naq.ConnectOptions.from_env(
        {"NAQ_NATS_URL": "nats://a:1, nats://b:2", "NAQ_USER": "env", "NAQ_PASSWORD": "pw"},
        user="explicit",
    )
    assert options.servers == ("nats://a:1", "nats://b:2")
    assert (options.user, options.password) == ("explicit", "pw")
    assert naq.ConnectOptions.from_env({}).servers == ("nats://127.0.0.1:4222",)


def _graceful_worker(nats_url: str, queue: str, grace: float) -> subprocess.Popen:
    return naq_process(
        "worker", queue, "--url", nats_url, "--grace", str(grace), "--ack-wait", "60",
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def _read_until(process: subprocess.Popen, text: str) -> None:
    for line in process.stderr:
        if text in line:
            return
    raise AssertionError(f"worker exited before logging {text!r}")


def test_sigterm_lets_jobs_finish_within_grace_then_hands_them_back(nats_url, queue_name, tmp_path):
    """First signal: stop fetching, grace, hand back; a second signal: stop at once.

    The jobs sleep 60 s on their first run; the ack wait is 60 s, so a job that finishes on
    another worker within seconds was handed back, not redelivered after the ack wait.
    """
    runs = RunSignal()
    workers: list[subprocess.Popen] = []
    try:
        with naq_sync.Client(nats_url) as client:
            # one signal: the job outlives the grace, the worker exits within grace + a bit
            workers.append(_graceful_worker(nats_url, queue_name, GRACE))
            _read_until(workers[-1], "consuming")
            job = client.enqueue(
                "tests.jobs:signal_then_sleep_once",
                runs.port, str(tmp_path / "first"), 60, "again", queue=queue_name,
            )  # fmt: skip
            runs.wait()
            signalled = time.monotonic()
            workers[-1].send_signal(signal.SIGTERM)
            assert workers[-1].wait(timeout=30) == 0
            assert time.monotonic() - signalled < GRACE + 8
            assert "handing back 1 unfinished job(s)" in workers[-1].stderr.read()

            # a second signal stops at once, whatever the grace
            workers.append(_graceful_worker(nats_url, queue_name, 120))
            assert job.result(timeout=30) == "again"  # handed back: well within the ack wait
            assert job.get_status() is naq.JobStatus.FINISHED
            runs.wait()  # job's second run signalled too
            job2 = client.enqueue(
                "tests.jobs:signal_then_sleep_once",
                runs.port, str(tmp_path / "second"), 60, "twice", queue=queue_name,
            )  # fmt: skip
            runs.wait()
            workers[-1].send_signal(signal.SIGTERM)
            _read_until(workers[-1], "stopping")
            signalled = time.monotonic()
            workers[-1].send_signal(signal.SIGTERM)
            assert workers[-1].wait(timeout=30) == 0
            assert time.monotonic() - signalled < 8

            workers.append(_graceful_worker(nats_url, queue_name, GRACE))
            assert job2.result(timeout=30) == "twice"
            assert job2.refresh().attempts == 2
    finally:
        runs.close()
        for process in workers:
            if process.poll() is None:
                process.terminate()
            process.wait(timeout=30)
            print(f"worker {process.pid} stderr:", process.stderr.read())  # shown on failure
            process.stderr.close()


def test_library_never_replaces_the_hosts_log_handlers(nats_url, queue_name):
    seen: list[str] = []
    handler = logger.add(seen.append, format="{name}: {message}")
    try:
        with naq_sync.Client(nats_url) as client:
            client.enqueue("tests.jobs:add", 1, 2, queue=queue_name)
        logger.info("host still logs")
    finally:
        logger.remove(handler)
    assert any("host still logs" in line for line in seen)
    assert not any(line.startswith("naq") for line in seen)  # naq is silent unless enabled


@pytest.mark.anyio
async def test_admin_from_code(client, nats_url, queue_name, anyio_backend):
    """naq.Admin on both backends: the first heartbeat is written before run() reports started."""
    admin = naq.Admin(client)
    other = queue_name + "-idle"
    await client.enqueue(jobs.add, 1, 2, queue=other)
    async with running_worker(nats_url, [queue_name], heartbeat_interval=0.5) as worker:
        [listed] = [w for w in await admin.workers() if w.id == worker.id]
        assert listed.queues == [queue_name]
        assert listed.backend == anyio_backend
        [info] = await admin.queues([queue_name])
        assert info.workers == [worker.id]
    assert worker.id not in {w.id for w in await admin.workers()}  # deleted at a clean exit
    assert await admin.purge(other) == 1
    assert (await admin.queues([other]))[0].pending == 0


@pytest.mark.anyio
async def test_live_counters_follow_jobs_within_a_busy_beat(client, nats_url, queue_name):
    """With a 30 s heartbeat interval, jobs that ran show in the worker's heartbeat within a
    few busy beats (BUSY_BEAT, 0.5 s), not at the next interval (issue 20: the dashboard
    showed 0 processed right after a worker ran two jobs)."""
    admin = naq.Admin(client)
    async with running_worker(nats_url, [queue_name], heartbeat_interval=30) as worker:
        done = [await client.enqueue(jobs.add, i, 1, queue=queue_name) for i in range(2)]
        failing = await client.enqueue(jobs.fail, "kaput", queue=queue_name)
        assert [await job.result(timeout=20) for job in done] == [1, 2]
        with pytest.raises(naq.JobFailed):
            await failing.result(timeout=20)
        with anyio.fail_after(5):  # the interval is 30 s: only busy beats can show them
            while True:
                [listed] = [w for w in await admin.workers() if w.id == worker.id]
                if listed.processed == 3:
                    break
                await anyio.sleep(0.05)
        assert (listed.processed, listed.failed, listed.running) == (3, 1, 0)
        assert sum(listed.throughput.values()) > 0  # jobs/s over the last minute
