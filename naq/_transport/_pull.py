"""Pull requests on one durable consumer, with messages handed over as they arrive.

At most one pull request is open at a time. Its messages are buffered as they come and
``fetch`` returns as soon as there is any, so a job starts the moment it is delivered, while
under load one request brings a whole batch. The server ends each request with a status
(408 when it expires), so the caller always knows how many messages the open request may
still bring, and keeps that many worker slots for them: nothing is delivered without a slot.
"""

from __future__ import annotations

import asyncio
import collections
import json
import time

from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from ._names import next_message_subject

__all__ = ["PullConsumer"]

_GRACE = 2.0
"""Seconds past a request's expiry after which it counts as lost (e.g. to a reconnect)."""


class PullConsumer:
    """Fetches from ``stream``/``durable`` through one inbox subscription."""

    def __init__(self, nc: NatsClient, stream: str, durable: str) -> None:
        self._nc = nc
        self._next_subject = next_message_subject(stream, durable)
        self._inbox = ""
        self._sub: Subscription | None = None
        self._buffer: collections.deque[Msg] = collections.deque()
        self._owed = 0
        self._request_ends = 0.0
        self._arrived = asyncio.Event()

    async def start(self) -> None:
        self._inbox = self._nc.new_inbox()
        self._sub = await self._nc.subscribe(self._inbox, cb=self._on_message)

    async def fetch(self, want: int, timeout: float) -> tuple[list[Msg], int]:
        """Up to ``want`` messages, and how many the open request may still deliver.

        Opens a request for ``want`` messages (expiring after ``timeout``) when none is
        open, then waits until a message arrives or the request ends.
        """
        if self._owed and time.monotonic() > self._request_ends:
            self._owed = 0  # its end status never came: the server lost the request
        if not self._buffer and not self._owed and want > 0:
            request = {"batch": want, "expires": int(timeout * 1e9)}
            self._owed = want
            self._request_ends = time.monotonic() + timeout + _GRACE
            await self._nc.publish(self._next_subject, json.dumps(request).encode(), self._inbox)
        while not self._buffer and self._owed:
            self._arrived.clear()
            try:
                async with asyncio.timeout(max(0.0, self._request_ends - time.monotonic())):
                    await self._arrived.wait()
            except TimeoutError:
                self._owed = 0
        taken = [self._buffer.popleft() for _ in range(min(want, len(self._buffer)))]
        return taken, self._owed

    def take_buffered(self) -> list[Msg]:
        """Everything delivered but not yet fetched (to hand back when stopping)."""
        taken = list(self._buffer)
        self._buffer.clear()
        return taken

    async def close(self) -> list[Msg]:
        """Stop receiving, then return what was delivered but not yet fetched.

        The server drops an open pull request whose inbox has no interest left, so a
        message handed back after this is not redelivered to this stopping consumer.
        """
        if self._sub is not None:
            await self._sub.unsubscribe()
            self._sub = None
        return self.take_buffered()

    async def _on_message(self, msg: Msg) -> None:
        status = (msg.headers or {}).get("Status")
        if status is None:
            self._buffer.append(msg)
            self._owed = max(0, self._owed - 1)
        elif status == "100":
            return  # idle heartbeat
        else:
            self._owed = 0  # 408 expired, 409 and others: the request is over
        self._arrived.set()
