"""Notice when a worker has drained a queue, from a side thread with its own asyncio loop.

A naq worker acks a job's message only after the job's outcome record is stored, so once
the queue's consumer has nothing pending and nothing unacknowledged, every result is
stored. Polling the consumer's info is one small request per tick, whatever the number of
jobs, and works the same whether the worker runs on asyncio or on Trio.
"""

from __future__ import annotations

import asyncio
import threading
import time

import nats
import nats.js.errors
from nats.js import JetStreamContext

from naq._transport import names

__all__ = ["POLL_INTERVAL", "wait_drained"]

POLL_INTERVAL = 0.01
"""Seconds between consumer checks: the end time is late by at most this plus one request."""


def wait_drained(
    url: str, queue: str, timeout: float, abandon: threading.Event, all_lanes: bool = False
) -> float:
    """Block until ``queue``'s consumer has acked every message; the ``perf_counter`` then.

    ``all_lanes``: the consumers of all its priorities (five requests a check instead of
    one: the checking thread then takes more of the worker's time, in the same process).

    Run it in a thread (``anyio.to_thread.run_sync``). Raises TimeoutError after
    ``timeout`` seconds, saying how much was left, and RuntimeError soon after ``abandon``
    is set (the caller gave up, e.g. because the worker crashed).
    """
    lanes = names.lanes(queue) if all_lanes else [queue]
    return asyncio.run(_poll(url, queue, lanes, timeout, abandon))


async def _poll(
    url: str, queue: str, lanes: list[str], timeout: float, abandon: threading.Event
) -> float:
    nc = await nats.connect(url, name="naq-bench-drain")
    try:
        js = nc.jetstream()
        deadline = time.perf_counter() + timeout
        while True:
            pending, unacked = await _left(js, lanes)
            now = time.perf_counter()
            if pending == 0 and unacked == 0:
                return now
            if abandon.is_set():
                raise RuntimeError(f"stopped waiting for queue {queue}: the caller gave up")
            if now > deadline:
                raise TimeoutError(
                    f"queue {queue} not drained within {timeout:g} s: "
                    f"{pending} never delivered, {unacked} delivered but not acked"
                )
            await asyncio.sleep(POLL_INTERVAL)
    finally:
        await nc.close()


async def _left(js: JetStreamContext, lanes: list[str]) -> tuple[int, int]:
    """Messages of these lanes not yet delivered, and delivered but not yet acked (a lane
    never used has no consumer)."""
    pending = unacked = 0
    for lane in lanes:
        try:
            info = await js.consumer_info(names.JOBS_STREAM, names.consumer_name(lane))
        except nats.js.errors.NotFoundError:
            continue
        pending += info.num_pending or 0
        unacked += info.num_ack_pending or 0
    return pending, unacked
