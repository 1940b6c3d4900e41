"""Schedule maths, pure: triggers, due times, the catch-up rule and run ids. No I/O.

Both engines follow these rules, and they are the rules nats-server applies to its own
message schedules (ADR-51), so a schedule behaves the same whichever engine runs it:

- an interval's first run is one interval after creation (rounded to the whole second);
  later runs follow the previous due time;
- a cron schedule runs at each matching time in its time zone;
- **catch-up**: when the next due time has already passed (everything was down), the
  schedule fires once now for all the missed slots, then continues from the present.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import attrs
from croniter import croniter

from .._errors import ConfigurationError
from .._time import as_utc

__all__ = [
    "Trigger",
    "first_due",
    "make_trigger",
    "next_due",
    "run_job_id",
    "server_pattern",
]

_MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_CRON_FIELD = re.compile(r"^[A-Za-z0-9*/,?-]+$")


@attrs.frozen
class Trigger:
    """When a schedule fires: exactly one of ``cron``, ``interval`` (seconds) or ``at``.

    ``cron`` is kept normalised to six fields, seconds first (the NATS order), so the
    same string drives croniter and the server.
    """

    cron: str | None = None
    interval: float | None = None
    at: datetime | None = None
    timezone: str = "UTC"

    @property
    def kind(self) -> str:
        return "cron" if self.cron else "interval" if self.interval else "at"

    @property
    def repeats(self) -> bool:
        return self.at is None

    def describe(self) -> str:
        """A short human form for tables: ``cron 0 */5 * * * * (Europe/Paris)``."""
        if self.cron is not None:
            zone = "" if self.timezone == "UTC" else f" ({self.timezone})"
            return f"cron {self.cron}{zone}"
        if self.interval is not None:
            return f"every {self.interval:g}s"
        assert self.at is not None
        return f"at {self.at:%Y-%m-%d %H:%M:%S}Z"


def _normalise_cron(expr: str) -> str:
    if not isinstance(expr, str) or not expr.strip():
        raise ConfigurationError(f"invalid cron expression {expr!r}")
    text = _MACROS.get(expr.strip().lower(), expr.strip())
    fields = text.split()
    if len(fields) == 5:
        fields = ["0", *fields]
    if len(fields) != 6 or not all(_CRON_FIELD.match(f) for f in fields):
        raise ConfigurationError(
            f"invalid cron expression {expr!r}: use 5 fields (minute hour day month weekday), "
            "6 with seconds first, or @hourly/@daily/@weekly/@monthly/@yearly"
        )
    normalised = " ".join(fields)
    if not croniter.is_valid(normalised, second_at_beginning=True):
        raise ConfigurationError(f"invalid cron expression {expr!r}")
    return normalised


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError) as exc:
        raise ConfigurationError(f"unknown time zone {name!r}") from exc


def make_trigger(
    *,
    cron: str | None = None,
    interval: float | timedelta | None = None,
    at: datetime | None = None,
    timezone: str = "UTC",
) -> Trigger:
    """Validate and build a trigger; raises ConfigurationError saying what is wrong.

    Intervals are whole seconds, at least 1 (as on the server). ``at`` may be naive
    (taken as UTC) or aware (converted to UTC).
    """
    given = [name for name, v in (("cron", cron), ("interval", interval), ("at", at)) if v]
    if len(given) != 1:
        raise ConfigurationError("give exactly one of cron=, interval= or at=")
    _zone(timezone)
    if cron is not None:
        return Trigger(cron=_normalise_cron(cron), timezone=timezone)
    if interval is not None:
        seconds = interval.total_seconds() if isinstance(interval, timedelta) else interval
        if (
            isinstance(seconds, bool)
            or not isinstance(seconds, int | float)
            or seconds < 1
            or seconds != int(seconds)
        ):
            raise ConfigurationError(
                f"interval must be a whole number of seconds, at least 1; got {interval!r}"
            )
        return Trigger(interval=float(seconds), timezone=timezone)
    if not isinstance(at, datetime):
        raise ConfigurationError(f"at must be a datetime, got {at!r}")
    return Trigger(at=as_utc(at), timezone=timezone)


def _round_second(t: datetime) -> datetime:
    """Round to the nearest whole second, halves up (Go's ``Time.Round``, as the server)."""
    base = t.replace(microsecond=0)
    return base + timedelta(seconds=1) if t.microsecond >= 500_000 else base


def _cron_after(trigger: Trigger, t: datetime) -> datetime:
    assert trigger.cron is not None
    local = t.astimezone(_zone(trigger.timezone))
    nxt = croniter(trigger.cron, local, second_at_beginning=True).get_next(datetime)
    return nxt.astimezone(UTC)


def first_due(trigger: Trigger, now: datetime) -> datetime:
    """The first due time of a trigger created (or resumed) at ``now``."""
    if trigger.at is not None:
        return trigger.at
    if trigger.interval is not None:
        return _round_second(now) + timedelta(seconds=trigger.interval)
    return _cron_after(trigger, now)


def next_due(trigger: Trigger, due: datetime, now: datetime) -> datetime | None:
    """The due time after a run due at ``due``, computed at ``now``; None for ``at``.

    Catch-up: if that time has already passed, the missed slots are not replayed; the
    schedule continues from the present (one run fired for all of them).
    """
    if trigger.at is not None:
        return None
    if trigger.interval is not None:
        step = timedelta(seconds=trigger.interval)
        following = due + step
        return _round_second(now) + step if following < now else following
    following = _cron_after(trigger, due)
    return _cron_after(trigger, _round_second(now)) if following < now else following


def server_pattern(trigger: Trigger) -> tuple[str, str | None]:
    """The ``Nats-Schedule`` header value and the ``Nats-Schedule-Time-Zone`` (or None)."""
    if trigger.at is not None:
        return "@at " + trigger.at.isoformat().replace("+00:00", "Z"), None
    if trigger.interval is not None:
        return f"@every {int(trigger.interval)}s", None
    assert trigger.cron is not None
    return trigger.cron, (None if trigger.timezone == "UTC" else trigger.timezone)


def run_job_id(schedule_id: str, due: datetime) -> str:
    """The job id of the run due at ``due``: unique per run, the same for every producer.

    Deriving it from the due time makes the id the dedupe key too: two schedulers firing
    the same run publish the same ``Nats-Msg-Id``, and the server keeps one.
    """
    due = as_utc(due)
    suffix = f"{due.microsecond:06d}" if due.microsecond else ""
    return f"{schedule_id}-{due:%Y%m%dT%H%M%S}{suffix}Z"
