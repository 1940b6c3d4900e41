"""Worker hooks: code run when a worker starts and stops, and around every job it runs.

``WorkerHooks`` is what users give (``naq.Worker(..., hooks=...)``, ``naq worker --hooks``);
``JobHooks`` is the worker's own form of its job hooks, split once into sync and async ones.

Where they run: async hooks on the worker's event loop, in the job's runner task. Sync hooks
of a ``def`` job run in the job's own thread, in the job's context, around the function (so
thread-bound state, such as a Django database connection, is the job's); sync hooks of an
``async def`` job are called on the event loop, in the job's task, and must be quick. Around a
``def`` job the async ``before_job`` hooks run first (on the loop), then the sync ones (in the
thread), and after it the sync ``after_job`` hooks (in the thread), then the async ones.

What a raising hook does:

- ``on_startup``: the worker stops before it connects, with a ``HookError`` naming the hook;
  ``on_shutdown`` hooks are then not run.
- ``before_job``: the function is not called; the job fails with a ``HookError`` (its cause,
  the hook's exception, is in the stored traceback) and is retried by its policy like any
  failure, then dead-lettered. The ``on_failure`` and ``after_job`` hooks still run.
- ``after_job``, ``on_failure``, ``on_shutdown``: logged with the traceback; the job's outcome
  (or the worker's stop) is unchanged, and the next hooks still run.

A job that times out is a failure (``on_failure`` gets a ``TimeoutError``; for a ``def`` job
the thread still runs the function, so those hooks are then called on the event loop). A job
canceled while it runs is not a failure, but its ``after_job`` hooks run.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, TypeVar, cast

import anyio
import attrs
from loguru import logger

from ._context import JobContext
from ._errors import NaqError
from ._execution import execute, is_async_callable
from ._functions import describe
from ._job_threads import JobThreads
from ._outcome import Outcome, error_info
from ._record import JobRecord

__all__ = ["HookError", "JobHooks", "WorkerHooks", "combine_hooks", "run_shutdown", "run_startup"]

WorkerHook = Callable[[Any], Any]
"""``hook(worker)``, sync or async, called with the ``naq.Worker``: at startup (before
connecting) or shutdown. (Typed ``Any`` so that this module needs nothing of ``_worker``,
which imports it.)"""
JobHook = Callable[[JobRecord], Any]
"""``hook(record)``, sync or async: before or after each run of a job."""
FailureHook = Callable[[JobRecord, BaseException], Any]
"""``hook(record, error)``, sync or async: a run failed (raised, or timed out)."""

H = TypeVar("H")

_CANCELLED_AFTER_HOOKS_TIMEOUT = 10.0
"""Seconds the async ``after_job`` hooks of a canceled job get (shielded from the cancel)."""


class HookError(NaqError):
    """A worker hook raised; its exception is the ``__cause__``."""


def _as_tuple(value: H | Iterable[H] | None) -> tuple[H, ...]:
    if value is None:
        return ()
    if callable(value):
        return (cast(H, value),)
    items = tuple(cast(Iterable[H], value))
    for item in items:
        if not callable(item):
            raise TypeError(f"a hook must be callable, got {item!r}")
    return items


@attrs.frozen
class WorkerHooks:
    """Callables a worker runs at startup and shutdown, and before and after every job.

    Each field takes one callable or a sequence; each may be ``def`` or ``async def``:

    - ``on_startup(worker)``, before the worker connects or takes a job;
    - ``on_shutdown(worker)``, once it has stopped and settled its jobs;
    - ``before_job(record)``, before each run of a job's function (``record`` is the job's
      ``started`` record; ``naq.current_job()`` works in job hooks);
    - ``after_job(record)``, after each run, whatever its outcome (like ``finally``);
    - ``on_failure(record, error)``, when a run failed: the function or a ``before_job`` hook
      raised ``error``, or the run timed out (a ``TimeoutError``).

    Sync hooks around a ``def`` job run in the job's thread; async hooks on the event loop.
    ``a + b`` nests ``b`` inside ``a``: ``a``'s startup and before hooks run first, its
    after, failure and shutdown hooks last. What a raising hook does is documented in
    ``naq._hooks``: a ``before_job`` hook fails the run, the others are logged.
    """

    on_startup: tuple[WorkerHook, ...] = attrs.field(default=(), converter=_as_tuple)
    on_shutdown: tuple[WorkerHook, ...] = attrs.field(default=(), converter=_as_tuple)
    before_job: tuple[JobHook, ...] = attrs.field(default=(), converter=_as_tuple)
    after_job: tuple[JobHook, ...] = attrs.field(default=(), converter=_as_tuple)
    on_failure: tuple[FailureHook, ...] = attrs.field(default=(), converter=_as_tuple)

    def __add__(self, other: WorkerHooks) -> WorkerHooks:
        if not isinstance(other, WorkerHooks):
            return NotImplemented
        return WorkerHooks(
            on_startup=self.on_startup + other.on_startup,
            on_shutdown=other.on_shutdown + self.on_shutdown,
            before_job=self.before_job + other.before_job,
            after_job=other.after_job + self.after_job,
            on_failure=other.on_failure + self.on_failure,
        )

    @property
    def has_job_hooks(self) -> bool:
        return bool(self.before_job or self.after_job or self.on_failure)

    def __bool__(self) -> bool:
        return self.has_job_hooks or bool(self.on_startup or self.on_shutdown)


def combine_hooks(hooks: WorkerHooks | Sequence[WorkerHooks] | None) -> WorkerHooks | None:
    """One ``WorkerHooks`` from one, several (nested in order) or none; None when empty."""
    if hooks is None:
        return None
    if isinstance(hooks, WorkerHooks):
        return hooks or None
    combined = WorkerHooks()
    for item in hooks:
        if not isinstance(item, WorkerHooks):
            raise TypeError(f"hooks must be naq.WorkerHooks, got {item!r}")
        combined = combined + item
    return combined or None


def _kinds(hooks: tuple[Callable[..., Any], ...]) -> tuple[tuple[Callable[..., Any], bool], ...]:
    return tuple((hook, is_async_callable(hook)) for hook in hooks)


async def _call(hook: Callable[..., Any], is_async: bool, *args: Any) -> None:
    result = hook(*args)
    if is_async or inspect.isawaitable(result):
        await cast(Awaitable[Any], result)


def _hook_error(kind: str, hook: Callable[..., Any], exc: BaseException) -> HookError:
    return HookError(f"{kind} hook {describe(hook)} raised {type(exc).__qualname__}: {exc}")


def _log_hook_error(kind: str, hook: Callable[..., Any], job: str, exc: BaseException) -> None:
    logger.opt(exception=exc).error(
        "{} hook {} raised {!r} for {} (ignored: the outcome stands)",
        kind,
        describe(hook),
        exc,
        job,
    )


async def run_startup(hooks: WorkerHooks, worker: Any) -> None:
    """Run the startup hooks in order; the first to raise stops it, as a HookError."""
    for hook, is_async in _kinds(hooks.on_startup):
        try:
            await _call(hook, is_async, worker)
        except Exception as exc:
            raise _hook_error("on_startup", hook, exc) from exc


async def run_shutdown(hooks: WorkerHooks, worker: Any) -> None:
    """Run every shutdown hook (shielded, each within 10 s if async); errors are logged."""
    with anyio.CancelScope(shield=True):
        for hook, is_async in _kinds(hooks.on_shutdown):
            try:
                with anyio.move_on_after(_CANCELLED_AFTER_HOOKS_TIMEOUT):
                    await _call(hook, is_async, worker)
            except Exception as exc:  # noqa: BLE001 - logged; the worker has stopped anyway
                _log_hook_error("on_shutdown", hook, f"worker {worker.id}", exc)


class JobHooks:
    """A worker's job hooks, split by kind once; :meth:`run` runs a job between them."""

    def __init__(self, hooks: WorkerHooks) -> None:
        before, after, failure = (
            _kinds(hooks.before_job), _kinds(hooks.after_job), _kinds(hooks.on_failure)
        )  # fmt: skip
        # async jobs: every hook, on the loop (sync ones called there)
        self._before_all, self._after_all, self._failure_all = before, after, failure
        # def jobs: the async hooks on the loop, the sync ones in the job's thread
        self._before_loop = tuple(h for h in before if h[1])
        self._after_loop = tuple(h for h in after if h[1])
        self._failure_loop = tuple(h for h in failure if h[1])
        self._before_thread = tuple(h for h, a in before if not a)
        self._after_thread = tuple(h for h, a in after if not a)
        self._failure_thread = tuple(h for h, a in failure if not a)
        # a def job is wrapped when a hook runs in its thread or needs what it raised
        self._wrap_def = bool(
            self._before_thread or self._after_thread or self._failure_thread or self._failure_loop
        )

    async def run(
        self,
        context: JobContext,
        func: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        *,
        is_async: bool,
        timeout: float | None,
        threads: JobThreads,
        on_start: Callable[[], object] | None = None,
    ) -> Outcome:
        """:func:`naq._execution.execute` with the hooks around the function."""
        raised: list[BaseException] = []  # what the function or a before hook raised
        after = self._after_all if is_async else self._after_loop
        try:
            before_error = await self._before(context, is_async)
            if is_async:
                if before_error is None:
                    outcome = await execute(
                        _capturing(func, raised), args, kwargs,
                        is_async=True, timeout=timeout, threads=threads,
                    )  # fmt: skip
                else:
                    raised.append(before_error)
                    outcome = Outcome(error=error_info(before_error))
            else:
                call = self._in_thread(context, func, before_error, raised)
                outcome = await execute(
                    call, args, kwargs,
                    is_async=False, timeout=timeout, threads=threads, on_start=on_start,
                )  # fmt: skip
            if outcome.error is not None:
                await self._failed(context, outcome, raised, is_async)
        except BaseException:  # cancelled (or a bug): the after hooks still run
            with anyio.move_on_after(_CANCELLED_AFTER_HOOKS_TIMEOUT, shield=True):
                await _after(after, context)
            raise
        await _after(after, context)
        return outcome

    async def _before(self, context: JobContext, is_async: bool) -> HookError | None:
        for hook, hook_is_async in self._before_all if is_async else self._before_loop:
            try:
                await _call(hook, hook_is_async, context.record)
            except Exception as exc:  # noqa: BLE001 - the run fails with it
                error = _hook_error("before_job", hook, exc)
                error.__cause__ = exc
                return error
        return None

    async def _failed(
        self, context: JobContext, outcome: Outcome, raised: list[BaseException], is_async: bool
    ) -> None:
        assert outcome.error is not None
        timed_out = outcome.error.type == "JobTimeout" and not outcome.error.traceback
        if timed_out:
            error: BaseException = TimeoutError(outcome.error.message)
            # a def job's thread still runs its function: its sync hooks are called here
            hooks = self._failure_all
        elif raised:
            error = raised[0]
            hooks = self._failure_all if is_async else self._failure_loop
        else:
            return
        for hook, hook_is_async in hooks:
            try:
                await _call(hook, hook_is_async, context.record, error)
            except Exception as exc:  # noqa: BLE001 - logged; the outcome stands
                _log_hook_error("on_failure", hook, f"job {context.id}", exc)

    def _in_thread(
        self,
        context: JobContext,
        func: Callable[..., Any],
        before_error: HookError | None,
        raised: list[BaseException],
    ) -> Callable[..., Any]:
        """``func`` with the sync hooks around it, to run in the job's thread."""
        if not self._wrap_def and before_error is None:
            return func
        before, after, failure = self._before_thread, self._after_thread, self._failure_thread

        def hooked(*args: Any, **kwargs: Any) -> Any:
            try:
                if before_error is not None:
                    raise before_error
                for hook in before:
                    try:
                        hook(context.record)
                    except Exception as exc:
                        raise _hook_error("before_job", hook, exc) from exc
                return func(*args, **kwargs)
            except BaseException as exc:
                raised.append(exc)
                for hook in failure:
                    try:
                        hook(context.record, exc)
                    except Exception as hook_exc:  # noqa: BLE001 - logged; the outcome stands
                        _log_hook_error("on_failure", hook, f"job {context.id}", hook_exc)
                raise
            finally:
                for hook in after:
                    try:
                        hook(context.record)
                    except Exception as exc:  # noqa: BLE001 - logged; the outcome stands
                        _log_hook_error("after_job", hook, f"job {context.id}", exc)

        return hooked


def _capturing(func: Callable[..., Any], raised: list[BaseException]) -> Callable[..., Any]:
    async def capturing(*args: Any, **kwargs: Any) -> Any:
        try:
            return await func(*args, **kwargs)
        except Exception as exc:
            raised.append(exc)
            raise

    return capturing


async def _after(hooks: tuple[tuple[Callable[..., Any], bool], ...], context: JobContext) -> None:
    for hook, is_async in hooks:
        try:
            await _call(hook, is_async, context.record)
        except Exception as exc:  # noqa: BLE001 - logged; the outcome stands
            _log_hook_error("after_job", hook, f"job {context.id}", exc)
