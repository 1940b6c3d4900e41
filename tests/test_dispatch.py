"""The worker's in-process queues: fetch loops -> runners, runners -> settle loop."""

from __future__ import annotations

import anyio
import anyio.lowlevel
import pytest

from naq._dispatch import BatchQueue, DispatchQueue

pytestmark = pytest.mark.anyio


async def _until(condition) -> None:
    with anyio.fail_after(5):
        while not condition():
            await anyio.lowlevel.checkpoint()


async def test_runners_take_every_item_once_in_order():
    queue = DispatchQueue[int]()
    taken: list[tuple[int, int]] = []

    async def runner(name: int) -> None:
        while True:
            try:
                item = await queue.get()
            except anyio.EndOfStream:
                return
            taken.append((name, item))
            if item % 7 == 0:
                await anyio.sleep(0)  # some jobs suspend, so other runners get work

    async with anyio.create_task_group() as tg:
        for name in range(4):
            tg.start_soon(runner, name)
        for item in range(200):
            queue.put(item)
            if item % 50 == 0:
                await anyio.sleep(0)
        queue.close()
    assert sorted(item for _, item in taken) == list(range(200))
    assert [item for _, item in taken][:10] == list(range(10))  # FIFO


class _CountingWakes(DispatchQueue[int]):
    wakes = 0

    def _wake_one(self) -> None:
        if self._idle:
            self.wakes += 1
        super()._wake_one()


async def test_a_batch_of_quick_items_wakes_few_runners():
    queue = _CountingWakes()
    runners_used: set[int] = set()

    async def runner(name: int) -> None:
        while True:
            try:
                await queue.get()
            except anyio.EndOfStream:
                return
            runners_used.add(name)

    async with anyio.create_task_group() as tg:
        for name in range(50):
            tg.start_soon(runner, name)
        await _until(lambda: len(queue._idle) == 50)
        for item in range(100):
            queue.put(item)
        await _until(lambda: not queue._items and len(queue._idle) == 50)
        wakes = queue.wakes
        queue.close()
    assert 1 <= len(runners_used) <= 3
    assert wakes <= 3  # one is woken and passes the rest on: not one wake per item


async def test_a_woken_runner_that_is_cancelled_passes_its_wake_on():
    queue = DispatchQueue[str]()
    got: list[tuple[str, str]] = []
    scope = anyio.CancelScope()

    async def runner(name: str, scope: anyio.CancelScope) -> None:
        with scope:
            got.append((name, await queue.get()))

    with anyio.fail_after(5):  # without the pass-on, the second runner would wait forever
        async with anyio.create_task_group() as tg:
            tg.start_soon(runner, "first", scope)
            await _until(lambda: len(queue._idle) == 1)
            tg.start_soon(runner, "second", anyio.CancelScope())
            await _until(lambda: len(queue._idle) == 2)
            # The first runner is cancelled, and in the same step the put wakes it: it leaves
            # without the item, so its wake must go on to the second runner.
            scope.cancel()
            queue.put("job")
    assert got == [("second", "job")]
    assert queue._waking == 0


async def test_close_lets_runners_drain_then_end():
    queue = DispatchQueue[int]()
    queue.put(1)
    queue.put(2)
    queue.close()
    assert [await queue.get(), await queue.get()] == [1, 2]
    with pytest.raises(anyio.EndOfStream):
        await queue.get()


async def test_batch_queue_takes_what_waits_up_to_a_limit():
    queue = BatchQueue[int]()
    batches: list[list[int]] = []

    async def consumer() -> None:
        while True:
            try:
                batches.append(await queue.get_batch(3))
            except anyio.EndOfStream:
                return

    async with anyio.create_task_group() as tg:
        tg.start_soon(consumer)
        await _until(lambda: queue._wake is not None)  # the consumer waits
        async with queue:  # closes at the end of the block
            for item in range(7):
                queue.put(item)
    assert [item for batch in batches for item in batch] == list(range(7))
    assert all(1 <= len(batch) <= 3 for batch in batches)
    assert batches[:3] == [[0, 1, 2], [3, 4, 5], [6]]
