"""How blocking code runs a naq coroutine: on the process's loop thread, waiting for it.

This is the one path naq_sync takes into the async core. It crosses threads once per call
(``asyncio.run_coroutine_threadsafe``: one wake-up of the loop thread, one wait on a future),
holds no lock, so any number of threads call at once, and refuses to run where it would
block an event loop: from a coroutine, a loop callback, or the loop thread itself.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from ._errors import NaqError
from ._loop_thread import shared_loop

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
    """Run ``async_fn(*args, **kwargs)`` on the shared loop thread and wait for its result."""
    refuse_inside_event_loop()
    future = asyncio.run_coroutine_threadsafe(async_fn(*args, **kwargs), shared_loop())
    try:
        return future.result()
    except BaseException:
        # Interrupted while waiting (KeyboardInterrupt): do not leave the call running.
        future.cancel()
        raise
