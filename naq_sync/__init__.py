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

from ._classes import Admin, Client, EventStream, Job, Queue
from ._default import default_client
from ._facade import forward

__all__ = [
    "Admin",
    "Call",
    "Client",
    "ConfigurationError",
    "ConnectOptions",
    "EnqueueError",
    "EventStream",
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
    "cancel",
    "cancel_schedule",
    "dead_letters",
    "default_client",
    "delete_dead_letter",
    "drain",
    "enqueue",
    "enqueue_at",
    "enqueue_call",
    "enqueue_in",
    "enqueue_many",
    "events",
    "fetch_job",
    "fetch_schedule",
    "list_schedules",
    "pause_schedule",
    "queue",
    "requeue_dead_letter",
    "reschedule",
    "resume_schedule",
    "schedule",
]


# The default client's methods as module functions, with their exact signatures.
cancel = forward("cancel", default_client, Client)
cancel_schedule = forward("cancel_schedule", default_client, Client)
dead_letters = forward("dead_letters", default_client, Client)
delete_dead_letter = forward("delete_dead_letter", default_client, Client)
drain = forward("drain", default_client, Client)
enqueue = forward("enqueue", default_client, Client)
enqueue_at = forward("enqueue_at", default_client, Client)
enqueue_call = forward("enqueue_call", default_client, Client)
enqueue_in = forward("enqueue_in", default_client, Client)
enqueue_many = forward("enqueue_many", default_client, Client)
events = forward("events", default_client, Client)
fetch_job = forward("fetch_job", default_client, Client)
fetch_schedule = forward("fetch_schedule", default_client, Client)
list_schedules = forward("list_schedules", default_client, Client)
pause_schedule = forward("pause_schedule", default_client, Client)
queue = forward("queue", default_client, Client)
requeue_dead_letter = forward("requeue_dead_letter", default_client, Client)
reschedule = forward("reschedule", default_client, Client)
resume_schedule = forward("resume_schedule", default_client, Client)
schedule = forward("schedule", default_client, Client)
