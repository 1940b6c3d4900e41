"""``--reload``: notice changed ``.py`` files, with the optional ``watchfiles`` package.

watchfiles (inotify on Linux, through its Rust core) waits in a thread and groups the
changes of one save; its ``PythonFilter`` keeps ``.py`` files and skips ``__pycache__``,
``.git``, virtual environments and the like. It is an extra (``naq[reload]``): workers in
production do not need it, so ``--reload`` without it is an error naming the extra.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import AsyncIterator
from pathlib import Path

import anyio

from .._errors import ConfigurationError

__all__ = ["check_reload_available", "watch_python_files"]


def check_reload_available() -> None:
    if importlib.util.find_spec("watchfiles") is None:
        raise ConfigurationError("--reload needs watchfiles: pip install 'naq[reload]'")


async def watch_python_files(path: Path, stop: anyio.Event) -> AsyncIterator[list[str]]:
    """Yield the changed ``.py`` files under ``path`` (relative, sorted), once per change,
    until ``stop`` is set."""
    from watchfiles import PythonFilter, awatch

    root = path.resolve()
    async for changes in awatch(root, watch_filter=PythonFilter(), stop_event=stop):
        yield sorted({os.path.relpath(changed, root) for _, changed in changes})
