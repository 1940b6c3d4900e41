"""Cluster-wide locks: the ``NAQ_LOCKS`` stream, for unique jobs and concurrency limits.

A lock is the one message on its subject (``naq.locks.unique.<queue>.<digest>``,
``naq.locks.slot.<digest>.<n>``) naming who holds it. It is taken and renewed with
compare-and-set on the subject's last sequence (0: free), so two takers never both get it,
and it carries a per-message TTL after which the server removes it: a holder that dies gives
its locks back by itself. A free lock is no message, or an empty one (a lock given back,
for a minute): a taker tries the first without reading (:meth:`Locks.take_free`). What a
lock means is decided by its user (``naq/_unique.py``,
``naq/_limits.py``). Runs on the transport's asyncio loop.
"""

from __future__ import annotations

import math

import nats.js.errors

from ._jetstream import JetStream
from ._names import LOCKS_STREAM, lock_subject
from ._publisher import OutgoingMessage
from ._streams import locks_stream

__all__ = ["Locks"]

_FREED_TTL = 60
"""Seconds the empty message of a lock given back stays (its subject is then empty)."""


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
            await self._jetstream.ensure_stream(locks_stream(self._jetstream.replicas))
            self._ready = True

    async def read(self, key: str) -> tuple[bytes, int]:
        """A lock's data and sequence; empty data when it is free (sequence 0 when its
        subject has no message, else that of the message that gave it back)."""
        await self._ensure()
        try:
            msg = await self._jetstream.js.get_last_msg(
                LOCKS_STREAM, lock_subject(key), direct=True
            )
        except nats.js.errors.NotFoundError:
            return b"", 0
        return msg.data or b"", msg.seq

    async def take(self, key: str, data: bytes, ttl: float, replacing: int) -> int | None:
        """Store a lock if its subject is still at sequence ``replacing`` (what :meth:`read`
        gave, or the holder's own sequence to renew it); its new sequence, or None when
        someone else got there first. The server removes it after ``ttl`` seconds."""
        await self._ensure()
        headers = {"Nats-TTL": f"{max(1, math.ceil(ttl))}s"}
        message = OutgoingMessage(lock_subject(key), data, headers)
        return await self._jetstream.compare_and_set(message, replacing)

    async def take_free(self, key: str, data: bytes, ttl: float) -> int | None:
        """Take a lock if it is free, trying first as if its subject had no message (one
        round trip when it never had one or its last one expired); None when it is held."""
        taken = await self.take(key, data, ttl, 0)
        if taken is not None:
            return taken
        current, sequence = await self.read(key)
        if current:
            return None
        return await self.take(key, data, ttl, sequence)

    async def release(self, key: str, sequence: int) -> bool:
        """Give back the lock stored at ``sequence`` (False: it was replaced or expired).

        An empty message takes its place (compare-and-set, a plain publish: deleting by
        sequence is a JetStream API request, which the server answers one at a time), and
        expires in a minute, leaving the subject without a message.
        """
        await self._ensure()
        headers = {"Nats-TTL": f"{_FREED_TTL}s"}
        freed = OutgoingMessage(lock_subject(key), b"", headers)
        return await self._jetstream.compare_and_set(freed, sequence) is not None
