"""Peak resident memory of a process, from Linux's /proc (no extra dependency)."""

from __future__ import annotations

from pathlib import Path

__all__ = ["peak_rss_kib"]


def peak_rss_kib(pid: int | str = "self") -> int:
    """VmHWM: the most resident memory the process ever had, in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmHWM for process {pid}")
