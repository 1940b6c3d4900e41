"""Retry policy: RQ-compatible intervals, plus capped exponential backoff with jitter."""

from __future__ import annotations

import random
from collections.abc import Sequence

import attrs

from ._errors import ConfigurationError

__all__ = ["Retry"]


def _check_interval(_inst: object, _attr: object, value: float | Sequence[float]) -> None:
    values = [value] if isinstance(value, int | float) else list(value)
    if not values or any(not isinstance(v, int | float) or v < 0 for v in values):
        raise ConfigurationError(f"Retry interval must be seconds >= 0, or a list: {value!r}")


def _to_interval(value: float | Sequence[float]) -> float | tuple[float, ...]:
    return value if isinstance(value, int | float) else tuple(value)


@attrs.frozen
class Retry:
    """How often and how long apart a failing job is tried again.

    ``max`` is the number of retries after the first run (RQ's meaning). ``interval`` is
    seconds, or a list of seconds per retry whose last value repeats. With ``backoff`` set,
    retry *n* waits ``interval * backoff ** (n - 1)``, capped at ``max_interval``; ``jitter``
    (0 to 1) takes up to that fraction off each wait at random so retries do not stampede.
    """

    max: int = 3
    interval: float | tuple[float, ...] = attrs.field(
        default=0, converter=_to_interval, validator=_check_interval
    )
    backoff: float | None = None
    max_interval: float | None = None
    jitter: float = 0.0

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.max, int) or self.max < 0:
            raise ConfigurationError(f"Retry max must be an int >= 0: {self.max!r}")
        if self.backoff is not None and self.backoff < 1:
            raise ConfigurationError(f"Retry backoff must be >= 1: {self.backoff!r}")
        if self.max_interval is not None and self.max_interval < 0:
            raise ConfigurationError(f"Retry max_interval must be >= 0: {self.max_interval!r}")
        if not 0 <= self.jitter <= 1:
            raise ConfigurationError(f"Retry jitter must be between 0 and 1: {self.jitter!r}")

    def delay(self, retry_number: int, rng: random.Random | None = None) -> float:
        """Seconds to wait before retry number ``retry_number`` (1 for the first retry)."""
        if retry_number < 1:
            raise ValueError("retry_number starts at 1")
        if isinstance(self.interval, tuple):
            base = self.interval[min(retry_number, len(self.interval)) - 1]
        else:
            base = self.interval
        if self.backoff is not None:
            base = base * self.backoff ** (retry_number - 1)
        if self.max_interval is not None:
            base = min(base, self.max_interval)
        if self.jitter:
            base -= base * self.jitter * (rng or random).random()
        return float(base)
