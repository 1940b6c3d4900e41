"""Every job naq still stores, read in one pass: for listing jobs by queue, state or function.

naq keeps no index of jobs. A job is stored in one of two places: a queued job only as its
message in the jobs stream (its record is written when a worker starts it), every later
state as its record in the ``naq_jobs`` bucket. A listing reads both: the bucket's last
record per job through a pull consumer, and the queued messages through batched direct gets
(a work-queue stream takes no second consumer on the subjects the workers consume).
"""

from __future__ import annotations

import json

import attrs

from . import _names as names
from ._jetstream import JetStream
from ._names import JOBS_BUCKET, JOBS_BUCKET_STREAM, JOBS_STREAM

__all__ = ["StoredJobs", "stored_jobs"]

_PAGE = 1000
"""Queued messages asked for in one direct get."""


@attrs.frozen
class StoredJobs:
    """Raw job data: ``records`` from the bucket (oldest write first) and ``queued`` job
    messages (oldest first, at most the limit asked for); ``more_queued`` when some were left."""

    records: list[bytes]
    queued: list[bytes]
    more_queued: bool


async def stored_jobs(jetstream: JetStream, queue: str | None, queued_limit: int) -> StoredJobs:
    """The records of ``queue`` (or all queues) and up to ``queued_limit`` queued messages."""
    token = queue or "*"
    msgs = await jetstream.latest_per_subject(JOBS_BUCKET_STREAM, f"$KV.{JOBS_BUCKET}.{token}.*")
    records = [msg.data for msg in msgs if msg.data]  # empty: a delete or purge marker
    queued: list[bytes] = []
    for subject in names.queued_subjects(queue):
        found, more = await _queued_messages(jetstream, subject, queued_limit - len(queued))
        queued += found
        if more:
            return StoredJobs(records, queued, True)
    return StoredJobs(records, queued, False)


async def _queued_messages(
    jetstream: JetStream, subject: str, limit: int
) -> tuple[list[bytes], bool]:
    """Job messages on ``subject`` from the start of the stream, a page of direct gets at a
    time; whether more were left when ``limit`` was reached."""
    found: list[bytes] = []
    start = 1
    while len(found) < limit:
        want = min(_PAGE, limit - len(found))
        request = json.dumps({"seq": start, "next_by_subj": subject, "batch": want}).encode()
        page = await jetstream.direct_get(JOBS_STREAM, [request])
        found += [msg.data for msg in page]
        last = (page[-1].headers or {}) if page else {}
        if not int(last.get("Nats-Num-Pending", 0)):
            return found, False
        start = int(last["Nats-Sequence"]) + 1
    return found, True
