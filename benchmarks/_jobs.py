"""Job functions the benchmarks enqueue: module-level, so a worker imports them by path."""

from __future__ import annotations


async def noop() -> None:
    """Do nothing, on the worker's event loop: a job whose cost is naq's overhead alone."""


def sync_noop() -> None:
    """Do nothing in a plain ``def``: naq's overhead for a sync job, threads included."""
