"""naq_sync: naq for blocking code (Django and Flask views, scripts, notebooks).

    import naq_sync
    job = naq_sync.enqueue(send_mail, "a@b.c", queue="mail")
    job.result(timeout=10)

Every call runs the async core on one background event-loop thread per process. The
module-level functions use a default client connected on first use; ``naq_sync.Client``
gives an explicit one.
"""

from typing import Any

from naq import (
    Call,
    ConfigurationError,
    ConnectOptions,
    EnqueueError,
    JobFailed,
    JobNotFound,
    JobStatus,
    NaqConnectionError,
    NaqError,
    ResultTimeout,
    Retry,
    Schedule,
    ScheduleNotFound,
    ScheduleStatus,
    SerializationError,
)

from ._classes import Client, Job, Queue
from ._default import default_client

__all__ = [
    "Call",
    "Client",
    "ConfigurationError",
    "ConnectOptions",
    "EnqueueError",
    "Job",
    "JobFailed",
    "JobNotFound",
    "JobStatus",
    "NaqConnectionError",
    "NaqError",
    "Queue",
    "ResultTimeout",
    "Retry",
    "Schedule",
    "ScheduleNotFound",
    "ScheduleStatus",
    "SerializationError",
    "default_client",
    "enqueue",
    "enqueue_at",
    "enqueue_call",
    "enqueue_in",
    "enqueue_many",
    "fetch_job",
    "queue",
    "schedule",
]


def enqueue(func: Any, /, *args: Any, **kwargs: Any) -> Job:
    """``naq.Client.enqueue`` on the default client, blocking; returns a naq_sync.Job."""
    return default_client().enqueue(func, *args, **kwargs)


def enqueue_call(func: Any, args: Any = (), kwargs: Any = None, **options: Any) -> Job:
    """``naq.Client.enqueue_call`` on the default client, blocking."""
    return default_client().enqueue_call(func, args, kwargs, **options)


def enqueue_many(calls: Any, **options: Any) -> list[Job]:
    """``naq.Client.enqueue_many`` on the default client, blocking."""
    return default_client().enqueue_many(calls, **options)


def enqueue_at(when: Any, func: Any, /, *args: Any, **kwargs: Any) -> Job:
    """``naq.Client.enqueue_at`` on the default client, blocking."""
    return default_client().enqueue_at(when, func, *args, **kwargs)


def enqueue_in(delay: Any, func: Any, /, *args: Any, **kwargs: Any) -> Job:
    """``naq.Client.enqueue_in`` on the default client, blocking."""
    return default_client().enqueue_in(delay, func, *args, **kwargs)


def schedule(func: Any, /, *args: Any, **kwargs: Any) -> Schedule:
    """``naq.Client.schedule`` on the default client, blocking."""
    return default_client().schedule(func, *args, **kwargs)


def fetch_job(job_id: str) -> Job:
    """``naq.Client.fetch_job`` on the default client, blocking."""
    return default_client().fetch_job(job_id)


def queue(name: str = "default") -> Queue:
    """A blocking handle on one queue of the default client."""
    return default_client().queue(name)
