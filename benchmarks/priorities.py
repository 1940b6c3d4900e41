"""What priorities cost the worker: one asyncio worker at ``concurrency=100`` drains 5,000
noop ``async def`` jobs enqueued without a priority (all in the queue's own lane); all with
``priority=2`` (one other lane); and spread evenly over the five priorities (five lanes
taking turns for the worker's slots).

    python -m benchmarks.priorities            # 5,000 jobs, 3 rounds
    python -m benchmarks.priorities --quick    # 1,000 jobs, one round

On a fresh embedded nats-server; filling is untimed; rounds interleave the variants, each
ratio is to the drain without priorities of the same round.
"""

from __future__ import annotations

import naq

from ._jobs import noop
from ._naq_paths import drain_queue, fresh_queue
from ._report import compare_workers

CONCURRENCY = 100
VARIANTS: dict[str, list[int]] = {
    "no priority": [0],
    "priority=2": [2],
    "five priorities": [-2, -1, 0, 1, 2],
}


async def _fill(url: str, jobs: int, priorities: list[int]) -> tuple[str, list[str]]:
    """A fresh queue with ``jobs`` noop jobs, shared evenly by ``priorities``."""
    queue = fresh_queue("prio")
    calls = [naq.Call(noop) for _ in range(jobs)]
    handles: list[naq.Job[None]] = []
    async with naq.Client(url) as client:
        for index, priority in enumerate(priorities):
            share = calls[index :: len(priorities)]
            for start in range(0, len(share), 1_000):
                batch = share[start : start + 1_000]
                handles += await client.enqueue_many(batch, queue=queue, priority=priority)
    return queue, [job.id for job in handles]


async def _run(url: str, jobs: int, priorities: list[int]) -> float:
    queue, ids = await _fill(url, jobs, priorities)
    return await drain_queue(url, queue, ids, CONCURRENCY, all_lanes=True)


def main() -> None:
    compare_workers("The worker's cost of priorities.", VARIANTS, _run, CONCURRENCY)


if __name__ == "__main__":
    main()
