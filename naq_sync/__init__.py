"""naq_sync: naq for blocking code (Django and Flask views, scripts, notebooks).

    import naq_sync
    job = naq_sync.enqueue(send_mail, "a@b.c", queue="mail")
    job.result(timeout=10)

Every call runs the async core on one background event-loop thread per process. The
module-level functions use a default client connected on first use; ``naq_sync.Client``
gives an explicit one.
"""

from naq import (
    Call,
    ConfigurationError,
    EnqueueError,
    JobFailed,
    JobNotFound,
    JobStatus,
    NaqConnectionError,
    NaqError,
    ResultTimeout,
    Retry,
    SerializationError,
)

from ._classes import Client, Job, Queue
from ._default import default_client
from ._facade import forward

__all__ = [
    "Call",
    "Client",
    "ConfigurationError",
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
    "SerializationError",
    "default_client",
    "enqueue",
    "enqueue_call",
    "enqueue_many",
    "fetch_job",
    "queue",
]


enqueue = forward("enqueue", default_client, Client)
enqueue_call = forward("enqueue_call", default_client, Client)
enqueue_many = forward("enqueue_many", default_client, Client)
fetch_job = forward("fetch_job", default_client, Client)
queue = forward("queue", default_client, Client)
