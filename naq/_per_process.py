"""One value per process: made on first use, made again in a forked child.

naq's loop thread and naq_sync's default client are both of this kind. A forked child must
never use its parent's (the loop thread does not exist in the child; the connection's socket
is the parent's), so the child starts with nothing and makes its own on first use. The lock
is replaced in the child too: the parent's may have been held by another thread at the fork.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ["PerProcess"]

T = TypeVar("T")


class PerProcess(Generic[T]):
    """``get()`` returns this process's value, calling ``make`` (under a lock) for the first."""

    def __init__(self, make: Callable[[], T]) -> None:
        self._make = make
        self._lock = threading.Lock()
        # The value and the pid that made it, in one tuple: read together in one step.
        self._held: tuple[T, int] | None = None
        os.register_at_fork(after_in_child=self._forget)

    def get(self) -> T:
        held, pid = self._held, os.getpid()
        if held is not None and held[1] == pid:
            return held[0]
        with self._lock:
            held = self._held
            if held is None or held[1] != pid:
                held = self._held = (self._make(), pid)
            return held[0]

    def take(self) -> T | None:
        """Forget the value and return it, if this process made it (None otherwise)."""
        held, self._held = self._held, None
        if held is None or held[1] != os.getpid():
            return None
        return held[0]

    def _forget(self) -> None:
        # In the child: no value yet, and a lock no thread of the parent can be holding.
        self._lock = threading.Lock()
        self._held = None
