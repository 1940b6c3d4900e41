"""The native anyio NATS client (naq._transport._wire) against a real server, on asyncio and Trio.

Streams and consumers are set up through the client's own ``js_api``, so every test runs the
same way on both backends. Waits are on server replies and events, never on fixed sleeps.
"""

from __future__ import annotations

import gc
import os
import ssl
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

import anyio
import pytest

from naq._transport._wire import (
    ConnectionClosedError,
    ConnectionLostError,
    JetStreamAPIError,
    Msg,
    NoRespondersError,
    PubAck,
    SubscriptionClosedError,
    WireConnection,
)
from naq._transport._wire_protocol import Headers, MsgMetadata, Parser, ServerError
from tests import test_connect
from tests.test_connect import Tls

pytestmark = pytest.mark.anyio

auth_servers = test_connect.auth_servers  # servers with passwords and tokens
tls = test_connect.tls  # a server requiring TLS with client certificates


def _name() -> str:
    return f"w{uuid.uuid4().hex[:12]}"


async def _connect(
    url: str,
    user: str | None = None,
    password: str | None = None,
    token: str | None = None,
    ssl_context: ssl.SSLContext | None = None,
    **options: Any,
) -> WireConnection:
    parts = urlsplit(url)
    return await WireConnection.connect(
        parts.hostname or "127.0.0.1",
        parts.port or 4222,
        user=user,
        password=password,
        token=token,
        ssl_context=ssl_context,
        **options,
    )


@pytest.fixture
async def nc(nats_url: str) -> AsyncIterator[WireConnection]:
    async with await _connect(nats_url) as conn:
        yield conn


async def _stream(nc: WireConnection, **config: object) -> tuple[str, str]:
    """A new stream taking ``<name>.>``: its name and subject prefix."""
    name = _name()
    body = {"name": name, "subjects": [f"{name}.>"], "storage": "memory", **config}
    await nc.js_api(f"STREAM.CREATE.{name}", body)
    return name, f"{name}."


async def _consumer(nc: WireConnection, stream: str, **config: object) -> str:
    durable = _name()
    body = {"durable_name": durable, "ack_policy": "explicit", **config}
    await nc.js_api(f"CONSUMER.CREATE.{stream}.{durable}", {"stream_name": stream, "config": body})
    return durable


async def _until(check: Callable[[], Awaitable[bool]], timeout: float = 5.0) -> None:
    """Poll the server (each check is a round trip) until ``check`` holds."""
    with anyio.fail_after(timeout):
        while not await check():
            await anyio.lowlevel.checkpoint()


async def _consumer_info(nc: WireConnection, stream: str, durable: str) -> dict[str, object]:
    return await nc.js_api(f"CONSUMER.INFO.{stream}.{durable}")


# -- core NATS -----------------------------------------------------------------------------


async def test_connect_and_flush(nc: WireConnection) -> None:
    assert nc.server_version
    assert nc.max_payload >= 1024
    await nc.flush()
    assert not nc.is_closed


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_asyncio_reads_the_socket_itself_not_through_anyios_stream(
    nc: WireConnection,
) -> None:
    """anyio's asyncio stream re-registers its socket for every chunk it receives (two
    ``epoll_ctl`` calls); the wire client reads a dup of the socket from one reader callback
    instead, and the stream's transport stays paused."""
    transport = getattr(nc._stream, "_transport", None)
    assert transport is not None and nc._dup is not None
    subject = _name()
    sub = await nc.subscribe(subject)
    for i in range(50):
        await nc.publish(subject, b"%d" % i)
    assert [(await sub.next_msg(5)).data for _ in range(50)] == [b"%d" % i for i in range(50)]
    assert not transport.is_reading()
    assert [msg.data for msg in transport.get_protocol().read_queue] == []


async def test_pub_sub_with_and_without_headers(nc: WireConnection) -> None:
    subject = _name()
    sub = await nc.subscribe(f"{subject}.*")
    await nc.publish(f"{subject}.a", b"plain", reply="answer.here")
    await nc.publish(f"{subject}.b", b"with", headers={"K": "v", "Multi": ["1", "2"]})
    await nc.publish(f"{subject}.c", b"")
    first, second, third = [await sub.next_msg(5) for _ in range(3)]
    assert (first.subject, first.data, first.reply, first.headers) == (
        f"{subject}.a", b"plain", "answer.here", None,
    )  # fmt: skip
    assert second.data == b"with" and second.headers is not None
    assert second.headers["K"] == "v"
    assert second.headers.get_all("Multi") == ["1", "2"]
    assert second.status is None
    assert third.data == b""


async def test_queue_group_and_iteration(nc: WireConnection) -> None:
    subject = _name()
    sub = await nc.subscribe(subject, queue="workers")
    for i in range(3):
        await nc.publish(subject, str(i).encode())
    await sub.unsubscribe(max_msgs=3)
    received = [msg.data async for msg in sub]  # ends after the third message
    assert received == [b"0", b"1", b"2"]
    with pytest.raises(SubscriptionClosedError):
        await sub.next_msg(1)


async def test_large_payloads_and_pipelined_publishes(nc: WireConnection) -> None:
    subject = _name()
    sub = await nc.subscribe(subject)
    big = os.urandom(nc.max_payload - 1024)  # several reads on the receiving side
    for _ in range(8):  # more than the socket takes at once: the writer waits to write
        await nc.publish(subject, big, headers={"Size": str(len(big))})
    for i in range(2000):  # coalesced into few writes
        await nc.publish(subject, b"%d" % i)
    for _ in range(8):
        got = await sub.next_msg(10)
        assert got.data == big and got.headers is not None
        assert got.headers["Size"] == str(len(big))
    assert [(await sub.next_msg(10)).data for _ in range(2000)] == [b"%d" % i for i in range(2000)]
    with pytest.raises(ValueError, match="max_payload"):
        await nc.publish(subject, b"x" * (nc.max_payload + 1))


async def test_answered_deadlines_do_not_pile_up(nc: WireConnection) -> None:
    for _ in range(1100):  # each round trip leaves a one-hour deadline behind
        await nc.flush(timeout=3600)
    assert len(nc._deadlines) <= 1025


async def test_answered_deadlines_do_not_keep_their_replies(nc: WireConnection) -> None:
    _, prefix = await _stream(nc)
    for _ in range(20):  # each batch leaves a one-hour deadline behind
        await nc.js_publish_many([(prefix + "x", b"%d" % i) for i in range(50)], timeout=3600)
    gc.collect()
    replies = [
        o for o in gc.get_objects() if isinstance(o, Msg) and o.subject.startswith(nc._inbox_root)
    ]
    assert replies == []  # 1,000 PubAck replies were kept once, until their deadline


async def test_unsubscribe_reaches_the_server_with_the_next_write(
    nats_url: str, nc: WireConnection
) -> None:
    subject = _name()
    async with await _connect(nats_url) as other:
        sub = await other.subscribe(subject)
        await other.flush()
        await sub.unsubscribe()  # no send of its own: it waits for the next write
        await other.flush()  # that write
        with pytest.raises(NoRespondersError):  # the server knows nobody listens any more
            await nc.request(subject, b"?", timeout=5)


async def test_next_msg_timeout(nc: WireConnection) -> None:
    sub = await nc.subscribe(_name())
    with pytest.raises(TimeoutError):
        await sub.next_msg(0.05)


async def test_request_reply_and_no_responders(nats_url: str, nc: WireConnection) -> None:
    subject = _name()
    async with await _connect(nats_url) as responder, anyio.create_task_group() as tg:
        sub = await responder.subscribe(subject)
        await responder.flush()

        async def answer() -> None:
            async for msg in sub:
                hdr = msg.headers["X"] if msg.headers else "-"
                await responder.publish(msg.reply, msg.data.upper() + hdr.encode())

        tg.start_soon(answer)
        assert (await nc.request(subject, b"hi", timeout=5)).data == b"HI-"
        replies = await nc.request(subject, b"h", headers={"X": "y"}, timeout=5)
        assert replies.data == b"Hy"
        with pytest.raises(NoRespondersError):
            await nc.request(_name(), b"nobody", timeout=5)
        await sub.unsubscribe()


async def test_request_timeout(nats_url: str, nc: WireConnection) -> None:
    subject = _name()
    async with await _connect(nats_url) as silent:
        await silent.subscribe(subject)
        await silent.flush()
        with pytest.raises(TimeoutError, match="no reply"):
            await nc.request(subject, b"?", timeout=0.1)


# -- JetStream -----------------------------------------------------------------------------


async def test_js_publish_ack_and_errors(nc: WireConnection) -> None:
    stream, prefix = await _stream(nc)
    ack = await nc.js_publish(prefix + "a", b"one")
    assert ack == PubAck(stream, 1, False)
    again = await nc.js_publish(prefix + "a", b"two", headers={"Nats-Msg-Id": "m1"})
    dup = await nc.js_publish(prefix + "a", b"two", headers={"Nats-Msg-Id": "m1"})
    assert (again.seq, dup.seq, dup.duplicate) == (2, 2, True)
    with pytest.raises(NoRespondersError):
        await nc.js_publish(_name() + ".nostream", b"x")
    with pytest.raises(JetStreamAPIError) as refused:
        await nc.js_publish(prefix + "a", b"x", headers={"Nats-Expected-Last-Sequence": "1"})
    assert refused.value.code == 400 and refused.value.err_code == 10071
    assert "wrong last sequence" in refused.value.description


async def test_js_publish_many(nc: WireConnection) -> None:
    _, prefix = await _stream(nc)
    messages = [(prefix + "x", b"%d" % i) for i in range(500)]
    outcomes = await nc.js_publish_many(messages)
    assert [o.seq for o in outcomes if isinstance(o, PubAck)] == list(range(1, 501))
    mixed = await nc.js_publish_many(
        [
            (prefix + "y", b"ok", None),
            (_name() + ".nostream", b"lost"),
            (prefix + "y", b"stale", {"Nats-Expected-Last-Sequence": "1"}),
        ]
    )
    assert isinstance(mixed[0], PubAck) and mixed[0].seq == 501
    assert isinstance(mixed[1], NoRespondersError)
    assert isinstance(mixed[2], JetStreamAPIError) and mixed[2].err_code == 10071
    silent = _name()
    await nc.subscribe(silent)  # takes the message, never acks it
    await nc.flush()
    unconfirmed = await nc.js_publish_many([(silent, b"?"), (prefix + "y", b"ok")], timeout=0.2)
    assert isinstance(unconfirmed[0], TimeoutError) and isinstance(unconfirmed[1], PubAck)


async def test_fetch_full_batch_with_metadata(nc: WireConnection) -> None:
    stream, prefix = await _stream(nc)
    durable = await _consumer(nc, stream)
    await nc.js_publish_many([(prefix + "job", b"%d" % i, {"N": str(i)}) for i in range(5)])
    puller = await nc.pull_subscribe(stream, durable)
    with anyio.fail_after(3):  # a full batch returns at once, long before it expires
        msgs = await puller.fetch(5, expires=30)
    assert [m.data for m in msgs] == [b"0", b"1", b"2", b"3", b"4"]
    assert msgs[2].headers is not None and msgs[2].headers["N"] == "2"
    meta = msgs[2].metadata
    assert (meta.stream, meta.consumer, meta.stream_seq, meta.num_delivered) == (
        stream, durable, 3, 1,
    )  # fmt: skip
    assert meta.num_pending in (2, 0)  # 0 now and then: the server counts pending lazily
    assert meta.timestamp_ns > 0
    for msg in msgs:
        await nc.ack(msg)


async def test_fetch_expires_with_fewer_and_no_wait(nc: WireConnection) -> None:
    stream, prefix = await _stream(nc)
    durable = await _consumer(nc, stream)
    puller = await nc.pull_subscribe(stream, durable)
    assert await puller.fetch(3, no_wait=True) == []  # 404 at once
    await nc.js_publish_many([(prefix + "a", b"1"), (prefix + "a", b"2")])
    with anyio.fail_after(5):
        msgs = await puller.fetch(10, expires=0.2)  # the server ends it with a 408
    assert [m.data for m in msgs] == [b"1", b"2"]
    assert await puller.fetch(1, expires=0.05) == []
    await puller.unsubscribe()


async def test_ack_nak_in_progress(nc: WireConnection) -> None:
    stream, prefix = await _stream(nc)
    durable = await _consumer(nc, stream, ack_wait=600_000_000)  # 0.6 s
    await nc.js_publish_many([(prefix + "a", b"%d" % i) for i in range(4)])
    puller = await nc.pull_subscribe(stream, durable)
    acked, naked, later, worked = await puller.fetch(4, expires=5)

    await nc.ack(acked)

    async def ack_floor_moved() -> bool:
        floor = (await _consumer_info(nc, stream, durable))["ack_floor"]
        return isinstance(floor, dict) and floor.get("stream_seq") == 1  # pyright: ignore

    await _until(ack_floor_moved)

    await nc.nak(naked)  # redelivered at once
    await nc.nak(later, delay=30)  # not before 30 s
    redelivered = await puller.fetch(1, expires=5)
    assert [m.data for m in redelivered] == [naked.data]
    assert redelivered[0].metadata.num_delivered == 2
    await nc.ack(redelivered[0])

    assert await puller.fetch(1, expires=0.3) == []  # 0.3 s of worked's 0.6 s ack_wait pass
    await nc.in_progress(worked)  # restarts its 0.6 s
    assert await puller.fetch(1, expires=0.45) == []  # past the first ack_wait, not the new one
    again = await puller.fetch(1, expires=5)  # redelivered once the restarted timer runs out
    assert [(m.data, m.metadata.num_delivered) for m in again] == [(worked.data, 2)]
    info = await _consumer_info(nc, stream, durable)
    assert info["num_ack_pending"] == 2  # worked (delivered again) and later (nak'd with delay)


async def test_direct_get_hit_and_miss(nc: WireConnection) -> None:
    stream, prefix = await _stream(nc, allow_direct=True)
    await nc.js_publish(prefix + "k", b"old")
    await nc.js_publish(prefix + "k", b"new", headers={"Who": "me"})
    msg = await nc.direct_get(stream, prefix + "k")
    assert msg is not None and msg.data == b"new" and msg.headers is not None
    assert msg.headers["Nats-Subject"] == prefix + "k"
    assert msg.headers["Nats-Sequence"] == "2"
    assert msg.headers["Who"] == "me"
    assert await nc.direct_get(stream, prefix + "missing") is None


async def test_user_password_and_token(auth_servers: dict[str, str]) -> None:
    password_url, token_url = auth_servers["password"], auth_servers["token"]
    async with await _connect(password_url, user="alice", password="s3cret") as nc:
        await nc.flush()
    async with await _connect(token_url, token="t0k3n") as nc:
        await nc.flush()
    with pytest.raises(ServerError, match="Authorization Violation"):
        await _connect(password_url, user="alice", password="wrong")


async def test_tls_with_a_client_certificate(tls: tuple[Tls, str]) -> None:
    files, url = tls
    context = ssl.create_default_context(cafile=str(files.ca))
    context.load_cert_chain(str(files.cert), str(files.key))
    async with await _connect(url, ssl_context=context) as nc:
        subject = _name()
        sub = await nc.subscribe(subject)
        await nc.publish(subject, b"private")
        assert (await sub.next_msg(5)).data == b"private"


# -- closing and failures ------------------------------------------------------------------


async def test_close_fails_pending_waiters(nats_url: str) -> None:
    subject = _name()
    outcomes: list[BaseException] = []

    async def expect_closed(call: Callable[[], Awaitable[object]]) -> None:
        try:
            await call()
        except ConnectionClosedError as exc:
            outcomes.append(exc)

    async with await _connect(nats_url) as silent:
        heard = await silent.subscribe(subject)
        await silent.flush()
        stream, _ = await _stream(silent)
        durable = await _consumer(silent, stream)
        url = urlsplit(nats_url)
        async with anyio.create_task_group() as tg:
            nc = await WireConnection.connect(url.hostname or "", url.port or 0, task_group=tg)
            sub = await nc.subscribe(_name())
            puller = await nc.pull_subscribe(stream, durable)
            tg.start_soon(expect_closed, lambda: sub.next_msg(30))
            tg.start_soon(expect_closed, lambda: puller.fetch(1, expires=30))
            tg.start_soon(expect_closed, lambda: nc.request(subject, b"?", timeout=30))
            await heard.next_msg(5)  # the request reached the server
            await nc.close()  # ends the connection's tasks in tg too
            with pytest.raises(ConnectionClosedError):
                await nc.publish(subject, b"late")
            with pytest.raises(ConnectionClosedError):
                await nc.flush()
        assert len(outcomes) == 3


async def test_server_error_closes_with_clear_error(nats_url: str) -> None:
    async with await _connect(nats_url, reconnect=False) as nc:
        sub = await nc.subscribe(_name())
        nc._write(b"BOGUS\r\n")  # the server answers -ERR and drops the connection
        with pytest.raises(ConnectionClosedError) as closed:
            await sub.next_msg(5)
        assert isinstance(closed.value.__cause__, ConnectionLostError)
        assert isinstance(closed.value.__cause__.__cause__, ServerError)
        assert nc.is_closed


async def test_server_error_reconnects_and_keeps_subscriptions(nats_url: str) -> None:
    """The same -ERR with reconnect on (the default): back on the same server, sub intact."""
    lost: list[ConnectionLostError] = []
    back = anyio.Event()
    url = urlsplit(nats_url)
    async with await WireConnection.connect(
        url.hostname, url.port or 4222, on_disconnected=lost.append, on_reconnected=back.set
    ) as nc:
        subject = _name()
        sub = await nc.subscribe(subject, queue="q")
        await nc.flush()
        nc._write(b"BOGUS\r\n")
        with anyio.fail_after(10):
            await back.wait()
        assert nc.is_connected and nc.reconnects == 1
        assert len(lost) == 1 and isinstance(lost[0].__cause__, ServerError)
        await nc.publish(subject, b"after")
        assert (await sub.next_msg(5)).data == b"after"
        with pytest.raises(NoRespondersError):  # its 503 reaches the request inbox again
            await nc.request(_name(), b"", timeout=5)


async def _dropped_by_the_server(nc: WireConnection, back: anyio.Event) -> None:
    """Make the server drop the connection (-ERR on a bogus line) and wait for the reconnect."""
    nc._write(b"BOGUS\r\n")
    with anyio.fail_after(10):
        await back.wait()
    assert nc.is_connected and nc.reconnects == 1


async def test_reconnect_uses_the_same_credentials(auth_servers: dict[str, str]) -> None:
    back = anyio.Event()
    password_url = auth_servers["password"]
    async with await _connect(
        password_url, user="alice", password="s3cret", on_reconnected=back.set
    ) as nc:
        subject = _name()
        sub = await nc.subscribe(subject)
        await _dropped_by_the_server(nc, back)
        await nc.publish(subject, b"again")
        assert (await sub.next_msg(5)).data == b"again"


async def test_reconnect_redoes_tls(tls: tuple[Tls, str]) -> None:
    files, url = tls
    context = ssl.create_default_context(cafile=str(files.ca))
    context.load_cert_chain(str(files.cert), str(files.key))
    back = anyio.Event()
    async with await _connect(url, ssl_context=context, on_reconnected=back.set) as nc:
        subject = _name()
        sub = await nc.subscribe(subject)
        await _dropped_by_the_server(nc, back)
        await nc.publish(subject, b"private again")
        assert (await sub.next_msg(5)).data == b"private again"


# -- the parser alone ----------------------------------------------------------------------


class _Collect:
    def __init__(self) -> None:
        self.msgs: list[Msg] = []
        self.ops: list[str] = []

    def on_msg(self, sid: int, msg: Msg) -> None:
        self.msgs.append(msg)

    def on_info(self, info: dict[str, object]) -> None:
        self.ops.append("info")

    def on_ping(self) -> None:
        self.ops.append("ping")

    def on_pong(self) -> None:
        self.ops.append("pong")

    def on_err(self, message: str) -> None:
        self.ops.append(f"err:{message}")


def test_parser_any_split() -> None:
    payload = os.urandom(300)
    hdr = b"NATS/1.0 408 Request Timeout\r\nNats-Pending-Messages: 2\r\n\r\n"
    wire = (
        b'INFO {"max_payload": 100}\r\nPING\r\n'
        + b"MSG a.b 1 r.s %d\r\n" % len(payload) + payload + b"\r\n"
        + b"HMSG c 2 %d %d\r\n" % (len(hdr), len(hdr) + 3) + hdr + b"xyz\r\n"
        + b"+OK\r\nPONG\r\n-ERR 'Stale Connection'\r\n"
    )  # fmt: skip
    for step in (1, 7, 64, len(wire)):
        seen = _Collect()
        parser = Parser(seen)
        for start in range(0, len(wire), step):
            parser.feed(wire[start : start + step])
        assert seen.ops == ["info", "ping", "pong", "err:Stale Connection"]
        plain, status = seen.msgs
        assert (plain.subject, plain.reply, plain.data, plain.sid) == ("a.b", "r.s", payload, 1)
        assert (status.subject, status.reply, status.data, status.status) == ("c", "", b"xyz", 408)
        assert status.headers is not None and status.headers.description == "Request Timeout"
        assert status.headers["Nats-Pending-Messages"] == "2"


def test_headers_and_metadata_forms() -> None:
    assert Headers.parse(b"NATS/1.0 503\r\n\r\n").status == 503
    assert Headers.parse(b"NATS/1.0\r\nA: 1\r\nA: 2\r\n\r\n").get_all("A") == ["1", "2"]
    v1 = MsgMetadata.from_reply("$JS.ACK.S.C.2.10.7.1700000000000000000.3")
    assert v1 == MsgMetadata("S", "C", 2, 10, 7, 1700000000000000000, 3, "")
    v2 = MsgMetadata.from_reply("$JS.ACK.hub.ACCHASH.S.C.2.10.7.1700000000000000000.3.rnd")
    assert v2 == MsgMetadata("S", "C", 2, 10, 7, 1700000000000000000, 3, "hub")
    no_domain = MsgMetadata.from_reply("$JS.ACK._.ACCHASH.S.C.1.1.1.1.0.rnd")
    assert no_domain.domain == "" and no_domain.stream == "S"
    with pytest.raises(ValueError):
        MsgMetadata.from_reply("_INBOX.abc.1")
