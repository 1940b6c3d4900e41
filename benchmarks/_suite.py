"""The list of measurements, run against one server, each turned into a table row.

Every throughput figure is the median of ``REPEATS`` runs, each in its own event loop, and
the runs go round-robin: each round runs every measurement once. The runs themselves go into
the JSON. Progress goes to stderr, one line per run.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
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


Measure = Callable[[], dict[str, float]]
"""One run of one measurement: each figure it gives (a row's name) and its ops/s."""


def _one(name: str, measure: Callable[[], float]) -> tuple[str, Measure]:
    return name, lambda: {name: measure()}


def _rounds(measures: Sequence[tuple[str, Measure]]) -> dict[str, tuple[float, ...]]:
    """Every measure run ``REPEATS`` times, round-robin: each round runs each once.

    A quiet or a busy spell of the shared machine then falls on every figure of a round,
    not on the runs of one figure, so the ratios between figures of the run are fair.
    """
    runs: dict[str, list[float]] = {}
    for index in range(REPEATS):
        for label, measure in measures:
            started = time.perf_counter()
            figures = measure()
            took = time.perf_counter() - started
            for name, value in figures.items():
                runs.setdefault(name, []).append(value)
            shown = ", ".join(f"{value:,.0f}" for value in figures.values())
            _say(f"  [{index + 1}/{REPEATS}] {label}: {shown} ops/s ({took:.1f} s)", end="\n")
    return {name: tuple(values) for name, values in runs.items()}


_PUBLISH_FLOOR = "floor: js.publish awaited"
_PIPELINED_FLOOR = "floor: js.publish_async pipelined"
_FETCH_ACK_FLOOR = "floor: pull fetch(256) + ack"
_ENQUEUE = "naq enqueue awaited (asyncio)"
_ENQUEUE_TRIO = "naq enqueue awaited (trio)"
_ENQUEUE_MANY = "naq enqueue_many (asyncio)"
_ENQUEUE_TASKS = "naq enqueue, 8 tasks (asyncio)"


def _floors(url: str, size: int) -> dict[str, float]:
    floors = _run("asyncio", measure_floors, url, size)
    return {
        _PUBLISH_FLOOR: floors.publish_awaited,
        _PIPELINED_FLOOR: floors.publish_pipelined,
        _FETCH_ACK_FLOOR: floors.fetch_ack,
    }


def _sync_name(threads: int) -> str:
    return f"naq_sync enqueue, {threads} thread{'s' if threads > 1 else ''}"


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


def _measures(url: str, size: int) -> list[tuple[str, Measure]]:
    """Every throughput measurement of the suite, in the order a round runs them."""
    return [
        ("raw nats-py floors (asyncio)", lambda: _floors(url, size)),
        _one(_ENQUEUE, lambda: _run("asyncio", enqueue_awaited, url, size)),
        _one(_ENQUEUE_TRIO, lambda: _run("trio", enqueue_awaited, url, size)),
        *(
            _one(_sync_name(threads), lambda t=threads: enqueue_from_threads(url, size, t))
            for threads in SYNC_THREADS
        ),
        _one(_ENQUEUE_TASKS, lambda: _run("asyncio", enqueue_from_tasks, url, size, 8)),
        _one(_ENQUEUE_MANY, lambda: _run("asyncio", enqueue_many, url, size)),
        *(
            _one(_worker_name(config), lambda c=config: _worker_run(url, size, *c))
            for config in _WORKER_CONFIGS
        ),
    ]


def run_suite(url: str, size: int, latency_samples: int) -> list[Row]:
    """Measure the floors and naq's paths in rounds, then the latency; ``size`` messages or
    jobs per throughput run."""
    runs = _rounds(_measures(url, size))
    median = {name: statistics.median(values) for name, values in runs.items()}
    floors = Floors(
        publish_awaited=median[_PUBLISH_FLOOR],
        publish_pipelined=median[_PIPELINED_FLOOR],
        fetch_ack=median[_FETCH_ACK_FLOOR],
    )

    def row(name: str, floor: str | None = None, floor_value: float | None = None) -> Row:
        return Row(name, median[name], "ops/s", floor, floor_value, runs[name])

    rows = [row(_PUBLISH_FLOOR), row(_PIPELINED_FLOOR), row(_FETCH_ACK_FLOOR)]
    rows.append(row(_ENQUEUE, "publish", floors.publish_awaited))
    enqueues = (_ENQUEUE_TRIO, *map(_sync_name, SYNC_THREADS), _ENQUEUE_TASKS)
    rows += [row(name, "async enqueue", median[_ENQUEUE]) for name in enqueues]
    rows.append(row(_ENQUEUE_MANY, "pipelined", floors.publish_pipelined))
    rows += [row(_worker_name(c), "fetch+ack", floors.fetch_ack) for c in _WORKER_CONFIGS]
    for name, config, baseline in _WORKER_COMPARISONS:
        rows.append(
            Row(
                f"naq worker: {name}",
                median[_worker_name(config)],
                "ops/s",
                _short(baseline),
                median[_worker_name(baseline)],
            )
        )
    rows += _latency_rows(url, latency_samples, floors)
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
