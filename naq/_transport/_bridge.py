"""How core code reaches the asyncio-only NATS transport from whichever backend it runs on.

On asyncio the transport is awaited directly. On any other backend (Trio) each call crosses
once into the shared asyncio loop thread and the caller is woken through its own event loop
token, not through a thread per call. Callers therefore cross once per batch, never per message.
"""

from __future__ import annotations

import asyncio
import contextlib
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from concurrent.futures import Future
from typing import Any, TypeVar

from .._loop_thread import shared_loop

__all__ = ["Bridge", "DirectBridge", "ThreadBridge", "bridge_for_current_backend"]

T = TypeVar("T")


class Bridge(ABC):
    """Runs a coroutine function of the transport on the transport's asyncio loop."""

    @abstractmethod
    async def call(self, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
        """Await ``fn(*args)`` on the transport's loop and return its result."""


class DirectBridge(Bridge):
    """The caller already runs on asyncio: no crossing at all."""

    async def call(self, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
        return await fn(*args)


class ThreadBridge(Bridge):
    """The caller runs on Trio: cross into the shared asyncio loop thread."""

    def __init__(self) -> None:
        import trio  # only needed here, so asyncio-only installs do not need trio

        self._trio = trio
        self._loop = shared_loop()

    async def call(self, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
        trio = self._trio
        token = trio.lowlevel.current_trio_token()
        done = trio.Event()

        def wake(_: Future[T]) -> None:
            # When the Trio run has already ended there is nobody left to wake.
            with contextlib.suppress(trio.RunFinishedError):
                token.run_sync_soon(done.set)

        # run_coroutine_threadsafe only queues the call: the Trio thread never waits for
        # the loop thread to pick it up (anyio's portal.start_task_soon does).
        future = asyncio.run_coroutine_threadsafe(fn(*args), self._loop)
        future.add_done_callback(wake)
        try:
            await done.wait()
        finally:
            if not future.done():
                future.cancel()  # we were cancelled: cancel the asyncio side too
        return future.result()


def bridge_for_current_backend() -> Bridge:
    """A direct bridge inside an asyncio loop, a thread bridge anywhere else (Trio)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return ThreadBridge()
    return DirectBridge()
