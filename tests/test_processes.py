"""Worker processes (``--processes``, recycling, ``--reload``): real supervisors, real children.

Each test starts ``naq worker`` in a subprocess against the suite's nats-server and kills or
signals real processes. Runs are counted in a marker file (one line, the pid, per run of a
job body), so "nothing lost, nothing run twice" is checked on what ran, not on timing.
Waits poll the worker registry or the marker with a deadline; nothing sleeps a fixed time.
"""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import anyio
import pytest

import naq
import naq_sync
from naq._heartbeat import WorkerInfo
from tests import jobs
from tests.clitools import invoke, invoke_json
from tests.conftest import ROOT

T = TypeVar("T")

pytestmark = pytest.mark.slow

_held: list[bytes] = []


# Job functions: imported by the worker processes as tests.test_processes.


def record_pid(marker: str) -> int:
    """Append this process's pid to ``marker`` (one line per run); return it."""
    with Path(marker).open("a") as f:
        f.write(f"{os.getpid()}\n")
    return os.getpid()


def hold_first_run(marker: str, seconds: float) -> int:
    """``record_pid``; the first run of all then sleeps ``seconds`` (to be killed meanwhile)."""
    first = not Path(marker).exists()
    pid = record_pid(marker)
    if first:
        time.sleep(seconds)
    return pid


def hold_memory(marker: str, mib: int, settle: float) -> int:
    """``record_pid``, then allocate ``mib`` MiB and keep it (written, so it is resident),
    and wait ``settle`` seconds (longer than the worker's 0.1 s between RSS reads)."""
    pid = record_pid(marker)
    _held.append(b"\x01" * (mib << 20))
    time.sleep(settle)
    return pid


# Helpers.


def runs(marker: Path) -> list[int]:
    """The pids that ran a job body, one per run, in order."""
    return [int(line) for line in marker.read_text().split()] if marker.exists() else []


def wait_until(check: Callable[[], T | None], timeout: float = 30, what: str = "") -> T:
    """Poll ``check`` until it returns something true; that value."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what or check}")
        time.sleep(0.05)


def children(url: str, parent: int) -> list[WorkerInfo]:
    """Live workers (by the registry) whose supervisor is ``parent``."""
    with naq_sync.Client(url) as client:
        return [w for w in naq_sync.Admin(client).workers() if w.parent == parent]


def wait_for_children(
    url: str, parent: int, count: int, exclude: frozenset[int] = frozenset(), timeout: float = 30
) -> list[WorkerInfo]:
    """Exactly ``count`` live children of ``parent``, none of them in ``exclude``."""

    def found() -> list[WorkerInfo] | None:
        live = children(url, parent)
        fresh = [w for w in live if w.pid not in exclude]
        return live if len(live) == count and len(fresh) == count else None

    return wait_until(found, timeout, f"{count} worker processes of {parent}")


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@contextmanager
def supervisor(url: str, queue: str, log: Path, *options: str) -> Iterator[subprocess.Popen[bytes]]:
    """``naq worker QUEUE --url URL OPTIONS`` from the repo root, its output in ``log``;
    stopped (SIGTERM, then SIGKILL) if still running at the end."""
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "naq", "worker", queue, "--url", url,
             "--heartbeat-interval", "0.5", *options],
            cwd=ROOT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            stdout=out,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            yield process
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
                    raise


# Tests.


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_killed_child_is_replaced_and_its_job_finishes_on_another(
    nats_url, queue_name, tmp_path, backend
):
    marker = tmp_path / "runs"
    log = tmp_path / "log"
    with supervisor(nats_url, queue_name, log, "--processes", "2", "--ack-wait", "2",
                    "--backend", backend) as sup:  # fmt: skip
        first = wait_for_children(nats_url, sup.pid, 2)
        assert {w.backend for w in first} == {backend}
        with naq_sync.Client(nats_url) as client:
            job = client.enqueue(hold_first_run, str(marker), 120, queue=queue_name)
            victim = wait_until(lambda: runs(marker), what="the job to start")[0]
            assert victim in {w.pid for w in first}
            os.kill(victim, signal.SIGKILL)
            finisher = job.result(timeout=30)
        assert finisher != victim
        assert runs(marker) == [victim, finisher]  # killed once, then run once elsewhere
        # The slot of the killed child has a new child: two live children, neither the victim.
        replaced = wait_for_children(nats_url, sup.pid, 2, exclude=frozenset({victim}))
        assert finisher in {w.pid for w in replaced}
        assert sup.poll() is None
    assert "was killed by SIGKILL" in log.read_text()


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_sigterm_stops_the_whole_tree_gracefully_within_the_grace(
    nats_url, queue_name, tmp_path, backend
):
    marker = tmp_path / "runs"
    log = tmp_path / "log"
    grace = 20.0
    with supervisor(nats_url, queue_name, log, "--processes", "2", "--grace", str(grace),
                    "--backend", backend) as sup:  # fmt: skip
        kids = wait_for_children(nats_url, sup.pid, 2)
        with naq_sync.Client(nats_url) as client:
            job = client.enqueue(hold_first_run, str(marker), 1.0, queue=queue_name)
            runner = wait_until(lambda: runs(marker), what="the job to start")[0]
            started = time.monotonic()
            sup.send_signal(signal.SIGTERM)
            code = sup.wait(timeout=grace + 10)
            elapsed = time.monotonic() - started
            # The running job finished (it was not handed back and run again).
            assert job.result(timeout=5) == runner
            assert job.get_status() is naq.JobStatus.FINISHED
    assert code == 0, log.read_text()
    assert elapsed < grace
    assert runs(marker) == [runner]
    assert not [w.pid for w in kids if alive(w.pid)]
    assert children(nats_url, sup.pid) == []  # clean exits removed their heartbeats
    assert "all worker processes stopped" in log.read_text()


def test_children_recycled_after_max_jobs_lose_nothing_and_repeat_nothing(
    nats_url, queue_name, tmp_path
):
    marker = tmp_path / "runs"
    log = tmp_path / "log"
    total, limit = 9, 3
    with supervisor(nats_url, queue_name, log, "--processes", "2", "--concurrency", "2",
                    "--max-jobs-per-child", str(limit), "--backend", "trio") as sup:  # fmt: skip
        wait_for_children(nats_url, sup.pid, 2)
        with naq_sync.Client(nats_url) as client:
            queued = [client.enqueue(record_pid, str(marker), queue=queue_name)
                      for _ in range(total)]  # fmt: skip
            results = [job.result(timeout=60) for job in queued]
        per_child = collections.Counter(results)
        assert sorted(runs(marker)) == sorted(results)  # every job ran, and ran once
        assert max(per_child.values()) <= limit
        assert len(per_child) >= total // limit
        wait_for_children(nats_url, sup.pid, 2)  # recycled children were replaced
    assert "recycled: replacing it" in log.read_text()


def test_child_over_its_memory_limit_is_recycled(nats_url, queue_name, tmp_path):
    marker = tmp_path / "runs"
    log = tmp_path / "log"
    with supervisor(nats_url, queue_name, log, "--concurrency", "1",
                    "--max-memory-per-child", "120") as sup:  # fmt: skip
        (first,) = wait_for_children(nats_url, sup.pid, 1)
        with naq_sync.Client(nats_url) as client:
            light = [client.enqueue(record_pid, str(marker), queue=queue_name) for _ in range(2)]
            heavy = client.enqueue(hold_memory, str(marker), 150, 0.3, queue=queue_name)
            after = client.enqueue(record_pid, str(marker), queue=queue_name)
            pids = [job.result(timeout=60) for job in [*light, heavy, after]]
        # Under the limit the child keeps taking jobs; past it (after the heavy job) it is
        # replaced, and the next job runs on the new child. Each job ran once.
        assert pids[:3] == [first.pid] * 3
        assert pids[3] != first.pid
        assert runs(marker) == pids
        assert wait_until(lambda: not alive(first.pid), what="the recycled child to exit")
    text = log.read_text()
    assert "(max_memory_mib)" in text
    assert "recycled: replacing it" in text


def test_reload_restarts_the_workers_and_runs_the_new_code(nats_url, queue_name, tmp_path):
    module = f"reloaded_{uuid.uuid4().hex[:8]}"
    source = tmp_path / f"{module}.py"
    source.write_text("def version():\n    return 'one'\n")
    log = tmp_path / "log"
    with supervisor(nats_url, queue_name, log, "--reload", "--path", str(tmp_path)) as sup:
        (old,) = wait_for_children(nats_url, sup.pid, 1)
        with naq_sync.Client(nats_url) as client:
            assert client.enqueue(f"{module}:version", queue=queue_name).result(timeout=30) == "one"
            source.write_text("def version():\n    return 'version two'\n")
            (new,) = wait_for_children(nats_url, sup.pid, 1, exclude=frozenset({old.pid}))
            job = client.enqueue(f"{module}:version", queue=queue_name)
            assert job.result(timeout=30) == "version two"
        assert not alive(old.pid)
        assert new.parent == sup.pid
    assert f"reloading: {module}.py changed" in log.read_text()


def test_children_failing_at_start_make_the_supervisor_give_up(nats_url, queue_name, tmp_path):
    log = tmp_path / "log"
    with supervisor(nats_url, queue_name, log, "--processes", "2",
                    "--hooks", "no_such_module_here:hooks") as sup:  # fmt: skip
        code = sup.wait(timeout=60)
    text = log.read_text()
    assert code == 1, text
    assert "failed at start 5 times in a row" in text
    assert "naq: " in text  # the one-line error


def test_list_workers_shows_the_supervisor_as_parent(nats_url, queue_name, tmp_path):
    with supervisor(nats_url, queue_name, tmp_path / "log", "--processes", "2") as sup:
        wait_for_children(nats_url, sup.pid, 2)
        listed = invoke_json("list-workers", "--url", nats_url, "--queue", queue_name)
        assert [w["parent"] for w in listed] == [sup.pid, sup.pid]
        table = invoke("list-workers", "--url", nats_url, "--queue", queue_name).stdout
        assert "parent" in table
        assert table.count(str(sup.pid)) == 2


def test_dev_runs_worker_processes_and_stops_them_on_ctrl_c(tmp_path):
    log = tmp_path / "log"
    with log.open("wb") as out:
        dev = subprocess.Popen(
            [sys.executable, "-m", "naq", "dev", "--port", "-1", "--store-dir",
             str(tmp_path / "store"), "--processes", "2", "--heartbeat-interval", "0.5"],
            cwd=ROOT,
            env={**os.environ, "PYTHONUNBUFFERED": "1", "NAQ_DASHBOARD_PORT": "0"},
            stdout=out,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        said = wait_until(lambda: log.read_text() if "nats-server at " in log.read_text() else None)
        url = said.split("nats-server at ")[1].split()[0]
        assert "2 worker process(es) on default" in said
        kids = wait_for_children(url, dev.pid, 2)
        with naq_sync.Client(url) as client:
            assert client.enqueue(jobs.add, 1, 2).result(timeout=30) == 3
        dev.send_signal(signal.SIGINT)
        assert dev.wait(timeout=30) == 0, log.read_text()
    finally:
        if dev.poll() is None:
            dev.kill()
            dev.wait()
    assert not [w.pid for w in kids if alive(w.pid)]


def test_bad_process_options_are_usage_errors(nats_url):
    for option in (["--processes", "0"], ["--max-jobs-per-child", "0"],
                   ["--max-memory-per-child", "0"]):  # fmt: skip
        result = invoke("worker", "--url", nats_url, *option)
        assert result.exit_code == 2, result.output
        assert option[0] in result.stderr


@pytest.mark.anyio
async def test_worker_stops_by_itself_after_max_jobs(nats_url, queue_name):
    async with naq.Client(nats_url) as client:
        queued = [await client.enqueue(jobs.add, i, 1, queue=queue_name) for i in range(5)]
        worker = naq.Worker([queue_name], url=nats_url, max_jobs=3, concurrency=2,
                            poll_interval=0.1)  # fmt: skip
        with anyio.fail_after(30):
            await worker.run()  # returns by itself, like a burst
        assert worker.limit_reached == "took 3 job(s) (max_jobs)"
        statuses = [await job.get_status() for job in queued]
    assert statuses.count(naq.JobStatus.FINISHED) == 3
    assert statuses.count(naq.JobStatus.QUEUED) == 2


def test_worker_rejects_bad_limits():
    with pytest.raises(naq.ConfigurationError, match="max_jobs"):
        naq.Worker(max_jobs=0)
    with pytest.raises(naq.ConfigurationError, match="max_memory_mib"):
        naq.Worker(max_memory_mib=-1)
