"""The worker's cost with Prometheus metrics on: the c=100 ``async def`` noop drain, with and
without ``Worker(metrics=naq.WorkerMetrics())``, runs interleaved.

    python -m benchmarks.metrics                   # 10,000 jobs, 3 runs of each
    python -m benchmarks.metrics --quick           # 3,000 jobs, one run of each

On a fresh embedded nats-server, asyncio. Each run fills a fresh queue (untimed) and times
one worker draining it (``_naq_paths.drain_queue``); the metrics are also scraped once per
run, untimed, to check they counted every job.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys

import anyio
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

import naq
from naq.server import EmbeddedServer

from ._naq_paths import drain_queue, fill_queue

CONCURRENCY = 100


def _finished(metrics: naq.WorkerMetrics) -> float:
    text = generate_latest(metrics.registry).decode()
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "naq_jobs_finished_total"
    )


async def _run(url: str, jobs: int, with_metrics: bool) -> float:
    queue, ids = await fill_queue(url, jobs)
    metrics = naq.WorkerMetrics() if with_metrics else None
    rate = await drain_queue(url, queue, ids, CONCURRENCY, metrics=metrics)
    if metrics is not None and _finished(metrics) != jobs:
        raise RuntimeError(f"the metrics counted {_finished(metrics)} of {jobs} jobs")
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description="The worker with Prometheus metrics on/off.")
    parser.add_argument("--quick", action="store_true", help="3,000 jobs, one run")
    parser.add_argument("--jobs", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=None)
    args = parser.parse_args()
    jobs = args.jobs or (3_000 if args.quick else 10_000)
    repeats = args.repeats or (1 if args.quick else 3)
    rates: dict[bool, list[float]] = {False: [], True: []}
    with EmbeddedServer() as server:
        for _ in range(repeats):
            for on in (False, True):
                rate = anyio.run(_run, server.url, jobs, on)
                rates[on].append(rate)
                label = "on" if on else "off"
                print(f"  metrics {label}: {rate:,.0f} jobs/s", file=sys.stderr, flush=True)
    off, on = statistics.median(rates[False]), statistics.median(rates[True])
    ratios = [b / a for a, b in zip(rates[False], rates[True], strict=True)]
    print(f"{os.cpu_count()} CPU(s), {jobs:,} noop async def jobs, c={CONCURRENCY}, asyncio,")
    print(f"median of {repeats} run(s), runs interleaved")
    print("| metrics off, jobs/s | metrics on, jobs/s | ratio (range) |")
    print("| ---: | ---: | ---: |")
    print(f"| {off:,.0f} | {on:,.0f} | {on / off:.3f} ({min(ratios):.3f}-{max(ratios):.3f}) |")


if __name__ == "__main__":
    main()
