"""The worker's two in-process queues: ``DispatchQueue`` from the fetch loops to the job
runners, ``BatchQueue`` from the runners to the settle loop.

anyio's memory streams look up the current task on every wait, which cost a fifth of a
no-op job's time in the worker. Here a runner that finds work takes it without awaiting,
and an idle one sleeps on its own Event until it is woken.

Runners are woken one at a time: a woken runner that takes an item wakes the next idle one
only if work is left, and ``put`` wakes nobody while a woken runner has yet to run. A
batch of quick jobs is then run by one or two runners in one go instead of waking a runner
per job (each wake is a task switch), while slow jobs still spread over the runners, one
wake per job, as before.
"""

from __future__ import annotations

import collections
from collections.abc import Callable
from typing import Generic, TypeVar

import anyio

__all__ = ["BatchQueue", "DispatchQueue"]

T = TypeVar("T")


class DispatchQueue(Generic[T]):
    """Unbounded FIFO for tasks of one event loop; ``get`` raises EndOfStream once closed."""

    def __init__(self) -> None:
        self._items: collections.deque[T] = collections.deque()
        self._idle: collections.deque[anyio.Event] = collections.deque()
        self._waking = 0  # runners woken that have not run yet
        self._closed = False

    def put(self, item: T) -> None:
        self._items.append(item)
        if not self._waking:
            self._wake_one()

    def close(self) -> None:
        """No more puts; runners drain what is left, then get EndOfStream."""
        self._closed = True
        while self._idle:
            self._wake_one()

    def _wake_one(self) -> None:
        if self._idle:
            self._waking += 1
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
            except BaseException:
                if wake in self._idle:
                    self._idle.remove(wake)
                else:  # woken, then cancelled: pass the wake on so no item is left waiting
                    self._waking -= 1
                    if self._items:
                        self._wake_one()
                raise
            self._waking -= 1
        item = self._items.popleft()
        if self._items and not self._waking:
            self._wake_one()  # more work: pass it on, one runner at a time
        return item


class BatchQueue(Generic[T]):
    """Unbounded FIFO for one consumer that takes what is waiting in batches.

    ``async with`` it on the producing side: it closes when the block ends.

    The runners' updates to the settle loop: two per job, so anyio's memory streams (which
    cost about 2 µs a message, sending and receiving) are replaced by a deque and an Event.
    """

    def __init__(self) -> None:
        self._items: collections.deque[T] = collections.deque()
        self._wake: anyio.Event | None = None
        self._closed = False

    def put(self, item: T) -> None:
        self._items.append(item)
        if self._wake is not None:
            self._wake.set()
            self._wake = None

    def close(self) -> None:
        """No more puts: the consumer gets what is left, then EndOfStream."""
        self._closed = True
        if self._wake is not None:
            self._wake.set()
            self._wake = None

    async def __aenter__(self) -> BatchQueue[T]:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.close()

    async def get_batch(self, limit: int) -> list[T]:
        """Wait for at least one item; take up to ``limit`` of those waiting, oldest first."""
        while not self._items:
            if self._closed:
                raise anyio.EndOfStream
            self._wake = anyio.Event()
            await self._wake.wait()
        return self.take(limit)

    def take(self, limit: int) -> list[T]:
        """Up to ``limit`` of the items waiting, oldest first, without waiting."""
        items = self._items
        return [items.popleft() for _ in range(min(limit, len(items)))]

    async def wait_for(self, wanted: Callable[[T], bool], timeout: float) -> None:
        """Wait until an item ``wanted`` accepts is waiting, the queue closes, or ``timeout``."""
        with anyio.move_on_after(timeout):
            while not self._closed and not any(wanted(item) for item in self._items):
                self._wake = anyio.Event()
                await self._wake.wait()
