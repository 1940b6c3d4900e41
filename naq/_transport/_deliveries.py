"""The job messages the worker exchanges with either client: fetched, to enqueue, to settle.

Shared by nats-py's side (``_nats``) and the wire client's (``_native``, ``_native_worker``),
so both read a delivery the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, NamedTuple

import attrs
from nats.aio.msg import Msg

from .._errors import SerializationError

if TYPE_CHECKING:
    from ._wire_protocol import Msg as WireMsg

__all__ = [
    "RECORD_HEADROOM",
    "Delivery",
    "OutgoingJob",
    "Settlement",
    "as_delivery",
    "delivery_headers",
    "message_headers",
    "record_too_large",
    "stream_sequence",
]

RECORD_HEADROOM = 2048
"""Bytes of ``max_payload`` a queued job leaves for what a worker adds to its record (status,
times, history, worker id) and for message headers."""


@attrs.define(eq=False)
class Delivery:
    """One fetched job message. ``handle`` is the message object of the client that fetched
    it (nats-py's, or the wire client's on Trio), opaque outside ``naq/_transport/``."""

    handle: Msg | WireMsg
    data: bytes
    num_delivered: int
    job_id: str


def record_too_large(job: OutgoingJob, max_payload: int) -> SerializationError | None:
    """The error for a job too large to ever run to an outcome (no room for the worker's
    additions within the server's ``max_payload``), or None when it fits."""
    limit = max_payload - RECORD_HEADROOM
    if len(job.record) <= limit:
        return None
    return SerializationError(
        f"job {job.job_id} is {len(job.record)} bytes encoded; the server's "
        f"max_payload of {max_payload} bytes allows {limit} (it keeps "
        f"{RECORD_HEADROOM} for the worker's additions); pass large data by reference"
    )


class OutgoingJob(NamedTuple):
    """A job to enqueue. ``dedupe`` (for ids the caller chose) makes JetStream drop a second
    publish of the same id within its duplicate window; generated ids are unique already,
    and skipping the check makes an enqueue a quarter cheaper for the server and client."""

    lane: str
    """Where it waits: its queue, or the queue's lane of its priority (``names.lane``)."""
    job_id: str
    record: bytes
    dedupe: bool
    headers: Mapping[str, str] | None = None
    """Message headers to send with it (a trace context), besides ``Nats-Msg-Id``."""


def message_headers(job: OutgoingJob) -> dict[str, str] | None:
    """The headers of a job's message: ``job.headers``, plus ``Nats-Msg-Id`` when deduped."""
    if job.headers is None:
        return {"Nats-Msg-Id": job.job_id} if job.dedupe else None
    headers = dict(job.headers)
    if job.dedupe:
        headers["Nats-Msg-Id"] = job.job_id
    return headers or None


def delivery_headers(delivery: Delivery) -> Mapping[str, str] | None:
    """A fetched job message's headers (parsed now on the wire client: ask only if needed)."""
    return delivery.handle.headers


@attrs.define
class Settlement:
    """What to do with a job after it ran: store its record, then ack or nak its message.

    The record is stored first and the message is acked only once that store is confirmed,
    so an outcome is never lost (at-least-once). ``delivery=None`` is a record write alone
    (the "started" update). ``dead_reason`` also copies the message to the dead-letter stream.
    """

    job_id: str
    record: bytes | None
    delivery: Delivery | None = None
    record_ttl: float | None = None
    nak_delay: float | None = None
    dead_reason: str | None = None
    queue: str = ""
    event: str | None = None


def _delivery_count(msg: Msg | WireMsg) -> int:
    """How often this message was delivered, read from its ack subject.

    ``$JS.ACK.<stream>.<consumer>.<delivered>.…`` (9 tokens), or the 12-token form with
    domain and account hash; nats-py's ``metadata`` parses all of it, which costs more.
    """
    tokens = msg.reply.split(".")
    return int(tokens[4] if len(tokens) == 9 else tokens[6])


def as_delivery(msg: Msg | WireMsg) -> Delivery:
    """A fetched job message, of either client, as the worker sees it."""
    return Delivery(msg, msg.data, _delivery_count(msg), _job_id_of(msg))


def stream_sequence(msg: Msg | WireMsg) -> int:
    """The message's sequence in its stream, read from its ack subject (see _delivery_count)."""
    tokens = msg.reply.split(".")
    return int(tokens[5] if len(tokens) == 9 else tokens[7])


def _job_id_of(msg: Msg | WireMsg) -> str:
    """The job id a message names: its subject's last token, else its Nats-Msg-Id."""
    tokens = msg.subject.split(".")
    if len(tokens) == 4:
        return tokens[3]
    return (msg.headers or {}).get("Nats-Msg-Id", "")
