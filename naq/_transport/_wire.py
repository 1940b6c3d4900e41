"""A small native NATS client on anyio byte streams, with the JetStream calls of a job queue.

Why: nats-py runs only on asyncio, so naq's Trio path crosses a thread for every awaited call.
This client runs on whichever anyio backend calls it, on that backend's own thread. Per
connection: a reader task; a writer task that sends the pending buffer in one write, so
pipelined publishes coalesce; one timer task for all request deadlines; and one wildcard
inbox subscription that all requests share, matched to their waiters by the last token.

anyio connects, upgrades to TLS and, with TLS, carries every byte. With plain TCP the hot path
skips the stream's per-call checkpoints: a caller about to wait for a reply writes its request
on the socket itself (no task switch), and on Trio the reader reads the socket itself.

Reconnecting, as nats-py does: when the socket is lost (end of stream, a read or write error,
or ``max_outstanding_pings`` client PINGs unanswered) the connection tries its servers again
(and the ``connect_urls`` INFO announced) with backoff and jitter, redoes the handshake, sends
SUB again for every live subscription (same sid, queue group, the rest of an auto-unsubscribe),
then what was published while it was down (at most ``pending_size`` bytes; past that, publish
raises ReconnectBufferFullError). Calls in flight at the loss fail at once with
ConnectionLostError, since their outcome is unknown; bytes not yet written are dropped (core
NATS publishes are at most once). Requests, flushes and fetches made while reconnecting wait for
the reconnect up to their own timeout and are sent only then, so one that times out (TimeoutError)
was never sent. Subscriptions stay open across a reconnect.

Not yet supported (future work): nkeys/JWT authentication, push consumers.
"""

from __future__ import annotations

import base64
import heapq
import inspect
import itertools
import json
import random
import secrets
import socket
import ssl
import sys
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import partial
from types import TracebackType
from typing import NoReturn, Protocol, Self, cast

import anyio
import anyio.abc
import anyio.lowlevel
from anyio.streams.tls import TLSStream
from loguru import logger

from ._names import direct_get_subject, next_message_subject
from ._wire_protocol import (
    ConnectionClosedError,
    ConnectionLostError,
    Headers,
    HeadersLike,
    JetStreamAPIError,
    Msg,
    MsgMetadata,
    NoRespondersError,
    Parser,
    ProtocolError,
    PubAck,
    ReconnectBufferFullError,
    ServerError,
    StatusError,
    SubscriptionClosedError,
    WireError,
    check_subject,
    connect_options,
    encode_headers,
    encode_pub,
    json_object,
    parse_connect_urls,
    parse_pub_ack,
    pub_outcome,
    pull_request,
    raise_api_error,
    status_error,
)

__all__ = [
    "ClosedHook",
    "ConnectionClosedError",
    "ConnectionLostError",
    "DisconnectedHook",
    "Headers",
    "JetStreamAPIError",
    "Msg",
    "MsgMetadata",
    "NoRespondersError",
    "ProtocolError",
    "PubAck",
    "PullSubscription",
    "ReconnectBufferFullError",
    "ReconnectedHook",
    "ServerError",
    "StatusError",
    "Subscription",
    "SubscriptionClosedError",
    "WireConnection",
    "WireError",
]

_READ_SIZE = 256 * 1024
_MAX_PENDING_WRITE = 8 * 1024 * 1024
"""Bytes of unsent publishes past which ``publish`` waits for the writer to catch up."""
_FETCH_GRACE = 1.0
"""Seconds a fetch waits past its expiry for the server's end-of-request status."""
_TIMER_RESOLUTION = 0.01
"""Seconds by which the deadline timer may fire late; it expires that many waiters at once."""
_PENDING_SIZE = 8 * 1024 * 1024
"""Default bytes of publishes buffered while reconnecting (nats-py's ``pending_size`` is 2 MiB)."""
_BACKOFF_START = 0.05
"""Seconds of the first pause between rounds of reconnect attempts; it doubles each round."""
_HOOK_GRACE = 5.0
"""Seconds an awaitable ``on_closed`` hook may take, shielded, while the connection closes."""
_PONG = Msg("", "", b"", None)

DisconnectedHook = Callable[[ConnectionLostError], Awaitable[None] | None]
"""Called when the connection is lost and starts reconnecting, with the loss's error."""
ReconnectedHook = Callable[[], Awaitable[None] | None]
"""Called once reconnected, after the subscriptions are sent again."""
ClosedHook = Callable[[ConnectionClosedError], Awaitable[None] | None]
"""Called once the connection is closed for good, with the reason."""

OutgoingMessage = tuple[str, bytes] | tuple[str, bytes, HeadersLike | None]
"""What ``js_publish_many`` takes: (subject, payload) or (subject, payload, headers)."""


def _on_trio() -> bool:
    """Whether the caller runs on Trio (else asyncio: the other backend anyio has)."""
    if "trio" not in sys.modules:
        return False
    import trio

    try:
        trio.lowlevel.current_task()
    except RuntimeError:  # not inside trio.run
        return False
    return True


@dataclass(frozen=True, slots=True)
class _Options:
    """What ``connect`` was given, kept for every reconnect."""

    user: str | None
    password: str | None
    token: str | None
    ssl_context: ssl.SSLContext | None
    name: str | None
    connect_timeout: float
    reconnect: bool
    max_reconnect_attempts: int
    reconnect_wait: float
    reconnect_jitter: float
    ping_interval: float
    max_outstanding_pings: int
    pending_size: int
    on_disconnected: DisconnectedHook | None
    on_reconnected: ReconnectedHook | None
    on_closed: ClosedHook | None


class _Replies:
    """Waiter for one or more replies, filled in by the reader; set once all are in."""

    __slots__ = ("event", "results", "waiting")

    def __init__(self, count: int) -> None:
        self.results: list[Msg | WireError | None] = [None] * count
        self.waiting = count
        self.event = anyio.Event()

    def settle(self, index: int, result: Msg | WireError) -> None:
        if self.results[index] is None:
            self.results[index] = result
            self.waiting -= 1
            if not self.waiting:
                self.event.set()


class _Sink(Protocol):
    """What a subscription id delivers to."""

    def _deliver(self, msg: Msg) -> None: ...
    def _close(self, error: ConnectionClosedError | None) -> None: ...
    def _lost(self, error: ConnectionLostError) -> None: ...
    def _resub(self) -> bytes: ...


class _ReplyMux:
    """The one ``<inbox>.*`` subscription that all requests share; token -> (waiter, index)."""

    __slots__ = ("counter", "prefix", "replies", "sid")

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.counter = 0
        self.sid = 0
        self.replies: dict[str, tuple[_Replies, int]] = {}

    def _resub(self) -> bytes:
        return f"SUB {self.prefix}* {self.sid}\r\n".encode()

    def _lost(self, error: ConnectionLostError) -> None:
        """Fail the requests in flight: their replies, if any, went with the old socket."""
        entries = list(self.replies.values())
        self.replies.clear()
        for waiter, index in entries:
            waiter.settle(index, error)

    def _deliver(self, msg: Msg) -> None:
        entry = self.replies.pop(msg.subject[len(self.prefix) :], None)
        if entry is not None:  # else its caller gave up waiting (timeout or cancellation)
            entry[0].settle(entry[1], msg)

    def _close(self, error: ConnectionClosedError | None) -> None:
        failed = error or ConnectionClosedError("connection closed")
        entries = list(self.replies.values())
        self.replies.clear()
        for waiter, index in entries:
            waiter.settle(index, failed)


class _Inbox:
    """Shared by subscriptions: one waiter slot that the reader sets when something arrives."""

    def __init__(self, conn: WireConnection, sid: int) -> None:
        self._conn = conn
        self.sid = sid
        self._waiter: anyio.Event | None = None
        self._unsubscribed = False
        self._error: ConnectionClosedError | None = None

    def _close(self, error: ConnectionClosedError | None) -> None:
        self._unsubscribed = True
        self._error = error
        self._wake()

    def _lost(self, error: ConnectionLostError) -> None:
        """A subscription outlives a lost socket: it is sent again once reconnected."""

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            waiter.set()

    async def _wait(self) -> None:
        if self._error is not None:
            raise ConnectionClosedError(str(self._error)) from self._error
        if self._unsubscribed:
            raise SubscriptionClosedError(f"subscription {self.sid} was unsubscribed")
        if self._waiter is None:
            self._waiter = anyio.Event()
        await self._waiter.wait()

    async def unsubscribe(self) -> None:
        """Stop receiving; what was already received can still be taken."""
        self._forget(self._conn._write)

    def _forget(self, write: Callable[[bytes], None]) -> None:
        """Drop the sid at once (messages still coming for it are dropped) and ``write`` the
        UNSUB."""
        if not self._unsubscribed:
            self._conn._sinks.pop(self.sid, None)
            self._close(None)
            if self._conn.is_connected:  # else it is simply not sent again once reconnected
                write(f"UNSUB {self.sid}\r\n".encode())


class Subscription(_Inbox):
    """Messages on one subject, buffered in a deque; ``next_msg`` or ``async for`` takes them.

    Past ``max_pending`` buffered messages new ones are dropped and counted in ``dropped``.
    """

    def __init__(
        self, conn: WireConnection, sid: int, subject: str, queue: str | None, max_pending: int
    ) -> None:
        super().__init__(conn, sid)
        self.subject = subject
        self.queue = queue
        self.max_pending = max_pending
        self.dropped = 0
        self.received = 0
        self._queue: deque[Msg] = deque()
        self._max_msgs = 0

    def _deliver(self, msg: Msg) -> None:
        self.received += 1
        if len(self._queue) >= self.max_pending:
            self.dropped += 1
        else:
            self._queue.append(msg)
        if self.received == self._max_msgs:  # the server has unsubscribed it too
            self._conn._sinks.pop(self.sid, None)
            self._unsubscribed = True
        self._wake()

    def _resub(self) -> bytes:
        """SUB, and UNSUB for the messages still to come when auto-unsubscribe is set."""
        line = f"SUB {self.subject} {self.queue or ''} {self.sid}\r\n"
        if self._max_msgs:
            line += f"UNSUB {self.sid} {self._max_msgs - self.received}\r\n"
        return line.encode()

    async def next_msg(self, timeout: float | None = None) -> Msg:
        """The next message; TimeoutError after ``timeout`` seconds (None: wait forever).

        After ``unsubscribe`` the buffered messages are still returned, then
        SubscriptionClosedError; once the connection is closed, ConnectionClosedError. While
        the connection is reconnecting it waits on (for up to ``timeout``).
        """
        queue = self._queue
        if not queue:
            try:
                with anyio.fail_after(timeout):
                    while not queue:
                        await self._wait()
            except TimeoutError:
                raise TimeoutError(f"no message on {self.subject!r} in {timeout} s") from None
        return queue.popleft()

    def pending(self) -> int:
        return len(self._queue)

    async def unsubscribe(self, max_msgs: int | None = None) -> None:
        """Stop now, or once ``max_msgs`` messages have arrived in all (counting those so far).

        Stopped now, its UNSUB goes out with the connection's next write (a PING at the
        latest), not in a send of its own: a result wait ends with one, and that send was a
        fifth of an enqueue-to-result round trip's. A queue member's UNSUB goes at once (the
        server would go on giving it the group's messages, to be dropped here), and so does
        a pull inbox's (the server would go on delivering to its pull requests).
        """
        if max_msgs is None or max_msgs <= self.received:
            self._forget(self._conn._write if self.queue else self._conn._write_later)
        elif not self._unsubscribed:
            self._max_msgs = max_msgs
            if self._conn.is_connected:  # else the reconnect sends what is left of it
                self._conn._write(f"UNSUB {self.sid} {max_msgs}\r\n".encode())

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> Msg:
        try:
            return await self.next_msg()
        except SubscriptionClosedError:
            raise StopAsyncIteration from None


class PullSubscription(_Inbox):
    """Fetches from one durable pull consumer; every fetch is one request on one inbox.

    Each request has its own reply subject under the inbox, so the end status (404, 408,
    409) of an earlier, abandoned request cannot end a later one; messages that arrive for
    an abandoned request are kept and returned by the next fetch.
    """

    def __init__(self, conn: WireConnection, stream: str, consumer: str, sid: int, prefix: str):
        super().__init__(conn, sid)
        self._next_subject = next_message_subject(stream, consumer)
        self._prefix = prefix
        self._counter = 0
        self._buffer: deque[Msg] = deque()
        self._open_reply = ""  # reply subject of the request being waited on
        self._want = 0
        self._end: Msg | None = None  # the status message that ended the open request
        self._interrupted: tuple[str, ConnectionLostError] | None = None  # (reply, loss)

    def _resub(self) -> bytes:
        return f"SUB {self._prefix}* {self.sid}\r\n".encode()

    def _lost(self, error: ConnectionLostError) -> None:
        """End the open request: the server forgets pull requests of a lost connection."""
        if self._open_reply:
            self._interrupted = (self._open_reply, error)
            self._open_reply = ""
            self._wake()

    def _deliver(self, msg: Msg) -> None:
        if msg.status is None:
            self._buffer.append(msg)
            if len(self._buffer) < self._want:
                return
        elif msg.status == 100 or msg.subject != self._open_reply:
            return  # a heartbeat, or the end of an abandoned request
        else:
            self._end = msg
            self._open_reply = ""
        self._wake()

    async def fetch(
        self, batch: int = 1, expires: float = 5.0, *, no_wait: bool = False
    ) -> list[Msg]:
        """Up to ``batch`` messages: returns once ``batch`` arrived or the request ended.

        The server ends a request after ``expires`` seconds (408), or at once when
        ``no_wait`` and nothing more is pending (404); both return what arrived, possibly
        nothing. A 409 (consumer deleted, limits exceeded) raises StatusError if nothing
        arrived.

        When the connection is lost during the fetch, it returns what had arrived, or raises
        ConnectionLostError if nothing had. Made while reconnecting, it waits up to ``expires``
        for the reconnect (returning what is buffered, likely nothing, if it does not come)
        and asks the server for the time left.
        """
        if batch < 1:
            raise ValueError("batch must be at least 1")
        buffer = self._buffer
        if len(buffer) < batch and self._conn.is_reconnecting:
            try:
                left = await self._conn._until_connected(expires, "reconnect")
                expires = max(left or 0.0, 0.01)  # 0 would ask the server never to expire it
            except TimeoutError:
                return [buffer.popleft() for _ in range(min(batch, len(buffer)))]
        if len(buffer) < batch:
            self._counter += 1
            reply = self._prefix + str(self._counter)
            if self._unsubscribed and self._error is None:
                raise SubscriptionClosedError("fetch after unsubscribe")
            self._open_reply, self._want, self._end = reply, batch, None
            request = pull_request(batch - len(buffer), expires, no_wait)
            self._conn._enqueue(self._next_subject, request, reply)
            self._conn._push()
            try:
                with anyio.move_on_after(expires + _FETCH_GRACE):
                    while len(buffer) < batch and self._open_reply == reply:
                        await self._wait()
            finally:
                if self._open_reply == reply:
                    self._open_reply = ""
            interrupted = self._interrupted
            if interrupted is not None and interrupted[0] == reply:
                self._interrupted = None
                if not buffer:
                    raise ConnectionLostError(str(interrupted[1])) from interrupted[1]
        end = self._end
        if not buffer and end is not None and end.status not in (404, 408):
            raise status_error(end)
        return [buffer.popleft() for _ in range(min(batch, len(buffer)))]


class WireConnection:
    """One NATS connection. Start it with ``async with`` or by passing ``task_group``.

    ``async with await WireConnection.connect("127.0.0.1", 4222) as nc: ...`` runs its reader
    and writer in a task group of its own; with ``task_group=tg`` they run in ``tg`` and
    ``close()`` ends them. It reconnects by itself (see the module's docstring); ``reconnects``
    counts the reconnects so far.
    """

    def __init__(self, servers: list[tuple[str, int]], options: _Options) -> None:
        self._options = options
        self._servers = servers
        self._tls_names = {server: server[0] for server in servers}  # also: the known servers
        self._server = servers[0]  # the server connected to
        self._stream: anyio.abc.ByteStream | None = None
        self._parser = Parser(self)
        self._pending = bytearray()
        self._wake_writer = anyio.Event()
        self._writer_woken = False
        self._writing = False  # the writer holds data taken from _pending but not yet sent
        self._raw: socket.socket | None = None  # plain TCP: written directly, see _push
        self._raw_reads = False  # Trio and plain TCP: read directly too, see _read_raw
        self._dup: socket.socket | None = None  # a duplicate descriptor of ours to close
        self._drained: anyio.Event | None = None
        self._pongs: deque[_Replies | None] = deque()  # one per PING sent; None: a keepalive
        self._pings_out = 0  # keepalive PINGs sent since the last PONG
        self._sinks: dict[int, _Sink] = {}
        self._next_sid = 0
        self._scope = anyio.CancelScope()
        self._session_scope = anyio.CancelScope()  # reader, writer, pinger of one socket
        self._group: anyio.abc.TaskGroup | None = None  # runs async hooks
        self._own_group: anyio.abc.TaskGroup | None = None
        self._running = False
        self._error: ConnectionClosedError | None = None
        self._reconnecting = False
        self._lost_error: ConnectionLostError | None = None
        self._reconnected = anyio.Event()  # set when a reconnect ends (or the connection closes)
        self._closed_hook_called = False
        self.reconnects = 0
        self.info: dict[str, object] = {}
        self.last_server_error = ""  # the latest -ERR that did not end the connection
        self._got_info = False
        self._inbox_root = "_INBOX." + secrets.token_urlsafe(16)
        self._mux = _ReplyMux(self._inbox_root + ".r.")
        self._mux.sid = self._add_sink(self._mux)
        self._inboxes = 0
        self._deadlines: list[tuple[float, int, anyio.Event]] = []  # a heap, see _timer_loop
        self._deadline_count = itertools.count()  # orders equal deadlines
        self._heap_limit = 1024
        self._timer_wake = anyio.Event()

    # -- connecting ------------------------------------------------------------------------

    @classmethod
    async def connect(
        cls,
        host: str | None = None,
        port: int = 4222,
        *,
        servers: Sequence[tuple[str, int]] | None = None,
        user: str | None = None,
        password: str | None = None,
        token: str | None = None,
        ssl_context: ssl.SSLContext | None = None,
        name: str | None = None,
        connect_timeout: float = 5.0,
        reconnect: bool = True,
        max_reconnect_attempts: int = -1,
        reconnect_wait: float = 2.0,
        reconnect_jitter: float = 0.1,
        ping_interval: float = 120.0,
        max_outstanding_pings: int = 2,
        pending_size: int = _PENDING_SIZE,
        on_disconnected: DisconnectedHook | None = None,
        on_reconnected: ReconnectedHook | None = None,
        on_closed: ClosedHook | None = None,
        task_group: anyio.abc.TaskGroup | None = None,
    ) -> WireConnection:
        """Connect, handshake (INFO, CONNECT, PING/PONG), and start if given a task group.

        ``servers`` lists (host, port) to try in order, instead of ``host`` and ``port``. TLS is
        used when the server requires it or ``ssl_context`` is given. A ``-ERR`` during the
        handshake (e.g. an authorization violation) raises ServerError; with several servers,
        the error of the last one is raised if none takes the connection.

        Once connected: ``reconnect`` on a loss, trying each server up to
        ``max_reconnect_attempts`` times (-1: forever), pausing between rounds from 50 ms
        doubling up to ``reconnect_wait`` seconds, plus up to ``reconnect_jitter``. A PING
        every ``ping_interval`` seconds; ``max_outstanding_pings`` unanswered ones count as a
        loss. Hooks may be plain functions or coroutine functions (run as tasks of the
        connection); their errors are logged.
        """
        if servers and host is not None:
            raise ValueError("give host and port, or servers, not both")
        if max_outstanding_pings < 1:
            raise ValueError("max_outstanding_pings must be at least 1")
        pool = [(h, p) for h, p in servers] if servers else [(host or "127.0.0.1", port)]
        options = _Options(
            user, password, token, ssl_context, name, connect_timeout, reconnect,
            max_reconnect_attempts, reconnect_wait, reconnect_jitter, ping_interval,
            max_outstanding_pings, pending_size, on_disconnected, on_reconnected, on_closed,
        )  # fmt: skip
        conn = cls(pool, options)
        for index, server in enumerate(pool):
            try:
                await conn._open(server)
                break
            except (OSError, WireError) as exc:  # TimeoutError is an OSError
                if index == len(pool) - 1:
                    raise
                logger.info("cannot connect to NATS at {}:{}: {!r}", *server, exc)
        if task_group is not None:
            await task_group.start(conn._run)
        return conn

    async def _open(self, server: tuple[str, int]) -> None:
        """Connect to one server within connect_timeout; on success it is the one in use."""
        host, port = server
        timeout = self._options.connect_timeout
        try:
            with anyio.fail_after(timeout):
                await self._handshake(host, port, self._tls_names.get(server, host))
        except TimeoutError:
            raise TimeoutError(f"no NATS handshake with {host}:{port} in {timeout} s") from None
        self._server = server

    async def _handshake(self, host: str, port: int, tls_name: str) -> None:
        """Open a socket, handshake on it, and make it the connection's socket.

        On any failure the new socket is closed and the connection is left as it was.
        """
        options = self._options
        stream: anyio.abc.ByteStream = await anyio.connect_tcp(host, port)
        raw: socket.socket | None = None
        dup: socket.socket | None = None
        pong = _Replies(1)
        self._parser = Parser(self)
        self._got_info = False
        try:
            try:
                while not self._got_info:
                    self._parser.feed(await stream.receive())
                tls = self.info.get("tls_required") is True or options.ssl_context is not None
                if tls:
                    stream = await TLSStream.wrap(
                        stream,
                        hostname=tls_name,
                        ssl_context=options.ssl_context or ssl.create_default_context(),
                        standard_compatible=False,
                    )
                else:
                    raw = stream.extra(anyio.abc.SocketAttribute.raw_socket)
                    if not _on_trio():  # asyncio hands out a view without send(): a dup has it
                        raw = dup = socket.fromfd(raw.fileno(), raw.family, raw.type)
                    raw.setblocking(False)
                # Nothing else waits for a PONG while there is no socket: this one is first.
                self._pongs.append(pong)
                hello = connect_options(
                    options.user, options.password, options.token, options.name, tls=tls
                )
                await stream.send(hello + b"PING\r\n")
                while pong.waiting:
                    self._parser.feed(await stream.receive())
            except anyio.EndOfStream:
                raise ConnectionClosedError(
                    "the server closed the connection during handshake"
                ) from None
            except (anyio.BrokenResourceError, OSError) as exc:
                raise ConnectionClosedError(f"NATS handshake failed: {exc!r}") from exc
            if isinstance(pong.results[0], WireError):  # closed meanwhile
                raise pong.results[0]
        except BaseException:
            if pong in self._pongs:
                self._pongs.remove(pong)
            if dup is not None:
                dup.close()
            await anyio.aclose_forcefully(stream)
            raise
        self._install(stream, raw, dup)

    def _install(
        self, stream: anyio.abc.ByteStream, raw: socket.socket | None, dup: socket.socket | None
    ) -> None:
        """Use a handshaken socket: SUB for every live subscription goes first, then what
        was published while reconnecting. Synchronous, so no subscription changes between."""
        self._stream, self._raw, self._dup = stream, raw, dup
        self._raw_reads = raw is not None and dup is None  # Trio: read the socket itself
        self._pending[:0] = b"".join(sink._resub() for sink in self._sinks.values())
        self._pings_out = 0
        self._session_scope = anyio.CancelScope()
        self._wake_writer = anyio.Event()
        self._writer_woken = False
        if self._reconnecting:
            self._reconnecting = False
            self.reconnects += 1
            self._reconnected.set()

    async def _reconnect(self, lost: ConnectionLostError) -> None:
        """Try the servers, with backoff and jitter, until one takes the connection.

        Gives up, closing the connection, once every server failed ``max_reconnect_attempts``
        times in a row.
        """
        options = self._options
        limit = options.max_reconnect_attempts
        attempts: dict[tuple[str, int], int] = {}
        last: BaseException = lost
        rounds = 0
        while True:
            start = self._servers.index(self._server) + 1
            order = self._servers[start:] + self._servers[:start]  # the lost one last
            pool = [server for server in order if limit < 0 or attempts.get(server, 0) < limit]
            if not pool:
                error = ConnectionClosedError(
                    f"gave up reconnecting to NATS after {sum(attempts.values())} attempts; "
                    f"last error: {last!r}"
                )
                error.__cause__ = last
                self._fail(error)
                await anyio.sleep_forever()  # _fail cancelled the scope we run in
            for server in pool:
                attempts[server] = attempts.get(server, 0) + 1
                try:
                    await self._open(server)
                except (OSError, WireError) as exc:  # TimeoutError is an OSError
                    last = exc
                    logger.debug("reconnecting to NATS at {}:{} failed: {!r}", *server, exc)
                    continue
                logger.info("reconnected to NATS at {}:{}", *server)
                return
            pause = min(options.reconnect_wait, _BACKOFF_START * 2 ** min(rounds, 30))
            await anyio.sleep(pause + random.uniform(0, options.reconnect_jitter))
            rounds += 1

    # -- running ---------------------------------------------------------------------------

    async def _run(
        self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Sessions on one socket after another until close(), a loss without reconnect, or
        giving up reconnecting; then close the socket."""
        if self._running or self._error is not None:
            raise RuntimeError("this connection was already started")
        self._running = True
        options = self._options
        try:
            with self._scope:
                async with anyio.create_task_group() as tg:
                    self._group = tg
                    tg.start_soon(self._timer_loop)
                    task_status.started()
                    while True:
                        await self._session()
                        lost = self._lost_error
                        if self._error is not None or lost is None:
                            break
                        await self._close_socket(force=True)
                        if options.on_disconnected is not None:
                            self._fire(partial(options.on_disconnected, lost), "on_disconnected")
                        await self._reconnect(lost)
                        if options.on_reconnected is not None:
                            self._fire(options.on_reconnected, "on_reconnected")
                    tg.cancel_scope.cancel()
        finally:
            self._group = None
            self._fail(ConnectionClosedError("connection closed"))
            await self._close_socket()
            await self._call_closed_hook()

    async def _session(self) -> None:
        """Reader, writer and keepalive on the current socket until it is lost."""
        with self._session_scope:
            async with anyio.create_task_group() as tg:
                if self._pending:
                    self._kick()
                tg.start_soon(self._write_loop)
                if self._options.ping_interval > 0:
                    tg.start_soon(self._ping_loop)
                await self._read_loop()
                tg.cancel_scope.cancel()

    def _fire(self, hook: Callable[[], Awaitable[None] | None], what: str) -> None:
        """Call a hook now; a coroutine it returns runs as a task of the connection."""
        try:
            result = hook()
        except Exception:  # noqa: BLE001 - logged; a hook's bug must not end the connection
            logger.exception("the {} hook of a NATS connection failed", what)
            return
        if inspect.isawaitable(result):
            if self._group is None:
                raise RuntimeError("no task group to run an async hook in")
            self._group.start_soon(self._await_hook, result, what)

    async def _await_hook(self, result: Awaitable[None], what: str) -> None:
        try:
            await result
        except Exception:  # noqa: BLE001 - logged; a hook's bug must not end the connection
            logger.exception("the {} hook of a NATS connection failed", what)

    async def _call_closed_hook(self) -> None:
        """on_closed, once; awaited (shielded, for up to _HOOK_GRACE s) if it is a coroutine."""
        hook, error = self._options.on_closed, self._error
        if hook is None or error is None or self._closed_hook_called:
            return
        self._closed_hook_called = True
        try:
            result = hook(error)
            if inspect.isawaitable(result):
                with anyio.CancelScope(shield=True, deadline=anyio.current_time() + _HOOK_GRACE):
                    await result
        except Exception:  # noqa: BLE001 - logged; the connection is closed anyway
            logger.exception("the on_closed hook of a NATS connection failed")

    async def __aenter__(self) -> Self:
        if not self._running:
            group = anyio.create_task_group()
            await group.__aenter__()
            try:
                await group.start(self._run)
            except BaseException as exc:
                await group.__aexit__(type(exc), exc, exc.__traceback__)
                raise
            self._own_group = group
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool | None:
        try:
            await self.close()
        finally:
            group, self._own_group = self._own_group, None
            if group is not None:
                await group.__aexit__(et, exc, tb)
        return None

    async def _read_loop(self) -> None:
        """Feed the parser until the socket fails; then report the loss."""
        stream = self._stream
        assert stream is not None
        receive = stream.receive
        feed = self._parser.feed
        try:
            if self._raw is not None and self._raw_reads:
                await self._read_raw(self._raw)  # ends only by raising
            elif self._dup is not None and _take_over_reads(stream, feed):
                await _read_dup(self._dup, feed)  # ends only by raising
            else:
                while True:
                    feed(await receive(_READ_SIZE))
        except anyio.EndOfStream:
            error = ConnectionLostError("the server closed the connection")
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError) as exc:
            error = ConnectionLostError(f"connection lost: {exc!r}")
        except WireError as exc:  # -ERR or data we cannot parse: the connection is unusable
            error = ConnectionLostError(f"connection failed: {exc}")
            error.__cause__ = exc
        self._lost(error)

    async def _read_raw(self, sock: socket.socket) -> NoReturn:
        """Trio only: recv on the socket itself, waiting only when it has nothing.

        Trio's stream yields to the scheduler after every successful receive; with replies
        arriving one by one that doubles the scheduler passes per request.
        """
        import trio  # only reached on Trio

        feed = self._parser.feed
        streak = 0
        while True:
            try:
                data = sock.recv(_READ_SIZE)
            except BlockingIOError:
                streak = 0
                await trio.lowlevel.wait_readable(sock)
                continue
            if not data:
                raise anyio.EndOfStream
            feed(data)
            streak += 1
            if streak >= 16:  # a flood of data: let other tasks run now and then
                streak = 0
                await anyio.lowlevel.checkpoint()

    async def _write_loop(self) -> None:
        stream = self._stream
        assert stream is not None
        send = stream.send
        pending = self._pending
        raw = self._raw
        try:
            while True:
                await self._wake_writer.wait()
                self._wake_writer = anyio.Event()
                self._writer_woken = False
                self._writing = raw is None
                while pending:
                    if raw is None:
                        data = bytes(pending)
                        pending.clear()
                        await send(data)
                    elif not self._send_raw(raw):
                        await anyio.wait_writable(raw)
                self._writing = False
                drained, self._drained = self._drained, None
                if drained is not None:
                    drained.set()
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError) as exc:
            self._lost(ConnectionLostError(f"connection lost while writing: {exc!r}"))

    async def _ping_loop(self) -> None:
        """A PING every ping_interval; ``max_outstanding_pings`` unanswered ones: a loss.

        Why: a server that stops (or a network that drops packets silently) sends no end of
        stream; only missing PONGs tell.
        """
        options = self._options
        while True:
            await anyio.sleep(options.ping_interval)
            if self._pings_out >= options.max_outstanding_pings:
                self._lost(
                    ConnectionLostError(
                        f"stale connection: {self._pings_out} PINGs unanswered, one sent every "
                        f"{options.ping_interval} s"
                    )
                )
                return
            self._pings_out += 1
            self._pongs.append(None)
            self._write(b"PING\r\n")

    async def _timer_loop(self) -> None:
        """Wake the waiters whose deadline passed, many at a time.

        A cancel scope per request (``fail_after``) costs more than the rest of the client's
        work for an awaited publish; one heap push per request and one timer for all is
        cheaper. Entries of answered requests stay in the heap until their deadline, so an
        entry holds the waiter's event only, never its replies.
        """
        heap = self._deadlines
        while True:
            now = anyio.current_time()
            while heap and heap[0][0] <= now:
                heapq.heappop(heap)[2].set()  # if unanswered, its caller finds a timeout
            self._timer_wake = anyio.Event()
            if heap:
                with anyio.move_on_after(heap[0][0] - now + _TIMER_RESOLUTION):
                    await self._timer_wake.wait()
            else:
                await self._timer_wake.wait()

    def _add_deadline(self, waiter: _Replies, timeout: float) -> None:
        heap = self._deadlines
        if len(heap) > self._heap_limit:  # mostly answered requests (long timeouts): drop them
            heap[:] = [entry for entry in heap if not entry[2].is_set()]
            heapq.heapify(heap)
            self._heap_limit = max(1024, 2 * len(heap))
        entry = (anyio.current_time() + timeout, next(self._deadline_count), waiter.event)
        heapq.heappush(heap, entry)
        if heap[0] is entry:  # earlier than what the timer sleeps until
            self._timer_wake.set()

    def _lost(self, error: ConnectionLostError) -> None:
        """The socket is gone: reconnect if allowed, else close with ``error``.

        Calls in flight fail with ``error`` (their outcome is unknown); unsent bytes are
        dropped, since the first of them may be part of a message half written.
        """
        if self._error is not None or self._reconnecting:
            return
        if not self._options.reconnect:
            self._fail(error)
            return
        logger.warning("lost the NATS connection to {}:{} ({}); reconnecting", *self._server, error)
        self._reconnecting = True
        self._lost_error = error
        self._reconnected = anyio.Event()
        self._raw = None  # callers stop writing to the dead socket
        if self._pending:
            logger.info("dropped {} unsent bytes with the lost connection", len(self._pending))
        self._pending.clear()
        self._writing = False
        for sink in list(self._sinks.values()):
            sink._lost(error)
        pongs = list(self._pongs)
        self._pongs.clear()
        for pong in pongs:
            if pong is not None:
                pong.settle(0, error)
        drained, self._drained = self._drained, None
        if drained is not None:
            drained.set()
        self._session_scope.cancel()

    def _fail(self, error: ConnectionClosedError) -> None:
        """Mark the connection dead and fail every waiter with ``error`` (first call wins)."""
        if self._error is not None:
            return
        self._error = error
        self._reconnecting = False
        self._raw = None
        self._pending.clear()  # nothing more will be sent
        sinks = list(self._sinks.values())
        self._sinks.clear()
        for sink in sinks:
            sink._close(error)
        while self._pongs:
            pong = self._pongs.popleft()
            if pong is not None:
                pong.settle(0, error)
        if self._drained is not None:
            self._drained.set()
        self._reconnected.set()  # waiters for a reconnect find the connection closed
        self._scope.cancel()

    # -- parser callbacks --------------------------------------------------------------------

    def on_msg(self, sid: int, msg: Msg) -> None:
        sink = self._sinks.get(sid)
        if sink is not None:
            sink._deliver(msg)

    def on_info(self, info: dict[str, object]) -> None:
        """The first INFO of a socket replaces the last one; later ones update it."""
        self.info = {**self.info, **info} if self._got_info else info
        self._got_info = True
        for server in parse_connect_urls(info):
            if server not in self._tls_names:  # TLS checks the name the user gave
                self._tls_names[server] = self._servers[0][0]
                self._servers.append(server)

    def on_ping(self) -> None:
        self._write(b"PONG\r\n")

    def on_pong(self) -> None:
        self._pings_out = 0
        if self._pongs:
            waiter = self._pongs.popleft()
            if waiter is not None:
                waiter.settle(0, _PONG)

    def on_err(self, message: str) -> None:
        if message.lower().startswith("permissions violation"):
            self.last_server_error = message  # the server keeps the connection
            return
        raise ServerError(message)

    # -- core NATS ---------------------------------------------------------------------------

    @property
    def is_closed(self) -> bool:
        """Closed for good: by close(), a loss without reconnect, or giving up reconnecting."""
        return self._error is not None

    @property
    def is_reconnecting(self) -> bool:
        return self._reconnecting

    @property
    def is_connected(self) -> bool:
        return self._error is None and not self._reconnecting

    @property
    def connected_server(self) -> tuple[str, int]:
        """(host, port) of the server in use, or last used while reconnecting."""
        return self._server

    @property
    def max_payload(self) -> int:
        value = self.info.get("max_payload")
        return value if isinstance(value, int) else 1024 * 1024

    @property
    def server_version(self) -> str:
        return str(self.info.get("version", ""))

    def new_inbox(self) -> str:
        self._inboxes += 1
        return f"{self._inbox_root}.{self._inboxes}"

    def _check_open(self) -> None:
        if self._error is not None:
            raise ConnectionClosedError(str(self._error)) from self._error
        if not self._running:
            raise RuntimeError("the connection is not started: use `async with` or task_group")

    async def _until_connected(self, timeout: float | None, what: str) -> float | None:
        """While reconnecting, wait for the reconnect; the time left of ``timeout``.

        Why: a call made while the connection is down is sent only once it is back, so one
        that times out here (TimeoutError) was never sent.
        """
        start = anyio.current_time()
        with anyio.move_on_after(timeout):
            while self._reconnecting:
                await self._reconnected.wait()
        self._check_open()
        if self._reconnecting:
            raise TimeoutError(f"no {what} in {timeout} s: still reconnecting to NATS")
        return None if timeout is None else max(0.0, timeout - (anyio.current_time() - start))

    def _write(self, data: bytes) -> None:
        self._write_later(data)
        self._kick()

    def _write_later(self, data: bytes) -> None:
        """Add ``data`` to what the next write sends, without waking the writer for it."""
        self._pending += data

    def _kick(self) -> None:
        """Have the writer send what is pending (coalescing what is added until it runs)."""
        if not self._writer_woken:
            self._writer_woken = True
            self._wake_writer.set()

    def _push(self) -> None:
        """Send what is pending now, when a caller is about to wait for the answer.

        With plain TCP this is a non-blocking ``send`` on the socket, with no task switch;
        what the socket does not take yet is left to the writer. Every write goes to the
        socket this way, never through the stream, and always from the front of the pending
        buffer, so the order of bytes holds. With TLS it wakes the writer.
        """
        raw = self._raw
        if raw is None or not self._send_raw(raw):
            self._kick()

    def _send_raw(self, raw: socket.socket) -> bool:
        """Write what the socket takes of the pending buffer; True once it is empty."""
        try:
            sent = raw.send(self._pending)
        except BlockingIOError:
            return False
        except OSError as exc:  # the loss fails the waiters and empties the pending buffer
            self._lost(ConnectionLostError(f"connection lost while writing: {exc!r}"))
            return True
        del self._pending[:sent]
        return not self._pending

    def _add_sink(self, sink: _Sink) -> int:
        self._next_sid += 1
        self._sinks[self._next_sid] = sink
        return self._next_sid

    def _enqueue(
        self, subject: str, payload: bytes, reply: str = "", headers: HeadersLike | None = None
    ) -> None:
        """Append a message to the pending buffer; the caller then calls _kick or _push."""
        self._check_open()
        check_subject(subject)
        raw_headers = encode_headers(headers) if headers is not None else None
        size = len(payload) + (len(raw_headers) if raw_headers else 0)
        if size > self.max_payload:
            raise ValueError(f"message of {size} bytes exceeds max_payload {self.max_payload}")
        if self._reconnecting and len(self._pending) + size > self._options.pending_size:
            raise ReconnectBufferFullError(
                f"{len(self._pending)} bytes already wait for the reconnect to NATS "
                f"(pending_size {self._options.pending_size})"
            )
        encode_pub(self._pending, subject, reply, payload, raw_headers)

    async def _wait_drained(self) -> None:
        if self._pending:
            self._kick()  # what _write_later added has not woken the writer
        while (self._pending or self._writing) and self._error is None:
            if self._drained is None:
                self._drained = anyio.Event()
            await self._drained.wait()

    async def publish(
        self,
        subject: str,
        payload: bytes = b"",
        reply: str = "",
        headers: HeadersLike | None = None,
    ) -> None:
        """Queue a message for the writer; waits only when much is already unsent.

        While reconnecting it is buffered, up to ``pending_size`` bytes in all, past which
        ReconnectBufferFullError.
        """
        self._enqueue(subject, payload, reply, headers)
        self._kick()
        if len(self._pending) > _MAX_PENDING_WRITE and not self._reconnecting:
            await self._wait_drained()

    async def flush(self, timeout: float = 5.0) -> None:
        """Round trip to the server: everything published before has been processed.

        While reconnecting it waits for the reconnect first (TimeoutError after ``timeout``).
        """
        self._check_open()
        if self._reconnecting:
            timeout = await self._until_connected(timeout, "PONG") or 0.0
        pong = _Replies(1)
        self._pongs.append(pong)
        self._pending += b"PING\r\n"
        self._push()
        await self._wait(pong, timeout, "PONG")

    async def subscribe(
        self, subject: str, queue: str | None = None, *, max_pending: int = 512 * 1024
    ) -> Subscription:
        self._check_open()
        check_subject(subject)
        if queue is not None:
            check_subject(queue)
        sid = self._next_sid + 1
        sub = Subscription(self, sid, subject, queue, max_pending)
        self._add_sink(sub)
        if not self._reconnecting:  # else the reconnect sends it with the others
            self._write(sub._resub())
        return sub

    async def _wait(self, waiter: _Replies, timeout: float | None, what: str) -> None:
        if waiter.waiting:
            if timeout is not None:
                self._add_deadline(waiter, timeout)
            await waiter.event.wait()
            if waiter.waiting:
                raise TimeoutError(f"no {what} in {timeout} s")
        for result in waiter.results:
            if isinstance(result, WireError):
                raise result

    def _send_request(self, subject: str, payload: bytes, headers: HeadersLike | None,
                      waiter: _Replies, index: int) -> str:  # fmt: skip
        mux = self._mux
        mux.counter += 1
        token = str(mux.counter)
        mux.replies[token] = (waiter, index)
        try:
            self._enqueue(subject, payload, mux.prefix + token, headers)
        except BaseException:
            del mux.replies[token]
            raise
        return token

    async def request(
        self, subject: str, payload: bytes = b"", headers: HeadersLike | None = None,
        timeout: float = 5.0,
    ) -> Msg:  # fmt: skip
        """Publish with a reply subject and wait for the first reply.

        Raises NoRespondersError (status 503), TimeoutError, or ConnectionClosedError:
        ConnectionLostError if the connection was lost while waiting (the request may or may
        not have happened). Made while reconnecting, the request waits for the reconnect
        within ``timeout`` and is sent only then.
        """
        if self._reconnecting:
            timeout = await self._until_connected(timeout, f"reply on {subject!r}") or 0.0
        waiter = _Replies(1)
        token = self._send_request(subject, payload, headers, waiter, 0)
        self._push()
        try:
            await self._wait(waiter, timeout, f"reply on {subject!r}")
        finally:
            self._mux.replies.pop(token, None)
        msg = waiter.results[0]
        assert isinstance(msg, Msg)
        if msg.status == 503:
            raise NoRespondersError(subject)
        return msg

    async def close(self, timeout: float = 5.0) -> None:
        """Send what is pending (for up to ``timeout`` seconds), then close the socket.

        While reconnecting it stops at once and drops what was buffered. Every waiter still
        pending fails with ConnectionClosedError.
        """
        if self._error is not None:
            return
        if self._running and not self._reconnecting:
            with anyio.move_on_after(timeout):
                await self._wait_drained()
        self._fail(ConnectionClosedError("connection closed"))
        if not self._running:
            await self._close_socket()
            await self._call_closed_hook()

    async def _close_socket(self, *, force: bool = False) -> None:
        """Close the current socket: gracefully (TLS close_notify) at close, at once if lost."""
        stream, self._stream = self._stream, None
        dup, self._dup = self._dup, None
        self._raw = None
        if dup is not None:
            dup.close()
        if stream is None:
            return
        if force:
            await anyio.aclose_forcefully(stream)
        else:
            with anyio.CancelScope(shield=True, deadline=anyio.current_time() + 2):
                await stream.aclose()

    # -- JetStream ---------------------------------------------------------------------------

    async def js_api(
        self, subject: str, body: object = None, timeout: float = 5.0
    ) -> dict[str, object]:
        """Call ``$JS.API.<subject>`` with a JSON body; JetStreamAPIError on an API error."""
        payload = b"" if body is None else json.dumps(body).encode()
        reply = json_object((await self.request(f"$JS.API.{subject}", payload, None, timeout)).data)
        raise_api_error(reply)
        return reply

    async def js_publish(
        self, subject: str, payload: bytes = b"", headers: HeadersLike | None = None,
        timeout: float = 5.0,
    ) -> PubAck:  # fmt: skip
        """Publish to a stream and wait for its ack; JetStreamAPIError if it refuses.

        NoRespondersError when no stream takes the subject.
        """
        return parse_pub_ack(await self.request(subject, payload, headers, timeout))

    async def js_publish_many(
        self, messages: Iterable[OutgoingMessage], timeout: float = 5.0
    ) -> list[PubAck | WireError | TimeoutError]:
        """Publish all without waiting in between, then wait once for all acks.

        One outcome per message, in order: its PubAck, or the error for it (refusal, no
        responders, no ack within ``timeout``, ConnectionLostError). Made while reconnecting,
        it waits for the reconnect within ``timeout`` first (TimeoutError).
        """
        if self._reconnecting:
            timeout = await self._until_connected(timeout, "reconnect") or 0.0
        batch = list(messages)
        waiter = _Replies(len(batch))
        tokens: list[str] = []
        try:
            for index, message in enumerate(batch):
                headers = message[2] if len(message) == 3 else None
                tokens.append(self._send_request(message[0], message[1], headers, waiter, index))
            self._push()
            if waiter.waiting:
                self._add_deadline(waiter, timeout)
                await waiter.event.wait()
        finally:
            if waiter.waiting:
                for token in tokens:
                    self._mux.replies.pop(token, None)
        results = zip(batch, waiter.results, strict=True)
        return [pub_outcome(result, message[0], timeout) for message, result in results]

    async def pull_subscribe(self, stream: str, consumer: str) -> PullSubscription:
        """A fetcher for the durable pull consumer ``consumer`` on ``stream``."""
        self._check_open()
        prefix = self.new_inbox() + "."
        sid = self._next_sid + 1
        puller = PullSubscription(self, stream, consumer, sid, prefix)
        self._add_sink(puller)
        if not self._reconnecting:  # else the reconnect sends it with the others
            self._write(puller._resub())
        return puller

    def _settle(self, msg: Msg, body: bytes) -> None:
        if not msg.reply:
            raise ValueError("the message has no reply subject: not a JetStream delivery")
        self._enqueue(msg.reply, body)
        self._kick()

    async def ack(self, msg: Msg) -> None:
        """Acknowledge a JetStream delivery (not waiting for the server)."""
        self._settle(msg, b"+ACK")

    async def nak(self, msg: Msg, delay: float | None = None) -> None:
        """Ask for redelivery, after ``delay`` seconds when given."""
        if delay is None:
            self._settle(msg, b"-NAK")
        else:
            self._settle(msg, b"-NAK " + json.dumps({"delay": int(delay * 1e9)}).encode())

    async def in_progress(self, msg: Msg) -> None:
        """Reset the ack timer of a delivery that is still being worked on."""
        self._settle(msg, b"+WPI")

    async def direct_get(self, stream: str, last_by_subj: str, timeout: float = 5.0) -> Msg | None:
        """The last message on ``last_by_subj`` in ``stream`` (allow_direct), or None.

        The message's headers carry Nats-Stream, Nats-Subject, Nats-Sequence, Nats-Time-Stamp.
        """
        body = json.dumps({"last_by_subj": last_by_subj}).encode()
        return _found(await self.request(direct_get_subject(stream), body, None, timeout))

    async def leader_get(
        self, stream: str, last_by_subj: str, timeout: float = 5.0
    ) -> bytes | None:
        """The data of the last message on ``last_by_subj`` in ``stream``, as the stream's
        leader has it (``STREAM.MSG.GET``, which only the leader answers, unlike a direct
        get); None when there is none. JetStreamAPIError on another refusal.
        """
        try:
            reply = await self.js_api(
                f"STREAM.MSG.GET.{stream}", {"last_by_subj": last_by_subj}, timeout
            )
        except JetStreamAPIError as exc:
            if exc.code == 404:
                return None
            raise
        message = reply.get("message")
        fields = cast("dict[str, object]", message) if isinstance(message, dict) else {}
        data = fields.get("data")  # absent for an empty message (a KV delete marker)
        return base64.b64decode(data) if isinstance(data, str) else b""

    async def direct_gets(
        self, lasts: Sequence[tuple[str, str]], timeout: float = 5.0
    ) -> list[Msg | None]:
        """:meth:`direct_get` of each ``(stream, last_by_subj)``, sent together: one round trip.

        TimeoutError if any answer is missing after ``timeout``; a lost connection fails it.
        """
        if self._reconnecting:
            timeout = await self._until_connected(timeout, "reconnect") or 0.0
        waiter = _Replies(len(lasts))
        tokens: list[str] = []
        try:
            for index, (stream, subject) in enumerate(lasts):
                body = json.dumps({"last_by_subj": subject}).encode()
                tokens.append(
                    self._send_request(direct_get_subject(stream), body, None, waiter, index)
                )
            self._push()
            await self._wait(waiter, timeout, "direct get")
        finally:
            if waiter.waiting:
                for token in tokens:
                    self._mux.replies.pop(token, None)
        # _wait raised unless every answer is a message.
        return [_found(cast(Msg, result)) for result in waiter.results]


def _found(msg: Msg) -> Msg | None:
    """A direct get's answer: the message, None for 404 (nothing stored), else StatusError."""
    if msg.status == 404:
        return None
    if msg.status is not None:
        raise status_error(msg)
    return msg


def _take_over_reads(stream: anyio.abc.ByteStream, feed: Callable[[bytes], None]) -> bool:
    """asyncio and plain TCP: stop anyio's stream from reading, and feed what it buffered.

    anyio's asyncio stream resumes its transport's reading before each wait and pauses it
    after (to bound its buffer): two ``epoll_ctl`` calls per received chunk, the largest
    cost of a request on a VM where a system call costs tens of µs. Reading the socket in a
    reader callback registered once (``_read_dup``) has none. This uses the stream's
    private transport and protocol; False (keep using the stream) if they are not there.
    """
    transport = getattr(stream, "_transport", None)
    protocol = getattr(stream, "_protocol", None)
    buffered = getattr(protocol, "read_queue", None)
    has_data = getattr(protocol, "read_event", None)
    if transport is None or not isinstance(buffered, deque) or has_data is None:
        return False
    transport.pause_reading()
    chunks = list(buffered)
    buffered.clear()
    has_data.clear()
    for chunk in chunks:
        feed(chunk)
    return True


async def _read_dup(sock: socket.socket, feed: Callable[[bytes], None]) -> NoReturn:
    """asyncio only: read ``sock`` (a dup of the stream's socket) whenever it is readable,
    from a reader callback registered once for the connection's life; raises what ends it
    (EndOfStream, OSError, or the parser's WireError)."""
    import asyncio  # only reached on asyncio

    loop = asyncio.get_running_loop()
    ended: asyncio.Future[None] = loop.create_future()

    def readable() -> None:
        try:
            for _ in range(16):  # a flood of data: let other callbacks run now and then
                data = sock.recv(_READ_SIZE)
                if not data:
                    raise anyio.EndOfStream
                feed(data)
                if len(data) < _READ_SIZE:
                    return
        except BlockingIOError:
            return
        except (anyio.EndOfStream, OSError, WireError) as exc:
            loop.remove_reader(sock.fileno())
            if not ended.done():
                ended.set_exception(exc)

    fileno = sock.fileno()
    loop.add_reader(fileno, readable)
    try:
        await ended
    finally:
        loop.remove_reader(fileno)
    raise AssertionError("reading ends only with an exception")
