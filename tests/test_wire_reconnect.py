"""Reconnecting in the native client (naq._transport._wire), against a real nats-server that is
SIGKILLed and started again on its port and store, or SIGSTOPped; on asyncio and Trio.

Each test has a server of its own. Waits are on the connection's hooks and on server replies,
never on fixed sleeps.
"""

from __future__ import annotations

import collections
import signal
import socket
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import anyio
import anyio.to_thread
import pytest

from naq._transport._wire import (
    ConnectionClosedError,
    ConnectionLostError,
    Msg,
    PubAck,
    ReconnectBufferFullError,
    SubscriptionClosedError,
    WireConnection,
)
from naq._transport._wire_protocol import parse_connect_urls
from tests.test_outage import RestartableServer

pytestmark = pytest.mark.anyio


class KillableServer(RestartableServer):
    """test_outage's restartable server, plus SIGKILL and SIGSTOP/SIGCONT."""

    def _process(self):
        assert self._server is not None and self._server.process is not None
        return self._server.process

    def kill(self) -> None:
        """SIGKILL: no clean shutdown, then free the port, the store lock and temp files."""
        process = self._process()
        process.kill()
        process.wait()
        self.stop()

    def pause(self) -> None:
        """Stop the server process, and return once it is stopped: a signal takes effect when
        the process is next scheduled, so a request sent right after may still be answered."""
        process = self._process()
        process.send_signal(signal.SIGSTOP)
        stat = Path(f"/proc/{process.pid}/stat")
        deadline = time.monotonic() + 10
        while stat.read_text().rsplit(")", 1)[1].split()[0] != "T":
            assert time.monotonic() < deadline, "the server did not stop"
            time.sleep(0.001)

    def resume(self) -> None:
        self._process().send_signal(signal.SIGCONT)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[KillableServer]:
    killable = KillableServer(tmp_path / "store")
    killable.start()
    try:
        yield killable
    finally:
        if killable._server is not None:
            killable.resume()  # a stopped process would not take SIGTERM
        killable.stop()


class Watch:
    """The connection's hooks, counted, with a wait for a count."""

    def __init__(self) -> None:
        self.calls: collections.Counter[str] = collections.Counter()
        self.lost: list[ConnectionLostError] = []
        self.closed_with: ConnectionClosedError | None = None
        self._changed = anyio.Event()

    def _bump(self, what: str) -> None:
        self.calls[what] += 1
        self._changed.set()
        self._changed = anyio.Event()

    def on_disconnected(self, error: ConnectionLostError) -> None:
        self.lost.append(error)
        self._bump("disconnected")

    async def on_reconnected(self) -> None:  # a coroutine hook: run as a task
        self._bump("reconnected")

    def on_closed(self, error: ConnectionClosedError) -> None:
        self.closed_with = error
        self._bump("closed")

    async def wait_for(self, what: str, count: int = 1, timeout: float = 30) -> None:
        with anyio.fail_after(timeout):
            while self.calls[what] < count:
                await self._changed.wait()


async def _connect(server: KillableServer, watch: Watch, **options) -> WireConnection:
    return await WireConnection.connect(
        "127.0.0.1",
        server.port,
        **{"reconnect_wait": 0.2, "connect_timeout": 2.0, **options},
        on_disconnected=watch.on_disconnected,
        on_reconnected=watch.on_reconnected,
        on_closed=watch.on_closed,
    )


@pytest.fixture
def watch() -> Watch:
    return Watch()


@pytest.fixture
async def nc(server: KillableServer, watch: Watch) -> AsyncIterator[WireConnection]:
    async with await _connect(server, watch) as conn:
        yield conn


def _name() -> str:
    return f"r{uuid.uuid4().hex[:12]}"


class Outcomes:
    """What background calls ended with, and a wait until a given one is in."""

    def __init__(self) -> None:
        self.results: dict[str, object] = {}
        self._changed = anyio.Event()

    async def record(self, key: str, call: Callable[[], Awaitable[object]]) -> None:
        try:
            self.results[key] = await call()
        except (ConnectionClosedError, TimeoutError) as exc:
            self.results[key] = exc
        self._changed.set()
        self._changed = anyio.Event()

    async def get(self, key: str, timeout: float = 30) -> object:
        with anyio.fail_after(timeout):
            while key not in self.results:
                await self._changed.wait()
        return self.results[key]


# -- a killed and restarted server -----------------------------------------------------------


async def test_survives_a_killed_and_restarted_server(
    server: KillableServer, watch: Watch, nc: WireConnection
) -> None:
    name = _name()
    stream_config = {"name": name, "subjects": [f"{name}.>"], "storage": "file"}
    await nc.js_api(f"STREAM.CREATE.{name}", stream_config)
    first = await nc.js_publish(f"{name}.before", b"stored")
    durable = f"{name}d"
    consumer = {"durable_name": durable, "ack_policy": "explicit", "filter_subject": f"{name}.jobs"}
    await nc.js_api(f"CONSUMER.CREATE.{name}.{durable}", {"stream_name": name, "config": consumer})
    puller = await nc.pull_subscribe(name, durable)
    events = await nc.subscribe(f"ev{name}.>", queue="group")
    limited = await nc.subscribe(f"lim{name}")
    await limited.unsubscribe(max_msgs=3)
    silent = await nc.subscribe(f"silent{name}")  # takes requests, never answers
    service = await nc.subscribe(f"svc{name}")
    await nc.publish(f"lim{name}", b"0")
    assert (await limited.next_msg(5)).data == b"0"
    assert limited._resub().endswith(f"UNSUB {limited.sid} 2\r\n".encode())

    async def respond() -> None:
        async for msg in service:
            await nc.publish(msg.reply, b"re:" + msg.data)

    outcomes = Outcomes()
    async with anyio.create_task_group() as tg:
        tg.start_soon(respond)
        tg.start_soon(
            outcomes.record, "in flight", lambda: nc.request(f"silent{name}", b"?", timeout=30)
        )
        tg.start_soon(outcomes.record, "fetch", lambda: puller.fetch(1, expires=30))
        await silent.next_msg(5)  # the request reached the server: it is in flight
        await nc.flush()  # and so did the fetch's pull request

        await anyio.to_thread.run_sync(server.kill)
        await watch.wait_for("disconnected")
        assert nc.is_reconnecting and not nc.is_closed
        assert isinstance(await outcomes.get("in flight", 5), ConnectionLostError)
        assert isinstance(await outcomes.get("fetch", 5), ConnectionLostError)

        for i in range(3):  # buffered while disconnected
            await nc.publish(f"ev{name}.x", b"%d" % i)
        tg.start_soon(
            outcomes.record, "while down", lambda: nc.request(f"svc{name}", b"hi", timeout=30)
        )

        await anyio.to_thread.run_sync(server.start)
        await watch.wait_for("reconnected")
        assert nc.is_connected and nc.reconnects == 1

        reply = await outcomes.get("while down")
        assert isinstance(reply, Msg) and reply.data == b"re:hi"
        assert [(await events.next_msg(5)).data for _ in range(3)] == [b"0", b"1", b"2"]
        await nc.publish(f"ev{name}.y", b"after")
        assert (await events.next_msg(5)).data == b"after"

        ack = await nc.js_publish(f"{name}.jobs", b"job")  # the file-stored stream survived
        assert ack == PubAck(name, first.seq + 1)
        jobs = await puller.fetch(1, expires=5)  # the pull inbox is subscribed again
        assert [m.data for m in jobs] == [b"job"]
        await nc.ack(jobs[0])

        for i in range(1, 6):  # auto-unsubscribe: 2 of the 3 were still to come
            await nc.publish(f"lim{name}", b"%d" % i)
        assert [(await limited.next_msg(5)).data for _ in range(2)] == [b"1", b"2"]
        with pytest.raises(SubscriptionClosedError):
            await limited.next_msg(1)
        tg.cancel_scope.cancel()
    assert watch.calls["closed"] == 0


async def test_reconnects_after_each_of_two_restarts(
    server: KillableServer, watch: Watch, nc: WireConnection
) -> None:
    subject = _name()
    sub = await nc.subscribe(subject)
    outcomes = Outcomes()
    async with anyio.create_task_group() as tg:
        for round_ in (1, 2):
            await anyio.to_thread.run_sync(server.kill)
            await watch.wait_for("disconnected", round_)
            tg.start_soon(outcomes.record, f"flush {round_}", lambda: nc.flush(30))
            await anyio.to_thread.run_sync(server.start)
            await watch.wait_for("reconnected", round_)
            assert await outcomes.get(f"flush {round_}") is None  # waited, then went through
            await nc.publish(subject, b"%d" % round_)
            assert (await sub.next_msg(5)).data == b"%d" % round_
    assert nc.reconnects == 2


# -- a server that stops answering -----------------------------------------------------------


async def test_missed_pings_detect_a_stopped_server(server: KillableServer, watch: Watch) -> None:
    interval, outstanding = 0.3, 2
    async with await _connect(
        server, watch, ping_interval=interval, max_outstanding_pings=outstanding, connect_timeout=1
    ) as nc:
        subject = _name()
        sub = await nc.subscribe(subject)
        await nc.flush()
        server.pause()
        try:
            stopped = anyio.current_time()
            await watch.wait_for("disconnected", timeout=10)
            detected = anyio.current_time() - stopped
        finally:
            server.resume()
        assert "stale connection" in str(watch.lost[0])
        # Pings are due every 0.9 s; without them a stopped server is never noticed (the socket
        # stays open). The bound is loose so a loaded machine cannot fail it.
        assert detected <= 5
        await watch.wait_for("reconnected")
        await nc.publish(subject, b"awake")
        assert (await sub.next_msg(5)).data == b"awake"


# -- closing, giving up, limits --------------------------------------------------------------


async def test_close_while_reconnecting(server: KillableServer, watch: Watch) -> None:
    outcomes = Outcomes()
    async with anyio.create_task_group() as tg:
        nc = await _connect(server, watch, pending_size=4096, task_group=tg)
        subject = _name()
        sub = await nc.subscribe(subject)
        await nc.flush()
        await anyio.to_thread.run_sync(server.kill)
        await watch.wait_for("disconnected")

        await nc.publish(subject, b"x" * 3000)
        with pytest.raises(ReconnectBufferFullError):
            await nc.publish(subject, b"x" * 3000)
        with pytest.raises(TimeoutError, match="still reconnecting"):
            await nc.request(subject, b"?", timeout=0.2)  # waited for the reconnect, never sent

        tg.start_soon(outcomes.record, "next_msg", lambda: sub.next_msg(30))
        tg.start_soon(outcomes.record, "request", lambda: nc.request(subject, b"?", timeout=30))
        tg.start_soon(outcomes.record, "flush", lambda: nc.flush(30))
        await anyio.lowlevel.checkpoint()
        with anyio.fail_after(3):
            await nc.close()  # stops reconnecting at once
        for key in ("next_msg", "request", "flush"):
            failed = await outcomes.get(key, 5)
            assert isinstance(failed, ConnectionClosedError), (key, failed)
            assert not isinstance(failed, ConnectionLostError)
    assert nc.is_closed and not nc.is_reconnecting
    assert watch.calls == {"disconnected": 1, "closed": 1}
    with pytest.raises(ConnectionClosedError):
        await nc.publish(subject, b"late")


async def test_gives_up_after_max_reconnect_attempts(server: KillableServer, watch: Watch) -> None:
    async with await _connect(server, watch, max_reconnect_attempts=3, reconnect_wait=0.05) as nc:
        await nc.flush()
        await anyio.to_thread.run_sync(server.kill)
        await watch.wait_for("closed")
        assert nc.is_closed
        assert watch.closed_with is not None
        assert "gave up reconnecting to NATS after 3 attempts" in str(watch.closed_with)
        with pytest.raises(ConnectionClosedError, match="gave up"):
            await nc.flush()
    assert watch.calls == {"disconnected": 1, "closed": 1}


async def test_connects_to_the_first_server_that_answers(server: KillableServer) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        dead = probe.getsockname()[1]
    live = ("127.0.0.1", server.port)
    async with await WireConnection.connect(servers=[("127.0.0.1", dead), live]) as nc:
        await nc.flush()
        assert nc.connected_server == live
    with pytest.raises(OSError):  # one server: its own error, as before
        await WireConnection.connect("127.0.0.1", dead)


def test_parse_connect_urls() -> None:
    info = {"connect_urls": ["10.0.0.1:4222", "[::1]:4223", "no-port", "h:x", 5]}
    assert parse_connect_urls(info) == [("10.0.0.1", 4222), ("::1", 4223)]
    assert parse_connect_urls({}) == []
