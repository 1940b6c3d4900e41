"""A minimal multi-consumer queue from the fetch loops to the worker's job runners.

anyio's memory streams look up the current task on every wait, which cost a fifth of a
no-op job's time in the worker. Here a runner that finds work takes it without awaiting,
and an idle one sleeps on its own Event until work is put in or the queue closes.
"""

from __future__ import annotations

import collections
from typing import Generic, TypeVar

import anyio

__all__ = ["DispatchQueue"]

T = TypeVar("T")


class DispatchQueue(Generic[T]):
    """Unbounded FIFO for tasks of one event loop; ``get`` raises EndOfStream once closed."""

    def __init__(self) -> None:
        self._items: collections.deque[T] = collections.deque()
        self._idle: collections.deque[anyio.Event] = collections.deque()
        self._closed = False

    def put(self, item: T) -> None:
        self._items.append(item)
        if self._idle:
            self._idle.popleft().set()

    def close(self) -> None:
        """No more puts; runners drain what is left, then get EndOfStream."""
        self._closed = True
        while self._idle:
            self._idle.popleft().set()

    async def get(self) -> T:
        # No checkpoint when work is waiting: the queue holds at most ``concurrency`` items,
        # and a runner that finds it empty waits (and so can be cancelled) right here.
        while not self._items:
            if self._closed:
                raise anyio.EndOfStream
            wake = anyio.Event()
            self._idle.append(wake)
            try:
                await wake.wait()
            finally:
                if wake in self._idle:
                    self._idle.remove(wake)
        return self._items.popleft()
