"""Settling a batch of finished jobs, the same on both clients: dead letters, records, acks.

The order is the at-least-once guarantee: dead letters are stored before any record of the
batch, records before any ack, and an item whose writes failed is not acknowledged.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence

import nats.errors

from .._errors import NaqConnectionError
from ._codes import SERVICE_UNAVAILABLE
from ._deliveries import Delivery, Settlement
from ._names import dead_subject, record_subject
from ._publisher import OutgoingMessage, PublishError
from ._wire_protocol import ConnectionClosedError, JetStreamAPIError, NoRespondersError

__all__ = [
    "Answer",
    "PublishAll",
    "dead_letter_messages",
    "record_messages",
    "settle_and_find_dependents",
    "settle_with",
    "transient_settle_error",
]


PublishAll = Callable[[Sequence[OutgoingMessage]], Awaitable[list[BaseException | None]]]
"""Publish messages to streams together: None or the error, for each."""
Answer = Callable[[Delivery, "float | None"], Awaitable[None]]
"""Ack a delivery (``nak_delay`` None), or nak it for redelivery after ``nak_delay`` s."""


async def settle_with(
    settlements: Sequence[Settlement], publish_all: PublishAll, answer: Answer
) -> list[BaseException | None]:
    """Store dead letters, then records, then ack or nak messages; one error slot each.

    Dead letters are confirmed before any record of the batch is written, so whoever
    sees a job's final record also finds its dead letter. An item whose dead letter or
    record could not be stored is not acknowledged: the server delivers it again.
    """
    errors: list[BaseException | None] = [None] * len(settlements)
    for messages in (dead_letter_messages, record_messages):
        indexes, outgoing = messages(settlements, errors)
        if outgoing:
            for i, error in zip(indexes, await publish_all(outgoing), strict=True):
                errors[i] = error
    for item, error in zip(settlements, errors, strict=True):
        if error is None and item.delivery is not None:
            await answer(item.delivery, item.nak_delay)
    return errors


async def settle_and_find_dependents(
    settle: Callable[[Sequence[Settlement]], Awaitable[list[BaseException | None]]],
    dependents_of: Callable[[Sequence[str]], Awaitable[dict[str, list[str]]]],
    settlements: Sequence[Settlement],
    ended_ids: Sequence[str],
) -> tuple[list[BaseException | None], dict[str, list[str]] | BaseException]:
    """``settle``, then the dependents of the ended jobs whose outcome was stored.

    A failed lookup is returned, not raised: the outcomes are stored and acked whatever it says.
    """
    errors = await settle(settlements)
    unsaved = {item.job_id for item, error in zip(settlements, errors, strict=True) if error}
    stored = [job_id for job_id in ended_ids if job_id not in unsaved]
    try:
        edges = await dependents_of(stored) if stored else {}
    except Exception as exc:  # noqa: BLE001 - returned to the caller, which logs it
        return errors, exc
    return errors, edges


def transient_settle_error(error: BaseException) -> bool:
    """Whether storing an outcome may succeed if tried again soon: no answer in time, no
    stream answering (status 503: a stream electing its leader, a server restarting), the
    connection lost. A refusal carrying JetStream's error number is not: it would refuse again.
    """
    if isinstance(error, PublishError):
        return error.code is None  # "no stream accepted the message"
    if isinstance(error, JetStreamAPIError):
        return error.code == SERVICE_UNAVAILABLE
    return isinstance(
        error,
        (
            TimeoutError,
            NaqConnectionError,
            NoRespondersError,
            ConnectionClosedError,
            nats.errors.NoRespondersError,
            nats.errors.ConnectionClosedError,
            nats.errors.TimeoutError,
            nats.errors.ConnectionReconnectingError,
            OSError,
        ),
    )


def dead_letter_messages(
    settlements: Sequence[Settlement], errors: Sequence[BaseException | None]
) -> tuple[list[int], list[OutgoingMessage]]:
    """The dead letters a batch stores first: each one's index in the batch, and the letter.

    A letter keeps the job message as it was delivered, with why and after how many runs.
    """
    indexes: list[int] = []
    letters: list[OutgoingMessage] = []
    for i, item in enumerate(settlements):
        delivery, reason = item.delivery, item.dead_reason
        if reason is not None and delivery is not None and errors[i] is None:
            indexes.append(i)
            letters.append(
                OutgoingMessage(
                    dead_subject(item.queue, item.job_id),
                    delivery.data,
                    _dead_letter_headers(item, reason),
                )
            )
    return indexes, letters


def record_messages(
    settlements: Sequence[Settlement], errors: Sequence[BaseException | None]
) -> tuple[list[int], list[OutgoingMessage]]:
    """The record writes of a batch whose dead letter (if any) was stored: index, message."""
    indexes: list[int] = []
    records: list[OutgoingMessage] = []
    for i, item in enumerate(settlements):
        if item.record is not None and errors[i] is None:
            headers = {"Naq-Event": item.event} if item.event else {}
            if item.record_ttl:
                headers["Nats-TTL"] = str(int(item.record_ttl))
            indexes.append(i)
            records.append(
                OutgoingMessage(
                    record_subject(item.queue, item.job_id), item.record, headers or None
                )
            )
    return indexes, records


def _dead_letter_headers(item: Settlement, reason: str) -> dict[str, str]:
    """Why the job ended in the dead-letter stream, and after how many runs.

    The letter keeps the message as it was enqueued (attempts 0); the count comes from
    the record stored with it. Dead letters are rare, so parsing that record here is cheap.
    """
    headers = {"Naq-Reason": reason, "Naq-Job-Id": item.job_id}
    if item.record is not None:
        try:
            attempts = json.loads(item.record).get("attempts", 0)
        except ValueError:
            attempts = None
        if type(attempts) is int:
            headers["Naq-Attempts"] = str(attempts)
    return headers
