"""A worker's pull consumer on the wire client: messages handed over as they arrive.

The same rhythm as ``_pull.PullConsumer`` (nats-py's side, see its docstring): at most one
pull request is open; ``fetch`` returns as soon as any message is buffered, with how many
the open request may still bring, so the worker keeps a slot for each. The wire client's
own ``PullSubscription.fetch`` waits for a whole batch instead, which suits a batch reader
but would hold up the first job of a batch until the last arrives.
"""

from __future__ import annotations

from collections import deque

import anyio

from ._names import next_message_subject
from ._wire import WireConnection, _Inbox
from ._wire_protocol import ConnectionLostError, Msg, pull_request

__all__ = ["StreamingPull", "streaming_pull"]

_GRACE = 2.0
"""Seconds past a request's expiry after which it counts as lost (its end status never came)."""


class StreamingPull(_Inbox):
    """Fetches from one durable pull consumer; each request has its own reply subject."""

    def __init__(self, conn: WireConnection, stream: str, consumer: str, sid: int, prefix: str):
        super().__init__(conn, sid)
        self._next_subject = next_message_subject(stream, consumer)
        self._prefix = prefix
        self._counter = 0
        self._buffer: deque[Msg] = deque()
        self._open_reply = ""  # reply subject of the open request, whose end status counts
        self._owed = 0
        self._request_ends = 0.0

    def _resub(self) -> bytes:
        return f"SUB {self._prefix}* {self.sid}\r\n".encode()

    def _lost(self, error: ConnectionLostError) -> None:
        """The server forgets the pull requests of a lost connection: nothing more is owed."""
        self._open_reply, self._owed = "", 0
        self._wake()

    def _deliver(self, msg: Msg) -> None:
        status = msg.status
        if status is None:
            self._buffer.append(msg)
            if self._owed:
                self._owed -= 1
        elif status == 100 or msg.subject != self._open_reply:
            return  # an idle heartbeat, or the end of an abandoned request
        else:
            self._open_reply, self._owed = "", 0  # 408 expired, 409 and others: it is over
        self._wake()

    async def fetch(self, want: int, timeout: float) -> tuple[list[Msg], int]:
        """Up to ``want`` messages, and how many the open request may still deliver.

        Opens a request for ``want`` messages (expiring after ``timeout``) when nothing is
        buffered or owed, then waits until a message arrives or the request ends. Made
        while reconnecting, it first waits up to ``timeout`` for the reconnect.
        """
        buffer, conn = self._buffer, self._conn
        now = anyio.current_time()
        if self._owed and now > self._request_ends:
            self._open_reply, self._owed = "", 0  # its end status never came
        if not buffer and not self._owed and want > 0:
            if conn.is_reconnecting:
                try:
                    left = await conn._until_connected(timeout, "reconnect")
                except TimeoutError:
                    return [], 0
                timeout = max(left or 0.0, 0.01)  # 0 would ask the server never to expire it
            self._counter += 1
            self._open_reply = self._prefix + str(self._counter)
            self._owed = want
            self._request_ends = anyio.current_time() + timeout + _GRACE
            conn._enqueue(self._next_subject, pull_request(want, timeout, False), self._open_reply)
            conn._push()
        if not buffer and self._owed:
            with anyio.move_on_after(self._request_ends - anyio.current_time()):
                while not buffer and self._owed:
                    await self._wait()
            if not buffer and self._owed:
                self._open_reply, self._owed = "", 0
        taken = [buffer.popleft() for _ in range(min(want, len(buffer)))]
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
        await self.unsubscribe()
        return self.take_buffered()


def streaming_pull(conn: WireConnection, stream: str, consumer: str) -> StreamingPull:
    """A :class:`StreamingPull` on ``conn`` for the durable ``consumer`` of ``stream``."""
    conn._check_open()
    puller = StreamingPull(conn, stream, consumer, conn._next_sid + 1, conn.new_inbox() + ".")
    conn._add_sink(puller)
    if not conn.is_reconnecting:  # else the reconnect sends it with the others
        conn._write(puller._resub())
    return puller
