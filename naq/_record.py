"""The job record: one JSON document per job, stored as the queued message and in the KV bucket.

The record is the single description of a job: what to call, with which options, and what
happened to it. It is always JSON, whatever the serializer, so tools can read it safely; the
serializer only decides how the call and the result are encoded inside.
"""

from __future__ import annotations

import enum
import json
from datetime import datetime
from typing import Any, TypeVar

import attrs
import cattrs
from cattrs.preconf.json import make_converter

from ._errors import SerializationError
from ._retry import Retry
from ._time import as_utc

__all__ = [
    "ErrorInfo",
    "JobRecord",
    "JobStatus",
    "StatusChange",
    "decode_json",
    "decode_record",
    "encode_json",
    "encode_record",
]


class JobStatus(enum.StrEnum):
    """Where a job is in its life, in RQ's vocabulary."""

    QUEUED = "queued"
    SCHEDULED = "scheduled"
    DEFERRED = "deferred"
    STARTED = "started"
    FINISHED = "finished"
    FAILED = "failed"
    CANCELED = "canceled"

    @property
    def is_terminal(self) -> bool:
        """True when the job will not run again by itself."""
        return self in _TERMINAL


_TERMINAL = frozenset({JobStatus.FINISHED, JobStatus.FAILED, JobStatus.CANCELED})


@attrs.frozen
class ErrorInfo:
    """An exception raised by a job, kept as text so any reader can show it."""

    type: str
    message: str
    traceback: str


@attrs.frozen
class StatusChange:
    """One step of a job's history: the status it entered and when (UTC)."""

    status: JobStatus
    at: datetime


@attrs.frozen
class JobRecord:
    """Everything known about one job. Updated copies are made with ``attrs.evolve``."""

    id: str
    queue: str
    func_name: str
    serializer: str
    payload: Any
    status: JobStatus
    enqueued_at: datetime
    job_timeout: float | None = None
    retry: Retry | None = None
    result_ttl: float | None = None
    meta: dict[str, Any] = attrs.Factory(dict)
    attempts: int = 0
    started_at: datetime | None = None
    ended_at: datetime | None = None
    worker_id: str | None = None
    result: Any = None
    error: ErrorInfo | None = None
    failure_ttl: float | None = None
    ttl: float | None = None
    depends_on: tuple[str, ...] = ()
    allow_dependency_failures: bool = False
    progress: float | None = None
    history: tuple[StatusChange, ...] = ()

    def moved_to(self, status: JobStatus, at: datetime, **changes: Any) -> JobRecord:
        """A copy in ``status``, with the step added to ``history`` (and other changes)."""
        return attrs.evolve(
            self, status=status, history=(*self.history, StatusChange(status, at)), **changes
        )


def _make_converter() -> cattrs.Converter:
    converter = make_converter(omit_if_default=True, forbid_extra_keys=False)
    converter.register_unstructure_hook(datetime, lambda dt: as_utc(dt).isoformat())
    converter.register_structure_hook(datetime, lambda v, _: as_utc(datetime.fromisoformat(v)))
    converter.register_structure_hook(
        float | tuple[float, ...],
        lambda v, _: tuple(float(x) for x in v) if isinstance(v, list) else float(v),
    )
    # The history grows with every step: a direct hook keeps it cheap to write.
    converter.register_unstructure_hook_func(
        lambda kind: kind == tuple[StatusChange, ...],
        lambda steps: [
            {"status": step.status.value, "at": as_utc(step.at).isoformat()} for step in steps
        ],
    )
    converter.register_structure_hook_func(
        lambda kind: kind == tuple[StatusChange, ...],
        lambda steps, _: tuple(
            StatusChange(JobStatus(step["status"]), as_utc(datetime.fromisoformat(step["at"])))
            for step in steps
        ),
    )
    # ``Any`` fields hold already JSON-safe values; keep them as they are.
    converter.register_structure_hook(Any, lambda v, _: v)
    return converter


_converter = _make_converter()

T = TypeVar("T")


def encode_json(value: Any, converter: cattrs.Converter = _converter) -> bytes:
    """An attrs model as compact JSON bytes."""
    return json.dumps(converter.unstructure(value), separators=(",", ":")).encode()


def decode_json(
    data: bytes, kind: type[T], what: str, converter: cattrs.Converter = _converter
) -> T:
    """Parse JSON bytes into ``kind``, or raise SerializationError saying what is wrong."""
    try:
        return converter.structure(json.loads(data), kind)
    except cattrs.BaseValidationError as exc:
        details = "; ".join(cattrs.transform_error(exc))
        raise SerializationError(f"not {what}: {details}") from exc
    except (ValueError, TypeError, KeyError) as exc:
        raise SerializationError(f"not {what}: {exc}") from exc


def encode_record(record: JobRecord) -> bytes:
    """Serialize a record to compact JSON bytes."""
    return encode_json(record)


def decode_record(data: bytes) -> JobRecord:
    """Parse JSON bytes into a record, or raise SerializationError saying what is wrong."""
    return decode_json(data, JobRecord, "a naq job record")
