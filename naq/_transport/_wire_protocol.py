"""The NATS client protocol as pure functions and types: parse what the server sends, encode
what the client sends. No I/O here, so ``_wire`` can run it on any anyio backend.

See https://docs.nats.io/reference/reference-protocols/nats-protocol. The parser works on
``bytes`` chunks as they are received and keeps only an incomplete tail between chunks; a
payload whose chunks are still arriving is not re-parsed until all of it is there.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import NamedTuple, Protocol, cast

__all__ = [
    "ConnectionClosedError",
    "ConnectionLostError",
    "Headers",
    "HeadersLike",
    "JetStreamAPIError",
    "Msg",
    "MsgMetadata",
    "NoRespondersError",
    "Parser",
    "ParserHandler",
    "ProtocolError",
    "PubAck",
    "ReconnectBufferFullError",
    "ServerError",
    "StatusError",
    "SubscriptionClosedError",
    "WireError",
    "check_subject",
    "connect_options",
    "encode_headers",
    "encode_pub",
    "json_object",
    "parse_connect_urls",
    "parse_pub_ack",
    "pub_outcome",
    "pull_request",
    "raise_api_error",
    "status_error",
]

MAX_CONTROL_LINE = 64 * 1024
"""Bytes a control line (INFO included) may take before its CRLF; past that the stream is bad."""

_BAD_SUBJECT = re.compile(r"[\s]")
_BAD_HEADER_KEY = re.compile(r"[\s:]")


class WireError(Exception):
    """Base of every error the wire client raises (timeouts are the builtin TimeoutError)."""


class ConnectionClosedError(WireError):
    """The connection is closed, or was lost with this call in flight (ConnectionLostError)."""


class ConnectionLostError(ConnectionClosedError):
    """The socket was lost while this call was in flight, so its outcome is unknown.

    A request may or may not have reached the server; the caller decides whether to retry.
    The connection itself may be reconnecting: ``is_closed`` tells whether it is gone for good.
    """


class ReconnectBufferFullError(WireError):
    """A publish while reconnecting would buffer more than ``pending_size`` bytes."""


class SubscriptionClosedError(WireError):
    """The subscription was unsubscribed and everything it received has been taken."""


class ProtocolError(WireError):
    """The server sent something this client cannot parse."""


class ServerError(WireError):
    """The server answered ``-ERR``: bad credentials, a violation, a stale connection."""


class NoRespondersError(WireError):
    """Nobody subscribes to the subject of a request (status 503)."""

    def __init__(self, subject: str) -> None:
        super().__init__(f"no responders on {subject!r}")
        self.subject = subject


class StatusError(WireError):
    """A reply carried a status this call does not expect (e.g. 409 on a pull request)."""

    def __init__(self, status: int, description: str, subject: str) -> None:
        super().__init__(f"status {status} {description!r} on {subject!r}")
        self.status = status
        self.description = description


class JetStreamAPIError(WireError):
    """JetStream refused a request; ``err_code`` is its stable error number."""

    def __init__(self, code: int, err_code: int, description: str) -> None:
        super().__init__(f"JetStream error {code}/{err_code}: {description}")
        self.code = code
        self.err_code = err_code
        self.description = description


class Headers(Mapping[str, str]):
    """Message headers: the first value under each key, ``get_all`` for every value.

    ``status`` and ``description`` come from the ``NATS/1.0 <status> <description>`` line
    (503 no responders, 404/408/409 ends of a pull request, 100 heartbeats).
    """

    __slots__ = ("_values", "description", "status")

    def __init__(
        self,
        values: Mapping[str, str | Sequence[str]] | None = None,
        status: int | None = None,
        description: str = "",
    ) -> None:
        self._values: dict[str, list[str]] = {}
        for key, value in (values or {}).items():
            self._values[key] = [value] if isinstance(value, str) else list(value)
        self.status = status
        self.description = description

    @classmethod
    def parse(cls, raw: bytes) -> Headers:
        """Headers from their wire form (the first line must be ``NATS/1.0``)."""
        lines = raw.decode().split("\r\n")
        first = lines[0]
        if not first.startswith("NATS/1.0"):
            raise ProtocolError(f"bad header line {first[:40]!r}")
        headers = cls()
        status = first[8:].strip()
        if status:
            code, _, description = status.partition(" ")
            headers.status = int(code) if code.isdigit() else None
            headers.description = description.strip()
        values = headers._values
        for line in lines[1:]:
            if line:
                key, sep, value = line.partition(":")
                if not sep:
                    raise ProtocolError(f"bad header {line[:40]!r}")
                values.setdefault(key.strip(), []).append(value.strip())
        return headers

    def get_all(self, key: str) -> list[str]:
        return list(self._values.get(key, ()))

    def __getitem__(self, key: str) -> str:
        return self._values[key][0]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"Headers({self._values!r}, status={self.status!r})"

    def multi_items(self) -> Iterator[tuple[str, str]]:
        for key, values in self._values.items():
            for value in values:
                yield key, value


HeadersLike = Mapping[str, str | Sequence[str]]
"""Headers to send: a value is a string or a sequence of strings (a ``Headers`` works too)."""


class MsgMetadata(NamedTuple):
    """What a JetStream message's ``$JS.ACK...`` reply subject says about its delivery."""

    stream: str
    consumer: str
    num_delivered: int
    stream_seq: int
    consumer_seq: int
    timestamp_ns: int
    num_pending: int
    domain: str = ""

    @classmethod
    def from_reply(cls, reply: str) -> MsgMetadata:
        """Parse both forms: 9 tokens, and 11+ with domain and account hash first."""
        t = reply.split(".")
        if len(t) < 9 or t[0] != "$JS" or t[1] != "ACK" or len(t) == 10:
            raise ValueError(f"not a JetStream ack subject: {reply!r}")
        domain = ""
        if len(t) > 9:  # $JS.ACK.<domain>.<account hash>.<stream>... [.<random>]
            domain = "" if t[2] == "_" else t[2]
            t = t[2:]
        return cls(t[2], t[3], int(t[4]), int(t[5]), int(t[6]), int(t[7]), int(t[8]), domain)


class Msg:
    """A message as delivered; headers are parsed on first use."""

    __slots__ = ("_headers", "_raw_headers", "data", "reply", "sid", "subject")

    def __init__(
        self, subject: str, reply: str, data: bytes, raw_headers: bytes | None, sid: int = 0
    ) -> None:
        self.subject = subject
        self.reply = reply
        self.data = data
        self.sid = sid
        self._raw_headers = raw_headers
        self._headers: Headers | None = None

    @property
    def headers(self) -> Headers | None:
        if self._headers is None and self._raw_headers is not None:
            self._headers = Headers.parse(self._raw_headers)
        return self._headers

    @property
    def status(self) -> int | None:
        """The status code of a status message, else None (without parsing its headers)."""
        raw = self._raw_headers
        if raw is None or raw[8:9] != b" ":
            return None
        headers = self.headers
        return headers.status if headers is not None else None

    @property
    def metadata(self) -> MsgMetadata:
        """Delivery facts of a JetStream message; ValueError for any other message."""
        return MsgMetadata.from_reply(self.reply)

    def __repr__(self) -> str:
        return f"Msg(subject={self.subject!r}, reply={self.reply!r}, data={self.data[:40]!r})"


class PubAck(NamedTuple):
    """JetStream's confirmation that a published message is stored."""

    stream: str
    seq: int
    duplicate: bool = False
    domain: str = ""


def json_object(data: bytes) -> dict[str, object]:
    """A JSON object from the server, or ProtocolError."""
    try:
        value: object = json.loads(data)
    except ValueError as exc:
        raise ProtocolError(f"bad JSON from the server: {data[:80]!r}") from exc
    if not isinstance(value, dict):
        raise ProtocolError(f"expected a JSON object, got {data[:80]!r}")
    return cast("dict[str, object]", value)


def raise_api_error(body: Mapping[str, object]) -> None:
    """Raise the JetStreamAPIError that an API response's ``error`` field reports, if any."""
    error = body.get("error")
    if isinstance(error, dict):
        fields = cast("dict[str, object]", error)
        code, err_code = fields.get("code", 0), fields.get("err_code", 0)
        raise JetStreamAPIError(
            code if isinstance(code, int) else 0,
            err_code if isinstance(err_code, int) else 0,
            str(fields.get("description", "")),
        )


def parse_pub_ack(msg: Msg) -> PubAck:
    """The PubAck in a reply to a JetStream publish, or the JetStreamAPIError it reports."""
    body = json_object(msg.data)
    raise_api_error(body)
    stream, seq = body.get("stream"), body.get("seq")
    if not isinstance(stream, str) or not isinstance(seq, int):
        raise ProtocolError(f"bad JetStream ack: {msg.data[:80]!r}")
    domain = body.get("domain", "")
    return PubAck(
        stream, seq, body.get("duplicate") is True, domain if isinstance(domain, str) else ""
    )


def pub_outcome(
    result: Msg | WireError | None, subject: str, timeout: float
) -> PubAck | WireError | TimeoutError:
    """One message's outcome in a pipelined publish: its PubAck, or the error for it."""
    if result is None:
        return TimeoutError(f"no ack for {subject!r} in {timeout} s")
    if isinstance(result, WireError):
        return result
    if result.status == 503:
        return NoRespondersError(subject)
    try:
        return parse_pub_ack(result)
    except WireError as exc:  # refused, or an unparsable ack: that is its outcome
        return exc


def status_error(msg: Msg) -> StatusError:
    headers = msg.headers
    return StatusError(msg.status or 0, headers.description if headers else "", msg.subject)


def connect_options(
    user: str | None = None,
    password: str | None = None,
    token: str | None = None,
    name: str | None = None,
    *,
    tls: bool = False,
) -> bytes:
    """The CONNECT line: no +OK per message, headers and no-responders replies on."""
    options: dict[str, object] = {
        "verbose": False, "pedantic": False, "headers": True, "no_responders": True,
        "protocol": 1, "lang": "python-naq-wire", "version": "0.1", "tls_required": tls,
    }  # fmt: skip
    given = (("user", user), ("pass", password), ("auth_token", token), ("name", name))
    options.update({key: value for key, value in given if value is not None})
    return b"CONNECT " + json.dumps(options).encode() + b"\r\n"


def parse_connect_urls(info: Mapping[str, object]) -> list[tuple[str, int]]:
    """The ``host:port`` entries of an INFO's ``connect_urls`` (other servers of a cluster).

    Entries that are not a plain host (or ``[ipv6]``) and port are skipped.
    """
    urls = info.get("connect_urls")
    if not isinstance(urls, list):
        return []
    servers: list[tuple[str, int]] = []
    for url in cast("list[object]", urls):
        if not isinstance(url, str):
            continue
        host, sep, port = url.rpartition(":")
        host = host.removeprefix("[").removesuffix("]")
        if sep and host and port.isdigit() and "/" not in host:
            servers.append((host, int(port)))
    return servers


def pull_request(batch: int, expires: float, no_wait: bool) -> bytes:
    """The body of a ``CONSUMER.MSG.NEXT`` request."""
    if no_wait:
        return b'{"batch": %d, "no_wait": true}' % batch
    return b'{"batch": %d, "expires": %d}' % (batch, int(expires * 1e9))


def check_subject(subject: str) -> None:
    if not subject or _BAD_SUBJECT.search(subject):
        raise ValueError(f"invalid subject {subject!r}")


def encode_headers(headers: HeadersLike) -> bytes:
    """The wire form of headers; keys and values may not break the framing."""
    items: Iterator[tuple[str, str]] | list[tuple[str, str]]
    if isinstance(headers, Headers):
        items = headers.multi_items()
    else:
        items = []
        for key, value in headers.items():
            if isinstance(value, str):
                items.append((key, value))
            else:
                items.extend((key, v) for v in value)
    parts = ["NATS/1.0\r\n"]
    for key, value in items:
        if not key or _BAD_HEADER_KEY.search(key) or "\r" in value or "\n" in value:
            raise ValueError(f"invalid header {key!r}: {value!r}")
        parts.append(f"{key}: {value}\r\n")
    parts.append("\r\n")
    return "".join(parts).encode()


def encode_pub(
    out: bytearray, subject: str, reply: str, payload: bytes, headers: bytes | None
) -> None:
    """Append a PUB (or HPUB when there are headers) to ``out``."""
    if headers is None:
        out += f"PUB {subject} {reply} {len(payload)}\r\n".encode()
    else:
        out += f"HPUB {subject} {reply} {len(headers)} {len(headers) + len(payload)}\r\n".encode()
        out += headers
    out += payload
    out += b"\r\n"


class ParserHandler(Protocol):
    """What the connection does with each operation the parser finds."""

    def on_msg(self, sid: int, msg: Msg) -> None: ...
    def on_info(self, info: dict[str, object]) -> None: ...
    def on_ping(self) -> None: ...
    def on_pong(self) -> None: ...
    def on_err(self, message: str) -> None: ...


class Parser:
    """Turns received chunks into handler calls; keeps an incomplete tail for the next chunk."""

    __slots__ = ("_handler", "_need", "_tail")

    def __init__(self, handler: ParserHandler) -> None:
        self._handler = handler
        self._tail = bytearray()
        self._need = 0  # bytes the tail must reach before its first operation is complete

    def feed(self, data: bytes) -> None:
        tail = self._tail
        if tail:
            tail += data
            if len(tail) < self._need:
                return  # a large payload still arriving: do not re-parse its line yet
            data = bytes(tail)
            tail.clear()
        pos = self._parse(data)
        if pos < len(data):
            tail += memoryview(data)[pos:]

    def _parse(self, data: bytes) -> int:
        handler = self._handler
        find = data.find
        size = len(data)
        pos = 0
        self._need = 0
        while pos < size:
            end = find(b"\r\n", pos)
            if end < 0:
                if size - pos > MAX_CONTROL_LINE:
                    raise ProtocolError("control line too long")
                return pos
            op = data[pos]
            if op == 0x4D or op == 0x48:  # MSG / HMSG
                args = data[pos + (4 if op == 0x4D else 5) : end].decode().split()
                try:
                    if op == 0x4D:
                        hdr_len, total = 0, int(args[-1])
                        reply = args[2] if len(args) == 4 else ""
                    else:
                        hdr_len, total = int(args[-2]), int(args[-1])
                        reply = args[2] if len(args) == 5 else ""
                    sid = int(args[1])
                except (IndexError, ValueError) as exc:
                    raise ProtocolError(f"bad message line {data[pos:end][:80]!r}") from exc
                start = end + 2
                stop = start + total
                if stop + 2 > size:
                    self._need = stop + 2 - pos
                    return pos
                if data[stop : stop + 2] != b"\r\n":
                    raise ProtocolError("message payload not followed by CRLF")
                if hdr_len:
                    msg = Msg(
                        args[0],
                        reply,
                        data[start + hdr_len : stop],
                        data[start : start + hdr_len],
                        sid,
                    )
                else:
                    msg = Msg(args[0], reply, data[start:stop], None, sid)
                handler.on_msg(sid, msg)
                pos = stop + 2
                continue
            if op == 0x50:  # PING / PONG
                if data[pos + 1] == 0x49:
                    handler.on_ping()
                else:
                    handler.on_pong()
            elif op == 0x2B:  # +OK
                pass
            elif op == 0x2D:  # -ERR 'message'
                handler.on_err(data[pos + 4 : end].decode(errors="replace").strip().strip("'"))
            elif op == 0x49:  # INFO {json}
                handler.on_info(json_object(data[pos + 5 : end]))
            else:
                raise ProtocolError(f"unknown operation {data[pos:end][:40]!r}")
            pos = end + 2
        return pos
