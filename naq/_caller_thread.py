"""naq_sync's fast path: run a naq coroutine in the calling thread, not on the loop thread.

``run_in_caller`` drives the coroutine with one ``send`` while it marks the thread. Marked,
``Connection.call`` completes each transport call at once: a routed call (a job's enqueue)
on the caller's own blocking connection (``_transport/_caller.py``), any other by a crossing
to the loop thread that the caller waits for. The coroutine therefore never suspends, and a
plain enqueue costs no thread hand-off at all.

Only coroutines marked :func:`runs_in_caller` run this way; every await in them must end in
``Connection.call`` (no sleeps, events or task groups). One that suspends anyway is a bug in
naq, reported as such rather than left hanging.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from ._blocking import refuse_inside_event_loop

__all__ = ["in_caller_thread", "run_in_caller", "runs_in_caller"]

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])

_state = threading.local()


def runs_in_caller(fn: F) -> F:
    """Mark a coroutine function that naq_sync runs in the calling thread (see above)."""
    return fn


def in_caller_thread() -> bool:
    """Whether this thread is running a coroutine through :func:`run_in_caller`."""
    return getattr(_state, "active", False)


def run_in_caller(
    async_fn: Callable[..., Coroutine[Any, Any, T]], /, *args: Any, **kwargs: Any
) -> T:
    """Run ``async_fn(*args, **kwargs)`` to its end in this thread and return its result."""
    refuse_inside_event_loop()
    coro = async_fn(*args, **kwargs)
    _state.active = True
    try:
        coro.send(None)
    except StopIteration as done:
        return done.value
    finally:
        _state.active = False
    coro.close()
    raise RuntimeError(
        f"naq bug: {getattr(async_fn, '__qualname__', async_fn)} suspended while run in the "
        "calling thread; it must await only Connection.call (see naq/_caller_thread.py)"
    )
