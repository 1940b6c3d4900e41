"""Schedules: delayed and recurring jobs, in one package.

- ``_timing``: the maths, pure (triggers, due times, catch-up, run ids);
- ``_definition``: the ``Schedule`` document and its state changes, pure;
- ``_manage``: creating and changing schedules (the Client's side);
- ``_claim``: the worker's claim of a server-fired run;
- ``_engine``: ``Scheduler``, the naq engine (``naq scheduler``).

Their NATS side is the transport's schedules store (``naq/_transport/_schedule_store.py``).
"""

from ._claim import claim_fired_run
from ._definition import Schedule, ScheduleStatus
from ._engine import Scheduler
from ._manage import Scheduling
from ._timing import Trigger, make_trigger

__all__ = [
    "Schedule",
    "ScheduleStatus",
    "Scheduler",
    "Scheduling",
    "Trigger",
    "claim_fired_run",
    "make_trigger",
]
