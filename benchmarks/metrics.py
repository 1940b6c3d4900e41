"""What observability costs the worker: the c=100 ``async def`` noop drain with no history
sample during the run, as it ships (throughput history every 10 s), with Prometheus metrics
on (``Worker(metrics=naq.WorkerMetrics())``), and with the history stored 100 times as often
(``history_interval=0.1``: an upper bound, since a drain of a few seconds sees at most one
10 s sample), runs interleaved.

    python -m benchmarks.metrics                   # 10,000 jobs, 3 runs of each
    python -m benchmarks.metrics --quick           # 3,000 jobs, one run of each

On a fresh embedded nats-server, asyncio. Each run fills a fresh queue (untimed) and times
one worker draining it (``_naq_paths.drain_queue``); the metrics are also scraped once per
run, untimed, to check they counted every job.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

import naq

from ._naq_paths import drain_queue, fill_queue
from ._report import compare_workers

CONCURRENCY = 100


def _finished(metrics: naq.WorkerMetrics) -> float:
    text = generate_latest(metrics.registry).decode()
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "naq_jobs_finished_total"
    )


VARIANTS = {
    "no history": {"history_interval": 1e9},  # only the sample at stop, after the clock
    "as shipped (history every 10 s)": {},
    "metrics on": {"metrics": True},
    "history every 0.1 s": {"history_interval": 0.1},
}


async def _run(url: str, jobs: int, variant: dict[str, Any]) -> float:
    queue, ids = await fill_queue(url, jobs)
    metrics = naq.WorkerMetrics() if variant.get("metrics") else None
    rate = await drain_queue(
        url,
        queue,
        ids,
        CONCURRENCY,
        metrics=metrics,
        history_interval=variant.get("history_interval"),
    )
    if metrics is not None and _finished(metrics) != jobs:
        raise RuntimeError(f"the metrics counted {_finished(metrics)} of {jobs} jobs")
    return rate


def main() -> None:
    compare_workers(
        "The worker's cost of metrics and history.",
        VARIANTS,
        _run,
        CONCURRENCY,
        quick=(3_000, 1),
        full=(10_000, 3),
        digits=3,
    )


if __name__ == "__main__":
    main()
