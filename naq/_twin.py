"""Twins: objects that stand for a naq object, such as naq_sync's blocking ``Job`` and ``Client``.

A twin keeps the naq object it stands for in ``_async``. The core accepts a twin wherever it
accepts that object (``depends_on=`` a naq_sync job, ``naq.Admin(naq_sync_client)``,
``naq.Queue(naq_sync_client, name)``) by reading it through :func:`unwrap`, the one place that
knows about twins; nothing else in the core checks for naq_sync's classes.
"""

from __future__ import annotations

from typing import Any, Protocol, TypeVar

__all__ = ["Twin", "unwrap"]

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)


class Twin(Protocol[T_co]):
    """Anything that stands for a naq object of type ``T_co``, kept in ``_async``."""

    @property
    def _async(self) -> T_co: ...


def unwrap(value: T | Twin[T]) -> T:
    """The naq object ``value`` stands for when it is a twin, else ``value`` itself."""
    found: Any = getattr(value, "_async", value)
    return found
