"""naq: a job queue on NATS JetStream for asyncio, Trio and (via naq_sync) blocking code.

async with naq.Client() as client:
    job = await client.enqueue(resize, path, retry=naq.Retry(max=3))
    print(await job.result(timeout=30))
"""

from loguru import logger as _logger

from ._admin import Admin, LimitInfo, QueueInfo
from ._client import Call, Client, Queue, call
from ._context import JobContext, current_job
from ._dead_letters import DeadLetter
from ._errors import (
    ConfigurationError,
    EnqueueError,
    JobCanceled,
    JobFailed,
    JobNotFound,
    NaqConnectionError,
    NaqError,
    ResultTimeout,
    ScheduleNotFound,
    SerializationError,
)
from ._events import Event, EventStream
from ._heartbeat import WorkerInfo
from ._history import Bucket
from ._hooks import WorkerHooks
from ._job import Job
from ._metrics import WorkerMetrics
from ._record import ErrorInfo, JobRecord, JobStatus, StatusChange
from ._retry import Retry
from ._schedules import Schedule, Scheduler, ScheduleStatus
from ._serializers import JsonSerializer, PickleSerializer, Serializer
from ._settings import ConnectOptions
from ._tracing import disable_tracing, enable_tracing
from ._unique import Unique
from ._worker import Worker

__version__ = "0.1.0"

__all__ = [
    "Admin",
    "Bucket",
    "Call",
    "Client",
    "ConfigurationError",
    "ConnectOptions",
    "DeadLetter",
    "EnqueueError",
    "ErrorInfo",
    "Event",
    "EventStream",
    "Job",
    "JobCanceled",
    "JobContext",
    "JobFailed",
    "JobNotFound",
    "JobRecord",
    "JobStatus",
    "JsonSerializer",
    "LimitInfo",
    "NaqConnectionError",
    "NaqError",
    "PickleSerializer",
    "Queue",
    "QueueInfo",
    "ResultTimeout",
    "Retry",
    "Schedule",
    "ScheduleNotFound",
    "ScheduleStatus",
    "Scheduler",
    "SerializationError",
    "Serializer",
    "StatusChange",
    "Unique",
    "Worker",
    "WorkerHooks",
    "WorkerInfo",
    "WorkerMetrics",
    "__version__",
    "call",
    "current_job",
    "disable_tracing",
    "enable_tracing",
]

# A library must not print into its host's logs uninvited: the CLI enables naq's logging.
_logger.disable("naq")
