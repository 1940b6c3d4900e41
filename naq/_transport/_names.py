"""Names of naq's JetStream streams, buckets, subjects and consumers, in one place."""

from __future__ import annotations

import re

from .._errors import ConfigurationError

__all__ = [
    "DEAD_STREAM",
    "DEPS_BUCKET",
    "DEPS_BUCKET_STREAM",
    "JOBS_BUCKET",
    "JOBS_BUCKET_STREAM",
    "JOBS_STREAM",
    "LOCKS_STREAM",
    "PRIORITIES",
    "SCHEDULES_BUCKET",
    "SCHEDULES_BUCKET_STREAM",
    "SCHEDULE_PREFIX",
    "STATS_STREAM",
    "STORED_RECORDS",
    "WORKERS_BUCKET",
    "WORKERS_BUCKET_STREAM",
    "any_record_subject",
    "cancel_subject",
    "check_job_id",
    "check_priority",
    "check_queue_name",
    "consumer_name",
    "dead_subject",
    "dependency_subject",
    "direct_get_subject",
    "job_subject",
    "jobs_stream_subjects",
    "lane",
    "lane_filters",
    "lane_of_consumer",
    "lane_priority",
    "lanes",
    "lock_subject",
    "next_message_subject",
    "purged_subject",
    "queue_filters",
    "queue_records_subject",
    "queue_subject",
    "queued_job_subject",
    "queued_subjects",
    "record_subject",
    "schedule_definition_subject",
    "schedule_subject",
    "stats_subject",
    "stored_record_subject",
    "stream_purge_subject",
    "worker_subject",
]

JOBS_STREAM = "NAQ_JOBS"
"""Queued job messages: ``naq.jobs.<queue>.<job id>``, work-queue retention."""
JOBS_BUCKET = "naq_jobs"
"""KV bucket of job records, keyed ``<queue>.<job id>``."""
JOBS_BUCKET_STREAM = f"KV_{JOBS_BUCKET}"
DEPS_BUCKET = "naq_deps"
"""KV bucket of dependency edges, keyed ``<dependency id>.<dependent id>``."""
DEPS_BUCKET_STREAM = f"KV_{DEPS_BUCKET}"
WORKERS_BUCKET = "naq_workers"
"""KV bucket of worker heartbeats, keyed by worker id; each entry expires with its TTL."""
WORKERS_BUCKET_STREAM = f"KV_{WORKERS_BUCKET}"
SCHEDULES_BUCKET = "naq_schedules"
"""KV bucket of schedule definitions, keyed by schedule id."""
SCHEDULES_BUCKET_STREAM = f"KV_{SCHEDULES_BUCKET}"
LOCKS_STREAM = "NAQ_LOCKS"
"""Cluster-wide locks, one message a subject: ``naq.locks.unique.<queue>.<digest>``,
``naq.locks.slot.<digest>.<n>``."""
SCHEDULE_PREFIX = "naq.sched."
"""Server schedules: one message per schedule on ``naq.sched.<id>`` in the jobs stream."""
DEAD_STREAM = "NAQ_DEAD"
"""Dead letters: ``naq.dead.<queue>.<job id>``, the original message plus ``Naq-Reason``."""
STATS_STREAM = "NAQ_STATS"
"""Throughput history: ``naq.stats.<worker key>``, one small sample per busy worker per
interval (``_history``), kept a day."""

_TOKEN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_JOB_ID = re.compile(r"^[A-Za-z0-9_=-]{1,128}$")


def check_queue_name(name: str) -> str:
    """A queue name is one NATS subject token: letters, digits, ``_`` and ``-``, at most 64."""
    if not isinstance(name, str) or not _TOKEN.match(name):
        raise ConfigurationError(
            f"invalid queue name {name!r}: use 1-64 letters, digits, '_' or '-'"
        )
    return name


def check_job_id(job_id: str) -> str:
    """A job id is a KV key and a subject token: letters, digits, ``_``, ``-`` and ``=``."""
    if not isinstance(job_id, str) or not _JOB_ID.match(job_id):
        raise ConfigurationError(
            f"invalid job id {job_id!r}: use 1-128 letters, digits, '_', '-' or '='"
        )
    return job_id


PRIORITIES = range(-2, 3)
"""Job priorities, lowest to highest; 0 is the default."""


def check_priority(priority: int) -> int:
    """A priority is a whole number from -2 (lowest) to 2 (highest)."""
    if isinstance(priority, bool) or not isinstance(priority, int) or priority not in PRIORITIES:
        raise ConfigurationError(
            f"priority must be a whole number from {PRIORITIES[0]} to {PRIORITIES[-1]}, "
            f"got {priority!r}"
        )
    return priority


_LANE_SUFFIXES = {str(p) for p in PRIORITIES if p}


def lane(queue: str, priority: int) -> str:
    """Where a queue's jobs of one priority wait: a subject token and a consumer of its own.

    Priority 0 is the queue itself (``emails``), so jobs without a priority are where they
    always were; the others are ``emails~2`` ... ``emails~-2`` (``~`` is not allowed in a
    queue name, so a lane never clashes with a queue).
    """
    return queue if priority == 0 else f"{queue}~{priority}"


def lanes(queue: str) -> list[str]:
    """A queue's lanes, highest priority first."""
    return [lane(queue, priority) for priority in reversed(PRIORITIES)]


def lane_priority(name: str) -> tuple[str, int]:
    """The queue and priority of a lane (``emails~2`` -> ``("emails", 2)``)."""
    queue, _, priority = name.partition("~")
    return queue, int(priority) if priority else 0


def queue_subject(queue: str) -> str:
    """The queue's own subject; also accepted from producers that do not name the job."""
    return f"naq.jobs.{queue}"


def job_subject(queue: str, job_id: str) -> str:
    """Where a job is enqueued: one subject per job, so a queued job can be found by id."""
    return f"naq.jobs.{queue}.{job_id}"


def queued_job_subject(job_id: str) -> str:
    """The job's subject in whichever queue it is (a wildcard for a direct get)."""
    return f"naq.jobs.*.{job_id}"


def lane_filters(lane: str) -> list[str]:
    """What a lane's consumer takes: its per-job subjects and the bare lane subject."""
    return [queue_subject(lane), job_subject(lane, "*")]


def queued_subjects(queue: str | None, job_id: str = "*") -> list[str]:
    """Where a queue's jobs wait, one subject per lane (every queue's when ``queue`` is None)."""
    lanes_of_queue = ["*"] if queue is None else lanes(queue)
    return [job_subject(name, job_id) for name in lanes_of_queue]


def queue_filters(queue: str) -> list[str]:
    """Every subject of a queue's jobs, in all its lanes (to count or purge them)."""
    return [subject for name in lanes(queue) for subject in lane_filters(name)]


def jobs_stream_subjects() -> list[str]:
    return [queue_subject("*"), job_subject("*", "*")]


def dead_subject(queue: str, job_id: str) -> str:
    """A dead letter, findable by job id with a wildcard direct get."""
    return f"naq.dead.{queue}.{job_id}"


def record_subject(queue: str, job_id: str) -> str:
    """A job's record: keyed by queue too, so a queue's records can be watched or listed."""
    return f"$KV.{JOBS_BUCKET}.{queue}.{job_id}"


STORED_RECORDS = "naq.records"
"""Prefix the server republishes record writes under once they are stored."""


def stored_record_subject(queue: str, job_id: str) -> str:
    """Where the server republishes a record write once it is stored (wake-ups, events)."""
    return f"{STORED_RECORDS}.{queue}.{job_id}"


def any_record_subject(job_id: str) -> str:
    """The job's record in whichever queue (a wildcard for a direct get or subscription)."""
    return f"$KV.{JOBS_BUCKET}.*.{job_id}"


def queue_records_subject(queue: str) -> str:
    """Every record of a queue (``*`` for all queues)."""
    return f"$KV.{JOBS_BUCKET}.{queue}.*"


def dependency_subject(dependency_id: str, dependent_id: str) -> str:
    return f"$KV.{DEPS_BUCKET}.{dependency_id}.{dependent_id}"


def cancel_subject(job_id: str) -> str:
    """Core NATS notice to workers that a job was cancelled."""
    return f"naq.cancel.{job_id}"


def purged_subject(queue: str) -> str:
    """Core NATS notice that a queue was purged (``*``: any queue); its body is the time."""
    return f"naq.purged.{queue}"


def lock_subject(key: str) -> str:
    """A lock's subject in the locks stream."""
    return f"naq.locks.{key}"


def consumer_name(queue: str) -> str:
    return f"naq_{queue}"


def lane_of_consumer(name: str) -> str | None:
    """The lane a consumer serves, when it is one of naq's queue consumers."""
    if not name.startswith("naq_"):
        return None
    queue, _, priority = name[4:].partition("~")
    if not _TOKEN.match(queue) or (priority and priority not in _LANE_SUFFIXES):
        return None
    return name[4:]


def schedule_subject(schedule_id: str) -> str:
    """The server schedule's message (``Nats-Schedule``), in the jobs stream."""
    return SCHEDULE_PREFIX + schedule_id


def schedule_definition_subject(schedule_id: str) -> str:
    """A schedule's definition in the schedules bucket (its KV key's subject)."""
    return f"$KV.{SCHEDULES_BUCKET}.{schedule_id}"


def worker_subject(key: str) -> str:
    """A worker's heartbeat in the workers bucket (``*`` or ``>``: every worker)."""
    return f"$KV.{WORKERS_BUCKET}.{key}"


def stats_subject(key: str) -> str:
    """A worker's throughput samples (``>``: every worker's); ``key`` as ``worker_key`` makes
    it from the worker id (which may hold dots, so ``*`` would miss some)."""
    return f"naq.stats.{key}"


def direct_get_subject(stream: str) -> str:
    """JetStream's direct-get API of a stream (requests answered by any replica)."""
    return f"$JS.API.DIRECT.GET.{stream}"


def next_message_subject(stream: str, consumer: str) -> str:
    """JetStream's pull request API of a durable consumer."""
    return f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{consumer}"


def stream_purge_subject(stream: str) -> str:
    """JetStream's purge API of a stream."""
    return f"$JS.API.STREAM.PURGE.{stream}"
