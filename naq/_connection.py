"""A connected transport, the bridge that reaches it, and the serializer: shared by all roles."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from ._errors import JobNotFound, ResultTimeout
from ._record import JobRecord, JobStatus, decode_record
from ._serializers import Serializer
from ._settings import default_replicas
from ._transport import Bridge, NatsTransport, bridge_for_current_backend

__all__ = ["Connection"]

T = TypeVar("T")


class _StatusIn:
    """Predicate on raw record bytes, evaluated on the transport's loop."""

    def __init__(self, statuses: frozenset[JobStatus]) -> None:
        self.statuses = statuses

    def __call__(self, data: bytes) -> bool:
        return decode_record(data).status in self.statuses


_TERMINAL = _StatusIn(frozenset(s for s in JobStatus if s.is_terminal))


class Connection:
    """Opened by a Client or Worker; every call to NATS goes through :meth:`call`."""

    def __init__(self, url: str, serializer: Serializer, replicas: int | None = None) -> None:
        self.url = url
        self.serializer = serializer
        self.transport = NatsTransport(url, default_replicas(replicas))
        self._bridge: Bridge | None = None

    async def open(self) -> None:
        self._bridge = bridge_for_current_backend()
        await self.call(self.transport.connect)

    async def close(self) -> None:
        if self._bridge is not None:
            await self.call(self.transport.close)
            self._bridge = None

    async def call(self, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
        """Run a transport coroutine function on the transport's loop (one crossing)."""
        if self._bridge is None:
            raise RuntimeError("not connected: use 'async with' on the Client or Worker")
        return await self._bridge.call(fn, *args)

    async def get_record(self, job_id: str) -> JobRecord:
        data = await self.call(self.transport.get_record, job_id)
        if data is None:
            raise JobNotFound(f"no job {job_id!r} (it never existed or its record expired)")
        return decode_record(data)

    async def wait_status(
        self, job_id: str, statuses: frozenset[JobStatus] | None, timeout: float | None
    ) -> JobRecord:
        """Wait, woken by each write of the record, until its status is one of ``statuses``.

        ``None`` means any terminal status (finished, failed, canceled).
        """
        done = _TERMINAL if statuses is None else _StatusIn(statuses)
        try:
            data = await self.call(self.transport.wait_record, job_id, done, timeout)
        except TimeoutError:
            wanted = "end" if statuses is None else "reach " + "/".join(sorted(statuses))
            raise ResultTimeout(f"job {job_id} did not {wanted} within {timeout} s") from None
        if data is None:
            raise JobNotFound(f"no job {job_id!r} (it never existed or its record expired)")
        return decode_record(data)
