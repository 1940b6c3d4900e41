"""How blocking code runs a naq coroutine: on the process's loop thread, waiting for it.

This is the one path naq_sync takes into the async core. It crosses threads once per call
(one wake-up of the loop thread, one of the caller),
holds no lock, so any number of threads call at once, and refuses to run where it would
block an event loop: from a coroutine, a loop callback, or the loop thread itself.
"""

from __future__ import annotations

import asyncio
import sys
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from ._errors import NaqError
from ._loop_thread import LoopCall, shared_loop

__all__ = ["refuse_inside_event_loop", "run_blocking"]

T = TypeVar("T")


def _running_event_loop() -> str | None:
    """The event loop running in this thread ("asyncio", "trio"), or None."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass  # no asyncio loop in this thread: look for Trio
    else:
        return "asyncio"
    trio = sys.modules.get("trio")
    if trio is not None and trio.lowlevel.in_trio_run():
        return "trio"
    return None


def refuse_inside_event_loop() -> None:
    """Raise NaqError when called with an event loop running in this thread.

    Waiting here would stall that loop, and deadlock it when it is naq's own loop thread.
    """
    backend = _running_event_loop()
    if backend is not None:
        raise NaqError(
            f"naq_sync blocks and would stall the event loop running in this thread ({backend}), "
            "or deadlock it; use the async API here instead: "
            "`async with naq.Client() as client: await client.enqueue(...)`"
        )


def run_blocking(
    async_fn: Callable[..., Coroutine[Any, Any, T]], /, *args: Any, **kwargs: Any
) -> T:
    """Run ``async_fn(*args, **kwargs)`` on the shared loop thread and wait for its result.

    One ``call_soon_threadsafe`` starts the task and its done callback releases a lock the
    caller waits on: one wake-up each way, with no concurrent Future or Condition between
    (``run_coroutine_threadsafe`` costs about twice as much per call).
    """
    refuse_inside_event_loop()
    done = threading.Lock()
    done.acquire()
    call = LoopCall(shared_loop(), lambda: async_fn(*args, **kwargs), done.release)
    try:
        done.acquire()
    except BaseException:
        # Interrupted while waiting (KeyboardInterrupt): do not leave the call running.
        call.cancel()
        raise
    return call.result()
