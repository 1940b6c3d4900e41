"""OpenTelemetry tracing, opt-in: a producer span per enqueued job, a consumer span per run.

Off until :func:`enable_tracing` (``naq.enable_tracing()``) turns it on for the process;
``opentelemetry`` (the ``tracing`` extra, ``opentelemetry-api``) is imported only then. While
it is off the enqueue and job paths pay one call returning None (:func:`tracing`): no
import, no span, no header added to a job message, no header parsed from a delivery.

On: an enqueue opens a PRODUCER span per job (``publish <queue>``, a child of the caller's
current span) and injects its context (W3C ``traceparent``, through the globally configured
propagator) into the job message's headers; the worker extracts it and runs the job inside a
CONSUMER span (``process <queue>``) whose parent is that producer span, so both are in one
trace. A retry is the same message delivered again: each attempt is a new consumer span
under the same producer span (``naq.attempt`` tells them apart). A job that waits for
dependencies keeps its producer span's context in its record (``JobRecord.trace``); the
process that releases it publishes the job message with it, so its run joins the
enqueuer's trace too, whoever released it. The consumer span is the
current span while the job runs (async jobs, and def jobs through the context copied into
their thread), so spans made inside the job nest under it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING

from ._errors import ConfigurationError
from ._transport import names

if TYPE_CHECKING:
    from opentelemetry.trace import Span, Tracer, TracerProvider

    from ._record import ErrorInfo
    from ._transport import OutgoingJob

__all__ = ["Publishing", "Tracing", "disable_tracing", "enable_tracing", "tracing"]

SYSTEM = "nats"
"""``messaging.system``: the semantic conventions' name for NATS."""


class Publishing:
    """The producer spans of one enqueue call, one per job; ``jobs`` carry their contexts."""

    def __init__(self, jobs: list[OutgoingJob], spans: list[Span]) -> None:
        self.jobs = jobs
        self._spans = spans

    def failed(self, failures: Sequence[tuple[str, BaseException]]) -> None:
        """Mark the spans of the jobs the server did not confirm (``enqueue_many``'s list)."""
        from opentelemetry.trace import Status, StatusCode

        by_id = dict(failures)
        for job, span in zip(self.jobs, self._spans, strict=True):
            error = by_id.get(job.job_id)
            if error is not None:
                span.record_exception(error)
                span.set_status(Status(StatusCode.ERROR, str(error)))


class Tracing:
    """What naq does with a tracer; exists only while tracing is on."""

    def __init__(self, tracer: Tracer) -> None:
        self.tracer = tracer

    @contextlib.contextmanager
    def publishing(self, jobs: Sequence[tuple[OutgoingJob, str]]) -> Iterator[Publishing]:
        """PRODUCER spans for ``(job, function name)`` pairs, their contexts in the jobs'
        headers; an exception out of the block is recorded on every span, then re-raised."""
        from opentelemetry.trace import Status, StatusCode

        outgoing: list[OutgoingJob] = []
        spans: list[Span] = []
        for job, function in jobs:
            queue = names.lane_priority(job.lane)[0]
            span = self._producer_span(queue, job.job_id, function)
            outgoing.append(job._replace(headers=_with_context(job.headers, span)))
            spans.append(span)
        try:
            yield Publishing(outgoing, spans)
        except BaseException as exc:
            for span in spans:
                span.record_exception(exc)
                span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
            raise
        finally:
            for span in spans:
                span.end()

    def deferring(self, queue: str, job_id: str, function: str) -> dict[str, str]:
        """The PRODUCER span of a job stored to wait for its dependencies, ended at once (the
        enqueue is done: its message is published when the job is released); returns the
        span's context as headers, which the record keeps for the job message."""
        span = self._producer_span(queue, job_id, function, deferred=True)
        headers = _with_context(None, span)
        span.end()
        return headers

    def _producer_span(
        self, queue: str, job_id: str, function: str, *, deferred: bool = False
    ) -> Span:
        """A started PRODUCER span (``publish <queue>``) for one job."""
        from opentelemetry.trace import SpanKind

        attributes: dict[str, str | bool] = {
            "messaging.system": SYSTEM,
            "messaging.operation.type": "send",
            "messaging.destination.name": queue,
            "messaging.message.id": job_id,
            "naq.function": function,
        }
        if deferred:
            attributes["naq.deferred"] = True
        return self.tracer.start_span(
            f"publish {queue}", kind=SpanKind.PRODUCER, attributes=attributes
        )

    @contextlib.contextmanager
    def running(
        self,
        headers: Mapping[str, str] | None,
        queue: str,
        job_id: str,
        function: str,
        attempt: int,
    ) -> Iterator[Span]:
        """The CONSUMER span of one run, current while it runs; its parent is the context
        the job message's ``headers`` carry (none: a new trace)."""
        from opentelemetry import propagate
        from opentelemetry.trace import SpanKind

        parent = propagate.extract(headers) if headers else None
        with self.tracer.start_as_current_span(
            f"process {queue}",
            context=parent,
            kind=SpanKind.CONSUMER,
            attributes={
                "messaging.system": SYSTEM,
                "messaging.operation.type": "process",
                "messaging.destination.name": queue,
                "messaging.message.id": job_id,
                "naq.function": function,
                "naq.attempt": attempt,
            },
        ) as span:
            yield span

    @staticmethod
    def ended(span: Span, outcome: str | None, error: ErrorInfo | None) -> None:
        """Record a run's outcome on its span: a failed run (retried or not) is an ERROR
        with an ``exception`` event (type, message, traceback: the job's exception itself
        stays in the job thread or task, naq keeps its ErrorInfo)."""
        from opentelemetry.trace import Status, StatusCode

        if outcome is not None:
            span.set_attribute("naq.outcome", outcome)
        if error is None or outcome not in ("failed", "retrying"):
            return
        span.add_event(
            "exception",
            {
                "exception.type": error.type,
                "exception.message": error.message,
                "exception.stacktrace": error.traceback,
            },
        )
        span.set_status(Status(StatusCode.ERROR, f"{error.type}: {error.message}"))


def _with_context(headers: Mapping[str, str] | None, span: Span) -> dict[str, str]:
    """``headers`` plus ``span``'s context (W3C ``traceparent``, by the global propagator)."""
    from opentelemetry import propagate, trace

    carrier = dict(headers or {})
    propagate.inject(carrier, context=trace.set_span_in_context(span))
    return carrier


_tracing: Tracing | None = None


def tracing() -> Tracing | None:
    """The process's Tracing while tracing is on, else None (the only cost when off)."""
    return _tracing


def enable_tracing(tracer_provider: TracerProvider | None = None) -> None:
    """Trace enqueues and job runs with OpenTelemetry, in this process, from now on.

    Spans go to ``tracer_provider``, else to the global one (``opentelemetry.trace.
    set_tracer_provider``, which may also be set after this call). Needs the ``tracing``
    extra (``pip install 'naq[tracing]'``): ConfigurationError without it. Call it in
    producers and in workers (for ``naq worker``: at the import of your jobs' module, or
    in a startup hook); both sides must be on for one trace to span enqueue and run.
    """
    global _tracing
    try:
        from opentelemetry import trace
    except ImportError as exc:
        raise ConfigurationError(
            "tracing needs the opentelemetry-api package: pip install 'naq[tracing]'"
        ) from exc
    from . import __version__

    _tracing = Tracing(trace.get_tracer("naq", __version__, tracer_provider))


def disable_tracing() -> None:
    """Stop tracing (spans already open end as usual)."""
    global _tracing
    _tracing = None
