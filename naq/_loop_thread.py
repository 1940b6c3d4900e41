"""One asyncio event loop per process, in a daemon thread, reached through an anyio portal.

nats-py needs asyncio. Blocking code (naq_sync) and Trio code reach it through this loop.
It starts on first use, is replaced in a forked child (which must never touch its parent's
loop or sockets), and, being a daemon thread, never keeps the interpreter from exiting.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable, Coroutine
from concurrent.futures import Future
from typing import Any, Generic, TypeVar

import anyio
from anyio.from_thread import BlockingPortal

__all__ = ["LoopCall", "shared_loop", "shared_portal"]

T = TypeVar("T")

_lock = threading.Lock()
_running: tuple[BlockingPortal, asyncio.AbstractEventLoop] | None = None
_owner_pid: int | None = None


def shared_portal() -> BlockingPortal:
    """The process's loop-thread portal, started on first use (and again after a fork)."""
    return _loop_thread()[0]


def shared_loop() -> asyncio.AbstractEventLoop:
    """The asyncio loop of that thread, for ``asyncio.run_coroutine_threadsafe``."""
    return _loop_thread()[1]


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


def _loop_thread() -> tuple[BlockingPortal, asyncio.AbstractEventLoop]:
    global _running, _owner_pid
    running, pid = _running, os.getpid()
    if running is not None and _owner_pid == pid:
        return running
    with _lock:
        if _running is None or _owner_pid != pid:
            _running = _start_loop_thread()
            _owner_pid = pid
        return _running


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


def _reset_after_fork() -> None:
    # The child has no loop thread and must not use the parent's lock state either.
    global _lock, _running, _owner_pid
    _lock = threading.Lock()
    _running = None
    _owner_pid = None


os.register_at_fork(after_in_child=_reset_after_fork)
