"""Limits across every worker: at most N jobs of one limit key running at once, and at most
N starts of one key per period.

``enqueue(..., max_running=N, rate_limit="N/s", limit_key=None)`` (the key defaults to the
function's name). Before such a job runs, its worker takes one of N slot locks
(``slot.<digest>.<n>`` in the ``NAQ_LOCKS`` stream) by compare-and-set, and records its start
in the key's rate lock (``rate.<digest>``: the start times of the last period, compare-and-set
too). Over either limit, it hands the message back to the server with a delay (a nak) and
takes other work: the job waits without holding a worker slot. Its attempts count runs, not
waits: the attempt is read from the job's stored record (the runs it had), not from the
delivery count, which waits raise.

A slot carries a TTL of the worker's ack wait and is renewed while its job runs (every
third of it). It is given back when the job ends; a worker killed while it holds one loses
it by the TTL, the same time the server takes to deliver the job's message again.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import time
from typing import TYPE_CHECKING, Final

import anyio
import attrs
from anyio.abc import TaskStatus
from loguru import logger

from ._errors import ConfigurationError, SerializationError
from ._record import JobStatus, decode_record
from ._time import utcnow

if TYPE_CHECKING:
    from ._connection import Connection
    from ._record import JobRecord

__all__ = ["WAIT_DELAY", "JobLimits", "check_limits", "parse_rate", "wait_delay"]

WAIT_DELAY: Final = 0.5
"""Seconds a job over its limit waits before it is delivered again (times 1 to 2, at random,
so waiting jobs do not all come back at once)."""
_RATE = re.compile(r"(\d+)\s*/\s*(\d+(?:\.\d+)?)?\s*([smh])")
_RATE_JITTER: Final = 0.05
"""Seconds at most added at random to a rate-limited job's wait, so waiters spread out."""
_TRIES: Final = 8
"""Slots a start tries (one after another from a random one) before it waits like a job
over its limit. A limit of up to 8 has every slot tried; above, a job may wait while one
slot is free (missed with probability (N - 8) / N when it is the only one), and is tried
again 0.5-1 s later."""
FINAL_RELEASE_TIMEOUT: Final = 5.0
"""Seconds a stopping worker gives back its slots in, before their TTL does it."""


def check_limits(
    max_running: int | None, rate_limit: str | None, limit_key: str | None
) -> int | None:
    """The ``max_running=``, ``rate_limit=`` and ``limit_key=`` options, checked; returns
    ``max_running``."""
    if rate_limit is not None:
        parse_rate(rate_limit)
    if max_running is not None and (
        isinstance(max_running, bool) or not isinstance(max_running, int) or max_running < 1
    ):
        raise ConfigurationError(f"max_running must be a whole number >= 1, got {max_running!r}")
    if limit_key is not None:
        if max_running is None and rate_limit is None:
            raise ConfigurationError("limit_key goes with max_running= or rate_limit=")
        if not isinstance(limit_key, str) or not limit_key:
            raise ConfigurationError(f"limit_key must be a non-empty string, got {limit_key!r}")
    return max_running


def parse_rate(text: str) -> tuple[int, float]:
    """``"5/s"``, ``"100/m"``, ``"1000/h"``, ``"3/10s"``: (starts, period in seconds)."""
    match = _RATE.fullmatch(text.strip()) if isinstance(text, str) else None
    if match is None:
        raise ConfigurationError(
            f"rate_limit must read like '5/s', '100/m', '1000/h' or '3/10s', got {text!r}"
        )
    starts, amount, unit = int(match[1]), float(match[2] or 1), match[3]
    period = amount * {"s": 1, "m": 60, "h": 3600}[unit]
    if starts < 1 or period <= 0:
        raise ConfigurationError(f"rate_limit needs at least 1 start per period, got {text!r}")
    return starts, period


def _start_times(data: bytes) -> list[float]:
    """The start times a rate lock holds (none when it is free or unreadable)."""
    if not data:
        return []
    try:
        times = json.loads(data)
    except ValueError:
        logger.warning("replacing an unreadable rate lock")
        return []
    return [t for t in times if isinstance(t, int | float)] if isinstance(times, list) else []


def wait_delay() -> float:
    """How long a job over its limit waits before it is tried again."""
    return WAIT_DELAY * (1 + random.random())


@attrs.frozen
class _Slot:
    key: str
    sequence: int
    limit_key: str


class JobLimits:
    """A worker's side of limits: slots taken before a limited job runs, renewed and given
    back; starts recorded against rate limits."""

    def __init__(self, connection: Connection, worker_id: str, ttl: float) -> None:
        self._connection = connection
        self._worker_id = worker_id
        self._ttl = ttl
        self._held: dict[str, _Slot] = {}
        self._to_release: list[_Slot] = []
        self._released = anyio.Event()
        self._waiting: dict[str, dict[str, float]] = {}
        """limit key -> the jobs sent back to wait -> when they are due back (loop time)."""
        self._counting: dict[str, anyio.Lock] = {}
        """One lock per rate-limit key this worker has counted starts of."""

    @property
    def held(self) -> int:
        """Slots this worker holds now."""
        return len(self._held)

    async def admit(self, record: JobRecord) -> float | None:
        """Let a limited job start (its slot taken, its start counted): None; else the
        seconds it should wait before it is tried again."""
        wait = None
        if record.max_running is not None and not await self.acquire(record):
            wait = wait_delay()
        elif record.rate_limit is not None:
            wait = await self._count_start(record, *parse_rate(record.rate_limit))
            if wait is not None:
                self.release(record.id)
        assert record.limit_key is not None
        waiting = self._waiting.setdefault(record.limit_key, {})
        if wait is None:
            waiting.pop(record.id, None)
        else:  # counted as waiting until it is due back (and a second more)
            waiting[record.id] = anyio.current_time() + wait + 1.0
        return wait

    def counts(self) -> tuple[dict[str, int], dict[str, int]]:
        """Per limit key: the jobs running here in a slot, and the jobs this worker sent
        back to wait that are not due back yet (for heartbeats: ``naq info``)."""
        running: dict[str, int] = {}
        for slot in self._held.values():
            running[slot.limit_key] = running.get(slot.limit_key, 0) + 1
        now = anyio.current_time()
        waiting: dict[str, int] = {}
        for key, jobs in list(self._waiting.items()):
            for job_id, due in list(jobs.items()):
                if due < now:
                    del jobs[job_id]  # taken since, here or by another worker
            if jobs:
                waiting[key] = len(jobs)
            else:
                del self._waiting[key]
        return running, waiting

    async def _count_start(self, record: JobRecord, starts: int, period: float) -> float | None:
        """Record a start in the key's rate lock if fewer than ``starts`` were made in the last
        ``period`` seconds: None; else the seconds until the oldest of them leaves the window."""
        assert record.limit_key is not None
        key = f"rate.{hashlib.sha256(record.limit_key.encode()).hexdigest()[:40]}"
        # One count at a time per key in this worker: its runners would otherwise race each
        # other for the key's one lock, and lose almost every time.
        local = self._counting.get(key)
        if local is None:
            local = self._counting[key] = anyio.Lock()
        async with local:
            return await self._count_start_now(key, starts, period)

    async def _count_start_now(self, key: str, starts: int, period: float) -> float | None:
        locks = self._connection.transport.locks
        for _ in range(_TRIES):
            data, sequence = await self._connection.call(locks.read, key)
            now = time.time()
            recent = [t for t in _start_times(data) if now - t < period]
            if len(recent) >= starts:
                return min(recent) + period - now + random.random() * _RATE_JITTER
            body = json.dumps([*recent, now]).encode()
            taken = await self._connection.call(locks.take, key, body, period, sequence)
            if taken is not None:
                return None
        return wait_delay()  # crowded: others were counting starts of this key meanwhile

    async def acquire(self, record: JobRecord) -> bool:
        """Take a free slot of ``record``'s limit key; False when none was free."""
        assert record.max_running is not None and record.limit_key is not None
        take_free = self._connection.transport.locks.take_free
        prefix = f"slot.{hashlib.sha256(record.limit_key.encode()).hexdigest()[:40]}"
        mine = self._slot_data(record.id)
        # Slots are tried from a random one, so that workers starting jobs of one key at
        # once mostly try different ones.
        start = random.randrange(record.max_running)
        for i in range(min(record.max_running, _TRIES)):
            key = f"{prefix}.{(start + i) % record.max_running}"
            taken = await self._connection.call(take_free, key, mine, self._ttl)
            if taken is not None:
                self._held[record.id] = _Slot(key, taken, record.limit_key)
                return True
        return False

    def _slot_data(self, job_id: str) -> bytes:
        """What a slot holds: its job, this worker and when it was taken or renewed."""
        return json.dumps(
            {"job_id": job_id, "worker_id": self._worker_id, "at": utcnow().isoformat()}
        ).encode()

    async def runs_before(self, job_id: str) -> int:
        """The runs a limited job had, from its stored record (0 if it never started)."""
        data = await self._connection.call(self._connection.transport.get_record, job_id)
        if data is None:
            return 0
        try:
            record = decode_record(data)
        except SerializationError as exc:
            logger.warning("job {}: undecodable record, counting no runs ({})", job_id, exc)
            return 0
        return 0 if record.status is JobStatus.QUEUED else record.attempts

    def release(self, job_id: str) -> None:
        """Give back the slot of a job that ended (soon, by :meth:`run`; no-op without one)."""
        slot = self._held.pop(job_id, None)
        if slot is not None:
            self._to_release.append(slot)
            self._released.set()

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Give back released slots as they come and renew held ones every third of their
        TTL, until cancelled; then give back what is left (bounded, shielded)."""
        renew_every = self._ttl / 3
        next_renewal = anyio.current_time() + renew_every
        task_status.started()
        try:
            while True:
                with anyio.move_on_after(max(0.0, next_renewal - anyio.current_time())):
                    await self._released.wait()
                self._released = anyio.Event()
                await self._give_back()
                if anyio.current_time() >= next_renewal:
                    await self._renew()
                    next_renewal = anyio.current_time() + renew_every
        finally:
            with anyio.CancelScope(shield=True), anyio.move_on_after(FINAL_RELEASE_TIMEOUT):
                self._to_release += self._held.values()
                self._held.clear()
                await self._give_back()

    async def _give_back(self) -> None:
        """Give back the released slots, all at once (each is one request to the server)."""
        slots, self._to_release = self._to_release, []
        async with anyio.create_task_group() as tg:
            for slot in slots:
                tg.start_soon(self._give_back_one, slot)

    async def _give_back_one(self, slot: _Slot) -> None:
        try:
            locks = self._connection.transport.locks
            await self._connection.call(locks.release, slot.key, slot.sequence)
        except Exception as exc:  # noqa: BLE001 - logged; its TTL frees it anyway
            logger.warning("could not give back slot {}: {!r}", slot.key, exc)

    async def _renew(self) -> None:
        locks = self._connection.transport.locks
        for job_id, slot in list(self._held.items()):
            mine = self._slot_data(job_id)
            try:
                renewed = await self._connection.call(
                    locks.take, slot.key, mine, self._ttl, slot.sequence
                )
            except Exception as exc:  # noqa: BLE001 - logged; tried again at the next renewal
                logger.warning("could not renew slot {}: {!r}", slot.key, exc)
                continue
            if renewed is None:
                logger.warning(
                    "slot {} of job {} expired while it ran: its limit may be exceeded by one",
                    slot.key,
                    job_id,
                )
                self._held.pop(job_id, None)
            elif job_id in self._held:
                self._held[job_id] = _Slot(slot.key, renewed, slot.limit_key)
            else:  # its job ended while this renewal was on its way
                self._to_release.append(_Slot(slot.key, renewed, slot.limit_key))
