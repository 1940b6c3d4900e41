"""A blocking caller's enqueue, made from its own thread (naq_sync's fast path).

naq_sync runs ``Client.enqueue`` in the calling thread (see ``naq/_caller_thread.py``); the
job's publish then goes here instead of crossing to naq's loop thread: one request on a
pooled blocking connection (``_blocking_wire``), read by the caller itself. It keeps the
semantics of ``NatsTransport.enqueue`` and ``Link``: what this path cannot do safely (no
connection, JetStream not ready yet, or a lost reply for a job with an explicit id) is
handed to the loop thread's transport, which rides out outages; a lost reply for a
generated id is the same NaqConnectionError ``Link`` raises.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from .._errors import NaqConnectionError
from ._blocking_wire import BlockingPool, ConnectFailed, RequestFailed
from ._deliveries import OutgoingJob, message_headers, record_too_large
from ._link import UNKNOWN_OUTCOME, call_failed
from ._names import job_subject
from ._nats import NatsTransport, _publish_failure
from ._publisher import PublishError
from ._wire_protocol import JetStreamAPIError, NoRespondersError, PubAck, pub_outcome

__all__ = ["CallerCalls", "Cross"]

T = TypeVar("T")

Cross = Callable[..., Any]
"""Runs ``fn(*args)``, a transport coroutine function, on the loop thread and returns its result."""

_SERVICE_UNAVAILABLE = 503
"""JetStream's code while it is still starting: the loop's transport waits it out."""


class CallerCalls:
    """``NatsTransport.enqueue`` for a calling thread, on pooled blocking connections."""

    def __init__(self, transport: NatsTransport, pool: BlockingPool, cross: Cross) -> None:
        self._transport = transport
        self._pool = pool
        self._cross = cross
        self._announced: set[str] = set()

    def routes(self) -> dict[Callable[..., Any], Callable[..., Any]]:
        """``NatsTransport`` functions -> the blocking methods that serve them here."""
        return {NatsTransport.enqueue: self.enqueue}

    def enqueue(self, job: OutgoingJob) -> None:
        """As ``NatsTransport.enqueue``: one publish, confirmed on return, the same errors."""
        transport = self._transport
        if job.lane not in self._announced:  # once per queue (a consumer for operators)
            self._cross(transport.announce_queues, {job.lane})
            self._announced.add(job.lane)
        try:
            conn = self._pool.take()
        except ConnectFailed:
            return self._cross(transport.enqueue, job)  # the loop's transport rides it out
        too_large = record_too_large(job, conn.max_payload)
        if too_large is not None:
            self._pool.give_back(conn)
            raise too_large
        subject = job_subject(job.lane, job.job_id)
        headers = message_headers(job)
        try:
            reply = conn.request(subject, job.record, headers, transport.timeout)
        except (TimeoutError, RequestFailed) as exc:
            conn.close()
            if job.dedupe:  # idempotent: made again, through the loop's transport
                return self._cross(transport.enqueue, job)
            raise self._unknown(job, exc) from exc
        self._pool.give_back(conn)
        outcome = pub_outcome(reply, subject, transport.timeout)
        if isinstance(outcome, PubAck):
            return None
        if isinstance(outcome, NoRespondersError) or (
            isinstance(outcome, JetStreamAPIError) and outcome.code == _SERVICE_UNAVAILABLE
        ):
            return self._cross(transport.enqueue, job)  # not stored: JetStream not ready yet
        description = outcome.description if isinstance(outcome, JetStreamAPIError) else outcome
        raise _publish_failure(transport.url, PublishError(str(description))) from outcome

    def _unknown(self, job: OutgoingJob, exc: BaseException) -> NaqConnectionError:
        what, url, timeout = (
            f"enqueue of job {job.job_id}",
            self._transport.url,
            self._transport.timeout,
        )
        if isinstance(exc, TimeoutError):
            return call_failed(what, "no answer within the timeout", exc, url, True, timeout)
        return call_failed(what, UNKNOWN_OUTCOME, TimeoutError(str(exc)), url, False, timeout)

    def close(self) -> None:
        self._pool.close()
