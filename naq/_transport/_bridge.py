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
from typing import Any, TypeVar

from .._loop_thread import LoopCall, shared_loop

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
    """The caller runs on Trio: cross into the shared asyncio loop thread.

    One ``call_soon_threadsafe`` starts the asyncio task; its done callback reschedules the
    sleeping Trio task through the Trio token. No concurrent Future, no trio.Event: the
    crossing is one wake-up each way.
    """

    def __init__(self) -> None:
        import trio  # only needed here, so asyncio-only installs do not need trio

        self._lowlevel = trio.lowlevel
        self._run_finished = trio.RunFinishedError
        self._loop = shared_loop()

    async def call(self, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
        lowlevel = self._lowlevel
        token = lowlevel.current_trio_token()
        trio_task = lowlevel.current_task()
        waiting = True  # read and written on the Trio thread only

        def wake() -> None:  # on the Trio thread
            if waiting:
                lowlevel.reschedule(trio_task)

        def done() -> None:  # on the loop thread
            # When the Trio run has already ended there is nobody left to wake.
            with contextlib.suppress(self._run_finished):
                token.run_sync_soon(wake)

        def abort(_: Any) -> Any:  # on the Trio thread: we were cancelled
            nonlocal waiting
            waiting = False
            call.cancel()  # cancel the asyncio side too
            return lowlevel.Abort.SUCCEEDED

        call = LoopCall(self._loop, lambda: _awaited(fn, args), done)
        await lowlevel.wait_task_rescheduled(abort)
        waiting = False
        return call.result()


async def _awaited(fn: Callable[..., Awaitable[T]], args: tuple[Any, ...]) -> T:
    return await fn(*args)


def bridge_for_current_backend() -> Bridge:
    """A direct bridge inside an asyncio loop, a thread bridge anywhere else (Trio)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return ThreadBridge()
    return DirectBridge()
