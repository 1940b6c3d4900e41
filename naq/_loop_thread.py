"""One asyncio event loop per process, in a daemon thread, reached through an anyio portal.

nats-py needs asyncio. Blocking code (naq_sync) and Trio code reach it through this loop.
It starts on first use, is replaced in a forked child (which must never touch its parent's
loop or sockets), and, being a daemon thread, never keeps the interpreter from exiting.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from concurrent.futures import Future
from typing import Any, Generic, TypeVar

import anyio
from anyio.from_thread import BlockingPortal

from ._per_process import PerProcess

__all__ = ["LoopCall", "shared_loop", "shared_portal"]

T = TypeVar("T")


def shared_portal() -> BlockingPortal:
    """The process's loop-thread portal, started on first use (and again after a fork)."""
    return _loop_thread.get()[0]


def shared_loop() -> asyncio.AbstractEventLoop:
    """The asyncio loop of that thread, for ``asyncio.run_coroutine_threadsafe``."""
    return _loop_thread.get()[1]


class LoopCall(Generic[T]):
    """A coroutine started on the loop thread from another thread, with one
    ``call_soon_threadsafe`` (no concurrent Future, no Condition): ``on_done`` runs on the loop
    thread when it ends, and is what wakes the caller (a lock, the Trio token)."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        make: Callable[[], Coroutine[Any, Any, T]],
        on_done: Callable[[], object],
    ) -> None:
        self._loop = loop
        self._make = make
        self._on_done = on_done
        self._task: asyncio.Task[T] | None = None
        loop.call_soon_threadsafe(self._start)

    def _start(self) -> None:
        self._task = self._loop.create_task(self._make())
        self._task.add_done_callback(lambda _: self._on_done())

    def cancel(self) -> None:
        """From any thread: cancel the coroutine (``_start`` runs before this, in order)."""
        self._loop.call_soon_threadsafe(self._cancel)

    def _cancel(self) -> None:
        if self._task is not None:
            self._task.cancel()

    def result(self) -> T:
        """Its value or exception, once ``on_done`` has run."""
        assert self._task is not None
        return self._task.result()


def _start_loop_thread() -> tuple[BlockingPortal, asyncio.AbstractEventLoop]:
    ready: Future[tuple[BlockingPortal, asyncio.AbstractEventLoop]] = Future()

    async def serve() -> None:
        async with BlockingPortal() as portal:
            ready.set_result((portal, asyncio.get_running_loop()))
            await portal.sleep_until_stopped()

    def main() -> None:
        try:
            anyio.run(serve, backend="asyncio")
        except BaseException as exc:
            if not ready.done():
                ready.set_exception(exc)
            raise

    threading.Thread(target=main, name="naq-loop", daemon=True).start()
    return ready.result()


_loop_thread = PerProcess(_start_loop_thread)
