"""A NATS connection's ups and downs, as a client call sees them.

nats-py reconnects by itself, but leaves calls made meanwhile to fend for themselves: a
request sent while the server restarts may never be answered, and a subscription misses what
was published while it was down. ``Link`` gives each client call a deadline (the client's
``timeout``): while the connection is down the call waits for it to come back; an attempt the
drop interrupted is abandoned and made again (every call passed in is idempotent: reads, and
publishes deduplicated by job id); JetStream still starting after a restart is waited out.
What does not succeed in time ends as NaqConnectionError with a clear message. Watchers of a
record are told to read it again after a reconnect, and are woken when the client closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import nats.errors
import nats.js.errors

from .._errors import NaqConnectionError

__all__ = [
    "FIRST_PAUSE",
    "FIRST_RECHECK",
    "MAX_PAUSE",
    "MAX_RECHECK",
    "UNKNOWN_OUTCOME",
    "Link",
    "LinkEvent",
    "call_failed",
]

T = TypeVar("T")

_NOT_READY = (nats.errors.NoRespondersError, nats.js.errors.ServiceUnavailableError)
"""JetStream not answering yet: right after a server (re)start it is still loading streams."""
FIRST_PAUSE, MAX_PAUSE = 0.05, 1.0
"""Seconds between tries while JetStream is not ready: the first pause, doubling up to the last."""
FIRST_RECHECK, MAX_RECHECK = 1.0, 5.0
"""Seconds a record waiter waits for a republished write before it reads the record from the
stream's leader: the first time, doubling up to the last. On a cluster the notification can be
lost (see ``NatsTransport.wait_record``); on one server it never is, and a wait that ends
within the first second never makes that read."""
UNKNOWN_OUTCOME = (
    "connection lost before the server confirmed; it may or may not have been done "
    "(enqueue again with the same job_id to be sure a job runs once)"
)


class LinkEvent(enum.Enum):
    """Told to watchers: read the record again (it may have changed unseen), or give up."""

    READ_AGAIN = "read again"
    CLOSED = "closed"


class Link:
    """Connection state fed by nats-py's callbacks; runs client calls against it."""

    def __init__(self, url: str, timeout: float) -> None:
        self.url = url
        self.timeout = timeout
        self._up = asyncio.Event()
        self._down = asyncio.Event()
        self._closed = False
        self._drops = 0
        self._attempts: set[asyncio.Timeout] = set()
        self._watchers: set[asyncio.Queue[Any]] = set()
        self._busy = 0
        self._idle = asyncio.Event()
        self._idle.set()

    # -- fed by the transport's nats-py callbacks ----------------------------------------------

    def connected(self) -> None:
        self._up.set()
        self._down.clear()

    def reconnected(self) -> None:
        self.connected()
        for watcher in self._watchers:
            watcher.put_nowait(LinkEvent.READ_AGAIN)

    def disconnected(self) -> None:
        """Calls in flight lose their answers with the connection: abandon them now."""
        self._up.clear()
        self._down.set()
        self._drops += 1
        now = asyncio.get_running_loop().time()
        for attempt in self._attempts:
            attempt.reschedule(now)

    def closed(self) -> None:
        self._closed = True
        self._up.set()  # wake calls waiting for a reconnect: they see the close and fail
        for watcher in self._watchers:
            watcher.put_nowait(LinkEvent.CLOSED)

    @property
    def is_up(self) -> bool:
        return self._up.is_set() and not self._closed

    # -- client calls -------------------------------------------------------------------------

    async def call(self, what: str, op: Callable[[], Awaitable[T]], *, retry: bool = True) -> T:
        """``await op()`` within the timeout, across reconnects; ``what`` names it in errors.

        ``retry=False`` for an op that must not run twice: if the connection drops while it
        is in flight, NaqConnectionError says its outcome is unknown instead.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        pause = FIRST_PAUSE
        self._busy += 1
        self._idle.clear()
        try:
            while True:
                await self._wait_up(what, deadline)
                drops = self._drops
                try:
                    async with asyncio.timeout_at(deadline) as attempt:
                        self._attempts.add(attempt)
                        try:
                            return await op()
                        finally:
                            self._attempts.discard(attempt)
                except TimeoutError as exc:
                    if self._drops == drops or loop.time() >= deadline:
                        raise self._error(what, "no answer within the timeout", exc) from exc
                    if not retry:
                        raise self._error(what, UNKNOWN_OUTCOME, exc) from exc
                    # The connection dropped mid-call: ask again once it is back.
                except _NOT_READY as exc:
                    if loop.time() + pause >= deadline:
                        raise self._error(what, "JetStream not ready in time", exc) from exc
                    await asyncio.sleep(pause)
                    pause = min(pause * 2, MAX_PAUSE)
                except nats.errors.Error as exc:
                    if self._closed or self._drops == drops:
                        raise self._error(what, "refused", exc) from exc
                    if not retry:
                        raise self._error(what, UNKNOWN_OUTCOME, exc) from exc
                    # Refused while reconnecting (e.g. outgoing buffer full): ask again.
        finally:
            self._busy -= 1
            if self._busy == 0:
                self._idle.set()

    async def _wait_up(self, what: str, deadline: float) -> None:
        if not self._up.is_set():
            try:
                async with asyncio.timeout_at(deadline):
                    await self._up.wait()
            except TimeoutError as exc:
                raise self._error(what, "no reconnect within the timeout", exc) from exc
        if self._closed:
            raise NaqConnectionError(f"{what}: the client's connection to {self.url} is closed")

    def _error(self, what: str, problem: str, exc: BaseException) -> NaqConnectionError:
        return call_failed(what, problem, exc, self.url, self.is_up, self.timeout)

    async def finish_calls(self) -> int:
        """Let calls in progress finish; how many are still unfinished.

        Waits up to the timeout while connected. While disconnected it does not wait: a
        closing client must not hang on a server that is gone (the exit of a script, say).
        """
        if self._busy and self.is_up:
            waits = [asyncio.ensure_future(event.wait()) for event in (self._idle, self._down)]
            try:
                await asyncio.wait(waits, timeout=self.timeout, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for wait in waits:
                    wait.cancel()
        return self._busy

    # -- record watchers ----------------------------------------------------------------------

    @contextlib.contextmanager
    def watch(self) -> Iterator[asyncio.Queue[Any]]:
        """A queue that receives LinkEvents (and whatever the caller puts in it)."""
        queue: asyncio.Queue[Any] = asyncio.Queue()
        self._watchers.add(queue)
        try:
            yield queue
        finally:
            self._watchers.discard(queue)

    async def next_event(
        self, queue: asyncio.Queue[Any], what: str, deadline: float | None, wake: float | None
    ) -> Any:
        """The next item of a watch queue, by ``deadline`` (loop time; None: no limit).

        None when ``wake`` (loop time, None: never) comes before an item and the deadline.
        Raises TimeoutError at the deadline, or NaqConnectionError when the deadline passed
        while the connection was down or the client closed.
        """
        waking = wake is not None and (deadline is None or wake < deadline)
        try:
            async with asyncio.timeout_at(wake if waking else deadline):
                item = await queue.get()
        except TimeoutError:
            if waking:
                return None
            if not self.is_up:
                raise NaqConnectionError(
                    f"{what}: disconnected from NATS at {self.url} when the wait ran out"
                ) from None
            raise
        if item is LinkEvent.CLOSED:
            raise NaqConnectionError(f"{what}: the client's connection to {self.url} closed")
        return item


def call_failed(
    what: str, problem: str, exc: BaseException, url: str, up: bool, timeout: float
) -> NaqConnectionError:
    """The NaqConnectionError of a client call that did not succeed; shared with ``_native``."""
    state = "connected" if up else "disconnected and reconnecting"
    detail = "" if isinstance(exc, TimeoutError) else f" ({exc!r})"
    return NaqConnectionError(
        f"{what}: {problem}{detail}; NATS at {url} is {state} (timeout {timeout:g} s)"
    )
