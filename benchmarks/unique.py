"""What unique jobs cost an enqueue: awaited enqueues one at a time, without ``unique=``,
with ``unique="queued"`` and a new key each time (admitted: the lock is read and taken
before the publish), and with one key (each enqueue after the first is a duplicate: the
lock and its job's record are read, nothing is published).

    python -m benchmarks.unique            # 2,000 enqueues per figure, 3 rounds
    python -m benchmarks.unique --quick    # 500, one round

On a fresh embedded nats-server, asyncio; rounds interleave the three, and each ratio is
to the plain enqueue of the same round.
"""

from __future__ import annotations

import argparse
import os
import time

import anyio

import naq
from naq.server import EmbeddedServer

from ._naq_paths import fresh_queue, purge_queue
from ._report import interleave, ratio_table

VARIANTS = ("plain", "unique, admitted", "unique, duplicate")


async def _rate(url: str, variant: str, n: int) -> float:
    queue = fresh_queue("unique")
    async with naq.Client(url) as client:
        start = time.perf_counter()
        for i in range(n):
            if variant == "plain":
                await client.enqueue("benchmarks._jobs:noop", i, queue=queue)
            elif variant == "unique, admitted":
                await client.enqueue("benchmarks._jobs:noop", i, queue=queue, unique="queued")
            else:
                await client.enqueue("benchmarks._jobs:noop", 0, queue=queue, unique="queued")
        rate = n / (time.perf_counter() - start)
    await purge_queue(url, queue)
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description="The enqueue's cost of unique=.")
    parser.add_argument("--quick", action="store_true", help="500 enqueues, one round")
    args = parser.parse_args()
    n, rounds = (500, 1) if args.quick else (2_000, 3)
    with EmbeddedServer() as server:
        rates = interleave(
            rounds,
            VARIANTS,
            lambda variant: anyio.run(_rate, server.url, variant, n),
            "enqueues/s",
        )
    print(f"{os.cpu_count()} CPU(s), {n:,} awaited enqueues per figure, asyncio,")
    print(f"median of {rounds} round(s); ratio to 'plain' in the same round")
    print(ratio_table(rates, "plain", "enqueue", "enqueues/s"))


if __name__ == "__main__":
    main()
