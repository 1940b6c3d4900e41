"""Pipelined JetStream publishes: many in flight, each confirmed through one reply subscription.

nats-py's ``publish_async`` does the same but pays per call for a random token, a NUID and a
semaphore wait; on the worker's hot path that was a tenth of the time per job. Here a reply
subject is a counter under one inbox, and the server's acks resolve futures by that counter.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg

__all__ = ["AckedPublisher", "PublishError"]


class PublishError(Exception):
    """JetStream refused a publish (or nobody listens on its subject)."""


class AckedPublisher:
    """Publish to JetStream without waiting; each call returns a future of the stored sequence."""

    def __init__(self, nc: NatsClient) -> None:
        self._nc = nc
        self._prefix = ""
        self._counter = 0
        self._pending: dict[str, asyncio.Future[int]] = {}

    async def start(self) -> None:
        self._prefix = self._nc.new_inbox() + "."
        await self._nc.subscribe(self._prefix + "*", cb=self._on_reply)

    async def publish(
        self, subject: str, payload: bytes, headers: dict[str, str] | None = None
    ) -> asyncio.Future[int]:
        """Send one message; the future resolves when JetStream has stored it."""
        self._counter += 1
        token = str(self._counter)
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._pending[token] = future
        try:
            await self._nc.publish(subject, payload, reply=self._prefix + token, headers=headers)
        except BaseException:
            del self._pending[token]
            raise
        return future

    def fail_pending(self, error: BaseException) -> None:
        """Fail every unconfirmed publish (their acks can no longer arrive)."""
        pending, self._pending = self._pending, {}
        for future in pending.values():
            if not future.done():
                future.set_exception(error)

    async def _on_reply(self, msg: Msg) -> None:
        future = self._pending.pop(msg.subject[len(self._prefix) :], None)
        if future is None or future.done():
            return  # its caller gave up waiting (timeout or cancellation)
        status = (msg.headers or {}).get("Status")
        if status is not None:
            future.set_exception(PublishError(f"no stream accepted the message (status {status})"))
            return
        reply: dict[str, Any] = json.loads(msg.data)
        error = reply.get("error")
        if error:
            future.set_exception(PublishError(error.get("description", str(error))))
        else:
            future.set_result(int(reply["seq"]))
