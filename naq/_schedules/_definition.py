"""The schedule definition (what ``naq_schedules`` stores) and its state changes, pure.

A ``Schedule`` is one JSON document: the trigger, the job to run (a template job record),
the engine that fires it, its status and its run count. Every change is a new copy made
here from the old one, and the caller stores it with a compare-and-set on the KV
revision it read, so concurrent changes (two schedulers, a pause racing a run) never
overwrite each other: the loser re-reads and decides again.
"""

from __future__ import annotations

import enum
from datetime import datetime

import attrs

from .._errors import ConfigurationError
from .._record import JobRecord, JobStatus, _make_converter, decode_json, encode_json
from ._timing import Trigger, first_due, next_due, run_job_id

__all__ = [
    "Schedule",
    "ScheduleStatus",
    "claim_server_run",
    "decode_schedule",
    "encode_schedule",
    "fire",
    "paused",
    "rescheduled",
    "resumed",
    "with_status",
]

_RECENT_CLAIMS = 32


class ScheduleStatus(enum.StrEnum):
    """``active`` fires when due; ``paused`` does not until resumed; the others are final."""

    ACTIVE = "active"
    PAUSED = "paused"
    COMPLETED = "completed"
    CANCELED = "canceled"

    @property
    def is_final(self) -> bool:
        return self in (ScheduleStatus.COMPLETED, ScheduleStatus.CANCELED)


@attrs.frozen(repr=False)
class Schedule:
    """A delayed or recurring job, as stored in the ``naq_schedules`` bucket.

    ``engine`` is ``"server"`` (a JetStream message schedule fires it) or ``"naq"`` (a
    ``naq scheduler`` process fires it). ``next_run`` and ``last_run`` are UTC; ``runs``
    counts runs enqueued (naq engine) or picked up by a worker (server engine).
    ``one_off`` marks an ``enqueue_at``/``enqueue_in`` job: its only run has the
    schedule's own id as job id.
    """

    id: str
    queue: str
    func_name: str
    trigger: Trigger
    engine: str
    template: JobRecord
    status: ScheduleStatus = ScheduleStatus.ACTIVE
    repeat: int | None = None
    one_off: bool = False
    next_run: datetime | None = None
    runs: int = 0
    last_run: datetime | None = None
    last_job_id: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    claims: tuple[tuple[int, str], ...] = ()
    """Server engine: recently claimed (stream sequence, job id), so a redelivered run
    keeps its job id and is not counted twice."""

    @property
    def cron(self) -> str | None:
        return self.trigger.cron

    @property
    def interval(self) -> float | None:
        return self.trigger.interval

    @property
    def at(self) -> datetime | None:
        return self.trigger.at

    @property
    def timezone(self) -> str:
        return self.trigger.timezone

    def describe(self) -> str:
        """The trigger in short human form, plus the repeat limit."""
        text = self.trigger.describe()
        return f"{text} x{self.repeat}" if self.repeat is not None else text

    def __repr__(self) -> str:
        """One short line (the definition holds a whole job record, too long to show)."""
        due = f", next {self.next_run.isoformat()}" if self.next_run is not None else ""
        return (
            f"<naq.Schedule {self.id} {self.describe()} {self.status.value}{due}, "
            f"{self.runs} run(s)>"
        )


_converter = _make_converter()


def encode_schedule(schedule: Schedule) -> bytes:
    return encode_json(schedule, _converter)


def decode_schedule(data: bytes) -> Schedule:
    return decode_json(data, Schedule, "a naq schedule", _converter)


def _exhausted(schedule: Schedule, runs: int) -> bool:
    return schedule.one_off or (schedule.repeat is not None and runs >= schedule.repeat)


def fire(schedule: Schedule, now: datetime) -> tuple[Schedule, JobRecord]:
    """naq engine: the schedule after its due run is enqueued, and that run's job record."""
    due = schedule.next_run
    assert due is not None and schedule.status is ScheduleStatus.ACTIVE
    job_id = schedule.id if schedule.one_off else run_job_id(schedule.id, due)
    runs = schedule.runs + 1
    following = None if _exhausted(schedule, runs) else next_due(schedule.trigger, due, now)
    updated = attrs.evolve(
        schedule,
        runs=runs,
        last_run=due,
        last_job_id=job_id,
        next_run=following,
        status=ScheduleStatus.ACTIVE if following else ScheduleStatus.COMPLETED,
        updated_at=now,
    )
    record = attrs.evolve(schedule.template, id=job_id, status=JobStatus.QUEUED, enqueued_at=now)
    return updated, record


def claim_server_run(
    schedule: Schedule, seq: int, following: datetime | None, now: datetime
) -> tuple[Schedule | None, str | None]:
    """Server engine: a worker picked up the run the server produced as stream message ``seq``.

    Returns the updated schedule (None: nothing to store) and the run's job id (None:
    skip the run, because the schedule was canceled or has made its ``repeat`` runs).
    ``following`` is the server's ``Nats-Schedule-Next`` (None once it purged itself).
    """
    for claimed_seq, job_id in schedule.claims:
        if claimed_seq == seq:  # a redelivery of a run already claimed: same job id
            return None, job_id
    if schedule.status.is_final:
        return None, None
    due = schedule.next_run or now
    job_id = schedule.id if schedule.one_off else run_job_id(schedule.id, due)
    runs = schedule.runs + 1
    done = _exhausted(schedule, runs) or following is None
    status = ScheduleStatus.COMPLETED if done else schedule.status
    updated = attrs.evolve(
        schedule,
        runs=runs,
        last_run=due,
        last_job_id=job_id,
        next_run=None if done or status is ScheduleStatus.PAUSED else following,
        status=status,
        updated_at=now,
        claims=(*schedule.claims, (seq, job_id))[-_RECENT_CLAIMS:],
    )
    return updated, job_id


def _changeable(schedule: Schedule, action: str) -> None:
    if schedule.status.is_final:
        raise ConfigurationError(
            f"cannot {action} schedule {schedule.id!r}: it is {schedule.status.value}"
        )


def paused(schedule: Schedule, now: datetime) -> Schedule:
    _changeable(schedule, "pause")
    return attrs.evolve(schedule, status=ScheduleStatus.PAUSED, next_run=None, updated_at=now)


def resumed(schedule: Schedule, now: datetime) -> Schedule:
    """Active again; a repeating schedule restarts from now, an ``at`` keeps its time."""
    _changeable(schedule, "resume")
    return attrs.evolve(
        schedule,
        status=ScheduleStatus.ACTIVE,
        next_run=first_due(schedule.trigger, now),
        updated_at=now,
    )


def rescheduled(schedule: Schedule, trigger: Trigger, now: datetime) -> Schedule:
    """A new trigger; a paused schedule stays paused (with no next run) until resumed."""
    _changeable(schedule, "reschedule")
    is_paused = schedule.status is ScheduleStatus.PAUSED
    return attrs.evolve(
        schedule,
        trigger=trigger,
        next_run=None if is_paused else first_due(trigger, now),
        updated_at=now,
    )


def with_status(schedule: Schedule, status: ScheduleStatus, now: datetime) -> Schedule:
    return attrs.evolve(schedule, status=status, next_run=None, updated_at=now)
