"""naq's hand-written NATS protocol code, against messages a real nats-server sends.

Covered: the worker's pull consumer (``_pull.PullConsumer``), the pipelined publisher
(``_publisher.AckedPublisher`` and its ack parsing), reading a delivery's count and job id
from its ack subject and headers (``_deliveries``), and the batched direct gets
(``_direct_get`` and ``JetStream.direct_get_many``), and the reads that must be exact at
once: ``JetStream.count_messages``, ``JetStream.latest_per_subject`` and ``read_since``.

The ``RECORDED`` messages were recorded from nats-server v2.15.1 through nats-py: each is what
nats-py handed naq's callback (subject, reply, headers, data), written here as literals.
How: a stream ``NAQ_JOBS`` on ``naq.jobs.>`` (work queue) with the durable ``naq_q``; publishes
with ``Nats-Msg-Id`` (one repeated, one to the bare queue subject, one with
``Nats-Expected-Last-Subject-Sequence: 7``, one to a subject no stream takes); pull requests
of 3 (expiring), of 1 after a nak, of 1 with ``idle_heartbeat``, two at once on a consumer
with ``max_waiting=1``, and one to a consumer that does not exist; ``multi_last`` direct gets
on a bucket stream with a deleted key, and on subjects that match nothing. The server sends
only the 9-token ack subject (also with a JetStream domain); the longer forms are ADR-15's,
checked against nats-py's own parser.

Where the server's behaviour is simple and deterministic the tests use the session's real
server instead (acks, timeouts, direct gets); the pull consumer's requests go to a
subscription the test answers with the recorded messages, because a client may not publish
on ``$JS.ACK`` reply subjects and a real consumer's timing is not the test's to choose.
These parts run on naq's asyncio loop (Trio reaches them through the bridge): asyncio only.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Coroutine
from datetime import timedelta
from typing import Any, NamedTuple, TypeVar

import anyio
import nats
import nats.errors
import pytest
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.js import api

from naq._transport import _pull
from naq._transport._deliveries import _delivery_count, _job_id_of, stream_sequence
from naq._transport._direct_get import dependency_edges, multi_last_requests
from naq._transport._jetstream import JetStream
from naq._transport._nats import NatsTransport
from naq._transport._publisher import AckedPublisher, OutgoingMessage, PublishError, _refusal
from naq._transport._pull import PullConsumer
from naq._transport._streams import JOBS_MAX_CONSUMERS, jobs_stream
from naq._transport._wire_protocol import Msg as WireMsg

pytestmark = pytest.mark.anyio

T = TypeVar("T")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Recorded(NamedTuple):
    subject: str
    reply: str = ""
    headers: dict[str, str] | None = None
    data: bytes = b""

    def msg(self) -> Msg:
        """A fresh nats-py message (they keep ack state), as nats-py delivers it."""
        headers = None if self.headers is None else dict(self.headers)
        no_client: Any = None  # never acked here
        return Msg(no_client, self.subject, self.reply, self.data, headers)

    def wire_msg(self) -> WireMsg:
        """The same message as naq's wire client holds it (headers in their wire form)."""
        raw = None
        if self.headers is not None:
            lines = "".join(f"{k}: {v}\r\n" for k, v in self.headers.items())
            raw = f"NATS/1.0\r\n{lines}\r\n".encode()
        return WireMsg(self.subject, self.reply, self.data, raw)


_PULL_INBOX = "_INBOX.85s4kWD3Ako5rKiA0t67Qw"
_ACK_INBOX = "_INBOX.85s4kWD3Ako5rKiA0t67MO"
RECORDED = {
    # Pull deliveries: a job's subject, and the bare queue subject (job id in Nats-Msg-Id).
    "job": Recorded(
        "naq.jobs.q.job1",
        "$JS.ACK.NAQ_JOBS.naq_q.1.1.1.1796039625054552396.1",
        {"Nats-Msg-Id": "job1"},
        b'{"id":"x"}',
    ),
    "bare": Recorded(
        "naq.jobs.q",
        "$JS.ACK.NAQ_JOBS.naq_q.1.2.2.1796039625055737178.0",
        {"Nats-Msg-Id": "job2"},
        b'{"id":"x"}',
    ),
    "redelivered": Recorded(
        "naq.jobs.q.job1",
        "$JS.ACK.NAQ_JOBS.naq_q.2.1.3.1796039625054552396.0",
        {"Nats-Msg-Id": "job1"},
        b'{"id":"x"}',
    ),
    # What ends (or does not end) a pull request, on the request's reply subject.
    "heartbeat": Recorded(
        _PULL_INBOX,
        headers={
            "Status": "100",
            "Description": "Idle Heartbeat",
            "Nats-Last-Consumer": "3",
            "Nats-Last-Stream": "2",
        },
    ),
    "expired": Recorded(
        _PULL_INBOX,
        headers={
            "Status": "408",
            "Description": "Request Timeout",
            "Nats-Pending-Messages": "1",
            "Nats-Pending-Bytes": "0",
        },
    ),
    "max_waiting": Recorded(
        _PULL_INBOX, headers={"Status": "409", "Description": "Exceeded MaxWaiting"}
    ),
    "no_consumer": Recorded(  # no responders: how nats-py reads the server's 503
        _PULL_INBOX,
        headers={
            "Status": "503",
            "Description": "\nNats-Subject: $JS.API.CONSUMER.MSG.NEXT.NAQ_JOBS.naq_missing",
            "Nats-Subject": "$JS.API.CONSUMER.MSG.NEXT.NAQ_JOBS.naq_missing",
        },
    ),
    # Publish acks, on the publish's reply subject.
    "stored": Recorded(f"{_ACK_INBOX}.1", data=b'{"stream":"NAQ_JOBS","seq":1}'),
    "duplicate": Recorded(
        f"{_ACK_INBOX}.2", data=b'{"stream":"NAQ_JOBS","seq":1,"duplicate": true}'
    ),
    "wrong_sequence": Recorded(
        f"{_ACK_INBOX}.4",
        data=b'{"error":{"code":400,"err_code":10071,"description":"wrong last sequence: 0"},'
        b'"stream":"NAQ_JOBS","seq":0}',
    ),
    "no_stream": Recorded(
        f"{_ACK_INBOX}.5",
        headers={
            "Status": "503",
            "Description": "\nNats-Subject: nobody.listens",
            "Nats-Subject": "nobody.listens",
        },
    ),
    # A multi_last direct get over a dependency bucket: edges a.b, a.c (deleted), d.e.
    "edge_a_b": Recorded(
        "_INBOX.85s4kWD3Ako5rKiA0t67sE",
        headers={
            "Nats-Stream": "KV_deps",
            "Nats-Subject": "$KV.deps.a.b",
            "Nats-Sequence": "1",
            "Nats-Time-Stamp": "2026-11-30T11:53:47.570665594Z",
            "Nats-Num-Pending": "2",
            "Nats-Last-Sequence": "0",
        },
        data=b"1",
    ),
    "edge_a_c_deleted": Recorded(
        "_INBOX.85s4kWD3Ako5rKiA0t67sE",
        headers={
            "KV-Operation": "DEL",
            "Nats-Stream": "KV_deps",
            "Nats-Subject": "$KV.deps.a.c",
            "Nats-Sequence": "3",
            "Nats-Time-Stamp": "2026-11-30T11:53:47.571444178Z",
            "Nats-Num-Pending": "1",
            "Nats-Last-Sequence": "1",
        },
    ),
    "edge_d_e": Recorded(
        "_INBOX.85s4kWD3Ako5rKiA0t67sE",
        headers={
            "Nats-Stream": "KV_deps",
            "Nats-Subject": "$KV.deps.d.e",
            "Nats-Sequence": "4",
            "Nats-Time-Stamp": "2026-11-30T11:53:47.571811064Z",
            "Nats-Num-Pending": "0",
            "Nats-Last-Sequence": "3",
        },
        data=b"1",
    ),
}

# ADR-15's longer ack subjects (domain and account hash first, then an optional random token).
_V2_ACK = "$JS.ACK.hub.ACCHASH.NAQ_JOBS.naq_q.3.17.9.1796039625054552396.0"


# -- a delivery's count and job id -------------------------------------------------------------


@pytest.mark.parametrize(
    ("reply", "delivered", "sequence"),
    [
        (RECORDED["job"].reply, 1, 1),
        (RECORDED["bare"].reply, 1, 2),
        (RECORDED["redelivered"].reply, 2, 1),
        (_V2_ACK, 3, 17),  # 11 tokens
        (_V2_ACK + ".r4nd0m", 3, 17),  # 12 tokens
        ("$JS.ACK._.ACCHASH.NAQ_JOBS.naq_q.5.8.9.1796039625054552396.0.r4nd0m", 5, 8),
    ],
)
def test_delivery_count_and_sequence_from_the_ack_subject(reply, delivered, sequence):
    recorded = RECORDED["job"]._replace(reply=reply)
    for msg in (recorded.msg(), recorded.wire_msg()):
        assert _delivery_count(msg) == delivered
        assert stream_sequence(msg) == sequence
    nats_py = recorded.msg().metadata  # nats-py's full parser agrees
    assert (nats_py.num_delivered, nats_py.sequence.stream) == (delivered, sequence)


@pytest.mark.parametrize(
    ("recorded", "job_id"),
    [
        (RECORDED["job"], "job1"),  # naq.jobs.<queue>.<job id>
        (RECORDED["bare"], "job2"),  # naq.jobs.<queue>: from Nats-Msg-Id
        (RECORDED["bare"]._replace(headers=None), ""),  # neither: a foreign producer's
        (RECORDED["bare"]._replace(headers={"Other": "x"}), ""),
    ],
)
def test_job_id_from_the_subject_else_the_msg_id_header(recorded, job_id):
    assert _job_id_of(recorded.msg()) == job_id
    assert _job_id_of(recorded.wire_msg()) == job_id


# -- publish acks --------------------------------------------------------------------------


def test_ack_parsing():
    assert _refusal(RECORDED["stored"].msg()) is None
    assert _refusal(RECORDED["duplicate"].msg()) is None  # same id again: already stored
    refused = _refusal(RECORDED["wrong_sequence"].msg())
    assert isinstance(refused, PublishError)
    assert str(refused) == "wrong last sequence: 0"
    no_stream = _refusal(RECORDED["no_stream"].msg())
    assert isinstance(no_stream, PublishError)
    assert str(no_stream) == "no stream accepted the message (status 503)"
    # The quick check for '"error"' can match a plain ack; parsing then finds no error.
    assert _refusal(Recorded("x", data=b'{"stream":"error","seq":5}').msg()) is None


@pytest.fixture
async def nc(nats_url: str) -> AsyncIterator[NatsClient]:
    conn = await nats.connect(nats_url)
    try:
        yield conn
    finally:
        await conn.close()


@pytest.fixture
async def stream(nc: NatsClient) -> AsyncIterator[str]:
    """A stream of this test's own, on the subjects ``<its name>.>``, direct get on."""
    name = f"PROTO_{uuid.uuid4().hex[:10]}"
    js = nc.jetstream()
    await js.add_stream(
        api.StreamConfig(
            name=name, subjects=[f"{name}.>"], allow_direct=True, duplicate_window=120.0
        )
    )
    try:
        yield name
    finally:
        await js.delete_stream(name)


async def _publisher(nc: NatsClient) -> AckedPublisher:
    publisher = AckedPublisher(nc)
    await publisher.start()
    return publisher


async def test_publish_all_gives_each_message_its_outcome(nc, stream):
    publisher = await _publisher(nc)
    too_large = b"x" * (nc.max_payload + 1)
    messages = [
        OutgoingMessage(f"{stream}.a", b"1", {"Nats-Msg-Id": "a"}),
        OutgoingMessage(f"{stream}.b", too_large),  # refused by the client, not sent
        OutgoingMessage(f"{stream}.a", b"1", {"Nats-Msg-Id": "a"}),  # a duplicate: stored
        OutgoingMessage(f"{stream}.c", b"1", {"Nats-Expected-Last-Subject-Sequence": "7"}),
        OutgoingMessage(f"nostream{stream}.x", b"1"),  # no stream takes it: 503
        OutgoingMessage(f"{stream}.d", b"1"),
    ]
    outcomes = await publisher.publish_all(messages, timeout=10)
    assert outcomes[0] is None
    assert isinstance(outcomes[1], nats.errors.MaxPayloadError)
    assert outcomes[2] is None
    assert isinstance(outcomes[3], PublishError)
    assert str(outcomes[3]) == "wrong last sequence: 0"
    assert isinstance(outcomes[4], PublishError)
    assert "status 503" in str(outcomes[4])
    assert outcomes[5] is None
    info = await nc.jetstream().stream_info(stream)
    assert info.state.messages == 2  # a and d
    assert publisher._pending == {}


async def test_an_unconfirmed_publish_times_out_and_a_late_ack_is_dropped(nc, stream):
    """A subject that only a plain subscriber hears: no ack ever comes by itself."""
    silent = f"silent.{uuid.uuid4().hex}"
    heard = await nc.subscribe(silent)
    publisher = await _publisher(nc)
    with anyio.fail_after(5):
        outcomes = await publisher.publish_all([OutgoingMessage(silent, b"1")], timeout=0.2)
    [unconfirmed] = outcomes
    assert isinstance(unconfirmed, TimeoutError)
    assert str(unconfirmed) == "no ack from JetStream within 0.2 s"
    assert publisher._pending == {}
    request = await heard.next_msg(timeout=5)
    await nc.publish(request.reply, RECORDED["stored"].data)  # the ack, too late: dropped
    await nc.flush()
    # The publisher goes on: the late ack arrives before this one's (one connection, in order).
    assert await publisher.publish_all([OutgoingMessage(f"{stream}.a", b"1")], 5) == [None]
    assert publisher._pending == {}


async def test_a_cancelled_group_leaves_nothing_waiting(nc):
    silent = f"silent.{uuid.uuid4().hex}"
    heard = await nc.subscribe(silent)
    publisher = await _publisher(nc)
    waiting = asyncio.ensure_future(
        publisher.publish_all([OutgoingMessage(silent, b"1"), OutgoingMessage(silent, b"2")])
    )
    await heard.next_msg(timeout=5)
    await heard.next_msg(timeout=5)  # both sent: the group waits for acks that never come
    assert len(publisher._pending) == 2
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert publisher._pending == {}


# -- the pull consumer -----------------------------------------------------------------------


class PlayedServer:
    """The consumer's end of JetStream, played by the test: it hears the pull requests and
    answers with recorded messages, handed to the consumer's message callback."""

    def __init__(self, nc: NatsClient, consumer: PullConsumer, requests: Any) -> None:
        self.nc = nc
        self.consumer = consumer
        self._requests = requests

    async def next_request(self, timeout: float = 5) -> tuple[dict[str, Any], str]:
        request = await self._requests.next_msg(timeout=timeout)
        return json.loads(request.data), request.reply

    async def send(self, *names: str) -> None:
        for name in names:
            await self.consumer._on_message(RECORDED[name].msg())


async def _waiting(fetch: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
    """``fetch`` started, and run until it waits (it reaches its wait without yielding
    when it opens no request; a test that expects a request waits for it instead)."""
    task = asyncio.ensure_future(fetch)
    await asyncio.sleep(0)
    return task


@pytest.fixture
async def played(nc: NatsClient) -> AsyncIterator[PlayedServer]:
    stream, durable = f"PLAYED_{uuid.uuid4().hex[:10]}", "naq_q"  # no such stream: ours alone
    requests = await nc.subscribe(f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{durable}")
    consumer = PullConsumer(nc, stream, durable)
    await consumer.start()
    yield PlayedServer(nc, consumer, requests)
    await consumer.close()


async def test_messages_count_down_what_the_request_owes(played):
    consumer = played.consumer
    fetching = asyncio.ensure_future(consumer.fetch(3, timeout=5))
    request, reply = await played.next_request()
    assert request == {"batch": 3, "expires": 5_000_000_000}
    assert reply == consumer._inbox
    await played.send("job")
    msgs, owed = await fetching
    assert [m.reply for m in msgs] == [RECORDED["job"].reply]
    assert owed == 2  # the worker keeps two slots for this request

    fetching = await _waiting(consumer.fetch(2, timeout=5))  # on the open request: 2 owed
    await played.send("heartbeat")  # an idle heartbeat neither delivers nor ends anything
    await played.send("bare")
    msgs, owed = await fetching
    assert [m.reply for m in msgs] == [RECORDED["bare"].reply]
    assert owed == 1
    with pytest.raises(nats.errors.TimeoutError):
        await played.next_request(timeout=0.05)  # still the first request

    fetching = await _waiting(consumer.fetch(1, timeout=5))  # 1 owed: no new request
    await played.send("expired")  # 408: the request is over, nothing more is owed
    with anyio.fail_after(1):  # at once, not at its expiry
        assert await fetching == ([], 0)

    fetching = asyncio.ensure_future(consumer.fetch(4, timeout=2))  # so a new one opens
    assert (await played.next_request())[0] == {"batch": 4, "expires": 2_000_000_000}
    await played.send("job", "redelivered")
    msgs, owed = await fetching
    assert [m.reply for m in msgs] == [RECORDED["job"].reply, RECORDED["redelivered"].reply]
    assert owed == 2


@pytest.mark.parametrize("status", ["expired", "max_waiting", "no_consumer"])
async def test_an_end_status_ends_the_request(played, status):
    fetching = asyncio.ensure_future(played.consumer.fetch(5, timeout=30))
    await played.next_request()
    await played.send(status)
    with anyio.fail_after(5):  # at once, not at the request's expiry
        assert await fetching == ([], 0)


async def test_buffered_messages_are_handed_out_before_a_new_request(played):
    consumer = played.consumer
    fetching = asyncio.ensure_future(consumer.fetch(3, timeout=5))
    await played.next_request()
    await played.send("job", "bare")  # both before the fetch wakes: it takes both
    msgs, owed = await fetching
    assert ([m.reply for m in msgs], owed) == ([RECORDED["job"].reply, RECORDED["bare"].reply], 1)

    await played.send("redelivered", "expired")  # while nobody fetches
    msgs, owed = await consumer.fetch(1, timeout=5)  # from the buffer, asking nothing
    assert ([m.reply for m in msgs], owed) == ([RECORDED["redelivered"].reply], 0)
    with pytest.raises(nats.errors.TimeoutError):
        await played.next_request(timeout=0.05)

    fetching = asyncio.ensure_future(consumer.fetch(1, timeout=5))  # empty: a new request
    assert (await played.next_request())[0] == {"batch": 1, "expires": 5_000_000_000}
    await played.send("job")
    msgs, owed = await fetching
    assert ([m.reply for m in msgs], owed) == ([RECORDED["job"].reply], 0)


async def test_a_request_whose_end_never_comes_is_given_up(played, monkeypatch):
    """Its expiry plus the grace passes with no end status (lost to a reconnect)."""
    monkeypatch.setattr(_pull, "_GRACE", 0.05)
    consumer = played.consumer
    with anyio.fail_after(5):
        assert await consumer.fetch(2, timeout=0.1) == ([], 0)  # waited, then gave up
    assert (await played.next_request())[0]["batch"] == 2
    fetching = asyncio.ensure_future(consumer.fetch(2, timeout=0.1))
    assert (await played.next_request())[0]["batch"] == 2  # so the next fetch asks again
    await fetching


async def test_owed_messages_are_forgotten_once_the_request_is_past_its_end(played, monkeypatch):
    """A fetch returned a message with more owed; the request's end status never came."""
    monkeypatch.setattr(_pull, "_GRACE", 0.05)
    consumer = played.consumer
    fetching = asyncio.ensure_future(consumer.fetch(3, timeout=0.1))
    await played.next_request()
    await played.send("job")
    assert (await fetching)[1] == 2
    await asyncio.sleep(consumer._request_ends - time.monotonic() + 0.01)  # past its end
    fetching = asyncio.ensure_future(consumer.fetch(1, timeout=5))
    assert (await played.next_request())[0]["batch"] == 1  # not owed any more: asks again
    await played.send("expired")
    assert await fetching == ([], 0)


async def test_close_returns_what_was_delivered_but_not_fetched(played):
    consumer = played.consumer
    fetching = asyncio.ensure_future(consumer.fetch(3, timeout=5))
    await played.next_request()
    await played.send("job")
    await fetching
    await played.send("bare")  # arrives while nobody fetches (1 was still owed)
    assert [m.reply for m in await consumer.close()] == [RECORDED["bare"].reply]
    assert consumer._sub is None


async def test_a_real_consumer(nc, stream):
    """The same rhythm with the server's own consumer: every message once, then a 408."""
    js = nc.jetstream()
    await js.add_consumer(
        stream, api.ConsumerConfig(durable_name="naq_q", ack_policy=api.AckPolicy.EXPLICIT)
    )
    for i in range(3):
        await js.publish(f"{stream}.q.j{i}", b"{}", headers={"Nats-Msg-Id": f"j{i}"})
    consumer = PullConsumer(nc, stream, "naq_q")
    await consumer.start()
    got: list[Msg] = []
    owed = [5]
    with anyio.fail_after(10):
        msgs, left = await consumer.fetch(5, timeout=0.5)
        while msgs:
            got += msgs
            owed.append(left)
            msgs, left = await consumer.fetch(5, timeout=0.5)
    assert [_job_id_of(m) for m in got] == ["j0", "j1", "j2"]
    assert [_delivery_count(m) for m in got] == [1, 1, 1]
    assert owed[-1] == 5 - len(got)  # what was still owed before the 408 ended it
    assert left == 0
    await consumer.close()


# -- batched direct gets ----------------------------------------------------------------------


def test_dependency_edges_from_recorded_direct_gets():
    msgs = [RECORDED[n].msg() for n in ("edge_a_b", "edge_a_c_deleted", "edge_d_e")]
    assert dependency_edges(msgs) == {"a": ["b"], "d": ["e"]}  # a deleted edge is no edge
    wire = [RECORDED[n].wire_msg() for n in ("edge_a_b", "edge_a_c_deleted", "edge_d_e")]
    assert dependency_edges(wire) == {"a": ["b"], "d": ["e"]}


def test_multi_last_requests_take_100_subjects_each():
    subjects = [f"s.{i}" for i in range(250)]
    requests = [json.loads(r) for r in multi_last_requests(subjects)]
    assert [r["multi_last"] for r in requests] == [
        subjects[:100],
        subjects[100:200],
        subjects[200:],
    ]
    assert {r["batch"] for r in requests} == {10_000}
    assert multi_last_requests([]) == []


async def test_batched_direct_gets_on_a_real_stream(nats_url, nc, stream):
    """250 keys (three requests sent together), one deleted, and a request matching nothing:
    each request's end status (204, or 404 for nothing) is counted, none waited out."""
    js = nc.jetstream()
    for i in range(250):
        await js.publish(f"{stream}.k{i}.v", b"old")
        await js.publish(f"{stream}.k{i}.v", f"{i}".encode())
    await js.publish(f"{stream}.k7.v", b"", headers={"KV-Operation": "DEL"})
    transport = NatsTransport(nats_url)
    await transport.connect()
    try:
        with anyio.fail_after(5):
            found = await transport.jetstream.direct_get_many(
                stream, [f"{stream}.k{i}.*" for i in range(250)]
            )
            nothing = await transport.jetstream.direct_get_many(
                stream, [f"{stream}.none{i}.*" for i in range(150)]
            )
            mixed = await transport.jetstream.direct_get_many(
                stream, [f"{stream}.none{i}.*" for i in range(100)] + [f"{stream}.k3.*"]
            )
    finally:
        await transport.close()
    values = {(m.headers or {})["Nats-Subject"]: m.data for m in found}
    assert len(found) == len(values) == 250  # the last message of each subject, once
    assert values[f"{stream}.k7.v"] == b""  # the delete marker is the last message
    assert all(values[f"{stream}.k{i}.v"] == f"{i}".encode() for i in range(250) if i != 7)
    assert nothing == []
    assert [m.data for m in mixed] == [b"3"]


async def test_messages_are_counted_by_the_stream_right_after_their_acks(nats_url, nc, stream):
    """The count is the store's own, so it holds the instant the publishes are acked (a
    consumer's num_pending is updated asynchronously and can lag); no match counts 0."""
    js = nc.jetstream()
    transport = NatsTransport(nats_url)
    await transport.connect()
    try:
        for round_ in range(20):
            acks = [await js.publish_async(f"{stream}.q{round_}.{i}", b"x") for i in range(51)]
            await asyncio.gather(*acks)
            await js.publish(f"{stream}.q{round_}", b"bare")
            with anyio.fail_after(5):
                counted = await transport.jetstream.count_messages(
                    stream, [f"{stream}.q{round_}", f"{stream}.q{round_}.*"]
                )
            assert counted == 52
        with anyio.fail_after(5):
            assert await transport.jetstream.count_messages(stream, [f"{stream}.none.*"]) == 0
            assert await transport.jetstream.count_messages(stream, []) == 0
    finally:
        await transport.close()


async def test_latest_per_subject_reads_every_subject_once_at_its_newest(nats_url, nc, stream):
    """2,500 subjects (three fetches of at most 1,000), each written twice: every subject
    comes back once with its last message, and the reader's consumer is deleted after."""
    js = nc.jetstream()
    for version in (b"old", b"new"):
        acks = [await js.publish_async(f"{stream}.k{i}", version) for i in range(2500)]
        await asyncio.gather(*acks)
    transport = NatsTransport(nats_url)
    await transport.connect()
    try:
        with anyio.fail_after(20):
            msgs = await transport.jetstream.latest_per_subject(stream, f"{stream}.*")
            nothing = await transport.jetstream.latest_per_subject(stream, f"{stream}.none.*")
    finally:
        await transport.close()
    assert sorted(m.subject for m in msgs) == sorted(f"{stream}.k{i}" for i in range(2500))
    assert {m.data for m in msgs} == {b"new"}
    assert nothing == []
    assert (await js.stream_info(stream)).state.consumer_count == 0


async def test_read_since_reads_every_message_stored_from_a_time_on(nats_url, nc, stream):
    """300 messages, then 1,200 (two fetches): reading from the time the server stored the
    first of the later ones gives exactly those, in order; from a time to come, nothing;
    the reader's consumers are deleted after."""
    js = nc.jetstream()
    await asyncio.gather(
        *[await js.publish_async(f"{stream}.w{i % 7}", b"old") for i in range(300)]
    )
    later = [await js.publish_async(f"{stream}.w{i % 7}", str(i).encode()) for i in range(1200)]
    acks = await asyncio.gather(*later)
    since = (await js.get_msg(stream, acks[0].seq)).time
    assert since is not None
    transport = NatsTransport(nats_url)
    await transport.connect()
    try:
        with anyio.fail_after(20):
            msgs = await transport.jetstream.read_since(stream, f"{stream}.*", since)
            future = since + timedelta(hours=1)
            nothing = await transport.jetstream.read_since(stream, f"{stream}.*", future)
            one = await transport.jetstream.read_since(stream, f"{stream}.w3", since)
    finally:
        await transport.close()
    assert [m.data for m in msgs] == [str(i).encode() for i in range(1200)]
    assert nothing == []
    assert [m.data for m in one] == [str(i).encode() for i in range(1200) if i % 7 == 3]
    assert (await js.stream_info(stream)).state.consumer_count == 0


async def test_ensure_stream_raises_a_default_consumer_limit_and_keeps_an_operators(nc):
    """nats-server 2.15 lets a stream left at ``max_consumers`` -1 take 1,000 consumers: 200
    queues of five lanes. The jobs stream asks for more, also of a stream made before."""
    jetstream = JetStream(replicas=1)
    await jetstream.attach(nc, timeout=10)
    js = nc.jetstream()
    older, operators = (f"PROTO_{uuid.uuid4().hex[:10]}" for _ in range(2))
    await js.add_stream(api.StreamConfig(name=older, subjects=[f"{older}.>"]))
    await js.add_stream(
        api.StreamConfig(name=operators, subjects=[f"{operators}.>"], max_consumers=50)
    )
    try:
        assert (await js.stream_info(older)).config.max_consumers == -1
        for name in (older, operators):
            await jetstream.ensure_stream(
                api.StreamConfig(
                    name=name, subjects=[f"{name}.>"], max_consumers=JOBS_MAX_CONSUMERS
                )
            )
        assert (await js.stream_info(older)).config.max_consumers == JOBS_MAX_CONSUMERS
        assert (await js.stream_info(operators)).config.max_consumers == 50
        assert jobs_stream(1).max_consumers == JOBS_MAX_CONSUMERS >= 5 * 10_000
    finally:
        for name in (older, operators):
            await js.delete_stream(name)
