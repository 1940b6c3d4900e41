"""``Slots``: a worker's job slots, handed to the lanes that wait for them by priority.

A worker runs at most ``concurrency`` jobs; a fetch loop holds a slot for every message it
asks for. When a slot frees and several lanes wait for one, the highest-priority lane gets
it (first come among equals), so a queue's priority-2 jobs start before its priority-0
ones. A lane passed over ``PASSES`` times in a row gets the next slot whatever waits above
it: lower priorities slow down under load but never stop.
"""

from __future__ import annotations

import anyio
import anyio.lowlevel

__all__ = ["PASSES", "Slots"]

PASSES = 10
"""Slots a waiting lane lets higher ones take before it gets one itself."""


class _Waiter:
    __slots__ = ("granted", "passed", "priority")

    def __init__(self, priority: int) -> None:
        self.priority = priority
        self.granted = anyio.Event()
        self.passed = 0


class Slots:
    """A semaphore of ``total`` slots whose waiters are served by priority, then in order."""

    def __init__(self, total: int) -> None:
        self.value = total
        """Free slots; never above zero while someone waits."""
        self._waiting: list[_Waiter] = []

    def acquire_nowait(self) -> None:
        """Take a free slot; WouldBlock when none is free."""
        if self.value <= 0:
            raise anyio.WouldBlock
        self.value -= 1

    async def acquire(self, priority: int = 0) -> None:
        """Take a slot, waiting for one with this priority."""
        await anyio.lowlevel.checkpoint_if_cancelled()
        if self.value > 0:
            self.value -= 1
            # Let other tasks run first, as anyio's Semaphore does: jobs ending meanwhile
            # free more slots, and the fetch loop asks for all of them in one request.
            await anyio.lowlevel.cancel_shielded_checkpoint()
            return
        waiter = _Waiter(priority)
        self._waiting.append(waiter)
        try:
            await waiter.granted.wait()
        except BaseException:
            if waiter.granted.is_set():
                self.release()  # handed over as the wait was cancelled: pass it on
            else:
                self._waiting.remove(waiter)
            raise

    def release(self) -> None:
        """Free a slot: to the waiter whose turn it is, or back to the free ones."""
        if not self._waiting:
            self.value += 1
            return
        chosen = self._next_waiter()
        self._waiting.remove(chosen)
        chosen.granted.set()

    def _next_waiter(self) -> _Waiter:
        waiting = self._waiting
        for waiter in waiting:
            if waiter.passed >= PASSES:
                chosen = waiter  # the first one passed over too often
                break
        else:
            chosen = max(waiting, key=lambda w: w.priority)  # the first of the highest
        for waiter in waiting:
            if waiter.priority < chosen.priority:
                waiter.passed += 1
        return chosen
