"""Worker processes against one: ``naq worker --processes 2`` beside ``--processes 1``.

Each figure starts ``naq worker`` (in a subprocess, as an operator would) on a fresh queue,
waits until all its worker processes are in the registry, enqueues the jobs with
``enqueue_many``, and times the drain from the moment the last job is stored: jobs/s =
jobs still unacknowledged then / seconds until the queue's consumer has none left. Worker
start-up and the enqueue are outside the timing; both configurations get the same jobs.

Two kinds of jobs: ``def`` jobs that burn 1 ms of CPU (thread time, holding the GIL), where
one process is bound to one core, and noop ``async def`` jobs, where the work is naq's own.
"""

from __future__ import annotations

import os
import signal
import statistics
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import naq
import naq_sync

from ._drain import wait_drained
from ._jobs import noop

__all__ = ["CPU_SECONDS", "KINDS", "burn_cpu", "measure", "ratio_rows"]

ROOT = Path(__file__).resolve().parent.parent
CPU_SECONDS = 0.001
KINDS = {
    "cpu": ("def jobs burning 1 ms of CPU", 10),
    "noop": ("noop async def jobs", 100),
}
"""Kind: (description, worker concurrency)."""
_BATCH = 1_000


def burn_cpu() -> None:
    """A ``def`` job that burns ``CPU_SECONDS`` of this thread's CPU time."""
    end = time.thread_time() + CPU_SECONDS
    while time.thread_time() < end:
        pass


def _wait_for_workers(client: naq_sync.Client, queue: str, count: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while len([w for w in naq_sync.Admin(client).workers() if queue in w.queues]) < count:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{count} worker process(es) on {queue} not up in {timeout:g} s")
        time.sleep(0.05)


def measure(url: str, kind: str, processes: int, jobs: int) -> float:
    """Jobs per second drained by ``naq worker --processes PROCESSES`` on ``jobs`` jobs."""
    _, concurrency = KINDS[kind]
    func = burn_cpu if kind == "cpu" else noop
    queue = f"bench_proc_{uuid.uuid4().hex[:8]}"
    worker = subprocess.Popen(
        [sys.executable, "-m", "naq", "worker", queue, "--url", url, "--processes",
         str(processes), "--concurrency", str(concurrency), "--log-level", "WARNING"],
        cwd=ROOT,
        env=os.environ.copy(),
    )  # fmt: skip
    try:
        with naq_sync.Client(url) as client:
            _wait_for_workers(client, queue, processes, timeout=60)
            calls = [naq.Call(func)] * jobs
            for start in range(0, jobs, _BATCH):
                client.enqueue_many(calls[start : start + _BATCH], queue=queue)
            left = client.queue(queue).count()
            started = time.perf_counter()
        ended = wait_drained(url, queue, timeout=600, abandon=threading.Event())
        return left / (ended - started)
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=60)


def ratio_rows(url: str, jobs: dict[str, int], repeats: int) -> list[dict[str, object]]:
    """Per kind: median jobs/s with 1 and 2 processes (runs interleaved) and their ratio."""
    rows: list[dict[str, object]] = []
    for kind, count in jobs.items():
        rates: dict[int, list[float]] = {1: [], 2: []}
        for _ in range(repeats):
            for processes in (1, 2):
                rate = measure(url, kind, processes, count)
                rates[processes].append(rate)
                print(f"  {kind}, {processes} process(es): {rate:,.0f} jobs/s",
                      file=sys.stderr, flush=True)  # fmt: skip
        one, two = statistics.median(rates[1]), statistics.median(rates[2])
        ratios = [b / a for a, b in zip(rates[1], rates[2], strict=True)]
        rows.append(
            {
                "kind": kind,
                "description": KINDS[kind][0],
                "jobs": count,
                "one": one,
                "two": two,
                "ratio": two / one,
                "ratio_min": min(ratios),
                "ratio_max": max(ratios),
            }
        )
    return rows
