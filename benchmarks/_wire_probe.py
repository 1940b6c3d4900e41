"""``python -m benchmarks._wire_probe [--size N]``: the native anyio client next to nats-py.

Question: can awaited JetStream calls from Trio, made by ``naq._transport._wire`` on Trio's
own thread, reach at least 0.8x of nats-py on asyncio? Prints, on one embedded server, the
median of 3 rounds (rounds interleave the variants, so drift on a shared machine hits all):

- awaited ``js.publish`` one at a time: nats-py/asyncio, wire/asyncio, wire/Trio, and
  nats-py reached from Trio through naq's thread bridge (what naq does today);
- pull fetch of 256 plus an ack per message: nats-py/asyncio, wire/asyncio, wire/Trio.

Messages are ``PAYLOAD_SIZE`` bytes on file storage, like the floors in ``_floors``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from collections.abc import Callable
from typing import NamedTuple
from urllib.parse import urlsplit

import anyio
import nats
from nats.js import api

from naq._transport import ThreadBridge, WireConnection
from naq.server import EmbeddedServer

from ._floors import PAYLOAD_SIZE

__all__ = ["main"]

_STREAM = "BENCH_WIRE"
_BATCH = 256
_WARMUP = 200
_ROUNDS = 3
_PAYLOAD = b"x" * PAYLOAD_SIZE


class _Clock:
    """Wall time and this process's CPU time (all threads, user + system) of a timed loop."""

    def __init__(self) -> None:
        self._cpu = _cpu()
        self._wall = time.perf_counter()

    def stop(self, n: int) -> Rate:
        wall, cpu = time.perf_counter() - self._wall, _cpu() - self._cpu
        return Rate(n / wall, cpu / n * 1e6)


class Rate(NamedTuple):
    per_second: float
    cpu_us: float
    """CPU microseconds of this process per operation (the server's are not counted)."""


def _cpu() -> float:
    times = os.times()
    return times.user + times.system


async def _wire_connect(url: str) -> WireConnection:
    parts = urlsplit(url)
    return await WireConnection.connect(parts.hostname or "127.0.0.1", parts.port or 4222)


# -- awaited publish -------------------------------------------------------------------------


async def _natspy_publish(url: str, n: int) -> Rate:
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        for _ in range(_WARMUP):
            await js.publish("bench.wire.pub", _PAYLOAD)
        clock = _Clock()
        for _ in range(n):
            await js.publish("bench.wire.pub", _PAYLOAD)
        return clock.stop(n)
    finally:
        await nc.close()


async def _wire_publish(url: str, n: int) -> Rate:
    async with await _wire_connect(url) as nc:
        for _ in range(_WARMUP):
            await nc.js_publish("bench.wire.pub", _PAYLOAD)
        clock = _Clock()
        for _ in range(n):
            await nc.js_publish("bench.wire.pub", _PAYLOAD)
        return clock.stop(n)


async def _bridged_publish(url: str, n: int) -> Rate:
    """nats-py on naq's shared asyncio loop thread, each publish one crossing from Trio."""
    bridge = ThreadBridge()
    nc = await bridge.call(nats.connect, url)
    try:
        js = nc.jetstream()
        for _ in range(_WARMUP):
            await bridge.call(js.publish, "bench.wire.pub", _PAYLOAD)
        clock = _Clock()
        for _ in range(n):
            await bridge.call(js.publish, "bench.wire.pub", _PAYLOAD)
        return clock.stop(n)
    finally:
        await bridge.call(nc.close)


# -- fetch + ack -----------------------------------------------------------------------------


async def _fill(url: str, subject: str, n: int) -> str:
    """Publish ``n`` messages on ``subject`` and make a durable consumer for them (untimed)."""
    durable = subject.replace(".", "_")
    async with await _wire_connect(url) as nc:
        for start in range(0, n, 1000):
            count = min(1000, n - start)
            for outcome in await nc.js_publish_many([(subject, _PAYLOAD)] * count, timeout=30):
                if isinstance(outcome, BaseException):
                    raise outcome
        config = {
            "durable_name": durable, "filter_subject": subject, "ack_policy": "explicit",
            "deliver_policy": "all", "max_ack_pending": -1,
        }  # fmt: skip
        await nc.js_api(
            f"CONSUMER.CREATE.{_STREAM}.{durable}", {"stream_name": _STREAM, "config": config}
        )
    return durable


async def _natspy_fetch(url: str, durable: str, n: int) -> Rate:
    nc = await nats.connect(url)
    try:
        sub = await nc.jetstream().pull_subscribe_bind(durable, _STREAM)
        clock = _Clock()
        done = 0
        while done < n:
            msgs = await sub.fetch(min(_BATCH, n - done), timeout=5)
            for msg in msgs:
                await msg.ack()
            done += len(msgs)
        await nc.flush()
        return clock.stop(n)
    finally:
        await nc.close()


async def _wire_fetch(url: str, durable: str, n: int) -> Rate:
    async with await _wire_connect(url) as nc:
        puller = await nc.pull_subscribe(_STREAM, durable)
        await nc.flush()
        clock = _Clock()
        done = 0
        while done < n:
            msgs = await puller.fetch(min(_BATCH, n - done), expires=5)
            for msg in msgs:
                await nc.ack(msg)
            done += len(msgs)
        await nc.flush()
        return clock.stop(n)


# -- running ---------------------------------------------------------------------------------


def _measure(url: str, n: int) -> dict[str, list[Rate]]:
    runs: dict[str, list[Rate]] = {}

    def record(name: str, run: Callable[[], Rate]) -> None:
        rate = run()
        runs.setdefault(name, []).append(rate)
        print(f"  {name:<38} {rate.per_second:>9,.0f} /s {rate.cpu_us:>6.0f} us", file=sys.stderr)

    for round_ in range(_ROUNDS):
        print(f"round {round_ + 1}/{_ROUNDS}", file=sys.stderr)
        record("publish nats-py asyncio", lambda: asyncio.run(_natspy_publish(url, n)))
        record("publish wire asyncio", lambda: anyio.run(_wire_publish, url, n))
        record("publish wire trio", lambda: anyio.run(_wire_publish, url, n, backend="trio"))
        record(
            "publish nats-py trio (thread bridge)",
            lambda: anyio.run(_bridged_publish, url, n, backend="trio"),
        )
        for name, backend, fetch in (
            ("fetch+ack nats-py asyncio", "asyncio", _natspy_fetch),
            ("fetch+ack wire asyncio", "asyncio", _wire_fetch),
            ("fetch+ack wire trio", "trio", _wire_fetch),
        ):
            subject = f"bench.wire.f{round_}.{backend}.{fetch.__name__.strip('_')}"
            durable = anyio.run(_fill, url, subject, n)
            record(name, lambda f=fetch, d=durable, b=backend: anyio.run(f, url, d, n, backend=b))
    return runs


async def _create_stream(url: str) -> None:
    nc = await nats.connect(url)
    try:
        config = api.StreamConfig(
            name=_STREAM, subjects=["bench.wire.>"], storage=api.StorageType.FILE
        )
        await nc.jetstream().add_stream(config)
    finally:
        await nc.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks._wire_probe")
    parser.add_argument("--size", type=int, default=10_000, help="operations per figure")
    n = parser.parse_args(argv).size
    with EmbeddedServer() as server:
        asyncio.run(_create_stream(server.url))
        runs = _measure(server.url, n)
    median = {name: statistics.median(r.per_second for r in rates) for name, rates in runs.items()}
    cpu = {name: statistics.median(r.cpu_us for r in rates) for name, rates in runs.items()}
    publish_base = median["publish nats-py asyncio"]
    fetch_base = median["fetch+ack nats-py asyncio"]
    print(f"\n{n:,} ops per figure, {PAYLOAD_SIZE}-byte messages, median of {_ROUNDS} rounds")
    print(f"{'':<38}{'ops/s':>8}  {'ratio':>6}  {'cpu us/op':>9}  rounds (ops/s)")
    for name, rates in runs.items():
        base = publish_base if name.startswith("publish") else fetch_base
        spread = " ".join(f"{rate.per_second:,.0f}" for rate in rates)
        ratio = median[name] / base
        print(f"{name:<38}{median[name]:>8,.0f}  {ratio:>5.2f}x  {cpu[name]:>9.0f}  {spread}")
    print("ratio: to nats-py on asyncio doing the same; cpu: this process, all its threads")
    return 0


if __name__ == "__main__":
    sys.exit(main())
