"""``JobThreads``: the worker's bounded set of threads for ``def`` jobs, crossing in batches.

A ``def`` job cannot run on the event loop, so it runs in one of at most ``limit`` long-lived
threads. The event loop hands a job over by appending it to a deque (a parked thread is
woken only when no woken thread is yet to take work), and threads hand outcomes back through
another deque that the loop drains in one callback: a batch of quick jobs costs one wake-up
of the loop, not one per job, and is run by one or two threads rather than one each.

Threads start on demand and are parked when idle. Python cannot stop a thread: a job whose
wait was abandoned (its timeout, or the worker's grace deadline) keeps its thread, which is
retired from the pool and replaced, so ``limit`` threads keep taking jobs; a retired thread
exits once its job returns, and its outcome is dropped. Threads are daemons, so a job left
running never keeps the process alive.
"""

from __future__ import annotations

import asyncio
import collections
import contextvars
import threading
from collections.abc import Callable
from typing import Any

import sniffio
from loguru import logger

from ._outcome import Outcome, error_info

__all__ = ["JobThreads", "ThreadJob", "loop_caller"]

LoopCaller = Callable[[Callable[[], object]], object]
"""Schedules a callback on the event loop from any thread, without waiting for it."""


def loop_caller() -> LoopCaller:
    """The current event loop's thread-safe ``call soon``: asyncio's or Trio's."""
    if sniffio.current_async_library() == "trio":
        import trio

        return trio.lowlevel.current_trio_token().run_sync_soon
    return asyncio.get_running_loop().call_soon_threadsafe


async def _wait_asyncio(job: ThreadJob) -> None:
    """Sleep until ``job`` is finished: a bare future (an anyio Event costs twice as much)."""
    future = asyncio.get_running_loop().create_future()
    job._wake = lambda: future.done() or future.set_result(None)
    await future


async def _wait_trio(job: ThreadJob) -> None:
    """Sleep until ``job`` is finished: the task itself is rescheduled, no Event."""
    from trio import lowlevel

    task = lowlevel.current_task()
    waiting = True  # the wake and the abort both run on the Trio thread

    def wake() -> None:
        if waiting:
            lowlevel.reschedule(task)

    def abort(_: object) -> lowlevel.Abort:
        nonlocal waiting
        waiting = False
        return lowlevel.Abort.SUCCEEDED

    job._wake = wake
    await lowlevel.wait_task_rescheduled(abort)


class ThreadJob:
    """One call handed to the threads, and what the event loop knows of it."""

    __slots__ = (
        "_wake", "abandoned", "args", "context", "func", "kwargs", "on_start", "outcome", "thread"
    )  # fmt: skip

    def __init__(
        self,
        func: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        context: contextvars.Context,
        on_start: Callable[[], object] | None = None,
    ) -> None:
        self.func = func
        self.on_start = on_start
        """Called on the loop, in order with the outcomes, when a thread takes the job."""
        self.args = args
        self.kwargs = kwargs
        self.context = context
        self.outcome: Outcome | None = None
        self.thread: _JobThread | None = None
        """The thread running it, while one does."""
        self.abandoned = False
        self._wake: Callable[[], object] | None = None
        """Wakes the task waiting for it; set when it is handed over."""

    def _finish(self, outcome: Outcome) -> None:
        # Dropping the wake breaks the cycle a submitted job's wake makes (it calls back
        # with the job): without it, each def job's objects were left to the cyclic GC,
        # whose passes cost more than all the rest of the job's hand-over.
        wake, self._wake = self._wake, None
        if self.abandoned:
            return  # given up on after the thread posted it: nobody waits for it
        self.outcome = outcome
        if wake is not None:
            wake()


class _JobThread:
    """A pool thread: parked on its own lock when idle (the cheapest wait CPython has)."""

    __slots__ = ("park", "retired")

    def __init__(self) -> None:
        self.park = threading.Lock()
        self.park.acquire()
        self.retired = False


class JobThreads:
    """At most ``limit`` threads taking ``def`` jobs; made and used on one event loop."""

    def __init__(self, limit: int, name: str = "naq-job") -> None:
        if limit < 1:
            raise ValueError(f"limit must be >= 1, got {limit}")
        self.limit = limit
        self._name = name
        self._call_soon = loop_caller()
        self._wait = _wait_trio if sniffio.current_async_library() == "trio" else _wait_asyncio
        self._lock = threading.Lock()
        self._jobs: collections.deque[ThreadJob] = collections.deque()
        self._idle: list[_JobThread] = []
        self._live = 0  # threads not retired, running or idle
        self._waking = 0  # threads woken or started that have not taken a job yet
        self._closed = False
        self._posted: collections.deque[Callable[[], object]] = collections.deque()
        self._drain_scheduled = False

    @property
    def thread_count(self) -> int:
        """Threads that take jobs now (retired ones still running are not counted)."""
        return self._live

    async def run(self, job: ThreadJob) -> Outcome:
        """Run ``job`` in a thread and wait for its Outcome.

        Cancelled (a timeout, a cancel scope), the job is abandoned: dropped if no thread
        took it yet, else left to finish in its thread, which is retired and replaced.
        """
        self._queue(job)
        try:
            # The outcome comes back through the loop, so it cannot arrive before this waits.
            await self._wait(job)
        except BaseException:
            self.abandon(job)
            raise
        assert job.outcome is not None
        return job.outcome

    def submit(self, job: ThreadJob, done: Callable[[ThreadJob], object]) -> None:
        """Run ``job`` in a thread without waiting: ``done(job)`` is called on the loop with
        its outcome set, in order with the other outcomes, unless it was abandoned first."""
        job._wake = lambda: done(job)
        self._queue(job)

    def _queue(self, job: ThreadJob) -> None:
        with self._lock:
            if self._closed:
                raise RuntimeError("JobThreads is closed")
            self._jobs.append(job)
            if not self._waking:
                self._wake_one()

    def call_in_loop(self, fn: Callable[[], object]) -> None:
        """Run ``fn`` on the event loop soon, in order with the outcomes handed back."""
        self._posted.append(fn)
        if not self._drain_scheduled:
            self._drain_scheduled = True
            self._call_soon(self._drain)

    def close(self) -> None:
        """Idle threads exit; threads still running a job exit once it returns."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
            self._waking += len(idle)
        for thread in idle:
            thread.park.release()

    def _wake_one(self) -> None:
        """With the lock held: wake an idle thread, or start one if below the limit."""
        if self._idle:
            self._waking += 1
            self._idle.pop().park.release()
        elif self._live < self.limit:
            self._waking += 1
            self._live += 1
            thread = _JobThread()
            thread.park.release()  # a new thread starts awake
            threading.Thread(
                target=self._serve, args=(thread,), name=self._name, daemon=True
            ).start()

    def abandon(self, job: ThreadJob) -> None:
        """Give up on ``job``: it never runs if no thread took it yet, else its thread is
        retired and replaced, and its outcome is dropped."""
        with self._lock:
            job.abandoned = True
            job._wake = None
            thread = job.thread
            if thread is None:  # not started (it never will be), or already ran
                if job in self._jobs:
                    self._jobs.remove(job)
                return
            thread.retired = True
            self._live -= 1
            if self._jobs and not self._waking:
                self._wake_one()  # the replacement takes what waits

    def _drain(self) -> None:
        """On the loop: run everything the threads posted, oldest first."""
        self._drain_scheduled = False
        posted = self._posted
        while posted:
            posted.popleft()()

    def _serve(self, me: _JobThread) -> None:
        """A thread's life: take a job, run it, hand its outcome back; park when idle."""
        lock, jobs = self._lock, self._jobs
        while True:
            me.park.acquire()
            with lock:
                self._waking -= 1
            while True:
                with lock:
                    if me.retired:
                        return
                    if not jobs:
                        if self._closed:
                            self._live -= 1
                            return
                        self._idle.append(me)
                        break
                    job = jobs.popleft()
                    job.thread = me
                    if jobs and not self._waking:
                        self._wake_one()  # more work: pass it on, one thread at a time
                if job.on_start is not None:
                    self.call_in_loop(job.on_start)
                outcome = _call(job)
                with lock:
                    if job.abandoned:
                        continue  # retired: the check above ends this thread
                    job.thread = None  # ran: abandoning it now retires no thread
                self._post_outcome(job, outcome)

    def _post_outcome(self, job: ThreadJob, outcome: Outcome) -> None:
        try:
            self.call_in_loop(lambda: job._finish(outcome))
        except Exception as exc:  # noqa: BLE001 - the loop is gone: nobody waits for it
            logger.error("a def job's outcome could not reach the worker's loop: {!r}", exc)


def _call(job: ThreadJob) -> Outcome:
    """Run the job in its context; any exception is its outcome, never the thread's end."""
    try:
        value = job.context.run(job.func, *job.args, **job.kwargs)
    except BaseException as exc:  # noqa: BLE001 - a job's SystemExit must not end a thread
        return Outcome(error=error_info(exc))
    return Outcome(value=value)
