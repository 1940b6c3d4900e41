"""Schedule maths and definition changes, pure: no server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import attrs
import pytest

import naq
from naq._record import JobRecord, JobStatus
from naq._schedules._definition import (
    Schedule,
    claim_server_run,
    decode_schedule,
    encode_schedule,
    fire,
    paused,
    resumed,
)
from naq._schedules._timing import first_due, make_trigger, next_due, run_job_id, server_pattern

T0 = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)


def _schedule(**changes) -> Schedule:
    template = JobRecord("s1", "q", "m:f", "json", {}, JobStatus.QUEUED, T0)
    fields = {
        "id": "s1",
        "queue": "q",
        "func_name": "m:f",
        "trigger": make_trigger(interval=10),
        "engine": "naq",
        "template": template,
        "next_run": T0 + timedelta(seconds=10),
    }
    return Schedule(**{**fields, **changes})


class TestTriggers:
    @pytest.mark.parametrize(
        "kwargs",
        [
            {"cron": "bogus"},
            {"cron": "61 * * * *"},
            {"cron": "* * * *"},
            {"interval": 0.5},
            {"interval": 1.5},
            {"interval": -3},
            {"cron": "* * * * *", "interval": 5},
            {},
            {"interval": 5, "timezone": "Mars/Olympus"},
        ],
    )
    def test_bad_input_is_a_clear_error(self, kwargs):
        with pytest.raises(naq.ConfigurationError):
            make_trigger(**kwargs)

    def test_cron_is_normalised_to_six_fields_seconds_first(self):
        assert make_trigger(cron="*/5 * * * *").cron == "0 */5 * * * *"
        assert make_trigger(cron="@hourly").cron == "0 0 * * * *"
        assert make_trigger(cron="*/2 * * * * *").cron == "*/2 * * * * *"

    def test_aware_at_is_converted_and_naive_taken_as_utc(self):
        paris = timezone(timedelta(hours=1))
        assert make_trigger(at=datetime(2026, 1, 1, 13, 0, tzinfo=paris)).at == T0
        assert make_trigger(at=datetime(2026, 1, 1, 12, 0)).at == T0

    def test_server_patterns(self):
        assert server_pattern(make_trigger(interval=90)) == ("@every 90s", None)
        assert server_pattern(make_trigger(at=T0)) == ("@at 2026-01-01T12:00:00Z", None)
        assert server_pattern(make_trigger(cron="0 4 * * *", timezone="Europe/Paris")) == (
            "0 0 4 * * *",
            "Europe/Paris",
        )


class TestDueTimes:
    def test_interval_first_run_is_one_interval_after_the_rounded_now(self):
        trigger = make_trigger(interval=5)
        assert first_due(trigger, T0 + timedelta(milliseconds=600)) == T0 + timedelta(seconds=6)

    def test_interval_follows_previous_due_time(self):
        trigger = make_trigger(interval=5)
        due = T0 + timedelta(seconds=5)
        assert next_due(trigger, due, due + timedelta(milliseconds=80)) == due + timedelta(
            seconds=5
        )

    def test_missed_slots_fire_once_then_continue_from_now(self):
        trigger = make_trigger(interval=5)
        now = T0 + timedelta(minutes=10, milliseconds=200)  # 120 slots were missed
        assert next_due(trigger, T0, now) == T0 + timedelta(minutes=10, seconds=5)

    def test_cron_in_a_time_zone(self):
        trigger = make_trigger(cron="30 4 * * *", timezone="Europe/Paris")
        # 04:30 Paris is 03:30 UTC in winter.
        assert first_due(trigger, T0) == datetime(2026, 1, 2, 3, 30, tzinfo=UTC)

    def test_cron_catch_up(self):
        trigger = make_trigger(cron="0 * * * *")
        due = T0
        now = T0 + timedelta(hours=5, minutes=10)
        assert next_due(trigger, due, now) == T0 + timedelta(hours=6)

    def test_run_ids_are_unique_per_due_time(self):
        assert run_job_id("s", T0) == "s-20260101T120000Z"
        assert run_job_id("s", T0 + timedelta(microseconds=5)) == "s-20260101T120000000005Z"


class TestDefinitions:
    def test_round_trip(self):
        schedule = _schedule(claims=((3, "x"),), repeat=2)
        assert decode_schedule(encode_schedule(schedule)) == schedule

    def test_fire_counts_runs_and_stops_after_repeat(self):
        schedule = _schedule(repeat=2)
        first, record = fire(schedule, T0 + timedelta(seconds=10))
        assert record.id == "s1-20260101T120010Z" and record.status is JobStatus.QUEUED
        assert (first.runs, first.status, first.next_run) == (
            1,
            naq.ScheduleStatus.ACTIVE,
            T0 + timedelta(seconds=20),
        )
        second, record2 = fire(first, T0 + timedelta(seconds=20))
        assert record2.id != record.id
        assert (second.runs, second.status, second.next_run) == (
            2,
            naq.ScheduleStatus.COMPLETED,
            None,
        )

    def test_one_off_run_keeps_the_job_id(self):
        schedule = _schedule(one_off=True, trigger=make_trigger(at=T0), next_run=T0)
        done, record = fire(schedule, T0)
        assert record.id == "s1" and done.status is naq.ScheduleStatus.COMPLETED

    def test_server_claim_is_idempotent_per_message(self):
        schedule = _schedule(engine="server", repeat=2)
        claimed, job_id = claim_server_run(schedule, 7, T0 + timedelta(seconds=20), T0)
        assert job_id == "s1-20260101T120010Z" and claimed.runs == 1
        again, same = claim_server_run(claimed, 7, T0 + timedelta(seconds=20), T0)
        assert (again, same) == (None, job_id)  # redelivered: same id, not counted twice
        last, _ = claim_server_run(claimed, 8, T0 + timedelta(seconds=30), T0)
        assert last.status is naq.ScheduleStatus.COMPLETED
        assert claim_server_run(last, 9, None, T0) == (None, None)  # beyond repeat: skipped

    def test_pause_and_resume_restart_from_now(self):
        schedule = paused(_schedule(), T0)
        assert schedule.next_run is None and schedule.status is naq.ScheduleStatus.PAUSED
        later = T0 + timedelta(hours=1)
        resumed_schedule = resumed(schedule, later)
        assert resumed_schedule.next_run == later + timedelta(seconds=10)

    def test_final_schedules_cannot_change(self):
        done = attrs.evolve(_schedule(), status=naq.ScheduleStatus.CANCELED)
        with pytest.raises(naq.ConfigurationError, match="canceled"):
            resumed(done, T0)


def test_reprs_are_one_short_line():
    payload = {"args": ["x" * 5000]}
    template = JobRecord("s1", "q", "m:f", "json", payload, JobStatus.QUEUED, T0, meta={"k": 1})
    schedule = _schedule(template=template, trigger=make_trigger(cron="30 4 * * *"), runs=3)
    assert repr(schedule) == (
        "<naq.Schedule s1 cron 0 30 4 * * * active, next 2026-01-01T12:00:10+00:00, 3 run(s)>"
    )
    assert repr(template) == "<naq.JobRecord s1 queued m:f on q>"
    letter = naq.DeadLetter("j1", "q", "failed after 1 attempt(s): " + "E" * 500, T0, template, 1)
    assert len(repr(letter)) < 120
    assert len(repr(naq.Event("queued", "s1", "q", template))) < 150
