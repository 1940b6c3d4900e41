"""Resident memory of a process, from Linux's /proc (no extra dependency)."""

from __future__ import annotations

from pathlib import Path

__all__ = ["peak_rss_kib", "rss_kib"]


def _status_kib(pid: int | str, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} for process {pid}")


def peak_rss_kib(pid: int | str = "self") -> int:
    """VmHWM: the most resident memory the process ever had, in KiB."""
    return _status_kib(pid, "VmHWM")


def rss_kib(pid: int | str = "self") -> int:
    """VmRSS: the resident memory of the process now, in KiB."""
    return _status_kib(pid, "VmRSS")
