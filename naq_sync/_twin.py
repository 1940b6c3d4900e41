"""The base of naq_sync's generated twins (``_generated.py``): each keeps the naq object it
stands for in ``_async``, which is also how the core recognises it (``naq._twin.unwrap``)."""

from __future__ import annotations

from typing import TypeVar

__all__ = ["BlockingTwin", "T"]

T = TypeVar("T")
"""The type a generic twin's wrapper is generic in (``_twin_job(value: naq.Job[T]) -> Job[T]``)."""


class BlockingTwin:
    """A blocking twin of a naq object; shown as the naq object is, under naq_sync's name."""

    def __repr__(self) -> str:
        return repr(getattr(self, "_async", None)).replace("<naq.", "<naq_sync.", 1)
