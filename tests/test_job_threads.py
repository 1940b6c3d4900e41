"""JobThreads, the worker's threads for ``def`` jobs, without a server, on both backends."""

from __future__ import annotations

import contextvars
import threading

import anyio
import pytest

from naq._job_threads import JobThreads, ThreadJob

pytestmark = pytest.mark.anyio

_var: contextvars.ContextVar[str] = contextvars.ContextVar("test_var", default="unset")


def _job(func, *args, **kwargs) -> ThreadJob:
    return ThreadJob(func, args, kwargs, contextvars.copy_context())


class Gate:
    """Blocks jobs until opened; counts how many are inside at once."""

    def __init__(self) -> None:
        self.opened = threading.Event()
        self._lock = threading.Lock()
        self.inside = 0
        self.most_inside = 0
        self.entered = threading.Semaphore(0)

    def __call__(self, value: object = None) -> object:
        with self._lock:
            self.inside += 1
            self.most_inside = max(self.most_inside, self.inside)
        self.entered.release()
        try:
            if not self.opened.wait(30):
                raise TimeoutError("the test never opened the gate")
        finally:
            with self._lock:
                self.inside -= 1
        return value

    async def wait_entered(self, count: int) -> None:
        for _ in range(count):
            await anyio.to_thread.run_sync(self.entered.acquire)


async def test_at_most_limit_jobs_run_at_once():
    threads = JobThreads(3)
    gate = Gate()
    results: list[object] = []

    async def submit(i: int) -> None:
        results.append((await threads.run(_job(gate, i))).value)

    async with anyio.create_task_group() as tg:
        for i in range(10):
            tg.start_soon(submit, i)
        await gate.wait_entered(3)
        assert gate.inside == 3
        assert threads.thread_count == 3
        gate.opened.set()
    threads.close()
    assert sorted(results) == list(range(10))
    assert gate.most_inside == 3


async def test_a_batch_of_quick_jobs_wakes_the_loop_less_than_once_per_job():
    threads = JobThreads(8)
    wakes = 0
    call_soon = threads._call_soon

    def counting(callback):
        nonlocal wakes
        wakes += 1
        return call_soon(callback)

    threads._call_soon = counting
    idents: list[int] = []

    async def submit() -> None:
        idents.append((await threads.run(_job(threading.get_ident))).value)

    async with anyio.create_task_group() as tg:
        for _ in range(500):
            tg.start_soon(submit)
    threads.close()
    assert len(idents) == 500
    assert wakes < 500  # outcomes come back in batches
    assert threads.limit >= len(set(idents))


async def test_job_sees_the_submitters_context_and_cannot_change_it():
    threads = JobThreads(1)
    _var.set("from the task")

    def read_and_set() -> str:
        seen = _var.get()
        _var.set("from the thread")
        return seen

    outcome = await threads.run(_job(read_and_set))
    threads.close()
    assert outcome.value == "from the task"
    assert _var.get() == "from the task"


async def test_errors_and_system_exit_are_outcomes_and_the_thread_goes_on():
    threads = JobThreads(1)

    def fail() -> None:
        raise ValueError("boom")

    def leave() -> None:
        raise SystemExit(3)

    failed = await threads.run(_job(fail))
    exited = await threads.run(_job(leave))
    after = await threads.run(_job(lambda: "still here"))
    threads.close()
    assert failed.error is not None and failed.error.type == "ValueError"
    assert "boom" in failed.error.traceback
    assert exited.error is not None and exited.error.type == "SystemExit"
    assert after.value == "still here"


async def test_an_abandoned_job_keeps_its_thread_and_another_takes_new_jobs():
    threads = JobThreads(1)
    gate = Gate()
    with anyio.move_on_after(0.2) as scope:
        await threads.run(_job(gate))
    assert scope.cancelled_caught
    await gate.wait_entered(1)
    # the stuck thread is retired: a new one takes jobs, so the bound still holds
    outcome = await threads.run(_job(lambda: "replacement"))
    assert outcome.value == "replacement"
    assert threads.thread_count == 1
    gate.opened.set()
    threads.close()


async def test_a_job_abandoned_before_a_thread_took_it_never_runs():
    threads = JobThreads(1)
    gate = Gate()
    ran = threading.Event()
    async with anyio.create_task_group() as tg:
        tg.start_soon(threads.run, _job(gate))
        await gate.wait_entered(1)
        with anyio.move_on_after(0.1):
            await threads.run(_job(ran.set))
        gate.opened.set()
    assert (await threads.run(_job(lambda: "after"))).value == "after"
    threads.close()
    assert not ran.is_set()


async def test_calls_from_a_job_reach_the_loop_before_its_outcome():
    threads = JobThreads(2)
    seen: list[str] = []

    def report() -> str:
        for step in range(3):
            threads.call_in_loop(lambda step=step: seen.append(f"progress {step}"))
        return "done"

    outcome = await threads.run(_job(report))
    seen.append(f"outcome {outcome.value}")
    threads.close()
    assert seen == ["progress 0", "progress 1", "progress 2", "outcome done"]


async def test_close_ends_idle_threads():
    threads = JobThreads(2)
    thread: list[threading.Thread] = []
    await threads.run(_job(lambda: thread.append(threading.current_thread())))
    threads.close()
    await anyio.to_thread.run_sync(thread[0].join, 10)
    assert not thread[0].is_alive()
    assert thread[0].daemon
    with pytest.raises(RuntimeError, match="closed"):
        await threads.run(_job(lambda: None))


async def test_submitted_jobs_end_on_the_loop_without_a_waiter():
    threads = JobThreads(2)
    loop_thread = threading.current_thread()
    ended: list[tuple[object, bool]] = []
    all_ended = anyio.Event()

    def done(job: ThreadJob) -> None:
        assert job.outcome is not None
        ended.append((job.outcome.value, threading.current_thread() is loop_thread))
        if len(ended) == 20:
            all_ended.set()

    for n in range(20):
        threads.submit(_job(lambda n=n: n * n), done)
    with anyio.fail_after(10):
        await all_ended.wait()
    threads.close()
    assert sorted(value for value, _ in ended) == [n * n for n in range(20)]
    assert all(on_loop for _, on_loop in ended)


async def test_an_abandoned_submitted_job_never_ends():
    threads = JobThreads(1)
    gate = Gate()
    ended: list[ThreadJob] = []
    ran_in: list[threading.Thread] = []
    stuck = _job(lambda: ran_in.append(threading.current_thread()) or gate("stuck"))
    threads.submit(stuck, ended.append)
    await gate.wait_entered(1)
    threads.abandon(stuck)  # retired while it runs: its outcome is dropped
    gate.opened.set()
    await anyio.to_thread.run_sync(ran_in[0].join, 10)  # it returned, and its thread ended
    # anything its thread had posted would reach the loop before this job's outcome
    assert (await threads.run(_job(lambda: "after"))).value == "after"
    threads.close()
    assert ended == []


def test_limit_must_be_positive():
    with pytest.raises(ValueError, match="limit"):
        JobThreads(0)
