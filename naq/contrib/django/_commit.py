"""Enqueue when the transaction commits: a job never runs before its rows exist, and never
for a transaction rolled back."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from asgiref.sync import sync_to_async
from django.db import transaction

from naq._ids import new_job_id
from naq._transport import check_job_id, check_queue_name

__all__ = ["aenqueue_on_commit", "enqueue_on_commit"]


def enqueue_on_commit(
    func: Callable[..., Any] | str,
    /,
    *args: Any,
    queue: str | None = None,
    job_id: str | None = None,
    using: str | None = None,
    client: Any = None,
    **kwargs: Any,
) -> str:
    """Enqueue ``func(*args, **kwargs)`` when the current transaction on ``using`` commits.

    Returns the job's id at once; outside a transaction (autocommit) the job is enqueued now.
    If the transaction rolls back, nothing is enqueued. ``queue`` defaults to
    ``settings.NAQ["QUEUE"]`` / ``NAQ_QUEUE``, else ``"default"``; ``client`` is a
    ``naq_sync.Client`` (default: naq_sync's default client). Other keyword arguments are
    ``naq_sync.enqueue``'s (job options such as ``retry``, and the function's arguments).
    A failed publish at commit raises from the commit, as Django's ``on_commit`` does (the
    transaction is committed by then).
    """
    queue = check_queue_name(queue or os.environ.get("NAQ_QUEUE") or "default")
    job_id = check_job_id(job_id) if job_id is not None else new_job_id()

    def publish() -> None:
        import naq_sync

        target = client if client is not None else naq_sync
        target.enqueue(func, *args, queue=queue, job_id=job_id, **kwargs)

    transaction.on_commit(publish, using=using)
    return job_id


async def aenqueue_on_commit(
    func: Callable[..., Any] | str,
    /,
    *args: Any,
    queue: str | None = None,
    job_id: str | None = None,
    using: str | None = None,
    client: Any = None,
    **kwargs: Any,
) -> str:
    """:func:`enqueue_on_commit` from async code: on the async ORM's thread, whose
    transaction it joins."""
    return await sync_to_async(enqueue_on_commit)(
        func, *args, queue=queue, job_id=job_id, using=using, client=client, **kwargs
    )
