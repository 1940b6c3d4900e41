"""``python -m tests._producer URL QUEUE COUNT RUNS_FILE``: enqueue COUNT jobs in batches.

A separate process so its peak memory (VmHWM) is the producer's alone; prints one JSON line
with the last job id and that peak.
"""

from __future__ import annotations

import json
import sys

import anyio

import naq
from tests import jobs
from tests._memory import peak_rss_kib

__all__ = ["produce"]

BATCH = 1000


async def produce(url: str, queue: str, count: int, runs_file: str) -> str:
    last = ""
    async with naq.Client(url) as client:
        for start in range(0, count, BATCH):
            calls = [
                naq.Call(jobs.async_append_line, (runs_file, f"j{i}"))
                for i in range(start, min(start + BATCH, count))
            ]
            last = (await client.enqueue_many(calls, queue=queue))[-1].id
    return last


if __name__ == "__main__":
    url, queue, count, runs_file = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    last_id = anyio.run(produce, url, queue, count, runs_file)
    print(json.dumps({"last_id": last_id, "peak_rss_kib": peak_rss_kib()}), flush=True)
