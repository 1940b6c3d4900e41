"""Everything that talks to NATS, and the bridge that reaches it from any backend.

The only import path into ``naq/_transport/`` for the rest of naq: core code holds a
``NatsTransport`` (with its stores ``admin`` and ``schedules``) and calls it through
``Connection.call``; on Trio the connection also opens the native calls.
"""

from . import _names as names
from ._admin import ConsumerStats, NatsAdmin, worker_key
from ._blocking_wire import BlockingPool
from ._bridge import Bridge, ThreadBridge, bridge_for_current_backend
from ._caller import CallerCalls
from ._deliveries import (
    RECORD_HEADROOM,
    Delivery,
    OutgoingJob,
    Settlement,
    delivery_headers,
)
from ._jetstream import StoredMessage
from ._job_listing import StoredJobs, stored_jobs
from ._locks import Locks
from ._names import check_job_id, check_priority, check_queue_name
from ._native import NativeCalls, open_native, wire_connect_kwargs
from ._nats import DeadLetter as RawDeadLetter
from ._nats import NatsTransport, RawEvent
from ._schedule_store import Fire, ScheduleStore, ServerFire, check_schedule_id, server_fire
from ._settle import transient_settle_error
from ._wipe import is_naq_stream, wipe_naq_streams
from ._wire import WireConnection

__all__ = [
    "RECORD_HEADROOM",
    "BlockingPool",
    "Bridge",
    "CallerCalls",
    "ConsumerStats",
    "Delivery",
    "Fire",
    "Locks",
    "NativeCalls",
    "NatsAdmin",
    "NatsTransport",
    "OutgoingJob",
    "RawDeadLetter",
    "RawEvent",
    "ScheduleStore",
    "ServerFire",
    "Settlement",
    "StoredJobs",
    "StoredMessage",
    "ThreadBridge",
    "WireConnection",
    "bridge_for_current_backend",
    "check_job_id",
    "check_priority",
    "check_queue_name",
    "check_schedule_id",
    "delivery_headers",
    "is_naq_stream",
    "names",
    "open_native",
    "server_fire",
    "stored_jobs",
    "transient_settle_error",
    "wipe_naq_streams",
    "wire_connect_kwargs",
    "worker_key",
]
