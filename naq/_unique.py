"""Unique jobs: one job per key while it waits, while it waits or runs, per period, or the
last of a burst.

``enqueue(..., unique=...)`` takes a lock named by the queue and the job's unique key (by
default its function and serialized arguments) before the job is published. The lock names
the job holding it. An enqueue that finds a lock asks whether its job still counts:

- ``"queued"``: while that job waits (queued, deferred, or waiting to retry);
- ``"active"``: while it waits or runs;
- ``Unique.throttle(p)``: for ``p`` seconds after it was enqueued, whatever it does;

and if so, enqueues nothing and returns that job. A lock whose job no longer counts is
replaced (compare-and-set, so two enqueues never both take it). ``Unique.debounce(p)``
always enqueues, ``p`` seconds later, and cancels the job of the lock it replaces if that
one is still waiting for its time: of a burst of enqueues, the last runs.

Locks are given up by being found stale, not by workers: nothing is added to the job path,
and a worker killed at any moment leaves no lock behind that blocks anything.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Final

import attrs
from cattrs.preconf.json import make_converter
from loguru import logger

from ._errors import ConfigurationError, SerializationError
from ._record import JobStatus, decode_record
from ._time import utcnow

if TYPE_CHECKING:
    from ._connection import Connection
    from ._record import JobRecord

__all__ = [
    "Lock",
    "Taken",
    "Unique",
    "admit",
    "default_unique_key",
    "give_back",
    "unique_option",
]

_WAITING: Final = frozenset({JobStatus.QUEUED, JobStatus.DEFERRED, JobStatus.SCHEDULED})
LOCK_TTL: Final = 7 * 24 * 3600.0
"""Seconds a ``queued`` or ``active`` lock is kept at most: a job waiting longer stops
blocking its duplicates. (Throttle and debounce locks last their period.)"""
PUBLISH_GRACE: Final = timedelta(seconds=10)
"""How long a lock whose job is not found yet still counts: its enqueue may be between
taking the lock and storing the job."""


@attrs.frozen
class Unique:
    """How an enqueue is kept unique: ``"queued"``, ``"active"``, :meth:`throttle` or
    :meth:`debounce` (``period`` seconds); give it as ``enqueue(..., unique=...)``."""

    mode: str
    period: float | None = None

    @classmethod
    def throttle(cls, seconds: float | timedelta) -> Unique:
        """At most one job per key every ``seconds``: a duplicate returns the one enqueued."""
        return cls("throttle", _period(seconds))

    @classmethod
    def debounce(cls, seconds: float | timedelta) -> Unique:
        """Run ``seconds`` after the last enqueue of a key: each enqueue replaces the job
        still waiting."""
        return cls("debounce", _period(seconds))

    def __str__(self) -> str:
        """What the job's record shows: ``queued``, ``active``, ``throttle 60s``..."""
        return self.mode if self.period is None else f"{self.mode} {self.period:g}s"


def _period(seconds: float | timedelta) -> float:
    value = seconds.total_seconds() if isinstance(seconds, timedelta) else seconds
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ConfigurationError(f"a unique period must be positive seconds, got {seconds!r}")
    return float(value)


def unique_option(value: Unique | str | None) -> Unique | None:
    """The ``unique=`` option, checked."""
    if value is None or isinstance(value, Unique):
        return value
    if value in ("queued", "active"):
        return Unique(value)
    raise ConfigurationError(
        f"unique must be 'queued', 'active', naq.Unique.throttle(s) or "
        f"naq.Unique.debounce(s), got {value!r}"
    )


def default_unique_key(func_name: str, payload: object) -> str:
    """The function and its serialized arguments: equal calls, one key."""
    arguments = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return f"{func_name}:{hashlib.sha256(arguments.encode()).hexdigest()[:32]}"


@attrs.frozen
class Lock:
    """What a lock holds: the job, its key and mode, and when it was taken (UTC)."""

    job_id: str
    key: str
    mode: str
    at: datetime


_converter = make_converter()


@attrs.frozen
class Taken:
    """A lock this enqueue took: given back if the job then cannot be stored. ``replaced``
    is the job of the lock it replaced (debounce: to cancel if it still waits)."""

    key: str
    sequence: int
    replaced: str | None


async def admit(connection: Connection, record: JobRecord, unique: Unique) -> str | Taken:
    """Take ``record``'s lock: the id of the job that keeps this one out, else the lock."""
    assert record.unique_key is not None
    locks = connection.transport.locks
    key = f"unique.{record.queue}.{hashlib.sha256(record.unique_key.encode()).hexdigest()[:40]}"
    mine = _converter.dumps(Lock(record.id, record.unique_key, str(unique), utcnow())).encode()
    ttl = unique.period if unique.period is not None else LOCK_TTL
    while True:
        data, sequence = await connection.call(locks.read, key)
        held = _decode(data) if data else None
        if held is not None and await _counts(connection, held, unique):
            return held.job_id
        taken = await connection.call(locks.take, key, mine, ttl, sequence)
        if taken is not None:
            return Taken(key, taken, held.job_id if held else None)
        # Another enqueue changed the lock meanwhile: look again.


async def give_back(connection: Connection, taken: Taken) -> None:
    """Release a lock whose job could not be stored (a no-op if it changed since)."""
    await connection.call(connection.transport.locks.release, taken.key, taken.sequence)


def _decode(data: bytes) -> Lock | None:
    try:
        return _converter.loads(data, Lock)
    except Exception as exc:  # noqa: BLE001 - any malformed lock is replaced, and said so
        logger.warning("replacing an undecodable unique-job lock: {!r}", exc)
        return None


async def _counts(connection: Connection, held: Lock, unique: Unique) -> bool:
    """Whether the job holding a lock still keeps duplicates out."""
    if unique.mode == "debounce":
        return False  # every enqueue replaces the job before it
    if unique.mode == "throttle":
        return True  # the lock lives as long as the period
    data = await connection.call(connection.transport.get_record, held.job_id)
    if data is None:
        return utcnow() - held.at < PUBLISH_GRACE
    try:
        status = decode_record(data).status
    except SerializationError as exc:
        logger.warning("unique lock of {}: its record is undecodable ({})", held.job_id, exc)
        return False
    return status in _WAITING or (status is JobStatus.STARTED and unique.mode == "active")
