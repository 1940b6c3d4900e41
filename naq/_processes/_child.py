"""A supervised worker's side of the link to its supervisor.

The supervisor starts each child with one end of a socket pair, its descriptor in
``NAQ_SUPERVISOR_FD`` and the supervisor's pid in ``NAQ_SUPERVISOR_PID``. The child:

- writes one byte once its worker consumes: a child that dies before that is "failing at
  start", which the supervisor retries a few times and then gives up on, loudly;
- reads the socket: end of file means the supervisor is gone (SIGKILLed, say), and the
  child stops gracefully rather than run on with nobody to stop or replace it;
- exits with ``RECYCLE_EXIT_CODE`` when its worker stopped at ``max_jobs`` or
  ``max_memory_mib``, which the supervisor reads as "replace me", not as a crash.

The variables are removed from the environment as they are read, so processes a job starts
never take themselves for supervised workers.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Coroutine
from typing import Any

import anyio
import attrs
from loguru import logger

from .._errors import ConfigurationError

__all__ = [
    "READY",
    "RECYCLE_EXIT_CODE",
    "SUPERVISOR_FD_ENV",
    "SUPERVISOR_PID_ENV",
    "SupervisorLink",
    "run_child",
]

RECYCLE_EXIT_CODE = 75
"""A worker that stopped at its job or memory limit: replace it (EX_TEMPFAIL, "try again")."""
SUPERVISOR_FD_ENV = "NAQ_SUPERVISOR_FD"
SUPERVISOR_PID_ENV = "NAQ_SUPERVISOR_PID"
READY = b"R"


@attrs.frozen
class SupervisorLink:
    """The child's end of the socket pair, and the supervisor's pid (the registry's parent)."""

    parent: int
    channel: socket.socket

    @classmethod
    def from_environment(cls) -> SupervisorLink | None:
        """The link this process was started with, or None when no supervisor started it."""
        fd = os.environ.pop(SUPERVISOR_FD_ENV, None)
        pid = os.environ.pop(SUPERVISOR_PID_ENV, None)
        if fd is None:
            return None
        try:
            channel = socket.socket(fileno=int(fd))
            parent = int(pid or "")
        except (ValueError, OSError) as exc:
            raise ConfigurationError(
                f"bad supervisor link {SUPERVISOR_FD_ENV}={fd!r} {SUPERVISOR_PID_ENV}={pid!r}: "
                f"{exc}"
            ) from exc
        channel.setblocking(False)
        return cls(parent, channel)

    def report_ready(self) -> None:
        try:
            self.channel.send(READY)
        except OSError as exc:  # the supervisor is gone; the watch sees the end of file
            logger.warning(
                "could not tell supervisor {} this worker is ready: {!r}", self.parent, exc
            )

    async def wait_for_supervisor_exit(self) -> None:
        """Return when the supervisor's end closes (it exited, or was killed)."""
        while True:
            await anyio.wait_readable(self.channel)
            try:
                data = self.channel.recv(64)
            except BlockingIOError:
                continue
            except ConnectionResetError:
                return
            if not data:
                return
            logger.warning("ignoring unexpected bytes from supervisor {}: {!r}", self.parent, data)


async def run_child(
    serve: Callable[..., Coroutine[Any, Any, object]],
    stop: Callable[[], None],
    link: SupervisorLink,
) -> None:
    """Run ``serve`` (given a ``task_status``), report ready once it started, and call
    ``stop`` if the supervisor goes away first."""

    async def watch_supervisor() -> None:
        await link.wait_for_supervisor_exit()
        logger.warning("supervisor {} is gone: this worker stops", link.parent)
        stop()

    async with anyio.create_task_group() as outer:
        outer.start_soon(watch_supervisor)
        async with anyio.create_task_group() as inner:
            await inner.start(serve)
            link.report_ready()
        outer.cancel_scope.cancel()
    link.channel.close()
