"""The process's resident memory (RSS), for ``Worker(max_memory_mib=...)``.

Read from ``/proc/self/statm`` (Linux): one small read, no dependency (psutil would be one
for a single number). Elsewhere the limit is refused when the worker is made, not ignored.
"""

from __future__ import annotations

import os

from .._errors import ConfigurationError

__all__ = ["STATM", "check_memory_limit", "rss_mib"]

STATM = "/proc/self/statm"
_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def rss_mib() -> float:
    """This process's resident set size in MiB (the second field of statm, in pages)."""
    with open(STATM, "rb") as f:
        fields = f.read().split()
    return int(fields[1]) * _PAGE_SIZE / (1 << 20)


def check_memory_limit(max_memory_mib: float | None) -> float | None:
    """``max_memory_mib`` checked: a positive number, on a system that can measure it."""
    if max_memory_mib is None:
        return None
    if isinstance(max_memory_mib, bool) or not max_memory_mib > 0:
        raise ConfigurationError(f"max_memory_mib must be > 0, got {max_memory_mib!r}")
    if not os.path.exists(STATM):
        raise ConfigurationError(f"max_memory_mib needs {STATM} (Linux) to read the RSS")
    return float(max_memory_mib)
