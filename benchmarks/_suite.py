"""The list of measurements, run in order against one server, each turned into a table row.

Every throughput figure is the median of ``REPEATS`` runs, each in its own event loop; the
runs themselves go into the JSON. Progress goes to stderr, one line per figure.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import anyio

from ._floors import Floors, measure_floors
from ._naq_paths import drain_queue, enqueue_awaited, enqueue_many, fill_queue, latency
from ._report import Row
from ._sync_paths import enqueue_from_tasks, enqueue_from_threads

__all__ = [
    "ASYNCIO_CONCURRENCIES",
    "REPEATS",
    "SYNC_JOB_CONCURRENCY",
    "SYNC_THREADS",
    "TRIO_CONCURRENCIES",
    "run_suite",
]

T = TypeVar("T")

REPEATS = 3
ASYNCIO_CONCURRENCIES = (1, 10, 100)
TRIO_CONCURRENCIES = (100,)
SYNC_JOB_CONCURRENCY = 100
SYNC_THREADS = (1, 8)


def _say(text: str, *, end: str = "") -> None:
    print(text, end=end, file=sys.stderr, flush=True)


def _run(backend: str, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
    return anyio.run(fn, *args, backend=backend)


def _repeated(label: str, measure: Callable[[], float]) -> tuple[float, ...]:
    """``REPEATS`` runs of ``measure`` (ops/s each), reported on one progress line."""
    _say(f"  {label}:")
    started = time.perf_counter()
    runs = []
    try:
        for _ in range(REPEATS):
            runs.append(measure())
            _say(f" {runs[-1]:,.0f}")
    finally:
        _say(f" ops/s ({time.perf_counter() - started:.1f} s)", end="\n")
    return tuple(runs)


def _rate_row(name: str, runs: tuple[float, ...], floor: str, floor_value: float) -> Row:
    return Row(name, statistics.median(runs), "ops/s", floor, floor_value, runs)


def _floor_rows(url: str, size: int) -> tuple[Floors, list[Row]]:
    """The floors: each the median of its runs; one run measures all three."""
    _say("  raw nats-py floors (asyncio):")
    started = time.perf_counter()
    runs: list[Floors] = []
    try:
        for _ in range(REPEATS):
            runs.append(_run("asyncio", measure_floors, url, size))
            _say(".")
    finally:
        _say(f" ({time.perf_counter() - started:.1f} s)", end="\n")
    awaited = tuple(run.publish_awaited for run in runs)
    pipelined = tuple(run.publish_pipelined for run in runs)
    fetch_ack = tuple(run.fetch_ack for run in runs)
    floors = Floors(
        publish_awaited=statistics.median(awaited),
        publish_pipelined=statistics.median(pipelined),
        fetch_ack=statistics.median(fetch_ack),
    )
    rows = [
        Row("floor: js.publish awaited", floors.publish_awaited, "ops/s", runs=awaited),
        Row("floor: js.publish_async pipelined", floors.publish_pipelined, "ops/s", runs=pipelined),
        Row("floor: pull fetch(256) + ack", floors.fetch_ack, "ops/s", runs=fetch_ack),
    ]
    return floors, rows


def _worker_run(url: str, size: int, backend: str, concurrency: int, sync_jobs: bool) -> float:
    """Fill a fresh queue (on asyncio, untimed), then time a worker draining it."""
    queue, job_ids = _run("asyncio", fill_queue, url, size, sync_jobs)
    return _run(backend, drain_queue, url, queue, job_ids, concurrency)


WorkerConfig = tuple[str, int, bool]
"""backend, concurrency, ``def`` jobs (else ``async def``)."""

_WORKER_CONFIGS: tuple[WorkerConfig, ...] = (
    *(("asyncio", c, False) for c in ASYNCIO_CONCURRENCIES),
    *(("trio", c, False) for c in TRIO_CONCURRENCIES),
    ("asyncio", SYNC_JOB_CONCURRENCY, True),
    ("trio", SYNC_JOB_CONCURRENCY, True),
)

_WORKER_COMPARISONS: tuple[tuple[str, WorkerConfig, WorkerConfig], ...] = (
    ("async def jobs: trio vs asyncio", ("trio", 100, False), ("asyncio", 100, False)),
    ("def jobs vs async def jobs (asyncio)", ("asyncio", 100, True), ("asyncio", 100, False)),
    ("def jobs: trio vs asyncio", ("trio", 100, True), ("asyncio", 100, True)),
)


def _worker_name(config: WorkerConfig) -> str:
    backend, concurrency, sync_jobs = config
    kind = "def" if sync_jobs else "async def"
    return f"naq worker {kind} noop c={concurrency} ({backend})"


def _short(config: WorkerConfig) -> str:
    backend, concurrency, sync_jobs = config
    return f"{'def' if sync_jobs else 'async def'} c={concurrency} {backend}"


def run_suite(url: str, size: int, latency_samples: int) -> list[Row]:
    """Measure the floors, then naq's paths; ``size`` messages or jobs per throughput run."""
    floors, rows = _floor_rows(url, size)

    runs = _repeated(
        "naq enqueue awaited (asyncio)", lambda: _run("asyncio", enqueue_awaited, url, size)
    )
    rows.append(_rate_row("naq enqueue awaited (asyncio)", runs, "publish", floors.publish_awaited))
    async_rate = statistics.median(runs)
    runs = _repeated("naq enqueue awaited (trio)", lambda: _run("trio", enqueue_awaited, url, size))
    rows.append(_rate_row("naq enqueue awaited (trio)", runs, "async enqueue", async_rate))
    rows += _enqueue_rows(url, size, async_rate)

    runs = _repeated("naq enqueue_many (asyncio)", lambda: _run("asyncio", enqueue_many, url, size))
    rows.append(
        _rate_row("naq enqueue_many (asyncio)", runs, "pipelined", floors.publish_pipelined)
    )

    worker_rates: dict[WorkerConfig, float] = {}
    for config in _WORKER_CONFIGS:
        name = _worker_name(config)
        runs = _repeated(name, lambda c=config: _worker_run(url, size, *c))
        rows.append(_rate_row(name, runs, "fetch+ack", floors.fetch_ack))
        worker_rates[config] = statistics.median(runs)
    for name, config, baseline in _WORKER_COMPARISONS:
        rows.append(
            Row(
                f"naq worker: {name}",
                worker_rates[config],
                "ops/s",
                _short(baseline),
                worker_rates[baseline],
            )
        )

    rows += _latency_rows(url, latency_samples, floors)
    return rows


def _enqueue_rows(url: str, size: int, async_rate: float) -> list[Row]:
    """naq_sync from 1 and 8 threads, and 8 async tasks: each beside the awaited async rate."""
    rows = []
    for threads in SYNC_THREADS:
        name = f"naq_sync enqueue, {threads} thread{'s' if threads > 1 else ''}"
        runs = _repeated(name, lambda t=threads: enqueue_from_threads(url, size, t))
        rows.append(_rate_row(name, runs, "async enqueue", async_rate))
    name = "naq enqueue, 8 tasks (asyncio)"
    runs = _repeated(name, lambda: _run("asyncio", enqueue_from_tasks, url, size, 8))
    rows.append(_rate_row(name, runs, "async enqueue", async_rate))
    return rows


def _latency_rows(url: str, samples: int, floors: Floors) -> list[Row]:
    """p50 and p99 of enqueue-to-result, next to one awaited publish (a round trip)."""
    _say(f"  naq enqueue->result latency (asyncio): {samples:,} samples")
    started = time.perf_counter()
    try:
        times = _run("asyncio", latency, url, samples)
    finally:
        _say(f" ({time.perf_counter() - started:.1f} s)", end="\n")
    percentiles = statistics.quantiles(times, n=100, method="inclusive")
    return [
        Row(
            f"naq enqueue->result {label} (asyncio)",
            value,
            "ms",
            "publish RTT",
            floors.publish_rtt_ms,
        )
        for label, value in (("p50", percentiles[49]), ("p99", percentiles[98]))
    ]
