"""A Trio worker's consuming calls over naq's own NATS client, on Trio's own thread.

The worker's hot path is four ``NatsTransport`` calls: ``fetch``, ``settle_batch``,
``keep_alive`` and ``hand_back``. Through the bridge each batch costs a crossing to nats-py's
loop thread and back; here they run on the wire connection that ``_native.NativeCalls``
opened, with the same semantics: a pull consumer handing over messages as they arrive
(``_wire_pull``), the same settle order (``settle_with``), the same dependency lookup.
Creating the consumer and everything rare still crosses to nats-py.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from ._bridge import Bridge
from ._deliveries import Delivery, Settlement, as_delivery
from ._direct_get import dependency_edges, multi_last_requests
from ._jetstream import ACK_TIMEOUT
from ._names import (
    DEPS_BUCKET_STREAM,
    JOBS_STREAM,
    consumer_name,
    dependency_subject,
    direct_get_subject,
)
from ._nats import NatsTransport
from ._publisher import OutgoingMessage
from ._settle import settle_and_find_dependents, settle_with
from ._wire import WireConnection
from ._wire_protocol import Msg, PubAck
from ._wire_pull import StreamingPull, streaming_pull

__all__ = ["NativeConsumers"]

_LOOKUP_TIMEOUT = 10.0
"""Seconds to wait for each answer of a dependency lookup (as nats-py's side waits)."""


def _wire_msg(delivery: Delivery) -> Msg:
    """The wire client's message of a delivery this module fetched."""
    msg = delivery.handle
    if not isinstance(msg, Msg):
        raise TypeError(f"job {delivery.job_id} was fetched by nats-py, not naq's wire client")
    return msg


class NativeConsumers:
    """``NatsTransport``'s consuming calls for one worker, natively on a wire connection."""

    def __init__(
        self, wire: Callable[[], WireConnection], transport: NatsTransport, bridge: Bridge
    ) -> None:
        self._wire = wire
        self._transport = transport
        self._bridge = bridge
        self._pullers: dict[str, StreamingPull] = {}

    def routes(self) -> dict[Callable[..., Any], Callable[..., Awaitable[Any]]]:
        """``NatsTransport`` functions -> the methods that replace them on this backend."""
        return {
            NatsTransport.ensure_consumer: self.ensure_consumer,
            NatsTransport.fetch: self.fetch,
            NatsTransport.keep_alive: self.keep_alive,
            NatsTransport.hand_back: self.hand_back,
            NatsTransport.settle_batch: self.settle_batch,
        }

    async def ensure_consumer(self, queue: str, ack_wait: float) -> None:
        """Create or update the queue's consumer (through nats-py), then pull from it here."""
        await self._bridge.call(self._transport.add_queue_consumer, queue, ack_wait)
        previous = self._pullers.pop(queue, None)
        if previous is not None:
            await previous.unsubscribe()
        self._pullers[queue] = streaming_pull(self._wire(), JOBS_STREAM, consumer_name(queue))

    async def fetch(self, queue: str, want: int, timeout: float) -> tuple[list[Delivery], int]:
        """As ``NatsTransport.fetch``: messages as soon as any arrive, and how many are owed."""
        msgs, owed = await self._pullers[queue].fetch(want, timeout)
        return [as_delivery(msg) for msg in msgs], owed

    async def keep_alive(self, deliveries: Sequence[Delivery]) -> None:
        """Tell the server these jobs are still running, so their ack wait restarts."""
        wire = self._wire()
        for delivery in deliveries:
            await wire.in_progress(_wire_msg(delivery))

    async def hand_back(self, deliveries: Sequence[Delivery]) -> None:
        """As ``NatsTransport.hand_back``: stop pulling, then nak every message for redelivery.

        A message settled meanwhile is not harmed: the server ignores a nak after an ack.
        """
        wire = self._wire()
        buffered = [msg for puller in self._pullers.values() for msg in await puller.close()]
        for msg in [_wire_msg(d) for d in deliveries] + buffered:
            await wire.nak(msg)
        await wire.flush()

    async def settle_batch(
        self, settlements: Sequence[Settlement], ended_ids: Sequence[str]
    ) -> tuple[list[BaseException | None], dict[str, list[str]] | BaseException]:
        """As ``NatsTransport.settle_batch``: settle, then look up the ended jobs' dependents."""
        return await settle_and_find_dependents(
            self._settle, self._dependents_of, settlements, ended_ids
        )

    async def _settle(self, settlements: Sequence[Settlement]) -> list[BaseException | None]:
        return await settle_with(settlements, self._publish_all, self._answer)

    async def _publish_all(self, messages: Sequence[OutgoingMessage]) -> list[BaseException | None]:
        outcomes = await self._wire().js_publish_many(messages, ACK_TIMEOUT)
        return [None if isinstance(outcome, PubAck) else outcome for outcome in outcomes]

    async def _answer(self, delivery: Delivery, nak_delay: float | None) -> None:
        wire = self._wire()
        if nak_delay is None:
            await wire.ack(_wire_msg(delivery))
        else:
            await wire.nak(_wire_msg(delivery), nak_delay or None)

    async def _dependents_of(self, job_ids: Sequence[str]) -> dict[str, list[str]]:
        """As ``NatsTransport.dependents_of``: the edges' direct gets, all sent at once."""
        wire = self._wire()
        subjects = [dependency_subject(job_id, "*") for job_id in job_ids]
        inbox = wire.new_inbox()
        sub = await wire.subscribe(inbox)
        try:
            requests = multi_last_requests(subjects)
            for request in requests:
                await wire.publish(direct_get_subject(DEPS_BUCKET_STREAM), request, inbox)
            found: list[Msg] = []
            unanswered = len(requests)
            while unanswered:
                msg = await sub.next_msg(timeout=_LOOKUP_TIMEOUT)
                if msg.status is not None:
                    unanswered -= 1  # 204 end of batch, or 404 nothing matched
                else:
                    found.append(msg)
            return dependency_edges(found)
        finally:
            await sub.unsubscribe()
