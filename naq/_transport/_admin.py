"""NATS-side operations for operators: worker heartbeats, throughput history, queue statistics
and purge.

A store owned by the transport (``transport.admin``), kept apart from ``_nats.py`` (the job
hot paths) so the two grow independently. Like the transport, everything here runs on the
transport's asyncio loop (through ``Connection.call``).
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import datetime
from typing import Any, NamedTuple

import nats.errors
import nats.js.errors
from nats.js import api

from .._errors import NaqConnectionError, NaqError
from ._jetstream import JetStream
from ._names import (
    JOBS_STREAM,
    STATS_STREAM,
    WORKERS_BUCKET_STREAM,
    consumer_name,
    lane_of_consumer,
    lane_priority,
    lanes,
    queue_filters,
    stats_subject,
    stream_purge_subject,
    worker_subject,
)
from ._publisher import OutgoingMessage, PublishError
from ._streams import WORKER_MARKER_TTL, stats_stream, workers_bucket

__all__ = ["ConsumerStats", "NatsAdmin", "worker_key"]

_KEY_UNSAFE = re.compile(r"[^-/_=.A-Za-z0-9]")


def worker_key(worker_id: str) -> str:
    """The heartbeat key of a worker: its id with characters KV keys refuse replaced."""
    return _KEY_UNSAFE.sub("_", worker_id).strip(".") or "worker"


class ConsumerStats(NamedTuple):
    """A queue's durable consumer: waiting messages, delivered and unacknowledged ones."""

    queue: str
    pending: int
    in_progress: int
    redelivered: int


def _stats(queue: str, info: api.ConsumerInfo) -> ConsumerStats:
    return ConsumerStats(
        queue, info.num_pending or 0, info.num_ack_pending or 0, info.num_redelivered or 0
    )


def _summed(queue: str, lanes: list[ConsumerStats]) -> ConsumerStats:
    """A queue's statistics: the sums over its lanes."""
    return ConsumerStats(
        queue,
        sum(s.pending for s in lanes),
        sum(s.in_progress for s in lanes),
        sum(s.redelivered for s in lanes),
    )


def _admin_error(what: str, exc: Exception) -> NaqError:
    if isinstance(exc, nats.errors.ConnectionClosedError | nats.errors.TimeoutError):
        return NaqConnectionError(f"{what}: NATS did not answer ({exc!r})")
    return NaqError(f"{what}: {exc}")


class NatsAdmin:
    """Operator views and actions; owned by a transport (``transport.admin``)."""

    def __init__(self, jetstream: JetStream) -> None:
        self._jetstream = jetstream
        self._workers_kv: Any = None
        self._stats_ready = False

    def forget(self) -> None:
        """Start afresh on a new connection (after ``fork()``)."""
        self._workers_kv = None
        self._stats_ready = False

    @property
    def _js(self) -> Any:
        return self._jetstream.js

    # -- worker heartbeats ------------------------------------------------------------------

    async def _workers(self) -> Any:
        """The heartbeat bucket, provisioned on first use (an older naq's is brought up to date)."""
        if self._workers_kv is None:
            self._workers_kv = await self._jetstream.open_bucket(
                workers_bucket(self._jetstream.replicas)
            )
        return self._workers_kv

    async def put_heartbeat(self, key: str, value: bytes, ttl: int) -> None:
        """Write a worker's heartbeat; the server deletes it ``ttl`` seconds later unless
        renewed, so a killed worker disappears by itself."""
        await self._workers()  # the bucket must exist before the first publish
        await self._jetstream.publish_one(
            OutgoingMessage(worker_subject(key), value, {"Nats-TTL": f"{max(1, ttl)}s"})
        )

    async def delete_heartbeat(self, key: str) -> None:
        """Remove a worker's heartbeat at its clean exit (a marker that itself expires)."""
        await self._workers()
        headers = {
            "KV-Operation": "PURGE",
            "Nats-Rollup": "sub",
            "Nats-TTL": f"{WORKER_MARKER_TTL}s",
        }
        await self._jetstream.publish_one(OutgoingMessage(worker_subject(key), b"", headers))

    async def heartbeats(self) -> list[bytes]:
        """The current heartbeat of every live worker.

        One ``multi_last`` direct get over the bucket, which ends with a status once every
        key was sent. (A KV watch was used before, and once left a live worker out of the
        list, probably because nats-py signalled the end of the watch's initial values before
        a stored value had arrived.)
        """
        try:
            await self._workers()
            found = await self._jetstream.direct_get_many(
                WORKERS_BUCKET_STREAM, [worker_subject(">")]
            )
        except (nats.errors.Error, nats.js.errors.Error) as exc:
            raise _admin_error("cannot read workers", exc) from exc
        return [msg.data for msg in found if msg.data]  # empty: a delete or expiry marker

    # -- throughput history -----------------------------------------------------------------

    async def _stats_stream(self) -> None:
        """The throughput-history stream, provisioned on first use."""
        if not self._stats_ready:
            await self._jetstream.ensure_stream(stats_stream(self._jetstream.replicas))
            self._stats_ready = True

    async def publish_sample(self, worker_id: str, data: bytes) -> None:
        """Store one throughput sample of a worker.

        Its message id is its content's digest, so a sample sent again after an unconfirmed
        publish is stored once (within the stream's two-minute duplicate window). When no
        stream takes it (deleted since it was provisioned), it is provisioned again, once.
        """
        digest = hashlib.blake2b(data, digest_size=16).hexdigest()
        message = OutgoingMessage(
            stats_subject(worker_key(worker_id)), data, {"Nats-Msg-Id": digest}
        )
        await self._stats_stream()
        try:
            await self._jetstream.publish_one(message)
        except PublishError as exc:
            if exc.code is not None:
                raise
            self._stats_ready = False
            await self._stats_stream()
            await self._jetstream.publish_one(message)

    async def read_samples(self, since: datetime) -> list[bytes]:
        """Every worker's throughput samples stored at ``since`` or later (server clock); none
        when the stream was deleted since it was provisioned (it is provisioned again)."""
        try:
            await self._stats_stream()
            try:
                found = await self._jetstream.read_since(STATS_STREAM, stats_subject(">"), since)
            except nats.js.errors.NotFoundError:
                self._stats_ready = False
                await self._stats_stream()
                return []
        except (nats.errors.Error, nats.js.errors.Error) as exc:
            raise _admin_error("cannot read throughput history", exc) from exc
        return [msg.data for msg in found]

    # -- queues -----------------------------------------------------------------------------

    async def queue_stats(self, queues: list[str] | None) -> list[ConsumerStats]:
        """Statistics of the named queues, or of every queue a worker ever consumed.

        A queue's figures are the sums over its lanes (one consumer per priority); a named
        queue with no consumer yet counts its stored messages as waiting.
        """
        try:
            if queues is None:
                lanes_of: dict[str, list[ConsumerStats]] = {}
                for info in await self._all_consumers():
                    lane = lane_of_consumer(info.name)
                    if lane is not None:
                        lanes_of.setdefault(lane_priority(lane)[0], []).append(_stats(lane, info))
                return sorted(_summed(queue, found) for queue, found in lanes_of.items())
            return [await self._queue_stats(queue) for queue in queues]
        except (nats.errors.Error, nats.js.errors.Error) as exc:
            raise _admin_error("cannot read queues", exc) from exc

    async def _queue_stats(self, queue: str) -> ConsumerStats:
        found = []
        for lane in lanes(queue):
            try:
                info = await self._js.consumer_info(JOBS_STREAM, consumer_name(lane))
            except nats.js.errors.NotFoundError:
                continue  # a lane never used
            found.append(_stats(lane, info))
        if not found:
            return ConsumerStats(queue, await self._count(queue), 0, 0)
        return _summed(queue, found)

    async def _all_consumers(self) -> list[api.ConsumerInfo]:
        """Every consumer of the jobs stream: the server answers a page at a time."""
        found: list[api.ConsumerInfo] = []
        while page := await self._js.consumers_info(JOBS_STREAM, offset=len(found)):
            found += page
        return found

    async def _count(self, queue: str) -> int:
        """Messages of a queue that has no consumer yet (none was ever delivered)."""
        return await self._jetstream.count_messages(JOBS_STREAM, queue_filters(queue))

    async def purge(self, queue: str) -> int:
        """Remove a queue's messages, in all its lanes (waiting, running or waiting to
        retry); how many."""
        purged = 0
        for subject in queue_filters(queue):
            request = json.dumps({"filter": subject}).encode()
            try:
                msg = await self._jetstream.nc.request(
                    stream_purge_subject(JOBS_STREAM), request, timeout=30
                )
            except nats.errors.Error as exc:
                raise _admin_error(f"cannot purge {queue}", exc) from exc
            reply = json.loads(msg.data)
            if "error" in reply:
                raise NaqError(f"cannot purge {queue}: {reply['error'].get('description')}")
            purged += int(reply.get("purged", 0))
        return purged
