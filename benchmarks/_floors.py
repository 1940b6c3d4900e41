"""Raw nats-py floors: what JetStream does for a bare client on the same server, asyncio only.

Each floor is the same kind of work a naq path does, without naq: publishing a message and
waiting for its ack, publishing many and waiting for all acks, and a pull consumer that
fetches and acks. Messages are the size of a queued naq record, on file storage like naq's.
"""

from __future__ import annotations

import asyncio
import time

import attrs
import nats
from nats.js import JetStreamContext, api

__all__ = ["PAYLOAD_SIZE", "Floors", "measure_floors"]

PAYLOAD_SIZE = 256
"""Bytes per message: a queued naq record of a no-argument job is about 230 bytes."""

_STREAM = "BENCH_FLOOR"
_WINDOW = 1000
"""Messages published before their acks are awaited (nats-py allows 4000 in flight)."""
_FETCH_BATCH = 256
_WARMUP = 50


@attrs.frozen
class Floors:
    """The floors, in operations per second."""

    publish_awaited: float
    publish_pipelined: float
    fetch_ack: float

    @property
    def publish_rtt_ms(self) -> float:
        """Mean time of one awaited publish (one round trip plus a stored write), in ms."""
        return 1000.0 / self.publish_awaited


async def measure_floors(url: str, n: int) -> Floors:
    """Measure the three floors with ``n`` messages each on a scratch stream, then delete it."""
    nc = await nats.connect(url, name="naq-bench-floor")
    try:
        js = nc.jetstream()
        await js.add_stream(
            api.StreamConfig(
                name=_STREAM,
                subjects=["bench.floor.>"],
                retention=api.RetentionPolicy.WORK_QUEUE,
                storage=api.StorageType.FILE,
            )
        )
        try:
            payload = b"x" * PAYLOAD_SIZE
            await _publish_awaited(js, "bench.floor.warmup", payload, _WARMUP)
            return Floors(
                publish_awaited=await _publish_awaited(js, "bench.floor.a", payload, n),
                publish_pipelined=await _publish_pipelined(js, "bench.floor.b", payload, n),
                fetch_ack=await _fetch_ack(nc, js, "bench.floor.c", payload, n),
            )
        finally:
            await js.delete_stream(_STREAM)
    finally:
        await nc.close()


async def _publish_awaited(js: JetStreamContext, subject: str, payload: bytes, n: int) -> float:
    """``js.publish`` one at a time, each awaited: ops/s."""
    started = time.perf_counter()
    for _ in range(n):
        await js.publish(subject, payload)
    return n / (time.perf_counter() - started)


async def _publish_many(js: JetStreamContext, subject: str, payload: bytes, n: int) -> None:
    """``js.publish_async`` in windows of ``_WINDOW``, awaiting each window's acks."""
    for start in range(0, n, _WINDOW):
        acks = [await js.publish_async(subject, payload) for _ in range(min(_WINDOW, n - start))]
        await asyncio.gather(*acks)


async def _publish_pipelined(js: JetStreamContext, subject: str, payload: bytes, n: int) -> float:
    """Pipelined publishes with every ack awaited: ops/s."""
    started = time.perf_counter()
    await _publish_many(js, subject, payload, n)
    return n / (time.perf_counter() - started)


async def _fetch_ack(
    nc: nats.NATS, js: JetStreamContext, subject: str, payload: bytes, n: int
) -> float:
    """A durable pull consumer fetching batches and acking each message: ops/s.

    The ``n`` messages are published first (not timed); the clock stops once the server
    has received every ack (a flush after the last one).
    """
    await _publish_many(js, subject, payload, n)
    durable = "bench_fetch_ack"
    await js.add_consumer(
        _STREAM,
        api.ConsumerConfig(
            durable_name=durable,
            filter_subject=subject,
            ack_policy=api.AckPolicy.EXPLICIT,
            deliver_policy=api.DeliverPolicy.ALL,
            max_ack_pending=-1,
        ),
    )
    sub = await js.pull_subscribe_bind(durable, _STREAM)
    try:
        started = time.perf_counter()
        done = 0
        while done < n:
            msgs = await sub.fetch(_FETCH_BATCH, timeout=5)
            for msg in msgs:
                await msg.ack()
            done += len(msgs)
        await nc.flush()
        return n / (time.perf_counter() - started)
    finally:
        await sub.unsubscribe()
