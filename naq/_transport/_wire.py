"""A small native NATS client on anyio byte streams, with the JetStream calls of a job queue.

Why: nats-py runs only on asyncio, so naq's Trio path crosses a thread for every awaited call.
This client runs on whichever anyio backend calls it, on that backend's own thread. Per
connection: a reader task; a writer task that sends the pending buffer in one write, so
pipelined publishes coalesce; one timer task for all request deadlines; and one wildcard
inbox subscription that all requests share, matched to their waiters by the last token.

anyio connects, upgrades to TLS and, with TLS, carries every byte. With plain TCP the hot path
skips the stream's per-call checkpoints: a caller about to wait for a reply writes its request
on the socket itself (no task switch), and on Trio the reader reads the socket itself.

Not yet supported (future work): reconnecting, nkeys/JWT authentication, push consumers. When
the connection is lost, every pending request, flush, fetch and ``next_msg`` fails with
``ConnectionClosedError``.
"""

from __future__ import annotations

import heapq
import json
import secrets
import socket
import ssl
import sys
from collections import deque
from collections.abc import Iterable
from types import TracebackType
from typing import NoReturn, Protocol, Self

import anyio
import anyio.abc
import anyio.lowlevel
from anyio.streams.tls import TLSStream

from ._wire_protocol import (
    ConnectionClosedError,
    Headers,
    HeadersLike,
    JetStreamAPIError,
    Msg,
    MsgMetadata,
    NoRespondersError,
    Parser,
    ProtocolError,
    PubAck,
    ServerError,
    StatusError,
    SubscriptionClosedError,
    WireError,
    check_subject,
    connect_options,
    encode_headers,
    encode_pub,
    json_object,
    parse_pub_ack,
    pub_outcome,
    pull_request,
    raise_api_error,
    status_error,
)

__all__ = [
    "ConnectionClosedError",
    "Headers",
    "JetStreamAPIError",
    "Msg",
    "MsgMetadata",
    "NoRespondersError",
    "ProtocolError",
    "PubAck",
    "PullSubscription",
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
_PONG = Msg("", "", b"", None)

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


class _Replies:
    """Waiter for one or more replies, filled in by the reader; set once all are in."""

    __slots__ = ("event", "results", "waiting")

    def __init__(self, count: int) -> None:
        self.results: list[Msg | WireError | None] = [None] * count
        self.waiting = count
        self.event = anyio.Event()

    def __lt__(self, other: _Replies) -> bool:  # for equal deadlines in the timer's heap
        return id(self) < id(other)

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


class _ReplyMux:
    """The one ``<inbox>.*`` subscription that all requests share; token -> (waiter, index)."""

    __slots__ = ("counter", "prefix", "replies")

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.counter = 0
        self.replies: dict[str, tuple[_Replies, int]] = {}

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
        if not self._unsubscribed:
            self._conn._sinks.pop(self.sid, None)
            self._close(None)
            if not self._conn.is_closed:
                self._conn._write(f"UNSUB {self.sid}\r\n".encode())


class Subscription(_Inbox):
    """Messages on one subject, buffered in a deque; ``next_msg`` or ``async for`` takes them.

    Past ``max_pending`` buffered messages new ones are dropped and counted in ``dropped``.
    """

    def __init__(self, conn: WireConnection, sid: int, subject: str, max_pending: int) -> None:
        super().__init__(conn, sid)
        self.subject = subject
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

    async def next_msg(self, timeout: float | None = None) -> Msg:
        """The next message; TimeoutError after ``timeout`` seconds (None: wait forever).

        After ``unsubscribe`` the buffered messages are still returned, then
        SubscriptionClosedError; after a connection loss, ConnectionClosedError.
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
        """Stop now, or once ``max_msgs`` messages have arrived in all (counting those so far)."""
        if max_msgs is None or max_msgs <= self.received:
            await super().unsubscribe()
        elif not self._unsubscribed:
            self._max_msgs = max_msgs
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
        self._next_subject = f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{consumer}"
        self._prefix = prefix
        self._counter = 0
        self._buffer: deque[Msg] = deque()
        self._open_reply = ""  # reply subject of the request being waited on
        self._want = 0
        self._end: Msg | None = None  # the status message that ended the open request

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
        """
        if batch < 1:
            raise ValueError("batch must be at least 1")
        buffer = self._buffer
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
        end = self._end
        if not buffer and end is not None and end.status not in (404, 408):
            raise status_error(end)
        return [buffer.popleft() for _ in range(min(batch, len(buffer)))]


class WireConnection:
    """One NATS connection. Start it with ``async with`` or by passing ``task_group``.

    ``async with await WireConnection.connect("127.0.0.1", 4222) as nc: ...`` runs its reader
    and writer in a task group of its own; with ``task_group=tg`` they run in ``tg`` and
    ``close()`` ends them.
    """

    def __init__(self, stream: anyio.abc.ByteStream) -> None:
        self._stream = stream
        self._parser = Parser(self)
        self._pending = bytearray()
        self._wake_writer = anyio.Event()
        self._writer_woken = False
        self._writing = False  # the writer holds data taken from _pending but not yet sent
        self._raw: socket.socket | None = None  # plain TCP: written directly, see _push
        self._raw_reads = False  # Trio and plain TCP: read directly too, see _read_raw
        self._raw_dup = False  # _raw is a duplicate descriptor of ours to close
        self._drained: anyio.Event | None = None
        self._pongs: deque[_Replies] = deque()
        self._sinks: dict[int, _Sink] = {}
        self._next_sid = 0
        self._scope = anyio.CancelScope()
        self._own_group: anyio.abc.TaskGroup | None = None
        self._running = False
        self._error: ConnectionClosedError | None = None
        self.info: dict[str, object] = {}
        self.last_server_error = ""  # the latest -ERR that did not end the connection
        self._got_info = False
        self._inbox_root = "_INBOX." + secrets.token_urlsafe(16)
        self._mux = _ReplyMux(self._inbox_root + ".r.")
        self._inboxes = 0
        self._deadlines: list[tuple[float, _Replies]] = []  # a heap, see _timer_loop
        self._heap_limit = 1024
        self._timer_wake = anyio.Event()

    # -- connecting ------------------------------------------------------------------------

    @classmethod
    async def connect(
        cls,
        host: str,
        port: int,
        *,
        user: str | None = None,
        password: str | None = None,
        token: str | None = None,
        ssl_context: ssl.SSLContext | None = None,
        name: str | None = None,
        connect_timeout: float = 5.0,
        task_group: anyio.abc.TaskGroup | None = None,
    ) -> WireConnection:
        """Connect, handshake (INFO, CONNECT, PING/PONG), and start if given a task group.

        TLS is used when the server requires it or ``ssl_context`` is given. A ``-ERR`` during
        the handshake (e.g. an authorization violation) raises ServerError.
        """
        try:
            with anyio.fail_after(connect_timeout):
                conn = cls(await anyio.connect_tcp(host, port))
                try:
                    await conn._handshake(host, ssl_context, user, password, token, name)
                except BaseException:
                    if conn._raw is not None and conn._raw_dup:
                        conn._raw.close()
                    await anyio.aclose_forcefully(conn._stream)
                    raise
        except TimeoutError:
            raise TimeoutError(
                f"no NATS handshake with {host}:{port} in {connect_timeout} s"
            ) from None
        if task_group is not None:
            await task_group.start(conn._run)
        return conn

    async def _handshake(
        self, host: str, ssl_context: ssl.SSLContext | None, *auth_and_name: str | None
    ) -> None:
        try:
            while not self._got_info:
                self._parser.feed(await self._stream.receive())
            tls = self.info.get("tls_required") is True or ssl_context is not None
            if tls:
                self._stream = await TLSStream.wrap(
                    self._stream,
                    hostname=host,
                    ssl_context=ssl_context or ssl.create_default_context(),
                    standard_compatible=False,
                )
            else:
                self._raw = self._stream.extra(anyio.abc.SocketAttribute.raw_socket)
                self._raw_reads = _on_trio()
                if not self._raw_reads:  # asyncio hands out a view without send(): a dup has it
                    view = self._raw
                    self._raw = socket.fromfd(view.fileno(), view.family, view.type)
                    self._raw_dup = True
                self._raw.setblocking(False)
            pong = _Replies(1)
            self._pongs.append(pong)
            self._pending += connect_options(*auth_and_name, tls=tls) + b"PING\r\n"
            self._pending += f"SUB {self._mux.prefix}* {self._add_sink(self._mux)}\r\n".encode()
            await self._stream.send(bytes(self._pending))
            self._pending.clear()
            while pong.waiting:
                self._parser.feed(await self._stream.receive())
        except anyio.EndOfStream:
            raise ConnectionClosedError(
                "the server closed the connection during handshake"
            ) from None
        except (anyio.BrokenResourceError, OSError) as exc:
            raise ConnectionClosedError(f"NATS handshake failed: {exc!r}") from exc

    # -- running ---------------------------------------------------------------------------

    async def _run(
        self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Reader and writer until close() or a connection loss; then close the socket."""
        if self._running or self._error is not None:
            raise RuntimeError("this connection was already started")
        self._running = True
        try:
            with self._scope:
                async with anyio.create_task_group() as tg:
                    tg.start_soon(self._write_loop)
                    tg.start_soon(self._timer_loop)
                    task_status.started()
                    await self._read_loop()
                    tg.cancel_scope.cancel()
        finally:
            self._fail(ConnectionClosedError("connection closed"))
            await self._close_socket()

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
        receive = self._stream.receive
        feed = self._parser.feed
        try:
            if self._raw is not None and self._raw_reads:
                await self._read_raw(self._raw)  # ends only by raising
            else:
                while True:
                    feed(await receive(_READ_SIZE))
        except anyio.EndOfStream:
            error = ConnectionClosedError("the server closed the connection")
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError) as exc:
            error = ConnectionClosedError(f"connection lost: {exc!r}")
        except WireError as exc:  # -ERR or data we cannot parse: the connection is unusable
            error = ConnectionClosedError(f"connection failed: {exc}")
            error.__cause__ = exc
        self._fail(error)

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
        send = self._stream.send
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
            self._fail(ConnectionClosedError(f"connection lost while writing: {exc!r}"))
        except ConnectionClosedError:  # _send_raw failed the connection already
            return

    async def _timer_loop(self) -> None:
        """Wake the waiters whose deadline passed, many at a time.

        A cancel scope per request (``fail_after``) costs more than the rest of the client's
        work for an awaited publish; one heap push per request and one timer for all is
        cheaper. Entries of answered requests stay in the heap until their deadline.
        """
        heap = self._deadlines
        while True:
            now = anyio.current_time()
            while heap and heap[0][0] <= now:
                waiter = heapq.heappop(heap)[1]
                if waiter.waiting:
                    waiter.event.set()  # its caller finds replies missing: a timeout
            self._timer_wake = anyio.Event()
            if heap:
                with anyio.move_on_after(heap[0][0] - now + _TIMER_RESOLUTION):
                    await self._timer_wake.wait()
            else:
                await self._timer_wake.wait()

    def _add_deadline(self, waiter: _Replies, timeout: float) -> None:
        heap = self._deadlines
        if len(heap) > self._heap_limit:  # mostly answered requests (long timeouts): drop them
            heap[:] = [entry for entry in heap if entry[1].waiting]
            heapq.heapify(heap)
            self._heap_limit = max(1024, 2 * len(heap))
        entry = (anyio.current_time() + timeout, waiter)
        heapq.heappush(heap, entry)
        if heap[0] is entry:  # earlier than what the timer sleeps until
            self._timer_wake.set()

    def _fail(self, error: ConnectionClosedError) -> None:
        """Mark the connection dead and fail every waiter with ``error`` (first call wins)."""
        if self._error is not None:
            return
        self._error = error
        sinks = list(self._sinks.values())
        self._sinks.clear()
        for sink in sinks:
            sink._close(error)
        while self._pongs:
            self._pongs.popleft().settle(0, error)
        if self._drained is not None:
            self._drained.set()
        self._scope.cancel()

    # -- parser callbacks --------------------------------------------------------------------

    def on_msg(self, sid: int, msg: Msg) -> None:
        sink = self._sinks.get(sid)
        if sink is not None:
            sink._deliver(msg)

    def on_info(self, info: dict[str, object]) -> None:
        self.info = {**self.info, **info}
        self._got_info = True

    def on_ping(self) -> None:
        self._write(b"PONG\r\n")

    def on_pong(self) -> None:
        if self._pongs:
            self._pongs.popleft().settle(0, _PONG)

    def on_err(self, message: str) -> None:
        if message.lower().startswith("permissions violation"):
            self.last_server_error = message  # the server keeps the connection
            return
        raise ServerError(message)

    # -- core NATS ---------------------------------------------------------------------------

    @property
    def is_closed(self) -> bool:
        return self._error is not None

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

    def _write(self, data: bytes) -> None:
        self._pending += data
        self._kick()

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
        except OSError as exc:
            self._fail(ConnectionClosedError(f"connection lost while writing: {exc!r}"))
            raise ConnectionClosedError(f"connection lost while writing: {exc!r}") from exc
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
        encode_pub(self._pending, subject, reply, payload, raw_headers)

    async def _wait_drained(self) -> None:
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
        """Queue a message for the writer; waits only when much is already unsent."""
        self._enqueue(subject, payload, reply, headers)
        self._kick()
        if len(self._pending) > _MAX_PENDING_WRITE:
            await self._wait_drained()

    async def flush(self, timeout: float = 5.0) -> None:
        """Round trip to the server: everything published before has been processed."""
        self._check_open()
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
        sub = Subscription(self, sid, subject, max_pending)
        self._add_sink(sub)
        self._write(f"SUB {subject} {queue or ''} {sid}\r\n".encode())
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

        Raises NoRespondersError (status 503), TimeoutError, or ConnectionClosedError.
        """
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

        Every waiter still pending fails with ConnectionClosedError.
        """
        if self._error is not None:
            return
        if self._running:
            with anyio.move_on_after(timeout):
                await self._wait_drained()
            self._fail(ConnectionClosedError("connection closed"))
        else:
            self._fail(ConnectionClosedError("connection closed"))
            await self._close_socket()

    async def _close_socket(self) -> None:
        if self._raw is not None and self._raw_dup:
            self._raw.close()
        with anyio.CancelScope(shield=True, deadline=anyio.current_time() + 2):
            await self._stream.aclose()

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
        responders, no ack within ``timeout``).
        """
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
        self._write(f"SUB {prefix}* {sid}\r\n".encode())
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
        msg = await self.request(f"$JS.API.DIRECT.GET.{stream}", body, None, timeout)
        if msg.status == 404:
            return None
        if msg.status is not None:
            raise status_error(msg)
        return msg
