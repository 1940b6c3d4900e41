"""Throughput history: runs ended per queue, written by the workers into JetStream, so any
dashboard process shows the last hour of throughput and failures, even after a restart.

Every ``HISTORY_INTERVAL`` seconds a worker whose jobs ended meanwhile publishes a ``Sample``
(the runs that finished and failed per queue since its last stored sample) on
``naq.stats.<worker>`` in the stream ``NAQ_STATS`` (kept a day); an idle worker writes
nothing. Readers sum the samples into per-minute buckets (:func:`per_minute`).
"""

from __future__ import annotations

import collections
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import anyio
import attrs
from anyio.abc import TaskStatus
from cattrs.preconf.json import make_converter
from loguru import logger

from ._errors import SerializationError
from ._heartbeat import WorkerStats
from ._time import as_utc, utcnow

if TYPE_CHECKING:
    from ._connection import Connection

__all__ = [
    "HISTORY_INTERVAL",
    "Bucket",
    "Sample",
    "decode_sample",
    "encode_sample",
    "history_loop",
    "per_minute",
    "read_samples",
]

HISTORY_INTERVAL = 10.0
"""Seconds between the samples of a busy worker."""
CLOCK_SKEW = timedelta(minutes=1)
"""How much earlier than asked the stream is read: it finds samples by the server's clock
when they were stored, readers choose them by their worker's clock (``Sample.at``)."""
FINAL_SAMPLE_TIMEOUT = 5.0
"""Seconds a stopping worker gives its last sample."""
_MINUTE = timedelta(minutes=1)


@attrs.frozen
class Sample:
    """Runs of one worker that ended per queue in the interval ending ``at`` (UTC):
    ``finished`` ended ok, ``failed`` with an error (even if retried); processed is both."""

    at: datetime
    worker_id: str
    finished: dict[str, int]
    failed: dict[str, int]


@attrs.frozen
class Bucket:
    """Runs ended in the minute from ``start`` (UTC): ``finished`` ok, ``failed`` with an
    error (even if retried)."""

    start: datetime
    finished: int
    failed: int

    @property
    def processed(self) -> int:
        return self.finished + self.failed


_converter = make_converter()


def encode_sample(sample: Sample) -> bytes:
    return _converter.dumps(sample).encode()


def decode_sample(data: bytes) -> Sample:
    try:
        sample = _converter.loads(data, Sample)
    except Exception as exc:  # any malformed sample is reported the same way
        raise SerializationError(f"undecodable throughput sample: {exc!r}") from exc
    return attrs.evolve(sample, at=as_utc(sample.at))


# -- writing ------------------------------------------------------------------------------


@attrs.frozen
class _Totals:
    """A worker's counters at one moment: runs ended, and failed, per queue."""

    processed: collections.Counter[str]
    failed: collections.Counter[str]

    @classmethod
    def of(cls, stats: WorkerStats) -> _Totals:
        return cls(collections.Counter(stats.processed_by_queue), stats.failed_by_queue.copy())


class _History:
    """What a worker has yet to store: its counters when its last sample was stored, and a
    sample built but not confirmed, sent again as it is (its message id is its content, so
    the stream keeps it once even if the unconfirmed publish was stored)."""

    def __init__(self, worker_id: str, stats: WorkerStats) -> None:
        self._worker_id = worker_id
        self._stats = stats
        self._stored = _Totals.of(stats)
        self.pending: tuple[Sample, _Totals] | None = None

    def take(self) -> None:
        """Make the runs ended since the last stored sample the pending one, if any ended."""
        if self.pending is not None:
            return
        now = _Totals.of(self._stats)
        failed = now.failed - self._stored.failed
        finished = now.processed - self._stored.processed - failed
        if finished or failed:
            sample = Sample(utcnow(), self._worker_id, dict(finished), dict(failed))
            self.pending = (sample, now)

    def stored(self) -> None:
        assert self.pending is not None
        self._stored = self.pending[1]
        self.pending = None


async def _send_pending(connection: Connection, history: _History) -> bool:
    """Publish the pending sample; False when it failed (logged; it is sent again later)."""
    assert history.pending is not None
    sample = history.pending[0]
    admin = connection.transport.admin
    try:
        await connection.call(admin.publish_sample, sample.worker_id, encode_sample(sample))
    except Exception as exc:  # noqa: BLE001 - logged; kept pending, sent again next time
        logger.warning("throughput sample of {} not stored: {!r}", sample.worker_id, exc)
        return False
    history.stored()
    return True


async def _flush(connection: Connection, history: _History) -> None:
    """Store what ended since the last stored sample: a sample left unconfirmed first (as
    it was), then one of the runs ended since."""
    if history.pending is not None and not await _send_pending(connection, history):
        return
    history.take()
    if history.pending is not None:
        await _send_pending(connection, history)


async def history_loop(
    connection: Connection,
    *,
    worker_id: str,
    stats: WorkerStats,
    interval: float = HISTORY_INTERVAL,
    task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Every ``interval`` seconds, store the runs ended since the last stored sample (none
    ended: nothing is written); until cancelled, then once more, shielded and bounded.

    Counts from before the loop started are not this run's (a worker run again) and are
    left out. A failed publish is logged and its runs are kept for the next try.
    """
    history = _History(worker_id, stats)
    task_status.started()
    try:
        while True:
            await anyio.sleep(interval)
            await _flush(connection, history)
    finally:
        with anyio.CancelScope(shield=True), anyio.move_on_after(FINAL_SAMPLE_TIMEOUT) as scope:
            await _flush(connection, history)
        if scope.cancelled_caught:
            logger.warning("the last throughput sample of {} was not stored in time", worker_id)


# -- reading ------------------------------------------------------------------------------


async def read_samples(connection: Connection, since: datetime) -> list[Sample]:
    """Every worker's samples taken at ``since`` or later, in the order they were stored.

    A malformed one is skipped with a warning: one bad message must not hide the rest.
    """
    since = as_utc(since)
    admin = connection.transport.admin
    values = await connection.call(admin.read_samples, since - CLOCK_SKEW)
    samples = []
    for value in values:
        try:
            sample = decode_sample(value)
        except SerializationError as exc:
            logger.warning("skipping a throughput sample: {}", exc)
            continue
        if sample.at >= since:
            samples.append(sample)
    return samples


def _minute(at: datetime) -> datetime:
    return as_utc(at).replace(second=0, microsecond=0)


def per_minute(
    samples: Iterable[Sample], *, since: datetime, until: datetime, queue: str | None = None
) -> list[Bucket]:
    """One bucket per minute from ``since``'s minute to ``until``'s, oldest first, each the
    sum of the samples taken in it (of every queue, or of ``queue``); zero when none were."""
    first = _minute(since)
    count = max(0, (_minute(until) - first) // _MINUTE + 1)
    finished = [0] * count
    failed = [0] * count
    for sample in samples:
        index = (as_utc(sample.at) - first) // _MINUTE
        if not 0 <= index < count:
            continue
        if queue is None:
            finished[index] += sum(sample.finished.values())
            failed[index] += sum(sample.failed.values())
        else:
            finished[index] += sample.finished.get(queue, 0)
            failed[index] += sample.failed.get(queue, 0)
    return [Bucket(first + i * _MINUTE, finished[i], failed[i]) for i in range(count)]
