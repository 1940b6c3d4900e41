"""naq's exceptions: one root, so ``except naq.NaqError`` catches everything naq raises.

NaqError
├── ConfigurationError (ValueError)   bad option, queue name or function reference
├── SerializationError (TypeError)    a value the serializer cannot encode or decode
├── NaqConnectionError (ConnectionError)  NATS unreachable or JetStream unavailable
├── EnqueueError                      some jobs of an enqueue_many were not stored
├── JobNotFound (LookupError)         no record for that job id (never existed or expired)
│   └── ScheduleNotFound              no schedule or delayed job with that id
├── ResultTimeout (TimeoutError)      waiting for a result took longer than asked
└── JobFailed                         the job raised; carries the remote error
    └── JobCanceled                   the job was canceled (on request, ttl, failed dependency)
"""

from __future__ import annotations

__all__ = [
    "ConfigurationError",
    "EnqueueError",
    "JobCanceled",
    "JobFailed",
    "JobNotFound",
    "NaqConnectionError",
    "NaqError",
    "ResultTimeout",
    "ScheduleNotFound",
    "SerializationError",
]


class NaqError(Exception):
    """Root of every exception naq raises."""


class ConfigurationError(NaqError, ValueError):
    """An option, queue name or function reference is invalid."""


class SerializationError(NaqError, TypeError):
    """A value cannot be encoded (at enqueue) or decoded (in the worker)."""


class NaqConnectionError(NaqError, ConnectionError):
    """The NATS server cannot be reached, or JetStream is not enabled on it."""


class EnqueueError(NaqError):
    """Some jobs of a batch were not confirmed by the server; ``failed_ids`` names them."""

    def __init__(self, failures: list[tuple[str, NaqError]], total: int) -> None:
        job_id, error = failures[0]
        super().__init__(
            f"{len(failures)} of {total} jobs were not confirmed (first: {job_id}: {error}); "
            "enqueue them again with the same ids to be sure each runs once"
        )
        self.failed_ids = [job_id for job_id, _ in failures]
        self.errors = dict(failures)


class JobNotFound(NaqError, LookupError):
    """No record exists for the job id: it never existed or its record expired."""


class ScheduleNotFound(JobNotFound):
    """No schedule (or delayed job) exists with that id."""


class ResultTimeout(NaqError, TimeoutError):
    """The job did not finish within the time the caller was willing to wait."""


class JobFailed(NaqError):
    """The job raised in the worker; ``exc_type``, ``message`` and ``traceback`` describe it."""

    def __init__(self, job_id: str, exc_type: str, message: str, traceback: str) -> None:
        super().__init__(f"job {job_id} failed: {exc_type}: {message}")
        self.job_id = job_id
        self.exc_type = exc_type
        self.message = message
        self.traceback = traceback


class JobCanceled(JobFailed):
    """The job was canceled: on request, past its ttl, or because a dependency failed."""

    def __init__(self, job_id: str, exc_type: str, message: str, traceback: str) -> None:
        super().__init__(job_id, exc_type, message, traceback)
        why = message if exc_type == "JobCanceled" else f"{exc_type}: {message}"
        self.args = (f"job {job_id} was canceled: {why}",)
