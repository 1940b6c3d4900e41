"""Prometheus metrics of a worker (``WorkerMetrics``) and of the cluster (``cluster_metrics``).

The worker's job path only bumps plain integers and bucket counts in ``Series`` objects
(one per queue and function), on its event loop thread; nothing touches prometheus_client
until a scrape, when the collector copies them into metric families. That keeps the cost
with metrics on to a dict lookup and a few additions per job, and without them (no
``Worker(metrics=)``) to one ``is None`` test per step. prometheus_client (the ``metrics``
extra) is imported only when a ``WorkerMetrics`` is made or the dashboard serves ``/metrics``.

Label cardinality is bounded: labels are the queue and the function (``func_name``), at most
``MAX_FUNCTIONS`` distinct functions per process (later ones count as ``other``), and the
worker id on ``naq_worker_up`` (one per live worker of the process). Never a job id.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from ._errors import ConfigurationError

if TYPE_CHECKING:
    from wsgiref.simple_server import WSGIServer

    from prometheus_client.registry import CollectorRegistry

    from ._admin import QueueInfo
    from ._dead_letters import DeadLetter
    from ._heartbeat import WorkerInfo

__all__ = [
    "BUCKETS",
    "MAX_FUNCTIONS",
    "OTHER_FUNCTION",
    "UNKNOWN_FUNCTION",
    "Series",
    "WorkerMetrics",
    "cluster_metrics",
    "require_prometheus",
]

BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
BUCKETS += (300.0, 900.0, 3600.0)
"""Upper bounds (seconds) of the run-time and wait-time histograms' buckets."""
MAX_FUNCTIONS = 1000
"""Distinct ``function`` label values per process; jobs of further functions count as other."""
OTHER_FUNCTION = "other"
UNKNOWN_FUNCTION = "unknown"
"""The function of an undecodable message (dead-lettered before anything was known)."""

_OUTCOMES = ("finished", "failed", "retried", "canceled", "dead_lettered")
_EVENT_OUTCOME = {"finished": "finished", "failed": "failed", "retrying": "retried"}
_EVENT_OUTCOME["canceled"] = "canceled"


def require_prometheus() -> None:
    """Raise ConfigurationError naming the extra when prometheus_client is not installed."""
    try:
        import prometheus_client  # noqa: F401
    except ImportError as exc:
        raise ConfigurationError(
            "metrics need prometheus-client: pip install 'naq[metrics]'"
        ) from exc


class _Histogram:
    """Bucket counts (not cumulative) and the sum, for one label set."""

    __slots__ = ("counts", "total")

    def __init__(self) -> None:
        self.counts = [0] * (len(BUCKETS) + 1)  # the last one: over the largest bound
        self.total = 0.0

    def observe(self, seconds: float) -> None:
        self.counts[bisect.bisect_left(BUCKETS, seconds)] += 1
        self.total += seconds

    def buckets(self) -> list[tuple[str, float]]:
        """Cumulative ``(le, count)`` pairs, ``+Inf`` last, as Prometheus wants them."""
        out: list[tuple[str, float]] = []
        running = 0
        for bound, count in zip((*BUCKETS, float("inf")), list(self.counts), strict=True):
            running += count
            out.append(("+Inf" if bound == float("inf") else repr(bound), running))
        return out


class Series:
    """Everything counted for one (queue, function)."""

    __slots__ = ("counts", "in_progress", "run", "started", "wait")

    def __init__(self) -> None:
        self.started = 0
        self.in_progress = 0
        self.counts: dict[str, int] = dict.fromkeys(_OUTCOMES, 0)
        self.run = _Histogram()
        self.wait = _Histogram()


class WorkerMetrics:
    """A worker's job counters and histograms, in a registry of their own.

    Give it to ``naq.Worker(metrics=...)`` (several workers of one process may share one);
    :meth:`serve` exposes ``/metrics`` over HTTP, or add :attr:`registry` to your own
    exporter. Needs the ``metrics`` extra (``pip install 'naq[metrics]'``).
    """

    def __init__(self, *, process_metrics: bool = True) -> None:
        require_prometheus()
        from prometheus_client import CollectorRegistry, ProcessCollector
        from prometheus_client.registry import Collector

        self._series: dict[tuple[str, str], Series] = {}
        self._functions: set[str] = set()
        self._workers: dict[str, bool] = {}
        self._server: WSGIServer | None = None
        self._thread: threading.Thread | None = None
        self.registry: CollectorRegistry = CollectorRegistry(auto_describe=False)
        """The registry holding naq's metrics (and the process's, unless told not to)."""
        metrics = self

        class _Collector(Collector):
            def collect(self) -> Iterator[Any]:
                return metrics.collect()

        self.registry.register(_Collector())
        if process_metrics:
            ProcessCollector(registry=self.registry)

    # -- the job path (the worker's event loop thread) ----------------------------------

    def series(self, queue: str, function: str) -> Series:
        """The counters of ``queue`` and ``function`` (``other`` past MAX_FUNCTIONS)."""
        found = self._series.get((queue, function))
        if found is not None:
            return found
        if function not in self._functions and function != OTHER_FUNCTION:
            if len(self._functions) >= MAX_FUNCTIONS:
                return self.series(queue, OTHER_FUNCTION)
            self._functions.add(function)
        made = self._series[(queue, function)] = Series()
        return made

    def started(self, queue: str, function: str, wait: float | None) -> None:
        """A job is about to run; ``wait``: seconds since it was enqueued (first runs)."""
        series = self.series(queue, function)
        series.started += 1
        if wait is not None:
            series.wait.observe(max(wait, 0.0))

    def ended(self, queue: str, function: str, event: str | None, dead: bool) -> None:
        """A job's run (or delivery) has its outcome: ``event`` as in the job's events."""
        counts = self.series(queue, function).counts
        outcome = _EVENT_OUTCOME.get(event or "")
        if outcome is not None:
            counts[outcome] += 1
        if dead:
            counts["dead_lettered"] += 1

    def worker_up(self, worker_id: str, up: bool) -> None:
        """Whether ``worker_id`` runs (it heartbeats); a stopped one stays listed as 0."""
        self._workers[worker_id] = up

    # -- HTTP --------------------------------------------------------------------------

    def serve(self, port: int, host: str = "0.0.0.0") -> int:
        """Serve ``/metrics`` on ``host:port`` from a daemon thread; the port bound (0: any)."""
        from prometheus_client import start_http_server

        if self._server is not None:
            raise ConfigurationError("these metrics are already served")
        try:
            self._server, self._thread = start_http_server(port, host, registry=self.registry)
        except OSError as exc:
            raise ConfigurationError(f"cannot serve metrics on {host}:{port}: {exc}") from exc
        return self._server.server_port

    def close(self) -> None:
        """Stop serving (if :meth:`serve` was called)."""
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    # -- the scrape (prometheus_client's thread) -----------------------------------------

    def collect(self) -> Iterator[Any]:
        """Metric families built from the counters (called by the registry on a scrape)."""
        from prometheus_client.core import (
            CounterMetricFamily,
            GaugeMetricFamily,
            HistogramMetricFamily,
        )

        series = sorted(self._series.copy().items())  # dict.copy: atomic under the GIL
        labels = ["queue", "function"]
        started = CounterMetricFamily(
            "naq_jobs_started", "Jobs whose function started running.", labels=labels
        )
        for (queue, function), s in series:
            started.add_metric([queue, function], s.started)
        yield started
        helps = {
            "finished": "Jobs that finished (their result is stored).",
            "failed": "Jobs that failed for good (after their last attempt, or not runnable).",
            "retried": "Failed runs that will be retried (the job waits for its next attempt).",
            "canceled": "Jobs canceled (before or while they ran, or expired: ttl).",
            "dead_lettered": "Job messages copied to the dead-letter stream.",
        }
        for outcome, text in helps.items():
            family = CounterMetricFamily(f"naq_jobs_{outcome}", text, labels=labels)
            for (queue, function), s in series:
                family.add_metric([queue, function], s.counts[outcome])
            yield family
        in_progress = GaugeMetricFamily(
            "naq_jobs_in_progress", "Jobs running now in this process.", labels=labels
        )
        for (queue, function), s in series:
            in_progress.add_metric([queue, function], s.in_progress)
        yield in_progress
        for name, text, attr in (
            ("naq_job_run_seconds", "How long a job's function ran.", "run"),
            ("naq_job_wait_seconds", "From enqueued to first started.", "wait"),
        ):
            family = HistogramMetricFamily(name, text, labels=labels)
            for (queue, function), s in series:
                histogram: _Histogram = getattr(s, attr)
                family.add_metric([queue, function], histogram.buckets(), histogram.total)
            yield family
        up = GaugeMetricFamily(
            "naq_worker_up", "1 while the worker runs, 0 once stopped.", labels=["worker"]
        )
        for worker_id, is_up in sorted(self._workers.copy().items()):
            up.add_metric([worker_id], 1 if is_up else 0)
        yield up


def cluster_metrics(
    queues: Sequence[QueueInfo], workers: Sequence[WorkerInfo], dead_letters: Iterable[DeadLetter]
) -> bytes:
    """The dashboard's ``/metrics`` page: what NATS knows of every queue and live worker."""
    require_prometheus()
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
    from prometheus_client.registry import Collector

    dead: dict[str, int] = {q.name: 0 for q in queues}
    for letter in dead_letters:
        dead[letter.queue] = dead.get(letter.queue, 0) + 1

    class _Cluster(Collector):
        def collect(self) -> Iterator[Any]:
            for name, text, attr in (
                ("pending", "Jobs waiting in the queue (or waiting to retry).", "pending"),
                ("in_progress", "Jobs handed to a worker, not yet acknowledged.", "in_progress"),
            ):
                family = GaugeMetricFamily(f"naq_queue_jobs_{name}", text, labels=["queue"])
                for q in queues:
                    family.add_metric([q.name], getattr(q, attr))
                yield family
            family = GaugeMetricFamily(
                "naq_queue_workers", "Live workers consuming the queue.", labels=["queue"]
            )
            for q in queues:
                family.add_metric([q.name], len(q.workers))
            yield family
            family = GaugeMetricFamily(
                "naq_queue_dead_letters", "Dead letters stored for the queue.", labels=["queue"]
            )
            for queue, count in sorted(dead.items()):
                family.add_metric([queue], count)
            yield family
            yield GaugeMetricFamily("naq_workers", "Live workers.", value=len(workers))
            labels = ["worker"]
            running = GaugeMetricFamily(
                "naq_worker_jobs_running", "Jobs the worker runs now.", labels=labels
            )
            processed = CounterMetricFamily(
                "naq_worker_jobs_processed", "Runs the worker ended (any outcome).", labels=labels
            )
            failed = CounterMetricFamily(
                "naq_worker_jobs_failed", "Runs that failed (retried or not).", labels=labels
            )
            for w in workers:
                running.add_metric([w.id], w.running)
                processed.add_metric([w.id], w.processed)
                failed.add_metric([w.id], w.failed)
            yield from (running, processed, failed)

    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Cluster())
    return generate_latest(registry)
