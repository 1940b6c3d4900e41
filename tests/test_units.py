"""Pure logic, no server: retry maths, records and UTC, serializers, the public API."""

from __future__ import annotations

import random
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import attrs
import pytest

import naq
import naq_sync
from naq._record import (
    ErrorInfo,
    StatusChange,
    decode_json,
    decode_record,
    encode_json,
    encode_record,
)
from naq._serializers import JsonSerializer, PickleSerializer, serializer_for_record
from tests import jobs


class TestRetry:
    def test_fixed_interval(self):
        assert [naq.Retry(max=3, interval=2).delay(n) for n in (1, 2, 3)] == [2, 2, 2]

    def test_interval_list_repeats_last(self):
        retry = naq.Retry(max=5, interval=[1, 5, 10])
        assert [retry.delay(n) for n in range(1, 6)] == [1, 5, 10, 10, 10]

    def test_exponential_backoff_capped(self):
        retry = naq.Retry(max=6, interval=1, backoff=2, max_interval=10)
        assert [retry.delay(n) for n in range(1, 7)] == [1, 2, 4, 8, 10, 10]

    def test_jitter_stays_within_bounds(self):
        retry = naq.Retry(max=1, interval=10, jitter=0.5)
        delays = {retry.delay(1, random.Random(seed)) for seed in range(50)}
        assert all(5 <= d <= 10 for d in delays)
        assert len(delays) > 10

    @pytest.mark.parametrize(
        "kwargs",
        [{"max": -1}, {"interval": -1}, {"interval": []}, {"backoff": 0.5}, {"jitter": 2}],
    )
    def test_invalid(self, kwargs):
        with pytest.raises(naq.ConfigurationError):
            naq.Retry(**kwargs)


class TestRecord:
    def _record(self, **changes):
        fields = {
            "id": "abc",
            "queue": "q",
            "func_name": "m:f",
            "serializer": "json",
            "payload": {"args": [1], "kwargs": {}},
            "status": naq.JobStatus.QUEUED,
            "enqueued_at": datetime(2026, 1, 1, 12, 0, tzinfo=timezone(timedelta(hours=2))),
            "retry": naq.Retry(max=2, interval=[1, 2]),
        }
        return naq.JobRecord(**{**fields, **changes})

    def test_round_trip_is_utc(self):
        decoded = decode_record(encode_record(self._record()))
        assert decoded.enqueued_at == datetime(2026, 1, 1, 10, 0, tzinfo=UTC)
        assert decoded.enqueued_at.utcoffset() == timedelta(0)
        assert decoded.retry == naq.Retry(max=2, interval=(1, 2))

    def test_naive_datetime_is_taken_as_utc(self):
        naive = self._record(enqueued_at=datetime(2026, 1, 1, 12, 0))
        decoded = decode_record(encode_record(naive))
        assert decoded.enqueued_at == datetime(2026, 1, 1, 12, 0, tzinfo=UTC)

    # Every field of the record (and of the classes inside it) away from its default: the
    # parity tests below take their field list from attrs, so a field added to JobRecord
    # fails them until it is given a value here and the fast codec is checked with it.
    _ENQUEUED = datetime(2026, 1, 1, 12, 0, tzinfo=timezone(timedelta(hours=2)))
    _STARTED = datetime(2026, 1, 1, 12, 0, 1, 5, tzinfo=UTC)
    _ENDED = datetime(2026, 1, 1, 12, 0, 2, tzinfo=timezone(timedelta(hours=-5)))
    NON_DEFAULT: Mapping[str, Any] = {
        "id": "abc",
        "queue": "q",
        "func_name": "m:f",
        "serializer": "json",
        "payload": {"args": [1, "é", None, [2.5]], "kwargs": {"k": {"n": True}}},
        "status": naq.JobStatus.FAILED,
        "enqueued_at": _ENQUEUED,
        "job_timeout": 5.0,
        "retry": naq.Retry(max=2, interval=[1, 2], backoff=2.0, max_interval=60.0, jitter=0.5),
        "result_ttl": -1.0,
        "meta": {"k": [1, {"a": None}]},
        "attempts": 2,
        "started_at": _STARTED,
        "ended_at": _ENDED,
        "worker_id": "w1",
        "result": {"value": [1, "two"]},
        "error": ErrorInfo("ValueError", "bad", "Traceback ..."),
        "failure_ttl": 60.0,
        "ttl": 30.0,
        "depends_on": ("a", "b"),
        "allow_dependency_failures": True,
        "progress": 0.5,
        "history": (
            StatusChange(naq.JobStatus.QUEUED, _ENQUEUED),
            StatusChange(naq.JobStatus.STARTED, _STARTED),
            StatusChange(naq.JobStatus.FAILED, datetime(2026, 1, 1, 17, 0, 2, tzinfo=UTC)),
        ),
        "trace": {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
        "unique": "throttle 60s",
        "unique_key": "m:f:0123",
        "max_running": 2,
        "rate_limit": "5/s",
        "limit_key": "tenant-42",
        "priority": -2,
    }
    _REQUIRED = ("id", "queue", "func_name", "serializer", "payload", "status", "enqueued_at")

    def test_every_field_has_a_value_away_from_its_default(self):
        assert sorted(self.NON_DEFAULT) == sorted(f.name for f in attrs.fields(naq.JobRecord))
        for cls, value in [
            (naq.JobRecord, self._record_with(*self.NON_DEFAULT)),
            (naq.Retry, self.NON_DEFAULT["retry"]),
        ]:
            for field in attrs.fields(cls):
                default = field.default
                factory = getattr(default, "factory", None)  # attrs.Factory(dict)
                if factory is not None:
                    default = factory()
                if default is not attrs.NOTHING:
                    assert getattr(value, field.name) != default, f"{cls.__name__}.{field.name}"

    def _record_with(self, *names: str) -> naq.JobRecord:
        """A record with the required fields and ``names`` set from NON_DEFAULT."""
        return naq.JobRecord(**{n: self.NON_DEFAULT[n] for n in {*self._REQUIRED, *names}})

    @pytest.mark.parametrize(
        "which", ["required only", "every field", *(f.name for f in attrs.fields(naq.JobRecord))]
    )
    def test_fast_codec_matches_the_converter(self, which):
        """The hand-written hot path writes and reads exactly what the cattrs model does,
        for a record with one field set (each in turn), with none and with all."""
        names = {"required only": (), "every field": tuple(self.NON_DEFAULT)}.get(which, (which,))
        record = self._record_with(*names)
        fast, model = encode_record(record), encode_json(record)
        assert fast == model
        from_fast = decode_json(fast, naq.JobRecord, "a naq job record")  # fast -> converter
        from_model = decode_record(model)  # converter -> fast
        expected = attrs.evolve(
            record,
            enqueued_at=record.enqueued_at.astimezone(UTC),
            started_at=record.started_at and record.started_at.astimezone(UTC),
            ended_at=record.ended_at and record.ended_at.astimezone(UTC),
            history=tuple(StatusChange(s.status, s.at.astimezone(UTC)) for s in record.history),
            retry=record.retry and attrs.evolve(record.retry),  # its interval list as a tuple
        )
        for field in attrs.fields(naq.JobRecord):
            name = field.name
            want = getattr(expected, name)
            assert getattr(from_model, name) == getattr(from_fast, name) == want, name
            assert type(getattr(from_model, name)) is type(want), name
        assert from_model == from_fast == expected
        for decoded in (from_model, from_fast):  # equal is not enough: UTC, as written
            times = [decoded.enqueued_at, decoded.started_at, decoded.ended_at]
            times += [step.at for step in decoded.history]
            assert all(t.tzinfo is UTC for t in times if t is not None)

    def test_integer_for_a_float_field_is_read_as_a_float(self):
        """As the converter reads it: JSON writers may drop the ".0"."""
        data = encode_record(self._record()).replace(b'"status"', b'"job_timeout":3,"status"')
        assert decode_record(data).job_timeout == 3.0

    @pytest.mark.parametrize("data", [b"\x00\xff garbage", b"[1, 2]", b'{"id": "x"}', b""])
    def test_garbage_is_a_clear_error(self, data):
        with pytest.raises(naq.SerializationError, match="not a naq job record"):
            decode_record(data)


class TestSerializers:
    def test_pickle_round_trips_closures(self):
        factor = 3
        func_name, payload = PickleSerializer().encode_call(lambda x: x * factor, (2,), {})
        func, args, kwargs = PickleSerializer().decode_call(func_name, payload)
        assert func(*args, **kwargs) == 6

    def test_json_names_function_by_path(self):
        func_name, payload = JsonSerializer().encode_call(jobs.add, (1, 2), {"x": None})
        assert func_name == "tests.jobs:add"
        assert payload == {"args": [1, 2], "kwargs": {"x": None}}
        assert JsonSerializer().decode_call(func_name, payload) == (jobs.add, (1, 2), {"x": None})

    def test_json_rejects_bad_payload_shape(self):
        with pytest.raises(naq.SerializationError):
            JsonSerializer().decode_call("tests.jobs:add", {"args": "nope"})

    def test_json_never_accepts_pickle(self):
        with pytest.raises(naq.SerializationError):
            serializer_for_record("pickle", JsonSerializer())

    def test_unknown_serializer_name(self):
        with pytest.raises(naq.ConfigurationError):
            naq.Client("nats://x", serializer="yaml")


def test_public_api_is_pinned():
    assert sorted(naq.__all__) == sorted(
        [
            "Admin", "Bucket", "Call", "Client", "ConfigurationError", "ConnectOptions",
            "DeadLetter", "EnqueueError", "ErrorInfo", "Event", "EventStream", "Job", "JobCanceled",
            "JobContext", "JobFailed", "JobNotFound", "JobRecord", "JobStatus", "JsonSerializer",
            "LimitInfo", "NaqConnectionError", "NaqError", "PickleSerializer", "Queue",
            "QueueInfo", "ResultTimeout", "Retry", "Schedule", "ScheduleNotFound",
            "ScheduleStatus", "Scheduler", "SerializationError", "Serializer", "StatusChange",
            "Unique", "Worker", "WorkerHooks", "WorkerInfo", "WorkerMetrics", "__version__", "call",
            "current_job", "disable_tracing", "enable_tracing",
        ]
    )  # fmt: skip
    for name in naq.__all__:
        assert hasattr(naq, name)
    for name in naq_sync.__all__:
        assert hasattr(naq_sync, name)


def test_error_tree():
    for error in (
        naq.ConfigurationError, naq.SerializationError, naq.NaqConnectionError,
        naq.JobNotFound, naq.ResultTimeout, naq.JobFailed,
    ):  # fmt: skip
        assert issubclass(error, naq.NaqError)
    assert issubclass(naq.ResultTimeout, TimeoutError)
    assert issubclass(naq.ConfigurationError, ValueError)


class TestJobIds:
    def test_ids_are_valid_job_ids_and_unique_across_threads(self):
        from concurrent.futures import ThreadPoolExecutor

        from naq._ids import new_job_id
        from naq._transport import check_job_id

        with ThreadPoolExecutor(8) as pool:
            batches = list(pool.map(lambda _: [new_job_id() for _ in range(5000)], range(8)))
        ids = [job_id for batch in batches for job_id in batch]
        assert len(set(ids)) == len(ids) == 40_000
        assert all(check_job_id(job_id) and len(job_id) == 28 for job_id in ids[:100])

    def test_a_forked_child_draws_its_own_prefix(self):
        import os

        from naq._ids import new_job_id

        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: report one id and leave at once
            os.write(write_end, new_job_id().encode())
            os._exit(0)
        os.waitpid(pid, 0)
        child_id = os.read(read_end, 100).decode()
        os.close(read_end)
        os.close(write_end)
        assert len(child_id) == 28
        assert child_id[:16] != new_job_id()[:16]

    def test_an_exhausted_sequence_renews_the_prefix(self):
        import itertools

        from naq._ids import _SEQUENCE_END, _IdSource

        source = _IdSource()
        source._state = ("0" * 16, itertools.count(_SEQUENCE_END - 1))
        assert source.next() == "0" * 16 + f"{_SEQUENCE_END - 1:012x}"
        renewed = source.next()
        assert not renewed.startswith("0" * 16) and len(renewed) == 28


@pytest.mark.parametrize(
    ("text", "parsed"),
    [("5/s", (5, 1.0)), ("100/m", (100, 60.0)), ("1000/h", (1000, 3600.0)),
     ("3/10s", (3, 10.0)), (" 2 / 1.5s ", (2, 1.5))],
)  # fmt: skip
def test_rate_limits_parse(text, parsed):
    from naq._limits import parse_rate

    assert parse_rate(text) == parsed


@pytest.mark.parametrize("text", ["5", "5/d", "s/5", "0/s", "5/0s", "", 5])
def test_bad_rate_limits_are_refused(text):
    from naq._limits import parse_rate

    with pytest.raises(naq.ConfigurationError, match="rate_limit"):
        parse_rate(text)
