"""naq_sync: naq for blocking code (Django and Flask views, scripts, notebooks).

    import naq_sync
    job = naq_sync.enqueue(send_mail, "a@b.c", queue="mail")
    job.result(timeout=10)

Every call runs the async core on one background event-loop thread per process. The
module-level functions use a default client connected on first use; ``naq_sync.Client``
gives an explicit one. The classes and functions are generated from naq's async ones
(``_generated.py``, by ``scripts/gen_naq_sync.py``), typed as they are: ``Job[R]``'s
``result()`` is what the job's function returns, and ``naq_sync.call(add, 1, 2)`` checks
the arguments of a job before it is enqueued with ``enqueue_call``.
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
    Unique,
    call,
)

from ._generated import (
    Admin,
    Client,
    EventStream,
    Job,
    Queue,
    cancel,
    cancel_schedule,
    dead_letters,
    default_client,
    delete_dead_letter,
    drain,
    enqueue,
    enqueue_at,
    enqueue_call,
    enqueue_in,
    enqueue_many,
    events,
    fetch_job,
    fetch_schedule,
    list_schedules,
    pause_schedule,
    queue,
    requeue_dead_letter,
    reschedule,
    resume_schedule,
    schedule,
)

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
    "Unique",
    "call",
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
