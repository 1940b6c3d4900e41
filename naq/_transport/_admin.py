"""NATS-side operations for operators: worker heartbeats, queue statistics and purge.

Kept apart from ``_nats.py`` (the job hot paths) so the two grow independently. Like the
transport, everything here runs on the transport's asyncio loop (through ``Connection.call``).
"""

from __future__ import annotations

import json
import re
from typing import Any, NamedTuple

import nats.errors
import nats.js.errors
from nats.js import api

from .._errors import NaqConnectionError, NaqError
from ._names import (
    JOBS_STREAM,
    WORKERS_BUCKET,
    consumer_name,
    job_subject,
    queue_of_consumer,
    queue_subject,
)
from ._nats import NatsTransport

__all__ = ["ConsumerStats", "NatsAdmin", "worker_key"]

_MARKER_TTL = 60
"""Seconds a worker's delete marker stays, so watchers see the exit, then the key is gone."""
_WORKERS_STREAM = f"KV_{WORKERS_BUCKET}"
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


def _admin_error(what: str, exc: Exception) -> NaqError:
    if isinstance(exc, nats.errors.ConnectionClosedError | nats.errors.TimeoutError):
        return NaqConnectionError(f"{what}: NATS did not answer ({exc!r})")
    return NaqError(f"{what}: {exc}")


class NatsAdmin:
    """Operator views and actions over one connected transport."""

    def __init__(self, transport: NatsTransport) -> None:
        self._transport = transport
        self._workers_kv: Any = None

    @property
    def _js(self) -> Any:
        return self._transport._js

    # -- worker heartbeats ------------------------------------------------------------------

    async def _workers(self) -> Any:
        """The heartbeat bucket, created on first use (memory storage: beats are ephemeral).

        Direct get is on, so the live heartbeats are read with one request (a bucket made
        by an older naq without it is updated).
        """
        if self._workers_kv is None:
            await self._transport._ensure_bucket(
                api.KeyValueConfig(
                    bucket=WORKERS_BUCKET,
                    history=1,
                    storage=api.StorageType.MEMORY,
                    limit_marker_ttl=_MARKER_TTL,
                    direct=True,
                )
            )
            self._workers_kv = await self._js.key_value(WORKERS_BUCKET)
        return self._workers_kv

    async def put_heartbeat(self, key: str, value: bytes, ttl: int) -> None:
        """Write a worker's heartbeat; the server deletes it ``ttl`` seconds later unless
        renewed, so a killed worker disappears by itself."""
        await self._workers()  # the bucket must exist before the first publish
        await self._js.publish(
            f"$KV.{WORKERS_BUCKET}.{key}", value, headers={"Nats-TTL": f"{max(1, ttl)}s"}
        )

    async def delete_heartbeat(self, key: str) -> None:
        """Remove a worker's heartbeat at its clean exit (a marker that itself expires)."""
        await self._workers()
        await self._js.publish(
            f"$KV.{WORKERS_BUCKET}.{key}",
            b"",
            headers={"KV-Operation": "PURGE", "Nats-Rollup": "sub", "Nats-TTL": f"{_MARKER_TTL}s"},
        )

    async def heartbeats(self) -> list[bytes]:
        """The current heartbeat of every live worker.

        One ``multi_last`` direct get over the bucket, which ends with a status once every
        key was sent. (A KV watch was used before, and once left a live worker out of the
        list, probably because nats-py signalled the end of the watch's initial values before
        a stored value had arrived.)
        """
        try:
            await self._workers()
            found = await self._transport._direct_get_many(
                _WORKERS_STREAM, [f"$KV.{WORKERS_BUCKET}.>"]
            )
        except (nats.errors.Error, nats.js.errors.Error) as exc:
            raise _admin_error("cannot read workers", exc) from exc
        return [msg.data for msg in found if msg.data]  # empty: a delete or expiry marker

    # -- queues -----------------------------------------------------------------------------

    async def queue_stats(self, queues: list[str] | None) -> list[ConsumerStats]:
        """Statistics of the named queues, or of every queue a worker ever consumed."""
        try:
            if queues is None:
                infos = await self._js.consumers_info(JOBS_STREAM)
                found = [(queue_of_consumer(i.name), i) for i in infos]
                return sorted(_stats(q, i) for q, i in found if q is not None)
            stats = []
            for queue in queues:
                try:
                    info = await self._js.consumer_info(JOBS_STREAM, consumer_name(queue))
                except nats.js.errors.NotFoundError:
                    stats.append(ConsumerStats(queue, await self._count(queue), 0, 0))
                else:
                    stats.append(_stats(queue, info))
            return stats
        except (nats.errors.Error, nats.js.errors.Error) as exc:
            raise _admin_error("cannot read queues", exc) from exc

    async def _count(self, queue: str) -> int:
        """Messages of a queue that has no consumer yet (none was ever delivered)."""
        total = 0
        for subject in (queue_subject(queue), job_subject(queue, "*")):
            info = await self._js.stream_info(JOBS_STREAM, subjects_filter=subject)
            total += sum((info.state.subjects or {}).values())
        return total

    async def purge(self, queue: str) -> int:
        """Remove a queue's messages (waiting, running or waiting to retry); how many."""
        purged = 0
        for subject in (queue_subject(queue), job_subject(queue, "*")):
            request = json.dumps({"filter": subject}).encode()
            try:
                msg = await self._transport.nc.request(
                    f"$JS.API.STREAM.PURGE.{JOBS_STREAM}", request, timeout=30
                )
            except nats.errors.Error as exc:
                raise _admin_error(f"cannot purge {queue}", exc) from exc
            reply = json.loads(msg.data)
            if "error" in reply:
                raise NaqError(f"cannot purge {queue}: {reply['error'].get('description')}")
            purged += int(reply.get("purged", 0))
        return purged
