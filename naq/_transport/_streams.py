"""The configuration of each of naq's streams and buckets, in one place.

``JetStream.ensure_stream`` / ``ensure_bucket`` provision them; ``_names`` names them.
"""

from __future__ import annotations

from nats.js import api

from ._names import (
    DEAD_STREAM,
    DEPS_BUCKET,
    JOBS_BUCKET,
    JOBS_STREAM,
    LOCKS_STREAM,
    SCHEDULES_BUCKET,
    STATS_STREAM,
    STORED_RECORDS,
    WORKERS_BUCKET,
    dead_subject,
    jobs_stream_subjects,
    lock_subject,
    schedule_subject,
    stats_subject,
)

__all__ = [
    "JOBS_MAX_CONSUMERS",
    "STATS_MAX_AGE",
    "STATS_MAX_BYTES",
    "WORKER_MARKER_TTL",
    "dead_stream",
    "deps_bucket",
    "jobs_bucket",
    "jobs_stream",
    "locks_stream",
    "scheduled_jobs_stream",
    "schedules_bucket",
    "stats_stream",
    "workers_bucket",
]

JOBS_MAX_CONSUMERS = 100_000
"""Consumers the jobs stream takes: one per queue and priority (five lanes a queue). A stream
left at the server's default (-1) took only 1,000 on nats-server 2.15: 200 queues."""
WORKER_MARKER_TTL = 60
"""Seconds a worker's delete marker stays, so watchers see the exit, then the key is gone."""
STATS_MAX_AGE = 24 * 3600.0
"""Seconds throughput samples are kept: a day, far more than the dashboard's hour."""
STATS_MAX_BYTES = 256 * 1024 * 1024
"""Bytes the throughput samples may take at most; the oldest go first."""


def jobs_stream(replicas: int) -> api.StreamConfig:
    """Queued job messages: work-queue retention, found by id (direct get), 2 min dedupe."""
    return api.StreamConfig(
        name=JOBS_STREAM,
        subjects=jobs_stream_subjects(),
        allow_direct=True,
        retention=api.RetentionPolicy.WORK_QUEUE,
        storage=api.StorageType.FILE,
        duplicate_window=120.0,
        num_replicas=replicas,
        max_consumers=JOBS_MAX_CONSUMERS,
    )


def scheduled_jobs_stream(replicas: int) -> api.StreamConfig:
    """The jobs stream with server schedules on (``naq.sched.<id>``; nats-server 2.14+)."""
    config = jobs_stream(replicas)
    return config.evolve(
        subjects=[*(config.subjects or []), schedule_subject("*")], allow_msg_schedules=True
    )


def dead_stream(replicas: int) -> api.StreamConfig:
    """Dead letters: kept (limits retention) and found by job id (direct get)."""
    return api.StreamConfig(
        name=DEAD_STREAM,
        subjects=[dead_subject("*", "*")],
        allow_direct=True,
        retention=api.RetentionPolicy.LIMITS,
        storage=api.StorageType.FILE,
        num_replicas=replicas,
    )


def stats_stream(replicas: int) -> api.StreamConfig:
    """Throughput samples: kept a day within a size bound (the oldest are dropped), and
    deduplicated for two minutes (a retried sample is counted once)."""
    return api.StreamConfig(
        name=STATS_STREAM,
        subjects=[stats_subject(">")],
        retention=api.RetentionPolicy.LIMITS,
        storage=api.StorageType.FILE,
        max_age=STATS_MAX_AGE,
        max_bytes=STATS_MAX_BYTES,
        discard=api.DiscardPolicy.OLD,
        duplicate_window=120.0,
        num_replicas=replicas,
    )


def _file_bucket(
    bucket: str, replicas: int, *, direct: bool = True, republish: api.RePublish | None = None
) -> api.KeyValueConfig:
    return api.KeyValueConfig(
        bucket=bucket,
        history=1,
        storage=api.StorageType.FILE,
        direct=direct,
        republish=republish,
        replicas=replicas,
    )


def jobs_bucket(replicas: int) -> api.KeyValueConfig:
    """Job records. Waiters and event listeners hear of a write only once it is stored (the
    republish), so a read that follows a wake-up never sees an older record."""
    republish = api.RePublish(src=f"$KV.{JOBS_BUCKET}.>", dest=f"{STORED_RECORDS}.>")
    return _file_bucket(JOBS_BUCKET, replicas, republish=republish)


def deps_bucket(replicas: int) -> api.KeyValueConfig:
    """Dependency edges, read by wildcard direct gets."""
    return _file_bucket(DEPS_BUCKET, replicas)


def locks_stream(replicas: int) -> api.StreamConfig:
    """Cluster-wide locks: one message a subject, each with its own TTL, taken with
    compare-and-set and given back by deleting it (no marker left: free is "no message")."""
    return api.StreamConfig(
        name=LOCKS_STREAM,
        subjects=[lock_subject(">")],
        retention=api.RetentionPolicy.LIMITS,
        storage=api.StorageType.FILE,
        max_msgs_per_subject=1,
        allow_msg_ttl=True,
        allow_direct=True,
        num_replicas=replicas,
    )


def schedules_bucket(replicas: int) -> api.KeyValueConfig:
    """Schedule definitions, read and compare-and-set through nats-py's KeyValue."""
    return _file_bucket(SCHEDULES_BUCKET, replicas, direct=False)


def workers_bucket(replicas: int) -> api.KeyValueConfig:
    """Worker heartbeats: memory storage (beats are ephemeral), per-key TTLs, direct get on
    (the live heartbeats are read with one request), replicated like the other streams (a
    cluster that loses one node keeps listing its workers)."""
    return api.KeyValueConfig(
        bucket=WORKERS_BUCKET,
        history=1,
        storage=api.StorageType.MEMORY,
        limit_marker_ttl=WORKER_MARKER_TTL,
        direct=True,
        replicas=replicas,
    )
