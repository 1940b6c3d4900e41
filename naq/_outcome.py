"""``Outcome``: what running a job's function produced, a value or the error it raised."""

from __future__ import annotations

import traceback
from typing import Any

import attrs

from ._record import ErrorInfo

__all__ = ["Outcome", "error_info"]


@attrs.define
class Outcome:
    """What a run produced: a value, or the error it raised (or its timeout)."""

    value: Any = None
    error: ErrorInfo | None = None


def error_info(exc: BaseException) -> ErrorInfo:
    """An exception as text: type name, message and the full traceback."""
    return ErrorInfo(
        type=type(exc).__qualname__,
        message=str(exc),
        traceback="".join(traceback.format_exception(exc)),
    )
