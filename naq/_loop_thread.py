"""One asyncio event loop per process, in a daemon thread, reached through an anyio portal.

nats-py needs asyncio. Blocking code (naq_sync) and Trio code reach it through this loop.
It starts on first use, is replaced in a forked child (which must never touch its parent's
loop or sockets), and, being a daemon thread, never keeps the interpreter from exiting.
"""

from __future__ import annotations

import asyncio
import os
import threading
from concurrent.futures import Future

import anyio
from anyio.from_thread import BlockingPortal

__all__ = ["shared_loop", "shared_portal"]

_lock = threading.Lock()
_running: tuple[BlockingPortal, asyncio.AbstractEventLoop] | None = None
_owner_pid: int | None = None


def shared_portal() -> BlockingPortal:
    """The process's loop-thread portal, started on first use (and again after a fork)."""
    return _loop_thread()[0]


def shared_loop() -> asyncio.AbstractEventLoop:
    """The asyncio loop of that thread, for ``asyncio.run_coroutine_threadsafe``."""
    return _loop_thread()[1]


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
