"""The job record: one JSON document per job, stored as the queued message and in the KV bucket.

The record is the single description of a job: what to call, with which options, and what
happened to it. It is always JSON, whatever the serializer, so tools can read it safely; the
serializer only decides how the call and the result are encoded inside.
"""

from __future__ import annotations

import enum
import json
import math
import operator
from datetime import UTC, datetime
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
    "keep_for",
]


def keep_for(ttl: float | None, default: float | None) -> float | None:
    """Seconds to keep an ended record: ``default`` if unset, -1 forever, else at least 1 s."""
    if ttl is None:
        ttl = default
    if ttl is None or ttl < 0:
        return None
    return float(max(1, math.ceil(ttl)))


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


@attrs.define(repr=False)
class JobRecord:
    """Everything known about one job: a snapshot, never changed once made.

    Updated copies are made with :meth:`moved_to` (or ``attrs.evolve``). The class is not
    declared frozen only because a frozen attrs class takes five times as long to create,
    and a worker creates three records per job.
    """

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
    trace: dict[str, str] = attrs.Factory(dict)
    """The enqueue's trace context (W3C headers) of a job that waits for dependencies: its
    job message is published later, by whoever releases it, and carries it then."""
    unique: str | None = None
    """How the job was kept unique (``queued``, ``active``, ``throttle 60s``, ``debounce
    5s``), or None."""
    unique_key: str | None = None
    """The key it was kept unique by (given, or its function and arguments)."""
    max_running: int | None = None
    """At most this many jobs with its ``limit_key`` run at once, across all workers."""
    rate_limit: str | None = None
    """At most this many starts per period with its ``limit_key`` (``"5/s"``), all workers."""
    limit_key: str | None = None
    """The key its limits count by (given, or its function's name)."""
    priority: int = 0
    """From -2 to 2: a worker takes a queue's higher-priority jobs first (its lane)."""

    def __repr__(self) -> str:
        """One short line: the payload and result may be large."""
        return f"<naq.JobRecord {self.id} {self.status.value} {self.func_name} on {self.queue}>"

    def moved_to(self, status: JobStatus, at: datetime, **changes: Any) -> JobRecord:
        """A copy in ``status``, with the step added to ``history`` (and other changes)."""
        values = list(_all_fields(self))  # positional: twice as fast as attrs.evolve
        for name, value in changes.items():
            values[_FIELD_INDEX[name]] = value
        values[_FIELD_INDEX["status"]] = status
        values[_FIELD_INDEX["history"]] = (*self.history, StatusChange(status, at))
        return JobRecord(*values)


_FIELD_INDEX = {field.name: i for i, field in enumerate(attrs.fields(JobRecord))}
_all_fields = operator.attrgetter(*_FIELD_INDEX)


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
    """Serialize a record to compact JSON bytes (what the cattrs converter writes, faster).

    Records are written twice per job on the worker's hot path, so this builds the JSON
    object by hand; the converter stays the definition for everything else.
    """
    data: dict[str, Any] = {
        "id": record.id,
        "queue": record.queue,
        "func_name": record.func_name,
        "serializer": record.serializer,
        "payload": record.payload,
        "status": record.status,  # a StrEnum: JSON writes its value
        "enqueued_at": _iso(record.enqueued_at),
    }
    if record.job_timeout is not None:
        data["job_timeout"] = record.job_timeout
    if record.retry is not None:
        data["retry"] = _converter.unstructure(record.retry)
    if record.result_ttl is not None:
        data["result_ttl"] = record.result_ttl
    if record.meta:
        data["meta"] = record.meta
    if record.attempts:
        data["attempts"] = record.attempts
    if record.started_at is not None:
        data["started_at"] = _iso(record.started_at)
    if record.ended_at is not None:
        data["ended_at"] = _iso(record.ended_at)
    if record.worker_id is not None:
        data["worker_id"] = record.worker_id
    if record.result is not None:
        data["result"] = record.result
    if record.error is not None:
        error = record.error
        data["error"] = {"type": error.type, "message": error.message, "traceback": error.traceback}
    if record.failure_ttl is not None:
        data["failure_ttl"] = record.failure_ttl
    if record.ttl is not None:
        data["ttl"] = record.ttl
    if record.depends_on:
        data["depends_on"] = list(record.depends_on)
    if record.allow_dependency_failures:
        data["allow_dependency_failures"] = True
    if record.progress is not None:
        data["progress"] = record.progress
    if record.history:
        # Steps share their datetimes with the fields above: format each one once.
        known = {id(record.enqueued_at): data["enqueued_at"]}
        if record.started_at is not None:
            known[id(record.started_at)] = data["started_at"]
        if record.ended_at is not None:
            known[id(record.ended_at)] = data["ended_at"]
        data["history"] = [
            {"status": s.status, "at": known.get(id(s.at)) or _iso(s.at)} for s in record.history
        ]
    if record.trace:
        data["trace"] = record.trace
    if record.unique is not None:
        data["unique"] = record.unique
    if record.unique_key is not None:
        data["unique_key"] = record.unique_key
    if record.max_running is not None:
        data["max_running"] = record.max_running
    if record.rate_limit is not None:
        data["rate_limit"] = record.rate_limit
    if record.limit_key is not None:
        data["limit_key"] = record.limit_key
    if record.priority:
        data["priority"] = record.priority
    return _dumps(data).encode()


def decode_record(data: bytes) -> JobRecord:
    """Parse JSON bytes into a record, or raise SerializationError saying what is wrong.

    A well-formed record takes a direct path; anything else goes through the converter,
    which accepts what it accepts and explains what it refuses.
    """
    try:
        return _record_from_dict(json.loads(data.decode()))
    except Exception:  # noqa: BLE001 - the converter below decides, and says why
        return decode_json(data, JobRecord, "a naq job record")


def _iso(value: datetime) -> str:
    return (value if value.tzinfo is UTC else as_utc(value)).isoformat()


def _utc(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    return value if value.tzinfo is UTC else as_utc(value)


def _utc_once(text: str, seen: dict[str, datetime]) -> datetime:
    """:func:`_utc`, one object per text: the encoder then formats a shared time once."""
    found = seen.get(text)
    if found is None:
        found = seen[text] = _utc(text)
    return found


def _optional(kind: type, value: Any) -> Any:
    if value is None or type(value) is kind:
        return value
    if kind is float and type(value) is int:
        return float(value)
    raise TypeError(f"expected {kind.__name__}, got {value!r}")


_dumps = json.JSONEncoder(separators=(",", ":")).encode
_STATUSES = {status.value: status for status in JobStatus}
_STRINGS = ("id", "queue", "func_name", "serializer")


def _record_from_dict(raw: dict[str, Any]) -> JobRecord:
    """The common case of :func:`decode_record`; raises on anything it does not expect."""
    for key in _STRINGS:
        if type(raw[key]) is not str:
            raise TypeError(key)
    meta = raw.get("meta", {})
    depends_on = raw.get("depends_on", ())
    if type(meta) is not dict or any(type(d) is not str for d in depends_on):
        raise TypeError("meta or depends_on")
    trace = raw.get("trace", {})
    if type(trace) is not dict or any(type(v) is not str for v in trace.values()):
        raise TypeError("trace")
    error = raw.get("error")
    retry = raw.get("retry")
    allow_failures = raw.get("allow_dependency_failures", False)
    if type(allow_failures) is not bool:
        raise TypeError("allow_dependency_failures")
    attempts = raw.get("attempts", 0)
    if type(attempts) is not int:
        raise TypeError("attempts")
    started_at = raw.get("started_at")
    ended_at = raw.get("ended_at")
    times: dict[str, datetime] = {}  # history steps repeat the times above: parse each once
    return JobRecord(
        id=raw["id"],
        queue=raw["queue"],
        func_name=raw["func_name"],
        serializer=raw["serializer"],
        payload=raw["payload"],
        status=_STATUSES[raw["status"]],
        enqueued_at=_utc_once(raw["enqueued_at"], times),
        job_timeout=_optional(float, raw.get("job_timeout")),
        retry=None if retry is None else _converter.structure(retry, Retry),
        result_ttl=_optional(float, raw.get("result_ttl")),
        meta=meta,
        attempts=attempts,
        started_at=None if started_at is None else _utc_once(started_at, times),
        ended_at=None if ended_at is None else _utc_once(ended_at, times),
        worker_id=_optional(str, raw.get("worker_id")),
        result=raw.get("result"),
        error=None
        if error is None
        else ErrorInfo(
            _optional(str, error["type"]),
            _optional(str, error["message"]),
            _optional(str, error["traceback"]),
        ),
        failure_ttl=_optional(float, raw.get("failure_ttl")),
        ttl=_optional(float, raw.get("ttl")),
        depends_on=tuple(depends_on),
        allow_dependency_failures=allow_failures,
        progress=_optional(float, raw.get("progress")),
        history=tuple(
            StatusChange(_STATUSES[step["status"]], _utc_once(step["at"], times))
            for step in raw.get("history", ())
        ),
        trace=trace,
        unique=_optional(str, raw.get("unique")),
        unique_key=_optional(str, raw.get("unique_key")),
        max_running=_optional(int, raw.get("max_running")),
        rate_limit=_optional(str, raw.get("rate_limit")),
        limit_key=_optional(str, raw.get("limit_key")),
        priority=_optional(int, raw.get("priority")) or 0,
    )
