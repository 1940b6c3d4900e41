"""Cluster-wide locks: the ``naq_locks`` bucket, for unique jobs and concurrency limits.

A lock is one KV entry (``unique.<queue>.<digest>``, ``slot.<digest>.<n>``) naming who holds
it. It is taken, renewed and given back with compare-and-set on its subject's last sequence,
so two takers never both get it, and it carries a per-message TTL after which the server
removes it: a holder that dies gives its locks back by itself. What a lock means is decided
by its user (``naq/_unique.py``, ``naq/_limits.py``). Runs on the transport's asyncio loop.
"""

from __future__ import annotations

import math

import nats.js.errors

from ._jetstream import JetStream
from ._names import LOCKS_BUCKET_STREAM, lock_subject
from ._publisher import OutgoingMessage
from ._streams import locks_bucket

__all__ = ["Locks"]


class Locks:
    """Read, take, renew and give back locks (``transport.locks``)."""

    def __init__(self, jetstream: JetStream) -> None:
        self._jetstream = jetstream
        self._ready = False

    def forget(self) -> None:
        """Provision again on the next use (a connection inherited through ``fork()``)."""
        self._ready = False

    async def _ensure(self) -> None:
        if not self._ready:
            await self._jetstream.ensure_bucket(locks_bucket(self._jetstream.replicas))
            self._ready = True

    async def read(self, key: str) -> tuple[bytes, int]:
        """A lock's data and sequence: empty data when there is no lock (sequence 0) or
        only the delete marker of one given back (its sequence, which a new lock replaces)."""
        await self._ensure()
        try:
            msg = await self._jetstream.js.get_last_msg(
                LOCKS_BUCKET_STREAM, lock_subject(key), direct=True
            )
        except nats.js.errors.NotFoundError:
            return b"", 0
        return msg.data or b"", msg.seq

    async def read_many(self, prefix: str) -> dict[str, tuple[bytes, int]]:
        """Every lock under ``prefix`` (``slot.<digest>``), as :meth:`read` gives each one
        (a lock never taken is absent)."""
        await self._ensure()
        msgs = await self._jetstream.direct_get_many(
            LOCKS_BUCKET_STREAM, [lock_subject(f"{prefix}.*")]
        )
        start = len(lock_subject(""))
        found = {}
        for msg in msgs:
            headers = msg.headers or {}
            found[headers["Nats-Subject"][start:]] = (
                msg.data or b"",
                int(headers["Nats-Sequence"]),
            )
        return found

    async def take(self, key: str, data: bytes, ttl: float, replacing: int) -> int | None:
        """Store a lock if its subject is still at sequence ``replacing`` (what :meth:`read`
        gave, or the holder's own sequence to renew it); its new sequence, or None when
        someone else got there first. The server removes it after ``ttl`` seconds."""
        await self._ensure()
        headers = {"Nats-TTL": f"{max(1, math.ceil(ttl))}s"}
        message = OutgoingMessage(lock_subject(key), data, headers)
        return await self._jetstream.compare_and_set(message, replacing)

    async def release(self, key: str, sequence: int) -> bool:
        """Delete a lock if it is still the one stored at ``sequence``."""
        await self._ensure()
        message = OutgoingMessage(lock_subject(key), b"", {"KV-Operation": "DEL"})
        return await self._jetstream.compare_and_set(message, sequence) is not None
