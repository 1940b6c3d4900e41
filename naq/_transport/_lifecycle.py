"""NATS operations for a job's life beyond the hot path: cancel, dependencies, events, dead letters.

A mixin of :class:`NatsTransport`; these calls are rare, so each may take a round trip or two.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import attrs
import nats.js.errors
from nats.aio.msg import Msg

from .._errors import NaqConnectionError
from ._names import (
    DEAD_STREAM,
    DEPS_BUCKET_STREAM,
    JOBS_BUCKET_STREAM,
    JOBS_STREAM,
    any_record_subject,
    cancel_subject,
    dead_subject,
    dependency_subject,
    purged_subject,
    queued_job_subject,
    record_subject,
)

if TYPE_CHECKING:
    from nats.aio.client import Client as NatsClient

    from ._wire_protocol import Msg as WireMsg

__all__ = [
    "DeadLetter",
    "LifecycleMixin",
    "RawEvent",
    "StoredMessage",
    "dependency_edges",
    "multi_last_requests",
]

_WRONG_LAST_SEQUENCE = 10071
_MESSAGE_GONE = frozenset({10043, 10057})
"""JetStream's "sequence not found" and "no message found": deleted, or acked meanwhile."""


@attrs.frozen
class StoredMessage:
    """A message read back from a stream, with where it is stored."""

    data: bytes
    sequence: int
    subject: str


@attrs.frozen
class RawEvent:
    """A record write or a queued job message seen by an event subscription."""

    subject: str
    event: str | None
    data: bytes


@attrs.frozen
class DeadLetter:
    """A message kept in the dead-letter stream, with the reason it ended there."""

    sequence: int
    queue: str
    job_id: str
    reason: str
    data: bytes
    time: datetime | None
    attempts: int | None = None
    """The runs the job had (``Naq-Attempts``); None for letters stored before naq wrote it."""


def _attempts(headers: dict[str, str]) -> int | None:
    value = headers.get("Naq-Attempts", "")
    return int(value) if value.isdigit() else None


def _dead_letter(msg: Any) -> DeadLetter:
    headers = msg.headers or {}
    _, _, queue, job_id = msg.subject.split(".")
    return DeadLetter(
        sequence=msg.seq,
        queue=queue,
        job_id=job_id,
        reason=headers.get("Naq-Reason", ""),
        data=msg.data,
        time=msg.time,
        attempts=_attempts(headers),
    )


class LifecycleMixin:
    _nc: NatsClient | None
    _js: Any

    @property
    def nc(self) -> NatsClient:
        """The connected nats-py client; NaqConnectionError before connecting."""
        if self._nc is None:
            raise NaqConnectionError("not connected to NATS: the transport was never opened")
        return self._nc

    async def stored_record(self, job_id: str) -> StoredMessage | None:
        """The job's KV record with its stream sequence (for compare-and-set writes)."""
        return await self._last_message(JOBS_BUCKET_STREAM, any_record_subject(job_id))

    async def queued_message(self, job_id: str) -> StoredMessage | None:
        """The job's message while it waits in its queue."""
        return await self._last_message(JOBS_STREAM, queued_job_subject(job_id))

    async def _last_message(self, stream: str, subject: str) -> StoredMessage | None:
        try:
            msg = await self._js.get_last_msg(stream, subject, direct=True)
        except nats.js.errors.NotFoundError:
            return None
        if not msg.data:
            return None  # a KV delete or purge marker
        return StoredMessage(msg.data, msg.seq, msg.subject)

    async def delete_queued(self, sequence: int) -> bool:
        """Remove a job message from its queue; False if a worker already acked it."""
        return await self._delete(JOBS_STREAM, sequence)

    async def _delete(self, stream: str, sequence: int) -> bool:
        """Delete one stored message; False if it is gone already (acked, or deleted)."""
        try:
            return bool(await self._js.delete_msg(stream, sequence))
        except nats.js.errors.NotFoundError:
            return False
        except nats.js.errors.APIError as exc:
            if exc.err_code in _MESSAGE_GONE:
                return False
            raise

    async def write_record(
        self,
        queue: str,
        job_id: str,
        data: bytes,
        event: str | None,
        ttl: float | None = None,
        expected_sequence: int | None = None,
    ) -> bool:
        """Store a record; with ``expected_sequence``, only if it is still that version."""
        headers = {"Naq-Event": event} if event else {}
        if ttl:
            headers["Nats-TTL"] = str(int(ttl))
        if expected_sequence is not None:
            headers["Nats-Expected-Last-Subject-Sequence"] = str(expected_sequence)
        try:
            await self._js.publish(record_subject(queue, job_id), data, headers=headers)
        except nats.js.errors.BadRequestError as exc:
            if exc.err_code == _WRONG_LAST_SEQUENCE:
                return False
            raise
        return True

    async def notify_cancel(self, job_id: str) -> None:
        """Tell every worker that ``job_id`` was cancelled (they stop it if it runs)."""
        await self.nc.publish(cancel_subject(job_id), b"")
        await self.nc.flush()

    async def notify_purged(self, queue: str, at: str) -> None:
        """Tell listeners (the dashboard's recent jobs) that ``queue`` was purged at ``at``."""
        await self.nc.publish(purged_subject(queue), at.encode())
        await self.nc.flush()

    async def open_cancel_notices(self) -> asyncio.Queue[str]:
        """A queue of cancelled job ids as notices arrive (for a worker)."""
        notices: asyncio.Queue[str] = asyncio.Queue()

        async def on_notice(msg: Msg) -> None:
            notices.put_nowait(msg.subject.rsplit(".", 1)[1])

        await self.nc.subscribe(cancel_subject("*"), cb=on_notice)
        return notices

    async def next_cancel_notices(self, notices: asyncio.Queue[str]) -> list[str]:
        """Wait for at least one notice, then take all that are waiting."""
        ids = [await notices.get()]
        while not notices.empty():
            ids.append(notices.get_nowait())
        return ids

    async def add_dependency(self, dependency_ids: Sequence[str], dependent_id: str) -> None:
        """Remember that ``dependent_id`` waits for each of ``dependency_ids``."""
        for dependency_id in dependency_ids:
            await self._js.publish(dependency_subject(dependency_id, dependent_id), b"1")

    async def dependents_of(self, job_ids: Sequence[str]) -> dict[str, list[str]]:
        """For each job id, the jobs waiting for it (requests for all of them sent at once)."""
        subjects = [dependency_subject(job_id, "*") for job_id in job_ids]
        return dependency_edges(await self._direct_get_many(DEPS_BUCKET_STREAM, subjects))

    async def _direct_get_many(self, stream: str, subjects: list[str]) -> list[Msg]:
        """The last message of each subject (wildcards allowed), in requests of 100 subjects
        sent together on one inbox; each request's answers end with a status message."""
        inbox = self.nc.new_inbox()
        sub = await self.nc.subscribe(inbox)
        try:
            requests = multi_last_requests(subjects)
            for request in requests:
                await self.nc.publish(f"$JS.API.DIRECT.GET.{stream}", request, reply=inbox)
            found = []
            unanswered = len(requests)
            while unanswered:
                msg = await sub.next_msg(timeout=10)
                if (msg.headers or {}).get("Status"):
                    unanswered -= 1  # 204 end of batch, or 404 nothing matched
                else:
                    found.append(msg)
            return found
        finally:
            await sub.unsubscribe()

    async def open_events(self, subjects: Sequence[str]) -> asyncio.Queue[RawEvent]:
        """Subscribe to record writes and queued messages; what arrives is queued."""
        events: asyncio.Queue[RawEvent] = asyncio.Queue()

        async def on_message(msg: Msg) -> None:
            headers = msg.headers or {}
            if msg.data:
                events.put_nowait(RawEvent(msg.subject, headers.get("Naq-Event"), msg.data))

        subs = [await self.nc.subscribe(subject, cb=on_message) for subject in subjects]
        await self.nc.flush()
        events.subscriptions = subs  # type: ignore[attr-defined]
        return events

    async def next_events(
        self, events: asyncio.Queue[RawEvent], timeout: float | None
    ) -> list[RawEvent]:
        """At least one event (or none after ``timeout``), and all others already waiting."""
        try:
            async with asyncio.timeout(timeout):
                batch = [await events.get()]
        except TimeoutError:
            return []
        while not events.empty():
            batch.append(events.get_nowait())
        return batch

    async def close_events(self, events: asyncio.Queue[RawEvent]) -> None:
        for sub in getattr(events, "subscriptions", []):
            await sub.unsubscribe()

    async def dead_letters(self, queue: str | None, limit: int) -> list[DeadLetter]:
        """Dead letters, oldest first, of one queue or all."""
        subject = dead_subject(queue or "*", "*")
        info = await self._js.stream_info(DEAD_STREAM)
        letters: list[DeadLetter] = []
        sequence = info.state.first_seq
        while len(letters) < limit and sequence and sequence <= info.state.last_seq:
            try:
                msg = await self._js.get_msg(
                    DEAD_STREAM, seq=sequence, subject=subject, next=True, direct=True
                )
            except nats.js.errors.NotFoundError:
                break
            letters.append(_dead_letter(msg))
            sequence = msg.seq + 1
        return letters

    async def dead_letter(self, job_id: str) -> DeadLetter | None:
        """The dead letter of one job, if there is one."""
        try:
            msg = await self._js.get_last_msg(DEAD_STREAM, dead_subject("*", job_id), direct=True)
        except nats.js.errors.NotFoundError:
            return None
        return _dead_letter(msg)

    async def delete_dead_letter(self, sequence: int) -> bool:
        """Drop a dead letter; False if it is gone already."""
        return await self._delete(DEAD_STREAM, sequence)


def dependency_edges(msgs: Iterable[Msg | WireMsg]) -> dict[str, list[str]]:
    """dependency id -> the ids of the jobs waiting for it, from the edges' direct gets."""
    found: dict[str, list[str]] = {}
    for msg in msgs:
        if not msg.data:
            continue  # deleted edge
        subject = (msg.headers or {}).get("Nats-Subject", "")
        *_, dependency_id, dependent_id = subject.split(".")
        found.setdefault(dependency_id, []).append(dependent_id)
    return found


def multi_last_requests(subjects: Sequence[str]) -> list[bytes]:
    """Direct-get requests for the last message of each subject, 100 subjects a request.

    Each request's answers (on one reply subject) end with a status message: 204 at the end
    of the batch, 404 when nothing matched.
    """
    return [
        json.dumps({"multi_last": subjects[start : start + 100], "batch": 10_000}).encode()
        for start in range(0, len(subjects), 100)
    ]
