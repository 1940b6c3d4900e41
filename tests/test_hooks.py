"""Worker hooks (``naq.WorkerHooks``) in a real worker, on both backends, for def and async jobs:
where each kind runs, in what order, and what a raising hook does to the job and the worker."""

from __future__ import annotations

import threading

import anyio
import pytest

import naq
from naq._hooks import HookError, WorkerHooks, combine_hooks
from tests import jobs
from tests.conftest import running_worker

pytestmark = pytest.mark.anyio


class Log:
    """What the hooks saw: (hook, job id, thread ident) in order."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str, int]] = []

    def add(self, kind: str, record: naq.JobRecord) -> None:
        assert naq.current_job().id == record.id  # hooks run inside the job's context
        self.events.append((kind, record.id, threading.get_ident()))

    def of(self, job_id: str) -> list[tuple[str, int]]:
        return [(kind, ident) for kind, seen, ident in self.events if seen == job_id]

    def hooks(self) -> WorkerHooks:
        async def async_before(record: naq.JobRecord) -> None:
            await anyio.sleep(0)
            self.add("async_before", record)

        async def async_after(record: naq.JobRecord) -> None:
            await anyio.sleep(0)
            self.add("async_after", record)

        return WorkerHooks(
            before_job=[async_before, lambda r: self.add("sync_before", r)],
            after_job=[lambda r: self.add("sync_after", r), async_after],
        )


@pytest.mark.parametrize("kind", ["def", "async"])
async def test_job_hooks_run_in_the_jobs_thread_and_on_the_loop(client, nats_url, queue_name, kind):
    log = Log()
    loop = threading.get_ident()
    func = jobs.thread_ident_after if kind == "def" else jobs.async_thread_ident
    args = (0,) if kind == "def" else ()
    async with running_worker(nats_url, [queue_name], hooks=log.hooks()):
        job = await client.enqueue(func, *args, queue=queue_name)
        ran_on = await job.result(timeout=20)
    sync_on = ran_on if kind == "def" else loop  # sync hooks run where the job runs
    assert (kind == "def") == (ran_on != loop)
    assert log.of(job.id) == [
        ("async_before", loop),
        ("sync_before", sync_on),
        ("sync_after", sync_on),
        ("async_after", loop),
    ]


async def test_startup_and_shutdown_hooks(client, nats_url, queue_name):
    seen: list[str] = []

    async def async_startup(worker: naq.Worker) -> None:
        await anyio.sleep(0)
        seen.append(f"async startup {worker.id}")

    def failing_shutdown(worker: naq.Worker) -> None:
        seen.append("failing shutdown")
        raise RuntimeError("logged, not raised")

    hooks = WorkerHooks(
        on_startup=[lambda w: seen.append("startup"), async_startup],
        on_shutdown=[failing_shutdown, lambda w: seen.append("shutdown")],
    )
    async with running_worker(nats_url, [queue_name], hooks=hooks, name="hooked") as worker:
        assert seen == ["startup", "async startup hooked"]
        job = await client.enqueue(jobs.add, 1, 2, queue=queue_name)
        assert await job.result(timeout=20) == 3
        assert worker._jobs.hooks is None  # no job hooks: the job path is the plain one
    assert seen[2:] == ["failing shutdown", "shutdown"]


@pytest.mark.parametrize("kind", ["def", "async"])
async def test_a_raising_startup_hook_stops_the_worker_before_it_consumes(
    client, nats_url, queue_name, kind
):
    shutdowns: list[object] = []

    async def async_boom(worker: naq.Worker) -> None:
        raise RuntimeError("no pool today")

    def boom(worker: naq.Worker) -> None:
        raise RuntimeError("no pool today")

    job = await client.enqueue(jobs.add, 1, 2, queue=queue_name)
    hooks = WorkerHooks(
        on_startup=boom if kind == "def" else async_boom, on_shutdown=shutdowns.append
    )
    worker = naq.Worker([queue_name], url=nats_url, hooks=hooks)
    with pytest.raises(
        HookError, match=r"on_startup hook .*boom raised RuntimeError: no pool today"
    ):
        await worker.run()
    assert shutdowns == []
    assert await job.get_status() is naq.JobStatus.QUEUED  # nothing was taken


@pytest.mark.parametrize("kind", ["def", "async"])
@pytest.mark.parametrize("hook_kind", ["sync", "async"])
async def test_a_raising_before_hook_fails_the_run_and_the_retry_policy_applies(
    client, nats_url, queue_name, kind, hook_kind
):
    failures: list[tuple[str, BaseException]] = []
    afters: list[int] = []

    def check(record: naq.JobRecord) -> None:
        if record.attempts == 1:
            raise ConnectionError("database is restarting")

    async def async_check(record: naq.JobRecord) -> None:
        check(record)

    hooks = WorkerHooks(
        before_job=check if hook_kind == "sync" else async_check,
        after_job=lambda r: afters.append(r.attempts),
        on_failure=lambda r, e: failures.append((r.id, e)),
    )
    func = jobs.add if kind == "def" else jobs.async_add
    async with running_worker(nats_url, [queue_name], hooks=hooks):
        retried = await client.enqueue(
            func, 1, 2, queue=queue_name, retry=naq.Retry(max=1, interval=0)
        )
        assert await retried.result(timeout=20) == 3
        once = await client.enqueue(func, 1, 2, queue=queue_name)
        with pytest.raises(naq.JobFailed) as failed:
            await once.result(timeout=20)
    assert (await retried.refresh()).attempts == 2
    assert failed.value.exc_type == "HookError"
    assert "before_job hook" in failed.value.message
    assert "ConnectionError: database is restarting" in failed.value.message
    assert "ConnectionError" in failed.value.traceback  # the hook's own traceback, as cause
    assert [(job_id, type(e)) for job_id, e in failures] == [
        (retried.id, HookError),
        (once.id, HookError),
    ]
    assert isinstance(failures[0][1].__cause__, ConnectionError)
    assert afters == [1, 2, 1]  # after_job runs after every run, failed or not


@pytest.mark.parametrize("kind", ["def", "async"])
async def test_raising_after_and_failure_hooks_leave_the_outcome_alone(
    client, nats_url, queue_name, kind
):
    failures: list[BaseException] = []

    def after(record: naq.JobRecord) -> None:
        raise RuntimeError("after hook bug")

    async def async_after(record: naq.JobRecord) -> None:
        raise RuntimeError("async after hook bug")

    def on_failure(record: naq.JobRecord, error: BaseException) -> None:
        failures.append(error)
        raise RuntimeError("failure hook bug")

    async def async_on_failure(record: naq.JobRecord, error: BaseException) -> None:
        failures.append(error)
        raise RuntimeError("async failure hook bug")

    hooks = WorkerHooks(after_job=[after, async_after], on_failure=[on_failure, async_on_failure])
    ok, bad = (jobs.add, jobs.fail) if kind == "def" else (jobs.async_add, jobs.async_fail)
    async with running_worker(nats_url, [queue_name], hooks=hooks):
        job = await client.enqueue(ok, 2, 3, queue=queue_name)
        assert await job.result(timeout=20) == 5
        failing = await client.enqueue(bad, "its own error", queue=queue_name)
        with pytest.raises(naq.JobFailed) as failed:
            await failing.result(timeout=20)
        again = await client.enqueue(ok, 1, 1, queue=queue_name)  # the worker lives on
        assert await again.result(timeout=20) == 2
    assert (failed.value.exc_type, failed.value.message) == ("ValueError", "its own error")
    assert [type(e) for e in failures] == [ValueError, ValueError]
    assert all(str(e) == "its own error" for e in failures)


@pytest.mark.parametrize("kind", ["def", "async"])
async def test_a_timeout_is_a_failure_for_the_hooks(client, nats_url, queue_name, kind):
    failures: list[tuple[BaseException, int]] = []
    hooks = WorkerHooks(on_failure=lambda r, e: failures.append((e, threading.get_ident())))
    func = jobs.sync_sleep if kind == "def" else jobs.async_sleep
    async with running_worker(nats_url, [queue_name], hooks=hooks):
        job = await client.enqueue(func, 0.5, queue=queue_name, job_timeout=0.1)
        with pytest.raises(naq.JobFailed, match="timeout"):
            await job.result(timeout=20)
    [(error, ident)] = failures
    assert isinstance(error, TimeoutError)
    assert ident == threading.get_ident()  # a def job's thread is still busy: on the loop


async def test_combined_hooks_nest():
    calls: list[str] = []

    def hooks(name: str) -> WorkerHooks:
        return WorkerHooks(
            on_startup=lambda w: calls.append(f"{name} startup"),
            on_shutdown=lambda w: calls.append(f"{name} shutdown"),
            before_job=lambda r: calls.append(f"{name} before"),
            after_job=lambda r: calls.append(f"{name} after"),
        )

    combined = combine_hooks([hooks("outer"), hooks("inner")])
    assert combined is not None
    assert combine_hooks([]) is None
    assert combine_hooks(WorkerHooks()) is None
    for group in (
        combined.on_startup,
        combined.before_job,
        combined.after_job,
        combined.on_shutdown,
    ):
        for hook in group:
            hook(None)
    assert calls == [
        "outer startup", "inner startup", "outer before", "inner before",
        "inner after", "outer after", "inner shutdown", "outer shutdown",
    ]  # fmt: skip
    with pytest.raises(TypeError, match="callable"):
        WorkerHooks(before_job=["not callable"])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="WorkerHooks"):
        naq.Worker(hooks=[object()])  # type: ignore[list-item]
