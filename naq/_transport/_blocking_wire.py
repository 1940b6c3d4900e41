"""Blocking NATS connections for requests made from a caller's own thread (naq_sync).

A naq_sync call crosses to naq's loop thread and back: two thread wake-ups, which cost more
than the request itself. For the calls that are one request and one reply (a job's enqueue),
the calling thread can instead write the request on a plain blocking socket and read the
reply itself: the kernel wakes it when the reply arrives, and no other thread is involved.

Connections are pooled (:class:`BlockingPool`): a thread takes one for a request and gives
it back, so a process holds as many as it had threads enqueueing at once. A connection only
reads while it is taken; at the next take, whatever arrived meanwhile (the server's PINGs)
is answered, and a connection the server closed is replaced.
"""

from __future__ import annotations

import os
import socket
import ssl
import threading
from collections.abc import Mapping

from ._wire_protocol import (
    Msg,
    ProtocolError,
    ServerError,
    WireError,
    connect_options,
    encode_headers,
    encode_pub,
)
from ._wire_protocol import (
    Parser as _Parser,
)

__all__ = ["BlockingConnection", "BlockingPool", "ConnectFailed", "RequestFailed"]

_READ_SIZE = 64 * 1024


class ConnectFailed(WireError):
    """No connection could be made: nothing was sent, so the call may be made another way."""


class RequestFailed(WireError):
    """The connection failed after the request was written: its outcome is unknown."""


class BlockingConnection:
    """One handshaken socket with a reply subscription; used by one thread at a time."""

    def __init__(self, sock: socket.socket, info: Mapping[str, object], inbox: str) -> None:
        self._sock = sock
        self._inbox = inbox
        self._counter = 0
        self._replies: list[Msg] = []
        self._answer = b""  # PONGs owed to the server, sent with the next write
        self._parser = _Parser(self)
        self._ponged = False
        max_payload = info.get("max_payload")
        self.max_payload = max_payload if isinstance(max_payload, int) else 1024 * 1024

    # -- ParserHandler ------------------------------------------------------------------------

    def on_msg(self, sid: int, msg: Msg) -> None:
        self._replies.append(msg)

    def on_info(self, info: dict[str, object]) -> None:
        """Later INFOs (cluster changes) do not concern a short request."""

    def on_ping(self) -> None:
        self._answer += b"PONG\r\n"

    def on_pong(self) -> None:
        """The handshake's PONG (nothing else pings from here)."""
        self._ponged = True

    def on_err(self, message: str) -> None:
        raise ServerError(message)

    # -- use ----------------------------------------------------------------------------------

    def finish_handshake(self, hello: bytes) -> None:
        """Send CONNECT and the reply subscription, then read until the server's PONG.

        An -ERR instead (bad credentials, say) raises ServerError.
        """
        self._sock.sendall(hello + f"SUB {self._inbox}* 1\r\nPING\r\n".encode())
        while not self._ponged:
            data = self._sock.recv(_READ_SIZE)
            if not data:
                raise ConnectFailed("the server closed the connection during the handshake")
            self._parser.feed(data)

    def usable(self) -> bool:
        """Take in what arrived while idle (answering PINGs); False if the server closed it."""
        sock = self._sock
        try:
            sock.setblocking(False)
            while True:
                data = sock.recv(_READ_SIZE)
                if not data:
                    return False
                self._parser.feed(data)
        except (BlockingIOError, ssl.SSLWantReadError):
            return True
        except (OSError, WireError):
            return False

    def request(
        self, subject: str, payload: bytes, headers: Mapping[str, str] | None, timeout: float
    ) -> Msg:
        """Publish with a reply subject and read until the reply (TimeoutError after ``timeout``).

        RequestFailed if the connection breaks once the request may have been sent.
        """
        self._counter += 1
        reply = f"{self._inbox}{self._counter}"
        out = bytearray(self._answer)
        self._answer = b""
        encode_pub(out, subject, reply, payload, encode_headers(headers) if headers else None)
        sock = self._sock
        try:
            sock.settimeout(timeout)
            sock.sendall(out)
            replies = self._replies
            while True:
                for index, msg in enumerate(replies):
                    if msg.subject == reply:
                        del replies[: index + 1]
                        return msg
                replies.clear()  # replies to abandoned requests
                data = sock.recv(_READ_SIZE)
                if not data:
                    raise RequestFailed("the server closed the connection")
                self._parser.feed(data)
        except TimeoutError:
            raise
        except (OSError, ProtocolError, ServerError) as exc:
            raise RequestFailed(f"connection lost: {exc!r}") from exc

    def close(self) -> None:
        self._sock.close()


class BlockingPool:
    """Blocking connections to one of ``servers``, taken and given back by calling threads.

    Belongs to the process that made it: after ``os.fork()`` the child starts with none and
    never touches the parent's sockets.
    """

    def __init__(
        self,
        servers: list[tuple[str, int]],
        *,
        user: str | None = None,
        password: str | None = None,
        token: str | None = None,
        ssl_context: ssl.SSLContext | None = None,
        name: str = "naq-blocking",
        connect_timeout: float = 5.0,
    ) -> None:
        self._servers = servers
        self._hello = (user, password, token, name)
        self._ssl_context = ssl_context
        self._connect_timeout = connect_timeout
        self._idle: list[BlockingConnection] = []
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self._closed = False

    def take(self) -> BlockingConnection:
        """An idle usable connection, or a new one (ConnectFailed if none can be made)."""
        while True:
            with self._lock:
                if self._pid != os.getpid():
                    self._idle, self._pid = [], os.getpid()  # the parent's: left alone
                if self._closed:
                    raise ConnectFailed("the client is closed")
                conn = self._idle.pop() if self._idle else None
            if conn is None:
                return self._connect()
            if conn.usable():
                return conn
            conn.close()

    def give_back(self, conn: BlockingConnection) -> None:
        with self._lock:
            if not self._closed and self._pid == os.getpid():
                self._idle.append(conn)
                return
        conn.close()

    def close(self) -> None:
        """Close the idle connections; those in use are closed when given back."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        if self._pid == os.getpid():
            for conn in idle:
                conn.close()

    def _connect(self) -> BlockingConnection:
        errors: list[str] = []
        for host, port in self._servers:
            try:
                return self._handshake(host, port)
            except (OSError, WireError, ValueError) as exc:
                errors.append(f"{host}:{port}: {exc!r}")
        raise ConnectFailed("; ".join(errors) or "no servers")

    def _handshake(self, host: str, port: int) -> BlockingConnection:
        sock = socket.create_connection((host, port), timeout=self._connect_timeout)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            info = _read_info(sock)
            tls = info.get("tls_required") is True or self._ssl_context is not None
            if tls:
                context = self._ssl_context or ssl.create_default_context()
                sock = context.wrap_socket(sock, server_hostname=host)
            inbox = f"_INBOX.{os.urandom(8).hex()}."
            conn = BlockingConnection(sock, info, inbox)
            conn.finish_handshake(connect_options(*self._hello, tls=tls))
        except BaseException:
            sock.close()
            raise
        return conn


class _Info:
    """Parser handler for the first bytes of a connection: the server's INFO."""

    def __init__(self) -> None:
        self.info: dict[str, object] | None = None

    def on_info(self, info: dict[str, object]) -> None:
        self.info = info

    def on_msg(self, sid: int, msg: Msg) -> None:
        raise ProtocolError("a message before the handshake")

    def on_ping(self) -> None:
        raise ProtocolError("PING before the handshake")

    def on_pong(self) -> None:
        raise ProtocolError("PONG before the handshake")

    def on_err(self, message: str) -> None:
        raise ServerError(message)


def _read_info(sock: socket.socket) -> dict[str, object]:
    handler = _Info()
    parser = _Parser(handler)
    while handler.info is None:
        data = sock.recv(_READ_SIZE)
        if not data:
            raise ConnectFailed("the server closed the connection before its INFO")
        parser.feed(data)
    return handler.info
