"""``Supervisor``: run N ``naq worker`` processes on the same queues, keep them running.

Why processes: a worker's jobs share one interpreter, so CPU-bound ``def`` jobs use one core
however many job threads run them. Each child is a full ``naq worker`` (its own connection,
heartbeat and graceful stop), started as ``python -m naq worker ...`` with the supervisor's
options: not forked (a fork copies the parent's event loop, threads and connections) and
not ``multiprocessing`` (which would pickle hooks and re-import ``__main__``); a child is
exactly what one would start by hand, visible as such in ``ps``.

The supervisor:

- replaces a child that exits: at once when it asks to be recycled (``RECYCLE_EXIT_CODE``)
  or was retired by a reload, after a backoff when it crashed; when one slot's children die
  before they report ready ``max_start_failures`` times in a row it stops the others and
  raises ``WorkerProcessesFailed`` (with ``--reload`` it waits for a file change instead);
- starts children in their own session, so a terminal's Ctrl-C reaches the supervisor only,
  and forwards the first SIGINT/SIGTERM as one SIGTERM to each child (each then stops
  gracefully within its ``--grace``), a second one again (children stop at once); a child
  still running ``grace`` + ``STOP_MARGIN`` seconds after the first is killed;
- with ``reload_path``, retires every child when a ``.py`` file under it changes (SIGTERM:
  running jobs finish) and starts a new one in its place.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import anyio
import attrs
from anyio.abc import Process, TaskGroup
from loguru import logger

from .._errors import ConfigurationError, NaqError
from ._child import (
    READY,
    RECYCLE_EXIT_CODE,
    SUPERVISOR_FD_ENV,
    SUPERVISOR_PID_ENV,
)
from ._reload import check_reload_available, watch_python_files

__all__ = [
    "BACKOFF_FIRST",
    "BACKOFF_MAX",
    "MAX_START_FAILURES",
    "STABLE_AFTER",
    "STOP_MARGIN",
    "Supervisor",
    "WorkerProcessesFailed",
    "describe_exit",
]

BACKOFF_FIRST = 0.1
"""Seconds before replacing a crashed child; doubled for each crash in a row."""
BACKOFF_MAX = 10.0
STABLE_AFTER = 10.0
"""A child that ran this long after it was ready ends its slot's run of crashes."""
MAX_START_FAILURES = 5
"""Children of one slot that die before ready, in a row, before the supervisor gives up."""
STOP_MARGIN = 15.0
"""Seconds beyond the grace a stopping child gets to hand back jobs and close, before SIGKILL."""


class WorkerProcessesFailed(NaqError):
    """The worker processes keep dying before they are ready: the supervisor gave up."""


def describe_exit(code: int) -> str:
    """``exited with code 1``, ``was killed by SIGKILL``."""
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with code {code}"


@attrs.define(eq=False)
class _Child:
    slot: int
    process: Process
    channel: socket.socket
    started_at: float
    ready_at: float | None = None
    retiring: bool = False
    """Asked to stop by a reload: replaced at once, whatever its exit code."""

    @property
    def pid(self) -> int:
        return self.process.pid

    def send_signal(self, signum: signal.Signals) -> None:
        if self.process.returncode is not None:
            return
        try:
            self.process.send_signal(signum)
        except ProcessLookupError:
            logger.debug("worker process {} already exited", self.pid)

    def take_ready(self) -> bool:
        """Read what the child wrote; False at end of file (it closed its end)."""
        try:
            data = self.channel.recv(16)
        except BlockingIOError:
            return True
        except ConnectionResetError:
            return False
        if READY in data and self.ready_at is None:
            self.ready_at = anyio.current_time()
            logger.info("worker process {} (pid {}) is ready", self.slot, self.pid)
        return bool(data)


class Supervisor:
    """Keeps ``processes`` children running ``command(slot)`` (slots 1..N) until a signal.

    ``grace`` is the children's own (``--grace``), used here for the kill deadline. With
    ``burst`` a child that exits 0 has finished, and is not replaced; the supervisor returns
    when all have. ``env`` is added to the children's environment.
    """

    def __init__(
        self,
        command: Callable[[int], Sequence[str]],
        *,
        processes: int,
        grace: float,
        burst: bool = False,
        reload_path: Path | None = None,
        env: Mapping[str, str] | None = None,
        max_start_failures: int = MAX_START_FAILURES,
    ) -> None:
        if isinstance(processes, bool) or processes < 1:
            raise ConfigurationError(f"processes must be >= 1, got {processes!r}")
        if grace < 0:
            raise ConfigurationError(f"grace must be >= 0, got {grace!r}")
        if reload_path is not None:
            check_reload_available()
            if not reload_path.is_dir():
                raise ConfigurationError(f"cannot watch {reload_path} for changes: not a directory")
        self.command = command
        self.processes = processes
        self.grace = grace
        self.burst = burst
        self.reload_path = reload_path
        self.env = dict(env or {})
        self.max_start_failures = max_start_failures
        self._children: dict[int, _Child] = {}
        self._stopping = False
        self._wake: anyio.Event  # set on stop and on each reload (then replaced); made in run
        self._watch_stop: anyio.Event
        self._failure: str | None = None
        self._tg: TaskGroup | None = None

    async def run(self) -> None:
        """Run the children until a signal stops them (or, in burst mode, they all finish).

        Raises ``WorkerProcessesFailed`` once it gave up on children failing at start.
        """
        logger.info("supervisor {}: starting {} worker process(es)", os.getpid(), self.processes)
        self._wake = anyio.Event()  # made on the loop that waits on them
        self._watch_stop = anyio.Event()
        try:
            async with anyio.create_task_group() as tg:
                self._tg = tg
                tg.start_soon(self._watch_signals)
                if self.reload_path is not None:
                    tg.start_soon(self._watch_files, self.reload_path)
                async with anyio.create_task_group() as slots:
                    for slot in range(1, self.processes + 1):
                        slots.start_soon(self._run_slot, slot)
                self._watch_stop.set()  # the file watch's thread returns within its step
                tg.cancel_scope.cancel()
        finally:
            with anyio.CancelScope(shield=True):
                await self._stop_leftovers()
        if self._failure is not None:
            raise WorkerProcessesFailed(self._failure)
        logger.info("supervisor {}: all worker processes stopped", os.getpid())

    async def _run_slot(self, slot: int) -> None:
        start_failures = 0
        crashes = 0
        while not self._stopping:
            child = await self._start(slot)
            code = await self._wait(child)
            if self._stopping:
                return
            if code == RECYCLE_EXIT_CODE:
                logger.info("worker process {} (pid {}) recycled: replacing it", slot, child.pid)
                start_failures = crashes = 0
                continue
            if child.retiring:
                start_failures = crashes = 0
                continue
            if code == 0 and self.burst:
                logger.info("worker process {} (pid {}) finished its burst", slot, child.pid)
                return
            now = anyio.current_time()
            if child.ready_at is not None:
                start_failures = 0
                if now - child.ready_at >= STABLE_AFTER:
                    crashes = 0
            else:
                start_failures += 1
            crashes += 1
            what = f"worker process {slot} (pid {child.pid}) {describe_exit(code)}"
            if start_failures >= self.max_start_failures:
                message = (
                    f"{what}: worker process {slot} failed at start {start_failures} times "
                    "in a row (its errors are above)"
                )
                if self.reload_path is None:
                    self._fail(message)
                    return
                logger.error("{}; waiting for a file change to try again", message)
                await self._wait_for_wake()
                start_failures = crashes = 0
                continue
            delay = min(BACKOFF_FIRST * 2 ** (crashes - 1), BACKOFF_MAX)
            when = "before it was ready" if child.ready_at is None else "unexpectedly"
            logger.warning("{} {}: starting another in {:g} s", what, when, delay)
            with anyio.move_on_after(delay):
                await self._wait_for_wake()

    async def _wait_for_wake(self) -> None:
        await self._wake.wait()

    async def _start(self, slot: int) -> _Child:
        ours, theirs = socket.socketpair()
        env = {
            **os.environ,
            **self.env,
            SUPERVISOR_FD_ENV: str(theirs.fileno()),
            SUPERVISOR_PID_ENV: str(os.getpid()),
        }
        if self.reload_path is not None:
            # A changed module must be compiled again: a .pyc written by the last child has
            # the source's mtime in whole seconds and its size, so an edit within the same
            # second that keeps the size would load the old code.
            env["PYTHONDONTWRITEBYTECODE"] = "1"
        try:
            process = await anyio.open_process(
                list(self.command(slot)),
                stdin=subprocess.DEVNULL,
                stdout=None,
                stderr=None,
                env=env,
                start_new_session=True,  # a terminal's Ctrl-C reaches the supervisor only
                pass_fds=(theirs.fileno(),),
            )
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        ours.setblocking(False)
        child = _Child(slot, process, ours, anyio.current_time())
        self._children[slot] = child
        logger.info("worker process {} started (pid {})", slot, child.pid)
        if self._stopping:  # a stop came while it was starting
            child.send_signal(signal.SIGTERM)
        return child

    async def _wait(self, child: _Child) -> int:
        """The child's exit code, noting on the way when it reports ready."""

        async def read_ready() -> None:
            while True:
                await anyio.wait_readable(child.channel)
                if not child.take_ready():
                    return

        code: int | None = None
        async with anyio.create_task_group() as tg:
            tg.start_soon(read_ready)
            code = await child.process.wait()
            tg.cancel_scope.cancel()
        assert code is not None
        child.take_ready()  # a ready byte written just before it exited
        await self._close(child)
        return code

    async def _close(self, child: _Child) -> None:
        if self._children.get(child.slot) is child:
            del self._children[child.slot]
        child.channel.close()
        await child.process.aclose()

    def _fail(self, message: str) -> None:
        if self._failure is None:
            self._failure = message
        self._stop()

    def _stop(self) -> None:
        """SIGTERM every child (each stops gracefully) and stop replacing them."""
        if self._stopping:
            return
        self._stopping = True
        self._wake.set()
        for child in list(self._children.values()):
            child.send_signal(signal.SIGTERM)
        if self._tg is not None:
            self._tg.start_soon(self._kill_after_deadline)

    async def _kill_after_deadline(self) -> None:
        await anyio.sleep(self.grace + STOP_MARGIN)
        for child in list(self._children.values()):
            logger.error(
                "worker process {} (pid {}) did not stop within {:g} s: killing it",
                child.slot,
                child.pid,
                self.grace + STOP_MARGIN,
            )
            child.send_signal(signal.SIGKILL)

    async def _watch_signals(self) -> None:
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for _ in signals:
                if not self._stopping:
                    logger.info(
                        "stopping {} worker process(es): running jobs get {:g} s to finish "
                        "(signal again to quit)",
                        len(self._children),
                        self.grace,
                    )
                    self._stop()
                else:
                    logger.warning("stopping now; unfinished jobs are handed back")
                    for child in list(self._children.values()):
                        child.send_signal(signal.SIGTERM)  # a worker's second signal

    async def _watch_files(self, path: Path) -> None:
        async for changed in watch_python_files(path, self._watch_stop):
            if self._stopping:
                return
            shown = ", ".join(changed[:3]) + (
                f" and {len(changed) - 3} more" if len(changed) > 3 else ""
            )
            logger.info("reloading: {} changed; restarting the worker processes", shown)
            for child in list(self._children.values()):
                child.retiring = True
                child.send_signal(signal.SIGTERM)
            wake, self._wake = self._wake, anyio.Event()
            wake.set()  # slots waiting out a backoff or a failure start again now

    async def _stop_leftovers(self) -> None:
        """Children still running when ``run`` ends early (an error): stop, then kill."""
        leftovers = list(self._children.values())
        if not leftovers:
            return
        for child in leftovers:
            child.send_signal(signal.SIGTERM)
        with anyio.move_on_after(self.grace + STOP_MARGIN):
            for child in leftovers:
                await child.process.wait()
        for child in leftovers:
            if child.process.returncode is None:
                logger.error("worker process {} (pid {}): killing it", child.slot, child.pid)
                child.send_signal(signal.SIGKILL)
            await self._close(child)
