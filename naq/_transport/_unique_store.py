"""NATS side of unique jobs: the lock of each unique key, in the ``naq_unique`` bucket.

A lock is one KV entry per queue and key (``<queue>.<digest>``) naming the job that holds
it. It is taken and replaced with compare-and-set on its subject's last sequence, so two
enqueues of one key never both take it; each carries a per-message TTL, after which the
server removes it. What a lock means (does its job still count?) is decided in
``naq/_unique.py``. Runs on the transport's asyncio loop, like ``NatsTransport``.
"""

from __future__ import annotations

import math

import nats.js.errors

from ._jetstream import JetStream
from ._names import UNIQUE_BUCKET_STREAM, unique_lock_subject
from ._publisher import OutgoingMessage
from ._streams import unique_bucket

__all__ = ["UniqueLocks"]


class UniqueLocks:
    """Read, take and give back unique-job locks (``transport.unique``)."""

    def __init__(self, jetstream: JetStream) -> None:
        self._jetstream = jetstream
        self._ready = False

    def forget(self) -> None:
        """Provision again on the next use (a connection inherited through ``fork()``)."""
        self._ready = False

    async def _ensure(self) -> None:
        if not self._ready:
            await self._jetstream.ensure_bucket(unique_bucket(self._jetstream.replicas))
            self._ready = True

    async def read(self, queue: str, digest: str) -> tuple[bytes, int]:
        """The lock's data and sequence: empty data when there is no lock (sequence 0) or
        only the delete marker of one given back (its sequence, which a new lock replaces)."""
        await self._ensure()
        subject = unique_lock_subject(queue, digest)
        try:
            msg = await self._jetstream.js.get_last_msg(UNIQUE_BUCKET_STREAM, subject, direct=True)
        except nats.js.errors.NotFoundError:
            return b"", 0
        return msg.data or b"", msg.seq

    async def take(
        self, queue: str, digest: str, data: bytes, ttl: float, replacing: int
    ) -> int | None:
        """Store a lock if the lock's subject is still at sequence ``replacing`` (what
        :meth:`read` gave); its sequence, or None when another enqueue got there first.
        The server removes it after ``ttl`` seconds."""
        await self._ensure()
        headers = {"Nats-TTL": f"{max(1, math.ceil(ttl))}s"}
        message = OutgoingMessage(unique_lock_subject(queue, digest), data, headers)
        return await self._jetstream.compare_and_set(message, replacing)

    async def release(self, queue: str, digest: str, sequence: int) -> bool:
        """Delete a lock if it is still the one stored at ``sequence``."""
        await self._ensure()
        headers = {"KV-Operation": "DEL"}
        message = OutgoingMessage(unique_lock_subject(queue, digest), b"", headers)
        return await self._jetstream.compare_and_set(message, sequence) is not None
