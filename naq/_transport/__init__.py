"""Everything that touches nats-py, and the bridge that reaches it from any backend."""

from . import _names as names
from ._bridge import Bridge, ThreadBridge, bridge_for_current_backend
from ._lifecycle import DeadLetter as RawDeadLetter
from ._lifecycle import RawEvent
from ._names import check_job_id, check_queue_name
from ._nats import Delivery, NatsTransport, OutgoingJob, Settlement

__all__ = [
    "Bridge",
    "Delivery",
    "NatsTransport",
    "OutgoingJob",
    "RawDeadLetter",
    "RawEvent",
    "Settlement",
    "ThreadBridge",
    "bridge_for_current_backend",
    "check_job_id",
    "check_queue_name",
    "names",
]
