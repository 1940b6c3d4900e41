"""naq: a job queue on NATS JetStream for asyncio, Trio and (via naq_sync) blocking code.

async with naq.Client() as client:
    job = await client.enqueue(resize, path, retry=naq.Retry(max=3))
    print(await job.result(timeout=30))
"""

from loguru import logger as _logger

from ._client import Client, Queue
from ._errors import (
    ConfigurationError,
    JobFailed,
    JobNotFound,
    NaqConnectionError,
    NaqError,
    ResultTimeout,
    ScheduleNotFound,
    SerializationError,
)
from ._job import Job
from ._record import ErrorInfo, JobRecord, JobStatus
from ._retry import Retry
from ._scheduler import Scheduler
from ._schedules import Schedule, ScheduleStatus
from ._serializers import JsonSerializer, PickleSerializer, Serializer
from ._worker import Worker

__version__ = "0.1.0"

__all__ = [
    "Client",
    "ConfigurationError",
    "ErrorInfo",
    "Job",
    "JobFailed",
    "JobNotFound",
    "JobRecord",
    "JobStatus",
    "JsonSerializer",
    "NaqConnectionError",
    "NaqError",
    "PickleSerializer",
    "Queue",
    "ResultTimeout",
    "Retry",
    "Schedule",
    "ScheduleNotFound",
    "ScheduleStatus",
    "Scheduler",
    "SerializationError",
    "Serializer",
    "Worker",
    "__version__",
]

# A library must not print into its host's logs uninvited: the CLI enables naq's logging.
_logger.disable("naq")
