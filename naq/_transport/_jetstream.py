"""naq's connected JetStream, shared by the transport and the stores it owns.

One object holds the nats-py client, its JetStream context and the pipelined publisher, so
the transport, its admin store and its schedules store reach NATS the same way: one way to
provision a stream or a bucket (:meth:`JetStream.ensure_stream`, :meth:`ensure_bucket`), one
way to publish to a stream (:meth:`publish`, the ``AckedPublisher``), one way to read and
delete stored messages. Everything here runs on the transport's asyncio loop.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import attrs
import nats.js.errors
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.js import api

from .._errors import NaqConnectionError
from .._time import as_utc
from ._codes import MESSAGE_GONE, STREAM_EXISTS, WRONG_LAST_SEQUENCE
from ._direct_get import multi_last_requests
from ._names import direct_get_subject
from ._publisher import AckedPublisher, OutgoingMessage, PublishError, Stored

__all__ = ["ACK_TIMEOUT", "JetStream", "StoredMessage", "lost_race"]

ACK_TIMEOUT = 10.0
"""Seconds to wait for JetStream to confirm a publish before counting it as failed."""


@attrs.frozen
class StoredMessage:
    """A message read back from a stream, with where it is stored."""

    data: bytes
    sequence: int
    subject: str


class JetStream:
    """The connection the transport and its stores share; empty until :meth:`attach`."""

    def __init__(self, replicas: int) -> None:
        self.replicas = replicas
        self._nc: NatsClient | None = None
        self.js: Any = None
        """nats-py's JetStream context (its calls are untyped)."""
        self.publisher: AckedPublisher | None = None

    async def attach(self, nc: NatsClient, timeout: float) -> None:
        """Use a connected client: its JetStream context and a started publisher."""
        self._nc = nc
        self.js = nc.jetstream(timeout=timeout)
        publisher = AckedPublisher(nc)
        await publisher.start()
        self.publisher = publisher

    def detach(self) -> None:
        """Forget the client (closed, or inherited through ``fork()``)."""
        self._nc = self.js = self.publisher = None

    @property
    def nc(self) -> NatsClient:
        """The connected nats-py client; NaqConnectionError before connecting."""
        if self._nc is None:
            raise NaqConnectionError("not connected to NATS: the transport was never opened")
        return self._nc

    # -- provisioning -----------------------------------------------------------------------

    async def ensure_stream(self, config: api.StreamConfig) -> None:
        """Create the stream, or turn on in an existing one what ``config`` needs.

        An existing stream keeps its other settings and subjects: what ``config`` adds is
        its missing subjects, direct get and message schedules (neither can be turned off
        by an older naq, so an upgrade never flips them back and forth), and its
        ``max_consumers`` where the stream has the server's default (an operator's own
        limit is kept).
        """
        try:
            await self.js.add_stream(config)
        except nats.js.errors.BadRequestError as exc:
            if exc.err_code != STREAM_EXISTS:
                raise
            current = (await self.js.stream_info(config.name)).config
            subjects = list(current.subjects or [])
            missing = [s for s in config.subjects or [] if s not in subjects]
            direct = bool(current.allow_direct or config.allow_direct)
            schedules = bool(current.allow_msg_schedules or config.allow_msg_schedules)
            consumers = config.max_consumers if (current.max_consumers or -1) < 0 else None
            if (
                missing
                or direct != bool(current.allow_direct)
                or (schedules != bool(current.allow_msg_schedules))
                or consumers is not None
            ):
                changes: dict[str, Any] = {"subjects": subjects + missing, "allow_direct": direct}
                if schedules:
                    changes["allow_msg_schedules"] = True
                if consumers is not None:
                    changes["max_consumers"] = consumers
                await self.js.update_stream(current.evolve(**changes))

    async def ensure_bucket(self, config: api.KeyValueConfig) -> None:
        """Create a KV bucket, or bring an existing one up to date.

        What an existing bucket gains is ``config``'s direct get (naq reads such buckets by
        wildcard subject) and republish; its other settings are kept.
        """
        try:
            await self.js.create_key_value(config)
            return
        except nats.js.errors.BadRequestError as exc:
            if exc.err_code != STREAM_EXISTS:
                raise
        republish = config.republish
        current = (await self.js.stream_info(f"KV_{config.bucket}")).config
        if (config.direct and not current.allow_direct) or (
            republish and current.republish is None
        ):
            await self.js.update_stream(
                current.evolve(
                    allow_direct=bool(current.allow_direct or config.direct),
                    republish=republish or current.republish,
                )
            )

    async def open_bucket(self, config: api.KeyValueConfig) -> Any:
        """nats-py's KeyValue of a bucket, provisioned first by :meth:`ensure_bucket`."""
        await self.ensure_bucket(config)
        return await self.js.key_value(config.bucket)

    # -- publishing -------------------------------------------------------------------------

    async def publish(
        self, messages: Sequence[OutgoingMessage], timeout: float = ACK_TIMEOUT
    ) -> list[Stored | BaseException]:
        """Publish to streams, pipelined: where each was stored, or why it was not."""
        publisher = self.publisher
        if publisher is None:
            raise NaqConnectionError("not connected to NATS: the transport was never opened")
        return await publisher.publish_stored(messages, timeout)

    async def publish_one(self, message: OutgoingMessage) -> Stored:
        """Publish one message to a stream; raises what refused it (e.g. PublishError)."""
        (outcome,) = await self.publish([message])
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    async def compare_and_set(self, message: OutgoingMessage, expected: int) -> int | None:
        """Publish if the subject's last sequence is still ``expected`` (0: it has none).

        Returns the new sequence, or None when another writer got there first.
        """
        headers = {**(message.headers or {}), "Nats-Expected-Last-Subject-Sequence": str(expected)}
        try:
            stored = await self.publish_one(message._replace(headers=headers))
        except PublishError as exc:
            if lost_race(exc):
                return None
            raise
        return stored.seq

    # -- stored messages --------------------------------------------------------------------

    async def last_message(self, stream: str, subject: str) -> StoredMessage | None:
        """The last message on ``subject`` (a wildcard too), or None; a KV marker is None."""
        try:
            msg = await self.js.get_last_msg(stream, subject, direct=True)
        except nats.js.errors.NotFoundError:
            return None
        if not msg.data:
            return None  # a KV delete or purge marker
        return StoredMessage(msg.data, msg.seq, msg.subject)

    async def delete_message(self, stream: str, sequence: int) -> bool:
        """Delete one stored message; False if it is gone already (acked, or deleted)."""
        try:
            return bool(await self.js.delete_msg(stream, sequence))
        except nats.js.errors.NotFoundError:
            return False
        except nats.js.errors.APIError as exc:
            if exc.err_code in MESSAGE_GONE:
                return False
            raise

    async def direct_get(self, stream: str, requests: Sequence[bytes]) -> list[Msg]:
        """The messages batch direct-get ``requests`` answer, sent together on one inbox.

        Each request's answers end with a status message (204 at the end of the batch, 404
        when nothing matched), which is read and not returned.
        """
        nc = self.nc
        inbox = nc.new_inbox()
        sub = await nc.subscribe(inbox)
        try:
            for request in requests:
                await nc.publish(direct_get_subject(stream), request, reply=inbox)
            found = []
            unanswered = len(requests)
            while unanswered:
                msg = await sub.next_msg(timeout=10)
                if (msg.headers or {}).get("Status"):
                    unanswered -= 1
                else:
                    found.append(msg)
            return found
        finally:
            await sub.unsubscribe()

    async def direct_get_many(self, stream: str, subjects: list[str]) -> list[Msg]:
        """The last message of each subject (wildcards allowed), 100 subjects a request."""
        return await self.direct_get(stream, multi_last_requests(subjects))

    async def count_messages(self, stream: str, subjects: Sequence[str]) -> int:
        """Messages stored on these subjects (wildcards allowed), counted by the stream itself.

        A batch direct get of one message answers with ``Nats-Num-Pending``, the matching
        messages after it, read from the store when the request is served. A consumer's
        ``num_pending`` would lag: the server tells consumers of new messages asynchronously.
        """
        requests = [json.dumps({"next_by_subj": s, "batch": 1}).encode() for s in subjects]
        firsts = await self.direct_get(stream, requests)
        return sum(1 + int((msg.headers or {}).get("Nats-Num-Pending", 0)) for msg in firsts)

    async def latest_per_subject(self, stream: str, subject: str) -> list[Msg]:
        """The last message of every subject matching ``subject``, in stream order."""
        return await self._read_all(
            stream, subject, api.ConsumerConfig(deliver_policy=api.DeliverPolicy.LAST_PER_SUBJECT)
        )

    async def read_since(self, stream: str, subject: str, since: datetime) -> list[Msg]:
        """Every message on ``subject`` (wildcards allowed) stored at ``since`` or later, by
        the server's clock, in stream order."""
        config = api.ConsumerConfig(
            deliver_policy=api.DeliverPolicy.BY_START_TIME, opt_start_time=as_utc(since)
        )
        return await self._read_all(stream, subject, config)

    async def _read_all(self, stream: str, subject: str, start: api.ConsumerConfig) -> list[Msg]:
        """Every message a consumer with ``start``'s deliver policy delivers, in stream order.

        Read by a pull consumer: it delivers nothing before it is asked, so the count it
        reports when made is exact, and the read ends when the last message delivered says
        none are left. (nats-py's KV watcher asks a push consumer how many are left while
        they may already be on the way, and can report an empty bucket.)
        """
        config = start.evolve(
            ack_policy=api.AckPolicy.NONE, inactive_threshold=60.0, mem_storage=True
        )
        sub = await self.js.pull_subscribe(subject, stream=stream, config=config)
        consumer = None
        try:
            info = await sub.consumer_info()
            consumer = info.name
            found: list[Msg] = []
            remaining = info.num_pending
            while remaining:
                msgs = await sub.fetch(min(remaining, 1000), timeout=10)
                found += msgs
                remaining = msgs[-1].metadata.num_pending
            return found
        finally:
            await sub.unsubscribe()
            if consumer is not None:
                await self.js.delete_consumer(stream, consumer)


def lost_race(error: BaseException) -> bool:
    """Whether a publish was refused because a compare-and-set lost (and nothing else)."""
    return isinstance(error, PublishError) and error.code in WRONG_LAST_SEQUENCE
