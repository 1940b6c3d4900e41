"""Running one job's function: async on the worker's backend, sync in a thread, with a timeout."""

from __future__ import annotations

import functools
import inspect
import traceback
from collections.abc import Callable
from typing import Any

import anyio
import attrs

from ._record import ErrorInfo

__all__ = ["Outcome", "error_info", "execute", "is_async_callable"]


@attrs.define
class Outcome:
    """What a run produced: a value, or the error it raised (or its timeout)."""

    value: Any = None
    error: ErrorInfo | None = None


def error_info(exc: BaseException) -> ErrorInfo:
    """An exception as text: type name, message and the full traceback."""
    return ErrorInfo(
        type=type(exc).__qualname__,
        message=str(exc),
        traceback="".join(traceback.format_exception(exc)),
    )


async def _call(
    func: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    is_async: bool,
    limiter: anyio.CapacityLimiter,
) -> Outcome:
    try:
        if is_async:
            value = await func(*args, **kwargs)
        else:
            call = functools.partial(func, *args, **kwargs)
            value = await anyio.to_thread.run_sync(call, limiter=limiter, abandon_on_cancel=True)
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
    limiter: anyio.CapacityLimiter,
) -> Outcome:
    """Run ``func`` and return its Outcome; exceptions become errors, cancellation propagates.

    ``is_async`` is :func:`is_async_callable` of ``func``, which the caller knows already.
    An async function runs in the current task and is cancelled at ``timeout``. A sync
    function runs in a worker thread under ``limiter``; at ``timeout`` the job is failed but
    Python cannot stop the thread, which runs on until the function returns.
    """
    if timeout is None:  # no cancel scope to pay for on the common path
        return await _call(func, args, kwargs, is_async, limiter)
    with anyio.move_on_after(timeout):
        return await _call(func, args, kwargs, is_async, limiter)
    kind = "async job was cancelled" if is_async else "sync job's thread was left running"
    return Outcome(
        error=ErrorInfo(
            type="JobTimeout",
            message=f"job exceeded its timeout of {timeout:g} s; the {kind}",
            traceback="",
        )
    )
