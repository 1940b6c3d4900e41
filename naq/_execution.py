"""Running one job's function: async on the worker's backend, sync in a job thread, with a
timeout."""

from __future__ import annotations

import contextvars
import inspect
from collections.abc import Callable
from typing import Any

import anyio

from ._job_threads import JobThreads, ThreadJob
from ._outcome import Outcome, error_info
from ._record import ErrorInfo

__all__ = ["execute", "is_async_callable"]


async def _call(
    func: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    is_async: bool,
    threads: JobThreads,
    on_start: Callable[[], object] | None,
) -> Outcome:
    if not is_async:
        job = ThreadJob(func, args, kwargs, contextvars.copy_context(), on_start)
        return await threads.run(job)
    try:
        value = await func(*args, **kwargs)
    except Exception as exc:  # noqa: BLE001 - any error a job raises is its outcome
        return Outcome(error=error_info(exc))
    return Outcome(value=value)


def is_async_callable(func: Callable[..., Any]) -> bool:
    return inspect.iscoroutinefunction(func) or inspect.iscoroutinefunction(
        getattr(func, "__call__", None)  # noqa: B004 - async callable objects
    )


async def execute(
    func: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    *,
    is_async: bool,
    timeout: float | None,
    threads: JobThreads,
    on_start: Callable[[], object] | None = None,
) -> Outcome:
    """Run ``func`` and return its Outcome; exceptions become errors, cancellation propagates.

    ``is_async`` is :func:`is_async_callable` of ``func``, which the caller knows already.
    An async function runs in the current task and is canceled at ``timeout``. A sync
    function runs in one of the worker's job ``threads``, in a copy of the current context
    (so ``naq.current_job()`` works there); at ``timeout`` the job is failed but Python
    cannot stop the thread, which runs on until the function returns. ``on_start`` is
    called on the event loop when a job thread takes a sync function.
    """
    if timeout is None:  # no cancel scope to pay for on the common path
        return await _call(func, args, kwargs, is_async, threads, on_start)
    with anyio.move_on_after(timeout):
        return await _call(func, args, kwargs, is_async, threads, on_start)
    kind = "async job was cancelled" if is_async else "sync job's thread was left running"
    return Outcome(
        error=ErrorInfo(
            type="JobTimeout",
            message=f"job exceeded its timeout of {timeout:g} s; the {kind}",
            traceback="",
        )
    )
